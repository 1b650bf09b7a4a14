//! Storage errors, with unique-key violations lifted out as conflicts so
//! callers can tell "already there" from "broken".

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configured database location cannot be used.
    #[error("{0}")]
    Config(String),
    /// The database did not answer.
    #[error("database {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL with its password removed.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// No connection could be checked out of the pool in time.
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A unique key refused the write (the thing already exists).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database belongs to another node.
    #[error("database belongs to node {found}, not {expected}")]
    WrongNode {
        /// Region this process was configured for.
        expected: String,
        /// Region recorded in the database.
        found: String,
    },
    /// Stored data could not be read back into domain types.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> StoreError {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_string())
            }
            Error::NotFound => StoreError::NotFound("row".into()),
            other => StoreError::Db(other),
        }
    }
}
