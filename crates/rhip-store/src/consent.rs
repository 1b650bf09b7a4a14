//! Residents' consent as stored: the restrictions per category, every id the
//! person is known by, and the sensitive items of a person's record that the
//! restrictions apply to (the rule itself is [`rhip_core::consent_verdict`]).
//!
//! A consent is recorded at the home county node and sent to every node as a
//! `consent` change; a node applies the newest by hybrid logical clock. When
//! the home node later links another node's id to the person, it sends the
//! consent again with that id among its subjects, so a node that knows the
//! person only by its own id still finds it.

use crate::conn::Direct;
use crate::schema::{consent_subjects, diagnoses, documents, encounters, person_aliases, person_consents, persons};
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rhip_core::{ConsentCategory, Restrictions};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A resident's consent: the payload of a `consent` change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    /// The home node's EMPI id of the person.
    pub person_id: String,
    /// The person's home region.
    pub home_region: String,
    /// Every id the person is known by (the home id first).
    pub subjects: Vec<String>,
    /// Restrictions by category name; a category this version does not know
    /// is kept and passed on, not enforced.
    pub rules: BTreeMap<String, Restrictions>,
    /// Hybrid logical clock of the decision; the newest wins.
    pub hlc: String,
    /// Region of the node where the resident decided.
    pub origin_region: String,
    /// When the resident decided.
    pub updated_at: NaiveDateTime,
}

impl ConsentRecord {
    /// The known categories with something restricted.
    pub fn restrictions(&self) -> BTreeMap<ConsentCategory, Restrictions> {
        known_restrictions(&self.rules)
    }
}

/// The categories of `rules` this version knows, with something restricted.
fn known_restrictions(rules: &BTreeMap<String, Restrictions>) -> BTreeMap<ConsentCategory, Restrictions> {
    rules
        .iter()
        .filter(|(_, rule)| rule.any())
        .filter_map(|(name, rule)| Some((ConsentCategory::parse(name).ok()?, *rule)))
        .collect()
}

/// A diagnosis in a sensitive category and what is attached to it: the
/// encounter it was made in and the documents of that encounter or that
/// carried it. Consent withholds all of it together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensitiveItem {
    /// The category of the diagnosis.
    pub category: ConsentCategory,
    /// The diagnosis.
    pub diagnosis_id: String,
    /// Its encounter, if any.
    pub encounter_id: Option<String>,
    /// Documents of the encounter, and the one that carried the diagnosis.
    pub document_ids: Vec<String>,
    /// The facility that recorded it (the encounter's, else the document's author).
    pub recorded_by: Option<String>,
}

/// A diagnosis as classification needs it: id, encounter, code system,
/// code, document.
type DiagnosisLink = (String, Option<String>, String, String, Option<String>);

#[derive(Queryable)]
struct ConsentRow {
    person_id: String,
    home_region: String,
    rules: String,
    hlc: String,
    origin_region: String,
    updated_at: NaiveDateTime,
}

impl Tx<'_> {
    /// Every id `person` is known by here: itself, the ids of other nodes
    /// linked to it, and the persons merged into it.
    fn ids_of(&mut self, person: &str) -> Result<Vec<String>, StoreError> {
        let mut ids = vec![person.to_string()];
        ids.extend(
            person_aliases::table
                .filter(person_aliases::local_id.eq(person))
                .select(person_aliases::remote_id)
                .fetch_all::<String>(self.conn)?,
        );
        ids.extend(
            persons::table
                .filter(persons::merged_into.eq(person))
                .select(persons::id)
                .fetch_all::<String>(self.conn)?,
        );
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn consents_by_subject(&mut self, ids: &[String]) -> Result<Vec<ConsentRecord>, StoreError> {
        let homes: Vec<String> = consent_subjects::table
            .filter(consent_subjects::subject_id.eq_any(ids))
            .select(consent_subjects::person_id)
            .distinct()
            .fetch_all(self.conn)?;
        if homes.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ConsentRow> = person_consents::table
            .filter(person_consents::person_id.eq_any(&homes))
            .order(person_consents::person_id.asc())
            .fetch_all(self.conn)?;
        rows.into_iter().map(|row| self.consent_from_row(row)).collect()
    }

    fn consent_from_row(&mut self, row: ConsentRow) -> Result<ConsentRecord, StoreError> {
        let rules = serde_json::from_str(&row.rules)
            .map_err(|e| StoreError::Corrupt(format!("consent of {}: {e}", row.person_id)))?;
        let mut subjects: Vec<String> = consent_subjects::table
            .filter(consent_subjects::person_id.eq(&row.person_id))
            .select(consent_subjects::subject_id)
            .fetch_all(self.conn)?;
        subjects.sort_by_key(|subject| (*subject != row.person_id, subject.clone()));
        Ok(ConsentRecord {
            person_id: row.person_id,
            home_region: row.home_region,
            subjects,
            rules,
            hlc: row.hlc,
            origin_region: row.origin_region,
            updated_at: row.updated_at,
        })
    }

    /// The consent recorded for a person (found by any id they are known by
    /// here), the one recorded under their own id first.
    pub fn consent_of(&mut self, person: &str) -> Result<Option<ConsentRecord>, StoreError> {
        let ids = self.ids_of(person)?;
        let mut found = self.consents_by_subject(&ids)?;
        found.sort_by_key(|consent| consent.person_id != person);
        Ok(found.into_iter().next())
    }

    /// What a person restricts, per category: every consent recorded under
    /// any of their ids, together.
    pub fn restrictions_for(&mut self, person: &str) -> Result<BTreeMap<ConsentCategory, Restrictions>, StoreError> {
        let ids = self.ids_of(person)?;
        let mut together: BTreeMap<ConsentCategory, Restrictions> = BTreeMap::new();
        for consent in self.consents_by_subject(&ids)? {
            for (category, rule) in consent.restrictions() {
                let entry = together.entry(category).or_default();
                *entry = entry.union(rule);
            }
        }
        Ok(together)
    }

    /// Of `persons`, those with a category kept from leaving the home county,
    /// with those categories: the batch cutter asks once per batch.
    pub fn kept_home(&mut self, persons: &[String]) -> Result<HashMap<String, BTreeSet<ConsentCategory>>, StoreError> {
        self.restricted_among(persons, |rule| rule.leave_home)
    }

    /// Of `persons` (ids of this node), those with a category restricted in
    /// a way `counts` accepts, with those categories: one query for a page.
    pub fn restricted_among(
        &mut self,
        persons: &[String],
        counts: impl Fn(&Restrictions) -> bool,
    ) -> Result<HashMap<String, BTreeSet<ConsentCategory>>, StoreError> {
        // One query: each subject with the rules of the consent it belongs to.
        let rows: Vec<(String, String, String)> = consent_subjects::table
            .inner_join(person_consents::table.on(person_consents::person_id.eq(consent_subjects::person_id)))
            .filter(consent_subjects::subject_id.eq_any(persons))
            .select((consent_subjects::subject_id, person_consents::person_id, person_consents::rules))
            .fetch_all(self.conn)?;
        let mut kept: HashMap<String, BTreeSet<ConsentCategory>> = HashMap::new();
        for (subject, home_id, rules) in rows {
            let rules: BTreeMap<String, Restrictions> =
                serde_json::from_str(&rules).map_err(|e| StoreError::Corrupt(format!("consent of {home_id}: {e}")))?;
            let categories: BTreeSet<ConsentCategory> =
                known_restrictions(&rules).into_iter().filter(|(_, rule)| counts(rule)).map(|(c, _)| c).collect();
            if !categories.is_empty() {
                kept.entry(subject).or_default().extend(categories);
            }
        }
        Ok(kept)
    }

    /// Of `changes` (about to be sent up from the person's home county node),
    /// the sequence numbers of those a resident keeps at home: clinical
    /// records (EMR and EHR) in a category restricted `leave_home`, and what
    /// is attached to them. `is_home` tells whether this node is a home
    /// region's county node; elsewhere nothing is held back here (the
    /// records are on their way home, and are withheld on read).
    pub fn kept_at_home(
        &mut self,
        changes: &[crate::ChangeRecord],
        is_home: impl Fn(&str) -> bool,
    ) -> Result<HashSet<i64>, StoreError> {
        const CLINICAL: [&str; 6] = ["encounter", "diagnosis", "document", "ehr_entry", "observation", "medication"];
        let mut persons: Vec<String> = changes
            .iter()
            .filter(|c| CLINICAL.contains(&c.entity.as_str()))
            .filter(|c| c.home_region.as_deref().is_some_and(&is_home))
            .filter_map(|c| c.person_id.clone())
            .collect();
        persons.sort();
        persons.dedup();
        if persons.is_empty() {
            return Ok(HashSet::new());
        }
        let kept = self.kept_home(&persons)?;
        let mut withheld_ids: HashSet<String> = HashSet::new();
        for (person, categories) in &kept {
            for item in self.sensitive_items(person)? {
                if categories.contains(&item.category) {
                    withheld_ids.insert(item.diagnosis_id);
                    withheld_ids.extend(item.encounter_id);
                    withheld_ids.extend(item.document_ids);
                }
            }
        }
        let linked = |change: &crate::ChangeRecord, key: &str| {
            serde_json::from_str::<serde_json::Value>(&change.payload)
                .ok()
                .and_then(|payload| payload.get(key).and_then(|v| v.as_str()).map(str::to_string))
                .is_some_and(|id| withheld_ids.contains(&id))
        };
        Ok(changes
            .iter()
            .filter(|c| CLINICAL.contains(&c.entity.as_str()))
            .filter(|c| c.person_id.as_ref().is_some_and(|p| kept.contains_key(p)))
            .filter(|c| withheld_ids.contains(&c.entity_id) || linked(c, "encounter_id") || linked(c, "document_id"))
            .map(|c| c.seq)
            .collect())
    }

    /// Records a resident's decision at their home node and sends it to
    /// every node. `rules` replaces what was there.
    pub fn set_consent(
        &mut self,
        person: &str,
        rules: BTreeMap<String, Restrictions>,
    ) -> Result<ConsentRecord, StoreError> {
        let home_region: String = persons::table
            .find(person)
            .select(persons::home_region)
            .first(self.conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("person {person}")))?;
        let record = ConsentRecord {
            person_id: person.to_string(),
            home_region,
            subjects: self.ids_of(person)?,
            rules,
            hlc: self.tick().encode(),
            origin_region: self.node_region().as_str().to_string(),
            updated_at: crate::now(),
        };
        self.store_consent(&record)?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("consent", person, "set", Some((person, &record.home_region)), &record.hlc, &payload)?;
        Ok(record)
    }

    /// Sends this node's consent of `person` again, with the ids the person
    /// is known by now (after another node's id was linked to them).
    pub(crate) fn republish_consent(&mut self, person: &str) -> Result<(), StoreError> {
        let row = person_consents::table.find(person).first::<ConsentRow>(self.conn).optional()?;
        match row {
            Some(row) if row.origin_region == self.node_region().as_str() => {
                let consent = self.consent_from_row(row)?;
                self.set_consent(person, consent.rules).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Applies a consent received from a peer unless a newer one is held.
    pub(crate) fn apply_consent(&mut self, record: &ConsentRecord) -> Result<(), StoreError> {
        let held: Option<String> =
            person_consents::table.find(&record.person_id).select(person_consents::hlc).first(self.conn).optional()?;
        if held.is_some_and(|held| !crate::federation::newer(&record.hlc, &held)) {
            return Ok(());
        }
        self.store_consent(record)
    }

    fn store_consent(&mut self, record: &ConsentRecord) -> Result<(), StoreError> {
        let rules = serde_json::to_string(&record.rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        diesel::delete(person_consents::table.find(&record.person_id)).run(self.conn)?;
        diesel::insert_into(person_consents::table)
            .values((
                person_consents::person_id.eq(&record.person_id),
                person_consents::home_region.eq(&record.home_region),
                person_consents::rules.eq(rules),
                person_consents::hlc.eq(&record.hlc),
                person_consents::origin_region.eq(&record.origin_region),
                person_consents::updated_at.eq(record.updated_at),
            ))
            .run(self.conn)?;
        let mut subjects: BTreeSet<&str> = record.subjects.iter().map(String::as_str).collect();
        subjects.insert(&record.person_id);
        for subject in subjects {
            // A subject belongs to one consent; the latest statement about it wins.
            diesel::delete(consent_subjects::table.find(subject)).run(self.conn)?;
            diesel::insert_into(consent_subjects::table)
                .values((consent_subjects::subject_id.eq(subject), consent_subjects::person_id.eq(&record.person_id)))
                .run(self.conn)?;
        }
        Ok(())
    }

    /// The diagnoses of `person` in a sensitive category, each with the
    /// encounter and documents that go with it.
    pub fn sensitive_items(&mut self, person: &str) -> Result<Vec<SensitiveItem>, StoreError> {
        let rows: Vec<DiagnosisLink> = diagnoses::table
            .filter(diagnoses::person_id.eq(person))
            .select((
                diagnoses::id,
                diagnoses::encounter_id,
                diagnoses::code_system,
                diagnoses::code,
                diagnoses::document_id,
            ))
            .fetch_all(self.conn)?;
        let sensitive: Vec<_> = rows
            .into_iter()
            .filter_map(|(id, encounter, system, code, document)| {
                Some((ConsentCategory::of_diagnosis(&system, &code)?, id, encounter, document))
            })
            .collect();
        if sensitive.is_empty() {
            return Ok(Vec::new());
        }
        let encounter_ids: HashSet<String> = sensitive.iter().filter_map(|(_, _, e, _)| e.clone()).collect();
        let facilities: HashMap<String, String> = encounters::table
            .filter(encounters::id.eq_any(&encounter_ids))
            .select((encounters::id, encounters::facility_code))
            .load::<(String, String)>(self.conn)?
            .into_iter()
            .collect();
        let carried: HashSet<String> = sensitive.iter().filter_map(|(_, _, _, d)| d.clone()).collect();
        let docs: Vec<(String, Option<String>, Option<String>)> = documents::table
            .filter(documents::encounter_id.eq_any(&encounter_ids).or(documents::id.eq_any(&carried)))
            .select((documents::id, documents::encounter_id, documents::author_facility))
            .fetch_all(self.conn)?;
        Ok(sensitive
            .into_iter()
            .map(|(category, diagnosis_id, encounter_id, document_id)| {
                let document_ids: Vec<String> = docs
                    .iter()
                    .filter(|(id, encounter, _)| {
                        (encounter.is_some() && *encounter == encounter_id) || Some(id) == document_id.as_ref()
                    })
                    .map(|(id, _, _)| id.clone())
                    .collect();
                let recorded_by = encounter_id.as_ref().and_then(|e| facilities.get(e).cloned()).or_else(|| {
                    docs.iter().find(|(id, _, _)| Some(id) == document_id.as_ref()).and_then(|(_, _, f)| f.clone())
                });
                SensitiveItem { category, diagnosis_id, encounter_id, document_ids, recorded_by }
            })
            .collect())
    }
}
