//! HTTP routes, one module per resource; handlers stay thin: check the
//! permission, validate input, run storage work, shape the answer.

pub mod audit;
pub mod auth;
pub mod documents;
pub mod exports;
pub mod facilities;
pub mod federation;
pub mod health;
pub mod hl7v2;
pub mod me;
pub mod openapi;
pub mod params;
pub mod persons;
pub mod reference;
pub mod stats;
pub mod submissions;

use actix_web::web;

/// Registers every route of the node.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/api/openapi.json", web::get().to(openapi::openapi_json))
        .service(
            web::scope("/auth")
                .route("/register", web::post().to(auth::register))
                .route("/login", web::post().to(auth::login))
                .route("/refresh", web::post().to(auth::refresh))
                .route("/logout", web::post().to(auth::logout))
                .route("/password", web::post().to(auth::change_password)),
        )
        .service(
            web::scope("/api/v1")
                .route("/persons", web::get().to(persons::search))
                .route("/persons/{empi_id}", web::get().to(persons::get))
                .route("/persons/{empi_id}/ehr", web::get().to(persons::ehr))
                .route("/persons/{empi_id}/documents", web::get().to(persons::documents))
                .route("/persons/{empi_id}/summary.xml", web::get().to(documents::summary))
                .route("/documents", web::post().to(documents::submit))
                .route("/documents/{id}", web::get().to(documents::get))
                .route("/encounters/{id}/document.xml", web::get().to(documents::encounter_document))
                .route("/persons/{empi_id}/encounters", web::get().to(persons::encounters))
                .route("/persons/{empi_id}/observations", web::get().to(persons::observations))
                .route("/persons/{empi_id}/merges", web::get().to(persons::merges))
                .route("/persons/{empi_id}/allergies", web::get().to(persons::allergies))
                .route("/facilities", web::get().to(facilities::list))
                .route("/facilities", web::post().to(facilities::create))
                .route("/audit", web::get().to(audit::query))
                .route("/hl7v2", web::post().to(hl7v2::submit))
                .route("/submissions", web::get().to(submissions::list))
                .route("/review-queue", web::get().to(submissions::review_queue))
                .route("/stats/summary", web::get().to(stats::summary))
                .route("/exports/deidentified", web::get().to(exports::deidentified))
                .route("/federation/status", web::get().to(federation::status))
                .route("/reference/value-domains", web::get().to(reference::value_domains))
                .route("/me", web::get().to(me::me))
                .route("/me/ehr", web::get().to(me::ehr))
                .route("/me/documents", web::get().to(me::documents))
                .route("/me/access-log", web::get().to(me::access_log))
                .route("/me/consent", web::get().to(me::consent))
                .route("/me/consent", web::put().to(me::set_consent)),
        );
}
