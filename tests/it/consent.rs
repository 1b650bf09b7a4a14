//! Residents' consent through the real interfaces: a resident restricts a
//! sensitive category (`PUT /api/v1/me/consent`), and every read path of a
//! running node withholds it from those the restriction names (lists,
//! summary, encounter document, export), a clinician who breaks the glass
//! sees it with the override audited and shown to the resident, and bad
//! requests change nothing; on SQLite and PostgreSQL.

use rhip_tests::{both_backends, person, Backend, Mllp, Node, NodeDir};
use serde_json::{json, Value};

/// A psychiatric hospital and a general one, both in Xihu.
const MENTAL: &str = "H330106001";
const GENERAL: &str = "H330106002";
const GLASS: (&str, &str) = ("X-RHIP-Break-Glass", "patient unconscious in the emergency department");

/// An admission at `facility` with one diagnosis, for the person with `id_number`.
fn admission(facility: &str, visit: &str, id_number: &str, diagnosis: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{facility}|RHIP|330106|20240301083000||ADT^A01^ADT_A01|{visit}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20240301083000\r\
         PID|1||MRN-{visit}^^^{facility}^MR~{id_number}^^^CHN^NNCHN||赵^同意一||19800506|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^330106||13800000000\r\
         PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||{visit}|||||||||||||||||||||||||20240301080000\r\
         DG1|1||{diagnosis}^诊断^ICD10||20240301|A\r"
    )
    .into_bytes()
}

fn send(server: &Node, message: &[u8]) {
    let ack = Mllp::connect(server.mllp.as_deref().unwrap()).send(message);
    assert_eq!(ack.code(), "AA", "{}", ack.text.replace('\r', "\n"));
}

fn codes(encounters: &[Value]) -> Vec<String> {
    let mut codes: Vec<String> = encounters
        .iter()
        .flat_map(|e| e["diagnoses"].as_array().cloned().unwrap_or_default())
        .map(|d| d["code"].as_str().unwrap_or_default().to_string())
        .collect();
    codes.sort();
    codes
}

fn consent_withholds_sensitive_care_on_every_path(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(MENTAL, "330106");
    node.add_facility(GENERAL, "330106");
    // Five men born in 1980, so the export's classes reach k = 5.
    let persons: Vec<Value> =
        (0..5).map(|i| person(&format!("赵同意{i}"), "330106", (1980, 5, 6), 11 + 2 * i)).collect();
    let ids = node.import(&persons);
    let (empi, id_number) = (ids[0].clone(), persons[0]["id_number"].as_str().unwrap().to_string());
    let server = node.start();
    send(&server, &admission(MENTAL, "V-PSY-1", &id_number, "F32.9"));
    send(&server, &admission(GENERAL, "V-GEN-1", &id_number, "I10"));

    let resident = node.token("resident", &["--person", &empi]);
    let other_staff = node.token("clinician", &["--facility", GENERAL, "--sub", "dr-general"]);
    let own_staff = node.token("clinician", &["--facility", MENTAL, "--sub", "dr-psy"]);
    let commission = node.token("commission", &[]);
    let encounters = format!("/api/v1/persons/{empi}/encounters");

    // Before any consent, everyone in scope sees both.
    let before = server.get("/api/v1/me/consent", Some(&resident));
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.json()["restrictions"], json!([]));
    assert_eq!(before.json()["categories"], json!(["mental_health", "infectious_disease", "reproductive_health"]));
    assert_eq!(codes(&server.get(&encounters, Some(&other_staff)).items()), ["F32.9", "I10"]);

    // Bad requests: named, and nothing changes.
    let unknown = server.put("/api/v1/me/consent", Some(&resident), &json!({"restrictions": [{"category": "dental"}]}));
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.json()["errors"][0]["field"], "restrictions[0].category");
    let twice = json!({"restrictions": [{"category": "mental_health"}, {"category": "mental_health"}]});
    assert_eq!(server.put("/api/v1/me/consent", Some(&resident), &twice).status, 422);
    let extra = json!({"restrictions": [{"category": "mental_health", "everywhere": true}]});
    assert_eq!(server.put("/api/v1/me/consent", Some(&resident), &extra).status, 422);
    let by_staff = json!({"restrictions": [{"category": "mental_health", "other_facilities": true}]});
    assert_eq!(server.put("/api/v1/me/consent", Some(&own_staff), &by_staff).status, 403);
    assert_eq!(server.get("/api/v1/me/consent", Some(&resident)).json()["restrictions"], json!([]));

    // The resident keeps mental health from other facilities.
    let set = server.put("/api/v1/me/consent", Some(&resident), &by_staff);
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(
        set.json()["restrictions"],
        json!([{"category": "mental_health", "leave_home": false, "other_facilities": true}])
    );
    assert!(set.json()["updated_at"].is_string());
    assert_eq!(server.get("/api/v1/me/consent", Some(&resident)).json()["restrictions"], set.json()["restrictions"]);

    // Another facility's clinician: the psychiatric stay is gone from every list.
    let seen = server.get(&encounters, Some(&other_staff));
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(codes(&seen.items()), ["I10"]);
    assert!(seen.withheld.is_some_and(|n| n > 0), "the withheld header: {seen:?}");
    let ehr = server.get(&format!("/api/v1/persons/{empi}/ehr"), Some(&other_staff));
    assert!(ehr.items().iter().all(|e| e["facility"] != MENTAL), "{}", ehr.text);
    assert!(ehr.withheld.is_some());
    let summary = server.get(&format!("/api/v1/persons/{empi}/summary.xml"), Some(&other_staff));
    assert_eq!(summary.status, 200);
    assert!(!summary.text.contains("F32.9") && summary.text.contains("I10"), "{}", summary.text);
    // The resident sees everything, and finds the psychiatric encounter's id.
    let own = server.get("/api/v1/me/ehr", Some(&resident)).items();
    let psychiatric = own
        .iter()
        .find(|e| e["facility"] == MENTAL && e["encounter_id"].is_string())
        .map(|e| e["encounter_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("the resident sees the psychiatric stay: {own:?}"));
    let document = server.get(&format!("/api/v1/encounters/{psychiatric}/document.xml"), Some(&other_staff));
    assert_eq!(document.status, 403, "{}", document.text);
    assert!(document.json()["detail"].as_str().unwrap().contains("consent"), "{}", document.text);
    assert!(!document.text.contains("F32"));

    // The facility that recorded it, and the county commission, still see it.
    assert_eq!(codes(&server.get(&encounters, Some(&own_staff)).items()), ["F32.9", "I10"]);
    let authority = server.get(&encounters, Some(&commission));
    assert_eq!(codes(&authority.items()), ["F32.9", "I10"]);
    assert_eq!(authority.withheld, None);

    // Breaking the glass shows it, audited as an override the resident sees.
    let glass = server.get_with(&encounters, Some(&other_staff), &[GLASS]);
    assert_eq!(glass.status, 200, "{}", glass.text);
    assert_eq!(codes(&glass.items()), ["F32.9", "I10"]);
    assert_eq!(glass.withheld, None);
    let log = server.get("/api/v1/me/access-log", Some(&resident)).items();
    let override_entry = log
        .iter()
        .find(|e| e["actor"] == "dr-general" && e["detail"].as_str().is_some_and(|d| d.contains("consent_override")))
        .unwrap_or_else(|| panic!("the override in the access log: {log:?}"));
    assert_eq!(override_entry["detail"], "consent_override: mental_health", "{override_entry}");
    assert_eq!(override_entry["purpose"], format!("break_glass: {}", GLASS.1));
    let refused = log.iter().find(|e| e["actor"] == "dr-general" && e["outcome"] == "denied");
    assert!(refused.is_some_and(|e| e["resource_type"] == "encounter_document"), "{log:?}");
    assert!(log.iter().any(|e| e["resource_type"] == "consent" && e["action"] == "update"), "{log:?}");

    // The export leaves the platform: the category stays out of it.
    let out = node.dir.path().join("export.jsonl");
    let exported = node.cli(&["export", "deidentified"], &["--region", "330106", "--out", out.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("F32"), "{text}");
    assert!(text.contains("I10"), "{text}");
    assert!(text.lines().next().unwrap().contains("consent"), "the header says so: {text}");

    // Lifting the restriction shows it again.
    let lifted = server.put("/api/v1/me/consent", Some(&resident), &json!({"restrictions": []}));
    assert_eq!(lifted.status, 200, "{}", lifted.text);
    assert_eq!(codes(&server.get(&encounters, Some(&other_staff)).items()), ["F32.9", "I10"]);
}

both_backends! {
    consent_withholds_sensitive_care_on_every_path => super::consent_withholds_sensitive_care_on_every_path;
}
