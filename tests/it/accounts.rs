//! Residents' accounts through the real interfaces: `rhip resident
//! enrol-code`, `POST /auth/register|login|refresh|logout|password`, the
//! lockout, and the resident's own access log showing the attempts.

use rhip_tests::{both_backends, person, Backend, NodeDir};
use serde_json::{json, Value};

const PASSWORD: &str = "Glacier-Otter-47-Lantern";

/// A Xihu county node with one Xihu resident and one Binjiang resident
/// (whose home county is elsewhere), locking after three failed logins.
fn county(backend: Backend) -> Option<(NodeDir, Vec<Value>, Vec<String>)> {
    let node = NodeDir::init("330106", backend)?;
    let mut doc: toml::Table = std::fs::read_to_string(&node.config).unwrap().parse().unwrap();
    let auth = doc.entry("auth").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let auth = auth.as_table_mut().unwrap();
    auth.insert("lockout_after".into(), 3.into());
    auth.insert("lockout_base".into(), "10m".into());
    std::fs::write(&node.config, toml::to_string(&doc).unwrap()).unwrap();
    // These tests count logins themselves; the per-address rate limit on
    // /auth is tested in hardening.rs.
    node.edit_config(|doc| {
        let api = doc["api"].as_table_mut().unwrap();
        let limits = api.entry("rate_limits").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let limits = limits.as_table_mut().unwrap();
        limits.insert("login_burst".into(), 1000.into());
        limits.insert("login_per_minute".into(), 6000.into());
    });
    let persons = vec![person("西湖居民", "330106", (1980, 5, 6), 61), person("滨江居民", "330108", (1985, 1, 2), 62)];
    let ids = node.import(&persons);
    Some((node, persons, ids))
}

fn enrol_code(node: &NodeDir, person: &str) -> String {
    let output = node.cli(&["resident", "enrol-code"], &["--person", person, "--json"]);
    assert!(output.status.success(), "enrol-code: {}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["person"], person);
    answer["code"].as_str().unwrap().to_string()
}

fn residents_enrol_log_in_refresh_and_log_out(backend: Backend) {
    let Some((node, persons, ids)) = county(backend) else { return };
    let id_number = persons[0]["id_number"].as_str().unwrap().to_string();

    // Codes are issued by the home county only, for known persons.
    let elsewhere = node.cli(&["resident", "enrol-code"], &["--person", &ids[1]]);
    rhip_tests::assert_fails(&elsewhere, 2, "home county is 330108");
    let unknown = node.cli(&["resident", "enrol-code"], &["--person", &uuid::Uuid::now_v7().to_string()]);
    rhip_tests::assert_fails(&unknown, 2, "no person");
    let code = enrol_code(&node, &ids[0]);
    assert_eq!(code.len(), 14, "{code}");

    let server = node.start();
    // A weak password is refused with the field named; nothing is spent.
    let weak = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": code, "password": "password123"}),
    );
    assert_eq!(weak.status, 422, "{}", weak.text);
    assert_eq!(weak.json()["errors"][0]["field"], "password");
    // A wrong code and an unknown citizen ID get the same words.
    let wrong = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": "AAAA-BBBB-CCCC", "password": PASSWORD}),
    );
    let stranger = server.post(
        "/auth/register",
        None,
        &json!({"id_number": "11010519491231002X", "enrolment_code": code, "password": PASSWORD}),
    );
    assert_eq!((wrong.status, stranger.status), (422, 422));
    assert_eq!(wrong.json()["detail"], stranger.json()["detail"]);
    assert_eq!(wrong.json()["errors"][0]["field"], "enrolment_code");
    // Lower case and without dashes still works; the code works once.
    let typed = code.replace('-', "").to_lowercase();
    let registered = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number.to_lowercase(), "enrolment_code": typed, "password": PASSWORD}),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(registered.json()["empi_id"], ids[0]);
    let again = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": code, "password": PASSWORD}),
    );
    assert_eq!(again.status, 422, "{}", again.text);
    let second_code = enrol_code(&node, &ids[0]);
    let twice = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": second_code, "password": PASSWORD}),
    );
    assert_eq!(twice.status, 409, "{}", twice.text);

    // A wrong password and an unknown citizen ID: the same 401.
    let bad = server.post("/auth/login", None, &json!({"id_number": id_number, "password": "Not-The-Password-1"}));
    let nobody = server.post("/auth/login", None, &json!({"id_number": "11010519491231002X", "password": PASSWORD}));
    assert_eq!((bad.status, nobody.status), (401, 401));
    assert_eq!(bad.json()["detail"], nobody.json()["detail"]);

    let login = server.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD}));
    assert_eq!(login.status, 200, "{}", login.text);
    let tokens = login.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let me = server.get("/api/v1/me", Some(&access));
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["empi_id"], ids[0]);
    // The resident's own log shows the failed and the successful login.
    let log = server.get("/api/v1/me/access-log", Some(&access)).items();
    let logins: Vec<(String, String)> = log
        .iter()
        .filter(|e| e["action"] == "login")
        .map(|e| (e["outcome"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap().to_string()))
        .collect();
    assert!(logins.contains(&("denied".into(), "anonymous".into())), "{logins:?}");
    assert!(logins.contains(&("success".into(), format!("resident:{}", ids[0]))), "{logins:?}");
    assert!(log.iter().any(|e| e["action"] == "register" && e["outcome"] == "success"), "{log:?}");

    // Refresh once; the old refresh token replayed ends the whole login.
    let refreshed = server.post("/auth/refresh", None, &json!({"refresh_token": refresh}));
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let next_refresh = refreshed.json()["refresh_token"].as_str().unwrap().to_string();
    let next_access = refreshed.json()["access_token"].as_str().unwrap().to_string();
    assert_ne!(next_refresh, refresh);
    let replay = server.post("/auth/refresh", None, &json!({"refresh_token": refresh}));
    assert_eq!(replay.status, 401, "{}", replay.text);
    let after_replay = server.post("/auth/refresh", None, &json!({"refresh_token": next_refresh}));
    assert_eq!(after_replay.status, 401, "the family is revoked: {}", after_replay.text);
    let garbage = server.post("/auth/refresh", None, &json!({"refresh_token": "' OR 1=1 --"}));
    assert_eq!(garbage.status, 401);

    // Logout revokes the bearer token at once.
    let out = server.post("/auth/logout", Some(&next_access), &json!({}));
    assert_eq!(out.status, 204, "{}", out.text);
    let revoked = server.get("/api/v1/me", Some(&next_access));
    assert_eq!(revoked.status, 401, "{}", revoked.text);
    assert!(revoked.json()["detail"].as_str().unwrap().contains("revoked"), "{}", revoked.text);
    // The first access token is still good until it expires (it was not logged out).
    assert_eq!(server.get("/api/v1/me", Some(&access)).status, 200);
    // Logging in again with a refresh token, then logging out with it, ends that login too.
    let again = server.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD})).json();
    let (access2, refresh2) =
        (again["access_token"].as_str().unwrap().to_string(), again["refresh_token"].as_str().unwrap().to_string());
    assert_eq!(server.post("/auth/logout", Some(&access2), &json!({"refresh_token": refresh2})).status, 204);
    assert_eq!(server.post("/auth/refresh", None, &json!({"refresh_token": refresh2})).status, 401);

    // Nothing secret is stored as it was typed.
    if backend == Backend::Sqlite {
        drop(server);
        let db = std::fs::read(node.dir.path().join("data/rhip.db")).unwrap();
        let wal = std::fs::read(node.dir.path().join("data/rhip.db-wal")).unwrap_or_default();
        for secret in [PASSWORD, &code.replace('-', ""), &code, &refresh, &refresh2] {
            for bytes in [&db, &wal] {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} stored in plain");
            }
        }
    }
}

fn repeated_failures_lock_known_and_unknown_citizen_ids_alike(backend: Backend) {
    let Some((node, persons, ids)) = county(backend) else { return };
    let id_number = persons[0]["id_number"].as_str().unwrap().to_string();
    let code = enrol_code(&node, &ids[0]);
    let server = node.start();
    let registered = server.post(
        "/auth/register",
        None,
        &json!({"id_number": id_number, "enrolment_code": code, "password": PASSWORD}),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    for who in [id_number.as_str(), "11010519491231002X"] {
        for attempt in 1..=3 {
            let failed = server.post("/auth/login", None, &json!({"id_number": who, "password": "Wrong-Password-99"}));
            assert_eq!(failed.status, 401, "attempt {attempt} for {who}: {}", failed.text);
        }
        let locked = server.post("/auth/login", None, &json!({"id_number": who, "password": PASSWORD}));
        assert_eq!(locked.status, 429, "{who}: {}", locked.text);
        assert_eq!(locked.content_type, "application/problem+json");
        assert!(locked.json()["detail"].as_str().unwrap().contains("try again in"), "{}", locked.text);
    }
    // The lock is audited under the person, so the resident can see it.
    let auditor = node.token("auditor", &[]);
    let audit = server.get(&format!("/api/v1/audit?person={}", ids[0]), Some(&auditor));
    assert_eq!(audit.status, 200, "{}", audit.text);
    let denied: Vec<Value> = audit.items().into_iter().filter(|e| e["action"] == "login").collect();
    assert!(denied.iter().any(|e| e["http_status"] == 429), "{denied:?}");
    assert_eq!(denied.iter().filter(|e| e["http_status"] == 401).count(), 3, "{denied:?}");
    // Malformed bodies are named, not crashed on.
    let missing = server.post("/auth/login", None, &json!({"id_number": id_number}));
    assert_eq!(missing.status, 422, "{}", missing.text);
    let extra = server.post("/auth/login", None, &json!({"id_number": id_number, "password": "x", "admin": true}));
    assert_eq!(extra.status, 422, "{}", extra.text);
    let long = server.post("/auth/login", None, &json!({"id_number": "9".repeat(500), "password": "x"}));
    assert_eq!(long.status, 422, "{}", long.text);
}

/// Enrols the first resident of `county` and logs in: (access, refresh).
fn enrolled(node: &NodeDir, server: &rhip_tests::Node, persons: &[Value], ids: &[String]) -> (String, String) {
    let code = enrol_code(node, &ids[0]);
    let id_number = persons[0]["id_number"].as_str().unwrap();
    let body = json!({"id_number": id_number, "enrolment_code": code, "password": PASSWORD});
    assert_eq!(server.post("/auth/register", None, &body).status, 201);
    let login = server.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD}));
    assert_eq!(login.status, 200, "{}", login.text);
    let pair = login.json();
    (pair["access_token"].as_str().unwrap().to_string(), pair["refresh_token"].as_str().unwrap().to_string())
}

fn residents_change_their_password_and_every_other_session_ends(backend: Backend) {
    let Some((node, persons, ids)) = county(backend) else { return };
    let server = node.start();
    let id_number = persons[0]["id_number"].as_str().unwrap().to_string();
    let (access, refresh) = enrolled(&node, &server, &persons, &ids);
    let (other_access, other_refresh) = {
        let login = server.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD})).json();
        (login["access_token"].as_str().unwrap().to_string(), login["refresh_token"].as_str().unwrap().to_string())
    };
    const NEW: &str = "Harbour-Willow-93-Compass";

    // Refusals name the field and change nothing.
    let wrong = server.post(
        "/auth/password",
        Some(&access),
        &json!({"current_password": "Not-It-At-All-12", "new_password": NEW}),
    );
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    assert_eq!(wrong.json()["errors"][0]["field"], "current_password");
    let weak =
        server.post("/auth/password", Some(&access), &json!({"current_password": PASSWORD, "new_password": "abc"}));
    assert_eq!(weak.status, 422, "{}", weak.text);
    assert_eq!(weak.json()["errors"][0]["field"], "new_password");
    let personal = server.post(
        "/auth/password",
        Some(&access),
        &json!({"current_password": PASSWORD, "new_password": format!("{id_number}-x")}),
    );
    assert_eq!(personal.status, 422, "{}", personal.text);
    let unknown_field =
        server.post("/auth/password", Some(&access), &json!({"current_password": PASSWORD, "password": NEW}));
    assert_eq!(unknown_field.status, 422, "{}", unknown_field.text);
    let commission = node.token("commission", &[]);
    let not_resident =
        server.post("/auth/password", Some(&commission), &json!({"current_password": PASSWORD, "new_password": NEW}));
    assert_eq!(not_resident.status, 403, "{}", not_resident.text);
    assert_eq!(server.get("/api/v1/me", Some(&other_access)).status, 200, "still logged in elsewhere");

    // The change: a new pair here, every other session over.
    let changed =
        server.post("/auth/password", Some(&access), &json!({"current_password": PASSWORD, "new_password": NEW}));
    assert_eq!(changed.status, 200, "{}", changed.text);
    let fresh = changed.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(server.get("/api/v1/me", Some(&fresh)).status, 200);
    assert_eq!(server.get("/api/v1/me", Some(&access)).status, 401, "the token used to change it is revoked");
    for old in [&refresh, &other_refresh] {
        assert_eq!(server.post("/auth/refresh", None, &json!({"refresh_token": old})).status, 401);
    }
    let old_password = server.post("/auth/login", None, &json!({"id_number": id_number, "password": PASSWORD}));
    assert_eq!(old_password.status, 401);
    let new_password = server.post("/auth/login", None, &json!({"id_number": id_number, "password": NEW}));
    assert_eq!(new_password.status, 200, "{}", new_password.text);

    // The resident sees both attempts in their access log.
    let log = server.get("/api/v1/me/access-log", Some(&fresh)).json();
    let changes: Vec<&Value> =
        log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "change_password").collect();
    assert_eq!(changes.len(), 2, "{log}");
    assert!(changes.iter().any(|e| e["outcome"] == "success") && changes.iter().any(|e| e["outcome"] == "denied"));
}

/// A node without its data keys does not start: it could neither find
/// residents' logins nor protect what it stores.
#[test]
fn serve_refuses_to_start_without_its_data_keys() {
    let Some(node) = NodeDir::init("330106", Backend::Sqlite) else { return };
    std::fs::remove_file(node.dir.path().join("keys/data-keys.json")).unwrap();
    let output = rhip_tests::rhip(&["serve", "--config", node.config_arg()]);
    rhip_tests::assert_fails(&output, 2, "data keys");
}

both_backends! {
    residents_change_their_password_and_every_other_session_ends => super::residents_change_their_password_and_every_other_session_ends;
    residents_enrol_log_in_refresh_and_log_out => super::residents_enrol_log_in_refresh_and_log_out;
    repeated_failures_lock_known_and_unknown_citizen_ids_alike => super::repeated_failures_lock_known_and_unknown_citizen_ids_alike;
}
