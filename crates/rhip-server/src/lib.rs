//! The RHIP node: configuration, the actix-web application (API, health,
//! metrics, OpenAPI), authentication and audit of every personal-data read
//! (chained, sealed, verified and archived by `audit_chain`), and scheduled
//! jobs. Handlers are thin; storage is `rhip-store`'s,
//! authority is `rhip-auth`'s, shapes are `rhip-api-types`'.

pub mod app;
pub mod audit_chain;
pub mod blocking;
pub mod consent;
pub mod documents;
pub mod error;
pub mod export;
pub mod federation;
pub mod hardening;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod mllp;
pub mod principal;
pub mod revocation;
pub mod routes;
pub mod settings;
pub mod state;
pub mod trust;
pub mod views;

pub use app::{load_data_keys, load_key, open_store, open_store_unchecked, open_store_with, Application, StartError};
pub use settings::{ConfigError, Settings};
