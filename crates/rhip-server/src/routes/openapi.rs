//! `GET /api/openapi.json`, generated from the handlers' annotations so the
//! document cannot drift from the routes.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document of the node's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "RHIP node API", description = "Regional health information platform: one node of the national/provincial/municipal/county federation."),
    paths(
        super::health::healthz, super::health::readyz, super::health::metrics,
        super::persons::search, super::persons::get, super::persons::ehr, super::persons::documents,
        super::persons::encounters, super::persons::observations, super::persons::merges, super::persons::allergies,
        super::facilities::list, super::facilities::create,
        super::audit::query,
        super::hl7v2::submit, super::submissions::list, super::submissions::review_queue, super::stats::summary,
        super::exports::deidentified,
        super::federation::status, super::reference::value_domains,
        super::me::me, super::me::ehr, super::me::documents, super::me::access_log, super::me::consent,
        super::me::set_consent,
        super::auth::register, super::auth::login, super::auth::refresh, super::auth::logout,
        super::auth::change_password,
        super::documents::submit, super::documents::get, super::documents::summary, super::documents::encounter_document,
    ),
    components(schemas(
        rhip_api_types::Health, rhip_api_types::PersonView, rhip_api_types::IdentifierView, rhip_api_types::EhrEntryView,
        rhip_api_types::DocumentView, rhip_api_types::FacilityView, rhip_api_types::NewFacilityRequest,
        rhip_api_types::AuditEntryView, rhip_api_types::Problem, rhip_api_types::FieldProblem,
        rhip_api_types::SubmissionView, rhip_api_types::StatsSummary, rhip_api_types::EncounterView,
        rhip_api_types::DiagnosisView, rhip_api_types::ObservationView, rhip_api_types::MergeView,
        rhip_api_types::ReviewItemView, rhip_api_types::AllergyView, rhip_api_types::ContactView,
        rhip_api_types::CoverageView, rhip_api_types::PrimaryCareView, rhip_api_types::FederationStatus,
        rhip_api_types::LinkStatus, rhip_api_types::ValueDomainView, rhip_api_types::RegisterRequest,
        rhip_api_types::Registered, rhip_api_types::LoginRequest, rhip_api_types::RefreshRequest,
        rhip_api_types::ChangePasswordRequest, rhip_api_types::ConsentRequest, rhip_api_types::ConsentView,
        rhip_api_types::ConsentRuleView,
        rhip_api_types::TokenPair,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Serves the document.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
