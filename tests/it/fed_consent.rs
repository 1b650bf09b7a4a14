//! Consent across a running federation (national root, Xihu and Tianhe below
//! it): a Xihu resident treated in Tianhe keeps mental health at home; the
//! restriction travels to every node, which withholds the category away from
//! home (from commissions and other facilities, not from the facility that
//! recorded it); a clinician who breaks the glass in Tianhe sees it, and the
//! resident sees the override in the access log at home; what is recorded at
//! home never goes up; and the node that holds a document refuses its
//! federated fetch for a user away from home. On SQLite and PostgreSQL.

use rhip_tests::fed::{eventually, peer_agent, Federation};
use rhip_tests::{both_backends, Backend, Mllp, Node};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const TIANHE_PSYCHIATRY: &str = "H440106001";
const TIANHE_GENERAL: &str = "H440106002";
const XIHU_HOSPITAL: &str = "H330106001";
const GLASS: (&str, &str) = ("X-RHIP-Break-Glass", "patient unconscious in the emergency department");

/// National at the root, the two counties right below it.
const TWO_TIERS: [(&str, Option<&str>); 3] = [("000000", None), ("330106", Some("000000")), ("440106", Some("000000"))];

fn citizen_id(sequence: u16) -> String {
    let region = rhip_core::RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1979, 3, 14).unwrap();
    rhip_core::CitizenId::generate(region, birth, sequence).as_str().to_string()
}

/// An admission of the Xihu resident at `facility` with one diagnosis.
fn admission(facility: &str, visit: &str, id_number: &str, diagnosis: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{facility}|RHIP|RHIP|20250610083000||ADT^A01^ADT_A01|{visit}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20250610083000\r\
         PID|1||MRN-{visit}^^^{facility}^MR~{id_number}^^^CHN^NNCHN||赵^测试||19790314|F|||文三路9号^^杭州市^浙江省^310000^CHN^H^^330106||13900002222\r\
         PV1|1|I|内科^301^2||||D001^李^医生|||MED|||||||||{visit}|||||||||||||||||||||||||20250610080000\r\
         DG1|1||{diagnosis}^诊断^ICD10||20250610|A\r"
    )
    .into_bytes()
}

fn send(node: &Node, message: &[u8]) {
    let ack = Mllp::connect(node.mllp.as_deref().unwrap()).send(message);
    assert_eq!(ack.code(), "AA", "{}", ack.text.replace('\r', "\n"));
}

/// The diagnosis codes of a person's encounters as `token` sees them at `node`
/// (with extra headers), and the withheld count.
#[track_caller]
fn codes(node: &Node, empi: &str, token: &str, headers: &[(&str, &str)]) -> (Vec<String>, Option<usize>) {
    match try_codes(node, empi, token, headers) {
        Some(seen) => seen,
        None => panic!("{empi} is not readable here"),
    }
}

/// [`codes`], or `None` while the person is not (yet) readable at `node`.
fn try_codes(node: &Node, empi: &str, token: &str, headers: &[(&str, &str)]) -> Option<(Vec<String>, Option<usize>)> {
    let answer = node.get_with(&format!("/api/v1/persons/{empi}/encounters"), Some(token), headers);
    if answer.status != 200 {
        return None;
    }
    let mut codes: Vec<String> = answer
        .items()
        .iter()
        .flat_map(|e| e["diagnoses"].as_array().cloned().unwrap_or_default())
        .map(|d| d["code"].as_str().unwrap_or_default().to_string())
        .collect();
    codes.sort();
    Some((codes, answer.withheld))
}

fn consent_travels_and_keeps_care_at_home(backend: Backend) {
    let Some(fed) = Federation::init(&TWO_TIERS, backend) else { return };
    fed.add_facility("440106", TIANHE_PSYCHIATRY);
    fed.add_facility("440106", TIANHE_GENERAL);
    fed.add_facility("330106", XIHU_HOSPITAL);
    let national = fed.start("000000");
    let xihu = fed.start("330106");
    let tianhe = fed.start("440106");
    let national_commission = fed.token("000000", "commission");
    let xihu_commission = fed.token("330106", "commission");
    let psychiatrist = fed.token_with("440106", "clinician", &["--facility", TIANHE_PSYCHIATRY, "--sub", "dr-psy"]);
    let general = fed.token_with("440106", "clinician", &["--facility", TIANHE_GENERAL, "--sub", "dr-general"]);

    // Care in Tianhe reaches the home county and the national node.
    let id_number = citizen_id(42);
    send(&tianhe, &admission(TIANHE_PSYCHIATRY, "V-TH-PSY", &id_number, "F20.0"));
    send(&tianhe, &admission(TIANHE_GENERAL, "V-TH-GEN", &id_number, "J18.9"));
    let empi = eventually("the person at Xihu", WAIT, || {
        let found = xihu.get(&format!("/api/v1/persons?id_number={id_number}"), Some(&xihu_commission));
        found.items().first().map(|person| person["empi_id"].as_str().unwrap().to_string())
    });
    let both = vec!["F20.0".to_string(), "J18.9".to_string()];
    for (node, token) in [(&xihu, &xihu_commission), (&national, &national_commission)] {
        eventually("both Tianhe encounters", WAIT, || {
            try_codes(node, &empi, token, &[]).filter(|(seen, _)| *seen == both).map(|_| ())
        });
    }

    // The resident keeps mental health at home. Only the home node records it.
    let resident = fed.token_with("330106", "resident", &["--person", &empi]);
    let rule = json!({"restrictions": [{"category": "mental_health", "leave_home": true}]});
    let elsewhere = fed.token_with("440106", "resident", &["--person", &empi]);
    let refused = tianhe.put("/api/v1/me/consent", Some(&elsewhere), &rule);
    assert_eq!(refused.status, 403, "{}", refused.text);
    let set = xihu.put("/api/v1/me/consent", Some(&resident), &rule);
    assert_eq!(set.status, 200, "{}", set.text);

    // It reaches the national node, which withholds the category from its
    // commission, and Tianhe, which withholds it from the other facility.
    let only_general = vec!["J18.9".to_string()];
    eventually("consent enforced at national", WAIT, || {
        let (seen, withheld) = codes(&national, &empi, &national_commission, &[]);
        (seen == only_general && withheld.is_some()).then_some(())
    });
    eventually("consent enforced at Tianhe", WAIT, || {
        (codes(&tianhe, &empi, &general, &[]).0 == only_general).then_some(())
    });
    // The facility that recorded it, and the home county, still see it.
    assert_eq!(codes(&tianhe, &empi, &psychiatrist, &[]).0, both);
    assert_eq!(codes(&xihu, &empi, &xihu_commission, &[]), (both.clone(), None));

    // An emergency in Tianhe: the glass is broken; the resident sees it at home.
    assert_eq!(codes(&tianhe, &empi, &general, &[GLASS]), (both.clone(), None));
    let entry = eventually("the override in the access log at home", WAIT, || {
        let log = xihu.get("/api/v1/me/access-log", Some(&resident)).items();
        log.into_iter().find(|e| {
            e["actor"] == "dr-general" && e["detail"].as_str().is_some_and(|d| d.contains("consent_override"))
        })
    });
    assert_eq!(entry["recorded_at"], "440106", "{entry}");
    assert_eq!(entry["detail"], "consent_override: mental_health", "{entry}");
    assert_eq!(entry["purpose"], format!("break_glass: {}", GLASS.1), "{entry}");

    // Care at home in the category never goes up; other care does.
    send(&xihu, &admission(XIHU_HOSPITAL, "V-XH-PSY", &id_number, "F32.9"));
    send(&xihu, &admission(XIHU_HOSPITAL, "V-XH-GEN", &id_number, "K35.8"));
    let glass_at_national = fed.token_with("000000", "clinician", &["--facility", TIANHE_GENERAL, "--sub", "dr-er"]);
    let at_national = eventually("the later home encounter at national", WAIT, || {
        let (seen, _) = try_codes(&national, &empi, &glass_at_national, &[GLASS])?;
        seen.contains(&"K35.8".to_string()).then_some(seen)
    });
    // The broken glass shows all national holds: the Tianhe stay, not the Xihu one.
    assert_eq!(at_national, ["F20.0", "J18.9", "K35.8"], "F32.9 must not have left Xihu");
    let (home, _) = codes(&xihu, &empi, &xihu_commission, &[]);
    assert_eq!(home, ["F20.0", "F32.9", "J18.9", "K35.8"]);

    // A document the national node indexes, fetched from its holder.
    federated_fetch_is_refused_away_from_home(&fed, &xihu, &national, &national_commission);

    for node in [national, xihu, tianhe] {
        node.terminate();
    }
}

/// A Xihu document with a mental-health diagnosis, indexed at national before
/// its resident restricted the category: afterwards national refuses its own
/// commission, and Xihu, which holds the bytes, refuses a fetch on behalf of
/// a user away from home (but serves the facility that wrote it).
fn federated_fetch_is_refused_away_from_home(fed: &Federation, xihu: &Node, national: &Node, commission: &str) {
    let body =
        crate::documents::render(&crate::documents::doc("C0001", "FED-CONSENT-1", 77), crate::documents::Style::Plain);
    let body = String::from_utf8(body).unwrap().replace("code=\"I10\"", "code=\"F32.9\"").into_bytes();
    let hospital = fed.token_with("330106", "hospital_system", &["--facility", XIHU_HOSPITAL]);
    let answer = ureq::post(&format!("{}/api/v1/documents", xihu.api))
        .set("Authorization", &format!("Bearer {hospital}"))
        .set("Content-Type", "application/xml")
        .send_bytes(&body)
        .unwrap();
    let stored: Value = answer.into_json().unwrap();
    let (id, person) = (stored["id"].as_str().unwrap().to_string(), stored["person"].as_str().unwrap().to_string());
    eventually("the index entry at national", WAIT, || {
        (national.get(&format!("/api/v1/documents/{id}"), Some(commission)).status == 200).then_some(())
    });
    let resident = fed.token_with("330106", "resident", &["--person", &person]);
    let rule = json!({"restrictions": [{"category": "mental_health", "leave_home": true}]});
    assert_eq!(xihu.put("/api/v1/me/consent", Some(&resident), &rule).status, 200);
    let refused = eventually("the document withheld at national", WAIT, || {
        let answer = national.get(&format!("/api/v1/documents/{id}"), Some(commission));
        (answer.status == 403).then_some(answer)
    });
    assert!(refused.json()["detail"].as_str().unwrap().contains("consent"), "{}", refused.text);

    // The holder's own check, asked over the federation link as national would.
    let url = format!("https://{}/federation/v1/documents/{id}", fed.address("330106"));
    let agent = peer_agent(&fed.folder("000000").join("tls"));
    let fetch = |facility: Option<&str>| {
        let mut request = agent
            .get(&url)
            .set("x-rhip-holder", "330106")
            .set("x-rhip-on-behalf-of", "commission c@000000")
            .set("x-rhip-requester", "000000");
        if let Some(facility) = facility {
            request = request.set("x-rhip-facility", facility);
        }
        match request.call() {
            Ok(response) => (response.status(), response.into_string().unwrap()),
            Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap()),
            Err(error) => panic!("{error}"),
        }
    };
    let (status, text) = fetch(None);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("consent_withheld") && !text.contains("F32"), "{text}");
    let (status, text) = fetch(Some(XIHU_HOSPITAL));
    assert_eq!(status, 200, "the writing facility is served: {text}");
    assert!(text.contains("F32.9"));
    let log = xihu.get("/api/v1/me/access-log", Some(&resident)).items();
    assert!(
        log.iter().any(|e| e["action"] == "federated_read" && e["outcome"] == "denied"),
        "the refused fetch is in the resident's access log: {log:?}"
    );
}

both_backends! {
    consent_travels_and_keeps_care_at_home => super::consent_travels_and_keeps_care_at_home;
}
