//! Node identity recorded in the database, and row counts for metrics.

use crate::schema::{audit_log, change_log, documents, ehr_entries, encounters, facilities, node_meta, persons};
use crate::{StoreError, Tx};
use diesel::prelude::*;

/// Row counts of the main tables, for `/metrics` and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// DID persons.
    pub persons: i64,
    /// EMRD encounters.
    pub encounters: i64,
    /// EMRD documents.
    pub documents: i64,
    /// EHRD entries.
    pub ehr_entries: i64,
    /// Registered facilities.
    pub facilities: i64,
    /// Change-log rows (the outbox).
    pub changes: i64,
    /// Audit-log rows.
    pub audit_entries: i64,
}

impl Tx<'_> {
    /// Records the node's region on first use and refuses a database that
    /// belongs to another node (two configs pointed at one database).
    pub fn bind_node_region(&mut self) -> Result<(), StoreError> {
        let region = self.node_region().as_str().to_string();
        let found: Option<String> = node_meta::table
            .filter(node_meta::key.eq("region"))
            .select(node_meta::value)
            .get_result(self.conn)
            .optional()?;
        match found {
            Some(found) if found != region => Err(StoreError::WrongNode { expected: region, found }),
            Some(_) => Ok(()),
            None => {
                diesel::insert_into(node_meta::table)
                    .values((node_meta::key.eq("region"), node_meta::value.eq(&region)))
                    .execute(self.conn)?;
                Ok(())
            }
        }
    }

    /// Counts rows of the main tables.
    pub fn counts(&mut self) -> Result<Counts, StoreError> {
        Ok(Counts {
            persons: persons::table.count().get_result(self.conn)?,
            encounters: encounters::table.count().get_result(self.conn)?,
            documents: documents::table.count().get_result(self.conn)?,
            ehr_entries: ehr_entries::table.count().get_result(self.conn)?,
            facilities: facilities::table.count().get_result(self.conn)?,
            changes: change_log::table.count().get_result(self.conn)?,
            audit_entries: audit_log::table.count().get_result(self.conn)?,
        })
    }
}
