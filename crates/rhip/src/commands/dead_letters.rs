//! `rhip federation dead-letters|retry`: the operator's view of remote
//! changes this node parked (a business rule refused them here, e.g. their
//! person is unknown), and the way to apply them again after a fix.
//!
//! Both open the node's store the way the other config-based commands do
//! and work in one transaction; a retry is audited in that transaction.

use crate::cli::{FederationDeadLettersArgs, FederationRetryArgs};
use crate::Failure;
use anyhow::Context;
use chrono::NaiveDateTime;
use rhip_store::{ApplyOutcome, DeadLetter, NewAuditEntry};
use serde::Serialize;
use std::collections::HashMap;

/// One dead letter as `dead-letters --json` prints it.
#[derive(Debug, Serialize)]
struct DeadLetterView {
    id: String,
    change_id: String,
    peer: String,
    entity: String,
    op: String,
    attempts: i64,
    reason: String,
    parked_at: NaiveDateTime,
    last_attempt_at: Option<NaiveDateTime>,
    resolved_at: Option<NaiveDateTime>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(letter: DeadLetter) -> DeadLetterView {
        DeadLetterView {
            id: letter.id,
            change_id: letter.change_id,
            peer: letter.peer_region,
            entity: letter.entity,
            op: letter.op,
            attempts: letter.attempts,
            reason: letter.reason,
            parked_at: letter.parked_at,
            last_attempt_at: letter.last_attempt_at,
            resolved_at: letter.resolved_at,
        }
    }
}

/// What `retry --json` prints.
#[derive(Debug, Serialize)]
struct RetrySummary {
    applied: usize,
    parked: usize,
    items: Vec<RetryItem>,
}

/// One retried dead letter.
#[derive(Debug, Serialize)]
struct RetryItem {
    id: String,
    change_id: String,
    entity: String,
    op: String,
    /// `applied` or `parked`.
    outcome: &'static str,
    /// Why it is still parked (none when applied).
    reason: Option<String>,
}

/// Lists parked changes, oldest first (unresolved only unless `--all`).
pub fn list(args: &FederationDeadLettersArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let store = super::open_store(&settings)?;
    let letters = store.read(|tx| tx.dead_letters(args.all, args.limit)).map_err(|e| Failure::Runtime(e.into()))?;
    let items: Vec<DeadLetterView> = letters.into_iter().map(DeadLetterView::from).collect();
    if args.json {
        println!("{}", serde_json::to_string(&serde_json::json!({ "items": items })).context("encode")?);
        return Ok(());
    }
    if items.is_empty() {
        println!("no {}dead letters", if args.all { "" } else { "unresolved " });
        return Ok(());
    }
    println!("id\tparked_at\tpeer\tentity/op\tattempts\tstate\treason");
    for item in &items {
        let state = if item.resolved_at.is_some() { "resolved" } else { "parked" };
        println!(
            "{}\t{}\t{}\t{}/{}\t{}\t{}\t{}",
            item.id,
            item.parked_at.format("%Y-%m-%dT%H:%M:%S"),
            item.peer,
            item.entity,
            item.op,
            item.attempts,
            state,
            item.reason
        );
    }
    Ok(())
}

/// Applies the oldest unresolved parked changes again and audits the run.
pub fn retry(args: &FederationRetryArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let store = super::open_store(&settings)?;
    let actor = super::facility::operator();
    let summary = store
        .write(|tx| {
            // The same selection `retry_dead_letters` makes, read first so
            // each outcome can be shown with its change.
            let letters: HashMap<String, DeadLetter> =
                tx.dead_letters(false, args.limit)?.into_iter().map(|l| (l.id.clone(), l)).collect();
            let outcomes = tx.retry_dead_letters(args.limit)?;
            let summary = summarise(outcomes, &letters);
            tx.append_audit(&NewAuditEntry {
                actor: actor.clone(),
                role: Some("node_admin".into()),
                actor_region: Some(settings.node.region.as_str().to_string()),
                action: "federation_retry".into(),
                resource_type: "dead_letter".into(),
                outcome: "success".into(),
                detail: Some(format!(
                    "rhip federation retry: {} retried, {} applied, {} still parked",
                    summary.items.len(),
                    summary.applied,
                    summary.parked
                )),
                ..NewAuditEntry::default()
            })?;
            Ok(summary)
        })
        .map_err(|e| Failure::Runtime(anyhow::Error::from(e).context("retry dead letters")))?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).context("encode")?);
        return Ok(());
    }
    for item in &summary.items {
        match &item.reason {
            None => println!("{}\tchange {}\t{}/{}\tapplied", item.id, item.change_id, item.entity, item.op),
            Some(reason) => {
                println!("{}\tchange {}\t{}/{}\tstill parked: {reason}", item.id, item.change_id, item.entity, item.op)
            }
        }
    }
    println!(
        "retried {} parked change(s): {} applied, {} still parked",
        summary.items.len(),
        summary.applied,
        summary.parked
    );
    Ok(())
}

/// Pairs each outcome with its dead letter and counts them.
fn summarise(outcomes: Vec<(String, ApplyOutcome)>, letters: &HashMap<String, DeadLetter>) -> RetrySummary {
    let mut summary = RetrySummary { applied: 0, parked: 0, items: Vec::with_capacity(outcomes.len()) };
    for (id, outcome) in outcomes {
        let (outcome, reason) = match outcome {
            ApplyOutcome::Applied | ApplyOutcome::AlreadyApplied => {
                summary.applied += 1;
                ("applied", None)
            }
            ApplyOutcome::Parked(reason) => {
                summary.parked += 1;
                ("parked", Some(reason))
            }
        };
        let letter = letters.get(&id);
        summary.items.push(RetryItem {
            change_id: letter.map(|l| l.change_id.clone()).unwrap_or_default(),
            entity: letter.map(|l| l.entity.clone()).unwrap_or_default(),
            op: letter.map(|l| l.op.clone()).unwrap_or_default(),
            id,
            outcome,
            reason,
        });
    }
    summary
}
