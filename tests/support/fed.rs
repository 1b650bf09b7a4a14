//! A federation of real `rhip serve` processes on loopback: a topology with
//! free ports, `rhip federation init`, per-node databases, and a client that
//! speaks mutual TLS to a node's federation listener as one of its peers.

use crate::{rhip_ok, start_config, Backend, Node, TestDb};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A federation's folders (not yet running).
pub struct Federation {
    pub dir: tempfile::TempDir,
    pub out: PathBuf,
    /// (region, federation address) per node.
    pub nodes: Vec<(String, String)>,
    dbs: Vec<TestDb>,
}

/// A free loopback port, held open by `held` until the topology is written
/// so that no two nodes get the same one. Chosen below Linux's ephemeral
/// range (32768+): a node restarted by a test gets its fixed port back,
/// which another test's port-0 listener or outgoing connection could
/// otherwise have taken in the meantime.
pub fn free_port(held: &mut Vec<TcpListener>) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919).wrapping_add(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()),
    );
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(step.wrapping_mul(7)) % 12_000) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
            return port;
        }
    }
}

impl Federation {
    /// Writes a topology of `(region, parent)` with free ports, runs
    /// `rhip federation init`, points every node at its own database on
    /// `backend`, and makes pushes and retries quick.
    pub fn init(spec: &[(&str, Option<&str>)], backend: Backend) -> Option<Federation> {
        let dir = tempfile::tempdir().unwrap();
        let mut topology = String::from("[federation]\nname = \"test federation\"\n");
        let mut nodes = Vec::new();
        let mut held = Vec::new();
        for (region, parent) in spec {
            let federation = format!("127.0.0.1:{}", free_port(&mut held));
            topology.push_str(&format!(
                "\n[[node]]\nregion = \"{region}\"\n{}api = \"127.0.0.1:{}\"\nmllp = \"127.0.0.1:{}\"\nfederation = \"{federation}\"\n",
                parent.map(|p| format!("parent = \"{p}\"\n")).unwrap_or_default(),
                free_port(&mut held),
                free_port(&mut held),
            ));
            nodes.push((region.to_string(), federation));
        }
        drop(held);
        let file = dir.path().join("topology.toml");
        std::fs::write(&file, topology).unwrap();
        let out = dir.path().join("fed");
        rhip_ok(&["federation", "init", "--topology", file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let mut dbs = Vec::new();
        for (region, _) in &nodes {
            let db = TestDb::new(backend)?;
            let config = out.join(region).join("node.toml");
            let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
            let api = doc["api"].as_table_mut().unwrap();
            api.insert("listen".into(), "127.0.0.1:0".into());
            api.insert("workers".into(), 1.into());
            api.insert("shutdown_timeout_secs".into(), 5.into());
            doc["mllp"].as_table_mut().unwrap().insert("listen".into(), "127.0.0.1:0".into());
            let database = doc["database"].as_table_mut().unwrap();
            database.insert("pool_size".into(), 4.into());
            if let Some(url) = &db.url {
                database.insert("url".into(), url.clone().into());
            }
            let federation = doc["federation"].as_table_mut().unwrap();
            federation.insert("retry_base_ms".into(), 100.into());
            federation.insert("retry_max_ms".into(), 1000.into());
            std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
            dbs.push(db);
        }
        Some(Federation { dir, out, nodes, dbs })
    }

    pub fn config(&self, region: &str) -> PathBuf {
        self.out.join(region).join("node.toml")
    }

    pub fn folder(&self, region: &str) -> PathBuf {
        self.out.join(region)
    }

    pub fn start(&self, region: &str) -> Node {
        start_config(&self.config(region), region)
    }

    /// The federation listener address of a node.
    pub fn address(&self, region: &str) -> &str {
        &self.nodes.iter().find(|(r, _)| r == region).unwrap().1
    }

    /// `rhip token` at a node.
    pub fn token(&self, region: &str, role: &str) -> String {
        self.token_with(region, role, &[])
    }

    /// `rhip token` at a node with extra arguments (`--facility F`, ...).
    pub fn token_with(&self, region: &str, role: &str, extra: &[&str]) -> String {
        let config = self.config(region);
        let mut args = vec!["token", "--config", config.to_str().unwrap(), "--role", role];
        args.extend_from_slice(extra);
        rhip_ok(&args).trim().to_string()
    }

    /// Registers a facility at a node (before it starts).
    pub fn add_facility(&self, region: &str, code: &str) {
        let config = self.config(region);
        rhip_ok(&[
            "facility",
            "add",
            "--config",
            config.to_str().unwrap(),
            "--code",
            code,
            "--name",
            "测试医院",
            "--region",
            region,
        ]);
    }

    /// Drops the PostgreSQL databases now.
    pub fn drop_databases(&self) {
        for db in &self.dbs {
            db.drop_database();
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, or panics naming `what`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A mutual-TLS client speaking to a node's federation listener with the
/// certificate in `tls_dir` (`node.crt`, `node.key`, `ca.crt`).
pub fn peer_agent(tls_dir: &Path) -> ureq::Agent {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_dir.join("node.crt")).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(tls_dir.join("node.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(tls_dir.join("ca.crt")).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(Duration::from_secs(30)).build()
}

/// GET a JSON document with a bearer token.
pub fn get_json(node: &Node, path: &str, token: &str) -> Value {
    let answer = node.get(path, Some(token));
    assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    answer.json()
}
