//! Authentication and jurisdiction through the real API: county versus
//! province versus resident versus clinician, refused tokens, and the audit
//! entries every read and refusal leaves.

use rhip_tests::{both_backends, node_key, person, Backend, NodeDir};
use serde_json::{json, Value};

/// A province node holding residents of two Zhejiang counties and one
/// Guangdong resident treated in the province.
struct Province {
    node: NodeDir,
    xihu: String,
    binjiang: String,
    guangzhou: String,
}

fn province(backend: Backend) -> Option<Province> {
    let node = NodeDir::init("330000", backend)?;
    node.add_facility("H330106001", "330106");
    let mut xihu = person("西湖甲", "330106", (1975, 3, 14), 31);
    xihu["identifiers"] = json!([{"system": "H330106001", "value": "MRN0001", "type_code": "MR"}]);
    let ids = node.import(&[
        xihu,
        person("滨江乙", "330108", (1988, 7, 2), 42),
        person("天河丙", "440106", (1992, 11, 30), 53),
    ]);
    Some(Province { xihu: ids[0].clone(), binjiang: ids[1].clone(), guangzhou: ids[2].clone(), node })
}

fn empi_ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items.iter().map(|p| p["empi_id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn jurisdiction_scopes_what_each_role_sees(backend: Backend) {
    let Some(p) = province(backend) else { return };
    let server = p.node.start();
    let province_token = p.node.token("commission", &[]);
    let city_token = p.node.token("commission", &["--region", "330100"]);
    let county_token = p.node.token("commission", &["--region", "330106"]);
    let resident_token = p.node.token("resident", &["--person", &p.xihu]);
    let clinician_token = p.node.token("clinician", &["--facility", "H330106001"]);

    // The province sees its whole subtree, but not the Guangdong resident.
    let seen = server.get("/api/v1/persons", Some(&province_token));
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(empi_ids(&seen.items()), sorted(vec![p.xihu.clone(), p.binjiang.clone()]));
    // Hangzhou sees Xihu and Binjiang; Xihu sees only Xihu.
    assert_eq!(empi_ids(&server.get("/api/v1/persons", Some(&city_token)).items()).len(), 2);
    assert_eq!(empi_ids(&server.get("/api/v1/persons", Some(&county_token)).items()), vec![p.xihu.clone()]);
    assert_eq!(server.get(&format!("/api/v1/persons/{}", p.xihu), Some(&county_token)).status, 200);
    let refused = server.get(&format!("/api/v1/persons/{}", p.binjiang), Some(&county_token));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.content_type, "application/problem+json");
    // Asking a county commission's search for another county is refused.
    assert_eq!(server.get("/api/v1/persons?home_region=330108", Some(&county_token)).status, 403);
    // Nobody on this node sees the Guangdong resident through a commission token.
    assert_eq!(server.get(&format!("/api/v1/persons/{}", p.guangzhou), Some(&province_token)).status, 403);

    // A resident sees their own record and nobody else's.
    let own = server.get(&format!("/api/v1/persons/{}", p.xihu), Some(&resident_token));
    assert_eq!(own.status, 200);
    assert_eq!(server.get(&format!("/api/v1/persons/{}", p.binjiang), Some(&resident_token)).status, 403);
    let me = server.get("/api/v1/me", Some(&resident_token)).json();
    assert_eq!(me["empi_id"], p.xihu.as_str());
    assert!(!me["id_number"].as_str().unwrap().contains('*'), "a resident sees their full citizen ID");
    let masked = own.json();
    assert!(masked["id_number"].as_str().unwrap().contains("********"), "others see it masked");
    assert_eq!(empi_ids(&server.get("/api/v1/persons", Some(&resident_token)).items()), vec![p.xihu.clone()]);

    // A clinician sees the patients of their facility only.
    assert_eq!(empi_ids(&server.get("/api/v1/persons", Some(&clinician_token)).items()), vec![p.xihu.clone()]);
    assert_eq!(server.get(&format!("/api/v1/persons/{}", p.binjiang), Some(&clinician_token)).status, 403);

    // Lookup by a cross-referenced identifier.
    let found = server.get("/api/v1/persons?identifier=H330106001|MRN0001", Some(&province_token));
    assert_eq!(empi_ids(&found.items()), vec![p.xihu.clone()]);
    // Roles without the permission are refused even inside their region.
    let auditor = p.node.token("auditor", &[]);
    assert_eq!(server.get("/api/v1/persons", Some(&auditor)).status, 403);
}

fn refused_tokens_get_401_and_are_audited(backend: Backend) {
    let Some(p) = province(backend) else { return };
    let server = p.node.start();
    let key = node_key(p.node.dir.path());
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| rhip_auth::Claims {
        sub: "tester".into(),
        role: rhip_core::Role::Commission,
        region: Some("330000".into()),
        facility: None,
        person: None,
        iss: "330000".into(),
        aud: "rhip".into(),
        iat: now - 7200,
        exp,
        jti: "t".into(),
    };
    let expired = key.mint(&claims(now - 3600)).unwrap();
    let (stranger, _) = rhip_auth::NodeKey::generate().unwrap();
    let forged = stranger.mint(&claims(now + 3600)).unwrap();
    let good = key.mint(&claims(now + 3600)).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = rhip_auth::Claims { region: Some("000000".into()), ..claims(now + 3600) };
    let tampered_body = stranger.mint(&tampered_claims).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], tampered_body.split('.').nth(1).unwrap(), parts[2]);

    for (token, reason) in [
        (None, "missing bearer token"),
        (Some(expired.as_str()), "expired"),
        (Some(forged.as_str()), "unknown key"),
        (Some(tampered.as_str()), "signature is invalid"),
        (Some("garbage"), "malformed"),
    ] {
        let answer = server.get("/api/v1/persons", token);
        assert_eq!(answer.status, 401, "{reason}: {}", answer.text);
        assert_eq!(answer.content_type, "application/problem+json");
        assert!(answer.json()["detail"].as_str().unwrap().contains(reason), "{reason}: {}", answer.text);
    }
    assert_eq!(server.get("/api/v1/persons", Some(&good)).status, 200);

    let auditor = p.node.token("auditor", &[]);
    let denied = server.get("/api/v1/audit?outcome=denied", Some(&auditor)).items();
    let unauthenticated: Vec<&Value> = denied.iter().filter(|e| e["http_status"] == 401).collect();
    assert_eq!(unauthenticated.len(), 5, "{denied:?}");
    assert!(unauthenticated.iter().all(|e| e["actor"] == "anonymous" && e["action"] == "authenticate"));
}

fn every_read_and_refusal_is_audited(backend: Backend) {
    let Some(p) = province(backend) else { return };
    let server = p.node.start();
    let county = p.node.token("commission", &["--region", "330106", "--sub", "xihu-officer"]);
    let auditor = p.node.token("auditor", &[]);

    let read = server.get(&format!("/api/v1/persons/{}", p.xihu), Some(&county));
    assert_eq!(read.status, 200);
    let request_id = read.request_id.clone().expect("x-request-id header");
    let search = server.get("/api/v1/persons?name=西湖甲&birth_date=1975-03-14", Some(&county));
    assert_eq!(search.items().len(), 1);
    assert_eq!(server.get(&format!("/api/v1/persons/{}", p.binjiang), Some(&county)).status, 403);
    assert_eq!(server.get(&format!("/api/v1/persons/{}/ehr", p.xihu), Some(&county)).status, 200);

    let about_xihu = server.get(&format!("/api/v1/audit?person={}", p.xihu), Some(&auditor)).items();
    let by_officer: Vec<&Value> = about_xihu.iter().filter(|e| e["actor"] == "xihu-officer").collect();
    assert_eq!(by_officer.len(), 3, "read, search hit and EHR read: {about_xihu:?}");
    assert!(by_officer
        .iter()
        .all(|e| e["role"] == "commission" && e["actor_region"] == "330106" && e["outcome"] == "success"));
    assert!(by_officer.iter().any(|e| e["request_id"] == request_id.as_str() && e["action"] == "read"));
    assert!(by_officer.iter().any(|e| e["action"] == "search"));
    assert!(by_officer.iter().any(|e| e["resource_type"] == "ehr"));

    let about_binjiang = server.get(&format!("/api/v1/audit?person={}", p.binjiang), Some(&auditor)).items();
    assert!(about_binjiang
        .iter()
        .any(|e| e["outcome"] == "denied" && e["http_status"] == 403 && e["actor"] == "xihu-officer"));

    // The resident sees who looked at their record.
    let resident = p.node.token("resident", &["--person", &p.xihu]);
    let log = server.get("/api/v1/me/access-log", Some(&resident)).items();
    assert!(log.iter().any(|e| e["actor"] == "xihu-officer"), "{log:?}");
    // Nobody else reads the audit log.
    assert_eq!(server.get("/api/v1/audit", Some(&county)).status, 403);
    // The audit log never holds a citizen ID.
    let all = server.get("/api/v1/audit?limit=10000", Some(&auditor)).text;
    let full_id = server.get("/api/v1/me", Some(&resident)).json()["id_number"].as_str().unwrap().to_string();
    assert_eq!(full_id.len(), 18);
    assert!(!all.contains(&full_id), "a citizen ID leaked into the audit log");
}

fn get_with(server: &rhip_tests::Node, path: &str, token: &str, header: (&str, &str)) -> rhip_tests::Response {
    let request = ureq::get(&format!("{}{path}", server.api))
        .set("Authorization", &format!("Bearer {token}"))
        .set(header.0, header.1);
    rhip_tests::Response::from(request.call())
}

fn clinicians_break_the_glass_with_a_reason_the_resident_sees(backend: Backend) {
    let Some(p) = province(backend) else { return };
    let server = p.node.start();
    let clinician = p.node.token("clinician", &["--facility", "H330106001", "--sub", "dr-wang"]);
    let path = format!("/api/v1/persons/{}", p.binjiang);
    // Not a patient of the facility: refused, exactly like an id that does not exist.
    let refused = server.get(&path, Some(&clinician));
    let unknown = server.get(&format!("/api/v1/persons/{}", uuid::Uuid::now_v7()), Some(&clinician));
    assert_eq!((refused.status, unknown.status), (403, 403));
    assert_eq!(
        refused.json()["detail"].as_str().unwrap().replace(&p.binjiang, "ID"),
        unknown.json()["detail"]
            .as_str()
            .unwrap()
            .split(' ')
            .enumerate()
            .map(|(i, w)| if i == 1 { "ID" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Breaking the glass needs a stated reason, and only clinicians may.
    let header = "X-RHIP-Break-Glass";
    let reason = "unconscious patient in the emergency department";
    let terse = get_with(&server, &path, &clinician, (header, "ok"));
    assert_eq!(terse.status, 422, "{}", terse.text);
    assert_eq!(terse.json()["errors"][0]["field"], header);
    let commission = p.node.token("commission", &["--region", "330106"]);
    assert_eq!(get_with(&server, &path, &commission, (header, reason)).status, 403);
    let opened = get_with(&server, &path, &clinician, (header, reason));
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert_eq!(opened.json()["empi_id"], p.binjiang);
    let ehr = get_with(&server, &format!("{path}/ehr"), &clinician, (header, reason));
    assert_eq!(ehr.status, 200, "{}", ehr.text);
    // The resident sees who broke the glass, and why.
    let resident = p.node.token("resident", &["--person", &p.binjiang]);
    let log = server.get("/api/v1/me/access-log", Some(&resident)).items();
    let glass: Vec<&Value> = log.iter().filter(|e| e["actor"] == "dr-wang" && e["outcome"] == "success").collect();
    assert_eq!(glass.len(), 2, "{log:?}");
    for entry in glass {
        assert_eq!(entry["purpose"], format!("break_glass: {reason}"), "{entry}");
        assert_eq!(entry["facility"], "H330106001");
    }
}

both_backends! {
    clinicians_break_the_glass_with_a_reason_the_resident_sees => super::clinicians_break_the_glass_with_a_reason_the_resident_sees;
    jurisdiction_scopes_what_each_role_sees => super::jurisdiction_scopes_what_each_role_sees;
    refused_tokens_get_401_and_are_audited => super::refused_tokens_get_401_and_are_audited;
    every_read_and_refusal_is_audited => super::every_read_and_refusal_is_audited;
}
