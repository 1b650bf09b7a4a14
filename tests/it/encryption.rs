//! Encryption at rest through the real interfaces: persons imported, HL7 over
//! MLLP and HTTP, a CDA document and a resident's registration and login go
//! into a running node; searches by citizen ID and by name + birth date still
//! find them and the API shows what it showed before, while the SQLite file
//! (with its WAL and shared memory) and a `pg_dump` of the PostgreSQL database
//! hold none of the synthetic citizen IDs, names, phones or address lines, and
//! neither do the audit log nor the node's log. `rhip keys rotate` re-encrypts
//! everything under a new key while a node started before it keeps reading.
//! Storage-level checks: plaintext left by an upgrade is sealed, a tampered
//! value or one moved to another column is refused.

use diesel::{Connection, RunQueryDsl};
use rhip_core::{CitizenId, PersonDemographics, RegionCode};
use rhip_tests::{both_backends, Backend, Mllp, NodeDir, TestDb};
use serde_json::{json, Value};

const HOSPITAL: &str = "H330106001";
const PASSWORD: &str = "Correct-Horse-Battery-42";

both_backends! {
    personal_data_is_sealed_at_rest_and_still_found => super::personal_data_is_sealed_at_rest_and_still_found;
    rotation_reencrypts_while_a_node_keeps_serving => super::rotation_reencrypts_while_a_node_keeps_serving;
    plaintext_from_before_is_sealed_once => super::plaintext_from_before_is_sealed_once;
    tampered_or_moved_values_are_refused => super::tampered_or_moved_values_are_refused;
}

fn citizen_id(birth: (i32, u32, u32), sequence: u16) -> String {
    let region = RegionCode::parse("330106").unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2).unwrap();
    CitizenId::generate(region, date, sequence).as_str().to_string()
}

/// An ADT^A01 with a citizen ID, a phone, an address line and a contact.
fn admission(control_id: &str, mrn: &str, name: (&str, &str), id_number: &str, phone: &str, street: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|{HOSPITAL}|RHIP|330106|20240301083000||ADT^A01^ADT_A01|{control_id}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20240301083000\r\
         PID|1||{mrn}^^^{HOSPITAL}^MR~{id_number}^^^CHN^NNCHN||{}^{}||19870214|M|||{street}^^杭州市^浙江省^310000^CHN^H^^330106||{phone}\r\
         NK1|1|联系^人丙|SPO^配偶^HL70063||13600003333\r\
         PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||V-{control_id}|||||||||||||||||||||||||20240301080000\r",
        name.0, name.1
    )
    .into_bytes()
}

/// Every place the synthetic values could leak, as UTF-8 bytes.
fn needles(values: &[&str]) -> Vec<Vec<u8>> {
    values.iter().map(|v| v.as_bytes().to_vec()).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The SQLite database file with its WAL and shared-memory files.
fn sqlite_bytes(node: &NodeDir) -> Vec<u8> {
    let base = node.dir.path().join("data/rhip.db");
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", base.display());
        if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    assert!(all.len() > 4096, "no SQLite file at {}", base.display());
    all
}

/// `pg_dump` from PATH or a PostgreSQL installation folder.
fn pg_dump() -> Option<std::path::PathBuf> {
    if let Ok(output) = std::process::Command::new("pg_dump").arg("--version").output() {
        if output.status.success() {
            return Some("pg_dump".into());
        }
    }
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pg_dump")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// A plain-text dump of a test database (all data, `COPY` rows included).
fn pg_dump_bytes(db: &TestDb) -> Option<Vec<u8>> {
    let Some(binary) = pg_dump() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "pg_dump not found (.ci/run installs postgresql-client)");
        eprintln!("SKIPPED: pg_dump not found");
        return None;
    };
    let url = db.url.as_ref().unwrap();
    let output = std::process::Command::new(binary).args(["--no-owner", "--dbname", url]).output().unwrap();
    assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.len() > 10_000, "dump too short: {}", output.stdout.len());
    Some(output.stdout)
}

/// What the backend holds at rest: the SQLite files, or a `pg_dump`.
fn at_rest(backend: Backend, node: &NodeDir) -> Option<Vec<u8>> {
    match backend {
        Backend::Sqlite => Some(sqlite_bytes(node)),
        Backend::Postgres => pg_dump_bytes(&node.db),
    }
}

fn assert_absent(haystack: &[u8], values: &[&str], what: &str) {
    for (value, needle) in values.iter().zip(needles(values)) {
        assert!(!find(haystack, &needle), "{value:?} found in plaintext in {what}");
    }
}

fn personal_data_is_sealed_at_rest_and_still_found(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(HOSPITAL, "330106");
    let imported_id = citizen_id((1982, 7, 19), 37);
    let ids = node.import(&[json!({
        "name": "加密测试甲",
        "birth_date": "1982-07-19",
        "id_number": imported_id,
        "phone": "13912345678",
        "address_region": "330106",
        "address_line": "文一西路九九九号",
    })]);
    let (server, log) = node.start_logging("info");
    let commission = node.token("commission", &[]);
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);

    // HL7 over MLLP, then over HTTP; a resend answers the stored (sealed) ACK.
    let mllp_id = citizen_id((1987, 2, 14), 53);
    let message = admission("ENC-1", "MRN-ENC-1", ("密文", "乙"), &mllp_id, "13711112222", "文三路八八八号");
    let mut mllp = Mllp::connect(server.mllp.as_deref().unwrap());
    let first = mllp.send(&message);
    assert_eq!(first.code(), "AA", "{}", first.text);
    assert_eq!(mllp.send(&message).text, first.text);
    let http_id = citizen_id((1987, 2, 14), 71);
    let http_message = admission("ENC-2", "MRN-ENC-2", ("秘密", "丁"), &http_id, "13522224444", "莫干山路七七七号");
    let answer = rhip_tests::Response::from(
        ureq::post(&format!("{}/api/v1/hl7v2", server.api))
            .set("Content-Type", "x-application/hl7-v2+er7")
            .set("Authorization", &format!("Bearer {hospital}"))
            .send_bytes(&http_message),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("MSA|AA"), "{}", answer.text);

    // A CDA document: its patient is linked, its bytes come back as sent.
    let document =
        crate::documents::render(&crate::documents::doc("C0001", "ENC-DOC-1", 88), crate::documents::Style::Plain);
    let cda_id = crate::documents::citizen_id(88);
    let stored = rhip_tests::Response::from(
        ureq::post(&format!("{}/api/v1/documents", server.api))
            .set("Content-Type", "application/xml")
            .set("Authorization", &format!("Bearer {hospital}"))
            .send_bytes(&document),
    );
    assert_eq!(stored.status, 201, "{}", stored.text);
    let document_id = stored.json()["id"].as_str().unwrap().to_string();
    let fetched = ureq::get(&format!("{}/api/v1/documents/{document_id}", server.api))
        .set("Authorization", &format!("Bearer {commission}"))
        .set("Accept", "application/xml")
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut fetched.into_reader(), &mut bytes).unwrap();
    assert_eq!(bytes, document);

    // A resident registers and logs in with the citizen ID.
    let output = node.cli(&["resident", "enrol-code"], &["--person", &ids[0], "--json"]);
    assert!(output.status.success(), "enrol-code: {}", String::from_utf8_lossy(&output.stderr));
    let code = serde_json::from_slice::<Value>(&output.stdout).unwrap()["code"].as_str().unwrap().to_string();
    let registered = server.post(
        "/auth/register",
        None,
        &json!({"id_number": imported_id, "enrolment_code": code, "password": PASSWORD}),
    );
    assert_eq!(registered.status, 201, "{}", registered.text);
    let login = server.post("/auth/login", None, &json!({"id_number": imported_id, "password": PASSWORD}));
    assert_eq!(login.status, 200, "{}", login.text);
    let resident = login.json()["access_token"].as_str().unwrap().to_string();
    let me = server.get("/api/v1/me", Some(&resident)).json();
    assert_eq!(me["id_number"], imported_id.as_str(), "a resident sees their own citizen ID: {me}");

    // Searches: by citizen ID, by name + birth date (whitespace ignored); a
    // name alone is refused naming the birth date.
    let search = |query: &str| {
        let answer = server.get(&format!("/api/v1/persons?{query}"), Some(&commission));
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        answer.items()
    };
    let by_id = search(&format!("id_number={imported_id}"));
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0]["name"], "加密测试甲");
    assert_eq!(by_id[0]["phone"], "13912345678");
    assert_ne!(by_id[0]["id_number"], imported_id.as_str(), "masked in searches as before");
    let by_name = search("name=加密%20测试甲&birth_date=1982-07-19");
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0]["empi_id"], ids[0].as_str());
    assert_eq!(search("name=加密测试甲&birth_date=1982-07-20").len(), 0);
    let mllp_person = search(&format!("id_number={mllp_id}"));
    assert_eq!(mllp_person.len(), 1);
    assert_eq!(mllp_person[0]["name"], "密文乙");
    assert_eq!(mllp_person[0]["contacts"][0]["name"], "联系人丙");
    assert_eq!(mllp_person[0]["contacts"][0]["phone"], "13600003333");
    assert_eq!(search("name=密文乙&birth_date=1987-02-14").len(), 1);
    assert_eq!(search(&format!("id_number={http_id}")).len(), 1);
    assert_eq!(search(&format!("id_number={cda_id}")).len(), 1);
    let name_only = server.get("/api/v1/persons?name=加密测试甲", Some(&commission));
    assert_eq!(name_only.status, 422, "{}", name_only.text);
    assert_eq!(name_only.json()["errors"][0]["field"], "birth_date");
    // The submissions list still shows the archived answers' problems (none here).
    assert_eq!(server.get("/api/v1/submissions", Some(&commission)).status, 200);

    let secrets = [
        imported_id.as_str(),
        mllp_id.as_str(),
        http_id.as_str(),
        cda_id.as_str(),
        "加密测试甲",
        "密文乙",
        "秘密丁",
        "测试患者",
        "联系人丙",
        "13912345678",
        "13711112222",
        "13522224444",
        "13600003333",
        "文一西路九九九号",
        "文三路八八八号",
        "莫干山路七七七号",
    ];
    // The audit log, through its API, holds none of them either.
    let auditor = node.token("auditor", &[]);
    let audit = server.get("/api/v1/audit?limit=1000", Some(&auditor));
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(audit.items().len() > 5);
    assert_absent(audit.text.as_bytes(), &secrets[..4], "the audit log");
    drop(mllp);
    assert!(server.terminate().success());
    assert_absent(log.text().as_bytes(), &secrets[..4], "the node's log");
    if let Some(bytes) = at_rest(backend, &node) {
        assert_absent(&bytes, &secrets, "the database at rest");
        // The blind index is there, so a lookup works without the value.
        assert!(find(&bytes, b"enc1:"), "no sealed values at rest");
    }
}

fn keys_status(node: &NodeDir) -> Value {
    let output = node.cli(&["keys", "status"], &["--json"]);
    assert!(output.status.success(), "keys status: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Values under `key_id` (and in plaintext) over every encrypted column.
fn values_under(status: &Value, key_id: &str) -> (u64, u64) {
    let columns = status["columns"].as_array().unwrap();
    let under = columns.iter().map(|c| c["by_key"][key_id].as_u64().unwrap_or(0)).sum();
    let plaintext = columns.iter().map(|c| c["plaintext"].as_u64().unwrap()).sum();
    (under, plaintext)
}

fn rotation_reencrypts_while_a_node_keeps_serving(backend: Backend) {
    let Some(node) = NodeDir::init("330106", backend) else { return };
    node.add_facility(HOSPITAL, "330106");
    let before_id = citizen_id((1990, 1, 2), 11);
    node.import(&[
        json!({"name": "轮换前", "birth_date": "1990-01-02", "id_number": before_id, "phone": "13000000001"}),
    ]);
    let server = node.start();
    let commission = node.token("commission", &[]);
    let mut mllp = Mllp::connect(server.mllp.as_deref().unwrap());
    let mllp_id = citizen_id((1987, 2, 14), 93);
    let ack = mllp.send(&admission("ROT-1", "MRN-ROT-1", ("轮换", "甲"), &mllp_id, "13711119999", "天目山路一号"));
    assert_eq!(ack.code(), "AA");
    let old_key = keys_status(&node)["current"].as_str().unwrap().to_string();
    assert!(values_under(&keys_status(&node), &old_key).0 > 5);

    let output = node.cli(&["keys", "rotate"], &["--batch", "2", "--json"]);
    assert!(output.status.success(), "rotate: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let new_key = report["key_id"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(report["previous_key_id"], old_key.as_str());
    assert!(report["rewritten"].as_u64().unwrap() > 5, "{report}");
    assert_eq!(report["remaining_under_other_keys"], 0, "{report}");
    let status = keys_status(&node);
    assert_eq!(status["current"], new_key.as_str());
    assert_eq!(values_under(&status, &old_key), (0, 0), "{status}");
    // On SQLite the old key id is gone from every stored value.
    if backend == Backend::Sqlite {
        let url = node.dir.path().join("data/rhip.db");
        let mut conn = diesel::SqliteConnection::establish(url.to_str().unwrap()).unwrap();
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let under_old: Count = diesel::sql_query(format!(
            "SELECT (SELECT count(*) FROM persons WHERE name LIKE 'enc1:{old_key}:%' OR phone LIKE 'enc1:{old_key}:%') \
             + (SELECT count(*) FROM change_log WHERE instr(payload, CAST('{old_key}' AS BLOB)) > 0) AS n"
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(under_old.n, 0);
        // Change payloads are sealed as bytes, not base64 text.
        let binary: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM change_log \
             WHERE substr(payload, 1, 8) = CAST('RHIPENC1' AS BLOB) AND instr(payload, CAST('{new_key}' AS BLOB)) > 0"
        ))
        .get_result(&mut conn)
        .unwrap();
        assert!(binary.n > 0);
    }

    // The node started before the rotation still reads everything, including
    // a person written afterwards by another process under the new key.
    let search = |query: &str| {
        let answer = server.get(&format!("/api/v1/persons?{query}"), Some(&commission));
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
        answer.items()
    };
    assert_eq!(search(&format!("id_number={before_id}"))[0]["name"], "轮换前");
    assert_eq!(search(&format!("id_number={mllp_id}"))[0]["name"], "轮换甲");
    let after_id = citizen_id((1991, 3, 4), 12);
    node.import(&[json!({"name": "轮换后", "birth_date": "1991-03-04", "id_number": after_id})]);
    assert_eq!(search(&format!("id_number={after_id}"))[0]["name"], "轮换后");
    assert_eq!(search("name=轮换后&birth_date=1991-03-04").len(), 1);
    // It writes under the new key soon after, and a resumed pass finds nothing left.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let ack = mllp.send(&admission(
        "ROT-2",
        "MRN-ROT-2",
        ("轮换", "乙"),
        &citizen_id((1987, 2, 14), 95),
        "13711118888",
        "天目山路二号",
    ));
    assert_eq!(ack.code(), "AA");
    let output = node.cli(&["keys", "rotate"], &["--resume", "--json"]);
    assert!(output.status.success(), "resume: {}", String::from_utf8_lossy(&output.stderr));
    let resumed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(resumed["key_id"], new_key.as_str());
    assert_eq!(resumed["remaining_under_other_keys"], 0, "{resumed}");

    // The old key can go now; the current one cannot.
    let refused = node.cli(&["keys", "retire"], &["--key-id", &new_key]);
    assert!(!refused.status.success());
    let retired = node.cli(&["keys", "retire"], &["--key-id", &old_key]);
    assert!(retired.status.success(), "retire: {}", String::from_utf8_lossy(&retired.stderr));
    assert_eq!(keys_status(&node)["keys"], json!([new_key]));
    assert_eq!(search(&format!("id_number={before_id}"))[0]["name"], "轮换前");
    drop(mllp);
    assert!(server.terminate().success());
    // A fresh start reads everything with the one key left.
    let server = node.start();
    assert_eq!(
        server.get(&format!("/api/v1/persons?id_number={mllp_id}"), Some(&commission)).items()[0]["name"],
        "轮换甲"
    );
}

struct Opened {
    store: rhip_store::Store,
    url: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

fn open(backend: Backend) -> Option<Opened> {
    let db = TestDb::new(backend)?;
    let dir = tempfile::tempdir().unwrap();
    let url = db.url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.path().join("rhip.db").display()));
    let store =
        rhip_store::Store::open(&url, RegionCode::parse("330106").unwrap(), &rhip_tests::store_options()).unwrap();
    store.migrate().unwrap();
    store.write(|tx| tx.bind_node_region()).unwrap();
    Some(Opened { store, url, _db: db, _dir: dir })
}

/// Runs SQL straight on the database, around the store.
fn execute(opened: &Opened, backend: Backend, sql: &str) -> usize {
    match backend {
        Backend::Postgres => diesel::sql_query(sql).execute(&mut diesel::PgConnection::establish(&opened.url).unwrap()),
        Backend::Sqlite => diesel::sql_query(sql)
            .execute(&mut diesel::SqliteConnection::establish(opened.url.trim_start_matches("sqlite://")).unwrap()),
    }
    .unwrap()
}

fn new_person(name: &str, sequence: u16) -> rhip_store::NewPerson {
    let region = RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1979, 11, 30).unwrap();
    let id = CitizenId::generate(region, birth, sequence);
    rhip_store::NewPerson {
        demographics: PersonDemographics {
            name: name.into(),
            sex: id.sex(),
            birth_date: Some(birth),
            id_number: Some(id),
            ethnicity: None,
            marital_status: None,
            phone: Some("13899990000".into()),
            address_region: Some(region),
            address_line: Some("古墩路一百号".into()),
            identifiers: Vec::new(),
        },
        home_region: region,
        non_resident: false,
    }
}

/// Rows written before the migration (plaintext, no blind index) are sealed
/// and indexed by the first start's pass, then found by citizen ID and name.
fn plaintext_from_before_is_sealed_once(backend: Backend) {
    let Some(opened) = open(backend) else { return };
    let store = &opened.store;
    let birth = chrono::NaiveDate::from_ymd_opt(1979, 11, 30).unwrap();
    let id = CitizenId::generate(RegionCode::parse("330106").unwrap(), birth, 41);
    let person_id = rhip_core::new_id().to_string();
    execute(
        &opened,
        backend,
        &format!(
            "INSERT INTO persons (id, home_region, name, sex, birth_date, id_number, phone, address_line, non_resident, \
             status, origin_region, hlc, created_at, updated_at) VALUES ('{person_id}', '330106', '旧数据', '{}', \
             '1979-11-30', '{}', '13811112222', '旧地址一号', false, 'active', '330106', '0', \
             '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            id.sex().code(),
            id.as_str()
        ),
    );
    // The migration left its marker: the first start seals what is plaintext.
    let sealed = store.encrypt_plaintext_once(1).unwrap();
    assert_eq!(sealed, 4, "name, citizen ID, phone and address line");
    assert_eq!(store.encrypt_plaintext_once(1).unwrap(), 0, "once");
    // No copy of the old plaintext is left in the SQLite files either.
    if backend == Backend::Sqlite {
        let path = opened.url.trim_start_matches("sqlite://").to_string();
        for file in [path.clone(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            for plain in ["旧数据", "13811112222", "旧地址一号", id.as_str()] {
                let needle = plain.as_bytes();
                assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{plain} left in {file}");
            }
        }
    }
    let usage = store.key_usage().unwrap();
    assert!(usage.iter().all(|u| u.plaintext == 0), "{usage:?}");
    let found = store
        .read(|tx| {
            tx.find_persons(
                &rhip_store::Scope::Node,
                &rhip_store::PersonQuery { id_number: Some(id.as_str().into()), limit: 10, ..Default::default() },
            )
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].phone.as_deref()), ("旧数据", Some("13811112222")));
    assert_eq!(found[0].address_line.as_deref(), Some("旧地址一号"));
    let by_name = store
        .read(|tx| {
            tx.find_persons(
                &rhip_store::Scope::Node,
                &rhip_store::PersonQuery {
                    name: Some("旧数据".into()),
                    birth_date: Some(birth),
                    limit: 10,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(by_name.len(), 1);
    // The citizen ID's blind index holds uniqueness now.
    let mut twin = new_person("另一人", 41);
    twin.demographics.id_number = Some(id);
    let refused = store.write(|tx| tx.insert_person(&twin)).unwrap_err();
    assert!(matches!(refused, rhip_store::StoreError::Conflict(_)), "{refused}");
}

/// A sealed value changed by one bit, or moved into another column, does not open.
fn tampered_or_moved_values_are_refused(backend: Backend) {
    let Some(opened) = open(backend) else { return };
    let store = &opened.store;
    let person = store.write(|tx| tx.insert_person(&new_person("篡改测试", 7))).unwrap();
    let read = || store.read(|tx| tx.get_person(&rhip_store::Scope::Node, &person.id));
    assert!(matches!(read().unwrap(), rhip_store::Access::Granted(p) if p.name == "篡改测试"));
    // Moved: the phone's ciphertext in the address column.
    execute(&opened, backend, &format!("UPDATE persons SET address_line = phone WHERE id = '{}'", person.id));
    let Err(moved) = read() else { panic!("a moved value must not open") };
    let moved = moved.to_string();
    assert!(moved.contains("persons.address_line") && moved.contains("authenticate"), "{moved}");
    // Tampered: one base64 character of the name changed.
    execute(&opened, backend, &format!("UPDATE persons SET address_line = NULL WHERE id = '{}'", person.id));
    assert!(read().is_ok());
    let flip = "substr(name, 1, length(name) - 6) || CASE WHEN substr(name, length(name) - 5, 1) = 'A' THEN 'B' \
                ELSE 'A' END || substr(name, length(name) - 4)";
    execute(&opened, backend, &format!("UPDATE persons SET name = {flip} WHERE id = '{}'", person.id));
    let Err(tampered) = read() else { panic!("a tampered value must not open") };
    let tampered = tampered.to_string();
    assert!(tampered.contains("persons.name"), "{tampered}");
}
