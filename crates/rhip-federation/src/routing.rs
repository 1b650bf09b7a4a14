//! Where a change goes next (DESIGN §6): the decision one node makes for one change,
//! given its links, where the change came from and what the parent keeps.
//!
//! - **Never back**: not to the peer it was received from.
//! - **Down**, toward the person's home county: to the one child whose subtree holds the
//!   home region, with document bytes, since the home county keeps the full record.
//!   Reference data (value domains, nodes' token keys, revoked tokens) goes to every
//!   child; facilities never go down.
//! - **Up**, unless the parent sent it: when the home region lies outside this node's
//!   subtree (the change must travel via the parent toward the home county, with bytes);
//!   when the parent's policy wants the class (bytes only if the parent keeps EMR in
//!   full); always for facilities (every node above a facility registers it); for
//!   reference data only toward a region above (a revoked token's issuer), never for
//!   value domains (they are published from the top); a resident's consent
//!   ([`FLOODS`]) climbs always, so it reaches every node wherever it was made.
//!
//! Because links form a tree and no change goes back the way it came, every change
//! reaches each node at most once along one path, and the hops up and down meet at the
//! least common ancestor of the origin and the home county. Applying a change once per
//! node by its id covers resends.

use rhip_core::RegionCode;

use crate::retention::{DataClass, Keep, RetentionPolicy};
use crate::wire::WireChange;

/// The links of one node in the federation tree, from the topology file. The parent need
/// not be the administrative parent (a tier may have no node), only an ancestor region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// This node's region.
    pub me: RegionCode,
    /// The parent node's region; `None` at the root.
    pub parent: Option<RegionCode>,
    /// The child nodes' regions.
    pub children: Vec<RegionCode>,
}

/// Reference data that reaches every node of the tree from wherever it is made: a
/// resident's consent is enforced wherever their records may be, and care may be
/// recorded in any county.
pub const FLOODS: [&str; 1] = ["consent"];

/// What routing needs to know about a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo<'a> {
    /// The change's entity (see [`DataClass::of`]).
    pub entity: &'a str,
    /// The home region of the person the change is about, if any.
    pub home_region: Option<&'a str>,
    /// The peer this node received the change from; `None` if it was made here.
    pub received_from: Option<&'a str>,
    /// The region where the change was made.
    pub origin_region: &'a str,
}

impl<'a> RouteInfo<'a> {
    /// The routing facts of a change received from `received_from` (`None`: made here).
    pub fn of(change: &'a WireChange, received_from: Option<&'a str>) -> RouteInfo<'a> {
        RouteInfo {
            entity: &change.entity,
            home_region: change.home_region.as_deref(),
            received_from,
            origin_region: &change.origin_region,
        }
    }
}

/// One hop: the peer to send the change to, and whether document bytes go along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The peer node's region.
    pub peer: RegionCode,
    /// Whether the change carries its document bytes to this peer (only meaningful for
    /// documents; `false` means send [`WireChange::without_content`]).
    pub content: bool,
}

/// A region code from the wire: current codes first, then retired ones (a person's home
/// region may be an old code); `None` if it is not a code at all.
fn region(text: &str) -> Option<RegionCode> {
    RegionCode::parse(text).or_else(|_| RegionCode::parse_historical(text)).ok()
}

/// Whether `links.me` is where a change about a person whose home is `home_region`
/// ends its way down: the node whose subtree holds the home region while none of its
/// children's does (the home county's node, or the nearest node above the county
/// when the county runs none). Audit entries are kept there only.
pub fn is_destination(links: &Links, home_region: &str) -> bool {
    let Some(home) = region(home_region) else { return false };
    links.me.contains(&home) && !links.children.iter().any(|child| *child != links.me && child.contains(&home))
}

/// The peers `links.me` sends `change` to, children first (in the order of
/// `links.children`), then the parent. `parent_policy` is the parent's retention policy
/// as it announced it; `None` assumes the default for the parent's tier.
pub fn route(links: &Links, change: &RouteInfo<'_>, parent_policy: Option<&RetentionPolicy>) -> Vec<Route> {
    let class = DataClass::of(change.entity);
    let home = change.home_region.and_then(region);
    let not_sender = |peer: &RegionCode| change.received_from != Some(peer.as_str());
    let mut routes = Vec::new();

    // Down.
    match class {
        Some(DataClass::Reference) => {
            routes.extend(
                links.children.iter().filter(|child| not_sender(child)).map(|&peer| Route { peer, content: true }),
            );
        }
        Some(DataClass::Registry) => {}
        _ => {
            if let Some(home) = home.filter(|home| links.me.contains(home)) {
                // The deepest child holding the home region (topologies may skip tiers, so
                // a province can have both a city and one of its counties as children).
                let toward_home = links
                    .children
                    .iter()
                    .filter(|child| **child != links.me && child.contains(&home))
                    .max_by_key(|child| child.jurisdiction_prefix().len());
                if let Some(&peer) = toward_home.filter(|child| not_sender(child)) {
                    routes.push(Route { peer, content: true });
                }
            }
        }
    }

    // Up.
    if let Some(parent) = links.parent.filter(|parent| not_sender(parent)) {
        let default_policy;
        let policy = match parent_policy {
            Some(policy) => policy,
            None => {
                default_policy = RetentionPolicy::default_for(parent.tier());
                &default_policy
            }
        };
        let up = match class {
            // Reference data addressed to a node above (a token revocation goes
            // to the token's issuer) climbs to it; the rest is published from the top.
            Some(DataClass::Reference) if FLOODS.contains(&change.entity) => Some(true),
            Some(DataClass::Reference) if home.is_some_and(|home| !links.me.contains(&home)) => Some(true),
            Some(DataClass::Reference) => None,
            Some(DataClass::Registry) => Some(true),
            _ if home.is_some_and(|home| !links.me.contains(&home)) => Some(true),
            _ if policy.wants(change.entity) => Some(policy.keep_entity(change.entity) == Keep::Full),
            _ => None,
        };
        if let Some(content) = up {
            routes.push(Route { peer: parent, content });
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    fn code(text: &str) -> RegionCode {
        RegionCode::parse(text).unwrap()
    }

    /// The demo federation (`federation/demo.toml`): national → Zhejiang → Hangzhou →
    /// Xihu / Binjiang, and national → Guangdong → Guangzhou → Tianhe.
    fn demo() -> BTreeMap<&'static str, Links> {
        let edges = [
            ("330000", "000000"),
            ("440000", "000000"),
            ("330100", "330000"),
            ("330106", "330100"),
            ("330108", "330100"),
            ("440100", "440000"),
            ("440106", "440100"),
        ];
        let mut nodes: BTreeMap<&str, Links> = BTreeMap::new();
        for region in ["000000", "330000", "330100", "330106", "330108", "440000", "440100", "440106"] {
            let parent = edges.iter().find(|(child, _)| *child == region).map(|(_, parent)| code(parent));
            let children = edges.iter().filter(|(_, parent)| *parent == region).map(|(child, _)| code(child)).collect();
            nodes.insert(region, Links { me: code(region), parent, children });
        }
        nodes
    }

    /// A hop of a simulated walk: from, to, with content.
    type Hop = (String, String, bool);

    /// Walks the tree from the origin with `route` at every node (default policies),
    /// returning every hop and checking that no node receives the change twice.
    fn walk(nodes: &BTreeMap<&str, Links>, entity: &str, home: Option<&str>, origin: &str) -> Vec<Hop> {
        let mut hops = Vec::new();
        let mut reached = BTreeSet::from([origin.to_owned()]);
        let mut queue: VecDeque<(String, Option<String>)> = VecDeque::from([(origin.to_owned(), None)]);
        while let Some((at, from)) = queue.pop_front() {
            let info = RouteInfo { entity, home_region: home, received_from: from.as_deref(), origin_region: origin };
            for hop in route(&nodes[at.as_str()], &info, None) {
                let to = hop.peer.as_str().to_owned();
                assert!(reached.insert(to.clone()), "{to} reached twice");
                hops.push((at.clone(), to.clone(), hop.content));
                queue.push_back((to, Some(at.clone())));
            }
        }
        hops.sort();
        hops
    }

    fn hops(list: &[(&str, &str, bool)]) -> Vec<Hop> {
        let mut hops: Vec<Hop> = list.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), *c)).collect();
        hops.sort();
        hops
    }

    #[test]
    fn keys_go_down_to_every_descendant_and_revocations_also_up_to_the_issuer() {
        let nodes = demo();
        let key = walk(&nodes, "issuer_key", None, "330000");
        assert_eq!(key, hops(&[("330000", "330100", true), ("330100", "330106", true), ("330100", "330108", true)]));
        // A national token logged out at Xihu: revoked up to national and down everywhere.
        let revoked = walk(&nodes, "token_revocation", Some("000000"), "330106");
        let reached: BTreeSet<&str> = revoked.iter().map(|(_, to, _)| to.as_str()).collect();
        assert_eq!(reached, BTreeSet::from(["000000", "330000", "330100", "330108", "440000", "440100", "440106"]));
    }

    #[test]
    fn a_consent_reaches_every_node_once() {
        let nodes = demo();
        let walked = walk(&nodes, "consent", Some("330106"), "330106");
        let reached: BTreeSet<&str> = walked.iter().map(|(_, to, _)| to.as_str()).collect();
        assert_eq!(reached, BTreeSet::from(["000000", "330000", "330100", "330108", "440000", "440100", "440106"]));
    }

    #[test]
    fn audit_entries_travel_to_the_home_county_and_end_there() {
        // A Tianhe clinician read a Xihu resident's record.
        let nodes = demo();
        let walked = walk(&nodes, "audit_entry", Some("330106"), "440106");
        let path = [
            ("440106", "440100", true),
            ("440100", "440000", true),
            ("440000", "000000", true),
            ("000000", "330000", true),
            ("330000", "330100", true),
            ("330100", "330106", true),
        ];
        assert_eq!(walked, hops(&path));
        let destinations: Vec<&str> =
            nodes.iter().filter(|(_, links)| is_destination(links, "330106")).map(|(region, _)| *region).collect();
        assert_eq!(destinations, ["330106"]);
        // A county without a node of its own: its city is the destination.
        let mut nodes = demo();
        nodes.get_mut("330100").unwrap().children.retain(|child| child.as_str() != "330108");
        assert!(is_destination(&nodes["330100"], "330108"));
        assert!(!is_destination(&nodes["330100"], "330106"));
        assert!(!is_destination(&nodes["330106"], "not a region"));
    }

    #[test]
    fn care_abroad_travels_to_the_home_county_and_nowhere_else() {
        // A Xihu resident's encounter recorded in Tianhe.
        let walked = walk(&demo(), "encounter", Some("330106"), "440106");
        assert_eq!(
            walked,
            hops(&[
                ("440106", "440100", true),
                ("440100", "440000", true),
                ("440000", "000000", true),
                ("000000", "330000", true),
                ("330000", "330100", true),
                ("330100", "330106", true),
            ])
        );
        assert!(!walked.iter().any(|(_, to, _)| to == "330108"));
    }

    #[test]
    fn national_forwards_document_bytes_down_although_it_keeps_only_the_index() {
        let nodes = demo();
        let national = &nodes["000000"];
        let from_guangdong = RouteInfo {
            entity: "document",
            home_region: Some("330106"),
            received_from: Some("440000"),
            origin_region: "440106",
        };
        assert_eq!(route(national, &from_guangdong, None), vec![Route { peer: code("330000"), content: true }]);
        assert_eq!(RetentionPolicy::default_for(rhip_core::Tier::National).keep_entity("document"), Keep::Index);
        // And the whole walk of a document carries the bytes every hop of the way.
        let walked = walk(&nodes, "document", Some("330106"), "440106");
        assert_eq!(walked.len(), 6);
        assert!(walked.iter().all(|(_, _, content)| *content));
    }

    #[test]
    fn care_at_home_goes_up_as_far_as_policies_want_and_stops() {
        let walked = walk(&demo(), "document", Some("330108"), "330108");
        // National keeps only the index of documents: no bytes on the last hop, and
        // nothing comes back down.
        assert_eq!(
            walked,
            hops(&[("330108", "330100", true), ("330100", "330000", true), ("330000", "000000", false)])
        );
        let walked = walk(&demo(), "ehr_entry", Some("330108"), "330108");
        assert_eq!(walked.len(), 3);
    }

    #[test]
    fn care_in_a_sibling_county_reaches_home_through_the_common_parent() {
        // A Xihu resident seen in Binjiang: up to Hangzhou, down to Xihu, and up the rest.
        let walked = walk(&demo(), "encounter", Some("330106"), "330108");
        assert_eq!(
            walked,
            hops(&[
                ("330108", "330100", true),
                ("330100", "330106", true),
                ("330100", "330000", true),
                ("330000", "000000", true),
            ])
        );
    }

    #[test]
    fn person_details_stay_below_a_parent_that_keeps_only_the_person_index() {
        let nodes = demo();
        let zhejiang = &nodes["330000"];
        let allergy = RouteInfo {
            entity: "allergy",
            home_region: Some("330106"),
            received_from: Some("330100"),
            origin_region: "330106",
        };
        let index = RetentionPolicy { did: Keep::Index, ehr: Keep::Full, emr: Keep::Full };
        assert!(route(zhejiang, &allergy, Some(&index)).is_empty());
        let person = RouteInfo { entity: "person", ..allergy };
        assert_eq!(route(zhejiang, &person, Some(&index)), vec![Route { peer: code("000000"), content: true }]);
        // A parent that keeps no EMR gets no encounters of home residents...
        let no_emr = RetentionPolicy { did: Keep::Full, ehr: Keep::Full, emr: Keep::None };
        let encounter = RouteInfo { entity: "encounter", ..allergy };
        assert!(route(zhejiang, &encounter, Some(&no_emr)).is_empty());
        // ...but still gets those of residents elsewhere, which must travel through it.
        let foreign = RouteInfo { home_region: Some("440106"), ..encounter };
        assert_eq!(route(zhejiang, &foreign, Some(&no_emr)), vec![Route { peer: code("000000"), content: true }]);
    }

    #[test]
    fn reference_data_flows_down_everywhere_and_never_up() {
        let walked = walk(&demo(), "value_domain", None, "000000");
        assert_eq!(walked.len(), 7);
        let nodes = demo();
        let from_hangzhou =
            RouteInfo { entity: "value_domain", home_region: None, received_from: None, origin_region: "330100" };
        assert_eq!(
            route(&nodes["330100"], &from_hangzhou, None),
            vec![Route { peer: code("330106"), content: true }, Route { peer: code("330108"), content: true }]
        );
    }

    #[test]
    fn facilities_go_up_to_the_root_and_never_down() {
        let walked = walk(&demo(), "facility", None, "330106");
        assert_eq!(walked, hops(&[("330106", "330100", true), ("330100", "330000", true), ("330000", "000000", true)]));
        let walked = walk(&demo(), "facility", None, "330100");
        assert_eq!(walked, hops(&[("330100", "330000", true), ("330000", "000000", true)]));
    }

    #[test]
    fn never_back_to_the_sender() {
        let nodes = demo();
        let from_parent = RouteInfo {
            entity: "encounter",
            home_region: Some("440106"),
            received_from: Some("330100"),
            origin_region: "330106",
        };
        // Home outside Xihu's subtree, but the change came from Xihu's parent: no hop.
        assert!(route(&nodes["330106"], &from_parent, None).is_empty());
        let from_child = RouteInfo { home_region: Some("330106"), received_from: Some("330106"), ..from_parent };
        assert_eq!(route(&nodes["330100"], &from_child, None), vec![Route { peer: code("330000"), content: true }]);
    }

    #[test]
    fn skipped_tiers_route_to_the_deepest_child() {
        // A province with both a city node and one of that city's counties as children.
        let links = Links { me: code("330000"), parent: None, children: vec![code("330100"), code("330106")] };
        let info = RouteInfo {
            entity: "encounter",
            home_region: Some("330106"),
            received_from: None,
            origin_region: "330000",
        };
        assert_eq!(route(&links, &info, None), vec![Route { peer: code("330106"), content: true }]);
        let elsewhere = RouteInfo { home_region: Some("330108"), ..info };
        assert_eq!(route(&links, &elsewhere, None), vec![Route { peer: code("330100"), content: true }]);
        // A municipality district's node under the province node (no 110100 exists).
        let beijing = Links { me: code("110000"), parent: Some(RegionCode::NATIONAL), children: vec![code("110101")] };
        let info = RouteInfo {
            entity: "encounter",
            home_region: Some("110101"),
            received_from: Some("000000"),
            origin_region: "440106",
        };
        assert_eq!(route(&beijing, &info, None), vec![Route { peer: code("110101"), content: true }]);
    }

    #[test]
    fn unknown_or_missing_home_regions_follow_the_parent_policy_only() {
        let nodes = demo();
        let info = RouteInfo { entity: "encounter", home_region: None, received_from: None, origin_region: "330106" };
        assert_eq!(route(&nodes["330106"], &info, None), vec![Route { peer: code("330100"), content: true }]);
        let garbage = RouteInfo { home_region: Some("nowhere"), ..info };
        assert_eq!(route(&nodes["330106"], &garbage, None), vec![Route { peer: code("330100"), content: true }]);
        let unknown_entity = RouteInfo { entity: "spaceship", home_region: Some("330106"), ..info };
        assert!(route(&nodes["330106"], &unknown_entity, None).is_empty());
        // At the root with no home, nothing moves.
        assert!(route(&nodes["000000"], &info, None).is_empty());
    }
}
