//! De-identified exports through the real interfaces: a county node with
//! imported residents and HL7 traffic, exported with `rhip export
//! deidentified` and `GET /api/v1/exports/deidentified`, checked against the
//! JSON Schema, for leaks of direct identifiers, for generalisation, for
//! k-anonymity (`rhip export check`, also on a tampered file), for stable
//! pseudonyms, for its one audit entry, and for the refusals, on SQLite and
//! PostgreSQL.

use rhip_tests::{assert_fails, both_backends, person, rhip, Backend, Mllp, Node, NodeDir};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const HOSPITAL: &str = "H330106001";
const SCHEMA: &str = include_str!("../../schemas/exports/deidentified-export.schema.json");

/// The synthetic residents of 330106 and one of 330108, with what the
/// export must make of them.
struct Population {
    /// Every imported person's JSON (names, citizen IDs, phones).
    persons: Vec<Value>,
    /// Their EMPI ids, in order.
    empi_ids: Vec<String>,
}

/// Five men born 1980 (a class of five: exported), one woman born 1980 (a
/// class of one: suppressed), five men aged 90 or more born in different
/// years (one class `90+`: exported), and a man of 330108 (not a resident
/// of the exported region).
fn populate(node: &NodeDir) -> Population {
    let mut persons = Vec::new();
    for (i, name) in ["赵导出一", "钱导出二", "孙导出三", "李导出四", "周导出五"].iter().enumerate()
    {
        persons.push(person(name, "330106", (1980, 5, 6 + i as u32), 11 + 2 * i as u16));
    }
    persons.push(person("吴独一女", "330106", (1980, 7, 1), 12));
    for (i, (name, year)) in
        [("郑老一", 1925), ("王老二", 1928), ("冯老三", 1930), ("陈老四", 1932), ("褚老五", 1934)].iter().enumerate()
    {
        persons.push(person(name, "330106", (*year, 2, 3), 31 + 2 * i as u16));
    }
    persons.push(person("卫外区", "330108", (1980, 5, 6), 51));
    let empi_ids = node.import(&persons);
    Population { persons, empi_ids }
}

/// An admission with a diagnosis, a lab result and an immunization for the
/// first 1980 man, over MLLP, as a hospital sends them.
fn send_care(server: &Node, population: &Population) {
    let id_number = population.persons[0]["id_number"].as_str().unwrap();
    let pid = format!(
        "PID|1||MRN-EXP-1^^^{HOSPITAL}^MR~{id_number}^^^CHN^NNCHN||赵^导出一||19800506|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^330106||13800000000\r"
    );
    let msh = |structure: &str, control: &str| {
        format!(
            "MSH|^~\\&|HIS|{HOSPITAL}|RHIP|330106|20240301083000||{structure}|{control}|P|2.5|||AL|NE||UNICODE UTF-8\r"
        )
    };
    let admit = format!(
        "{}EVN|A01|20240301083000\r{pid}PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||VEXP0001|||||||||||||||||||||||||20240301080000\rDG1|1||I10^高血压^ICD10||20240301|A\r",
        msh("ADT^A01^ADT_A01", "EXP-1")
    );
    let result = format!(
        "{}{pid}OBR|1|ORD1|LAB1|CBC^血常规^LN|||20240302090000||||||||||||||20240302100000|||F\rOBX|1|NM|718-7^血红蛋白^LN||98|g/L|115-150|L|||F|||20240302093000\r",
        msh("ORU^R01^ORU_R01", "EXP-2")
    );
    let vaccine = format!(
        "{}{pid}RXA|0|1|20240310090000|20240310090000|HBV^乙肝疫苗^CNVX|1|ml||||||||L2024031||CN001^示例生物^MVX|||CP\r",
        msh("VXU^V04^VXU_V04", "EXP-3")
    );
    let mut mllp = Mllp::connect(server.mllp.as_deref().unwrap());
    for message in [admit, result, vaccine] {
        let ack = mllp.send(message.as_bytes());
        assert_eq!(ack.code(), "AA", "{}", ack.text.replace('\r', "\n"));
    }
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn pseudonyms(lines: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = lines[1..].iter().map(|r| r["pseudonym"].as_str().unwrap().to_string()).collect();
    all.sort();
    all
}

/// Nothing that identifies a person directly appears anywhere in `text`.
fn assert_no_identifiers(text: &str, population: &Population) {
    for person in &population.persons {
        for field in ["name", "id_number"] {
            let value = person[field].as_str().unwrap();
            assert!(!text.contains(value), "{field} {value} leaked");
        }
    }
    for empi in &population.empi_ids {
        assert!(!text.contains(empi.as_str()), "EMPI id {empi} leaked");
    }
    for value in ["13800000000", "MRN-EXP-1", "VEXP0001", HOSPITAL, "文三路", "L2024031", "高血压", "血红蛋白"]
    {
        assert!(!text.contains(value), "{value} leaked");
    }
}

fn assert_valid(lines: &[Value]) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for line in lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
}

/// What the export of 330106 with k = 5 must hold.
fn assert_generalised(lines: &[Value]) {
    let header = &lines[0];
    assert_eq!(header["type"], "header");
    assert_eq!(header["format"], "rhip-deidentified-export");
    assert_eq!((header["node_region"].as_str(), header["export_region"].as_str()), (Some("330106"), Some("330106")));
    assert_eq!(header["k"], 5);
    assert_eq!(header["quasi_identifiers"], json!(["sex", "birth_year_or_age_band", "region"]));
    assert_eq!(header["pseudonym"]["domain"], "export_pseudonym");
    let counts = &header["counts"];
    assert_eq!(counts["persons_considered"], 11, "the 330108 resident is not considered: {header}");
    assert_eq!(counts["records_exported"], 10);
    assert_eq!(counts["records_suppressed"], 1);
    assert_eq!((counts["classes_exported"].as_u64(), counts["classes_suppressed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(header["suppressed"][0]["reason"], "equivalence_class_below_k");
    let actions: Vec<&str> =
        header["transformations"].as_array().unwrap().iter().map(|t| t["field"].as_str().unwrap()).collect();
    assert!(actions.contains(&"birth_date") && actions.contains(&"home_region") && actions.contains(&"empi_id"));

    let records = &lines[1..];
    assert_eq!(records.len(), 10);
    assert!(records.iter().all(|r| r["region"] == "330100"), "regions at municipal level");
    assert!(records.iter().all(|r| r["sex"] == "1"), "the only woman of 1980 is suppressed");
    let born_1980 = records.iter().filter(|r| r["birth_year"] == 1980 && r["age_band"].is_null()).count();
    let banded = records.iter().filter(|r| r["age_band"] == "90+" && r["birth_year"].is_null()).count();
    assert_eq!((born_1980, banded), (5, 5), "{records:?}");
    // The admitted man's record carries his care, coded and by month.
    let cared = records.iter().find(|r| !r["encounters"].as_array().unwrap().is_empty()).unwrap();
    let encounter = &cared["encounters"][0];
    assert_eq!(encounter["type"], "inpatient");
    assert_eq!(encounter["month"], "2024-03");
    assert_eq!(encounter["facility_kind"], "hospital");
    assert_eq!(encounter["diagnoses"], json!([{"system": "ICD10", "code": "I10", "role": "A"}]));
    assert_eq!(cared["results"], json!([{"month": "2024-03", "system": "LN", "code": "718-7", "abnormal": true}]));
    assert_eq!(cared["services"], json!([{"month": "2024-03", "kind": "immunization"}]));
    let pseudonym = cared["pseudonym"].as_str().unwrap();
    assert!(pseudonym.len() == 64 && pseudonym.chars().all(|c| c.is_ascii_hexdigit()));
}

fn export_cli(node: &NodeDir, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--region", "330106", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    node.cli(&["export", "deidentified"], &args)
}

fn check_cli(file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", "check", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    rhip(&args)
}

fn exports_are_de_identified_and_k_anonymous(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(HOSPITAL, "330106");
    let population = populate(&node);
    let server = node.start();
    send_care(&server, &population);

    // The command line: a summary, the file in place, nothing else left in the folder.
    let out: PathBuf = node.dir.path().join("exports/cli.jsonl");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let output = export_cli(&node, &out, &["--json", "--purpose", "chronic disease statistics"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["header"]["counts"]["records_exported"], 10, "{summary}");
    let text = std::fs::read_to_string(&out).unwrap();
    let from_cli = lines(&text);
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1, "no temporary file left behind");
    assert_no_identifiers(&text, &population);
    assert_valid(&from_cli);
    assert_generalised(&from_cli);

    // It passes its own check; a hand-tampered copy with a class below k does not.
    let output = check_cli(&out, &["--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["passed"].as_bool(), report["smallest_class"].as_u64()), (Some(true), Some(5)), "{report}");
    let tampered_path = node.dir.path().join("exports/tampered.jsonl");
    let mut tampered: Vec<String> = text.lines().map(str::to_string).collect();
    let man = tampered.iter().position(|l| l.contains("\"birth_year\":1980")).unwrap();
    tampered[man] = tampered[man].replace("\"sex\":\"1\"", "\"sex\":\"2\"");
    std::fs::write(&tampered_path, tampered.join("\n") + "\n").unwrap();
    assert_fails(
        &check_cli(&tampered_path, &[]),
        1,
        "class sex=2 birth_year=1980 region=330100 has 1 record(s), fewer than k=5",
    );
    // Against a larger k than its own, the original fails too, naming the class.
    assert_fails(&check_cli(&out, &["--k", "6"]), 1, "has 5 record(s), fewer than k=6");
    let garbage = node.dir.path().join("exports/garbage.jsonl");
    std::fs::write(&garbage, "{\"name\":\"张三\"}\n").unwrap();
    assert_fails(&check_cli(&garbage, &[]), 2, "line 1: not a header line");

    // The API, for a commission: the same people under the same pseudonyms.
    let commission = node.token("commission", &[]);
    let answer = server.get("/api/v1/exports/deidentified?region=330106&purpose=research", Some(&commission));
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.content_type, "application/x-ndjson");
    assert_no_identifiers(&answer.text, &population);
    let from_api = lines(&answer.text);
    assert_valid(&from_api);
    assert_generalised(&from_api);
    assert_eq!(pseudonyms(&from_api), pseudonyms(&from_cli), "pseudonyms are stable across exports");
    let api_file = node.dir.path().join("exports/api.jsonl");
    std::fs::write(&api_file, &answer.text).unwrap();
    assert!(check_cli(&api_file, &[]).status.success());
    // The default region is the caller's; a larger k suppresses more.
    let strict = server.get("/api/v1/exports/deidentified?k=6", Some(&commission));
    assert_eq!(strict.status, 200, "{}", strict.text);
    let strict = lines(&strict.text);
    assert_eq!((strict[0]["k"].as_u64(), strict.len()), (Some(6), 1), "every class is below 6");

    // One audit entry per export, with the counts and no identifier.
    let auditor = node.token("auditor", &[]);
    let audit = server.get("/api/v1/audit?action=export&outcome=success", Some(&auditor)).items();
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert!(audit.iter().all(|e| e["resource_type"] == "deidentified_export" && e["person"].is_null()));
    let purposes: Vec<&str> = audit.iter().map(|e| e["purpose"].as_str().unwrap()).collect();
    assert!(purposes.contains(&"chronic disease statistics") && purposes.contains(&"research"), "{purposes:?}");
    let detail: Value = serde_json::from_str(audit.last().unwrap()["detail"].as_str().unwrap()).unwrap();
    assert_eq!((detail["records_exported"].as_u64(), detail["k"].as_u64()), (Some(10), Some(5)), "{detail}");
    assert_no_identifiers(&serde_json::to_string(&audit).unwrap(), &population);
}

fn bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    populate(&node);
    let server = node.start();
    let commission = node.token("commission", &[]);
    let get = |query: &str, token: Option<&str>| server.get(&format!("/api/v1/exports/deidentified{query}"), token);
    let openapi = server.get("/api/openapi.json", None).json();
    assert!(openapi["paths"]["/api/v1/exports/deidentified"]["get"].is_object(), "OpenAPI lacks the export");

    // Bad k and region: 422 naming the field.
    for (query, field) in [
        ("?k=1", "k"),
        ("?k=abc", "k"),
        ("?k=3", "k"),
        ("?k=1001", "k"),
        ("?region=999999", "region"),
        ("?region=3301", "region"),
    ] {
        let answer = get(query, Some(&commission));
        assert_eq!(answer.status, 422, "{query}: {}", answer.text);
        assert!(answer.content_type.starts_with("application/problem+json"), "{query}");
        assert_eq!(answer.json()["errors"][0]["field"], field, "{query}: {}", answer.text);
    }
    // Outside the caller's jurisdiction, another role, another county's commission: 403.
    assert_eq!(get("?region=330108", Some(&commission)).status, 403);
    assert_eq!(get("?region=330100", Some(&commission)).status, 403, "the parent is not the caller's");
    node.add_facility(HOSPITAL, "330106");
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);
    assert_eq!(get("", Some(&hospital)).status, 403);
    let auditor = node.token("auditor", &[]);
    assert_eq!(get("", Some(&auditor)).status, 403);
    let key = rhip_tests::node_key(node.dir.path());
    let now = chrono::Utc::now().timestamp();
    let neighbour = key
        .mint(&rhip_auth::Claims {
            sub: "commission@330108".into(),
            role: rhip_core::Role::Commission,
            region: Some("330108".into()),
            facility: None,
            person: None,
            iss: "330106".into(),
            aud: "rhip".into(),
            iat: now,
            exp: now + 600,
            jti: "neighbour".into(),
        })
        .unwrap();
    let answer = get("?region=330106", Some(&neighbour));
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(answer.content_type.starts_with("application/problem+json"));
    assert_eq!(get("", None).status, 401);
    // The refusals are audited as denied; no export happened.
    let audit = server.get("/api/v1/audit?action=export", Some(&auditor)).items();
    assert_eq!(audit.len(), 5, "{audit:?}");
    assert!(audit.iter().all(|e| e["outcome"] == "denied"));

    // The command line: exit 2 naming the argument, and no file.
    let out = node.dir.path().join("refused.jsonl");
    let out_arg = out.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--region", "330108", "--out", out_arg], "--region: 330108 lies outside this node's jurisdiction"),
        (&["--region", "999999", "--out", out_arg], "--region"),
        (&["--region", "330106", "--out", out_arg, "--k", "1"], "--k: k must be a whole number from 2 to 1000"),
        (&["--region", "330106", "--out", out_arg, "--k", "3"], "--k: 3 is below this node's smallest k"),
        (
            &["--region", "330106", "--out", "/nonexistent/folder/x.jsonl"],
            "--out: folder /nonexistent/folder does not exist",
        ),
        (&["--region", "330106", "--out", out_arg, "--purpose", " "], "--purpose"),
    ];
    for (args, needle) in cases {
        assert_fails(&node.cli(&["export", "deidentified"], args), 2, needle);
        assert!(!out.exists());
    }
    assert_fails(&check_cli(&out, &[]), 2, "cannot read");
    assert_fails(&check_cli(&out, &["--k", "0"]), 2, "--k");
    let audit = server.get("/api/v1/audit?action=export", Some(&auditor)).items();
    assert_eq!(audit.len(), 5, "the command line's refusals write nothing");
}

both_backends! {
    exports_are_de_identified_and_k_anonymous => super::exports_are_de_identified_and_k_anonymous;
    bad_requests_are_refused_and_change_nothing => super::bad_requests_are_refused_and_change_nothing;
}
