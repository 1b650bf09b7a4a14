//! Facility registry: the hospitals, clinics and public-health centres whose
//! submissions this node accepts.

use crate::conn::Direct;
use crate::schema::facilities;
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rhip_core::{FacilityCode, FacilityKind, RegionCode};
use serde::{Deserialize, Serialize};

/// A facility to register.
#[derive(Clone, Debug)]
pub struct NewFacility {
    /// Code it sends in MSH-4 or as CDA custodian.
    pub code: FacilityCode,
    /// Display name.
    pub name: String,
    /// What kind of facility it is.
    pub kind: FacilityKind,
    /// Region it lies in (must be within the node's jurisdiction).
    pub region: RegionCode,
}

/// A registered facility.
#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = facilities)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct FacilityRecord {
    /// Facility code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Kind (snake_case of `FacilityKind`).
    pub kind: String,
    /// Region code.
    pub region: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Hybrid-logical-clock time of the last change.
    pub hlc: String,
    /// First registered.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

impl Tx<'_> {
    /// Registers a facility; a second registration of a code is a conflict.
    pub fn insert_facility(&mut self, new: &NewFacility) -> Result<FacilityRecord, StoreError> {
        let now = crate::now();
        let record = FacilityRecord {
            code: new.code.as_str().to_string(),
            name: new.name.clone(),
            kind: new.kind.as_str().to_string(),
            region: new.region.as_str().to_string(),
            status: "active".into(),
            hlc: self.tick().encode(),
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(facilities::table).values(&record).run(self.conn).map_err(|e| {
            match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("facility {} is already registered", record.code))
                }
                other => other,
            }
        })?;
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.record_change("facility", &record.code, "create", None, &record.hlc, &payload)?;
        Ok(record)
    }

    /// Facilities within a region's subtree (all of them for `None`), by code.
    pub fn list_facilities(&mut self, within: Option<&RegionCode>) -> Result<Vec<FacilityRecord>, StoreError> {
        let mut select = facilities::table.into_boxed();
        if let Some(region) = within {
            select = select.filter(facilities::region.like(format!("{}%", region.jurisdiction_prefix())));
        }
        Ok(select.order(facilities::code.asc()).select(FacilityRecord::as_select()).load(self.conn)?)
    }

    /// One facility by code.
    pub fn get_facility(&mut self, code: &str) -> Result<Option<FacilityRecord>, StoreError> {
        Ok(facilities::table.find(code).select(FacilityRecord::as_select()).get_result(self.conn).optional()?)
    }
}
