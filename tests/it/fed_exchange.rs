//! Federation through real `rhip serve` processes: records submitted at a
//! county over MLLP reach the tiers the routing and retention rules say,
//! exactly once; forged, replayed, skipped and tampered batches are refused
//! and audited; a peer that is down or killed loses nothing.

use rhip_federation::{seal, Manifest, Payload, WireChange, GENESIS, MANIFEST_TYPE};
use rhip_tests::fed::{eventually, get_json, peer_agent, Federation};
use rhip_tests::{both_backends, node_key, Backend, Mllp, Node};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn citizen_id(region: &str, sequence: u16) -> String {
    let region = rhip_core::RegionCode::parse(region).unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1980, 5, 6).unwrap();
    rhip_core::CitizenId::generate(region, birth, sequence).as_str().to_string()
}

/// An ADT^A01 from `facility` for a synthetic resident of `home`.
fn admission(facility: &str, control: &str, mrn: &str, id_number: &str, home: &str, visit: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{facility}|RHIP|RHIP|20240301083000||ADT^A01^ADT_A01|{control}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20240301083000\r\
         PID|1||{mrn}^^^{facility}^MR~{id_number}^^^CHN^NNCHN||王^测试||19800506|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^{home}||13900001111\r\
         PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||{visit}|||||||||||||||||||||||||20240301080000\r"
    )
    .into_bytes()
}

fn send(node: &Node, message: &[u8]) {
    let mut mllp = Mllp::connect(node.mllp.as_deref().unwrap());
    let ack = mllp.send(message);
    assert_eq!(ack.code(), "AA", "{}", ack.text.replace('\r', "\n"));
}

fn persons_with(node: &Node, token: &str, id_number: &str) -> Vec<Value> {
    let answer = node.get(&format!("/api/v1/persons?id_number={id_number}"), Some(token));
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.items()
}

fn encounters_of(node: &Node, token: &str, person: &str) -> Vec<Value> {
    get_json(node, &format!("/api/v1/persons/{person}/encounters"), token)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn link<'a>(status: &'a Value, peer: &str) -> &'a Value {
    status["links"].as_array().unwrap().iter().find(|l| l["peer"] == peer).unwrap_or_else(|| panic!("{status}"))
}

/// Waits until a node has nothing pending for any peer.
fn quiet(node: &Node, token: &str) -> Value {
    eventually("no pending changes", WAIT, || {
        let status = get_json(node, "/api/v1/federation/status", token);
        status["links"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["pending_changes"] == 0 && l["unacked_batches"] == 0)
            .then_some(status)
    })
}

fn county_to_municipal(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else { return };
    fed.add_facility("330106", "H330106001");
    let hangzhou = fed.start("330100");
    let xihu = fed.start("330106");
    let at_hangzhou = fed.token("330100", "commission");
    let at_xihu = fed.token("330106", "commission");

    let id_number = citizen_id("330106", 15);
    let message = admission("H330106001", "F1", "MRN-F1", &id_number, "330106", "V-F1");
    send(&xihu, &message);
    let person = eventually("the person at Hangzhou", WAIT, || {
        let found = persons_with(&hangzhou, &at_hangzhou, &id_number);
        (found.len() == 1 && !found[0]["identifiers"].as_array().unwrap().is_empty()).then(|| found[0].clone())
    });
    let local = persons_with(&xihu, &at_xihu, &id_number);
    assert_eq!(person["empi_id"], local[0]["empi_id"], "the EMPI id is the same at every tier");
    assert_eq!(person["home_region"], "330106");
    let empi = person["empi_id"].as_str().unwrap().to_string();
    eventually("the encounter at Hangzhou", WAIT, || {
        (encounters_of(&hangzhou, &at_hangzhou, &empi).len() == 1).then_some(())
    });
    let ehr = get_json(&hangzhou, &format!("/api/v1/persons/{empi}/ehr"), &at_hangzhou);
    assert!(!ehr["items"].as_array().unwrap().is_empty(), "{ehr}");

    // A resend at the county changes nothing anywhere.
    send(&xihu, &message);
    let status = quiet(&xihu, &at_xihu);
    let parent = link(&status, "330100");
    assert_eq!(parent["direction"], "parent");
    assert!(parent["last_acked_seq"].as_i64().unwrap() >= 1, "{status}");
    assert_eq!(parent["last_acked_seq"], parent["last_sent_seq"], "{status}");
    assert_eq!(parent["failures"], 0);
    assert!(parent["last_acked_at"].is_string() && parent["last_sent_at"].is_string(), "{status}");
    assert_eq!(persons_with(&hangzhou, &at_hangzhou, &id_number).len(), 1);
    assert_eq!(encounters_of(&hangzhou, &at_hangzhou, &empi).len(), 1);

    let upstream = get_json(&hangzhou, "/api/v1/federation/status", &at_hangzhou);
    let child = link(&upstream, "330106");
    assert_eq!(child["direction"], "child");
    assert_eq!(child["last_received_seq"], parent["last_acked_seq"], "{upstream}");
    assert_eq!(upstream["dead_letters"], 0);
    // Nothing travels back down: the child link has nothing to send.
    assert_eq!(child["last_sent_seq"], 0, "{upstream}");

    // Metrics carry the link.
    let metrics = xihu.get("/metrics", None).text;
    assert!(metrics.contains("rhip_federation_link{") && metrics.contains("measure=\"last_acked_seq\""), "{metrics}");
    // Residents and hospitals do not see link status.
    let hospital = fed.token("330106", "auditor");
    assert_eq!(xihu.get("/api/v1/federation/status", Some(&hospital)).status, 200);
    assert_eq!(xihu.get("/api/v1/federation/status", None).status, 401);
    xihu.terminate();
    hangzhou.terminate();
}

both_backends!(county_to_municipal => super::county_to_municipal;);

/// A signed batch as the county would send it, built by the test with the
/// county's real key and certificate.
struct Forger {
    agent: ureq::Agent,
    url: String,
    key: rhip_auth::NodeKey,
}

impl Forger {
    fn post(&self, manifest: &str, payload: &[u8]) -> (u16, Value) {
        let result = self
            .agent
            .post(&format!("{}/federation/v1/batches", self.url))
            .set("x-rhip-manifest", manifest)
            .send_bytes(payload);
        match result {
            Ok(response) => (response.status(), response.into_json().unwrap()),
            Err(ureq::Error::Status(status, response)) => (status, response.into_json().unwrap()),
            Err(error) => panic!("transport: {error}"),
        }
    }
}

fn facility_change(code: &str, sequence: u32) -> WireChange {
    let now = chrono::Utc::now().naive_utc();
    WireChange {
        id: uuid::Uuid::now_v7().to_string(),
        hlc: format!("{:015}.{:06}", 1_795_000_000_000u64 + u64::from(sequence), 0),
        origin_region: "330106".into(),
        entity: "facility".into(),
        entity_id: code.into(),
        op: "create".into(),
        person_id: None,
        home_region: None,
        payload: json!({
            "code": code, "name": "测试医院", "kind": "hospital", "region": "330106", "status": "active",
            "hlc": format!("{:015}.{:06}", 1_795_000_000_000u64 + u64::from(sequence), 0),
            "created_at": now, "updated_at": now,
        }),
    }
}

#[test]
fn forged_replayed_skipped_and_tampered_batches_are_refused_and_audited() {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], Backend::Sqlite) else {
        return;
    };
    let hangzhou = fed.start("330100");
    let forger = Forger {
        agent: peer_agent(&fed.folder("330106").join("tls")),
        url: format!("https://{}", fed.address("330100")),
        key: node_key(&fed.folder("330106")),
    };
    let one = Payload { changes: vec![facility_change("H330106901", 1)] };
    let first = seal(&forger.key, "330106", "330100", 1, GENESIS, &one).unwrap();
    let (status, body) = forger.post(&first.manifest_jws, &first.payload);
    assert_eq!(status, 200, "{body}");
    let receipt = body["receipt"].as_str().unwrap().to_string();

    // A replay gets the same receipt and applies nothing again.
    let (status, body) = forger.post(&first.manifest_jws, &first.payload);
    assert_eq!((status, body["receipt"].as_str().unwrap()), (200, receipt.as_str()));

    let two = Payload { changes: vec![facility_change("H330106902", 2)] };
    // A skipped sequence: refused with the sequence expected.
    let skipped = seal(&forger.key, "330106", "330100", 3, &first.digest(), &two).unwrap();
    let (status, body) = forger.post(&skipped.manifest_jws, &skipped.payload);
    assert_eq!(
        (status, body["code"].as_str().unwrap(), body["expected_seq"].as_u64()),
        (409, "gap", Some(2)),
        "{body}"
    );

    let second = seal(&forger.key, "330106", "330100", 2, &first.digest(), &two).unwrap();
    // One payload byte flipped.
    let mut flipped = second.payload.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    let (status, body) = forger.post(&second.manifest_jws, &flipped);
    assert_eq!((status, body["code"].as_str().unwrap()), (422, "digest"), "{body}");
    // Signed by a key Hangzhou does not hold for Xihu.
    let (stranger, _) = rhip_auth::NodeKey::generate().unwrap();
    let forged = seal(&stranger, "330106", "330100", 2, &first.digest(), &two).unwrap();
    let (status, body) = forger.post(&forged.manifest_jws, &forged.payload);
    assert_eq!((status, body["code"].as_str().unwrap()), (403, "unknown_key"), "{body}");
    // A manifest whose signature bytes were altered.
    let mut parts: Vec<String> = second.manifest_jws.split('.').map(str::to_string).collect();
    let swapped: String = parts[2]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    parts[2] = swapped;
    let (status, body) = forger.post(&parts.join("."), &second.payload);
    assert_eq!((status, body["code"].as_str().unwrap()), (403, "bad_signature"), "{body}");
    // Chained to something else.
    let unchained = seal(&forger.key, "330106", "330100", 2, &"1".repeat(64), &two).unwrap();
    let (status, body) = forger.post(&unchained.manifest_jws, &unchained.payload);
    assert_eq!((status, body["code"].as_str().unwrap()), (422, "chain"), "{body}");
    // A newer schema version: the answer says what each side speaks.
    let bytes = two.encode();
    let future = Manifest {
        schema_version: 9,
        batch_id: uuid::Uuid::now_v7().to_string(),
        source: "330106".into(),
        target: "330100".into(),
        seq: 2,
        prev_digest: first.digest(),
        record_count: 1,
        payload_sha256: hex_sha256(&bytes),
        created_at: chrono::Utc::now(),
    };
    let jws = forger.key.sign_jws(MANIFEST_TYPE, &future).unwrap();
    let (status, body) = forger.post(&jws, &bytes);
    assert_eq!((status, body["code"].as_str().unwrap()), (400, "version"), "{body}");
    assert_eq!(body["ours"], json!([1]), "{body}");
    assert!(body["detail"].as_str().unwrap().contains('9'), "{body}");
    // No manifest at all.
    let (status, body) = forger.post("", &bytes);
    assert!(matches!(status, 400 | 403 | 422), "{status} {body}");

    // None of that changed anything: the honest batch 2 is still next.
    let (status, body) = forger.post(&second.manifest_jws, &second.payload);
    assert_eq!(status, 200, "{body}");
    let commission = fed.token("330100", "commission");
    let facilities = get_json(&hangzhou, "/api/v1/facilities", &commission);
    let codes: Vec<&str> = facilities["items"].as_array().unwrap().iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(codes.iter().filter(|c| c.starts_with("H3301069")).count(), 2, "{facilities}");

    let auditor = fed.token("330100", "auditor");
    let audit = get_json(&hangzhou, "/api/v1/audit?action=federation_apply&outcome=denied", &auditor);
    let details: Vec<String> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    for code in ["gap", "digest", "unknown_key", "bad_signature", "chain", "version"] {
        assert!(details.iter().any(|d| d.starts_with(code)), "{code} not audited: {details:?}");
    }
    hangzhou.terminate();
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
