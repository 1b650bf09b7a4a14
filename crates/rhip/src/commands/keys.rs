//! `rhip keys rotate | status | retire`: the data keys that seal personal
//! data at rest (`keys/data-keys.json`).
//!
//! Rotating adds a new AES-256-GCM key to the file and makes it current (the
//! file is replaced atomically, mode 0600; a version 1 file becomes version
//! 2), then re-encrypts every encrypted column under it in batches, one
//! transaction each. Values already under the new key are left alone, so a
//! rotation that stopped half-way finishes with `--resume`, and running it
//! twice changes nothing the second time. A node serving meanwhile keeps
//! working: it re-reads the key file when it meets the new key id, and
//! within seconds seals under the new key itself; a second pass after that
//! catches what it sealed under the old key in between.
//!
//! Old keys stay in the file (values sealed under them by a node that had
//! not yet re-read it, and backups, still open). `rhip keys status` counts
//! the values under each key; `rhip keys retire --key-id K` removes a key
//! once nothing in the database uses it.

use crate::cli::{KeysRetireArgs, KeysRotateArgs, KeysStatusArgs};
use crate::Failure;
use anyhow::Context;
use rhip_store::{KeyUsage, NewAuditEntry, Store, ENCRYPTED_TABLES};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long after replacing the key file the second pass waits, so every
/// process of the node has re-read it (they do at least every two seconds
/// while writing).
const SETTLE: Duration = Duration::from_secs(3);

/// Replaces `path` with `text` atomically: a private temporary file in the
/// same folder, flushed to disk, then renamed over it.
fn replace_private(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let staged = path.with_extension("json.new");
    let _ = std::fs::remove_file(&staged);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&staged).with_context(|| format!("create {}", staged.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("write {}", staged.display()))?;
    file.sync_all().with_context(|| format!("flush {}", staged.display()))?;
    std::fs::rename(&staged, path).with_context(|| format!("replace {}", path.display()))?;
    if let Some(dir) = path.parent() {
        // Best effort: make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn read_key_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read the data keys {}: {e}", path.display())))
}

/// Totals of one table over a pass.
#[derive(Default)]
struct TableTotals {
    examined: u64,
    rewritten: u64,
    skipped: u64,
}

/// Re-encrypts every table under the current key; prints progress on stderr
/// unless quiet.
fn pass(store: &Store, batch: i64, quiet: bool) -> Result<Vec<(&'static str, TableTotals)>, Failure> {
    let mut totals = Vec::new();
    for table in ENCRYPTED_TABLES {
        let mut sum = TableTotals::default();
        let mut after = None;
        loop {
            let step =
                store.reencrypt_batch(table, after.as_ref(), batch).with_context(|| format!("re-encrypt {table}"))?;
            sum.examined += step.examined;
            sum.rewritten += step.rewritten;
            sum.skipped += step.skipped;
            match step.next {
                Some(next) => {
                    after = Some(next);
                    if !quiet {
                        eprintln!(
                            "{table}: {} rows examined, {} values re-encrypted so far",
                            sum.examined, sum.rewritten
                        );
                    }
                }
                None => break,
            }
        }
        totals.push((*table, sum));
    }
    Ok(totals)
}

/// Values under any key other than `current`, or in plaintext.
fn stale_values(usage: &[KeyUsage], current: &str) -> u64 {
    usage
        .iter()
        .map(|u| u.plaintext + u.by_key.iter().filter(|(id, _)| *id != current).map(|(_, n)| n).sum::<u64>())
        .sum()
}

/// Runs `rhip keys rotate`.
pub fn rotate(args: &KeysRotateArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let path = settings.keys.data_keys.clone();
    let text = read_key_file(&path)?;
    let (previous, upgraded, started) = if args.resume {
        let keys =
            rhip_auth::DataKeys::from_json(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        (keys.current_key_id().map(str::to_string), false, None)
    } else {
        let rotated =
            rhip_auth::rotate_key_file(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        replace_private(&path, &rotated.text)?;
        (rotated.previous_key_id, rotated.upgraded, Some(Instant::now()))
    };
    let keys = rhip_server::load_data_keys(&settings)?;
    let current = keys.keys().current_key_id().map(str::to_string).ok_or_else(|| {
        Failure::usage(format!("{}: no current encryption key; run without --resume", path.display()))
    })?;
    let store = rhip_server::open_store_with(&settings, keys)?;
    let mut totals = pass(&store, args.batch, args.json)?;
    // Values a serving process sealed under the old key before it re-read the file.
    if let Some(started) = started {
        std::thread::sleep(SETTLE.saturating_sub(started.elapsed()));
        for ((_, sum), (_, again)) in totals.iter_mut().zip(pass(&store, args.batch, true)?) {
            sum.rewritten += again.rewritten;
            sum.skipped = again.skipped;
        }
    }
    let usage = store.key_usage().context("count the values under each key")?;
    let remaining = stale_values(&usage, &current);
    let rewritten: u64 = totals.iter().map(|(_, t)| t.rewritten).sum();
    store
        .write(|tx| {
            tx.append_audit(&NewAuditEntry {
                actor: super::facility::operator(),
                role: Some("node_admin".into()),
                actor_region: Some(settings.node.region.to_string()),
                action: "rotate_data_key".into(),
                resource_type: "data_key".into(),
                resource_id: Some(current.clone()),
                outcome: "success".into(),
                detail: Some(format!(
                    "previous key {}; {rewritten} values re-encrypted; {remaining} under other keys",
                    previous.as_deref().unwrap_or("none")
                )),
                ..NewAuditEntry::default()
            })
        })
        .context("audit the rotation")?;
    if args.json {
        let tables: Vec<_> = totals
            .iter()
            .map(|(table, t)| json!({"table": table, "examined": t.examined, "rewritten": t.rewritten, "skipped": t.skipped}))
            .collect();
        let report = json!({
            "key_id": current,
            "previous_key_id": previous,
            "upgraded": upgraded,
            "resumed": args.resume,
            "rewritten": rewritten,
            "remaining_under_other_keys": remaining,
            "tables": tables,
        });
        println!("{report}");
    } else {
        for (table, t) in &totals {
            println!("{table}: {} rows examined, {} values re-encrypted", t.examined, t.rewritten);
        }
        println!(
            "data key {current} is current (previous {}); {rewritten} values re-encrypted, {remaining} still under other keys",
            previous.as_deref().unwrap_or("none")
        );
        if remaining > 0 {
            println!("run `rhip keys rotate --resume --config {}` to finish", args.config.display());
        }
    }
    Ok(())
}

/// Runs `rhip keys status`.
pub fn status(args: &KeysStatusArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let keys = rhip_server::load_data_keys(&settings)?;
    let held = keys.keys();
    let store = rhip_server::open_store_unchecked(&settings, keys.clone(), 2)?;
    let usage = store.key_usage().context("count the values under each key")?;
    if args.json {
        let columns: Vec<_> =
            usage.iter().map(|u| json!({"column": u.column, "plaintext": u.plaintext, "by_key": u.by_key})).collect();
        println!("{}", json!({"current": held.current_key_id(), "keys": held.key_ids(), "columns": columns}));
    } else {
        println!("current key: {}", held.current_key_id().unwrap_or("none (version 1 key file)"));
        println!("keys in the file: {}", held.key_ids().join(", "));
        for u in &usage {
            let by_key: Vec<String> = u.by_key.iter().map(|(id, n)| format!("{id}: {n}")).collect();
            println!("{}: plaintext {}; {}", u.column, u.plaintext, by_key.join(", "));
        }
    }
    Ok(())
}

/// Runs `rhip keys retire`.
pub fn retire(args: &KeysRetireArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let path = settings.keys.data_keys.clone();
    let keys = rhip_server::load_data_keys(&settings)?;
    let store = rhip_server::open_store_unchecked(&settings, keys, 2)?;
    let usage = store.key_usage().context("count the values under each key")?;
    for id in &args.key_ids {
        let used: u64 = usage.iter().filter_map(|u| u.by_key.get(id)).sum();
        if used > 0 {
            return Err(Failure::usage(format!(
                "key {id} still seals {used} stored values; run `rhip keys rotate --resume` first"
            )));
        }
    }
    let text = read_key_file(&path)?;
    let retired = rhip_auth::retire_keys(&text, &args.key_ids).map_err(|e| Failure::usage(e.to_string()))?;
    replace_private(&path, &retired)?;
    println!("retired {}", args.key_ids.join(", "));
    Ok(())
}
