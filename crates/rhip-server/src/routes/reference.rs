//! `GET /api/v1/reference/value-domains`: the value domains this node
//! validates against, with the version in force: one published by the
//! national node and received down the federation, or the embedded table.

use crate::blocking::in_transaction;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use rhip_api_types::{ItemList, ValueDomainView};
use rhip_auth::Permission;

/// Every value domain with the version in force here.
#[utoipa::path(get, path = "/api/v1/reference/value-domains", tag = "reference",
    responses((status = 200, body = ItemList<ValueDomainView>), (status = 401, body = rhip_api_types::Problem)),
    security(("bearer" = [])))]
pub async fn value_domains(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(Permission::ReadReference)?;
    let published = in_transaction(&state, move |tx| Ok(Ok(tx.current_value_domains()?))).await?;
    let mut items: Vec<ValueDomainView> = rhip_core::value_domains()
        .iter()
        .filter(|embedded| !published.iter().any(|p| p.domain == embedded.code))
        .map(|embedded| ValueDomainView {
            domain: embedded.code.to_string(),
            name: embedded.name.to_string(),
            version: "embedded".into(),
            source: "embedded".into(),
            codes: embedded.entries.len(),
            published_by: None,
            published_at: None,
        })
        .collect();
    for version in published {
        let codes = version.codes()?.len();
        items.push(ValueDomainView {
            domain: version.domain,
            name: version.name,
            version: version.version,
            source: "published".into(),
            codes,
            published_by: Some(version.published_by),
            published_at: Some(version.published_at),
        });
    }
    items.sort_by(|a, b| a.domain.cmp(&b.domain));
    Ok(HttpResponse::Ok().json(ItemList { items, next: None }))
}
