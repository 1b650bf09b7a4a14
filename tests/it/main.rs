//! End-to-end tests of RHIP: real `rhip` processes on random ports, spoken to
//! over HTTP and the command line, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod accounts;
mod api;
mod audit_chain;
mod auth;
mod cli;
mod consent;
mod documents;
mod encryption;
mod exports;
mod fed_consent;
mod fed_exchange;
mod fed_retry;
mod fed_security;
mod fed_store;
mod federation;
mod hardening;
mod hl7;
mod storage;
mod synth;
