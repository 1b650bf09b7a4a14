//! The command line: `init`, `serve` refusing bad configs, `token`,
//! `facility`, `person import`, `migrate` and the demo.

use rhip_tests::{assert_fails, both_backends, rhip, rhip_ok, Backend, NodeDir};
use serde_json::Value;

#[test]
fn init_prints_the_contract_summary_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let summary: Value =
        serde_json::from_str(&rhip_ok(&["init", "--region", "440106", "--dir", path, "--json"])).unwrap();
    assert_eq!(summary["region"], "440106");
    assert_eq!(summary["tier"], "county");
    assert!(summary["api"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert!(summary["mllp"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(std::path::Path::new(summary["config"].as_str().unwrap()).exists());
    assert_fails(&rhip(&["init", "--region", "440106", "--dir", path]), 2, "already exists");
}

#[test]
fn init_refuses_an_invalid_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    assert_fails(&rhip(&["init", "--region", "339999", "--dir", path]), 2, "339999");
    assert_fails(&rhip(&["init", "--region", "33010", "--dir", path]), 2, "6 digits");
}

#[test]
fn serve_stops_on_an_unknown_config_key_naming_it() {
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, text.replace("[api]", "[api]\nlisten_port = 8080")).unwrap();
    assert_fails(&rhip(&["serve", "--config", node.config_arg()]), 2, "unknown field `listen_port`");
}

#[test]
fn serve_stops_on_an_invalid_region() {
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, text.replace("region = \"330106\"", "region = \"330199\"")).unwrap();
    assert_fails(&rhip(&["serve", "--config", node.config_arg()]), 2, "330199 is not a current GB/T 2260");
}

#[test]
fn serve_stops_on_an_unreachable_database() {
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    let url_line = text.lines().find(|l| l.starts_with("url =")).unwrap();
    std::fs::write(&node.config, text.replace(url_line, "url = \"postgres://rhip@127.0.0.1:1/nowhere\"")).unwrap();
    assert_fails(&rhip(&["serve", "--config", node.config_arg()]), 2, "unreachable");
}

#[test]
fn serve_stops_on_a_missing_config_file() {
    assert_fails(&rhip(&["serve", "--config", "/nonexistent/node.toml"]), 2, "cannot read config");
}

fn migrate_is_idempotent(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let first = String::from_utf8(node.cli(&["migrate"], &[]).stdout).unwrap();
    assert!(first.contains("applied"), "{first}");
    let second = String::from_utf8(node.cli(&["migrate"], &[]).stdout).unwrap();
    assert!(second.contains("already at the latest schema"), "{second}");
}

fn token_refuses_what_it_cannot_vouch_for(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    assert_fails(&node.cli(&["token"], &["--role", "superuser"]), 2, "--role");
    assert_fails(&node.cli(&["token"], &["--role", "clinician"]), 2, "--facility is required");
    assert_fails(&node.cli(&["token"], &["--role", "clinician", "--facility", "NOPE01"]), 2, "not registered");
    assert_fails(
        &node.cli(&["token"], &["--role", "commission", "--region", "330000"]),
        2,
        "outside this node's jurisdiction",
    );
    assert_fails(&node.cli(&["token"], &["--role", "resident", "--person", "not-a-uuid"]), 2, "not an EMPI id");
    assert_fails(&node.cli(&["token"], &["--role", "commission", "--ttl", "1000d"]), 2, "max_token_ttl");
    node.add_facility("H001", "330106");
    let token = node.token("clinician", &["--facility", "H001"]);
    assert_eq!(token.split('.').count(), 3);
}

fn facility_registry_from_the_command_line(backend: Backend) {
    let Some(node) = NodeDir::init("330100", backend) else {
        return;
    };
    node.add_facility("H330106001", "330106");
    node.add_facility("H330108001", "330108");
    assert_fails(
        &node.cli(&["facility", "add"], &["--code", "H330106001", "--name", "again"]),
        2,
        "already registered",
    );
    assert_fails(
        &node.cli(&["facility", "add"], &["--code", "G1", "--name", "far", "--region", "440106"]),
        2,
        "outside this node's jurisdiction",
    );
    assert_fails(&node.cli(&["facility", "add"], &["--code", "bad code!", "--name", "x"]), 2, "code");
    assert_fails(&node.cli(&["facility", "add"], &["--code", "K1", "--name", "x", "--kind", "spaceport"]), 2, "kind");
    let list: Value = serde_json::from_slice(&node.cli(&["facility", "list"], &["--json"]).stdout).unwrap();
    let codes: Vec<&str> = list["items"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["H330106001", "H330108001"]);
}

fn person_import_is_all_or_nothing(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let good = rhip_tests::person("测试甲", "330106", (1980, 5, 6), 11);
    let mut bad = rhip_tests::person("测试乙", "330106", (1981, 5, 6), 12);
    let valid = bad["id_number"].as_str().unwrap().to_string();
    let wrong_check = if valid.ends_with('0') { '1' } else { '0' };
    bad["id_number"] = Value::from(format!("{}{wrong_check}", &valid[..17]));
    let file = node.dir.path().join("bad.jsonl");
    std::fs::write(&file, format!("{good}\n{bad}\n")).unwrap();
    let output = node.cli(&["person", "import"], &["--file", file.to_str().unwrap()]);
    assert_fails(&output, 2, "line 2: id_number");
    // Nothing of the file was written: the good line imports fine on its own.
    let ids = node.import(std::slice::from_ref(&good));
    assert_eq!(ids.len(), 1);
    // The same citizen ID again is a conflict, and the whole file is refused.
    let file = node.dir.path().join("dup.jsonl");
    std::fs::write(&file, format!("{}\n{good}\n", rhip_tests::person("测试丙", "330106", (1990, 1, 1), 21))).unwrap();
    assert_fails(&node.cli(&["person", "import"], &["--file", file.to_str().unwrap()]), 2, "nothing imported");
}

/// `rhip demo --once` runs the demo federation (on its own free ports), and
/// every check of its summary passes: residents at every tier of their home
/// and nowhere else, the cross-province encounter on its whole path, the
/// document's bytes through the national node, nothing pending anywhere.
#[test]
fn demo_once_passes_its_checks() {
    let demo = rhip_tests::Demo::new();
    assert_fails(&demo.run_once_with(&["--db", "postgres://localhost/rhip"]), 2, "--db");
    let output = demo.run_once();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|l| l.ends_with(" PASS") || l.ends_with(" FAIL")).collect();
    assert!(rows.iter().all(|row| row.ends_with(" PASS")), "{stdout}");
    assert!(stdout.contains(&format!("{0}/{0} checks passed", rows.len())), "{stdout}");
    for check in [
        "Xihu residents present once each",
        "Binjiang residents present once each",
        "Tianhe residents present once each",
        "Xihu residents absent",
        "cross-province encounter",
        "document bytes fetched from below",
        "federation quiet",
        "new admission reaches the national node",
    ] {
        assert!(rows.iter().any(|row| row.starts_with(check)), "no {check:?} row: {stdout}");
    }
    // Every tier of Xihu holds its residents; the cross-province encounter is on all seven nodes of its path.
    for region in ["330106", "330100", "330000", "000000"] {
        assert!(rows.iter().any(|r| r.starts_with("Xihu residents present") && r.contains(region)), "{region}");
    }
    assert_eq!(rows.iter().filter(|r| r.starts_with("cross-province encounter")).count(), 7, "{stdout}");
    assert_eq!(rows.iter().filter(|r| r.starts_with("federation quiet")).count(), 8, "{stdout}");
    assert!(stdout.contains("curl -H 'Authorization: Bearer "), "{stdout}");
    // A second run on the same folder reuses the nodes; the traffic is resent and changes nothing.
    let again = demo.run_once();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&again.stderr));
    assert!(stdout.contains(&format!("{0}/{0} checks passed", rows.len())), "{stdout}");
}

both_backends! {
    migrate_is_idempotent => super::migrate_is_idempotent;
    token_refuses_what_it_cannot_vouch_for => super::token_refuses_what_it_cannot_vouch_for;
    facility_registry_from_the_command_line => super::facility_registry_from_the_command_line;
    person_import_is_all_or_nothing => super::person_import_is_all_or_nothing;
    bench_ehr_loads_a_population_and_queries_a_real_node => super::bench_ehr_loads_a_population_and_queries_a_real_node;
}

/// `rhip bench ehr` loads synthetic residents into a county node, starts it,
/// queries residents' EHRs at a fixed rate over HTTP and reads the node's
/// memory; a second run reuses the population, and another seed is refused.
fn bench_ehr_loads_a_population_and_queries_a_real_node(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    let args = ["--persons", "300", "--rate", "40", "--seconds", "2", "--warmup", "1", "--residents", "25"];
    let output = node.cli(&["bench", "ehr"], &args);
    assert!(output.status.success(), "bench ehr: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &report["run"];
    assert_eq!(run["dataset"]["persons"], 300, "{report}");
    assert_eq!(run["dataset"]["loaded_now"], 300, "{report}");
    let entries = run["dataset"]["ehr_entries"].as_u64().unwrap();
    assert!((300..=1200).contains(&entries), "one to four visits each: {entries}");
    assert_eq!(run["backend"], if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    assert!(!run["commit"].as_str().unwrap().is_empty());
    assert!(run["machine"]["cores"].as_u64().unwrap() >= 1);
    let result = &report["result"];
    assert_eq!(result["errors"], 0, "{report}");
    assert_eq!(result["requests"], 80, "40 per second for 2 seconds after the warm-up: {report}");
    assert_eq!(report["residents_queried"], 25);
    assert!(result["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(result["latency_ms"]["p99"].as_f64() >= result["latency_ms"]["p50"].as_f64());
    assert!(result["node_memory_mib"]["peak_hwm"].as_f64().unwrap() > 1.0, "{report}");
    // Every query was a read of a person, audited at the node.
    let server = node.start();
    let auditor = node.token("auditor", &[]);
    let audit = server.get("/api/v1/audit?action=read&limit=1000", Some(&auditor)).items();
    let ehr_reads = audit.iter().filter(|entry| entry["resource_type"] == "ehr").count();
    assert!(ehr_reads >= 80, "{ehr_reads} audited EHR reads");
    drop(server);
    // The population is kept: a second run loads nothing.
    let output = node.cli(&["bench", "ehr"], &[&args[..], &["--load-only"]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let again: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(again["run"]["dataset"]["loaded_now"], 0, "{again}");
    assert_eq!(again["run"]["dataset"]["persons"], 300);
    assert_fails(&node.cli(&["bench", "ehr"], &[&args[..], &["--seed", "2"]].concat()), 2, "seed 1");
    assert_fails(&node.cli(&["bench", "ehr"], &["--residents", "500", "--persons", "300"]), 2, "--residents");
}

/// `rhip bench parse --from` reads a traffic file of `rhip synth`, the input
/// the comparison scripts in bench/compare parse too.
#[test]
fn bench_parse_reads_a_synth_traffic_file() {
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().to_str().unwrap();
    rhip_ok(&["synth", "--residents", "60", "--out", out_arg]);
    let traffic = out.path().join("traffic/330106.hl7");
    let expected = std::fs::read_to_string(out.path().join("expected.jsonl")).unwrap();
    let messages = expected.lines().filter(|line| line.contains("\"traffic/330106.hl7\"")).count();
    let parsed: Value =
        serde_json::from_str(&rhip_ok(&["bench", "parse", "--from", traffic.to_str().unwrap()])).unwrap();
    assert_eq!(parsed["messages"], messages as u64, "{parsed}");
    let (accepted, rejected) = (parsed["accepted"].as_u64().unwrap(), parsed["rejected"].as_u64().unwrap());
    assert_eq!(accepted + rejected, messages as u64);
    assert!(accepted > 0);
    assert_eq!(parsed["run"]["dataset"]["input"], traffic.to_str().unwrap());
    let empty = out.path().join("empty.hl7");
    std::fs::write(&empty, "no messages here\n").unwrap();
    assert_fails(&rhip(&["bench", "parse", "--from", empty.to_str().unwrap()]), 2, "no HL7 v2 messages");
}

/// The benchmark commands run and report JSON (their figures go to BENCHMARKS.md).
#[test]
fn bench_commands_report_json() {
    let parse: Value = serde_json::from_str(&rhip_ok(&["bench", "parse", "--messages", "200"])).unwrap();
    assert_eq!(parse["messages"], 200);
    assert!(parse["messages_per_second"].as_f64().unwrap() > 0.0);
    let ingest: Value = serde_json::from_str(&rhip_ok(&["bench", "ingest", "--messages", "20"])).unwrap();
    assert_eq!(ingest["backend"], "sqlite");
    assert_eq!(ingest["messages"], 20);
    let cda: Value = serde_json::from_str(&rhip_ok(&["bench", "cda-parse", "--documents", "20"])).unwrap();
    assert_eq!(cda["documents"], 20);
    assert!(cda["megabytes_per_second"].as_f64().unwrap() > 0.0);
    // Documents posted to a running node are stored (and visible in its counts).
    let node = rhip_tests::NodeDir::init("330106", rhip_tests::Backend::Sqlite).unwrap();
    node.add_facility("H330106001", "330106");
    let server = node.start();
    let token = node.token("hospital_system", &["--facility", "H330106001"]);
    let posted: Value = serde_json::from_str(&rhip_ok(&[
        "bench",
        "documents",
        "--api",
        &server.api,
        "--token",
        &token,
        "--facility",
        "H330106001",
        "--documents",
        "6",
        "--connections",
        "2",
    ]))
    .unwrap();
    assert_eq!(posted["documents"], 6);
    let commission = node.token("commission", &[]);
    let counts = server.get("/api/v1/stats/summary?region=330106", Some(&commission)).json();
    assert_eq!(counts["documents"], 6, "{counts}");
}
