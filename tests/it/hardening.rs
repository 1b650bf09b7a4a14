//! Hardening of the HTTP API through a running node: security headers on
//! every answer, 413 for oversized bodies with nothing stored, 429 after a
//! client's burst on login and submission (audited, counted), the API's
//! TLS policy, and a debug log that holds no token or password.

use crate::documents::{doc, render, Style};
use rhip_tests::{both_backends, Backend, Node, NodeDir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSPITAL: &str = "H330106001";

both_backends! {
    security_headers_on_every_answer => super::security_headers_on_every_answer;
    oversized_bodies_get_413_and_store_nothing => super::oversized_bodies_get_413_and_store_nothing;
    rate_limits_answer_429_and_are_audited => super::rate_limits_answer_429_and_are_audited;
}

/// An HTTP answer with its headers.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    text: String,
}

impl Answer {
    fn of(result: Result<ureq::Response, ureq::Error>) -> Answer {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("HTTP transport error: {error}"),
        };
        let headers = response
            .headers_names()
            .into_iter()
            .map(|name| {
                let value = response.header(&name).unwrap_or_default().to_string();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        Answer { status: response.status(), headers, text: response.into_string().unwrap() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A problem+json answer of `status` whose detail contains `needle`.
    fn assert_problem(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        let detail = self.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(needle), "detail {detail:?} lacks {needle:?}");
    }

    /// The security headers every answer carries, and `no-store` on private paths.
    fn assert_hardened(&self, path: &str) {
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
            ("cross-origin-resource-policy", "same-origin"),
        ] {
            assert_eq!(self.header(name), Some(value), "{path} ({}): {name}", self.status);
        }
        let private = path.starts_with("/api/") || path.starts_with("/auth/");
        assert_eq!(self.header("cache-control"), private.then_some("no-store"), "{path}");
        assert_eq!(self.header("strict-transport-security"), None, "{path}: no HSTS over plain HTTP");
    }
}

fn request(method: &str, server: &Node, path: &str, token: Option<&str>) -> ureq::Request {
    let request = ureq::request(method, &format!("{}{path}", server.api));
    match token {
        Some(token) => request.set("Authorization", &format!("Bearer {token}")),
        None => request,
    }
}

fn get(server: &Node, path: &str, token: Option<&str>) -> Answer {
    Answer::of(request("GET", server, path, token).call())
}

fn post_json(server: &Node, path: &str, token: Option<&str>, body: &Value) -> Answer {
    Answer::of(request("POST", server, path, token).send_json(body.clone()))
}

fn post_bytes(server: &Node, path: &str, token: &str, content_type: &str, body: &[u8]) -> Answer {
    Answer::of(request("POST", server, path, Some(token)).set("Content-Type", content_type).send_bytes(body))
}

/// The same, chunked: no `Content-Length`, so only the streaming cap can refuse it.
fn post_chunked(server: &Node, path: &str, token: &str, content_type: &str, body: &[u8]) -> Answer {
    let reader = std::io::Cursor::new(body.to_vec());
    Answer::of(request("POST", server, path, Some(token)).set("Content-Type", content_type).send(reader))
}

/// A small ADT^A04 from the registered hospital, `n` making it unique.
fn hl7(n: u16) -> Vec<u8> {
    let region = rhip_core::RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1980, 5, 6).unwrap();
    // Odd sequences are men in GB 11643, as PID-8 says.
    let citizen = rhip_core::CitizenId::generate(region, birth, 501 + 2 * n);
    format!(
        "MSH|^~\\&|HIS|{HOSPITAL}|RHIP|330106|20240301083000||ADT^A04^ADT_A01|HARD-{n}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A04|20240301083000\r\
         PID|1||MRN{n}^^^{HOSPITAL}^MR~{citizen}^^^CHN^NNCHN||王^测试||19800506|M\r\
         PV1|1|O|内科^301^2||||D001^张^医生|||MED|||||||||V{n}\r",
        citizen = citizen.as_str()
    )
    .into_bytes()
}

/// Sets `api.KEY` (a dotted path under `[api]`, e.g. `rate_limits.login_burst`) in node.toml.
fn set(doc: &mut toml::Table, table: &str, key: &str, value: impl Into<toml::Value>) {
    let mut at = doc;
    for part in table.split('.') {
        at = at.entry(part).or_insert_with(|| toml::Value::Table(Default::default())).as_table_mut().unwrap();
    }
    at.insert(key.into(), value.into());
}

fn submissions(server: &Node, commission: &str) -> usize {
    let answer = get(server, "/api/v1/submissions?limit=1000", Some(commission));
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["items"].as_array().unwrap().len()
}

fn security_headers_on_every_answer(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    let server = node.start();
    let commission = node.token("commission", &[]);
    for (path, token, status) in [
        ("/healthz", None, 200),
        ("/readyz", None, 200),
        ("/metrics", None, 200),
        ("/api/openapi.json", None, 200),
        ("/api/v1/persons", Some(commission.as_str()), 200),
        ("/api/v1/persons", None, 401),
        ("/api/v1/persons?limit=0", Some(commission.as_str()), 422),
        ("/api/v1/nothing-here", None, 404),
        ("/nothing-here", None, 404),
    ] {
        let answer = get(&server, path, token);
        assert_eq!(answer.status, status, "{path}: {}", answer.text);
        answer.assert_hardened(path);
        assert!(answer.header("x-request-id").is_some(), "{path}");
    }
    // Under /auth/ too, whatever the route answers.
    let login = post_json(&server, "/auth/login", None, &json!({"id_number": "x", "password": "y"}));
    login.assert_hardened("/auth/login");
    let refused = post_json(&server, "/api/v1/facilities", Some(&commission), &json!({"code": "X", "name": "x"}));
    assert_eq!(refused.status, 403);
    refused.assert_hardened("/api/v1/facilities");
}

fn oversized_bodies_get_413_and_store_nothing(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(HOSPITAL, "330106");
    node.edit_config(|doc| {
        set(doc, "api", "max_body_bytes", 2048);
        set(doc, "api", "max_document_bytes", 65536);
        set(doc, "mllp", "max_message_bytes", 4096);
    });
    let server = node.start();
    let commission = node.token("commission", &[]);
    let admin = node.token("node_admin", &[]);
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);

    let mut big_hl7 = hl7(1);
    big_hl7.extend(std::iter::repeat_n(b'X', 5000));
    let mut big_document = render(&doc("C0001", "HARD-BIG", 301), Style::Plain);
    big_document.extend(std::iter::repeat_n(b' ', 70_000));
    for (path, content_type, body, limit) in [
        ("/api/v1/hl7v2", "x-application/hl7-v2+er7", &big_hl7, "4096"),
        ("/api/v1/documents", "application/xml", &big_document, "65536"),
    ] {
        let declared = post_bytes(&server, path, &hospital, content_type, body);
        declared.assert_problem(413, &format!("at most {limit} bytes"));
        declared.assert_hardened(path);
        let chunked = post_chunked(&server, path, &hospital, content_type, body);
        chunked.assert_problem(413, &format!("at most {limit} bytes"));
    }
    let long_name = "名".repeat(1000);
    let json_body = json!({"code": "H330106077", "name": long_name});
    post_json(&server, "/api/v1/facilities", Some(&admin), &json_body)
        .assert_problem(413, "a JSON body may be at most 2048 bytes");

    // Nothing of it was stored.
    assert_eq!(submissions(&server, &commission), 0);
    let facilities = get(&server, "/api/v1/facilities", Some(&commission)).json();
    assert_eq!(facilities["items"].as_array().unwrap().len(), 1, "only the one registered: {facilities}");
    let stats = get(&server, "/api/v1/stats/summary?region=330106", Some(&commission)).json();
    assert_eq!((stats["documents"].as_i64(), stats["persons"].as_i64()), (Some(0), Some(0)), "{stats}");

    // Bodies within the limits pass, and the node kept serving.
    let message = post_bytes(&server, "/api/v1/hl7v2", &hospital, "x-application/hl7-v2+er7", &hl7(2));
    assert_eq!(message.status, 200, "{}", message.text);
    assert!(message.text.contains("MSA|AA|HARD-2"), "{}", message.text);
    let document = render(&doc("C0001", "HARD-SMALL", 303), Style::Plain);
    let stored = post_chunked(&server, "/api/v1/documents", &hospital, "application/xml", &document);
    assert_eq!(stored.status, 201, "{}", stored.text);
    let small = json!({"code": "H330106078", "name": "小医院"});
    assert_eq!(post_json(&server, "/api/v1/facilities", Some(&admin), &small).status, 201);
    assert_eq!(submissions(&server, &commission), 2);
}

fn rate_limits_answer_429_and_are_audited(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(HOSPITAL, "330106");
    node.edit_config(|doc| {
        set(doc, "api.rate_limits", "login_per_minute", 1);
        set(doc, "api.rate_limits", "login_burst", 3);
        set(doc, "api.rate_limits", "submissions_per_second", 1);
        set(doc, "api.rate_limits", "submissions_burst", 3);
    });
    let server = node.start();
    let commission = node.token("commission", &[]);
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);
    let auditor = node.token("auditor", &[]);

    // Login: the burst passes to the route (whatever it answers: 404 before
    // the route exists, 401 for a wrong password after), then 429. One
    // token a minute refills, so nothing refills during the test.
    let credentials = json!({"id_number": "330106198005060012", "password": "not-the-password"});
    let answers: Vec<Answer> = (0..5).map(|_| post_json(&server, "/auth/login", None, &credentials)).collect();
    for (n, answer) in answers.iter().enumerate() {
        if n < 3 {
            assert_ne!(answer.status, 429, "request {n} is within the burst: {}", answer.text);
            continue;
        }
        answer.assert_problem(429, "at most 1 login requests a minute per client, 3 at once");
        answer.assert_hardened("/auth/login");
        assert_eq!(answer.json()["type"], "https://rhip.invalid/problems/too-many-requests");
        let retry: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    let login_request_id = answers[3].header("x-request-id").unwrap().to_string();
    // GETs and other clients' buckets are not touched: reading goes on.
    assert_eq!(get(&server, "/api/v1/persons", Some(&commission)).status, 200);

    // Submissions: the burst of three, then 429 until a token refills (one
    // a second, so no more than the seconds elapsed can pass on top).
    let started = Instant::now();
    let answers: Vec<Answer> = (0..12)
        .map(|n| post_bytes(&server, "/api/v1/hl7v2", &hospital, "x-application/hl7-v2+er7", &hl7(10 + n)))
        .collect();
    let elapsed = started.elapsed();
    assert!(answers[..3].iter().all(|a| a.status == 200), "{:?}", &answers[..3]);
    let passed = answers.iter().filter(|a| a.status == 200).count();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(passed + refused.len(), answers.len(), "only 200 or 429: {answers:?}");
    assert!(passed as u64 <= 3 + elapsed.as_secs() + 1, "{passed} passed in {elapsed:?}");
    assert!(!refused.is_empty(), "no 429 after the burst in {elapsed:?}");
    for answer in &refused {
        answer.assert_problem(429, "at most 1 submissions a second per client, 3 at once");
        assert!(answer.header("retry-after").is_some_and(|r| r.parse::<u64>().is_ok_and(|r| r >= 1)));
    }
    // Refused messages were not read, so not archived either.
    assert_eq!(submissions(&server, &commission), passed);

    // Each refusal is counted; the first of each class and client is audited,
    // the rest of that minute is not (no flood of the audit log).
    let audited = get(&server, "/api/v1/audit?action=rate_limit", Some(&auditor));
    assert_eq!(audited.status, 200, "{}", audited.text);
    let entries = audited.json()["items"].as_array().unwrap().clone();
    let of = |resource: &str| entries.iter().filter(|e| e["resource_id"] == resource).collect::<Vec<_>>();
    let (login, hl7v2) = (of("POST /auth/login"), of("POST /api/v1/hl7v2"));
    assert_eq!((login.len(), hl7v2.len(), entries.len()), (1, 1, 2), "{entries:?}");
    for entry in [login[0], hl7v2[0]] {
        assert_eq!((entry["outcome"].as_str(), entry["http_status"].as_i64()), (Some("denied"), Some(429)));
        assert_eq!(entry["actor"], "anonymous");
    }
    assert_eq!(login[0]["request_id"], login_request_id.as_str());
    let metrics = get(&server, "/metrics", None).text;
    assert!(metrics.contains(r#"rhip_rate_limited_total{class="login",region="330106"} 2"#), "{metrics}");
    let submission_line = format!(r#"rhip_rate_limited_total{{class="submission",region="330106"}} {}"#, refused.len());
    assert!(metrics.contains(&submission_line), "{metrics}");
}

/// A TLS client with `versions`, trusting `certificate`, for `localhost`.
fn tls_client(
    certificate: &rcgen::CertifiedKey,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// `GET /healthz` over TLS; the answer's head and body, or the handshake's error.
fn https_healthz(address: &str, config: Arc<rustls::ClientConfig>) -> Result<String, std::io::Error> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = std::net::TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // The node may close without close_notify after `Connection: close`.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(error) => return Err(error),
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// A hand-written TLS 1.2 ClientHello offering only `suites` (no client in
/// the workspace can offer suites rustls refuses to implement), and the
/// first record the server answers with.
fn tls12_hello_answer(address: &str, suites: &[u16]) -> Vec<u8> {
    let mut extensions = Vec::new();
    for (kind, data) in [
        (0x000a_u16, vec![0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]), // supported groups: x25519, secp256r1
        (0x000b, vec![0x01, 0x00]),                             // EC point formats: uncompressed
        (0x000d, vec![0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]), // signature algorithms
        (0x0017, vec![]),                                       // extended master secret
        (0xff01, vec![0x00]),                                   // renegotiation info
    ] {
        extensions.extend(kind.to_be_bytes());
        extensions.extend((data.len() as u16).to_be_bytes());
        extensions.extend(data);
    }
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x42; 32]); // random
    hello.push(0); // no session id
    hello.extend(((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        hello.extend(suite.to_be_bytes());
    }
    hello.extend([0x01, 0x00]); // null compression only
    hello.extend((extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01];
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(&record).unwrap();
    let mut answer = vec![0u8; 7];
    let mut read = 0;
    while read < answer.len() {
        match stream.read(&mut answer[read..]) {
            Ok(0) | Err(_) => break,
            Ok(count) => read += count,
        }
    }
    answer.truncate(read);
    answer
}

/// With `api.tls_cert` the API speaks TLS 1.3 and TLS 1.2 with ECDHE and
/// AEAD suites only, sends HSTS, and with `tls_min_version = "1.3"` refuses
/// TLS 1.2.
#[test]
fn the_api_speaks_modern_tls_only() {
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    let certificate = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(node.dir.path().join("api.crt"), certificate.cert.pem()).unwrap();
    std::fs::write(node.dir.path().join("api.key"), certificate.key_pair.serialize_pem()).unwrap();
    node.edit_config(|doc| {
        set(doc, "api", "tls_cert", "api.crt");
        set(doc, "api", "tls_key", "api.key");
    });
    let server = node.start();
    let address = server.api.trim_start_matches("https://").to_string();
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];
    let answer = https_healthz(&address, tls_client(&certificate, &both)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let head = answer.to_ascii_lowercase();
    assert!(head.contains("strict-transport-security: max-age=31536000"), "{answer}");
    assert!(head.contains("x-content-type-options: nosniff"), "{answer}");
    // TLS 1.2 with an ECDHE + AEAD suite is served.
    let answer = https_healthz(&address, tls_client(&certificate, &[&rustls::version::TLS12])).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The hand-written hello is answered with a ServerHello when it offers
    // ECDHE-ECDSA-AES128-GCM-SHA256 ...
    let answer = tls12_hello_answer(&address, &[0xc02b]);
    assert_eq!((answer.first(), answer.get(5)), (Some(&0x16), Some(&0x02)), "ServerHello: {answer:02x?}");
    // ... and with a handshake_failure alert when it offers only CBC suites
    // (with and without ECDHE) and RSA key exchange with GCM.
    let answer = tls12_hello_answer(&address, &[0xc009, 0xc00a, 0xc023, 0xc013, 0x002f, 0x0035, 0x009c, 0x000a]);
    assert_eq!(answer.first(), Some(&0x15), "an alert record: {answer:02x?}");
    assert_eq!(answer.get(6), Some(&40), "handshake_failure: {answer:02x?}");
    drop(server);

    node.edit_config(|doc| set(doc, "api", "tls_min_version", "1.3"));
    let server = node.start();
    let address = server.api.trim_start_matches("https://").to_string();
    let answer = https_healthz(&address, tls_client(&certificate, &[&rustls::version::TLS13])).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let refused = https_healthz(&address, tls_client(&certificate, &[&rustls::version::TLS12]));
    assert!(refused.is_err(), "TLS 1.2 must be refused: {refused:?}");
    drop(server);

    node.edit_config(|doc| set(doc, "api", "tls_min_version", "1.1"));
    let output = rhip_tests::rhip(&["serve", "--config", node.config_arg()]);
    rhip_tests::assert_fails(&output, 2, "tls_min_version");
}

/// At debug level the node's log holds neither the bearer token, nor a
/// token in a query string, nor a password or refresh token from a body,
/// whatever the answer.
#[test]
fn secrets_never_reach_the_log() {
    let node = NodeDir::init("330106", Backend::Sqlite).unwrap();
    node.add_facility(HOSPITAL, "330106");
    let (server, log) = node.start_logging("debug");
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);
    let token = node.token("commission", &[]);
    let admin = node.token("node_admin", &[]);
    let password = "Pa55-w0rd-never-logged";
    let refresh = "refresh-tok-never-logged-0123456789";
    let forged = "forged.token-never-logged.signature";

    assert_eq!(get(&server, "/api/v1/persons", Some(&token)).status, 200);
    // A token in the query string (some clients do that) and an unknown parameter: 422.
    let in_query = get(&server, &format!("/api/v1/persons?access_token={token}"), Some(&token));
    assert_eq!(in_query.status, 422, "{}", in_query.text);
    assert_eq!(get(&server, "/api/v1/persons", Some(forged)).status, 401);
    let login = json!({"id_number": "330106198005060012", "password": password});
    post_json(&server, "/auth/login", Some(&token), &login);
    post_json(&server, "/auth/register", None, &json!({"id_number": "x", "enrolment_code": "y", "password": password}));
    post_json(&server, "/auth/refresh", Some(&token), &json!({"refresh_token": refresh}));
    // JSON the facility route refuses: an unknown field, and a body that is
    // only the password (serde's message quotes such a value).
    let unknown = json!({"code": "H330106099", "name": "x", "password": password});
    assert_eq!(post_json(&server, "/api/v1/facilities", Some(&admin), &unknown).status, 422);
    assert_eq!(post_json(&server, "/api/v1/facilities", Some(&admin), &json!(password)).status, 422);
    // An HL7 message the node refuses, with the password where a name goes.
    let refused = String::from_utf8(hl7(1)).unwrap().replace("王^测试", &format!("{password}^{refresh}"));
    let refused = refused.replace("19800506|M", "19800506|Q");
    let hl7_answer = post_bytes(&server, "/api/v1/hl7v2", &hospital, "x-application/hl7-v2+er7", refused.as_bytes());
    assert_eq!(hl7_answer.status, 200, "{}", hl7_answer.text);

    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(300)); // the last lines reach the capture
    let text = log.text();
    for secret in [token.as_str(), admin.as_str(), hospital.as_str(), password, refresh, forged, "eyJ"] {
        assert!(!text.contains(secret), "the log holds {secret:?}:\n{text}");
    }
    // The test saw a log that would have shown them: requests and refusals are in it.
    assert!(text.contains("/api/v1/persons"), "the requests were logged at debug level: {text}");
    assert!(text.contains("request refused"), "refusals were logged: {text}");
}
