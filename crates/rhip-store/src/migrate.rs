//! Embedded migrations for both backends, applied by `rhip migrate` and at
//! `rhip serve` start. PostgreSQL takes an advisory lock first so several
//! `rhip serve` processes starting together migrate once.

use crate::{DbConn, Store, StoreError};
use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Advisory-lock key for migrations ("RHIPMIGR" as an integer).
const MIGRATION_LOCK: i64 = 0x5248_4950_4d49_4752;

impl Store {
    /// Applies pending migrations; returns the versions applied now.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.inner.pool.get()?;
        let conn: &mut DbConn = &mut conn;
        let applied = match conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE).map(versions),
            DbConn::Pg(c) => {
                c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
                let result = c.run_pending_migrations(POSTGRES).map(versions);
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
                result
            }
        };
        applied.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Reverts every migration (tests use it to prove `down.sql` works).
    pub fn revert_all_migrations(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.inner.pool.get()?;
        let conn: &mut DbConn = &mut conn;
        let reverted = match conn {
            DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE).map(versions),
            DbConn::Pg(c) => c.revert_all_migrations(POSTGRES).map(versions),
        };
        reverted.map_err(|e| StoreError::Migration(e.to_string()))
    }
}

impl Store {
    /// Reverts the latest migration (tests use it to prove one `down.sql`
    /// keeps the data an older build reads).
    pub fn revert_last_migration(&self) -> Result<String, StoreError> {
        let mut conn = self.inner.pool.get()?;
        let conn: &mut DbConn = &mut conn;
        let reverted = match conn {
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
            DbConn::Pg(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
        };
        reverted.map_err(|e| StoreError::Migration(e.to_string()))
    }
}

fn versions(list: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    list.into_iter().map(|v| v.to_string()).collect()
}
