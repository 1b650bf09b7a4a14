//! Test support: run the real `rhip` binary, start nodes on random ports,
//! give each PostgreSQL test its own database, and speak HTTP to the nodes.
//!
//! PostgreSQL is found at `RHIP_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is absent the
//! PostgreSQL half of a test prints that it skipped, unless `CI=true`, where
//! a missing PostgreSQL fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod fed;
pub mod proxy;

use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Path of the `rhip` binary built by `cargo test --workspace`.
pub fn rhip_bin() -> PathBuf {
    if let Ok(path) = std::env::var("RHIP_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("rhip");
    assert!(bin.exists(), "{} not found: build it first (cargo build -p rhip) or set RHIP_BIN", bin.display());
    bin
}

/// Runs `rhip ARGS` to completion.
pub fn rhip(args: &[&str]) -> Output {
    Command::new(rhip_bin()).args(args).env("RUST_LOG", "warn").output().unwrap()
}

/// Runs `rhip ARGS`, asserting success, and returns stdout.
pub fn rhip_ok(args: &[&str]) -> String {
    let output = rhip(args);
    assert!(output.status.success(), "rhip {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts the command failed with `code` and one stderr line containing `needle`.
pub fn assert_fails(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "error should be one line: {stderr}");
}

fn admin_url() -> String {
    std::env::var("RHIP_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of its own for one test; dropped with the value.
pub struct TestDb {
    pub url: Option<String>,
    name: Option<String>,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is absent outside CI.
    pub fn new(backend: Backend) -> Option<TestDb> {
        if backend == Backend::Sqlite {
            return Some(TestDb { url: None, name: None });
        }
        let admin = admin_url();
        let mut conn = match PgConnection::establish(&admin) {
            Ok(conn) => conn,
            Err(error) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true but PostgreSQL at {admin} is unreachable: {error}");
                }
                eprintln!("SKIPPED (PostgreSQL half): {admin} unreachable: {error}");
                return None;
            }
        };
        let name = format!("rhip_test_{}", uuid::Uuid::now_v7().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_string();
        Some(TestDb { url: Some(format!("{base}/{name}")), name: Some(name) })
    }
}

impl TestDb {
    /// Drops the PostgreSQL database now, cutting off its connections.
    pub fn drop_database(&self) {
        if let Some(name) = &self.name {
            if let Ok(mut conn) = PgConnection::establish(&admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.drop_database();
    }
}

/// An initialised node folder (config, key, data), not yet running.
pub struct NodeDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub region: String,
    pub db: TestDb,
}

impl NodeDir {
    /// `rhip init` for `region` on `backend`, with the API on port 0 and one worker.
    pub fn init(region: &str, backend: Backend) -> Option<NodeDir> {
        let db = TestDb::new(backend)?;
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap().to_string();
        let mut args = vec!["init", "--region", region, "--dir", &dir_arg, "--json"];
        if let Some(url) = &db.url {
            args.extend(["--db", url]);
        }
        let summary: Value = serde_json::from_str(&rhip_ok(&args)).unwrap();
        let config = PathBuf::from(summary["config"].as_str().unwrap());
        let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        let api = doc["api"].as_table_mut().unwrap();
        api.insert("listen".into(), "127.0.0.1:0".into());
        api.insert("workers".into(), 1.into());
        api.insert("shutdown_timeout_secs".into(), 5.into());
        if let Some(mllp) = doc.get_mut("mllp").and_then(|m| m.as_table_mut()) {
            mllp.insert("listen".into(), "127.0.0.1:0".into());
        }
        doc["database"].as_table_mut().unwrap().insert("pool_size".into(), 4.into());
        std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
        Some(NodeDir { dir, config, region: region.into(), db })
    }

    pub fn config_arg(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// Runs `rhip SUBCOMMAND --config THIS ARGS`.
    pub fn cli(&self, subcommand: &[&str], args: &[&str]) -> Output {
        let mut all: Vec<&str> = subcommand.to_vec();
        all.extend(["--config", self.config_arg()]);
        all.extend(args);
        rhip(&all)
    }

    /// Mints a token with `rhip token`.
    pub fn token(&self, role: &str, args: &[&str]) -> String {
        let output = self.cli(&["token"], &[&["--role", role], args].concat());
        assert!(output.status.success(), "token: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Registers a facility with `rhip facility add`.
    pub fn add_facility(&self, code: &str, region: &str) {
        let output = self
            .cli(&["facility", "add"], &["--code", code, "--name", &format!("测试医院 {code}"), "--region", region]);
        assert!(output.status.success(), "facility add: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Imports persons (JSON lines) and returns their EMPI ids in order.
    pub fn import(&self, persons: &[Value]) -> Vec<String> {
        let file = self.dir.path().join(format!("persons-{}.jsonl", uuid::Uuid::now_v7().simple()));
        let text: Vec<String> = persons.iter().map(|p| p.to_string()).collect();
        std::fs::write(&file, text.join("\n")).unwrap();
        let output = self.cli(&["person", "import"], &["--file", file.to_str().unwrap(), "--json"]);
        assert!(output.status.success(), "import: {}", String::from_utf8_lossy(&output.stderr));
        let body: Value = serde_json::from_slice(&output.stdout).unwrap();
        body["items"].as_array().unwrap().iter().map(|p| p["empi_id"].as_str().unwrap().to_string()).collect()
    }

    /// Starts `rhip serve` and waits for its ready line.
    pub fn start(&self) -> Node {
        start_config(&self.config, &self.region)
    }

    /// Starts `rhip serve` with `RUST_LOG=rust_log` and its log captured.
    pub fn start_logging(&self, rust_log: &str) -> (Node, CapturedLog) {
        start_config_logging(&self.config, &self.region, rust_log)
    }

    /// Edits `node.toml` as a TOML table (for settings `rhip init` leaves at
    /// their defaults).
    pub fn edit_config(&self, edit: impl FnOnce(&mut toml::Table)) {
        let mut doc: toml::Table = std::fs::read_to_string(&self.config).unwrap().parse().unwrap();
        edit(&mut doc);
        std::fs::write(&self.config, toml::to_string(&doc).unwrap()).unwrap();
    }
}

/// Starts `rhip serve --config CONFIG` and waits for its ready line; `label`
/// names the node in a failure.
pub fn start_config(config: &Path, label: &str) -> Node {
    spawn_node(config, label, None).0
}

/// What a node wrote to stderr (its log), collected as it runs.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// The log so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Starts `rhip serve --config CONFIG` with `RUST_LOG=rust_log`, its stderr
/// captured, for tests of what the node logs.
pub fn start_config_logging(config: &Path, label: &str, rust_log: &str) -> (Node, CapturedLog) {
    let (node, log) = spawn_node(config, label, Some(rust_log));
    (node, log.unwrap_or_default())
}

fn spawn_node(config: &Path, label: &str, rust_log: Option<&str>) -> (Node, Option<CapturedLog>) {
    let level = rust_log.map(str::to_string).or_else(|| std::env::var("TEST_LOG").ok());
    let stderr = match (rust_log, &level) {
        (Some(_), _) => Stdio::piped(),
        (None, Some(_)) => Stdio::inherit(),
        (None, None) => Stdio::null(),
    };
    let mut child = Command::new(rhip_bin())
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", level.unwrap_or_else(|| "error".into()))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let captured = child.stderr.take().map(|mut stderr| {
        let log = CapturedLog::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(count @ 1..) = std::io::Read::read(&mut stderr, &mut buffer) {
                sink.0.lock().unwrap().extend_from_slice(&buffer[..count]);
            }
        });
        log
    });
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let line = receiver.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("node {label} did not report ready")
    });
    let api = word_after(&line, "api ").unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    let mllp = word_after(&line, "mllp ");
    (Node { child, api, mllp }, captured)
}

fn word_after(line: &str, marker: &str) -> Option<String> {
    line.split(marker).nth(1).and_then(|rest| rest.split_whitespace().next()).map(str::to_string)
}

/// A running node process; killed when dropped.
pub struct Node {
    pub child: Child,
    pub api: String,
    /// `HOST:PORT` of the MLLP listener.
    pub mllp: Option<String>,
}

impl Node {
    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "node did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = ureq::get(&format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        Response::from(request.call())
    }

    /// A GET with extra headers.
    pub fn get_with(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Response {
        let mut request = ureq::get(&format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.set(name, value);
        }
        Response::from(request.call())
    }

    pub fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = ureq::put(&format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        Response::from(request.send_json(body.clone()))
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = ureq::post(&format!("{}{path}", self.api));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        Response::from(request.send_json(body.clone()))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer with its body read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub request_id: Option<String>,
    /// How many items consent withheld (`X-RHIP-Consent-Withheld`).
    pub withheld: Option<usize>,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Items of a list answer.
    pub fn items(&self) -> Vec<Value> {
        self.json()["items"].as_array().cloned().unwrap_or_else(|| panic!("no items: {}", self.text))
    }
}

impl From<Result<ureq::Response, ureq::Error>> for Response {
    fn from(result: Result<ureq::Response, ureq::Error>) -> Response {
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("HTTP transport error: {error}"),
        };
        Response {
            status: response.status(),
            content_type: response.content_type().to_string(),
            request_id: response.header("x-request-id").map(str::to_string),
            withheld: response.header("x-rhip-consent-withheld").and_then(|v| v.parse().ok()),
            text: response.into_string().unwrap(),
        }
    }
}

/// A folder for `rhip demo` and a topology with the demo's eight regions on
/// free loopback ports, so the demo never takes the fixed ports of
/// `federation/demo.toml` (26000-26072) that other tests and other runs use.
pub struct Demo {
    pub dir: tempfile::TempDir,
    /// The `--dir` of the demo (`dir/fed`).
    pub folder: PathBuf,
    /// The `--topology` file.
    pub topology: PathBuf,
}

impl Demo {
    /// (region, parent) of the demo federation.
    pub const REGIONS: [(&'static str, Option<&'static str>); 8] = [
        ("000000", None),
        ("330000", Some("000000")),
        ("330100", Some("330000")),
        ("330106", Some("330100")),
        ("330108", Some("330100")),
        ("440000", Some("000000")),
        ("440100", Some("440000")),
        ("440106", Some("440100")),
    ];

    /// A fresh folder and topology (the demo runs on SQLite only).
    pub fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Vec::new();
        let ports: Vec<u16> = (0..Self::REGIONS.len() * 3).map(|_| fed::free_port(&mut held)).collect();
        let mut text = String::from("[federation]\nname = \"RHIP demo federation (test)\"\n");
        for (i, (region, parent)) in Self::REGIONS.iter().enumerate() {
            text.push_str(&format!(
                "\n[[node]]\nregion = \"{region}\"\n{}api = \"127.0.0.1:{}\"\nmllp = \"127.0.0.1:{}\"\nfederation = \"127.0.0.1:{}\"\n",
                parent.map(|p| format!("parent = \"{p}\"\n")).unwrap_or_default(),
                ports[3 * i],
                ports[3 * i + 1],
                ports[3 * i + 2],
            ));
        }
        drop(held);
        let topology = dir.path().join("topology.toml");
        std::fs::write(&topology, text).unwrap();
        Demo { folder: dir.path().join("fed"), topology, dir }
    }

    /// Runs `rhip demo --once` on this folder and topology, plus `extra` arguments.
    pub fn run_once_with(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "demo",
            "--once",
            "--dir",
            self.folder.to_str().unwrap(),
            "--topology",
            self.topology.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        rhip(&args)
    }

    /// Runs `rhip demo --once` on this folder and topology.
    pub fn run_once(&self) -> Output {
        self.run_once_with(&[])
    }
}

impl Default for Demo {
    fn default() -> Demo {
        Demo::new()
    }
}

/// A synthetic person for imports, with a valid citizen ID born in `region`.
pub fn person(name: &str, region: &str, birth: (i32, u32, u32), sequence: u16) -> Value {
    let region_code = rhip_core::RegionCode::parse(region).unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2).unwrap();
    let id = rhip_core::CitizenId::generate(region_code, birth, sequence);
    serde_json::json!({
        "name": name,
        "id_number": id.as_str(),
        "address_region": region,
        "phone": "13800000000",
    })
}

/// The node's signing key (for tests that must craft tokens the CLI refuses to mint).
pub fn node_key(dir: &Path) -> rhip_auth::NodeKey {
    rhip_auth::NodeKey::from_pem(&std::fs::read_to_string(dir.join("keys/signing.pem")).unwrap()).unwrap()
}

/// Declares `name` as two tests, `sqlite::name` and `postgres::name`, calling `body(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:path;)*) => {
        mod sqlite {
            $( #[test] fn $name() { $body($crate::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { $body($crate::Backend::Postgres) } )*
        }
    };
}

/// An MLLP connection to a node, for tests that speak HL7 v2 as a hospital would.
pub struct Mllp {
    stream: std::net::TcpStream,
    deframer: rhip_hl7::mllp::Deframer,
}

impl Mllp {
    pub fn connect(address: &str) -> Mllp {
        let stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Mllp { stream, deframer: rhip_hl7::mllp::Deframer::new(16 << 20) }
    }

    /// Sends raw bytes (framing included or not) without waiting.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one message framed and returns its ACK as text.
    pub fn send(&mut self, message: &[u8]) -> Ack {
        self.write_raw(&rhip_hl7::mllp::frame(message));
        self.read_ack().expect("an ACK")
    }

    /// Reads the next ACK; `None` when the node closed the connection.
    pub fn read_ack(&mut self) -> Option<Ack> {
        use std::io::Read;
        let mut buffer = [0u8; 8192];
        loop {
            let count = match self.stream.read(&mut buffer) {
                Ok(0) | Err(_) => return None,
                Ok(count) => count,
            };
            if let Some(rhip_hl7::mllp::FrameEvent::Message(ack)) =
                self.deframer.push(&buffer[..count]).into_iter().next()
            {
                return Some(Ack::parse(&ack));
            }
        }
    }
}

/// An ACK, read back.
#[derive(Clone, Debug)]
pub struct Ack {
    pub bytes: Vec<u8>,
    pub text: String,
}

impl Ack {
    pub fn parse(bytes: &[u8]) -> Ack {
        Ack { bytes: bytes.to_vec(), text: String::from_utf8_lossy(bytes).into_owned() }
    }

    /// Fields of each `id` segment, split by the ACK's own field separator.
    fn segment(&self, id: &str) -> Vec<Vec<String>> {
        let separator = self.text.chars().nth(3).unwrap_or('|');
        self.text
            .split('\r')
            .filter(|s| s.starts_with(id))
            .map(|s| s.split(separator).map(str::to_string).collect())
            .collect()
    }

    /// MSA-1: AA, AE or AR.
    pub fn code(&self) -> String {
        self.segment("MSA").first().and_then(|f| f.get(1).cloned()).unwrap_or_default()
    }

    /// MSA-2: the control id it answers.
    pub fn control_id(&self) -> String {
        self.segment("MSA").first().and_then(|f| f.get(2).cloned()).unwrap_or_default()
    }

    /// ERR-8 texts (what a person reads).
    pub fn errors_text(&self) -> Vec<String> {
        self.segment("ERR").iter().map(|f| f.get(8).cloned().unwrap_or_default()).collect()
    }

    /// ERR-2 locations and ERR-3 codes, e.g. ("PID^1^3^1^1", "102").
    pub fn errors(&self) -> Vec<(String, String)> {
        self.segment("ERR")
            .iter()
            .map(|f| {
                let location = f.get(2).cloned().unwrap_or_default();
                let code = f.get(3).and_then(|c| c.split('^').next()).unwrap_or_default().to_string();
                (location, code)
            })
            .collect()
    }
}

/// Data keys shared by every store a test process opens directly (so two
/// stores over one database read each other's sealed values).
pub fn test_cipher() -> std::sync::Arc<rhip_auth::DataKeyRing> {
    static KEYS: std::sync::OnceLock<std::sync::Arc<rhip_auth::DataKeyRing>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| std::sync::Arc::new(rhip_auth::DataKeyRing::fixed(rhip_auth::DataKeys::generate().unwrap().0)))
        .clone()
}

/// Store options for tests that open a store directly: default pool, the
/// test data keys.
pub fn store_options() -> rhip_store::StoreOptions {
    rhip_store::StoreOptions::with_cipher(test_cipher())
}
