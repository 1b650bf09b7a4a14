//! `rhip federation init`: a federation CA and, for every node of a topology,
//! a folder with what `rhip init` writes plus its TLS certificate and the
//! public signing keys of its parent and children.

use super::init::{write_node, write_private, NodeSpec};
use crate::cli::FederationInitArgs;
use crate::topology::{Topology, TopologyNode};
use crate::Failure;
use anyhow::Context;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rhip_server::settings::{FederationSettings, PeerSettings};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What `federation init` made (the `--json` summary).
#[derive(Debug, serde::Serialize)]
pub struct FederationSummary {
    /// Name of the federation.
    pub federation: String,
    /// The output folder.
    pub out: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
    /// Last day the certificates are valid (UTC, ISO date).
    pub not_after: String,
    /// One entry per node, in topology order.
    pub nodes: Vec<NodeSummary>,
}

/// One node's folder and addresses.
#[derive(Debug, serde::Serialize)]
pub struct NodeSummary {
    /// Region code.
    pub region: String,
    /// Tier name.
    pub tier: String,
    /// Parent region, none for the root.
    pub parent: Option<String>,
    /// The node's folder.
    pub folder: PathBuf,
    /// Its node.toml.
    pub config: PathBuf,
    /// API base URL.
    pub api: String,
    /// MLLP address.
    pub mllp: String,
    /// Federation (mutual TLS) address.
    pub federation: String,
    /// Key id of its Ed25519 signing key.
    pub key_id: String,
    /// Regions whose public signing keys are in its `trust/` folder.
    pub trusts: Vec<String>,
}

/// Runs `rhip federation init`.
pub fn init(args: &FederationInitArgs) -> Result<(), Failure> {
    let topology = Topology::load(&args.topology).map_err(Failure::usage)?;
    if let Ok(mut entries) = std::fs::read_dir(&args.out) {
        if entries.next().is_some() {
            return Err(Failure::usage(format!("--out {} is not empty; choose a new folder", args.out.display())));
        }
    } else if args.out.exists() {
        return Err(Failure::usage(format!("--out {} is not a folder", args.out.display())));
    }
    let summary = generate(&topology, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).context("encode summary")?);
    } else {
        println!(
            "federation {:?}: CA {} (certificates valid to {})",
            summary.federation,
            summary.ca.display(),
            summary.not_after
        );
        println!(
            "{:<8} {:<10} {:<8} {:<22} {:<16} {:<16} key",
            "region", "tier", "parent", "api", "mllp", "federation"
        );
        for node in &summary.nodes {
            println!(
                "{:<8} {:<10} {:<8} {:<22} {:<16} {:<16} {}",
                node.region,
                node.tier,
                node.parent.as_deref().unwrap_or("-"),
                node.api,
                node.mllp,
                node.federation,
                node.key_id
            );
        }
        println!("start a node with: rhip serve --config {}/<region>/node.toml", summary.out.display());
    }
    Ok(())
}

/// Writes the CA and every node's folder under `out`.
pub(super) fn generate(topology: &Topology, out: &Path) -> Result<FederationSummary, Failure> {
    let today = chrono::Utc::now().date_naive();
    let last = today + chrono::Days::new(u64::from(topology.validity_days));

    std::fs::create_dir_all(out.join("ca")).with_context(|| format!("create {}/ca", out.display()))?;
    let ca_key = KeyPair::generate().context("generate CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = names(&format!("{} CA", topology.name), &topology.name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, today, last);
    let ca = params.self_signed(&ca_key).context("sign the CA certificate")?;
    let ca_pem = ca.pem();
    write_file(&out.join("ca/ca.crt"), &ca_pem)?;
    write_private(&out.join("ca/ca.key"), &ca_key.serialize_pem())?;

    let mut public_keys: HashMap<String, String> = HashMap::new();
    let mut nodes = Vec::with_capacity(topology.nodes.len());
    for node in &topology.nodes {
        let folder = out.join(node.region.as_str());
        let parent_url = node.parent.and_then(|p| topology.node(p)).map(|p| format!("http://{}", p.api));
        let mut peers: Vec<PeerSettings> = node
            .parent
            .and_then(|p| topology.node(p))
            .map(|p| PeerSettings { region: p.region, url: format!("https://{}", p.federation) })
            .into_iter()
            .collect();
        peers.extend(
            topology
                .children(node.region)
                .iter()
                .map(|c| PeerSettings { region: c.region, url: format!("https://{}", c.federation) }),
        );
        let federation = FederationSettings {
            listen: node.federation,
            tls_cert: Some(PathBuf::from("tls/node.crt")),
            tls_key: Some(PathBuf::from("tls/node.key")),
            ca: Some(PathBuf::from("tls/ca.crt")),
            trust_dir: Some(PathBuf::from("trust")),
            peers,
            ..FederationSettings::on(node.federation)
        };
        let spec = NodeSpec {
            region: node.region,
            name: node.name.clone(),
            db: None,
            parent: parent_url.as_deref(),
            api: node.api,
            mllp: node.mllp,
            federation: Some(federation),
            written_by: "rhip federation init",
        };
        let (made, key) = write_node(&folder, &spec)?;
        public_keys.insert(made.region.clone(), key.public_key_pem());
        std::fs::create_dir_all(folder.join("tls")).with_context(|| format!("create {}/tls", folder.display()))?;
        let (cert, cert_key) = node_certificate(topology, node, &ca, &ca_key, (today, last))?;
        write_file(&folder.join("tls/node.crt"), &cert.pem())?;
        write_private(&folder.join("tls/node.key"), &cert_key.serialize_pem())?;
        write_file(&folder.join("tls/ca.crt"), &ca_pem)?;
        let mut trusts: Vec<String> = node.parent.iter().map(|p| p.as_str().to_string()).collect();
        trusts.extend(topology.children(node.region).iter().map(|c| c.region.as_str().to_string()));
        nodes.push(NodeSummary {
            region: made.region,
            tier: made.tier,
            parent: node.parent.map(|p| p.as_str().to_string()),
            config: made.config,
            folder,
            api: made.api,
            mllp: made.mllp,
            federation: node.federation.to_string(),
            key_id: key.key_id().to_string(),
            trusts,
        });
    }
    for node in &nodes {
        let trust = node.folder.join("trust");
        std::fs::create_dir_all(&trust).with_context(|| format!("create {}", trust.display()))?;
        for peer in &node.trusts {
            let pem = public_keys.get(peer).with_context(|| format!("no key for {peer}"))?;
            write_file(&trust.join(format!("{peer}.pub.pem")), pem)?;
        }
    }
    Ok(FederationSummary {
        federation: topology.name.clone(),
        out: out.to_path_buf(),
        ca: out.join("ca/ca.crt"),
        not_after: last.to_string(),
        nodes,
    })
}

/// A node's TLS certificate: CN and SAN URI carry the region; the SAN IP is
/// its federation address, so peers can verify it when they connect.
fn node_certificate(
    topology: &Topology,
    node: &TopologyNode,
    ca: &Certificate,
    ca_key: &KeyPair,
    (first, last): (chrono::NaiveDate, chrono::NaiveDate),
) -> Result<(Certificate, KeyPair), Failure> {
    let key = KeyPair::generate().context("generate node TLS key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = names(node.region.as_str(), &topology.name);
    let uri = format!("urn:rhip:region:{}", node.region);
    params.subject_alt_names = vec![
        SanType::URI(uri.clone().try_into().with_context(|| format!("SAN {uri}"))?),
        SanType::IpAddress(node.federation.ip()),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    set_validity(&mut params, first, last);
    let cert =
        params.signed_by(&key, ca, ca_key).with_context(|| format!("sign the certificate of node {}", node.region))?;
    Ok((cert, key))
}

fn names(common_name: &str, organisation: &str) -> DistinguishedName {
    let mut names = DistinguishedName::new();
    names.push(DnType::CommonName, common_name);
    names.push(DnType::OrganizationName, organisation);
    names
}

/// Valid from the start of `first` to the start of `last` (UTC).
fn set_validity(params: &mut CertificateParams, first: chrono::NaiveDate, last: chrono::NaiveDate) {
    use chrono::Datelike;
    // Month (1-12) and day (1-31) always fit in u8.
    params.not_before = rcgen::date_time_ymd(first.year(), first.month() as u8, first.day() as u8);
    params.not_after = rcgen::date_time_ymd(last.year(), last.month() as u8, last.day() as u8);
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
