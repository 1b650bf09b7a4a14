//! `rhip serve` and `rhip migrate`.

use crate::Failure;
use rhip_server::Application;
use std::path::Path;

/// Runs a node until SIGTERM or Ctrl-C.
pub fn serve(config: &Path) -> Result<(), Failure> {
    let settings = super::load_settings(config)?;
    let region = settings.node.region;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        // One line on stdout when ready, for operators and scripts.
        let mllp = app.mllp_address().map(|a| format!(" mllp {a}")).unwrap_or_default();
        let (api_url, api_address) = (app.api_url(), app.api_address());
        app.run(move || {
            println!("rhip node {region} ({}) ready: api {api_url}{mllp}", region.tier());
            tracing::info!(region = %region, api = %api_address, "node ready");
        })
        .await?;
        Ok(())
    })
}

/// Applies pending migrations and says which.
pub fn migrate(config: &Path) -> Result<(), Failure> {
    let settings = super::load_settings(config)?;
    let store = super::open_store_unmigrated(&settings)?;
    let applied = store.migrate().map_err(|e| Failure::Runtime(e.into()))?;
    store.write(|tx| tx.bind_node_region()).map_err(|e| Failure::Usage(format!("{}: {e}", store.redacted_url())))?;
    if applied.is_empty() {
        println!("database {} ({}) was already at the latest schema", store.redacted_url(), store.backend().as_str());
    } else {
        println!("database {} ({}): applied {}", store.redacted_url(), store.backend().as_str(), applied.join(", "));
    }
    Ok(())
}
