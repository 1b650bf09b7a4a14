//! Connections and pools: one code base over SQLite and PostgreSQL.
//!
//! The backend is chosen by the URL scheme (`postgres://` or `postgresql://`
//! selects PostgreSQL; `sqlite://PATH`, `file:PATH` or a bare path selects
//! SQLite). Every SQLite connection gets the pragmas the design requires:
//! foreign keys on, WAL, a busy timeout and `synchronous = NORMAL`, a 32 MiB
//! page cache (measured: a fifth more ingest than 8 MiB), and automatic
//! checkpoints only as a backstop behind the store's checkpointer thread
//! (`checkpoint.rs`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

/// A connection to either backend; diesel's derive lets one query serve both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL, the production backend.
    Pg(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Name used in logs, metrics and `/healthz`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database location parsed from a configured URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// For SQLite the file path, for PostgreSQL the URL as given.
    target: String,
}

impl DatabaseUrl {
    /// Parses a configured URL; only the scheme decides the backend.
    pub fn parse(url: &str) -> Result<DatabaseUrl, crate::StoreError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(crate::StoreError::Config("database url is empty".into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl { backend: Backend::Postgres, target: url.to_string() });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .or_else(|| url.strip_prefix("file:"))
            .unwrap_or(url);
        if path.contains("://") {
            return Err(crate::StoreError::Config(format!(
                "database url {url:?} has an unsupported scheme (expected postgres:// or sqlite://)"
            )));
        }
        if path.is_empty() {
            return Err(crate::StoreError::Config("sqlite database path is empty".into()));
        }
        Ok(DatabaseUrl { backend: Backend::Sqlite, target: path.to_string() })
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password replaced, safe for logs and error lines.
    pub fn redacted(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.target),
            Backend::Postgres => redact_password(&self.target),
        }
    }

    /// Opens one connection, with the per-connection settings applied.
    pub fn connect(&self) -> Result<DbConn, diesel::ConnectionError> {
        match self.backend {
            Backend::Postgres => Ok(DbConn::Pg(PgConnection::establish(&self.target)?)),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)?;

                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000;
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;
                     PRAGMA cache_size = -32768;
                     PRAGMA wal_autocheckpoint = 16384;",
                )
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

fn redact_password(url: &str) -> String {
    // postgres://user:secret@host/db -> postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// r2d2 manager that builds the variant the URL asks for (the derive's own
/// `establish` would try each backend in turn, and SQLite accepts any path).
#[derive(Clone, Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    /// A manager for the given database.
    pub fn new(url: DatabaseUrl) -> Manager {
        Manager { url }
    }
}

/// Why the pool could not produce a working connection.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    /// The health query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ManagerError;

    fn connect(&self) -> Result<DbConn, ManagerError> {
        Ok(self.url.connect()?)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ManagerError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// The pool type every repository borrows connections from.
pub type Pool = r2d2::Pool<Manager>;
/// A connection checked out of the pool.
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Runs a query on the backend's own connection rather than through the
/// [`DbConn`] derive, which renders the statement's SQL text again (twice) on
/// every execution, even when the prepared statement is cached: a fifth of
/// a federation batch's apply went there (measured, `BENCHMARKS.md`). The
/// same query value serves both backends, so call sites stay backend-neutral:
/// `query.run(self.conn)` where diesel would say `query.execute(self.conn)`.
pub(crate) trait Direct: Sized {
    /// Executes a statement; the number of rows it touched.
    fn run(self, conn: &mut DbConn) -> diesel::QueryResult<usize>
    where
        Self: diesel::query_dsl::methods::ExecuteDsl<SqliteConnection>
            + diesel::query_dsl::methods::ExecuteDsl<PgConnection>,
    {
        match conn {
            DbConn::Sqlite(conn) => diesel::query_dsl::methods::ExecuteDsl::execute(self, conn),
            DbConn::Pg(conn) => diesel::query_dsl::methods::ExecuteDsl::execute(self, conn),
        }
    }

    /// Loads the first row (`NotFound` when there is none).
    fn fetch_one<'q, U>(self, conn: &mut DbConn) -> diesel::QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>
            + diesel::query_dsl::LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(conn) => RunQueryDsl::<SqliteConnection>::get_result(self, conn),
            DbConn::Pg(conn) => RunQueryDsl::<PgConnection>::get_result(self, conn),
        }
    }

    /// Loads every row.
    fn fetch_all<'q, U>(self, conn: &mut DbConn) -> diesel::QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + diesel::query_dsl::LoadQuery<'q, SqliteConnection, U>
            + diesel::query_dsl::LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            DbConn::Sqlite(conn) => RunQueryDsl::<SqliteConnection>::load(self, conn),
            DbConn::Pg(conn) => RunQueryDsl::<PgConnection>::load(self, conn),
        }
    }
}

impl<Q> Direct for Q {}

/// [`Direct`] for a query whose type names its backend (`as_select()`), which
/// one query value cannot serve for both: the expression is written once and
/// typed once per backend, `direct!(self.conn, query, load)`.
macro_rules! direct {
    ($conn:expr, $query:expr, $method:ident) => {
        match &mut *$conn {
            $crate::DbConn::Sqlite(conn) => diesel::RunQueryDsl::$method($query, conn),
            $crate::DbConn::Pg(conn) => diesel::RunQueryDsl::$method($query, conn),
        }
    };
}
pub(crate) use direct;
