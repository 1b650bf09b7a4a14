//! Federation topology files (`federation/*.toml`): which regions run a node,
//! each node's parent, and its listen addresses. Checked on load so that every
//! error names the node and the field.

use rhip_core::RegionCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

/// Default certificate lifetime: two years.
pub const DEFAULT_VALIDITY_DAYS: u32 = 730;

/// The file as written, before checking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    #[serde(default)]
    federation: RawFederation,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    name: Option<String>,
    validity_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    region: String,
    name: Option<String>,
    parent: Option<String>,
    api: String,
    mllp: String,
    federation: String,
}

/// A checked topology: one root, every parent present and an ancestor region
/// of its child, no region or port used twice.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Name of the federation (CA subject); default `RHIP federation`.
    pub name: String,
    /// Lifetime of the certificates, in days.
    pub validity_days: u32,
    /// The nodes, in file order.
    pub nodes: Vec<TopologyNode>,
}

/// One node of a topology.
#[derive(Clone, Debug)]
pub struct TopologyNode {
    /// Region served.
    pub region: RegionCode,
    /// Display name (default: from the region).
    pub name: Option<String>,
    /// Region of the parent node; none for the root.
    pub parent: Option<RegionCode>,
    /// API listen address.
    pub api: SocketAddr,
    /// MLLP listen address.
    pub mllp: SocketAddr,
    /// Federation (mutual TLS) listen address.
    pub federation: SocketAddr,
}

impl Topology {
    /// Reads and checks a topology file; errors are one line.
    pub fn load(path: &Path) -> Result<Topology, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read topology {}: {e}", path.display()))?;
        Topology::parse(&text).map_err(|e| format!("topology {}: {e}", path.display()))
    }

    /// Parses and checks topology text.
    pub fn parse(text: &str) -> Result<Topology, String> {
        let raw: RawTopology = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        let validity_days = raw.federation.validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS);
        if validity_days == 0 {
            return Err("federation.validity_days must be at least 1".into());
        }
        if raw.nodes.is_empty() {
            return Err("no [[node]] entries".into());
        }
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for (index, node) in raw.nodes.iter().enumerate() {
            let label = format!("node #{} ({})", index + 1, node.region);
            let region = RegionCode::parse(&node.region).map_err(|e| format!("{label}: region: {e}"))?;
            let label = format!("node {region}");
            let parent = node
                .parent
                .as_deref()
                .map(RegionCode::parse)
                .transpose()
                .map_err(|e| format!("{label}: parent: {e}"))?;
            let address = |field: &str, text: &str| -> Result<SocketAddr, String> {
                text.parse().map_err(|_| format!("{label}: {field}: {text:?} is not an IP:PORT address"))
            };
            nodes.push(TopologyNode {
                region,
                name: node.name.clone(),
                parent,
                api: address("api", &node.api)?,
                mllp: address("mllp", &node.mllp)?,
                federation: address("federation", &node.federation)?,
            });
        }
        let topology =
            Topology { name: raw.federation.name.unwrap_or_else(|| "RHIP federation".into()), validity_days, nodes };
        topology.check()?;
        Ok(topology)
    }

    fn check(&self) -> Result<(), String> {
        let mut regions: HashMap<RegionCode, usize> = HashMap::new();
        let mut ports: HashMap<u16, (RegionCode, &str)> = HashMap::new();
        for node in &self.nodes {
            if regions.insert(node.region, 0).is_some() {
                return Err(format!("node {}: region: {} appears twice", node.region, node.region));
            }
            for (field, address) in [("api", node.api), ("mllp", node.mllp), ("federation", node.federation)] {
                if address.port() == 0 {
                    return Err(format!("node {}: {field}: port 0 is not allowed in a topology", node.region));
                }
                if let Some((other, other_field)) = ports.insert(address.port(), (node.region, field)) {
                    return Err(format!(
                        "node {}: {field}: port {} is already used by node {other} ({other_field})",
                        node.region,
                        address.port()
                    ));
                }
            }
        }
        let roots: Vec<RegionCode> = self.nodes.iter().filter(|n| n.parent.is_none()).map(|n| n.region).collect();
        match roots.as_slice() {
            [_] => {}
            [] => return Err("no root: every node has a parent (exactly one node must have none)".into()),
            [first, second, ..] => {
                return Err(format!("node {second}: parent: missing, but node {first} is already the root"))
            }
        }
        for node in &self.nodes {
            let Some(parent) = node.parent else { continue };
            if !regions.contains_key(&parent) {
                return Err(format!("node {}: parent: {parent} is not a node of the topology", node.region));
            }
            if parent == node.region || !parent.contains(&node.region) {
                return Err(format!(
                    "node {}: parent: {parent} is not an ancestor region of {}",
                    node.region, node.region
                ));
            }
        }
        Ok(())
    }

    /// The node serving `region`.
    pub fn node(&self, region: RegionCode) -> Option<&TopologyNode> {
        self.nodes.iter().find(|n| n.region == region)
    }

    /// The nodes whose parent is `region`, in file order.
    pub fn children(&self, region: RegionCode) -> Vec<&TopologyNode> {
        self.nodes.iter().filter(|n| n.parent == Some(region)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[[node]]
region = "330000"
api = "127.0.0.1:26100"
mllp = "127.0.0.1:26101"
federation = "127.0.0.1:26102"

[[node]]
region = "330106"
parent = "330000"
api = "127.0.0.1:26110"
mllp = "127.0.0.1:26111"
federation = "127.0.0.1:26112"
"#;

    #[test]
    fn the_demo_topology_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../federation/demo.toml");
        let topology = Topology::load(&path).unwrap();
        assert!(topology.nodes.len() >= 7);
        let xihu = RegionCode::parse("330106").unwrap();
        let hangzhou = RegionCode::parse("330100").unwrap();
        assert_eq!(topology.node(xihu).unwrap().parent, Some(hangzhou));
        assert_eq!(topology.children(hangzhou).len(), 2);
    }

    #[test]
    fn errors_name_the_node_and_the_field() {
        assert!(Topology::parse(SMALL).is_ok());
        let cases = [
            (SMALL.replace("parent = \"330000\"", "parent = \"440000\""), "node 330106: parent: 440000 is not a node"),
            (SMALL.replace("\"330106\"", "\"440106\""), "node 440106: parent: 330000 is not an ancestor"),
            (SMALL.replace("\"330106\"", "\"330000\""), "node 330000: region: 330000 appears twice"),
            (SMALL.replace("26111", "26101"), "node 330106: mllp: port 26101 is already used by node 330000 (mllp)"),
            (SMALL.replace("\"330106\"", "\"339999\""), "node #2 (339999): region:"),
            (SMALL.replace("127.0.0.1:26112", "here"), "node 330106: federation: \"here\""),
            (SMALL.replace("parent = \"330000\"\n", ""), "node 330106: parent: missing"),
        ];
        for (text, needle) in cases {
            let error = Topology::parse(&text).unwrap_err();
            assert!(error.contains(needle), "{error} lacks {needle}");
            assert!(!error.contains('\n'));
        }
    }
}
