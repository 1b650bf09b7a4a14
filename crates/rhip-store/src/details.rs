//! DID details of a person that hospitals send beside the demographics:
//! allergies (HL7 AL1), contacts (NK1), insurance (IN1) and primary care
//! (PD1).
//!
//! Each kind has a unique key per person (allergen code; contact name and
//! relationship; plan and member number), so a resent or repeated segment
//! updates its row instead of adding one. Writes find the row by that key and
//! insert or update; an insert that a concurrent writer beat to the key is
//! refused by the unique key (in a savepoint on PostgreSQL) and becomes an
//! update. Every write that changes something appends its change-log row;
//! one that changes nothing writes nothing.

use crate::conn::Direct;
use crate::schema::{
    allergies, encounters, person_contacts, person_coverages, person_identifiers, persons, submissions,
};
use crate::{DemographicsChange, Scope, StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    /// A new row.
    Created,
    /// The existing row was changed.
    Updated,
    /// The row already said this; nothing was written.
    Unchanged,
}

/// An allergy to record for a person.
#[derive(Clone, Debug)]
pub struct NewAllergy {
    /// The person.
    pub person_id: String,
    /// Allergen code (HL7 AL1-3.1); when empty, the allergen's text is the key.
    pub code: String,
    /// Coding system of the code (AL1-3.3).
    pub code_system: Option<String>,
    /// Allergen text.
    pub display: Option<String>,
    /// Severity (HL7 table 0128 code, or text).
    pub severity: Option<String>,
    /// Reaction.
    pub reaction: Option<String>,
    /// Facility that reported it.
    pub facility_code: String,
    /// The submission that brought it.
    pub submission_id: Option<String>,
    /// When it was reported (the message's event time).
    pub recorded_at: NaiveDateTime,
}

/// A stored allergy.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = allergies)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AllergyRecord {
    /// Row id.
    pub id: String,
    /// The person.
    pub person_id: String,
    /// Allergen code, or its text when the sender gave no code.
    pub code: String,
    /// Coding system.
    pub code_system: Option<String>,
    /// Allergen text.
    pub display: Option<String>,
    /// Severity.
    pub severity: Option<String>,
    /// Reaction.
    pub reaction: Option<String>,
    /// Facility that reported it last.
    pub facility_code: String,
    /// The submission that reported it last.
    pub submission_id: Option<String>,
    /// When it was reported last.
    pub recorded_at: NaiveDateTime,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First stored.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A contact person to record (HL7 NK1).
#[derive(Clone, Debug)]
pub struct NewContact {
    /// The person the contact is for.
    pub person_id: String,
    /// The contact's name.
    pub name: String,
    /// Relationship (GB/T 4761 or HL7 table 0063 code, or text).
    pub relationship: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Facility that reported it.
    pub facility_code: String,
    /// The submission that brought it.
    pub submission_id: Option<String>,
}

/// A stored contact, opened (its row holds the name and phone sealed, so it
/// is written only by `Tx::insert_contact_row`, never inserted as is).
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = person_contacts)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ContactRecord {
    /// Row id.
    pub id: String,
    /// The person the contact is for.
    pub person_id: String,
    /// The contact's name.
    pub name: String,
    /// Relationship; empty when the sender gave none.
    pub relationship: String,
    /// Phone.
    pub phone: Option<String>,
    /// Facility that reported it last.
    pub facility_code: String,
    /// The submission that reported it last.
    pub submission_id: Option<String>,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First stored.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// An insurance to record (HL7 IN1).
#[derive(Clone, Debug)]
pub struct NewCoverage {
    /// The insured person.
    pub person_id: String,
    /// Plan id.
    pub plan: Option<String>,
    /// Insurer (name, else id).
    pub company: Option<String>,
    /// Policy or member number.
    pub member_id: Option<String>,
    /// Facility that reported it.
    pub facility_code: String,
    /// The submission that brought it.
    pub submission_id: Option<String>,
}

/// A stored insurance.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = person_coverages)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct CoverageRecord {
    /// Row id.
    pub id: String,
    /// The insured person.
    pub person_id: String,
    /// Plan id; empty when the sender gave none.
    pub plan: String,
    /// Insurer.
    pub company: Option<String>,
    /// Policy or member number; empty when the sender gave none.
    pub member_id: String,
    /// Facility that reported it last.
    pub facility_code: String,
    /// The submission that reported it last.
    pub submission_id: Option<String>,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First stored.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A person's primary care as a submission states it (HL7 PD1-3, PD1-4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrimaryCare {
    /// Primary care facility.
    pub facility: Option<String>,
    /// Primary care provider.
    pub provider: Option<String>,
}

fn payload(record: &impl Serialize) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Tx<'_> {
    /// Records an allergy of a person: inserts it, or updates the row with the
    /// same allergen code (what was sent replaces what was stored; what was
    /// not sent is kept). An allergy with neither code nor text is ignored.
    pub fn upsert_allergy(&mut self, new: &NewAllergy) -> Result<Upserted, StoreError> {
        let key = if new.code.is_empty() { new.display.clone().unwrap_or_default() } else { new.code.clone() };
        if key.is_empty() {
            return Ok(Upserted::Unchanged);
        }
        let find = |tx: &mut Tx<'_>| -> Result<Option<AllergyRecord>, StoreError> {
            Ok(allergies::table
                .filter(allergies::person_id.eq(&new.person_id))
                .filter(allergies::code.eq(&key))
                .select(AllergyRecord::as_select())
                .get_result(tx.conn)
                .optional()?)
        };
        let current = match find(self)? {
            Some(current) => current,
            None => {
                let now = crate::now();
                let record = AllergyRecord {
                    id: rhip_core::new_id().to_string(),
                    person_id: new.person_id.clone(),
                    code: key.clone(),
                    code_system: new.code_system.clone(),
                    display: new.display.clone(),
                    severity: new.severity.clone(),
                    reaction: new.reaction.clone(),
                    facility_code: new.facility_code.clone(),
                    submission_id: new.submission_id.clone(),
                    recorded_at: new.recorded_at,
                    hlc: self.tick().encode(),
                    created_at: now,
                    updated_at: now,
                };
                let inserted = self.guarded(|tx| {
                    diesel::insert_into(allergies::table).values(&record).execute(tx.conn)?;
                    Ok(())
                });
                match inserted {
                    Ok(()) => {
                        self.record_detail_change(
                            "allergy",
                            &record.id,
                            "create",
                            &record.person_id,
                            &record.hlc,
                            &record,
                        )?;
                        return Ok(Upserted::Created);
                    }
                    // A concurrent submission recorded it first: update that row.
                    Err(StoreError::Conflict(_)) => {
                        find(self)?.ok_or_else(|| StoreError::NotFound(format!("allergy {key}")))?
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        let code_system = new.code_system.clone().or_else(|| current.code_system.clone());
        let display = new.display.clone().or_else(|| current.display.clone());
        let severity = new.severity.clone().or_else(|| current.severity.clone());
        let reaction = new.reaction.clone().or_else(|| current.reaction.clone());
        if code_system == current.code_system
            && display == current.display
            && severity == current.severity
            && reaction == current.reaction
        {
            return Ok(Upserted::Unchanged);
        }
        let record = AllergyRecord {
            code_system,
            display,
            severity,
            reaction,
            facility_code: new.facility_code.clone(),
            submission_id: new.submission_id.clone().or(current.submission_id.clone()),
            recorded_at: new.recorded_at,
            hlc: self.tick().encode(),
            updated_at: crate::now(),
            ..current
        };
        diesel::update(allergies::table.find(&record.id))
            .set((
                allergies::code_system.eq(&record.code_system),
                allergies::display.eq(&record.display),
                allergies::severity.eq(&record.severity),
                allergies::reaction.eq(&record.reaction),
                allergies::facility_code.eq(&record.facility_code),
                allergies::submission_id.eq(&record.submission_id),
                allergies::recorded_at.eq(record.recorded_at),
                allergies::hlc.eq(&record.hlc),
                allergies::updated_at.eq(record.updated_at),
            ))
            .run(self.conn)?;
        self.record_detail_change("allergy", &record.id, "update", &record.person_id, &record.hlc, &record)?;
        Ok(Upserted::Updated)
    }

    /// Records a contact of a person: inserts it, or updates the phone of the
    /// row with the same name and relationship.
    pub fn upsert_contact(&mut self, new: &NewContact) -> Result<Upserted, StoreError> {
        let relationship = new.relationship.clone().unwrap_or_default();
        let name_index = self.crypt().contact_name_index(&new.name);
        let find = |tx: &mut Tx<'_>| -> Result<Option<ContactRecord>, StoreError> {
            let found = person_contacts::table
                .filter(person_contacts::person_id.eq(&new.person_id))
                .filter(person_contacts::name_index.eq(&name_index))
                .filter(person_contacts::relationship.eq(&relationship))
                .select(ContactRecord::as_select())
                .get_result(tx.conn)
                .optional()?;
            found.map(|record| tx.open_contact(record)).transpose()
        };
        let current = match find(self)? {
            Some(current) => current,
            None => {
                let now = crate::now();
                let record = ContactRecord {
                    id: rhip_core::new_id().to_string(),
                    person_id: new.person_id.clone(),
                    name: new.name.clone(),
                    relationship: relationship.clone(),
                    phone: new.phone.clone(),
                    facility_code: new.facility_code.clone(),
                    submission_id: new.submission_id.clone(),
                    hlc: self.tick().encode(),
                    created_at: now,
                    updated_at: now,
                };
                let inserted = self.guarded(|tx| tx.insert_contact_row(&record));
                match inserted {
                    Ok(()) => {
                        self.record_detail_change(
                            "person_contact",
                            &record.id,
                            "create",
                            &record.person_id,
                            &record.hlc,
                            &record,
                        )?;
                        return Ok(Upserted::Created);
                    }
                    Err(StoreError::Conflict(_)) => {
                        find(self)?.ok_or_else(|| StoreError::NotFound(format!("contact {}", new.name)))?
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        let phone = new.phone.clone().or_else(|| current.phone.clone());
        if phone == current.phone {
            return Ok(Upserted::Unchanged);
        }
        let record = ContactRecord {
            phone,
            facility_code: new.facility_code.clone(),
            submission_id: new.submission_id.clone().or(current.submission_id.clone()),
            hlc: self.tick().encode(),
            updated_at: crate::now(),
            ..current
        };
        let sealed_phone = self.crypt().seal_opt(crate::crypt::CONTACT_PHONE, record.phone.as_deref())?;
        diesel::update(person_contacts::table.find(&record.id))
            .set((
                person_contacts::phone.eq(&sealed_phone),
                person_contacts::facility_code.eq(&record.facility_code),
                person_contacts::submission_id.eq(&record.submission_id),
                person_contacts::hlc.eq(&record.hlc),
                person_contacts::updated_at.eq(record.updated_at),
            ))
            .run(self.conn)?;
        self.record_detail_change("person_contact", &record.id, "update", &record.person_id, &record.hlc, &record)?;
        Ok(Upserted::Updated)
    }

    /// Records an insurance of a person: inserts it, or updates the insurer of
    /// the row with the same plan and member number.
    pub fn upsert_coverage(&mut self, new: &NewCoverage) -> Result<Upserted, StoreError> {
        let plan = new.plan.clone().unwrap_or_default();
        let member_id = new.member_id.clone().unwrap_or_default();
        let find = |tx: &mut Tx<'_>| -> Result<Option<CoverageRecord>, StoreError> {
            Ok(person_coverages::table
                .filter(person_coverages::person_id.eq(&new.person_id))
                .filter(person_coverages::plan.eq(&plan))
                .filter(person_coverages::member_id.eq(&member_id))
                .select(CoverageRecord::as_select())
                .get_result(tx.conn)
                .optional()?)
        };
        let current = match find(self)? {
            Some(current) => current,
            None => {
                let now = crate::now();
                let record = CoverageRecord {
                    id: rhip_core::new_id().to_string(),
                    person_id: new.person_id.clone(),
                    plan: plan.clone(),
                    company: new.company.clone(),
                    member_id: member_id.clone(),
                    facility_code: new.facility_code.clone(),
                    submission_id: new.submission_id.clone(),
                    hlc: self.tick().encode(),
                    created_at: now,
                    updated_at: now,
                };
                let inserted = self.guarded(|tx| {
                    diesel::insert_into(person_coverages::table).values(&record).execute(tx.conn)?;
                    Ok(())
                });
                match inserted {
                    Ok(()) => {
                        self.record_detail_change(
                            "person_coverage",
                            &record.id,
                            "create",
                            &record.person_id,
                            &record.hlc,
                            &record,
                        )?;
                        return Ok(Upserted::Created);
                    }
                    Err(StoreError::Conflict(_)) => {
                        find(self)?.ok_or_else(|| StoreError::NotFound(format!("coverage {plan}|{member_id}")))?
                    }
                    Err(other) => return Err(other),
                }
            }
        };
        let company = new.company.clone().or_else(|| current.company.clone());
        if company == current.company {
            return Ok(Upserted::Unchanged);
        }
        let record = CoverageRecord {
            company,
            facility_code: new.facility_code.clone(),
            submission_id: new.submission_id.clone().or(current.submission_id.clone()),
            hlc: self.tick().encode(),
            updated_at: crate::now(),
            ..current
        };
        diesel::update(person_coverages::table.find(&record.id))
            .set((
                person_coverages::company.eq(&record.company),
                person_coverages::facility_code.eq(&record.facility_code),
                person_coverages::submission_id.eq(&record.submission_id),
                person_coverages::hlc.eq(&record.hlc),
                person_coverages::updated_at.eq(record.updated_at),
            ))
            .run(self.conn)?;
        self.record_detail_change("person_coverage", &record.id, "update", &record.person_id, &record.hlc, &record)?;
        Ok(Upserted::Updated)
    }

    /// Applies a submission's primary care to a person, like the other
    /// demographics: [`DemographicsChange::FillGaps`] sets only what the
    /// person lacks, [`DemographicsChange::Replace`] replaces with what was
    /// sent (what was not sent is kept). Returns whether the person changed.
    pub fn set_primary_care(
        &mut self,
        person_id: &str,
        care: &PrimaryCare,
        change: DemographicsChange,
    ) -> Result<bool, StoreError> {
        let (facility, provider): (Option<String>, Option<String>) = persons::table
            .find(person_id)
            .select((persons::primary_facility, persons::primary_provider))
            .fetch_one(self.conn)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("person {person_id}")))?;
        let replace = change == DemographicsChange::Replace;
        let pick = |current: Option<String>, sent: &Option<String>| match sent {
            Some(sent) if replace || current.is_none() => Some(sent.clone()),
            _ => current,
        };
        let new_facility = pick(facility.clone(), &care.facility);
        let new_provider = pick(provider.clone(), &care.provider);
        if new_facility == facility && new_provider == provider {
            return Ok(false);
        }
        let hlc = self.tick().encode();
        diesel::update(persons::table.find(person_id))
            .set((
                persons::primary_facility.eq(&new_facility),
                persons::primary_provider.eq(&new_provider),
                persons::hlc.eq(&hlc),
                persons::demographics_hlc.eq(&hlc),
                persons::demographics_origin.eq(self.node_region().as_str()),
                persons::updated_at.eq(crate::now()),
            ))
            .run(self.conn)?;
        let record = self.person_record(person_id)?;
        self.remember_home_region(person_id, &record.home_region);
        self.record_change(
            "person",
            person_id,
            "update",
            Some((person_id, &record.home_region)),
            &hlc,
            &payload(&record)?,
        )?;
        Ok(true)
    }

    /// A person's allergies within `scope` (none when the person lies
    /// outside it), by allergen code.
    pub fn allergies_of(&mut self, scope: &Scope, person_id: &str) -> Result<Vec<AllergyRecord>, StoreError> {
        let visible = self.visible_persons(scope, &[person_id.to_string()])?;
        if visible.is_empty() {
            return Ok(Vec::new());
        }
        Ok(allergies::table
            .filter(allergies::person_id.eq_any(&visible))
            .order((allergies::code.asc(), allergies::id.asc()))
            .select(AllergyRecord::as_select())
            .load(self.conn)?)
    }

    /// The contacts of these persons within `scope`, by person and name.
    pub fn contacts_of(&mut self, scope: &Scope, person_ids: &[String]) -> Result<Vec<ContactRecord>, StoreError> {
        let visible = self.visible_persons(scope, person_ids)?;
        if visible.is_empty() {
            return Ok(Vec::new());
        }
        let sealed: Vec<ContactRecord> = person_contacts::table
            .filter(person_contacts::person_id.eq_any(&visible))
            .order((person_contacts::person_id.asc(), person_contacts::id.asc()))
            .select(ContactRecord::as_select())
            .load(self.conn)?;
        // Names are sealed, so they are put in order once opened.
        let mut contacts = sealed.into_iter().map(|record| self.open_contact(record)).collect::<Result<Vec<_>, _>>()?;
        contacts.sort_by(|a, b| (&a.person_id, &a.name, &a.id).cmp(&(&b.person_id, &b.name, &b.id)));
        Ok(contacts)
    }

    /// Opens a contact's sealed name and phone (just after a read).
    pub(crate) fn open_contact(&self, record: ContactRecord) -> Result<ContactRecord, StoreError> {
        let crypt = self.crypt();
        Ok(ContactRecord {
            name: crypt.open(crate::crypt::CONTACT_NAME, &record.name)?,
            phone: crypt.open_opt(crate::crypt::CONTACT_PHONE, record.phone.as_deref())?,
            ..record
        })
    }

    /// Inserts a contact with its name and phone sealed and the name's blind
    /// index (which, with the person and relationship, is its unique key).
    pub(crate) fn insert_contact_row(&mut self, record: &ContactRecord) -> Result<(), StoreError> {
        let crypt = self.crypt();
        let name = crypt.seal(crate::crypt::CONTACT_NAME, &record.name)?;
        let phone = crypt.seal_opt(crate::crypt::CONTACT_PHONE, record.phone.as_deref())?;
        let name_index = crypt.contact_name_index(&record.name);
        diesel::insert_into(person_contacts::table)
            .values((
                person_contacts::id.eq(&record.id),
                person_contacts::person_id.eq(&record.person_id),
                person_contacts::name.eq(name),
                person_contacts::relationship.eq(&record.relationship),
                person_contacts::phone.eq(phone),
                person_contacts::facility_code.eq(&record.facility_code),
                person_contacts::submission_id.eq(&record.submission_id),
                person_contacts::hlc.eq(&record.hlc),
                person_contacts::created_at.eq(record.created_at),
                person_contacts::updated_at.eq(record.updated_at),
                person_contacts::name_index.eq(name_index),
            ))
            .run(self.conn)?;
        Ok(())
    }

    /// The insurance of these persons within `scope`, by person and plan.
    pub fn coverages_of(&mut self, scope: &Scope, person_ids: &[String]) -> Result<Vec<CoverageRecord>, StoreError> {
        let visible = self.visible_persons(scope, person_ids)?;
        if visible.is_empty() {
            return Ok(Vec::new());
        }
        Ok(person_coverages::table
            .filter(person_coverages::person_id.eq_any(&visible))
            .order((person_coverages::person_id.asc(), person_coverages::plan.asc(), person_coverages::id.asc()))
            .select(CoverageRecord::as_select())
            .load(self.conn)?)
    }

    /// Those of `person_ids` that lie within `scope`, decided in SQL by the
    /// rules of [`Tx::find_persons`] (home region subtree, facility link, self).
    fn visible_persons(&mut self, scope: &Scope, person_ids: &[String]) -> Result<Vec<String>, StoreError> {
        match scope {
            _ if person_ids.is_empty() => Ok(Vec::new()),
            Scope::Node => Ok(person_ids.to_vec()),
            Scope::Person(own) => Ok(person_ids.iter().filter(|id| *id == own).cloned().collect()),
            Scope::Region(region) => Ok(persons::table
                .filter(persons::id.eq_any(person_ids))
                .filter(persons::home_region.like(format!("{}%", region.jurisdiction_prefix())))
                .select(persons::id)
                .fetch_all(self.conn)?),
            Scope::Facility(code) => Ok(persons::table
                .filter(persons::id.eq_any(person_ids))
                .filter(
                    persons::id
                        .eq_any(
                            encounters::table.filter(encounters::facility_code.eq(code)).select(encounters::person_id),
                        )
                        .or(persons::id.eq_any(
                            person_identifiers::table
                                .filter(person_identifiers::system.eq(code))
                                .select(person_identifiers::person_id),
                        ))
                        .or(persons::id.nullable().eq_any(
                            submissions::table
                                .filter(submissions::sending_facility.eq(code))
                                .select(submissions::person_id),
                        )),
                )
                .select(persons::id)
                .fetch_all(self.conn)?),
        }
    }

    /// Appends the change-log row of a detail row of a person.
    fn record_detail_change(
        &mut self,
        entity: &str,
        id: &str,
        op: &str,
        person_id: &str,
        hlc: &str,
        record: &impl Serialize,
    ) -> Result<(), StoreError> {
        let home = self.home_region_of(person_id)?;
        self.record_change(entity, id, op, Some((person_id, &home)), hlc, &payload(record)?)
    }
}
