//! `rhip export deidentified|check`: de-identified exports from the command
//! line. The work is `rhip_server::export`'s (shared with
//! `GET /api/v1/exports/deidentified`): this module checks the arguments
//! (exit 2 naming the one that is wrong, before anything is read or
//! written), writes the export under a temporary name beside `--out`,
//! audits it, renames it into place and prints a summary. `check` exits 0
//! when every class has at least k records and no rule is broken, 1 naming
//! the smallest class below k (or the first other problem), 2 for a file
//! that is not an export.

use std::path::{Path, PathBuf};

use crate::cli::{ExportCheckArgs, ExportDeidentifiedArgs};
use crate::Failure;
use anyhow::Context;
use rhip_core::RegionCode;
use rhip_server::export::{audit_entry, check_file_against, write_export, ExportRequest};
use rhip_store::NewAuditEntry;

/// Longest stated purpose, in characters (as over HTTP).
const PURPOSE_MAX_CHARS: usize = 200;

/// Runs `rhip export deidentified`.
pub fn deidentified(args: &ExportDeidentifiedArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let node = settings.node.region;
    let region = RegionCode::parse(&args.region).map_err(|e| Failure::usage(format!("--region: {e}")))?;
    if !node.contains(&region) {
        return Err(Failure::usage(format!("--region: {region} lies outside this node's jurisdiction ({node})")));
    }
    let k = settings.export.k_for(args.k.as_deref()).map_err(|message| Failure::usage(format!("--k: {message}")))?;
    let purpose = args.purpose.trim().to_string();
    if !(1..=PURPOSE_MAX_CHARS).contains(&purpose.chars().count()) || purpose.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "--purpose: state the purpose in 1 to {PURPOSE_MAX_CHARS} characters, without control characters"
        )));
    }
    let (folder, temporary) = temporary_beside(&args.out)?;
    let keys = rhip_server::app::load_data_keys(&settings)?;
    let store = super::open_store(&settings)?;
    let request = ExportRequest { region, k, purpose };
    let written = write_export(&store, &keys, &request, &rhip_deid::KeepAll, &temporary)
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("write the export")))?;
    let base = NewAuditEntry {
        actor: super::facility::operator(),
        role: Some("node_admin".into()),
        actor_region: Some(node.as_str().to_string()),
        detail: None,
        ..NewAuditEntry::default()
    };
    let entry = audit_entry(base, &request, &written);
    let released = store
        .write(|tx| tx.append_audit(&entry))
        .context("audit the export")
        .and_then(|()| std::fs::rename(&temporary, &args.out).context("move the export into place"));
    if let Err(error) = released {
        let _ = std::fs::remove_file(&temporary);
        return Err(error.into());
    }
    if let Ok(folder) = std::fs::File::open(&folder) {
        let _ = folder.sync_all();
    }
    let counts = &written.header.counts;
    if args.json {
        let summary = serde_json::json!({
            "file": args.out,
            "sha256": written.sha256,
            "bytes": written.bytes,
            "header": written.header,
        });
        println!("{summary}");
    } else {
        println!(
            "exported {} of {} persons of {region} (k={k}) to {}",
            counts.records_exported,
            counts.persons_considered,
            args.out.display()
        );
        println!(
            "suppressed {} persons in {} equivalence classes below k; {} classes exported",
            counts.records_suppressed, counts.classes_suppressed, counts.classes_exported
        );
        println!(
            "sha256 {} ({} bytes); check it with: rhip export check {}",
            written.sha256,
            written.bytes,
            args.out.display()
        );
    }
    Ok(())
}

/// The folder of `out` and a fresh temporary name in it (a rename within
/// one folder is atomic).
fn temporary_beside(out: &Path) -> Result<(PathBuf, PathBuf), Failure> {
    let name = out
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| Failure::usage(format!("--out: {} does not name a file", out.display())))?;
    let folder = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(Failure::usage(format!("--out: folder {} does not exist", folder.display())));
    }
    if out.is_dir() {
        return Err(Failure::usage(format!("--out: {} is a folder", out.display())));
    }
    let temporary = folder.join(format!(".{name}.{}.part", uuid::Uuid::now_v7().simple()));
    Ok((folder, temporary))
}

/// Runs `rhip export check`.
pub fn check(args: &ExportCheckArgs) -> Result<(), Failure> {
    let k = match &args.k {
        None => None,
        Some(text) => Some(rhip_deid::K::parse(text).map_err(|e| Failure::usage(format!("--k: {e}")))?),
    };
    let (report, sha256, _) = check_file_against(&args.file, k).map_err(|e| {
        Failure::usage(match e.kind() {
            std::io::ErrorKind::InvalidData => format!("{}: {e}", args.file.display()),
            _ => format!("cannot read {}: {e}", args.file.display()),
        })
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report).context("encode the report")?);
    } else {
        println!(
            "export of {}: {} records in {} equivalence classes (smallest {}), checked against k={} (header k={}): {}",
            report.export_region,
            report.records,
            report.classes,
            report.smallest_class.unwrap_or(0),
            report.k,
            report.header_k,
            if report.passed { "passed" } else { "FAILED" }
        );
        for class in &report.below_k {
            println!("class below k: {class}");
        }
        for problem in &report.problems {
            println!("problem: {problem}");
        }
        println!("sha256 {sha256}");
    }
    if report.passed {
        return Ok(());
    }
    let first = match report.below_k.first() {
        Some(class) => format!("class {class}, fewer than k={}", report.k),
        None => report.problems.first().cloned().unwrap_or_default(),
    };
    Err(Failure::Runtime(anyhow::anyhow!(
        "export check failed: {first} ({} class(es) below k, {} other problem(s))",
        report.below_k.len(),
        report.problems_total
    )))
}
