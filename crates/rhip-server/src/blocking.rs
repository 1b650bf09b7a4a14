//! Running storage work off the actix workers.
//!
//! Diesel is synchronous, so every database call runs on the blocking pool
//! inside one transaction, with the request's tracing span carried across.
//! Work returns `Ok(Err(api_error))` for a refusal whose audit entry must
//! still be committed, and `Err(store_error)` to roll everything back.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::web;
use rhip_store::{StoreError, Tx};

/// Runs `work` in one write transaction on the blocking pool.
pub async fn in_transaction<T, W>(state: &AppState, work: W) -> Result<T, ApiError>
where
    T: Send + 'static,
    W: FnOnce(&mut Tx<'_>) -> Result<Result<T, ApiError>, StoreError> + Send + 'static,
{
    let store = state.store.clone();
    let span = tracing::Span::current();
    web::block(move || span.in_scope(|| store.write(work))).await??
}
