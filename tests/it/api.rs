//! The HTTP API of one node: operations endpoints, validation answers, the
//! facility registry, EHR and document reads, and graceful shutdown.

use rhip_tests::{both_backends, person, rhip, Backend, NodeDir};
use serde_json::{json, Value};

fn operations_endpoints_answer(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let server = node.start();
    let health = server.get("/healthz", None).json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["region"], "330106");
    assert_eq!(health["tier"], "county");
    assert_eq!(health["backend"], if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    assert_eq!(server.get("/readyz", None).status, 200);
    let openapi = server.get("/api/openapi.json", None).json();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/persons",
        "/api/v1/persons/{empi_id}",
        "/api/v1/persons/{empi_id}/ehr",
        "/api/v1/facilities",
        "/api/v1/me/access-log",
    ] {
        assert!(openapi["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    // Metrics count the requests just made, in the Prometheus text format.
    let metrics = server.get("/metrics", None);
    assert!(metrics.content_type.starts_with("text/plain"));
    assert!(metrics.text.contains("rhip_http_requests_total{"), "{}", metrics.text);
    assert!(metrics.text.contains(r#"route="/healthz""#));
    assert!(metrics.text.contains(r#"rhip_records{table="persons",region="330106"} 0"#), "{}", metrics.text);
    // Unknown routes answer problem+json too.
    let missing = server.get("/api/v1/nothing-here", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
}

fn bad_query_input_gets_422_naming_the_field(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let server = node.start();
    let token = node.token("commission", &[]);
    for (query, field) in [
        ("id_number=330106199901011234", "id_number"),
        ("id_number=12345", "id_number"),
        ("home_region=339999", "home_region"),
        ("birth_date=1980-13-01", "birth_date"),
        ("identifier=no-separator", "identifier"),
        ("limit=0", "limit"),
        ("after=xyz", "after"),
    ] {
        let answer = server.get(&format!("/api/v1/persons?{query}"), Some(&token));
        assert_eq!(answer.status, 422, "{query}: {}", answer.text);
        assert_eq!(answer.content_type, "application/problem+json");
        let body = answer.json();
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        assert!(!body["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    let unknown = server.get("/api/v1/persons?colour=blue", Some(&token));
    assert_eq!(unknown.status, 422);
    assert!(unknown.text.contains("colour"), "{}", unknown.text);
    let not_uuid = server.get("/api/v1/persons/not-an-id", Some(&token));
    assert_eq!(not_uuid.status, 422);
    assert_eq!(not_uuid.json()["errors"][0]["field"], "empi_id");
    let absent = server.get(&format!("/api/v1/persons/{}", uuid::Uuid::now_v7()), Some(&token));
    assert_eq!(absent.status, 403, "an unknown id is answered like one out of scope");
}

fn facility_registry_over_http(backend: Backend) {
    let Some(node) = NodeDir::init("330100", backend) else {
        return;
    };
    let server = node.start();
    let admin = node.token("node_admin", &[]);
    let county = node.token("commission", &["--region", "330106"]);
    let city = node.token("commission", &[]);

    let created = server.post(
        "/api/v1/facilities",
        Some(&admin),
        &json!({"code": "H330106009", "name": "测试医院", "region": "330106"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["kind"], "hospital");
    let clinic = json!({"code": "C330108001", "name": "测试诊所", "region": "330108", "kind": "clinic"});
    assert_eq!(server.post("/api/v1/facilities", Some(&admin), &clinic).status, 201);
    assert_eq!(server.post("/api/v1/facilities", Some(&admin), &clinic).status, 409);
    // Only node administrators register.
    assert_eq!(server.post("/api/v1/facilities", Some(&city), &json!({"code": "X1", "name": "x"})).status, 403);
    // Bad fields are named; nothing is stored.
    let outside =
        server.post("/api/v1/facilities", Some(&admin), &json!({"code": "G1", "name": "远方", "region": "440106"}));
    assert_eq!(outside.status, 422);
    assert_eq!(outside.json()["errors"][0]["field"], "region");
    let several =
        server.post("/api/v1/facilities", Some(&admin), &json!({"code": "", "name": "", "kind": "castle"})).json();
    let fields: Vec<&str> =
        several["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["code", "name", "kind"]);
    let unknown_field =
        server.post("/api/v1/facilities", Some(&admin), &json!({"code": "Z1", "name": "z", "colour": "red"}));
    assert_eq!(unknown_field.status, 422);

    // A city commission sees both, a county commission its own county's.
    let codes = |token: &str| -> Vec<String> {
        server
            .get("/api/v1/facilities", Some(token))
            .items()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(codes(&city), ["C330108001", "H330106009"]);
    assert_eq!(codes(&county), ["H330106009"]);
}

/// What the demo sent stays in its folder: Xihu, started again on its own,
/// serves its residents, the one treated in Tianhe with that encounter, and
/// the document its hospital posted.
#[test]
fn demo_records_are_served() {
    let demo = rhip_tests::Demo::new();
    let output = demo.run_once();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let folder = demo.folder.join("330106");
    let config = folder.join("node.toml");
    let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    doc["api"].as_table_mut().unwrap().insert("listen".into(), "127.0.0.1:0".into());
    doc["mllp"].as_table_mut().unwrap().insert("listen".into(), "127.0.0.1:0".into());
    std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
    let node = rhip_tests::NodeDir {
        config,
        region: "330106".into(),
        dir: demo.dir,
        db: rhip_tests::TestDb::new(Backend::Sqlite).unwrap(),
    };
    let server = node.start();
    let commission = node.token("commission", &[]);
    // The demo's own patients (its hospitals' record numbers), among the synthetic residents.
    let demo_patient = |p: &Value| {
        p["identifiers"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i["value"].as_str().is_some_and(|v| v.starts_with("DEMO-MRN-"))))
    };
    let all = server.get("/api/v1/persons?limit=500", Some(&commission)).items();
    assert!(all.len() > 50, "the synthetic residents of Xihu are there too: {}", all.len());
    let persons: Vec<Value> = all.into_iter().filter(demo_patient).collect();
    assert_eq!(persons.len(), 4, "the demo's Xihu residents, one of them treated in Tianhe");
    assert!(persons.iter().all(|p| p["home_region"] == "330106"), "{persons:?}");
    let encounters = |id: &str| server.get(&format!("/api/v1/persons/{id}/encounters"), Some(&commission)).items();
    let facilities: Vec<String> = persons
        .iter()
        .flat_map(|p| encounters(p["empi_id"].as_str().unwrap()))
        .map(|e| e["facility"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(facilities.iter().filter(|f| *f == "H330106001").count(), 3, "{facilities:?}");
    assert_eq!(facilities.iter().filter(|f| *f == "H440106001").count(), 1, "{facilities:?}");
    let with_document = persons
        .iter()
        .map(|p| p["empi_id"].as_str().unwrap().to_string())
        .find(|id| !server.get(&format!("/api/v1/persons/{id}/documents"), Some(&commission)).items().is_empty())
        .expect("one demo person has a document");
    let documents = server.get(&format!("/api/v1/persons/{with_document}/documents"), Some(&commission)).items();
    assert_eq!(documents[0]["sha256"].as_str().unwrap().len(), 64);
    let ehr = server.get(&format!("/api/v1/persons/{with_document}/ehr"), Some(&commission)).items();
    assert!(ehr.iter().any(|e| e["kind"] == "document" && e["document_id"] == documents[0]["id"]), "{ehr:?}");
    assert_eq!(ehr[0]["source_region"], "330106");
}

fn sigterm_stops_the_node_cleanly(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let server = node.start();
    let token = node.token("commission", &[]);
    node.import(&[person("测试丁", "330106", (1970, 1, 1), 71)]);
    assert_eq!(server.get("/api/v1/persons", Some(&token)).items().len(), 1);
    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    // The data survives a restart.
    let again = node.start();
    assert_eq!(again.get("/api/v1/persons", Some(&token)).items().len(), 1);
}

fn persons_page_with_after(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else {
        return;
    };
    let people: Vec<Value> =
        (0..5).map(|i| person(&format!("翻页{i}"), "330106", (1960 + i, 2, 3), 200 + i as u16)).collect();
    let ids = node.import(&people);
    let server = node.start();
    let token = node.token("commission", &[]);
    let first = server.get("/api/v1/persons?limit=3", Some(&token)).json();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let next = first["next"].as_str().unwrap();
    let second = server.get(&format!("/api/v1/persons?limit=3&after={next}"), Some(&token)).json();
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert!(second["next"].is_null());
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|p| p["empi_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(seen, expected);
}

both_backends! {
    operations_endpoints_answer => super::operations_endpoints_answer;
    bad_query_input_gets_422_naming_the_field => super::bad_query_input_gets_422_naming_the_field;
    facility_registry_over_http => super::facility_registry_over_http;
    sigterm_stops_the_node_cleanly => super::sigterm_stops_the_node_cleanly;
    persons_page_with_after => super::persons_page_with_after;
}

/// With `api.tls_cert` and `api.tls_key` the API speaks HTTPS only.
#[test]
fn the_api_serves_https_when_configured() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(node.dir.path().join("api.crt"), certified.cert.pem()).unwrap();
    std::fs::write(node.dir.path().join("api.key"), certified.key_pair.serialize_pem()).unwrap();
    let text = std::fs::read_to_string(&node.config).unwrap();
    // Half a TLS configuration is refused with the reason.
    std::fs::write(&node.config, text.replace("[api]\n", "[api]\ntls_cert = \"api.crt\"\n")).unwrap();
    rhip_tests::assert_fails(
        &rhip(&["serve", "--config", node.config_arg()]),
        2,
        "tls_cert and api.tls_key go together",
    );
    std::fs::write(&node.config, text.replace("[api]\n", "[api]\ntls_cert = \"api.crt\"\ntls_key = \"api.key\"\n"))
        .unwrap();
    let server = node.start();
    assert!(server.api.starts_with("https://127.0.0.1:"), "{}", server.api);
    let address = server.api.trim_start_matches("https://").to_string();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, std::net::TcpStream::connect(&address).unwrap());
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"region\":\"330106\""), "{answer}");

    // Plain HTTP gets no answer from the TLS listener.
    let mut plain = std::net::TcpStream::connect(&address).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));
}

/// `/readyz` answers 503 when the database goes away, and `/healthz` still 200.
#[test]
fn readyz_reports_a_lost_database() {
    let Some(node) = NodeDir::init("330106", Backend::Postgres) else { return };
    let server = node.start();
    assert_eq!(server.get("/readyz", None).status, 200);
    node.db.drop_database();
    let answer = server.get("/readyz", None);
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.content_type, "application/problem+json");
    assert!(!answer.text.contains("5432"), "no connection details to the public: {}", answer.text);
    assert_eq!(server.get("/healthz", None).status, 200);
}
