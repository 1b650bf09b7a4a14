//! The tamper-evident audit log end to end, on both backends: entries made
//! through the HTTP API are chained and sealed (by the node's own jobs and
//! by `rhip audit seal`), `rhip audit verify` passes an intact chain and
//! names the first broken entry when someone with direct database access
//! alters, deletes or slips in a row or forges a seal, and sealed segments
//! archived with `rhip audit archive` leave the database but stay
//! verifiable from their files. Concurrent writers are each chained once.

use diesel::{Connection, RunQueryDsl};
use rhip_core::RegionCode;
use rhip_store::{NewAuditEntry, Store};
use rhip_tests::{assert_fails, both_backends, person, rhip, Backend, NodeDir};
use serde_json::Value;
use std::process::Output;
use std::time::{Duration, Instant};

/// Direct access to a node's database, as an attacker with the database
/// file or superuser rights has: no store, no triggers' consent.
struct Db {
    backend: Backend,
    url: String,
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

impl Db {
    fn of(node: &NodeDir, backend: Backend) -> Db {
        let url = match &node.db.url {
            Some(url) => url.clone(),
            None => node.dir.path().join("data/rhip.db").display().to_string(),
        };
        Db { backend, url }
    }

    fn load<T>(&self, sql: &str) -> Vec<T>
    where
        T: diesel::QueryableByName<diesel::pg::Pg> + diesel::QueryableByName<diesel::sqlite::Sqlite> + 'static,
    {
        let loaded = match self.backend {
            Backend::Postgres => diesel::sql_query(sql).load(&mut diesel::PgConnection::establish(&self.url).unwrap()),
            Backend::Sqlite => {
                diesel::sql_query(sql).load(&mut diesel::SqliteConnection::establish(&self.url).unwrap())
            }
        };
        loaded.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs statements (`;`-separated batches are run one by one).
    fn exec(&self, sql: &str) -> Result<(), diesel::result::Error> {
        use diesel::connection::SimpleConnection;
        match self.backend {
            Backend::Postgres => diesel::PgConnection::establish(&self.url).unwrap().batch_execute(sql),
            Backend::Sqlite => diesel::SqliteConnection::establish(&self.url).unwrap().batch_execute(sql),
        }
    }

    fn number(&self, sql: &str) -> i64 {
        self.load::<Number>(sql).remove(0).n
    }

    fn text(&self, sql: &str) -> String {
        self.load::<Text>(sql).remove(0).t
    }

    /// Turns off the append-only triggers of `table` and returns how to turn
    /// them back on (SQLite has no switch: the triggers are dropped and made
    /// again from their saved text).
    fn disable_triggers(&self, table: &str) -> String {
        match self.backend {
            Backend::Postgres => {
                self.exec(&format!("ALTER TABLE {table} DISABLE TRIGGER USER")).unwrap();
                format!("ALTER TABLE {table} ENABLE TRIGGER USER")
            }
            Backend::Sqlite => {
                let triggers = self.load::<Text>(&format!(
                    "SELECT sql AS t FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
                ));
                let names = self.load::<Text>(&format!(
                    "SELECT name AS t FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}'"
                ));
                assert!(!names.is_empty(), "{table} has triggers");
                for name in names {
                    self.exec(&format!("DROP TRIGGER {}", name.t)).unwrap();
                }
                triggers.into_iter().map(|t| format!("{};", t.t)).collect::<Vec<_>>().join("\n")
            }
        }
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `rhip audit verify --json` plus `extra`; the exit status and the report.
fn verify(node: &NodeDir, extra: &[&str]) -> (Option<i32>, Value, Output) {
    let output = node.cli(&["audit", "verify"], &[&["--json"], extra].concat());
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report, output)
}

fn assert_intact(node: &NodeDir, extra: &[&str]) -> Value {
    let (code, report, output) = verify(node, extra);
    assert_eq!(code, Some(0), "{report:#}\n{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(report["intact"], true);
    assert!(report["first_broken"].is_null());
    report
}

/// Verification fails (exit 1) with one stderr line containing `needle`;
/// returns the report's first broken entry.
fn assert_broken(node: &NodeDir, extra: &[&str], kind: &str, needle: &str) -> Value {
    let (_, report, output) = verify(node, extra);
    assert_fails(&output, 1, needle);
    assert_eq!(report["intact"], false);
    let first = report["first_broken"].clone();
    assert_eq!(first["kind"], kind, "{report:#}");
    first
}

fn seal(node: &NodeDir) -> Value {
    let output = node.cli(&["audit", "seal"], &["--json"]);
    assert!(output.status.success(), "seal: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A county node with three residents, read over HTTP by a commission
/// (each read leaves an audit entry); the node is stopped afterwards.
fn node_with_reads(backend: Backend) -> Option<NodeDir> {
    let node = NodeDir::init("330106", backend)?;
    node.import(&[
        person("审计甲", "330106", (1970, 1, 2), 11),
        person("审计乙", "330106", (1981, 5, 6), 22),
        person("审计丙", "330106", (1992, 9, 10), 33),
    ]);
    read_persons(&node);
    Some(node)
}

/// Starts the node, reads every person twice, and leaves it running.
fn start_and_read(node: &NodeDir) -> rhip_tests::Node {
    let server = node.start();
    let token = node.token("commission", &[]);
    let persons = server.get("/api/v1/persons", Some(&token)).items();
    assert_eq!(persons.len(), 3);
    for person in &persons {
        for _ in 0..2 {
            let path = format!("/api/v1/persons/{}", person["empi_id"].as_str().unwrap());
            assert_eq!(server.get(&path, Some(&token)).status, 200);
        }
    }
    server
}

fn read_persons(node: &NodeDir) {
    let server = start_and_read(node);
    assert!(server.terminate().success());
}

/// The node chains and seals on its own schedules; verification then
/// passes with every entry chained and the head sealed.
fn the_node_chains_and_seals_on_its_schedules(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    let mut doc: toml::Table = std::fs::read_to_string(&node.config).unwrap().parse().unwrap();
    let mut table = toml::Table::new();
    table.insert("audit_chain".into(), "*/1 * * * * *".into());
    table.insert("audit_seal".into(), "*/1 * * * * *".into());
    doc.insert("schedules".into(), table.into());
    std::fs::write(&node.config, toml::to_string(&doc).unwrap()).unwrap();
    node.import(&[person("定时甲", "330106", (1975, 3, 4), 44)]);
    let server = node.start();
    let token = node.token("commission", &[]);
    assert_eq!(server.get("/api/v1/persons", Some(&token)).status, 200);
    let db = Db::of(&node, backend);
    let entries = db.number("SELECT COUNT(*) AS n FROM audit_log");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = assert_intact(&node, &[]);
        if report["last_seal_position"].as_i64().unwrap_or(0) >= entries && report["unchained"] == 0 {
            assert!(report["entries_checked"].as_i64().unwrap() >= entries, "{report:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the jobs did not chain and seal: {report:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(server.terminate().success());
}

/// Altered, deleted and slipped-in entries and a forged seal are each named;
/// put back as they were, the chain verifies again (it checks content, not
/// bookkeeping). The triggers still refuse a plain UPDATE or DELETE.
fn verify_names_the_first_broken_entry(backend: Backend) {
    let Some(node) = node_with_reads(backend) else { return };
    let db = Db::of(&node, backend);
    let entries = db.number("SELECT COUNT(*) AS n FROM audit_log");
    assert!(entries >= 8, "imports, a search and six reads: {entries}");

    let sealed = seal(&node);
    assert_eq!(sealed["sealed_position"], entries, "{sealed}");
    assert_eq!(sealed["head_position"], entries);
    assert_eq!(sealed["new_seal"], true);
    assert_eq!(seal(&node)["new_seal"], false, "the head did not move: no second seal");
    let report = assert_intact(&node, &[]);
    assert_eq!(report["entries_checked"], entries);
    assert_eq!(report["seals_checked"], 1);
    assert_eq!(report["unchained"], 0);
    assert_eq!(report["last_seal_position"], entries);
    let text = node.cli(&["audit", "verify"], &[]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("intact") && text.contains(&format!("entries checked: {entries}")), "{text}");

    // The triggers refuse a plain change.
    for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "UPDATE audit_chain SET entry_hash = 'x'"]
    {
        let error = db.exec(sql).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    for sql in ["DELETE FROM audit_chain", "DELETE FROM audit_seals", "UPDATE audit_seals SET key_id = 'x'"] {
        let error = db.exec(sql).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }

    // An attacker switches the triggers off and edits an entry in place.
    let enable = db.disable_triggers("audit_log");
    let victim = db.number("SELECT audit_seq AS n FROM audit_chain WHERE position = 3");
    let actor = db.text(&format!("SELECT actor AS t FROM audit_log WHERE seq = {victim}"));
    let id = db.text(&format!("SELECT id AS t FROM audit_log WHERE seq = {victim}"));
    db.exec(&format!("UPDATE audit_log SET actor = 'nobody' WHERE seq = {victim}")).unwrap();
    let first = assert_broken(&node, &[], "entry_hash", &format!("audit seq {victim}"));
    assert_eq!(first["position"], 3);
    assert_eq!(first["audit_seq"], victim);
    assert_eq!(first["audit_id"], id.as_str());
    db.exec(&format!("UPDATE audit_log SET actor = {} WHERE seq = {victim}", quoted(&actor))).unwrap();
    assert_intact(&node, &[]);

    // ... or deletes one.
    let deleted = db.number("SELECT audit_seq AS n FROM audit_chain WHERE position = 5");
    db.exec(&format!("CREATE TABLE saved AS SELECT * FROM audit_log WHERE seq = {deleted}")).unwrap();
    db.exec(&format!("DELETE FROM audit_log WHERE seq = {deleted}")).unwrap();
    let first = assert_broken(&node, &[], "missing_row", &format!("audit seq {deleted}"));
    assert_eq!(first["position"], 5);
    let overriding = if backend == Backend::Postgres { "OVERRIDING SYSTEM VALUE" } else { "" };
    db.exec(&format!("INSERT INTO audit_log {overriding} SELECT * FROM saved; DROP TABLE saved")).unwrap();
    assert_intact(&node, &[]);

    // ... or slips one in behind the chain (below its watermark).
    db.exec(&format!(
        "INSERT INTO audit_log (seq, id, occurred_at, actor, action, resource_type, outcome) {overriding} \
         VALUES (0, 'slipped-in', '2026-01-01 00:00:00', 'nobody', 'read', 'person', 'success')"
    ))
    .unwrap();
    let first = assert_broken(&node, &[], "unchained_row", "audit seq 0");
    assert_eq!(first["audit_id"], "slipped-in");
    db.exec("DELETE FROM audit_log WHERE seq = 0").unwrap();
    db.exec(&enable).unwrap();
    assert_intact(&node, &[]);

    // A seal re-signed by another key, or pointing at another hash, is named.
    let enable = db.disable_triggers("audit_seals");
    let signature = db.text("SELECT signature AS t FROM audit_seals");
    let chain_hash = db.text("SELECT chain_hash AS t FROM audit_seals");
    let (other, _) = rhip_auth::NodeKey::generate().unwrap();
    let claims = serde_json::json!({"region": "330106", "position": entries, "chain_hash": chain_hash, "sealed_at": "2026-11-22T00:00:00.000000Z"});
    let forged = other.sign_jws("rhip-audit-seal+jws", &claims).unwrap();
    db.exec(&format!("UPDATE audit_seals SET signature = {}", quoted(&forged))).unwrap();
    let first = assert_broken(&node, &[], "seal_signature", &format!("position {entries}"));
    assert_eq!(first["position"], entries);
    db.exec(&format!("UPDATE audit_seals SET signature = {}", quoted(&signature))).unwrap();
    db.exec(&enable).unwrap();
    assert_intact(&node, &[]);
}

/// Sealed segments go to files and leave the database; verification reads
/// them back and names a changed byte; without them it says what is
/// missing; unarchived rows stay undeletable.
fn archives_leave_the_database_and_stay_verifiable(backend: Backend) {
    let Some(node) = node_with_reads(backend) else { return };
    let db = Db::of(&node, backend);
    let first_entries = seal(&node)["sealed_position"].as_i64().unwrap();
    let out = node.dir.path().join("audit-1.jsonl");
    let out_arg = out.to_str().unwrap();

    // Usage mistakes: exit 2, nothing written.
    assert_fails(
        &node.cli(&["audit", "archive"], &["--out", out_arg, "--through", &(first_entries + 1).to_string()]),
        2,
        "past the last seal",
    );
    assert!(!out.exists());
    assert_fails(&node.cli(&["audit", "verify"], &["--archive", "/nonexistent/audit.jsonl"]), 2, "cannot read archive");
    assert_fails(&rhip(&["audit", "verify", "--config", "/nonexistent/node.toml"]), 2, "node.toml");

    let output = node.cli(&["audit", "archive"], &["--out", out_arg, "--json"]);
    assert!(output.status.success(), "archive: {}", String::from_utf8_lossy(&output.stderr));
    let archived: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(archived["from_position"], 1);
    assert_eq!(archived["to_position"], first_entries);
    assert_eq!(archived["seals"], 1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count() as i64, 1 + first_entries + 1, "header, entries, one seal");
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "rhip-audit-archive");
    assert_eq!(header["count"], first_entries);
    assert_eq!(header["start_prev_hash"], "0".repeat(64));
    // Gone from the database; only the archive's own audit entry is left.
    assert_eq!(db.number("SELECT COUNT(*) AS n FROM audit_chain"), 0);
    assert_eq!(db.number("SELECT COUNT(*) AS n FROM audit_log"), 1);
    assert_eq!(db.text("SELECT action AS t FROM audit_log"), "archive");
    assert_fails(&node.cli(&["audit", "archive"], &["--out", out_arg]), 2, "exists already");

    let report = assert_intact(&node, &["--archive", out_arg]);
    assert_eq!(report["entries_checked"], first_entries);
    assert_eq!(report["archived_entries_checked"], first_entries);
    assert_eq!(report["archives_checked"], 1);
    assert_eq!(report["unchained"], 1);
    let first = assert_broken(&node, &[], "archive_missing", "audit-1.jsonl");
    assert_eq!(first["position"], 1);

    // One changed character in an entry of the file.
    let flipped = node.dir.path().join("audit-1-flipped.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    let third = lines[3].replacen("\"actor\":\"", "\"actor\":\"X", 1);
    assert_ne!(third, lines[3]);
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    changed[3] = third;
    std::fs::write(&flipped, changed.join("\n") + "\n").unwrap();
    let first = assert_broken(&node, &["--archive", flipped.to_str().unwrap()], "entry_hash", "audit-1-flipped.jsonl");
    assert_eq!(first["position"], 3);
    let (_, report, _) = verify(&node, &["--archive", flipped.to_str().unwrap()]);
    let kinds: Vec<&str> = report["problems"].as_array().unwrap().iter().map(|p| p["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"archive_digest"), "{kinds:?}");
    // A changed byte that breaks no entry (a space) is still caught by the digest.
    let spaced = node.dir.path().join("audit-1-spaced.jsonl");
    std::fs::write(&spaced, text.replacen("\"format\":", "\"format\": ", 1)).unwrap();
    let first =
        assert_broken(&node, &["--archive", spaced.to_str().unwrap()], "archive_digest", "audit-1-spaced.jsonl");
    assert_eq!(first["position"], 1);

    // More reads, a second seal and archive; both files verify, in any order.
    read_persons(&node);
    let second_sealed = seal(&node)["sealed_position"].as_i64().unwrap();
    assert!(second_sealed > first_entries + 5);
    let report = assert_intact(&node, &["--archive", out_arg]);
    assert_eq!(report["entries_checked"], second_sealed);
    for sql in ["DELETE FROM audit_log", "DELETE FROM audit_chain", "DELETE FROM audit_archives"] {
        let error = db.exec(sql).unwrap_err().to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    let second = node.dir.path().join("audit-2.jsonl");
    let through = second_sealed - 2;
    let output = node
        .cli(&["audit", "archive"], &["--out", second.to_str().unwrap(), "--through", &through.to_string(), "--json"]);
    assert!(output.status.success(), "archive: {}", String::from_utf8_lossy(&output.stderr));
    let archived: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (archived["from_position"].as_i64(), archived["to_position"].as_i64()),
        (Some(first_entries + 1), Some(through))
    );
    assert_eq!(db.number("SELECT MIN(position) AS n FROM audit_chain"), through + 1);
    let report = assert_intact(&node, &["--archive", second.to_str().unwrap(), "--archive", out_arg]);
    assert_eq!(report["entries_checked"], second_sealed);
    assert_eq!(report["archives_checked"], 2);
    assert_eq!(report["seals_checked"], 2);
    // The first file alone: the second segment is named as missing.
    let first = assert_broken(&node, &["--archive", out_arg], "archive_missing", "audit-2.jsonl");
    assert_eq!(first["position"], first_entries + 1);
    // Nothing sealed is left to archive beyond the last seal's two entries.
    let output = node.cli(&["audit", "archive"], &["--out", node.dir.path().join("audit-3.jsonl").to_str().unwrap()]);
    assert!(output.status.success());
    assert!(
        !node.dir.path().join("audit-3.jsonl").exists() || String::from_utf8_lossy(&output.stdout).contains("archived")
    );
}

/// Many writers append at once (on PostgreSQL committing out of `seq` order)
/// while the chainer runs: every entry ends up in the chain exactly once and
/// the chain verifies.
fn concurrent_writers_are_each_chained_once(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    // `rhip migrate` makes the tables; the store then works on them directly.
    assert!(node.cli(&["migrate"], &[]).status.success());
    let db = Db::of(&node, backend);
    let url = match backend {
        Backend::Postgres => db.url.clone(),
        Backend::Sqlite => format!("sqlite://{}", db.url),
    };
    let store = Store::open(&url, RegionCode::parse("330106").unwrap(), &rhip_tests::store_options()).unwrap();
    let writers: Vec<_> = (0..6)
        .map(|writer| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..60u64 {
                    store
                        .write(|tx| {
                            tx.append_audit(&NewAuditEntry {
                                actor: format!("writer-{writer}"),
                                action: "read".into(),
                                resource_type: "person".into(),
                                outcome: "success".into(),
                                detail: Some(format!("entry {i}")),
                                ..NewAuditEntry::default()
                            })?;
                            // Hold the transaction open a little, so later
                            // seqs of other writers commit first.
                            std::thread::sleep(Duration::from_millis((i * 7 + writer) % 5));
                            Ok(())
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    let chainer = {
        let store = store.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let handle = std::thread::spawn(move || {
            let mut fence = None;
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let run = store.chain_audit(fence.as_ref()).unwrap();
                fence = Some(run.fence);
                runs += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
            runs
        });
        (done, handle)
    };
    for writer in writers {
        writer.join().unwrap();
    }
    chainer.0.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(chainer.1.join().unwrap() > 1);
    let total = db.number("SELECT COUNT(*) AS n FROM audit_log");
    assert_eq!(total, 360);
    let sealed = seal(&node);
    assert_eq!(sealed["sealed_position"], total, "{sealed}");
    assert_eq!(sealed["watermark"], db.number("SELECT MAX(seq) AS n FROM audit_log"));
    assert_eq!(db.number("SELECT COUNT(DISTINCT audit_seq) AS n FROM audit_chain"), total);
    let report = assert_intact(&node, &[]);
    assert_eq!(report["entries_checked"], total);
    assert_eq!(report["unchained"], 0);
}

both_backends! {
    the_node_chains_and_seals_on_its_schedules => super::the_node_chains_and_seals_on_its_schedules;
    verify_names_the_first_broken_entry => super::verify_names_the_first_broken_entry;
    archives_leave_the_database_and_stay_verifiable => super::archives_leave_the_database_and_stay_verifiable;
    concurrent_writers_are_each_chained_once => super::concurrent_writers_are_each_chained_once;
}
