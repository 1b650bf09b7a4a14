//! `rhip synth` through the real binary: the same seed writes the same bytes,
//! bad arguments are refused with one line, and a real county node given a
//! county's synthetic facilities, residents and traffic answers every
//! message and document as `expected.jsonl` says, with duplicates and typos
//! linked to the persons they are about (SQLite and PostgreSQL).

use rhip_tests::{assert_fails, both_backends, rhip, rhip_ok, Backend, Mllp, Node, NodeDir};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const XIHU: &str = "330106";

/// Runs `rhip synth` into `out` and returns its JSON summary.
fn synth(seed: u64, residents: u64, out: &Path) -> Value {
    let seed = seed.to_string();
    let residents = residents.to_string();
    let out = out.to_str().unwrap();
    let printed = rhip_ok(&["synth", "--seed", &seed, "--residents", &residents, "--out", out, "--json"]);
    serde_json::from_str(&printed).unwrap()
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// The messages of a traffic file, as `rhip hl7 send` splits it: a blank
/// line ends a message, every line becomes a `\r`-terminated segment.
fn messages(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut messages = Vec::new();
    let mut current = Vec::new();
    for line in text.split("\r\n") {
        if line.is_empty() {
            if !current.is_empty() {
                messages.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.extend_from_slice(line.as_bytes());
        current.push(b'\r');
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

#[test]
fn synth_writes_the_same_bytes_for_the_same_seed() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, c) = (root.path().join("a"), root.path().join("b"), root.path().join("c"));
    let summary = synth(5, 300, &a);
    synth(5, 300, &b);
    synth(6, 300, &c);
    let (files_a, files_b, files_c) = (files(&a), files(&b), files(&c));
    assert_eq!(files_a, files_b, "same seed, same files");
    for name in ["persons.jsonl", "households.jsonl", "expected.jsonl", "traffic/330106.hl7"] {
        assert!(files_a.contains_key(name), "{name} missing: {:?}", files_a.keys().collect::<Vec<_>>());
        assert_ne!(files_a.get(name), files_c.get(name), "{name} should change with the seed");
    }
    assert_eq!(
        files_a.get("facilities.jsonl"),
        files_c.get("facilities.jsonl"),
        "facilities do not depend on the seed"
    );

    // The summary counts what was written.
    assert_eq!(summary["residents"], 300);
    let regions = summary["regions"].as_object().unwrap();
    assert_eq!(regions.keys().collect::<Vec<_>>(), ["330106", "330108", "440106"]);
    let persons = json_lines(&a.join("persons.jsonl"));
    assert_eq!(persons.len(), 300);
    let xihu_residents = persons.iter().filter(|p| p["home_region"] == XIHU).count();
    assert_eq!(regions[XIHU]["residents"], xihu_residents as u64);
    let expected = json_lines(&a.join("expected.jsonl"));
    let xihu_messages = expected.iter().filter(|e| e["file"] == "traffic/330106.hl7").count();
    assert_eq!(regions[XIHU]["messages"], xihu_messages as u64);
    assert_eq!(messages(&a.join("traffic/330106.hl7")).len(), xihu_messages);
    for answer in ["AA", "AE", "AR", "201"] {
        assert!(summary["by_expected"][answer].as_u64().unwrap_or(0) > 0, "no {answer}: {summary}");
    }

    // An earlier output is replaced; the human summary names the counties.
    let printed = rhip_ok(&["synth", "--seed", "5", "--residents", "300", "--out", a.to_str().unwrap()]);
    assert!(printed.contains("330106 西湖区"), "{printed}");
    assert_eq!(files(&a), files_b);
}

#[test]
fn synth_refuses_bad_arguments_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let out_arg = out.to_str().unwrap();
    assert_fails(&rhip(&["synth", "--residents", "0", "--out", out_arg]), 2, "residents must be at least 1");
    assert_fails(
        &rhip(&["synth", "--residents", "10000001", "--out", out_arg]),
        2,
        "residents must be at most 10000000",
    );
    assert_fails(
        &rhip(&["synth", "--topology", "/nonexistent/topology.toml", "--out", out_arg]),
        2,
        "cannot read topology /nonexistent/topology.toml",
    );
    // A file where a folder must be: the folder cannot be created.
    let file = root.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("out");
    assert_fails(&rhip(&["synth", "--residents", "10", "--out", under_file.to_str().unwrap()]), 2, "--out");
    // A folder holding something else is not overwritten.
    let foreign = root.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    assert_fails(
        &rhip(&["synth", "--residents", "10", "--out", foreign.to_str().unwrap()]),
        2,
        "neither empty nor an earlier rhip synth output",
    );
    assert_eq!(std::fs::read_to_string(foreign.join("notes.txt")).unwrap(), "mine");
}

/// All persons the node holds, paged through the API.
fn all_persons(server: &Node, token: &str) -> Vec<Value> {
    let mut persons = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => format!("/api/v1/persons?limit=500&after={id}"),
            None => "/api/v1/persons?limit=500".to_string(),
        };
        let answer = server.get(&path, Some(token));
        assert_eq!(answer.status, 200, "{}", answer.text);
        let body = answer.json();
        let items = body["items"].as_array().unwrap().clone();
        persons.extend(items);
        match body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return persons,
        }
    }
}

fn synthetic_traffic_gets_the_expected_answers(backend: Backend) {
    let Some(node) = NodeDir::init(XIHU, backend) else { return };
    let out = node.dir.path().join("synth");
    synth(42, 400, &out);

    // The county's facilities, as `rhip facility add` takes them.
    let facilities: Vec<Value> =
        json_lines(&out.join("facilities.jsonl")).into_iter().filter(|f| f["region"] == XIHU).collect();
    assert_eq!(facilities.len(), 5);
    for facility in &facilities {
        let field = |name: &str| facility[name].as_str().unwrap().to_string();
        let output = node.cli(
            &["facility", "add"],
            &["--code", &field("code"), "--name", &field("name"), "--kind", &field("kind"), "--region", XIHU],
        );
        assert!(output.status.success(), "facility add: {}", String::from_utf8_lossy(&output.stderr));
    }
    // The county's own residents, as its population register would hold them.
    let persons = json_lines(&out.join("persons.jsonl"));
    let residents: Vec<Value> = persons.iter().filter(|p| p["home_region"] == XIHU).cloned().collect();
    let imported = node.import(&residents);
    assert_eq!(imported.len(), residents.len());

    let server = node.start();
    let mut mllp = Mllp::connect(server.mllp.as_deref().unwrap());
    let expected = json_lines(&out.join("expected.jsonl"));
    let traffic: Vec<&Value> = expected.iter().filter(|e| e["file"] == "traffic/330106.hl7").collect();
    let sent = messages(&out.join("traffic/330106.hl7"));
    assert_eq!(sent.len(), traffic.len());
    let mut answered = BTreeMap::new();
    let mut accepted_residents = HashSet::new();
    for (index, (message, label)) in sent.iter().zip(&traffic).enumerate() {
        assert_eq!(label["index"], index as u64);
        let ack = mllp.send(message);
        let want = label["expected"].as_str().unwrap();
        assert_eq!(
            ack.code(),
            want,
            "message {index} ({} {}, {}): {}",
            label["scenario"],
            label["kind"],
            label["note"],
            ack.text
        );
        assert_eq!(ack.control_id(), label["control_id"].as_str().unwrap(), "{}", ack.text);
        if want == "AA" {
            accepted_residents.insert(label["resident"].as_u64().unwrap());
        } else {
            assert!(!ack.errors().is_empty(), "a refusal names its problem: {}", ack.text);
        }
        *answered.entry(want.to_string()).or_insert(0) += 1;
    }
    for answer in ["AA", "AE", "AR"] {
        assert!(answered.get(answer).copied().unwrap_or(0) > 0, "no {answer} among {answered:?}");
    }

    // Documents, posted by their hospitals after the messages.
    let documents: Vec<&Value> = expected.iter().filter(|e| e["county"] == XIHU && e["channel"] == "http").collect();
    assert!(!documents.is_empty(), "the script gives Xihu a stay with a discharge summary");
    for document in &documents {
        let facility = document["facility"].as_str().unwrap();
        let token = node.token("hospital_system", &["--facility", facility]);
        let bytes = std::fs::read(out.join(document["file"].as_str().unwrap())).unwrap();
        let status = match ureq::post(&format!("{}/api/v1/documents", server.api))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/xml")
            .send_bytes(&bytes)
        {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, response)) => {
                panic!("document {}: {status} {}", document["file"], response.into_string().unwrap_or_default())
            }
            Err(error) => panic!("transport: {error}"),
        };
        assert_eq!(status.to_string(), document["expected"].as_str().unwrap());
    }

    // Linking: the node holds its residents once each (typos, resends and
    // record-number-only messages linked to them), as its commission sees
    // them, and one person per resident of another county treated here, as
    // the hospitals that treated them see them.
    let commission = node.token("commission", &[]);
    let held = all_persons(&server, &commission);
    assert_eq!(held.len(), residents.len(), "Xihu's residents, each once");
    let stats = server.get("/api/v1/stats/summary?region=330106", Some(&commission)).json();
    assert_eq!(stats["persons"], residents.len() as u64, "{stats}");
    assert_eq!(stats["documents"], documents.len() as u64, "{stats}");
    let visitors: HashSet<u64> = accepted_residents
        .iter()
        .copied()
        .filter(|resident| persons[*resident as usize]["home_region"] != XIHU)
        .collect();
    assert!(!visitors.is_empty(), "the script treats patients from elsewhere at Xihu");
    let mut seen_by_hospitals = BTreeMap::new();
    for facility in &facilities {
        let token = node.token("hospital_system", &["--facility", facility["code"].as_str().unwrap()]);
        for person in all_persons(&server, &token) {
            seen_by_hospitals.insert(person["empi_id"].as_str().unwrap().to_string(), person["home_region"].clone());
        }
    }
    let visiting = seen_by_hospitals.values().filter(|home| **home != XIHU).count();
    assert_eq!(visiting, visitors.len(), "one person per visitor");

    // The duplicates: one person, under the name first registered.
    let duplicate = traffic.iter().find(|e| e["scenario"] == "duplicates").unwrap();
    let resident = &persons[duplicate["resident"].as_u64().unwrap() as usize];
    let found = server
        .get(&format!("/api/v1/persons?id_number={}", resident["id_number"].as_str().unwrap()), Some(&commission))
        .items();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], resident["name"]);
    // A patient from another province lives there, as far as this node knows.
    let away = traffic.iter().find(|e| e["outside_home_province"] == true && e["expected"] == "AA").unwrap();
    let visitor = &persons[away["resident"].as_u64().unwrap() as usize];
    let hospital = node.token("hospital_system", &["--facility", away["facility"].as_str().unwrap()]);
    let found = server
        .get(&format!("/api/v1/persons?id_number={}", visitor["id_number"].as_str().unwrap()), Some(&hospital))
        .items();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["home_region"], visitor["home_region"]);
    assert_ne!(visitor["home_region"].as_str().unwrap()[..2], XIHU[..2]);
}

both_backends! {
    synthetic_traffic_gets_the_expected_answers => super::synthetic_traffic_gets_the_expected_answers;
}
