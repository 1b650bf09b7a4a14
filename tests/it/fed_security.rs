//! The security system across a running federation (national root, Xihu and
//! Tianhe below it): a Xihu resident treated in Tianhe enrols and logs in at
//! home, sees the Tianhe encounter and, in the access log, the Tianhe
//! clinician who read their record; commissions and tokens stay within their
//! jurisdiction; the chain that holds the received entries still verifies.

use rhip_tests::fed::{eventually, get_json, Federation};
use rhip_tests::{both_backends, rhip, Backend, Mllp, Node};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "Lantern-Quietly-Orchard-42";
const TIANHE_HOSPITAL: &str = "H440106001";

/// National at the root, the two counties right below it.
const TWO_TIERS: [(&str, Option<&str>); 3] = [("000000", None), ("330106", Some("000000")), ("440106", Some("000000"))];

fn citizen_id(region: &str, sequence: u16) -> String {
    let region = rhip_core::RegionCode::parse(region).unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1979, 3, 14).unwrap();
    rhip_core::CitizenId::generate(region, birth, sequence).as_str().to_string()
}

/// An admission at Tianhe of a synthetic resident of Xihu.
fn admission_at_tianhe(id_number: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{TIANHE_HOSPITAL}|RHIP|RHIP|20250610083000||ADT^A01^ADT_A01|TH-1|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20250610083000\r\
         PID|1||MRN-TH-1^^^{TIANHE_HOSPITAL}^MR~{id_number}^^^CHN^NNCHN||赵^测试||19790314|F|||文三路9号^^杭州市^浙江省^310000^CHN^H^^330106||13900002222\r\
         PV1|1|I|内科^301^2||||D001^李^医生|||MED|||||||||V-TH-1|||||||||||||||||||||||||20250610080000\r"
    )
    .into_bytes()
}

fn send(node: &Node, message: &[u8]) {
    let mut mllp = Mllp::connect(node.mllp.as_deref().unwrap());
    let ack = mllp.send(message);
    assert_eq!(ack.code(), "AA", "{}", ack.text.replace('\r', "\n"));
}

fn items(value: &Value) -> Vec<Value> {
    value["items"].as_array().cloned().unwrap_or_default()
}

fn residents_see_care_and_reads_from_another_county(backend: Backend) {
    let Some(fed) = Federation::init(&TWO_TIERS, backend) else { return };
    fed.add_facility("440106", TIANHE_HOSPITAL);
    let national = fed.start("000000");
    let xihu = fed.start("330106");
    let tianhe = fed.start("440106");
    let xihu_commission = fed.token("330106", "commission");
    let tianhe_commission = fed.token("440106", "commission");
    let clinician = fed.token_with("440106", "clinician", &["--facility", TIANHE_HOSPITAL, "--sub", "dr-li"]);

    // Care abroad: the encounter reaches the resident's home county.
    let id_number = citizen_id("330106", 42);
    send(&tianhe, &admission_at_tianhe(&id_number));
    let empi = eventually("the person at Xihu", WAIT, || {
        let found = xihu.get(&format!("/api/v1/persons?id_number={id_number}"), Some(&xihu_commission));
        assert_eq!(found.status, 200, "{}", found.text);
        found.items().first().map(|person| person["empi_id"].as_str().unwrap().to_string())
    });
    eventually("the Tianhe encounter at Xihu", WAIT, || {
        let encounters = get_json(&xihu, &format!("/api/v1/persons/{empi}/encounters"), &xihu_commission);
        items(&encounters).iter().any(|e| e["facility"] == TIANHE_HOSPITAL).then_some(())
    });

    // A Tianhe clinician reads the record of their patient at Tianhe.
    let read = tianhe.get(&format!("/api/v1/persons/{empi}/encounters"), Some(&clinician));
    assert_eq!(read.status, 200, "{}", read.text);

    // Jurisdiction: Tianhe's commission may not read a Xihu resident, and a
    // token of one county means nothing at the other.
    let refused = tianhe.get(&format!("/api/v1/persons/{empi}"), Some(&tianhe_commission));
    assert_eq!(refused.status, 403, "{}", refused.text);
    let foreign = xihu.get(&format!("/api/v1/persons/{empi}"), Some(&tianhe_commission));
    assert_eq!(foreign.status, 401, "{}", foreign.text);
    assert_eq!(foreign.json()["status"], 401);

    // The resident enrols and logs in at home.
    let config = fed.config("330106");
    let code = rhip(&["resident", "enrol-code", "--config", config.to_str().unwrap(), "--person", &empi, "--json"]);
    assert!(code.status.success(), "{}", String::from_utf8_lossy(&code.stderr));
    let code: Value = serde_json::from_slice(&code.stdout).unwrap();
    let registered = xihu.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": code["code"], "password": PASSWORD}),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    let login = xihu.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD}));
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.json()["access_token"].as_str().unwrap().to_string();

    // The resident sees the Tianhe care in their own record...
    let ehr = get_json(&xihu, "/api/v1/me/ehr", &token);
    assert!(items(&ehr).iter().any(|entry| entry["facility"] == TIANHE_HOSPITAL), "{ehr}");

    // ...and the Tianhe clinician's read in their access log, marked as
    // recorded at Tianhe.
    let entry = eventually("the Tianhe read in the access log", WAIT, || {
        let log = get_json(&xihu, "/api/v1/me/access-log", &token);
        items(&log).into_iter().find(|e| e["actor"] == "dr-li" && e["action"] == "read")
    });
    assert_eq!(entry["facility"], TIANHE_HOSPITAL, "{entry}");
    assert_eq!(entry["recorded_at"], "440106", "{entry}");
    assert_eq!(entry["outcome"], "success", "{entry}");
    assert_eq!(entry["person"], empi.as_str(), "{entry}");
    // The hospital's submission travelled too; the denied commission read
    // at Tianhe as well.
    let log = get_json(&xihu, "/api/v1/me/access-log", &token);
    assert!(
        items(&log).iter().any(|e| e["recorded_at"] == "440106" && e["outcome"] == "denied"),
        "the refused Tianhe commission read is shown: {log}"
    );
    // Xihu's own entries carry no origin.
    assert!(items(&log).iter().any(|e| e["recorded_at"].is_null()), "{log}");

    // Nodes on the way forward audit entries without keeping them.
    let national_auditor = fed.token("000000", "auditor");
    let at_national = get_json(&national, &format!("/api/v1/audit?person={empi}"), &national_auditor);
    assert!(items(&at_national).is_empty(), "the national node keeps none: {at_national}");
    let xihu_auditor = fed.token("330106", "auditor");
    let at_home = get_json(&xihu, &format!("/api/v1/audit?person={empi}&actor=dr-li"), &xihu_auditor);
    assert!(!items(&at_home).is_empty(), "auditors at home find the travelled entry: {at_home}");

    // The chain holding the received entries seals and verifies.
    let seal = rhip(&["audit", "seal", "--config", config.to_str().unwrap(), "--json"]);
    assert!(seal.status.success(), "{}", String::from_utf8_lossy(&seal.stderr));
    let verify = rhip(&["audit", "verify", "--config", config.to_str().unwrap(), "--json"]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    ancestor_tokens_reach_down_and_their_revocations_travel(&fed, &national, &xihu, &tianhe, &empi);

    drop((national, xihu, tianhe));
    fed.drop_databases();
}

/// The national node's tokens work at the counties (its key travelled down
/// as reference data) within the token's region; the counties' tokens do
/// not work above or beside them; a national token logged out at a county
/// stops working everywhere.
fn ancestor_tokens_reach_down_and_their_revocations_travel(
    fed: &Federation,
    national: &Node,
    xihu: &Node,
    tianhe: &Node,
    empi: &str,
) {
    let countrywide = fed.token("000000", "commission");
    let read = eventually("the national key at Xihu", WAIT, || {
        let answer = xihu.get(&format!("/api/v1/persons/{empi}"), Some(&countrywide));
        (answer.status == 200).then_some(answer)
    });
    assert_eq!(read.json()["empi_id"], empi);
    let guangdong = fed.token_with("000000", "commission", &["--region", "440000"]);
    let outside = xihu.get(&format!("/api/v1/persons/{empi}"), Some(&guangdong));
    assert_eq!(outside.status, 403, "a Guangdong commission at Xihu: {}", outside.text);
    let county = fed.token("330106", "commission");
    let upward = national.get("/api/v1/persons", Some(&county));
    assert_eq!(upward.status, 401, "a county token at national: {}", upward.text);
    let admin = fed.token("000000", "node_admin");
    let foreign_admin = xihu.get("/api/v1/facilities", Some(&admin));
    assert_eq!(foreign_admin.status, 401, "{}", foreign_admin.text);
    assert!(foreign_admin.text.contains("node_admin"), "{}", foreign_admin.text);

    // Logged out at Xihu: refused there at once, then at national (up to
    // the issuer) and at Tianhe (down from it).
    eventually("the national key at Tianhe", WAIT, || {
        (tianhe.get("/api/v1/facilities", Some(&countrywide)).status == 200).then_some(())
    });
    assert_eq!(national.get("/api/v1/facilities", Some(&countrywide)).status, 200);
    let out = xihu.post("/auth/logout", Some(&countrywide), &json!({}));
    assert_eq!(out.status, 204, "{}", out.text);
    assert_eq!(xihu.get("/api/v1/facilities", Some(&countrywide)).status, 401);
    for (name, node) in [("national", national), ("Tianhe", tianhe)] {
        eventually(&format!("the revocation at {name}"), WAIT, || {
            let answer = node.get("/api/v1/facilities", Some(&countrywide));
            (answer.status == 401).then_some(())
        });
    }
}

both_backends! {
    residents_see_care_and_reads_from_another_county => super::residents_see_care_and_reads_from_another_county;
}
