//! Parked remote changes through real processes: a county's encounter for a
//! person the municipal node does not know is parked (receipt, status,
//! `rhip federation dead-letters`), stays parked on `rhip federation retry`,
//! and is applied exactly once by a retry after the person has arrived.

use rhip_federation::{seal, Payload, WireChange, GENESIS};
use rhip_store::{EncounterRecord, PersonRecord};
use rhip_tests::fed::{get_json, peer_agent, Federation};
use rhip_tests::{assert_fails, both_backends, node_key, rhip, rhip_ok, Backend};
use serde_json::Value;

/// Posts a sealed batch to a federation listener; answers status and body.
fn post(agent: &ureq::Agent, url: &str, manifest: &str, payload: &[u8]) -> (u16, Value) {
    let result =
        agent.post(&format!("{url}/federation/v1/batches")).set("x-rhip-manifest", manifest).send_bytes(payload);
    match result {
        Ok(response) => (response.status(), response.into_json().unwrap()),
        Err(ureq::Error::Status(status, response)) => (status, response.into_json().unwrap()),
        Err(error) => panic!("transport: {error}"),
    }
}

/// The claims of a compact JWS (its middle part, base64url without padding).
fn jws_claims(jws: &str) -> Value {
    let middle = jws.split('.').nth(1).unwrap_or_else(|| panic!("not a JWS: {jws}"));
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in middle.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            other => panic!("not base64url: {:?}", other as char),
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

fn hlc() -> String {
    let wall = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    rhip_core::HlcTimestamp::new(wall, 0).encode()
}

fn change(entity: &str, entity_id: &str, person: &str, payload: Value) -> WireChange {
    WireChange {
        id: uuid::Uuid::now_v7().to_string(),
        hlc: hlc(),
        origin_region: "330106".into(),
        entity: entity.into(),
        entity_id: entity_id.into(),
        op: "create".into(),
        person_id: Some(person.into()),
        home_region: Some("330106".into()),
        payload: payload.into(),
    }
}

/// A person created at the county, serialized as the store serializes it.
fn person_change(person: &str) -> WireChange {
    let now = chrono::Utc::now().naive_utc();
    let region = rhip_core::RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1979, 3, 4).unwrap();
    let id_number = rhip_core::CitizenId::generate(region, birth, 731).as_str().to_string();
    let record = PersonRecord {
        id: person.into(),
        home_region: "330106".into(),
        name: "李重试".into(),
        sex: "2".into(),
        birth_date: Some(birth),
        id_number: Some(id_number),
        ethnicity: None,
        marital_status: None,
        phone: Some("13900002222".into()),
        address_region: Some("330106".into()),
        address_line: None,
        household_id: None,
        household_relation: None,
        non_resident: false,
        status: "active".into(),
        merged_into: None,
        origin_region: "330106".into(),
        hlc: hlc(),
        created_at: now,
        updated_at: now,
        primary_facility: None,
        primary_provider: None,
        identifiers: vec![rhip_core::Identifier {
            system: "H330106001".into(),
            value: "MRN-RETRY-1".into(),
            type_code: Some("MR".into()),
        }],
    };
    change("person", person, person, serde_json::to_value(&record).unwrap())
}

/// An encounter recorded at the county for `person`.
fn encounter_change(person: &str, encounter: &str) -> WireChange {
    let now = chrono::Utc::now().naive_utc();
    let record = EncounterRecord {
        id: encounter.into(),
        person_id: person.into(),
        facility_code: "H330106001".into(),
        visit_number: "V-RETRY-1".into(),
        encounter_type: "inpatient".into(),
        status: "in_progress".into(),
        admitted_at: Some(now),
        discharged_at: None,
        department: Some("内科".into()),
        location: None,
        attending: None,
        source_region: "330106".into(),
        prior_location: None,
        hlc: hlc(),
        created_at: now,
        updated_at: now,
        admit_reason: None,
    };
    change("encounter", encounter, person, serde_json::to_value(&record).unwrap())
}

fn json_of(args: &[&str]) -> Value {
    let out = rhip_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("rhip {args:?}: not JSON ({e}): {out}"))
}

fn parked_and_retried(backend: Backend) {
    let Some(fed) = Federation::init(&[("330100", None), ("330106", Some("330100"))], backend) else { return };
    let hangzhou = fed.start("330100");
    let config = fed.config("330100");
    let config = config.to_str().unwrap();
    let commission = fed.token("330100", "commission");
    let agent = peer_agent(&fed.folder("330106").join("tls"));
    let url = format!("https://{}", fed.address("330100"));
    let key = node_key(&fed.folder("330106"));

    let person = uuid::Uuid::now_v7().to_string();
    let encounter = uuid::Uuid::now_v7().to_string();

    // Batch 1: an encounter of a person Hangzhou does not know is parked.
    let one = Payload { changes: vec![encounter_change(&person, &encounter)] };
    let encounter_change_id = one.changes[0].id.clone();
    let first = seal(&key, "330106", "330100", 1, GENESIS, &one).unwrap();
    let (status, body) = post(&agent, &url, &first.manifest_jws, &first.payload);
    assert_eq!(status, 200, "{body}");
    let receipt = jws_claims(body["receipt"].as_str().unwrap());
    let parked = receipt["parked"].as_array().unwrap();
    assert_eq!(parked.len(), 1, "{receipt}");
    assert_eq!(parked[0]["change_id"], encounter_change_id.as_str(), "{receipt}");
    assert!(parked[0]["reason"].as_str().unwrap().contains(&person), "{receipt}");
    assert_eq!(get_json(&hangzhou, "/api/v1/federation/status", &commission)["dead_letters"], 1);

    let listed = json_of(&["federation", "dead-letters", "--config", config, "--json"]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    let letter = &items[0];
    assert_eq!(
        (&letter["change_id"], &letter["entity"], &letter["op"], &letter["peer"], &letter["attempts"]),
        (
            &Value::from(encounter_change_id.as_str()),
            &Value::from("encounter"),
            &Value::from("create"),
            &Value::from("330106"),
            &Value::from(1)
        ),
        "{listed}"
    );
    assert!(letter["reason"].as_str().unwrap().contains(&person), "{listed}");
    let letter_id = letter["id"].as_str().unwrap().to_string();
    let text = rhip_ok(&["federation", "dead-letters", "--config", config]);
    assert!(text.contains(&letter_id) && text.contains("encounter/create"), "{text}");

    // Nothing has changed: a retry leaves it parked and counts the attempt.
    let retried = json_of(&["federation", "retry", "--config", config, "--json"]);
    assert_eq!((&retried["applied"], &retried["parked"]), (&Value::from(0), &Value::from(1)), "{retried}");
    let item = &retried["items"][0];
    assert_eq!(
        (&item["id"], &item["outcome"]),
        (&Value::from(letter_id.as_str()), &Value::from("parked")),
        "{retried}"
    );
    assert_eq!(item["change_id"], encounter_change_id.as_str(), "{retried}");
    assert!(item["reason"].as_str().unwrap().contains(&person), "{retried}");
    let listed = json_of(&["federation", "dead-letters", "--config", config, "--json"]);
    assert_eq!(listed["items"][0]["attempts"], 2, "{listed}");
    let text = rhip_ok(&["federation", "retry", "--config", config]);
    assert!(text.contains("still parked") && text.contains("0 applied, 1 still parked"), "{text}");

    // Batch 2 brings the person; the parked encounter waits for a retry.
    let two = Payload { changes: vec![person_change(&person)] };
    let second = seal(&key, "330106", "330100", 2, &first.digest(), &two).unwrap();
    let (status, body) = post(&agent, &url, &second.manifest_jws, &second.payload);
    assert_eq!(status, 200, "{body}");
    let receipt = jws_claims(body["receipt"].as_str().unwrap());
    assert_eq!(receipt["parked"], Value::Array(vec![]), "{receipt}");
    assert_eq!(get_json(&hangzhou, "/api/v1/federation/status", &commission)["dead_letters"], 1);

    let retried = json_of(&["federation", "retry", "--config", config, "--json"]);
    assert_eq!((&retried["applied"], &retried["parked"]), (&Value::from(1), &Value::from(0)), "{retried}");
    let item = &retried["items"][0];
    assert_eq!(
        (&item["id"], &item["entity"], &item["op"], &item["outcome"], &item["reason"]),
        (
            &Value::from(letter_id.as_str()),
            &Value::from("encounter"),
            &Value::from("create"),
            &Value::from("applied"),
            &Value::Null
        ),
        "{retried}"
    );
    let encounters = get_json(&hangzhou, &format!("/api/v1/persons/{person}/encounters"), &commission);
    let found: Vec<&Value> =
        encounters["items"].as_array().unwrap().iter().filter(|e| e["id"] == encounter.as_str()).collect();
    assert_eq!(found.len(), 1, "{encounters}");
    assert_eq!(encounters["items"].as_array().unwrap().len(), 1, "{encounters}");
    assert_eq!(get_json(&hangzhou, "/api/v1/federation/status", &commission)["dead_letters"], 0);

    // Nothing is left: a second retry does nothing, and the list is empty
    // unless resolved ones are asked for.
    let again = json_of(&["federation", "retry", "--config", config, "--json"]);
    assert_eq!(again, serde_json::json!({ "applied": 0, "parked": 0, "items": [] }));
    let listed = json_of(&["federation", "dead-letters", "--config", config, "--json"]);
    assert_eq!(listed["items"], Value::Array(vec![]), "{listed}");
    let all = json_of(&["federation", "dead-letters", "--config", config, "--all", "--json"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    assert!(all["items"][0]["resolved_at"].is_string(), "{all}");
    assert_eq!(all["items"][0]["attempts"], 4, "{all}");
    let encounters = get_json(&hangzhou, &format!("/api/v1/persons/{person}/encounters"), &commission);
    assert_eq!(encounters["items"].as_array().unwrap().len(), 1, "{encounters}");

    // Every retry run is audited.
    let auditor = fed.token("330100", "auditor");
    let audit = get_json(&hangzhou, "/api/v1/audit?action=federation_retry", &auditor);
    let details: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["detail"].as_str()).collect();
    assert_eq!(details.len(), 4, "{audit}");
    assert!(details.iter().any(|d| d.contains("1 applied, 0 still parked")), "{audit}");
    hangzhou.terminate();
}

both_backends!(parked_and_retried => super::parked_and_retried;);

#[test]
fn retry_and_dead_letters_refuse_bad_usage() {
    for command in ["retry", "dead-letters"] {
        let output = rhip(&["federation", command]);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--config"), "{output:?}");
        assert_fails(
            &rhip(&["federation", command, "--config", "/nonexistent/node.toml"]),
            2,
            "/nonexistent/node.toml",
        );
    }
    let output = rhip(&["federation", "retry", "--config", "/nonexistent/node.toml", "--limit", "0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
