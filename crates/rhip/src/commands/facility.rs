//! `rhip facility add|list`: the registry of facilities that may submit.

use crate::cli::{FacilityAddArgs, FacilityListArgs};
use crate::Failure;
use anyhow::Context;
use rhip_api_types::NewFacilityRequest;
use rhip_store::{NewAuditEntry, StoreError};

/// Registers a facility, with the same rules as `POST /api/v1/facilities`.
pub fn add(args: &FacilityAddArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let request = NewFacilityRequest {
        code: args.code.clone(),
        name: args.name.clone(),
        kind: Some(args.kind.clone()),
        region: args.region.clone(),
    };
    let new = rhip_server::routes::facilities::validate(&request, settings.node.region)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let store = super::open_store(&settings)?;
    let record = store
        .write(|tx| {
            let record = tx.insert_facility(&new)?;
            tx.append_audit(&NewAuditEntry {
                actor: operator(),
                role: Some("node_admin".into()),
                action: "create".into(),
                resource_type: "facility".into(),
                resource_id: Some(record.code.clone()),
                outcome: "success".into(),
                detail: Some("rhip facility add".into()),
                ..NewAuditEntry::default()
            })?;
            Ok(record)
        })
        .map_err(|e| match e {
            StoreError::Conflict(message) => Failure::Usage(message),
            other => Failure::Runtime(other.into()),
        })?;
    if args.json {
        println!("{}", serde_json::to_string(&rhip_server::views::facility(record)).context("encode")?);
    } else {
        println!("registered {} {} ({}, region {})", record.code, record.name, record.kind, record.region);
    }
    Ok(())
}

/// Lists every registered facility.
pub fn list(args: &FacilityListArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let store = super::open_store(&settings)?;
    let facilities = store.read(|tx| tx.list_facilities(None)).map_err(|e| Failure::Runtime(e.into()))?;
    if args.json {
        let items: Vec<_> = facilities.into_iter().map(rhip_server::views::facility).collect();
        println!("{}", serde_json::to_string(&serde_json::json!({ "items": items })).context("encode")?);
    } else {
        for f in facilities {
            println!("{}\t{}\t{}\t{}\t{}", f.code, f.region, f.kind, f.status, f.name);
        }
    }
    Ok(())
}

/// Who ran the command, for the audit log.
pub fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
