//! Counts for a region and its subtree (`GET /api/v1/stats/summary`).
//!
//! Persons and EHR entries count residents (by home region); encounters,
//! documents and submissions count care and traffic in the region (by the
//! region of the facility that provided or sent them).

use crate::conn::Direct;
use crate::schema::{documents, ehr_entries, encounters, facilities, persons, submissions};
use crate::{StoreError, Tx};
use diesel::prelude::*;
use rhip_core::RegionCode;
use serde::Serialize;

/// Counts of one region's subtree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RegionCounts {
    /// Active persons whose home region lies in the subtree.
    pub persons: i64,
    /// Encounters at facilities of the subtree.
    pub encounters: i64,
    /// Documents whose custodian is a facility of the subtree.
    pub documents: i64,
    /// EHR entries of the subtree's residents.
    pub ehr_entries: i64,
    /// Submissions accepted (AA) from facilities of the subtree.
    pub submissions_accepted: i64,
    /// Submissions refused (AE or AR) from facilities of the subtree.
    pub submissions_rejected: i64,
}

impl Tx<'_> {
    /// Counts for `region` and everything below it.
    pub fn region_counts(&mut self, region: &RegionCode) -> Result<RegionCounts, StoreError> {
        let prefix = format!("{}%", region.jurisdiction_prefix());
        let facilities_here =
            facilities::table.filter(facilities::region.like(prefix.clone())).select(facilities::code);
        let residents = persons::table.filter(persons::home_region.like(prefix.clone())).select(persons::id);
        Ok(RegionCounts {
            persons: persons::table
                .filter(persons::home_region.like(prefix.clone()))
                .filter(persons::status.eq("active"))
                .count()
                .fetch_one(self.conn)?,
            encounters: encounters::table
                .filter(encounters::facility_code.eq_any(facilities_here.clone()))
                .count()
                .fetch_one(self.conn)?,
            documents: documents::table
                .filter(documents::custodian.eq_any(facilities_here.select(facilities::code.nullable())))
                .count()
                .fetch_one(self.conn)?,
            ehr_entries: ehr_entries::table
                .filter(ehr_entries::person_id.eq_any(residents))
                .count()
                .fetch_one(self.conn)?,
            submissions_accepted: submissions::table
                .filter(submissions::region.like(prefix.clone()))
                .filter(submissions::outcome.eq("AA"))
                .count()
                .fetch_one(self.conn)?,
            submissions_rejected: submissions::table
                .filter(submissions::region.like(prefix))
                .filter(submissions::outcome.ne("AA"))
                .count()
                .fetch_one(self.conn)?,
        })
    }
}
