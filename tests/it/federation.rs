//! `rhip federation init`: a topology turned into node folders whose
//! certificates chain to the federation CA, whose trust folders hold exactly
//! the parent's and children's keys, and whose nodes start.

use rhip_tests::{assert_fails, rhip, rhip_ok, start_config};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn demo_topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../federation/demo.toml")
}

/// (region, parent) of the demo federation.
const DEMO: [(&str, Option<&str>); 8] = [
    ("000000", None),
    ("330000", Some("000000")),
    ("330100", Some("330000")),
    ("330106", Some("330100")),
    ("330108", Some("330100")),
    ("440000", Some("000000")),
    ("440100", Some("440000")),
    ("440106", Some("440100")),
];

fn init_demo(out: &Path) -> Value {
    let topology = demo_topology();
    let text = rhip_ok(&[
        "federation",
        "init",
        "--topology",
        topology.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    serde_json::from_str(&text).unwrap()
}

fn cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn federation_init_writes_every_node_with_chained_certificates_and_peer_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fed");
    let summary = init_demo(&out);
    let nodes = summary["nodes"].as_array().unwrap();
    let listed: BTreeSet<&str> = nodes.iter().map(|n| n["region"].as_str().unwrap()).collect();
    assert_eq!(listed, DEMO.iter().map(|(r, _)| *r).collect());
    for node in nodes {
        assert!(node["api"].as_str().unwrap().starts_with("http://127.0.0.1:"));
        assert!(node["mllp"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert!(node["federation"].as_str().unwrap().starts_with("127.0.0.1:"));
        assert_eq!(node["key_id"].as_str().unwrap().len(), 16);
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert(&out.join("ca/ca.crt"))).unwrap();
    let roots = Arc::new(roots);
    let clients =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build().unwrap();
    let servers = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider).build().unwrap();
    let loopback = ServerName::try_from("127.0.0.1").unwrap();

    for (region, parent) in DEMO {
        let folder = out.join(region);
        for file in
            ["node.toml", "keys/signing.pem", "keys/data-keys.json", "tls/node.crt", "tls/node.key", "tls/ca.crt"]
        {
            assert!(folder.join(file).is_file(), "{region}: {file} missing");
        }
        assert!(folder.join("data").is_dir());
        assert!(!folder.join("tls/ca.key").exists() && !folder.join("ca.key").exists());
        #[cfg(unix)]
        for private in ["keys/signing.pem", "keys/data-keys.json", "tls/node.key"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.join(private)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{region}: {private}");
        }

        // node.toml: region, parent API URL, federation section; `rhip serve` accepts it (started below).
        let config: toml::Table = std::fs::read_to_string(folder.join("node.toml")).unwrap().parse().unwrap();
        assert_eq!(config["node"]["region"].as_str(), Some(region));
        match parent {
            Some(p) => {
                let parent_api = nodes.iter().find(|n| n["region"] == p).unwrap()["api"].as_str().unwrap();
                assert_eq!(config["node"]["parent"].as_str(), Some(parent_api), "{region}");
            }
            None => assert!(config["node"].get("parent").is_none()),
        }
        assert_eq!(config["federation"]["trust_dir"].as_str(), Some("trust"));

        // The certificate chains to the CA, as a client and as a server on 127.0.0.1, and names the region.
        let node_cert = cert(&folder.join("tls/node.crt"));
        clients.verify_client_cert(&node_cert, &[], UnixTime::now()).unwrap();
        servers.verify_server_cert(&node_cert, &[], &loopback, &[], UnixTime::now()).unwrap();
        assert!(contains(&node_cert, &format!("urn:rhip:region:{region}")), "{region}: SAN URI");
        assert!(contains(&node_cert, region), "{region}: CN");
        assert_eq!(std::fs::read(folder.join("tls/ca.crt")).unwrap(), std::fs::read(out.join("ca/ca.crt")).unwrap());

        // trust/: exactly the parent and the children, each the peer's real public key.
        let mut expected: BTreeSet<String> = parent.iter().map(|p| format!("{p}.pub.pem")).collect();
        expected.extend(DEMO.iter().filter(|(_, p)| *p == Some(region)).map(|(c, _)| format!("{c}.pub.pem")));
        let found: BTreeSet<String> = std::fs::read_dir(folder.join("trust"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(found, expected, "{region}: trust/");
        for file in &found {
            let peer = file.trim_end_matches(".pub.pem");
            let key = rhip_tests::node_key(&out.join(peer));
            let pem = std::fs::read_to_string(folder.join("trust").join(file)).unwrap();
            assert_eq!(pem, key.public_key_pem(), "{region} trusts {peer}");
        }
    }

    // A certificate from another CA is refused.
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&stranger_key).unwrap();
    assert!(clients.verify_client_cert(stranger.der(), &[], UnixTime::now()).is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("ca/ca.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn generated_nodes_start_and_answer_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fed");
    let summary = init_demo(&out);
    for region in ["330106", "330100"] {
        let node = start_config(&out.join(region).join("node.toml"), region);
        let listed = summary["nodes"].as_array().unwrap().iter().find(|n| n["region"] == region).unwrap();
        assert_eq!(node.api, listed["api"].as_str().unwrap());
        let health = node.get("/healthz", None);
        assert_eq!(health.status, 200, "{region}: {}", health.text);
        assert!(health.text.contains(region), "{region}: {}", health.text);
        node.terminate();
    }
}

#[test]
fn federation_init_refuses_a_non_empty_out_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let topology = demo_topology();
    let output =
        rhip(&["federation", "init", "--topology", topology.to_str().unwrap(), "--out", dir.path().to_str().unwrap()]);
    assert_fails(&output, 2, "is not empty");
    assert!(!dir.path().join("ca").exists());
}

#[test]
fn bad_topologies_exit_2_naming_the_node_and_field() {
    let demo = std::fs::read_to_string(demo_topology()).unwrap();
    let binjiang = demo.find("region = \"330108\"").unwrap();
    let (head, tail) = demo.split_at(binjiang);
    let cases = [
        // Binjiang's parent (Ningbo) is not in the topology.
        (
            format!("{head}{}", tail.replacen("parent = \"330100\"", "parent = \"330200\"", 1)),
            "node 330108: parent: 330200 is not a node",
        ),
        // Tianhe under Hangzhou: not an ancestor region.
        (demo.replace("parent = \"440100\"", "parent = \"330100\""), "node 440106: parent: 330100 is not an ancestor"),
        // Binjiang written as a second Xihu.
        (demo.replace("region = \"330108\"", "region = \"330106\""), "node 330106: region: 330106 appears twice"),
        // Tianhe's API on Guangzhou's MLLP port.
        (
            demo.replace("127.0.0.1:26070", "127.0.0.1:26061"),
            "node 440106: api: port 26061 is already used by node 440100",
        ),
    ];
    for (text, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let topology = dir.path().join("bad.toml");
        std::fs::write(&topology, text).unwrap();
        let out = dir.path().join("out");
        let output =
            rhip(&["federation", "init", "--topology", topology.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_fails(&output, 2, needle);
        assert!(!out.exists(), "nothing is written for a bad topology");
    }
}
