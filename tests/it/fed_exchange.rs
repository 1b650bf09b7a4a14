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
    adt("A01", facility, control, mrn, id_number, home, visit, "测试")
}

/// An ADT message of `trigger` whose patient is called 王`given`.
#[allow(clippy::too_many_arguments)]
fn adt(
    trigger: &str,
    facility: &str,
    control: &str,
    mrn: &str,
    id_number: &str,
    home: &str,
    visit: &str,
    given: &str,
) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{facility}|RHIP|RHIP|20240301083000||ADT^{trigger}^ADT_A01|{control}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|{trigger}|20240301083000\r\
         PID|1||{mrn}^^^{facility}^MR~{id_number}^^^CHN^NNCHN||王^{given}||19800506|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^{home}||13900001111\r\
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
    // Down go only Hangzhou's token key and the audit entries of its reads
    // of the Xihu resident, which Xihu keeps; none of Xihu's own changes
    // comes back (Xihu would count them as already applied, not park them).
    assert!(child["last_sent_seq"].as_i64().unwrap() >= 1, "{upstream}");
    let auditor = fed.token("330106", "auditor");
    let travelled = eventually("Hangzhou's reads in Xihu's audit log", WAIT, || {
        let log = get_json(&xihu, &format!("/api/v1/audit?person={empi}&actor=commission@330100"), &auditor);
        let items = log["items"].as_array().cloned().unwrap_or_default();
        let from_hangzhou: Vec<Value> = items.into_iter().filter(|e| e["recorded_at"] == "330100").collect();
        (!from_hangzhou.is_empty()).then_some(from_hangzhou)
    });
    assert!(travelled.iter().all(|e| e["actor_region"] == "330100"), "{travelled:?}");
    assert_eq!(get_json(&xihu, "/api/v1/federation/status", &at_xihu)["dead_letters"], 0);

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

/// A municipal node whose own push round would not come for a year still
/// passes a county's admission on to its province: having applied the
/// county's batch, it pushes at once (the relay), so a change crossing the
/// middle tiers does not wait for their schedules.
fn a_middle_node_passes_applied_batches_on_without_waiting_for_its_schedule(backend: Backend) {
    let spec = [("330000", None), ("330100", Some("330000")), ("330106", Some("330100"))];
    let Some(fed) = Federation::init(&spec, backend) else { return };
    let config = fed.config("330100");
    let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    doc["federation"].as_table_mut().unwrap().insert("push_schedule".into(), "0 0 0 1 1 *".into());
    std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
    fed.add_facility("330106", "H330106001");
    let zhejiang = fed.start("330000");
    let _hangzhou = fed.start("330100");
    let xihu = fed.start("330106");
    let at_zhejiang = fed.token("330000", "commission");
    let id_number = citizen_id("330106", 41);
    send(&xihu, &admission("H330106001", "R1", "MRN-R1", &id_number, "330106", "V-R1"));
    eventually("the person at Zhejiang, through Hangzhou's relay", WAIT, || {
        (persons_with(&zhejiang, &at_zhejiang, &id_number).len() == 1).then_some(())
    });
}

both_backends! {
    a_middle_node_passes_applied_batches_on_without_waiting_for_its_schedule => super::a_middle_node_passes_applied_batches_on_without_waiting_for_its_schedule;
    county_to_municipal => super::county_to_municipal;
    forged_replayed_skipped_and_tampered_batches_are_refused_and_audited => super::forged_replayed_skipped_and_tampered_batches_are_refused_and_audited;
    a_parent_that_is_down_or_killed_loses_nothing => super::a_parent_that_is_down_or_killed_loses_nothing;
    a_link_that_drops_connections_at_random_delivers_everything_once => super::a_link_that_drops_connections_at_random_delivers_everything_once;
    a_rotated_key_is_learnt_from_its_announcement_and_both_keys_are_accepted => super::a_rotated_key_is_learnt_from_its_announcement_and_both_keys_are_accepted;
}

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
        })
        .into(),
    }
}

fn forged_replayed_skipped_and_tampered_batches_are_refused_and_audited(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else {
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

/// A CA like the one `rhip federation init` writes, rebuilt from its key so
/// the test can issue certificates the federation's nodes would trust.
fn federation_ca(fed: &Federation) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(fed.out.join("ca/ca.key")).unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = names("test federation CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn names(common_name: &str) -> rcgen::DistinguishedName {
    let mut names = rcgen::DistinguishedName::new();
    names.push(rcgen::DnType::CommonName, common_name);
    names.push(rcgen::DnType::OrganizationName, "test federation");
    names
}

/// A node certificate for `region`, valid from `first` to `last` (days from today).
fn node_certificate(region: &str, ca: &(rcgen::Certificate, rcgen::KeyPair), days: (i64, i64)) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = names(region);
    params.subject_alt_names = vec![
        rcgen::SanType::URI(format!("urn:rhip:region:{region}").try_into().unwrap()),
        rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()),
    ];
    params.extended_key_usages =
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let today = chrono::Utc::now().date_naive();
    let at = |offset: i64| {
        use chrono::Datelike;
        let day = today + chrono::Duration::days(offset);
        rcgen::date_time_ymd(day.year(), day.month() as u8, day.day() as u8)
    };
    params.not_before = at(days.0);
    params.not_after = at(days.1);
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A client presenting `cert`/`key`, trusting the federation's CA for the server.
fn agent_with(fed: &Federation, (cert, key): &(String, String)) -> ureq::Agent {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(fed.out.join("ca/ca.crt")).unwrap()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    ureq::AgentBuilder::new().tls_config(std::sync::Arc::new(config)).timeout(Duration::from_secs(10)).build()
}

#[test]
fn only_the_parent_and_children_get_through_the_federation_listener() {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], Backend::Sqlite) else {
        return;
    };
    let hangzhou = fed.start("330100");
    let hello = format!("https://{}/federation/v1/hello", fed.address("330100"));

    // The real child gets in and learns who it speaks to.
    let answer: Value = peer_agent(&fed.folder("330106").join("tls")).get(&hello).call().unwrap().into_json().unwrap();
    assert_eq!(answer["region"], "330100");
    assert_eq!(answer["schema_versions"], json!([1]));
    assert_eq!(answer["retention"]["emr"], "full");

    let ours = federation_ca(&fed);
    let (stranger_ca, stranger_key) = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = names("test federation CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        (params.self_signed(&key).unwrap(), key)
    };
    let refused = [
        ("another CA", node_certificate("330106", &(stranger_ca, stranger_key), (-1, 30))),
        ("expired", node_certificate("330106", &ours, (-30, -1))),
        ("not a peer", node_certificate("330108", &ours, (-1, 30))),
    ];
    for (what, cert) in &refused {
        let result = agent_with(&fed, cert).get(&hello).call();
        assert!(matches!(result, Err(ureq::Error::Transport(_))), "{what}: {result:?}");
    }
    // Without any certificate.
    let bare = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new({
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            roots.add(rustls::pki_types::CertificateDer::from_pem_file(fed.out.join("ca/ca.crt")).unwrap()).unwrap();
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }))
        .build();
    assert!(bare.get(&hello).call().is_err());
    // Plain HTTP to the federation port is not spoken.
    assert!(ureq::get(&format!("http://{}/federation/v1/hello", fed.address("330100"))).call().is_err());
    // The listener still serves its peer after all that.
    assert!(peer_agent(&fed.folder("330106").join("tls")).get(&hello).call().is_ok());

    let auditor = fed.token("330100", "auditor");
    let audit = eventually("refusals audited", WAIT, || {
        let audit = get_json(&hangzhou, "/api/v1/audit?action=connect&outcome=denied", &auditor);
        (audit["items"].as_array().unwrap().len() >= 3).then_some(audit)
    });
    let details: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["detail"].as_str()).collect();
    assert!(details.iter().any(|d| d.contains("region 330108 is not a peer")), "{details:?}");
    assert!(details.iter().any(|d| d.to_lowercase().contains("expired")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("certificate refused")), "{details:?}");
    hangzhou.terminate();
}

const DEMO: [(&str, Option<&str>); 8] = [
    ("000000", None),
    ("330000", Some("000000")),
    ("330100", Some("330000")),
    ("330106", Some("330100")),
    ("330108", Some("330100")),
    ("440000", Some("000000")),
    ("440100", Some("440000")),
    ("440106", Some("440100")),
];

#[test]
fn a_xihu_resident_treated_in_tianhe_reaches_xihu_through_the_national_node() {
    let Some(fed) = Federation::init(&DEMO, Backend::Sqlite) else { return };
    fed.add_facility("440106", "H440106001");
    let nodes: Vec<(&str, Node)> = DEMO.iter().map(|(region, _)| (*region, fed.start(region))).collect();
    let node = |region: &str| &nodes.iter().find(|(r, _)| *r == region).unwrap().1;
    let id_number = citizen_id("330106", 17);
    let mut admitted = admission("H440106001", "T1", "MRN-T1", &id_number, "330106", "V-T1");
    admitted.extend_from_slice("DG1|1||I10^高血压^ICD10||20240301|A\r".as_bytes());
    send(node("440106"), &admitted);
    let results = format!(
        "MSH|^~\\&|LIS|H440106001|RHIP|RHIP|20240302100000||ORU^R01^ORU_R01|T2|P|2.5|||AL|NE||UNICODE UTF-8\r\
         PID|1||MRN-T1^^^H440106001^MR~{id_number}^^^CHN^NNCHN||王^测试||19800506|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^330106||13900001111\r\
         OBR|1|ORD1|LAB1|CBC^血常规^LN|||20240302090000||||||||||||||20240302100000|||F\r\
         OBX|1|NM|718-7^血红蛋白^LN||98|g/L|115-150|L|||F|||20240302093000\r"
    );
    send(node("440106"), results.as_bytes());
    let at_xihu = fed.token("330106", "commission");
    let empi = eventually("the Tianhe encounter at Xihu", WAIT, || {
        let found = persons_with(node("330106"), &at_xihu, &id_number);
        let person = found.first()?;
        let empi = person["empi_id"].as_str()?.to_string();
        (encounters_of(node("330106"), &at_xihu, &empi).len() == 1).then_some(empi)
    });
    // Commissions see their own residents; elsewhere the treating hospital's clinicians
    // see the patient (the facility travels up with the records).
    let tokens: Vec<(&str, String)> = DEMO
        .iter()
        .map(|(r, _)| {
            let token = if ["000000", "330000", "330100", "330106", "330108"].contains(r) {
                fed.token(r, "commission")
            } else {
                fed.token_with(r, "clinician", &["--facility", "H440106001"])
            };
            (*r, token)
        })
        .collect();
    let token = |region: &str| tokens.iter().find(|(r, _)| *r == region).unwrap().1.as_str();

    // The diagnosis and the result made in Tianhe are in the home county's record too.
    let at_home = eventually("the Tianhe result at Xihu", WAIT, || {
        let results = get_json(node("330106"), &format!("/api/v1/persons/{empi}/observations"), &at_xihu);
        (results["items"].as_array()?.len() == 1).then_some(results)
    });
    assert_eq!(at_home["items"][0]["code"], "718-7", "{at_home}");
    let encounter = &encounters_of(node("330106"), &at_xihu, &empi)[0];
    assert_eq!(encounter["diagnoses"][0]["code"], "I10", "{encounter}");
    // Every node on the path holds the person and the encounter exactly once; Binjiang,
    // off the path, holds nothing.
    for region in ["440106", "440100", "440000", "000000", "330000", "330100", "330106"] {
        let found = persons_with(node(region), token(region), &id_number);
        assert_eq!(found.len(), 1, "{region}: {found:?}");
        assert_eq!(found[0]["empi_id"], empi.as_str(), "{region}");
        assert_eq!(found[0]["home_region"], "330106", "{region}");
        assert_eq!(encounters_of(node(region), token(region), &empi).len(), 1, "{region}");
    }
    for region in DEMO.iter().map(|(r, _)| *r) {
        quiet(node(region), &fed.token(region, "node_admin"));
    }
    assert!(persons_with(node("330108"), token("330108"), &id_number).is_empty());

    // A document written in Tianhe about a Xihu resident travels with its bytes
    // through the national node, which keeps only its index, to Xihu.
    let kind = &rhip_cda::registry::all()[0];
    let mut document = crate::documents::doc(&kind.code, "FED-DOC-T", 105);
    document.facility = "H440106001";
    let body = crate::documents::render(&document, crate::documents::Style::Plain);
    let hospital = fed.token_with("440106", "hospital_system", &["--facility", "H440106001"]);
    let answer = ureq::post(&format!("{}/api/v1/documents", node("440106").api))
        .set("Authorization", &format!("Bearer {hospital}"))
        .set("Content-Type", "application/xml")
        .send_bytes(&body)
        .unwrap();
    let document_id = answer.into_json::<Value>().unwrap()["id"].as_str().unwrap().to_string();
    let bytes_at = |region: &str, token: &str| {
        let answer = ureq::get(&format!("{}/api/v1/documents/{document_id}", node(region).api))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "application/xml")
            .call();
        answer.ok().map(|response| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
            bytes
        })
    };
    let at_home = eventually("the Tianhe document's bytes at Xihu", WAIT, || bytes_at("330106", &at_xihu));
    assert_eq!(at_home, body);
    let hangzhou_auditor = fed.token("330100", "auditor");
    let reads = get_json(node("330100"), "/api/v1/audit?action=federated_read", &hangzhou_auditor);
    assert!(reads["items"].as_array().unwrap().is_empty(), "Xihu holds the bytes itself: {reads}");
    // The national node forwarded them without keeping them: asked, it fetches them from Guangdong.
    assert_eq!(bytes_at("000000", token("000000")).as_deref(), Some(body.as_slice()));
    let guangdong = get_json(node("440000"), "/api/v1/audit?action=federated_read", &fed.token("440000", "auditor"));
    assert_eq!(guangdong["items"][0]["actor"], "node:000000", "{guangdong}");
    // The encounter came home the long way and went nowhere twice.
    let xihu = get_json(node("330106"), "/api/v1/federation/status", token("330106"));
    assert!(link(&xihu, "330100")["last_received_seq"].as_i64().unwrap() >= 1, "{xihu}");
    assert_eq!(link(&xihu, "330100")["last_sent_seq"], 0, "Xihu sends nothing back up: {xihu}");
    let national = get_json(node("000000"), "/api/v1/federation/status", &fed.token("000000", "node_admin"));
    assert_eq!(national["retention"]["emr"], "index");
    for (_, node) in nodes {
        node.terminate();
    }
}

fn a_parent_that_is_down_or_killed_loses_nothing(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else {
        return;
    };
    fed.add_facility("330106", "H330106001");
    let xihu = fed.start("330106");
    let at_xihu = fed.token("330106", "commission");
    // Odd sequences: the messages say the patients are men (GB 11643).
    let ids: Vec<String> = (0..60).map(|i| citizen_id("330106", 101 + 2 * i)).collect();
    let mut mllp = Mllp::connect(xihu.mllp.as_deref().unwrap());
    for (i, id) in ids.iter().enumerate().take(30) {
        let ack = mllp.send(&admission(
            "H330106001",
            &format!("D{i}"),
            &format!("MRN-D{i}"),
            id,
            "330106",
            &format!("V-D{i}"),
        ));
        assert_eq!(ack.code(), "AA");
    }
    // The parent is down: the link reports failures and what waits.
    let status = eventually("the failure reported", WAIT, || {
        let status = get_json(&xihu, "/api/v1/federation/status", &at_xihu);
        (link(&status, "330100")["failures"].as_i64().unwrap() >= 1).then_some(status)
    });
    let parent = link(&status, "330100");
    assert!(parent["pending_changes"].as_i64().unwrap() >= 30, "{status}");
    assert!(parent["last_error"].as_str().unwrap().contains("unreachable"), "{status}");
    assert_eq!(parent["last_acked_seq"], 0);

    // It comes back, is killed while batches flow, and comes back again.
    let hangzhou = fed.start("330100");
    for (i, id) in ids.iter().enumerate().skip(30) {
        let ack = mllp.send(&admission(
            "H330106001",
            &format!("D{i}"),
            &format!("MRN-D{i}"),
            id,
            "330106",
            &format!("V-D{i}"),
        ));
        assert_eq!(ack.code(), "AA");
        if i == 40 {
            let mut killed = hangzhou;
            killed.child.kill().unwrap();
            killed.child.wait().unwrap();
            break;
        }
    }
    for (i, id) in ids.iter().enumerate().skip(41) {
        let ack = mllp.send(&admission(
            "H330106001",
            &format!("D{i}"),
            &format!("MRN-D{i}"),
            id,
            "330106",
            &format!("V-D{i}"),
        ));
        assert_eq!(ack.code(), "AA");
    }
    let hangzhou = fed.start("330100");
    let at_hangzhou = fed.token("330100", "commission");
    quiet(&xihu, &at_xihu);
    for id in &ids {
        let found = persons_with(&hangzhou, &at_hangzhou, id);
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        let empi = found[0]["empi_id"].as_str().unwrap();
        assert_eq!(encounters_of(&hangzhou, &at_hangzhou, empi).len(), 1, "{id}");
    }
    let status = get_json(&xihu, "/api/v1/federation/status", &at_xihu);
    assert_eq!(link(&status, "330100")["failures"], 0, "{status}");
    assert!(link(&status, "330100")["last_error"].is_null(), "{status}");
    xihu.terminate();
    hangzhou.terminate();
}

#[test]
fn a_document_the_national_node_indexes_is_fetched_from_a_node_that_holds_it() {
    let chain = [("000000", None), ("330000", Some("000000")), ("330100", Some("330000")), ("330106", Some("330100"))];
    let Some(fed) = Federation::init(&chain, Backend::Sqlite) else { return };
    fed.add_facility("330106", "H330106001");
    let nodes: Vec<(&str, Node)> = chain.iter().map(|(region, _)| (*region, fed.start(region))).collect();
    let node = |region: &str| &nodes.iter().find(|(r, _)| *r == region).unwrap().1;

    let kind = &rhip_cda::registry::all()[0];
    let body =
        crate::documents::render(&crate::documents::doc(&kind.code, "FED-DOC-1", 103), crate::documents::Style::Plain);
    let hospital = fed.token_with("330106", "hospital_system", &["--facility", "H330106001"]);
    let answer = ureq::post(&format!("{}/api/v1/documents", node("330106").api))
        .set("Authorization", &format!("Bearer {hospital}"))
        .set("Content-Type", "application/xml")
        .send_bytes(&body)
        .unwrap();
    assert_eq!(answer.status(), 201);
    let stored: Value = answer.into_json().unwrap();
    let id = stored["id"].as_str().unwrap().to_string();

    let national = fed.token("000000", "commission");
    let index = eventually("the index entry at the national node", WAIT, || {
        let answer = node("000000").get(&format!("/api/v1/documents/{id}"), Some(&national));
        (answer.status == 200).then(|| answer.json())
    });
    assert_eq!(index["type"], kind.code.as_str(), "{index}");
    quiet(node("330106"), &fed.token("330106", "node_admin"));

    let fetch = |region: &str, token: &str| {
        let answer = ureq::get(&format!("{}/api/v1/documents/{id}", node(region).api))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "application/xml")
            .call();
        let response = match answer {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{error}"),
        };
        let status = response.status();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
        (status, bytes)
    };
    // The province keeps the bytes; the national node keeps the index and fetches them.
    assert_eq!(fetch("330000", &fed.token("330000", "commission")), (200, body.clone()));
    assert_eq!(fetch("000000", &national), (200, body.clone()));
    let auditor = fed.token("330000", "auditor");
    let audit = get_json(node("330000"), "/api/v1/audit?action=federated_read", &auditor);
    let entry = &audit["items"][0];
    assert_eq!(entry["actor"], "node:000000", "{audit}");
    assert_eq!(entry["resource_id"], id.as_str());
    assert!(entry["detail"].as_str().unwrap().contains("commission"), "{audit}");
    // A resident of elsewhere's commission is still refused before anything is fetched.
    let stranger = fed.token_with("000000", "commission", &["--region", "440000"]);
    assert_eq!(fetch("000000", &stranger).0, 403);
    // The holder's branch is down: the national node says so instead of failing.
    let province = nodes.iter().position(|(r, _)| *r == "330000").unwrap();
    let mut nodes = nodes;
    let (_, zhejiang) = nodes.remove(province);
    zhejiang.terminate();
    let node = |region: &str| &nodes.iter().find(|(r, _)| *r == region).unwrap().1;
    let answer = ureq::get(&format!("{}/api/v1/documents/{id}", node("000000").api))
        .set("Authorization", &format!("Bearer {national}"))
        .set("Accept", "application/xml")
        .call();
    match answer {
        Err(ureq::Error::Status(503, response)) => {
            let problem: Value = response.into_json().unwrap();
            assert!(problem["detail"].as_str().unwrap().contains("330106"), "{problem}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    for (_, node) in nodes {
        node.terminate();
    }
}

#[test]
fn two_counties_updating_one_person_agree_wherever_both_updates_arrive() {
    let spec = [("330100", None), ("330106", Some("330100")), ("330108", Some("330100"))];
    let Some(fed) = Federation::init(&spec, Backend::Sqlite) else { return };
    fed.add_facility("330106", "H330106001");
    fed.add_facility("330108", "H330108001");
    let hangzhou = fed.start("330100");
    let xihu = fed.start("330106");
    let binjiang = fed.start("330108");
    let (at_hangzhou, at_xihu) = (fed.token("330100", "commission"), fed.token("330106", "commission"));
    let id_number = citizen_id("330106", 19);

    // Known at home first, then treated in Binjiang under Binjiang's own EMPI id.
    send(&xihu, &adt("A01", "H330106001", "C1", "MRN-X", &id_number, "330106", "V-X", "初"));
    eventually("the person at Hangzhou", WAIT, || {
        (persons_with(&hangzhou, &at_hangzhou, &id_number).len() == 1).then_some(())
    });
    send(&binjiang, &adt("A01", "H330108001", "C2", "MRN-B", &id_number, "330106", "V-B", "初"));
    let empi = persons_with(&xihu, &at_xihu, &id_number)[0]["empi_id"].as_str().unwrap().to_string();
    eventually("Binjiang's encounter at Xihu", WAIT, || {
        (encounters_of(&xihu, &at_xihu, &empi).len() == 2).then_some(())
    });

    // Both counties change the name at once; the home county's change wins everywhere
    // both arrive, whatever the order they arrive in.
    let home = std::thread::scope(|scope| {
        let a =
            scope.spawn(|| send(&xihu, &adt("A08", "H330106001", "C3", "MRN-X", &id_number, "330106", "V-X", "甲")));
        let b = scope
            .spawn(|| send(&binjiang, &adt("A08", "H330108001", "C4", "MRN-B", &id_number, "330106", "V-B", "乙")));
        a.join().unwrap();
        b.join().unwrap();
        "王甲"
    });
    for (node, region) in [(&xihu, "330106"), (&binjiang, "330108"), (&hangzhou, "330100")] {
        quiet(node, &fed.token(region, "node_admin"));
    }
    for (node, token) in [(&xihu, &at_xihu), (&hangzhou, &at_hangzhou)] {
        let found = persons_with(node, token, &id_number);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["name"], home, "{found:?}");
        assert_eq!(found[0]["empi_id"], empi.as_str(), "one EMPI id: the first one known here");
        let systems: Vec<&str> =
            found[0]["identifiers"].as_array().unwrap().iter().filter_map(|i| i["system"].as_str()).collect();
        assert!(systems.contains(&"H330106001") && systems.contains(&"H330108001"), "{systems:?}");
    }
    // A later change from elsewhere does not override the home county either.
    send(&binjiang, &adt("A08", "H330108001", "C5", "MRN-B", &id_number, "330106", "V-B", "丙"));
    quiet(&binjiang, &fed.token("330108", "node_admin"));
    quiet(&hangzhou, &fed.token("330100", "node_admin"));
    assert_eq!(persons_with(&xihu, &at_xihu, &id_number)[0]["name"], home);
    assert_eq!(persons_with(&hangzhou, &at_hangzhou, &id_number)[0]["name"], home);
    for node in [xihu, binjiang, hangzhou] {
        node.terminate();
    }
}

fn a_link_that_drops_connections_at_random_delivers_everything_once(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else {
        return;
    };
    fed.add_facility("330106", "H330106001");
    let proxy = rhip_tests::proxy::FaultyProxy::start(fed.address("330100"), 0x5eed);
    // Xihu reaches its parent only through the proxy.
    let config = fed.config("330106");
    let text = std::fs::read_to_string(&config).unwrap();
    let direct = format!("https://{}", fed.address("330100"));
    std::fs::write(&config, text.replace(&direct, &format!("https://{}", proxy.address))).unwrap();
    let hangzhou = fed.start("330100");
    let xihu = fed.start("330106");
    let ids: Vec<String> = (0..80).map(|i| citizen_id("330106", 301 + 2 * i)).collect();
    let mut mllp = Mllp::connect(xihu.mllp.as_deref().unwrap());
    for (i, id) in ids.iter().enumerate() {
        let message = admission("H330106001", &format!("P{i}"), &format!("MRN-P{i}"), id, "330106", &format!("V-P{i}"));
        assert_eq!(mllp.send(&message).code(), "AA");
    }
    let at_hangzhou = fed.token("330100", "commission");
    quiet(&xihu, &fed.token("330106", "node_admin"));
    for id in &ids {
        let found = persons_with(&hangzhou, &at_hangzhou, id);
        assert_eq!(found.len(), 1, "{id}");
        let empi = found[0]["empi_id"].as_str().unwrap();
        assert_eq!(encounters_of(&hangzhou, &at_hangzhou, empi).len(), 1, "{id}");
    }
    assert!(proxy.cuts.load(std::sync::atomic::Ordering::Relaxed) > 0, "the proxy cut no connection");
    let upstream = get_json(&hangzhou, "/api/v1/federation/status", &fed.token("330100", "node_admin"));
    assert_eq!(upstream["dead_letters"], 0, "{upstream}");
    xihu.terminate();
    hangzhou.terminate();
}

fn a_rotated_key_is_learnt_from_its_announcement_and_both_keys_are_accepted(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else {
        return;
    };
    fed.add_facility("330106", "H330106001");
    let at_hangzhou = fed.token("330100", "commission");
    let old_token = fed.token("330106", "commission");
    let ids: Vec<String> = (0..3).map(|i| citizen_id("330106", 501 + 2 * i)).collect();
    let admit = |node: &Node, i: usize| {
        send(
            node,
            &admission("H330106001", &format!("R{i}"), &format!("MRN-R{i}"), &ids[i], "330106", &format!("V-R{i}")),
        )
    };
    let arrived = |node: &Node, i: usize| {
        eventually("the person at Hangzhou", WAIT, || {
            (persons_with(node, &at_hangzhou, &ids[i]).len() == 1).then_some(())
        })
    };
    let (hangzhou, xihu) = (fed.start("330100"), fed.start("330106"));
    admit(&xihu, 0);
    arrived(&hangzhou, 0);
    xihu.terminate();
    hangzhou.terminate();

    // Both ends rotate while stopped.
    let rotate = |region: &str| -> Value {
        let config = fed.config(region);
        serde_json::from_str(&rhip_tests::rhip_ok(&[
            "federation",
            "rotate-key",
            "--config",
            config.to_str().unwrap(),
            "--json",
        ]))
        .unwrap()
    };
    let (xihu_key, hangzhou_key) = (rotate("330106"), rotate("330100"));
    assert_ne!(xihu_key["key_id"], xihu_key["previous_key_id"]);
    let (hangzhou, xihu) = (fed.start("330100"), fed.start("330106"));
    admit(&xihu, 1);
    arrived(&hangzhou, 1);
    // Each learnt the other's new key from its announcement and kept it.
    let learnt = |region: &str, peer: &str, key: &Value| {
        fed.folder(region).join("trust").join(format!("{peer}.{}.pub.pem", key["key_id"].as_str().unwrap())).is_file()
    };
    assert!(learnt("330100", "330106", &xihu_key), "Hangzhou keeps Xihu's new key");
    assert!(learnt("330106", "330100", &hangzhou_key), "Xihu keeps Hangzhou's new key");
    let auditor = fed.token("330100", "auditor");
    let audit = get_json(&hangzhou, "/api/v1/audit?action=federation_key", &auditor);
    assert_eq!(audit["items"][0]["resource_id"], xihu_key["key_id"], "{audit}");
    // A token signed with Xihu's old key is still good during the overlap.
    assert_eq!(xihu.get("/api/v1/federation/status", Some(&old_token)).status, 200);

    // An announcement signed by a key Hangzhou never trusted teaches it nothing.
    let forger = Forger {
        agent: peer_agent(&fed.folder("330106").join("tls")),
        url: format!("https://{}", fed.address("330100")),
        key: rhip_auth::NodeKey::generate().unwrap().0,
    };
    let (impostor, _) = rhip_auth::NodeKey::generate().unwrap();
    let forged_announcement = forger.key.announce("330106", &impostor).unwrap();
    let payload = Payload { changes: vec![facility_change("H330106903", 9)] };
    let batch = seal(&impostor, "330106", "330100", 99, &"2".repeat(64), &payload).unwrap();
    let answer = forger
        .agent
        .post(&format!("{}/federation/v1/batches", forger.url))
        .set("x-rhip-manifest", &batch.manifest_jws)
        .set("x-rhip-key-announcement", &forged_announcement)
        .send_bytes(&batch.payload);
    match answer {
        Err(ureq::Error::Status(403, response)) => {
            assert_eq!(response.into_json::<Value>().unwrap()["code"], "unknown_key");
        }
        other => panic!("expected 403 unknown_key, got {other:?}"),
    }
    assert!(!learnt("330100", "330106", &json!({ "key_id": impostor.key_id() })));

    // The learnt keys survive a restart.
    hangzhou.terminate();
    let hangzhou = fed.start("330100");
    admit(&xihu, 2);
    arrived(&hangzhou, 2);
    xihu.terminate();
    hangzhou.terminate();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn reconciliation_resends_what_a_parent_restored_from_a_backup_lost() {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], Backend::Sqlite) else {
        return;
    };
    fed.add_facility("330106", "H330106001");
    let config = fed.config("330106");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("reconcile_schedule = \"0 30 2 * * *\"", "reconcile_schedule = \"*/2 * * * * *\""),
    )
    .unwrap();
    let ids: Vec<String> = (0..10).map(|i| citizen_id("330106", 701 + 2 * i)).collect();
    let admit = |node: &Node, i: usize| {
        send(
            node,
            &admission("H330106001", &format!("B{i}"), &format!("MRN-B{i}"), &ids[i], "330106", &format!("V-B{i}")),
        )
    };
    let (at_hangzhou, admin) = (fed.token("330100", "commission"), fed.token("330106", "node_admin"));
    let data = fed.folder("330100").join("data");
    let backup = fed.dir.path().join("backup");

    let (hangzhou, xihu) = (fed.start("330100"), fed.start("330106"));
    (0..5).for_each(|i| admit(&xihu, i));
    quiet(&xihu, &admin);
    hangzhou.terminate();
    copy_dir(&data, &backup);
    let hangzhou = fed.start("330100");
    (5..10).for_each(|i| admit(&xihu, i));
    quiet(&xihu, &admin);
    assert_eq!(persons_with(&hangzhou, &at_hangzhou, &ids[9]).len(), 1);
    let acked = link(&get_json(&xihu, "/api/v1/federation/status", &admin), "330100")["last_acked_seq"].clone();

    // The parent loses its disk and comes back from last night's backup.
    hangzhou.terminate();
    copy_dir(&backup, &data);
    let hangzhou = fed.start("330100");
    assert!(persons_with(&hangzhou, &at_hangzhou, &ids[9]).is_empty(), "the backup predates the second half");
    for id in &ids {
        eventually("the lost records resent", WAIT, || {
            (persons_with(&hangzhou, &at_hangzhou, id).len() == 1).then_some(())
        });
    }
    let upstream = get_json(&hangzhou, "/api/v1/federation/status", &fed.token("330100", "node_admin"));
    assert_eq!(link(&upstream, "330106")["last_received_seq"], acked, "{upstream}");
    xihu.terminate();
    hangzhou.terminate();
}

#[test]
fn reconciliation_prunes_acknowledged_batches_beyond_the_window() {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], Backend::Sqlite) else {
        return;
    };
    fed.add_facility("330106", "H330106001");
    let config = fed.config("330106");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("reconcile_schedule = \"0 30 2 * * *\"", "reconcile_schedule = \"*/2 * * * * *\"");
    std::fs::write(&config, text.replace("keep_acked_batches = 10000", "keep_acked_batches = 2")).unwrap();
    let (hangzhou, xihu) = (fed.start("330100"), fed.start("330106"));
    let admin = fed.token("330106", "node_admin");
    for i in 0..5u16 {
        let id = citizen_id("330106", 901 + 2 * i);
        send(
            &xihu,
            &admission("H330106001", &format!("K{i}"), &format!("MRN-K{i}"), &id, "330106", &format!("V-K{i}")),
        );
        quiet(&xihu, &admin);
    }
    let status = eventually("acknowledged batches pruned to the window", WAIT, || {
        let status = get_json(&xihu, "/api/v1/federation/status", &admin);
        (link(&status, "330100")["kept_batches"] == 2).then_some(status)
    });
    assert!(link(&status, "330100")["last_acked_seq"].as_i64().unwrap() >= 5, "{status}");
    xihu.terminate();
    hangzhou.terminate();
}

#[test]
fn value_domains_published_nationally_reach_every_node_and_validation_uses_them() {
    let spec = [("000000", None), ("330000", Some("000000")), ("330106", Some("330000"))];
    let Some(fed) = Federation::init(&spec, Backend::Sqlite) else { return };
    fed.add_facility("330106", "H330106001");
    let nodes: Vec<(&str, Node)> = spec.iter().map(|(region, _)| (*region, fed.start(region))).collect();
    let node = |region: &str| &nodes.iter().find(|(r, _)| *r == region).unwrap().1;
    let married = |control: &str, sequence: u16, marital: &str| {
        let text = String::from_utf8(admission(
            "H330106001",
            control,
            &format!("MRN-{control}"),
            &citizen_id("330106", sequence),
            "330106",
            &format!("V-{control}"),
        ))
        .unwrap();
        text.replace("||13900001111\r", &format!("||13900001111|||{marital}\r")).into_bytes()
    };
    let ack = |message: &[u8]| Mllp::connect(node("330106").mllp.as_deref().unwrap()).send(message);
    assert_eq!(ack(&married("M1", 801, "20")).code(), "AA", "the embedded table has 20 已婚");

    // A new version of GB/T 2261.2 without the code 20 (say it was retired).
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("marital.csv");
    std::fs::write(
        &csv,
        "code,name,parent\n10,未婚,\n21,初婚,20\n22,再婚,20\n23,复婚,20\n30,丧偶,\n40,离婚,\n90,未说明的婚姻状况,\n",
    )
    .unwrap();
    let national = fed.config("000000");
    let publish = |config: &std::path::Path, version: &str| {
        rhip_tests::rhip(&[
            "reference",
            "publish",
            "--config",
            config.to_str().unwrap(),
            "--domain",
            "GB/T 2261.2",
            "--version",
            version,
            "--file",
            csv.to_str().unwrap(),
        ])
    };
    let published = publish(&national, "2026.1");
    assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
    rhip_tests::assert_fails(&publish(&national, "2026.1"), 2, "already published");
    rhip_tests::assert_fails(&publish(&fed.config("330106"), "2026.2"), 2, "only the national node");

    for region in ["000000", "330000", "330106"] {
        let token = fed.token(region, "auditor");
        eventually("the new version at every node", WAIT, || {
            let domains = get_json(node(region), "/api/v1/reference/value-domains", &token);
            let marital = domains["items"].as_array().unwrap().iter().find(|d| d["domain"] == "GB/T 2261.2")?.clone();
            (marital["version"] == "2026.1").then_some(marital)
        });
    }
    let domains = get_json(node("330106"), "/api/v1/reference/value-domains", &fed.token("330106", "auditor"));
    let sex = domains["items"].as_array().unwrap().iter().find(|d| d["domain"] == "GB/T 2261.1").unwrap();
    assert_eq!(sex["version"], "embedded", "domains not published stay embedded");

    // The county validates against the version it holds (its cache refreshes within ten seconds).
    let refused = eventually("validation by the new version", Duration::from_secs(30), || {
        let answer = ack(&married(&format!("M2-{}", uuid::Uuid::now_v7().simple()), 803, "20"));
        (answer.code() == "AE").then_some(answer)
    });
    let errors = refused.errors_text().join(" ");
    assert!(errors.contains("PID-16") && errors.contains("2026.1"), "{errors}");
    assert_eq!(ack(&married("M3", 805, "21")).code(), "AA");
    for (_, node) in nodes {
        node.terminate();
    }
}
