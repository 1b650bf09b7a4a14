//! The only place in RHIP that speaks SQL.
//!
//! A [`Store`] wraps an r2d2 pool over SQLite (the embedded default) or
//! PostgreSQL (production), chosen by URL. Work happens inside
//! [`Store::write`] or [`Store::read`], which hand a [`Tx`] to a closure and
//! commit only if it returns `Ok`: a change, its change-log row and its audit
//! entry land together or not at all. Repositories are `impl Tx` blocks, one
//! module per concern (persons, details, facilities, records, audit and its
//! hash chain, changes, federation).
//!
//! Personal fields (names, citizen IDs, phones, address lines), archived
//! messages, original documents and change payloads are sealed by the node's
//! [`rhip_core::FieldCipher`] when a row is written and opened when it is
//! read (`crypt`), with blind indexes for exact lookup.
//!
//! Architecture invariant: nothing outside this crate builds SQL, and nothing
//! in this crate knows HTTP or JSON shapes of the API, nor where keys live.

mod accounts;
mod audit;
mod audit_chain;
mod changes;
mod checkpoint;
mod conn;
mod consent;
mod crypt;
mod details;
mod documents;
mod error;
mod exports;
mod facilities;
mod federation;
mod ingest;
mod linking;
mod merges;
mod meta;
mod migrate;
mod persons;
mod records;
mod reference;
pub mod schema;
mod scope;
mod stats;
mod trust;

pub use accounts::{EnrolmentRefusal, LoginFailures, NewRefreshToken, RefreshUse, ResidentAccount};
pub use audit::{AuditQuery, AuditRecord, NewAuditEntry};
pub use audit_chain::{
    audit_chain_hash, audit_entry_encoding, audit_entry_hash, AuditArchive, AuditFence, AuditSeal, ChainHead,
    ChainLink, ChainRun, ChainedEntry, GENESIS_CHAIN_HASH,
};
pub use changes::ChangeRecord;
pub use conn::{Backend, DatabaseUrl, DbConn, Manager, Pool, PooledConn};
pub use consent::{ConsentRecord, SensitiveItem};
pub use crypt::{
    bytes_key_id, text_key_id, Field, KeyUsage, ReencryptBatch, RowKey, ENCRYPTED_COLUMNS, ENCRYPTED_TABLES,
};
pub use details::{
    AllergyRecord, ContactRecord, CoverageRecord, NewAllergy, NewContact, NewCoverage, PrimaryCare, Upserted,
};
pub use diesel::result::Error as DieselError;
pub use documents::{DocumentIndexRecord, DocumentQuery, MedicationRecord, NewDocument, NewMedication};
pub use error::StoreError;
pub use exports::{
    ExportClinical, ExportDiagnosisRow, ExportEhrRow, ExportEncounterRow, ExportObservationRow, ExportPerson,
};

pub use facilities::{FacilityRecord, NewFacility};
pub use federation::{
    ApplyOutcome, DeadLetter, LinkBacklog, LinkRecord, NewOutboundBatch, OutboundBatch, RemoteChange, RemoteKeep,
    GENESIS_DIGEST,
};
pub use ingest::{NewSubmission, SubmissionQuery, SubmissionRecord};
pub use linking::{DemographicsChange, LinkRule, Linked, ReviewItem};
pub use merges::{MergeRecord, Moved};
pub use meta::Counts;
pub use persons::{NewPerson, PersonQuery, PersonRecord};
pub use records::{
    DiagnosisRecord, EhrEntryRecord, EncounterChanges, EncounterRecord, NewDiagnosis, NewEhrEntry, NewEncounter,
    NewObservation, ObservationRecord,
};
pub use reference::{HeldDomain, NewValueDomainVersion, PublishedEntry, ValueDomainVersion};
pub use scope::{Access, Scope};
pub use stats::RegionCounts;
pub use trust::{IssuerKey, TokenRevocation};

use diesel::Connection;
use rhip_core::{FieldCipher, HlcTimestamp, HybridClock, RegionCode};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Handle to one node's database; cheap to clone and share across threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    url: DatabaseUrl,
    region: RegionCode,
    clock: HybridClock,
    /// SQLite has one writer; taking this lock before `BEGIN` keeps writers of
    /// this process from failing on lock upgrades. PostgreSQL needs none.
    sqlite_writer: Option<Mutex<()>>,
    /// Value-domain versions in force, cached for validators (see
    /// `Tx::held_value_domain`).
    held_domains: Mutex<Option<(std::time::Instant, reference::HeldDomains)>>,
    /// Seals and opens the encrypted columns (the node's data keys).
    cipher: Arc<dyn FieldCipher>,
}

/// Options for opening a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// Maximum pooled connections.
    pub pool_size: u32,
    /// How long a caller waits for a pooled connection.
    pub connect_timeout: Duration,
    /// The node's data keys, which seal personal fields at rest. Required:
    /// [`Store::open`] refuses to open without one rather than write
    /// plaintext.
    pub cipher: Option<Arc<dyn FieldCipher>>,
}

impl StoreOptions {
    /// Default pool settings with the node's cipher.
    pub fn with_cipher(cipher: Arc<dyn FieldCipher>) -> StoreOptions {
        StoreOptions { cipher: Some(cipher), ..StoreOptions::default() }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("cipher", &self.cipher.as_ref().map(|_| "set"))
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { pool_size: 8, connect_timeout: Duration::from_secs(10), cipher: None }
    }
}

impl Store {
    /// Opens the pool and checks that the database answers; fails fast with
    /// [`StoreError::Unreachable`] so a misconfigured node stops at start,
    /// and with [`StoreError::Config`] when no cipher is given.
    pub fn open(url: &str, region: RegionCode, options: &StoreOptions) -> Result<Store, StoreError> {
        let cipher = options.cipher.clone().ok_or_else(|| {
            StoreError::Config("no data keys: the store seals personal data and needs the node's keys".into())
        })?;
        let url = DatabaseUrl::parse(url)?;
        // Connect once by hand to report the driver's own reason when the
        // database is unreachable (r2d2 would only say "timed out").
        if let Err(error) = url.connect() {
            return Err(StoreError::Unreachable { url: url.redacted(), reason: one_line(&error.to_string()) });
        }
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            // A SQLite connection is a file handle that cannot go stale; a
            // PostgreSQL one can (server restart), so it is checked on checkout.
            .test_on_check_out(url.backend() == Backend::Postgres)
            .connection_timeout(options.connect_timeout)
            .build(Manager::new(url.clone()))
            .map_err(|e| StoreError::Unreachable { url: url.redacted(), reason: one_line(&e.to_string()) })?;
        let sqlite_writer = (url.backend() == Backend::Sqlite).then(|| Mutex::new(()));
        let inner = Arc::new(Inner {
            pool,
            url,
            region,
            clock: HybridClock::new(60_000),
            sqlite_writer,
            held_domains: Mutex::new(None),
            cipher,
        });
        if inner.url.backend() == Backend::Sqlite {
            checkpoint::start(&inner.url, Arc::downgrade(&inner))
                .map_err(|e| StoreError::Config(format!("cannot start the SQLite checkpointer: {e}")))?;
        }
        Ok(Store { inner })
    }

    /// The backend behind this store.
    pub fn backend(&self) -> Backend {
        self.inner.url.backend()
    }

    /// The database location, safe to print.
    pub fn redacted_url(&self) -> String {
        self.inner.url.redacted()
    }

    /// The region of the node that owns this database.
    pub fn region(&self) -> RegionCode {
        self.inner.region
    }

    /// Runs `work` in one transaction that may write; commits on `Ok`.
    pub fn write<T>(&self, work: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _writer =
            self.inner.sqlite_writer.as_ref().map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let mut conn = self.inner.pool.get()?;
        let mut memo = Memo::default();
        conn.transaction(|conn| work(&mut Tx { conn, inner: &self.inner, memo: &mut memo }))
    }

    /// Runs read-only `work` in one transaction (a consistent snapshot).
    pub fn read<T>(&self, work: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.inner.pool.get()?;
        let mut memo = Memo::default();
        conn.transaction(|conn| work(&mut Tx { conn, inner: &self.inner, memo: &mut memo }))
    }

    /// Answers whether the database is reachable right now (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        // A readiness probe must answer quickly, not wait out the pool timeout.
        let mut conn = self.inner.pool.get_timeout(Duration::from_secs(2))?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    /// Takes a lock named `name` that only one process of a node can hold at
    /// a time, without waiting: `None` when another process holds it. On
    /// PostgreSQL it is a session advisory lock on a connection the guard
    /// keeps out of the pool until dropped, so several `rhip serve` processes
    /// over one database run a job like the batch push once. A SQLite
    /// database has one node process, whose own jobs guard themselves, so
    /// the guard there is free.
    pub fn try_singleton(&self, name: &str) -> Result<Option<Singleton>, StoreError> {
        use diesel::RunQueryDsl;
        if self.backend() != Backend::Postgres {
            return Ok(Some(Singleton { conn: None, name: name.to_string() }));
        }
        let mut conn = self.inner.pool.get()?;
        #[derive(diesel::QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            taken: bool,
        }
        let taken = match &mut *conn {
            DbConn::Pg(pg) => {
                diesel::sql_query("SELECT pg_try_advisory_lock(hashtext($1)) AS taken")
                    .bind::<diesel::sql_types::Text, _>(name)
                    .get_result::<Taken>(pg)?
                    .taken
            }
            DbConn::Sqlite(_) => true,
        };
        Ok(taken.then(|| Singleton { conn: Some(conn), name: name.to_string() }))
    }

    /// Pool state for metrics: (connections, idle connections).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.inner.pool.state();
        (state.connections, state.idle_connections)
    }
}

/// A held [`Store::try_singleton`] lock; released when dropped.
pub struct Singleton {
    conn: Option<PooledConn>,
    name: String,
}

impl Drop for Singleton {
    fn drop(&mut self) {
        use diesel::RunQueryDsl;
        if let Some(conn) = self.conn.as_mut() {
            if let DbConn::Pg(pg) = &mut **conn {
                let released = diesel::sql_query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(&self.name)
                    .execute(pg);
                if let Err(error) = released {
                    tracing::warn!(%error, lock = %self.name, "advisory lock not released; the connection closes it");
                }
            }
        }
    }
}

/// One open transaction; repositories are methods on it.
pub struct Tx<'a> {
    conn: &'a mut DbConn,
    inner: &'a Inner,
    memo: &'a mut Memo,
}

/// Facts a transaction has already read or written, so that a message's
/// several records do not look them up again. Only immutable facts go here
/// (a person's home region is fixed when the person is created), so a
/// rolled-back savepoint can leave an entry behind without harm: its key is a
/// fresh id nobody else will use.
#[derive(Default)]
struct Memo {
    home_regions: std::collections::HashMap<String, String>,
}

impl Tx<'_> {
    /// The region of the node that owns this database.
    pub fn node_region(&self) -> RegionCode {
        self.inner.region
    }

    /// Serialises transactions about one key (a facility's patient) until
    /// this transaction ends, so their messages apply in arrival order. On
    /// SQLite the single writer already does this.
    pub fn lock_for(&mut self, key: &str) -> Result<(), StoreError> {
        use diesel::RunQueryDsl;
        if let DbConn::Pg(conn) = &mut *self.conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(key)
                .execute(conn)?;
        }
        Ok(())
    }

    /// A fresh hybrid-logical-clock timestamp for a write made here.
    pub fn tick(&self) -> HlcTimestamp {
        self.inner.clock.now()
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Current UTC time as stored in timestamp columns.
pub(crate) fn now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    // Microseconds, as PostgreSQL keeps them: a record built in memory equals the one read back.
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}
