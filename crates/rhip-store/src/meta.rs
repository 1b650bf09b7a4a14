//! Node identity recorded in the database, and row counts for metrics.

use crate::conn::Direct;
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

/// Tables smaller than this are counted exactly by [`Tx::estimated_counts`].
pub const EXACT_BELOW: i64 = 100_000;

#[derive(QueryableByName)]
struct Estimate {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl Tx<'_> {
    /// Records the node's region on first use and refuses a database that
    /// belongs to another node (two configs pointed at one database).
    pub fn bind_node_region(&mut self) -> Result<(), StoreError> {
        let region = self.node_region().as_str().to_string();
        let found: Option<String> = node_meta::table
            .filter(node_meta::key.eq("region"))
            .select(node_meta::value)
            .fetch_one(self.conn)
            .optional()?;
        match found {
            Some(found) if found != region => Err(StoreError::WrongNode { expected: region, found }),
            Some(_) => Ok(()),
            None => {
                diesel::insert_into(node_meta::table)
                    .values((node_meta::key.eq("region"), node_meta::value.eq(&region)))
                    .run(self.conn)?;
                Ok(())
            }
        }
    }

    /// Approximate row counts for metrics, cheap at any size: PostgreSQL's
    /// planner statistics (`pg_class.reltuples`, exact counts below
    /// [`EXACT_BELOW`] rows or before the first ANALYZE); SQLite's largest
    /// rowid (rows are only deleted by tests and retention, so it is close).
    /// A scheduled `COUNT(*)` over a ten-million-row audit log would read it
    /// all every refresh.
    pub fn estimated_counts(&mut self) -> Result<Counts, StoreError> {
        const TABLES: [&str; 7] =
            ["persons", "encounters", "documents", "ehr_entries", "facilities", "change_log", "audit_log"];
        let mut values = [0i64; 7];
        for (value, table) in values.iter_mut().zip(TABLES) {
            let estimate = match self.conn {
                crate::DbConn::Pg(_) => diesel::sql_query(
                    "SELECT CAST(GREATEST(reltuples, -1) AS BIGINT) AS n FROM pg_class \
                     WHERE oid = to_regclass($1)",
                )
                .bind::<diesel::sql_types::Text, _>(table)
                .fetch_one::<Estimate>(self.conn)
                .optional()?
                .map_or(-1, |e| e.n),
                crate::DbConn::Sqlite(_) => {
                    // Table names come from the constant list above, never from input.
                    diesel::sql_query(format!("SELECT COALESCE(MAX(rowid), 0) AS n FROM {table}"))
                        .fetch_one::<Estimate>(self.conn)?
                        .n
                }
            };
            *value = if estimate < EXACT_BELOW { self.exact_count(table)? } else { estimate };
        }
        let [persons, encounters, documents, ehr_entries, facilities, changes, audit_entries] = values;
        Ok(Counts { persons, encounters, documents, ehr_entries, facilities, changes, audit_entries })
    }

    fn exact_count(&mut self, table: &str) -> Result<i64, StoreError> {
        Ok(match table {
            "persons" => persons::table.count().fetch_one(self.conn)?,
            "encounters" => encounters::table.count().fetch_one(self.conn)?,
            "documents" => documents::table.count().fetch_one(self.conn)?,
            "ehr_entries" => ehr_entries::table.count().fetch_one(self.conn)?,
            "facilities" => facilities::table.count().fetch_one(self.conn)?,
            "change_log" => change_log::table.count().fetch_one(self.conn)?,
            _ => audit_log::table.count().fetch_one(self.conn)?,
        })
    }

    /// Counts rows of the main tables exactly.
    pub fn counts(&mut self) -> Result<Counts, StoreError> {
        Ok(Counts {
            persons: persons::table.count().fetch_one(self.conn)?,
            encounters: encounters::table.count().fetch_one(self.conn)?,
            documents: documents::table.count().fetch_one(self.conn)?,
            ehr_entries: ehr_entries::table.count().fetch_one(self.conn)?,
            facilities: facilities::table.count().fetch_one(self.conn)?,
            changes: change_log::table.count().fetch_one(self.conn)?,
            audit_entries: audit_log::table.count().fetch_one(self.conn)?,
        })
    }
}
