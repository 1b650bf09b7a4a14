//! Documents (EMRD/EHRD): the original bytes of every CDA document with its
//! index entry, versions (a replacement supersedes, the old one stays
//! retrievable), and the medications extracted from them. Diagnoses and
//! results extracted from documents live with the others (`records.rs`).

use crate::conn::Direct;
use crate::schema::{diagnoses, documents, ehr_entries, medications, observations};
use crate::{Access, Scope, StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A document to store with its original bytes.
#[derive(Clone, Debug, Default)]
pub struct NewDocument {
    /// The patient.
    pub person_id: Option<String>,
    /// Encounter it belongs to.
    pub encounter_id: Option<String>,
    /// WS/T 500 or WS/T 483 type code.
    pub type_code: String,
    /// Code system of the type code.
    pub type_system: Option<String>,
    /// `emr` or `ehr`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Clinical effective time.
    pub effective_at: NaiveDateTime,
    /// Authoring facility.
    pub author_facility: Option<String>,
    /// Custodian.
    pub custodian: Option<String>,
    /// Confidentiality code (`N`, `R`, `V`).
    pub confidentiality: String,
    /// MIME type of the bytes.
    pub content_type: String,
    /// The CDA `id` as `root|extension` (unique: the same document twice is one document).
    pub cda_id: Option<String>,
    /// The CDA `setId` as `root|extension`: the versions of one document share it.
    pub set_id: Option<String>,
    /// The CDA `versionNumber`.
    pub version_number: Option<i64>,
    /// The document this one replaces (relatedDocument RPLC).
    pub supersedes: Option<String>,
    /// The original bytes, kept unchanged.
    pub content: Vec<u8>,
}

/// A document's index entry (everything but the bytes); also the payload of
/// a document's change, which is why it can be read back from JSON.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = documents)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct DocumentIndexRecord {
    /// Document id.
    pub id: String,
    /// The patient.
    pub person_id: Option<String>,
    /// Encounter.
    pub encounter_id: Option<String>,
    /// Type code.
    pub type_code: String,
    /// Title.
    pub title: String,
    /// Effective time.
    pub effective_at: NaiveDateTime,
    /// Authoring facility.
    pub author_facility: Option<String>,
    /// Custodian.
    pub custodian: Option<String>,
    /// Confidentiality code.
    pub confidentiality: String,
    /// MIME type.
    pub content_type: String,
    /// SHA-256 of the original bytes, hex.
    pub sha256: String,
    /// Size of the original bytes.
    pub size_bytes: i64,
    /// Document this one replaces.
    pub supersedes: Option<String>,
    /// `current` or `superseded`.
    pub status: String,
    /// Node where it was received.
    pub source_region: String,
    /// Hybrid-logical-clock time.
    pub hlc: String,
    /// Stored at.
    pub created_at: NaiveDateTime,
    /// CDA id (`root|extension`).
    pub cda_id: Option<String>,
    /// CDA setId (`root|extension`).
    pub set_id: Option<String>,
    /// CDA versionNumber.
    pub version_number: Option<i64>,
    /// Code system of the type code.
    pub type_system: Option<String>,
    /// `emr` or `ehr`.
    pub kind: String,
    /// Where the original bytes can be fetched when this node keeps only the
    /// index (federated retrieval); `None` when the bytes are stored here.
    #[serde(default)]
    pub holder_region: Option<String>,
}

/// Filters of a person's document list.
#[derive(Clone, Debug, Default)]
pub struct DocumentQuery {
    /// Only this type code.
    pub type_code: Option<String>,
    /// Effective at or after.
    pub from: Option<NaiveDateTime>,
    /// Effective before.
    pub to: Option<NaiveDateTime>,
    /// Authored by this facility.
    pub facility: Option<String>,
    /// Include superseded versions.
    pub include_superseded: bool,
    /// At most this many.
    pub limit: i64,
}

/// A medication to store.
#[derive(Clone, Debug, Default)]
pub struct NewMedication {
    /// The patient.
    pub person_id: String,
    /// Encounter.
    pub encounter_id: Option<String>,
    /// The document it was extracted from.
    pub document_id: Option<String>,
    /// Code system of the drug code.
    pub code_system: Option<String>,
    /// Drug code.
    pub code: Option<String>,
    /// Drug name.
    pub name: String,
    /// Dose amount.
    pub dose: Option<String>,
    /// Dose unit.
    pub dose_unit: Option<String>,
    /// Route code or name.
    pub route: Option<String>,
    /// Start.
    pub started_at: Option<NaiveDateTime>,
    /// End.
    pub ended_at: Option<NaiveDateTime>,
}

/// A stored medication.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = medications)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MedicationRecord {
    /// Id.
    pub id: String,
    /// The patient.
    pub person_id: String,
    /// Encounter.
    pub encounter_id: Option<String>,
    /// Source document.
    pub document_id: Option<String>,
    /// Code system.
    pub code_system: Option<String>,
    /// Code.
    pub code: Option<String>,
    /// Name.
    pub name: String,
    /// Dose amount.
    pub dose: Option<String>,
    /// Dose unit.
    pub dose_unit: Option<String>,
    /// Route.
    pub route: Option<String>,
    /// Start.
    pub started_at: Option<NaiveDateTime>,
    /// End.
    pub ended_at: Option<NaiveDateTime>,
    /// Node where it was recorded.
    pub source_region: String,
    /// Hybrid-logical-clock time.
    pub hlc: String,
    /// Stored at.
    pub created_at: NaiveDateTime,
}

impl Tx<'_> {
    /// Stores a document with its bytes and SHA-256, and records the change.
    /// A second document with the same CDA id is refused with a conflict.
    pub fn insert_document(&mut self, new: &NewDocument) -> Result<DocumentIndexRecord, StoreError> {
        let record = DocumentIndexRecord {
            id: rhip_core::new_id().to_string(),
            person_id: new.person_id.clone(),
            encounter_id: new.encounter_id.clone(),
            type_code: new.type_code.clone(),
            title: new.title.clone(),
            effective_at: new.effective_at,
            author_facility: new.author_facility.clone(),
            custodian: new.custodian.clone(),
            confidentiality: new.confidentiality.clone(),
            content_type: new.content_type.clone(),
            sha256: hex::encode(Sha256::digest(&new.content)),
            size_bytes: i64::try_from(new.content.len()).unwrap_or(i64::MAX),
            supersedes: new.supersedes.clone(),
            status: "current".into(),
            source_region: self.node_region().as_str().to_string(),
            hlc: self.tick().encode(),
            created_at: crate::now(),
            cda_id: new.cda_id.clone(),
            set_id: new.set_id.clone(),
            version_number: new.version_number,
            type_system: new.type_system.clone(),
            kind: if new.kind.is_empty() { "emr".into() } else { new.kind.clone() },
            holder_region: None,
        };
        let sealed = self.crypt().seal_bytes(crate::crypt::DOCUMENT_CONTENT, &new.content)?;
        diesel::insert_into(documents::table)
            .values((
                documents::id.eq(&record.id),
                documents::person_id.eq(&record.person_id),
                documents::encounter_id.eq(&record.encounter_id),
                documents::type_code.eq(&record.type_code),
                documents::title.eq(&record.title),
                documents::effective_at.eq(record.effective_at),
                documents::author_facility.eq(&record.author_facility),
                documents::custodian.eq(&record.custodian),
                documents::confidentiality.eq(&record.confidentiality),
                documents::content_type.eq(&record.content_type),
                documents::sha256.eq(&record.sha256),
                documents::size_bytes.eq(record.size_bytes),
                documents::content.eq(&sealed),
                documents::supersedes.eq(&record.supersedes),
                documents::status.eq(&record.status),
                documents::source_region.eq(&record.source_region),
                documents::hlc.eq(&record.hlc),
                documents::created_at.eq(record.created_at),
                documents::cda_id.eq(&record.cda_id),
                documents::set_id.eq(&record.set_id),
                documents::version_number.eq(record.version_number),
                documents::type_system.eq(&record.type_system),
                documents::kind.eq(&record.kind),
            ))
            .run(self.conn)?;
        if let Some(person) = &record.person_id {
            let home = self.home_region_of(person)?;
            let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.record_change("document", &record.id, "create", Some((person, &home)), &record.hlc, &payload)?;
        }
        Ok(record)
    }

    /// The document with this CDA id (`root|extension`), if stored.
    pub fn document_by_cda_id(&mut self, cda_id: &str) -> Result<Option<DocumentIndexRecord>, StoreError> {
        Ok(documents::table
            .filter(documents::cda_id.eq(cda_id))
            .select(DocumentIndexRecord::as_select())
            .get_result(self.conn)
            .optional()?)
    }

    /// Marks a document as replaced by a newer version; its bytes and index
    /// entry stay, its extracted entries give way to the new version's.
    pub fn supersede_document(&mut self, old_id: &str, new_id: &str) -> Result<(), StoreError> {
        let hlc = self.tick().encode();
        self.supersede_rows(old_id, new_id, &hlc)?;
        let person: Option<Option<String>> =
            documents::table.find(old_id).select(documents::person_id).fetch_one(self.conn).optional()?;
        if let Some(Some(person)) = person {
            let home = self.home_region_of(&person)?;
            let payload = serde_json::json!({ "id": old_id, "superseded_by": new_id });
            self.record_change("document", old_id, "supersede", Some((&person, &home)), &hlc, &payload)?;
        }
        Ok(())
    }

    /// The rows of a supersession without its change-log row: shared by one
    /// made here and one applied from another node (with that node's HLC).
    pub(crate) fn supersede_rows(&mut self, old_id: &str, new_id: &str, hlc: &str) -> Result<(), StoreError> {
        diesel::update(documents::table.find(old_id))
            .set((documents::status.eq("superseded"), documents::hlc.eq(hlc)))
            .run(self.conn)?;
        diesel::delete(diagnoses::table.filter(diagnoses::document_id.eq(old_id))).run(self.conn)?;
        diesel::delete(observations::table.filter(observations::document_id.eq(old_id))).run(self.conn)?;
        diesel::delete(medications::table.filter(medications::document_id.eq(old_id))).run(self.conn)?;
        // The EHR index points at the current version.
        diesel::update(ehr_entries::table.filter(ehr_entries::document_id.eq(old_id)))
            .set(ehr_entries::document_id.eq(new_id))
            .run(self.conn)?;
        Ok(())
    }

    /// One document's index entry, if the caller's scope covers its patient.
    pub fn get_document(&mut self, scope: &Scope, id: &str) -> Result<Access<DocumentIndexRecord>, StoreError> {
        let record: Option<DocumentIndexRecord> =
            documents::table.find(id).select(DocumentIndexRecord::as_select()).get_result(self.conn).optional()?;
        let Some(record) = record else { return Ok(Access::NotFound) };
        let visible = match (&record.person_id, scope) {
            (_, Scope::Node) => true,
            (Some(person), scope) => {
                let home = self.home_region_of(person)?;
                self.person_in_scope(scope, person, &home)?
            }
            (None, _) => false,
        };
        Ok(if visible { Access::Granted(record) } else { Access::OutOfScope })
    }

    /// The original bytes of a document (call after [`Tx::get_document`] granted it).
    /// A document indexed from another node without its bytes answers
    /// [`StoreError::NotFound`] naming the region that holds them.
    pub fn document_content(&mut self, id: &str) -> Result<Vec<u8>, StoreError> {
        let (content, holder): (Option<Vec<u8>>, Option<String>) =
            documents::table.find(id).select((documents::content, documents::holder_region)).fetch_one(self.conn)?;
        let content = content.ok_or_else(|| {
            StoreError::NotFound(format!(
                "the content of document {id} is not kept here; it is held at {}",
                holder.as_deref().unwrap_or("another node")
            ))
        })?;
        self.crypt().open_bytes(crate::crypt::DOCUMENT_CONTENT, &content)
    }

    /// A person's document index entries, newest first.
    pub fn documents_for(&mut self, person_id: &str, limit: i64) -> Result<Vec<DocumentIndexRecord>, StoreError> {
        self.find_documents(person_id, &DocumentQuery { limit, ..DocumentQuery::default() })
    }

    /// A person's document index entries matching `query`, newest first.
    pub fn find_documents(
        &mut self,
        person_id: &str,
        query: &DocumentQuery,
    ) -> Result<Vec<DocumentIndexRecord>, StoreError> {
        let mut select = documents::table.filter(documents::person_id.eq(person_id.to_string())).into_boxed();
        if !query.include_superseded {
            select = select.filter(documents::status.eq("current"));
        }
        if let Some(type_code) = &query.type_code {
            select = select.filter(documents::type_code.eq(type_code.clone()));
        }
        if let Some(from) = query.from {
            select = select.filter(documents::effective_at.ge(from));
        }
        if let Some(to) = query.to {
            select = select.filter(documents::effective_at.lt(to));
        }
        if let Some(facility) = &query.facility {
            select = select.filter(documents::author_facility.eq(facility.clone()));
        }
        Ok(select
            .order((documents::effective_at.desc(), documents::id.desc()))
            .limit(query.limit.clamp(1, 10_000))
            .select(DocumentIndexRecord::as_select())
            .load(self.conn)?)
    }

    /// Stores a medication and records the change.
    pub fn insert_medication(&mut self, new: &NewMedication) -> Result<MedicationRecord, StoreError> {
        let record = MedicationRecord {
            id: rhip_core::new_id().to_string(),
            person_id: new.person_id.clone(),
            encounter_id: new.encounter_id.clone(),
            document_id: new.document_id.clone(),
            code_system: new.code_system.clone(),
            code: new.code.clone(),
            name: new.name.clone(),
            dose: new.dose.clone(),
            dose_unit: new.dose_unit.clone(),
            route: new.route.clone(),
            started_at: new.started_at,
            ended_at: new.ended_at,
            source_region: self.node_region().as_str().to_string(),
            hlc: self.tick().encode(),
            created_at: crate::now(),
        };
        diesel::insert_into(medications::table).values(&record).run(self.conn)?;
        let home = self.home_region_of(&record.person_id)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change(
            "medication",
            &record.id,
            "create",
            Some((&record.person_id, &home)),
            &record.hlc,
            &payload,
        )?;
        Ok(record)
    }

    /// A person's medications, newest first.
    pub fn medications_for(&mut self, person_id: &str) -> Result<Vec<MedicationRecord>, StoreError> {
        Ok(medications::table
            .filter(medications::person_id.eq(person_id))
            .order((medications::started_at.desc(), medications::id.desc()))
            .select(MedicationRecord::as_select())
            .load(self.conn)?)
    }
}
