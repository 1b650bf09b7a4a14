//! `rhip audit seal|verify|archive`: the operator's and the auditor's hands
//! on the tamper-evident audit log. The work is `rhip_server::audit_chain`'s
//! (shared with the node's scheduled jobs); this module reads the config and
//! keys, and turns outcomes into output and exit statuses: 0 intact or
//! done, 1 broken (one line on stderr naming the first broken entry), 2 bad
//! usage (a missing config, an unreadable archive).

use crate::cli::{AuditArchiveArgs, AuditSealArgs, AuditVerifyArgs};
use crate::Failure;
use anyhow::Context;
use rhip_auth::PeerKeys;
use rhip_server::audit_chain::{self, AuditChainError};
use rhip_server::Settings;

impl From<AuditChainError> for Failure {
    fn from(error: AuditChainError) -> Failure {
        match error {
            AuditChainError::Usage(message) => Failure::Usage(message),
            AuditChainError::Runtime(error) => Failure::Runtime(error),
        }
    }
}

/// The keys the node's seals may carry: its key and those of
/// `keys/previous-*.pem`.
fn seal_keys(settings: &Settings) -> Result<PeerKeys, Failure> {
    let current = rhip_server::load_key(settings)?;
    let previous = rhip_server::app::previous_keys(settings)?;
    Ok(audit_chain::seal_keys(settings.node.region, &current, &previous))
}

/// Runs `rhip audit seal`: chains what is pending and seals the head.
pub fn seal(args: &AuditSealArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let key = rhip_server::load_key(&settings)?;
    let store = super::open_store(&settings)?;
    let (run, seal) = audit_chain::chain_and_seal(&store, &key)?;
    let sealed = store.read(|tx| tx.last_audit_seal()).context("read the last seal")?;
    if args.json {
        let summary = serde_json::json!({
            "chained": run.chained,
            "head_position": run.head.as_ref().map(|h| h.position),
            "sealed_position": sealed.as_ref().map(|s| s.position),
            "new_seal": seal.is_some(),
            "key_id": sealed.as_ref().map(|s| s.key_id.clone()),
            "watermark": run.watermark,
        });
        println!("{summary}");
        return Ok(());
    }
    match (&seal, &sealed) {
        (Some(seal), _) => println!(
            "sealed position {} (chain hash {}, key {}); {} entries chained now",
            seal.position, seal.chain_hash, seal.key_id, run.chained
        ),
        (None, Some(last)) => println!("position {} is sealed already; nothing new to seal", last.position),
        (None, None) => println!("nothing to seal: the audit log is empty"),
    }
    Ok(())
}

/// Runs `rhip audit verify`.
pub fn verify(args: &AuditVerifyArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let keys = seal_keys(&settings)?;
    let store = super::open_store(&settings)?;
    let report = audit_chain::verify(&store, &keys, &args.archives)?;
    if args.json {
        println!("{}", serde_json::to_string(&report).context("encode the report")?);
    } else {
        println!("audit chain of node {}: {}", report.region, if report.intact { "intact" } else { "BROKEN" });
        println!(
            "entries checked: {} ({} from {} archive file(s)), head at position {}",
            report.entries_checked,
            report.archived_entries_checked,
            report.archives_checked,
            report.head_position.unwrap_or(0)
        );
        println!(
            "seals checked: {}, last at position {} ({} entries after it await the next seal)",
            report.seals_checked,
            report.last_seal_position.unwrap_or(0),
            report.unsealed_entries
        );
        println!("unchained tail: {} entries (not yet chained)", report.unchained);
        for problem in &report.problems {
            println!("problem: {problem}");
        }
        if report.problems_total > report.problems.len() as u64 {
            println!("... {} problems in all", report.problems_total);
        }
    }
    match &report.first_broken {
        None => Ok(()),
        Some(first) => Err(Failure::Runtime(anyhow::anyhow!(
            "audit chain broken: {first} ({} problem(s) in all)",
            report.problems_total
        ))),
    }
}

/// Runs `rhip audit archive`.
pub fn archive(args: &AuditArchiveArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let keys = seal_keys(&settings)?;
    let store = super::open_store(&settings)?;
    let outcome = audit_chain::archive(&store, &keys, &args.out, args.through, &super::facility::operator())?;
    match (&outcome, args.json) {
        (Some(outcome), true) => println!("{}", serde_json::to_string(outcome).context("encode the summary")?),
        (None, true) => println!("{}", serde_json::json!({ "archived": null })),
        (Some(outcome), false) => println!(
            "archived positions {}..={} ({} entries, {} seals) to {} (sha256 {}); removed from the database",
            outcome.from_position,
            outcome.to_position,
            outcome.entries,
            outcome.seals,
            outcome.file.display(),
            outcome.file_sha256
        ),
        (None, false) => println!("nothing to archive: no sealed entries after the last archive"),
    }
    Ok(())
}
