//! DID repository: persons and their cross-referenced identifiers.
//!
//! Uniqueness (citizen ID; assigning authority + local identifier) is held by
//! unique keys, so concurrent inserts of one person cannot make two. The
//! citizen ID's key is its blind index (`id_number_index`): the name,
//! citizen ID, phone and address line are sealed in the row (`crypt`), and
//! [`PersonRow`] is sealed just before a write and opened just after a read.

use crate::conn::Direct;
use crate::schema::{encounters, person_identifiers, persons, submissions};
use crate::{Access, Scope, StoreError, Tx};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use rhip_core::{Identifier, PersonDemographics, RegionCode};
use serde::{Deserialize, Serialize};

/// A person to add to the DID.
#[derive(Clone, Debug)]
pub struct NewPerson {
    /// Validated demographics.
    pub demographics: PersonDemographics,
    /// Home county (authoritative node for these demographics).
    pub home_region: RegionCode,
    /// True when the person lives elsewhere than the registering node.
    pub non_resident: bool,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = persons)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct PersonRow {
    pub(crate) id: String,
    pub(crate) home_region: String,
    pub(crate) name: String,
    pub(crate) sex: String,
    pub(crate) birth_date: Option<NaiveDate>,
    pub(crate) id_number: Option<String>,
    pub(crate) ethnicity: Option<String>,
    pub(crate) marital_status: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) address_region: Option<String>,
    pub(crate) address_line: Option<String>,
    pub(crate) household_id: Option<String>,
    pub(crate) household_relation: Option<String>,
    pub(crate) non_resident: bool,
    pub(crate) status: String,
    pub(crate) merged_into: Option<String>,
    pub(crate) origin_region: String,
    pub(crate) hlc: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) updated_at: NaiveDateTime,
    pub(crate) primary_facility: Option<String>,
    pub(crate) primary_provider: Option<String>,
    /// HLC of the change that last set the demographics (federation's tie-break).
    pub(crate) demographics_hlc: Option<String>,
    /// Region where that change was made.
    pub(crate) demographics_origin: Option<String>,
    /// Blind index of the citizen ID (unique), set by [`Tx::seal_person_row`].
    pub(crate) id_number_index: Option<String>,
    /// Blind index of normalised name + birth date, set by [`Tx::seal_person_row`].
    pub(crate) name_index: Option<String>,
}

/// The sealed personal fields of a person and their blind indexes, as one
/// changeset: every update of the demographics sets them together, so an
/// index never disagrees with its value.
#[derive(AsChangeset)]
#[diesel(table_name = persons, treat_none_as_null = true)]
pub(crate) struct SealedDemographics {
    name: String,
    id_number: Option<String>,
    phone: Option<String>,
    address_line: Option<String>,
    id_number_index: Option<String>,
    name_index: Option<String>,
}

/// A stored person with their identifiers (also the payload of a person's
/// change, which is why it can be read back from JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    /// EMPI id.
    pub id: String,
    /// Home county code.
    pub home_region: String,
    /// Full name.
    pub name: String,
    /// GB/T 2261.1 code.
    pub sex: String,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// GB 11643 citizen ID.
    pub id_number: Option<String>,
    /// GB 3304 code.
    pub ethnicity: Option<String>,
    /// GB/T 2261.2 code.
    pub marital_status: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// County code of the residential address.
    pub address_region: Option<String>,
    /// Address detail.
    pub address_line: Option<String>,
    /// Household, if known.
    pub household_id: Option<String>,
    /// GB/T 4761 relationship to the head of household.
    pub household_relation: Option<String>,
    /// Lives outside the registering node's region.
    pub non_resident: bool,
    /// `active` or `merged`.
    pub status: String,
    /// Surviving person after a merge.
    pub merged_into: Option<String>,
    /// Node that created the person.
    pub origin_region: String,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First stored.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
    /// Primary care facility (HL7 PD1-3), `name (id)`.
    pub primary_facility: Option<String>,
    /// Primary care provider (HL7 PD1-4), `name (id)`.
    pub primary_provider: Option<String>,
    /// Cross-referenced local identifiers.
    pub identifiers: Vec<Identifier>,
}

impl PersonRecord {
    fn from_row(row: PersonRow, identifiers: Vec<Identifier>) -> PersonRecord {
        PersonRecord {
            id: row.id,
            home_region: row.home_region,
            name: row.name,
            sex: row.sex,
            birth_date: row.birth_date,
            id_number: row.id_number,
            ethnicity: row.ethnicity,
            marital_status: row.marital_status,
            phone: row.phone,
            address_region: row.address_region,
            address_line: row.address_line,
            household_id: row.household_id,
            household_relation: row.household_relation,
            non_resident: row.non_resident,
            status: row.status,
            merged_into: row.merged_into,
            origin_region: row.origin_region,
            hlc: row.hlc,
            created_at: row.created_at,
            updated_at: row.updated_at,
            primary_facility: row.primary_facility,
            primary_provider: row.primary_provider,
            identifiers,
        }
    }
}

/// Search criteria for persons; all given criteria must match.
#[derive(Clone, Debug, Default)]
pub struct PersonQuery {
    /// Exact citizen ID (looked up by its blind index).
    pub id_number: Option<String>,
    /// Full name, compared without whitespace or case; needs `birth_date`,
    /// since names are sealed and found only by the name + birth date blind
    /// index (a name alone is refused with [`StoreError::Config`]).
    pub name: Option<String>,
    /// Exact birth date.
    pub birth_date: Option<NaiveDate>,
    /// A cross-referenced identifier.
    pub identifier: Option<Identifier>,
    /// Home region subtree (a region code; its jurisdiction prefix is used).
    pub home_region: Option<RegionCode>,
    /// Page size.
    pub limit: i64,
    /// Return persons with an id greater than this (keyset paging).
    pub after: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = person_identifiers)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct IdentifierRow {
    person_id: String,
    system: String,
    value: String,
    type_code: Option<String>,
}

impl Tx<'_> {
    /// Adds a person and their identifiers, and records the change.
    pub fn insert_person(&mut self, new: &NewPerson) -> Result<PersonRecord, StoreError> {
        let now = crate::now();
        let hlc = self.tick().encode();
        let d = &new.demographics;
        let row = PersonRow {
            id: rhip_core::new_id().to_string(),
            home_region: new.home_region.as_str().to_string(),
            name: d.name.clone(),
            sex: d.sex.code().to_string(),
            birth_date: d.birth_date,
            id_number: d.id_number.as_ref().map(|id| id.as_str().to_string()),
            ethnicity: d.ethnicity.as_ref().map(|e| e.code().to_string()),
            marital_status: d.marital_status.as_ref().map(|m| m.code().to_string()),
            phone: d.phone.clone(),
            address_region: d.address_region.map(|r| r.as_str().to_string()),
            address_line: d.address_line.clone(),
            household_id: None,
            household_relation: None,
            non_resident: new.non_resident,
            status: "active".into(),
            merged_into: None,
            origin_region: self.node_region().as_str().to_string(),
            hlc: hlc.clone(),
            created_at: now,
            updated_at: now,
            primary_facility: None,
            primary_provider: None,
            demographics_hlc: Some(hlc.clone()),
            demographics_origin: Some(self.node_region().as_str().to_string()),
            id_number_index: None,
            name_index: None,
        };
        let sealed = self.seal_person_row(row.clone())?;
        diesel::insert_into(persons::table).values(&sealed).run(self.conn).map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a person with citizen ID {} already exists",
                d.id_number.as_ref().map(|id| id.masked()).unwrap_or_default()
            )),
            other => other,
        })?;
        for identifier in &d.identifiers {
            diesel::insert_into(person_identifiers::table)
                .values((
                    person_identifiers::id.eq(rhip_core::new_id().to_string()),
                    person_identifiers::person_id.eq(&row.id),
                    person_identifiers::system.eq(&identifier.system),
                    person_identifiers::value.eq(&identifier.value),
                    person_identifiers::type_code.eq(&identifier.type_code),
                    person_identifiers::created_at.eq(now),
                ))
                .run(self.conn)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "identifier {}|{} already belongs to another person",
                        identifier.system, identifier.value
                    )),
                    other => other,
                })?;
        }
        let record = PersonRecord::from_row(row, d.identifiers.clone());
        self.remember_home_region(&record.id, &record.home_region);
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("person", &record.id, "create", Some((&record.id, &record.home_region)), &hlc, &payload)?;
        Ok(record)
    }

    /// Finds persons matching `query` within `scope`, ordered by EMPI id.
    pub fn find_persons(&mut self, scope: &Scope, query: &PersonQuery) -> Result<Vec<PersonRecord>, StoreError> {
        let mut select = persons::table.into_boxed();
        select = match scope {
            Scope::Node => select,
            Scope::Region(region) => {
                select.filter(persons::home_region.like(format!("{}%", region.jurisdiction_prefix())))
            }
            Scope::Person(id) => select.filter(persons::id.eq(id.clone())),
            Scope::Facility(code) => select.filter(
                persons::id
                    .eq_any(
                        encounters::table
                            .filter(encounters::facility_code.eq(code.clone()))
                            .select(encounters::person_id),
                    )
                    .or(persons::id.eq_any(
                        person_identifiers::table
                            .filter(person_identifiers::system.eq(code.clone()))
                            .select(person_identifiers::person_id),
                    ))
                    .or(persons::id.nullable().eq_any(
                        submissions::table
                            .filter(submissions::sending_facility.eq(code.clone()))
                            .select(submissions::person_id),
                    )),
            ),
        };
        if let Some(id_number) = &query.id_number {
            select = select.filter(persons::id_number_index.eq(self.crypt().citizen_id_index(id_number)));
        }
        if let Some(name) = &query.name {
            let index = self.crypt().name_birth_index(name, query.birth_date).ok_or_else(|| {
                StoreError::Config("a search by name needs the birth date too (names are encrypted)".into())
            })?;
            select = select.filter(persons::name_index.eq(index));
        }
        if let Some(birth_date) = query.birth_date {
            select = select.filter(persons::birth_date.eq(birth_date));
        }
        if let Some(region) = &query.home_region {
            select = select.filter(persons::home_region.like(format!("{}%", region.jurisdiction_prefix())));
        }
        if let Some(identifier) = &query.identifier {
            select = select.filter(
                persons::id.eq_any(
                    person_identifiers::table
                        .filter(person_identifiers::system.eq(identifier.system.clone()))
                        .filter(person_identifiers::value.eq(identifier.value.clone()))
                        .select(person_identifiers::person_id),
                ),
            );
        }
        if let Some(after) = &query.after {
            select = select.filter(persons::id.gt(after.clone()));
        }
        let rows: Vec<PersonRow> = select
            .order(persons::id.asc())
            .limit(query.limit.clamp(1, 1000))
            .select(PersonRow::as_select())
            .load(self.conn)?;
        self.attach_identifiers(rows)
    }

    /// Fetches one person, telling apart absent and out of scope.
    pub fn get_person(&mut self, scope: &Scope, id: &str) -> Result<Access<PersonRecord>, StoreError> {
        let row: Option<PersonRow> =
            persons::table.find(id).select(PersonRow::as_select()).get_result(self.conn).optional()?;
        let Some(row) = row else {
            return Ok(Access::NotFound);
        };
        if !self.person_in_scope(scope, &row.id, &row.home_region)? {
            return Ok(Access::OutOfScope);
        }
        let mut records = self.attach_identifiers(vec![row])?;
        Ok(records.pop().map_or(Access::NotFound, Access::Granted))
    }

    /// Whether a person lies within a scope (home region, facility link or self).
    pub fn person_in_scope(&mut self, scope: &Scope, person_id: &str, home_region: &str) -> Result<bool, StoreError> {
        Ok(match scope {
            Scope::Node => true,
            Scope::Person(own) => own == person_id,
            Scope::Region(region) => home_region.starts_with(region.jurisdiction_prefix()),
            Scope::Facility(code) => {
                let encounters_here: i64 = encounters::table
                    .filter(encounters::person_id.eq(person_id))
                    .filter(encounters::facility_code.eq(code))
                    .count()
                    .fetch_one(self.conn)?;
                let identifiers_here: i64 = person_identifiers::table
                    .filter(person_identifiers::person_id.eq(person_id))
                    .filter(person_identifiers::system.eq(code))
                    .count()
                    .fetch_one(self.conn)?;
                let submissions_here: i64 = submissions::table
                    .filter(submissions::person_id.eq(person_id))
                    .filter(submissions::sending_facility.eq(code))
                    .count()
                    .fetch_one(self.conn)?;
                encounters_here + identifiers_here + submissions_here > 0
            }
        })
    }

    fn attach_identifiers(&mut self, rows: Vec<PersonRow>) -> Result<Vec<PersonRecord>, StoreError> {
        let rows = rows.into_iter().map(|row| self.open_person_row(row)).collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let identifier_rows: Vec<IdentifierRow> = if ids.is_empty() {
            Vec::new()
        } else {
            person_identifiers::table
                .filter(person_identifiers::person_id.eq_any(&ids))
                .order((person_identifiers::person_id, person_identifiers::system, person_identifiers::value))
                .select(IdentifierRow::as_select())
                .load(self.conn)?
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let identifiers = identifier_rows
                    .iter()
                    .filter(|i| i.person_id == row.id)
                    .map(|i| Identifier {
                        system: i.system.clone(),
                        value: i.value.clone(),
                        type_code: i.type_code.clone(),
                    })
                    .collect();
                PersonRecord::from_row(row, identifiers)
            })
            .collect())
    }
}

impl Tx<'_> {
    /// Seals a person row's personal fields and sets its blind indexes (just
    /// before an insert).
    pub(crate) fn seal_person_row(&self, row: PersonRow) -> Result<PersonRow, StoreError> {
        let crypt = self.crypt();
        Ok(PersonRow {
            id_number_index: row.id_number.as_deref().map(|id| crypt.citizen_id_index(id)),
            name_index: crypt.name_birth_index(&row.name, row.birth_date),
            name: crypt.seal(crate::crypt::PERSON_NAME, &row.name)?,
            id_number: crypt.seal_opt(crate::crypt::PERSON_ID_NUMBER, row.id_number.as_deref())?,
            phone: crypt.seal_opt(crate::crypt::PERSON_PHONE, row.phone.as_deref())?,
            address_line: crypt.seal_opt(crate::crypt::PERSON_ADDRESS, row.address_line.as_deref())?,
            ..row
        })
    }

    /// Opens a person row's sealed fields (just after a read).
    pub(crate) fn open_person_row(&self, row: PersonRow) -> Result<PersonRow, StoreError> {
        let crypt = self.crypt();
        Ok(PersonRow {
            name: crypt.open(crate::crypt::PERSON_NAME, &row.name)?,
            id_number: crypt.open_opt(crate::crypt::PERSON_ID_NUMBER, row.id_number.as_deref())?,
            phone: crypt.open_opt(crate::crypt::PERSON_PHONE, row.phone.as_deref())?,
            address_line: crypt.open_opt(crate::crypt::PERSON_ADDRESS, row.address_line.as_deref())?,
            ..row
        })
    }

    /// A person's row, opened.
    pub(crate) fn load_person_row(&mut self, id: &str) -> Result<PersonRow, StoreError> {
        let row: PersonRow = persons::table.find(id).select(PersonRow::as_select()).get_result(self.conn)?;
        self.open_person_row(row)
    }

    /// The demographics an update writes, sealed, with their blind indexes.
    pub(crate) fn seal_demographics(
        &self,
        name: &str,
        birth_date: Option<NaiveDate>,
        id_number: Option<&str>,
        phone: Option<&str>,
        address_line: Option<&str>,
    ) -> Result<SealedDemographics, StoreError> {
        let crypt = self.crypt();
        Ok(SealedDemographics {
            name: crypt.seal(crate::crypt::PERSON_NAME, name)?,
            id_number: crypt.seal_opt(crate::crypt::PERSON_ID_NUMBER, id_number)?,
            phone: crypt.seal_opt(crate::crypt::PERSON_PHONE, phone)?,
            address_line: crypt.seal_opt(crate::crypt::PERSON_ADDRESS, address_line)?,
            id_number_index: id_number.map(|id| crypt.citizen_id_index(id)),
            name_index: crypt.name_birth_index(name, birth_date),
        })
    }

    /// The person holding a citizen ID here (any status), by its blind index.
    pub(crate) fn person_by_citizen_id(&mut self, id_number: &str) -> Result<Option<String>, StoreError> {
        let index = self.crypt().citizen_id_index(id_number);
        Ok(persons::table
            .filter(persons::id_number_index.eq(index))
            .select(persons::id)
            .fetch_one(self.conn)
            .optional()?)
    }
}
