//! `rhip reference publish`: the national node publishes a version of a
//! value domain; the change travels to every node of the federation, and
//! each validates coded demographics against the newest version it holds.

use crate::cli::ReferencePublishArgs;
use crate::Failure;
use anyhow::Context;
use rhip_core::RegionCode;
use rhip_store::{NewAuditEntry, NewValueDomainVersion, PublishedEntry, StoreError};

/// Runs `rhip reference publish`.
pub fn publish(args: &ReferencePublishArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    if settings.node.region != RegionCode::NATIONAL {
        return Err(Failure::usage(format!(
            "only the national node (000000) publishes value domains; this is node {}",
            settings.node.region
        )));
    }
    let version = args.version.trim();
    if version.is_empty() || version.len() > 32 || version.contains(char::is_whitespace) {
        return Err(Failure::usage(format!(
            "--version: {version:?} is not a version label (1-32 characters, no spaces)"
        )));
    }
    let embedded = rhip_core::value_domain(&args.domain);
    let name = match (&embedded, &args.file) {
        (Some(domain), _) => domain.name.to_string(),
        (None, Some(_)) => args.domain.trim().to_string(),
        (None, None) => {
            return Err(Failure::usage(format!(
                "--domain: {:?} has no embedded table; give its codes with --file",
                args.domain
            )))
        }
    };
    let entries = match &args.file {
        Some(path) => read_entries(path)?,
        None => embedded
            .map(|domain| {
                domain
                    .entries
                    .iter()
                    .map(|e| PublishedEntry {
                        code: e.code.to_string(),
                        name_zh: e.name_zh.clone(),
                        parent: e.parent.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let store = super::open_store(&settings)?;
    let new =
        NewValueDomainVersion { domain: args.domain.trim().to_string(), version: version.to_string(), name, entries };
    let record = store
        .write(|tx| {
            let record = tx.publish_value_domain(&new)?;
            tx.append_audit(&NewAuditEntry {
                actor: super::facility::operator(),
                role: Some("node_admin".into()),
                actor_region: Some(settings.node.region.to_string()),
                action: "publish".into(),
                resource_type: "value_domain".into(),
                resource_id: Some(format!("{}@{}", record.domain, record.version)),
                outcome: "success".into(),
                detail: Some(format!("{} codes", new.entries.len())),
                ..NewAuditEntry::default()
            })?;
            Ok(record)
        })
        .map_err(|e| match e {
            StoreError::Conflict(message) => Failure::usage(message),
            other => Failure::Runtime(other.into()),
        })?;
    if args.json {
        let summary = serde_json::json!({
            "domain": record.domain, "version": record.version, "codes": new.entries.len(), "hlc": record.hlc,
        });
        println!("{summary}");
    } else {
        println!(
            "published {} version {} ({} codes); it travels to every node with the next batches",
            record.domain,
            record.version,
            new.entries.len()
        );
    }
    Ok(())
}

/// Reads `code,name[,parent]` rows after a header line; errors name the line.
fn read_entries(path: &std::path::Path) -> Result<Vec<PublishedEntry>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let mut entries: Vec<PublishedEntry> = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let line = index + 2;
        let row = row.with_context(|| format!("{} line {line}", path.display()))?;
        let field = |i: usize| row.get(i).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let (Some(code), Some(name_zh)) = (field(0), field(1)) else {
            return Err(Failure::usage(format!("{} line {line}: a code and a name are required", path.display())));
        };
        if entries.iter().any(|e| e.code == code) {
            return Err(Failure::usage(format!("{} line {line}: code {code} appears twice", path.display())));
        }
        entries.push(PublishedEntry { code, name_zh, parent: field(2) });
    }
    if entries.is_empty() {
        return Err(Failure::usage(format!("{}: no codes", path.display())));
    }
    Ok(entries)
}
