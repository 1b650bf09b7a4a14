//! Administrative regions (GB/T 2260) and the four tiers of health commissions.
//!
//! Every RHIP node belongs to one region, and every person has a home region. The code
//! itself encodes the tree: `PP0000` is a province, `PPCC00` a prefecture-level city and
//! anything else a county-level unit. The tree may skip a tier: districts of the four
//! municipalities (`110101`) and county-level units governed directly by a province
//! (`429004`) have the province as parent, because GB/T 2260 has no `110100`/`429000`.
//!
//! Two embedded lists back the checks: the current list (2024-12-31), which node regions
//! and addresses must match, and the 1981–2024 history, which citizen-ID prefixes must
//! match (the first six digits of an ID are the code at the time of registration and may
//! have been abolished since).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::names::{named_enum, string_newtype_traits, UnknownNameError};
use crate::reference::{self, field};

named_enum! {
    /// The administrative tier of a region, and so of the health commission (node) that
    /// serves it. Ordered from the top: `National < Provincial < Municipal < County`.
    pub enum Tier {
        /// The national health commission (region `000000`).
        National => "national",
        /// A provincial-level unit (`PP0000`): provinces, autonomous regions, municipalities.
        Provincial => "provincial",
        /// A prefecture-level unit (`PPCC00`).
        Municipal => "municipal",
        /// A county-level unit: counties, districts, county-level cities, banners.
        County => "county",
    }
    error: UnknownNameError, |found, expected| UnknownNameError { what: "tier", found, expected }
}

impl Tier {
    /// The Chinese name of the tier, for console pages and reports.
    pub fn name_zh(&self) -> &'static str {
        match self {
            Tier::National => "国家级",
            Tier::Provincial => "省级",
            Tier::Municipal => "市级",
            Tier::County => "县级",
        }
    }
}

/// A GB/T 2260 administrative division code (or `000000` for the whole country).
///
/// Only constructed through [`RegionCode::parse`] (current codes) or
/// [`RegionCode::parse_historical`] (any code used since 1981), so holding one means the
/// code is real. Stored as six ASCII digits so it is `Copy` and cheap to compare and hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode([u8; 6]);

/// Why a text is not an acceptable region code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RegionError {
    /// The text is not exactly six ASCII digits.
    #[error("region code must be 6 digits, got {0:?}")]
    Format(String),
    /// Six digits, but not in the current (2024-12-31) GB/T 2260 list.
    #[error("{0} is not a current GB/T 2260 division code")]
    Unknown(String),
    /// Six digits, but not a code of any GB/T 2260 edition since 1981.
    #[error("{0} is not a GB/T 2260 division code of any year since 1981")]
    UnknownHistorical(String),
}

/// The current list: code → name, plus the derived tree.
struct CurrentDivisions {
    names: HashMap<[u8; 6], String>,
    sorted: Vec<RegionCode>,
    children: HashMap<RegionCode, Vec<RegionCode>>,
}

/// Every code used since 1981: code → the name of its most recent record.
struct HistoricalDivisions {
    names: HashMap<[u8; 6], String>,
    sorted: Vec<RegionCode>,
}

static CURRENT: LazyLock<CurrentDivisions> = LazyLock::new(|| {
    let mut names = HashMap::new();
    for row in reference::rows(reference::GBT2260_DIVISIONS_2024) {
        if let Some(digits) = six_digits(field(&row, 0)) {
            names.insert(digits, field(&row, 1).to_owned());
        }
    }
    let mut sorted: Vec<RegionCode> = names.keys().map(|digits| RegionCode(*digits)).collect();
    sorted.sort();
    let mut children: HashMap<RegionCode, Vec<RegionCode>> = HashMap::new();
    for code in &sorted {
        // Derive the tree from the map being built, so this initialiser never re-enters
        // the LazyLock through `RegionCode::parent`.
        if let Some(parent) = code.parent_with(|digits| names.contains_key(digits)) {
            children.entry(parent).or_default().push(*code);
        }
    }
    CurrentDivisions { names, sorted, children }
});

static HISTORICAL: LazyLock<HistoricalDivisions> = LazyLock::new(|| {
    // For a code with several records keep the most recent one: open-ended records
    // (still in use) win, then the latest end year, then the latest start year.
    let mut latest: HashMap<[u8; 6], ((u32, u32), String)> = HashMap::new();
    for row in reference::rows(reference::GBT2260_HISTORY_1981_2024) {
        let Some(digits) = six_digits(field(&row, 0)) else {
            continue;
        };
        let end_year = field(&row, 7).parse::<u32>().unwrap_or(u32::MAX);
        let start_year = field(&row, 6).parse::<u32>().unwrap_or(0);
        let rank = (end_year, start_year);
        let name = field(&row, 3).to_owned();
        match latest.get(&digits) {
            Some((existing, _)) if *existing >= rank => {}
            _ => {
                latest.insert(digits, (rank, name));
            }
        }
    }
    let names: HashMap<[u8; 6], String> = latest.into_iter().map(|(digits, (_, name))| (digits, name)).collect();
    let mut sorted: Vec<RegionCode> = names.keys().map(|digits| RegionCode(*digits)).collect();
    sorted.sort();
    HistoricalDivisions { names, sorted }
});

/// Returns the six ASCII digits of `s`, or `None` if it is not exactly that.
fn six_digits(s: &str) -> Option<[u8; 6]> {
    let bytes: [u8; 6] = s.as_bytes().try_into().ok()?;
    bytes.iter().all(u8::is_ascii_digit).then_some(bytes)
}

impl RegionCode {
    /// The whole country (`000000`): the national node's region and the root of the tree.
    pub const NATIONAL: RegionCode = RegionCode(*b"000000");

    /// Parses a code that must be in force today (or `000000`).
    ///
    /// Use this for node regions, facility regions and residential addresses. Surrounding
    /// whitespace is ignored.
    pub fn parse(s: &str) -> Result<RegionCode, RegionError> {
        let trimmed = s.trim();
        let digits = six_digits(trimmed).ok_or_else(|| RegionError::Format(s.to_owned()))?;
        let code = RegionCode(digits);
        if code == RegionCode::NATIONAL || CURRENT.names.contains_key(&digits) {
            Ok(code)
        } else {
            Err(RegionError::Unknown(trimmed.to_owned()))
        }
    }

    /// Parses a code that was in force in any year since 1981 (including today).
    ///
    /// Use this for citizen-ID prefixes and old records: a retired code is not an error
    /// there. `000000` is not accepted, since no person is registered to the whole country.
    pub fn parse_historical(s: &str) -> Result<RegionCode, RegionError> {
        let trimmed = s.trim();
        let digits = six_digits(trimmed).ok_or_else(|| RegionError::Format(s.to_owned()))?;
        if CURRENT.names.contains_key(&digits) || HISTORICAL.names.contains_key(&digits) {
            Ok(RegionCode(digits))
        } else {
            Err(RegionError::UnknownHistorical(trimmed.to_owned()))
        }
    }

    /// The six digits as text.
    pub fn as_str(&self) -> &str {
        // Always six ASCII digits by construction, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    /// The tier implied by the code's shape: `000000` national, `PP0000` provincial,
    /// `PPCC00` municipal, anything else county.
    pub fn tier(&self) -> Tier {
        if self.0 == RegionCode::NATIONAL.0 {
            Tier::National
        } else if &self.0[2..] == b"0000" {
            Tier::Provincial
        } else if &self.0[4..] == b"00" {
            Tier::Municipal
        } else {
            Tier::County
        }
    }

    /// The region one level up in the current tree; `None` for the whole country.
    ///
    /// A county's parent is its prefecture (`PPCC00`) when that is a current code, else
    /// its province: `330106 → 330100`, `110101 → 110000`, `429004 → 420000`.
    pub fn parent(&self) -> Option<RegionCode> {
        self.parent_with(|digits| CURRENT.names.contains_key(digits))
    }

    /// [`parent`](Self::parent) with the "is a current code" test supplied by the caller,
    /// so the tree can be derived while the current list itself is being built.
    fn parent_with(&self, is_current: impl Fn(&[u8; 6]) -> bool) -> Option<RegionCode> {
        let province = self.with_zeroes_from(2);
        match self.tier() {
            Tier::National => None,
            Tier::Provincial => Some(RegionCode::NATIONAL),
            Tier::Municipal => Some(province),
            Tier::County => {
                let prefecture = self.with_zeroes_from(4);
                Some(if is_current(&prefecture.0) { prefecture } else { province })
            }
        }
    }

    /// This code with the digits from `position` on replaced by zeroes.
    fn with_zeroes_from(&self, position: usize) -> RegionCode {
        let mut digits = self.0;
        for digit in &mut digits[position..] {
            *digit = b'0';
        }
        RegionCode(digits)
    }

    /// Parent, grandparent, … up to and including [`RegionCode::NATIONAL`]; empty for the
    /// country itself. Used to route changes upward and to check jurisdiction.
    pub fn ancestors(&self) -> Vec<RegionCode> {
        let mut ancestors = Vec::with_capacity(3);
        let mut current = *self;
        while let Some(parent) = current.parent() {
            ancestors.push(parent);
            current = parent;
        }
        ancestors
    }

    /// The code prefix shared by everything in this region's subtree: `""` for the
    /// country, `"33"` for `330000`, `"3301"` for `330100`, all six digits for a county.
    /// Handy for `LIKE '33%'` queries and for partitioning by province.
    pub fn jurisdiction_prefix(&self) -> &str {
        let length = match self.tier() {
            Tier::National => 0,
            Tier::Provincial => 2,
            Tier::Municipal => 4,
            Tier::County => 6,
        };
        &self.as_str()[..length]
    }

    /// Whether `other` is this region or lies in its subtree (by the prefix rule), i.e.
    /// whether this region's commission has jurisdiction over it.
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.as_str().starts_with(self.jurisdiction_prefix())
    }

    /// The Chinese name: from the current list, else from the most recent historical
    /// record for a retired code; `"全国"` for the whole country.
    pub fn name(&self) -> Option<&'static str> {
        if *self == RegionCode::NATIONAL {
            return Some("全国");
        }
        if let Some(name) = CURRENT.names.get(&self.0) {
            return Some(name.as_str());
        }
        HISTORICAL.names.get(&self.0).map(String::as_str)
    }

    /// Whether the code is in force today (`000000` counts as current).
    pub fn is_current(&self) -> bool {
        *self == RegionCode::NATIONAL || CURRENT.names.contains_key(&self.0)
    }

    /// The direct children in the current tree (by [`parent`](Self::parent)), in code
    /// order. Empty for counties and for retired codes.
    pub fn children(&self) -> Vec<RegionCode> {
        CURRENT.children.get(self).cloned().unwrap_or_default()
    }

    /// The provincial-level region this code lies in; `None` for the whole country.
    /// The DID is partitioned by province at national scale.
    pub fn province(&self) -> Option<RegionCode> {
        (self.tier() != Tier::National).then(|| self.with_zeroes_from(2))
    }

    /// Every current GB/T 2260 code (3213 of them, without `000000`), in code order.
    pub fn all_current() -> &'static [RegionCode] {
        &CURRENT.sorted
    }

    /// Every GB/T 2260 code used from 1981 to 2024 (current ones included), in code order.
    /// Useful to generate realistic citizen IDs with retired prefixes.
    pub fn all_historical() -> &'static [RegionCode] {
        &HISTORICAL.sorted
    }
}

impl std::fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RegionCode").field(&self.as_str()).finish()
    }
}

string_newtype_traits!(RegionCode, RegionError);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> RegionCode {
        match RegionCode::parse(s) {
            Ok(code) => code,
            Err(e) => panic!("{s} should parse: {e}"),
        }
    }

    #[test]
    fn known_codes_have_expected_tiers_and_parents() {
        let xihu = code("330106");
        assert_eq!(xihu.tier(), Tier::County);
        assert_eq!(xihu.parent(), Some(code("330100")));
        assert_eq!(xihu.name(), Some("西湖区"));

        let hangzhou = code("330100");
        assert_eq!(hangzhou.tier(), Tier::Municipal);
        assert_eq!(hangzhou.parent(), Some(code("330000")));

        let xiantao = code("429004");
        assert_eq!(xiantao.tier(), Tier::County);
        assert_eq!(xiantao.parent(), Some(code("420000")));

        let dongcheng = code("110101");
        assert_eq!(dongcheng.parent(), Some(code("110000")));

        assert_eq!(code("330000").tier(), Tier::Provincial);
        assert_eq!(code("330000").parent(), Some(RegionCode::NATIONAL));
        assert_eq!(RegionCode::NATIONAL.tier(), Tier::National);
        assert_eq!(RegionCode::NATIONAL.parent(), None);
        assert!(RegionCode::NATIONAL.ancestors().is_empty());
        assert_eq!(RegionCode::NATIONAL.name(), Some("全国"));
    }

    #[test]
    fn current_list_has_34_provinces_333_cities_2846_counties() {
        let count = |tier| RegionCode::all_current().iter().filter(|c| c.tier() == tier).count();
        assert_eq!(count(Tier::Provincial), 34);
        assert_eq!(count(Tier::Municipal), 333);
        assert_eq!(count(Tier::County), 2846);
        assert_eq!(count(Tier::National), 0);
        assert_eq!(RegionCode::all_current().len(), 3213);
    }

    #[test]
    fn derived_parents_and_tiers_agree_with_the_csv_columns() {
        for row in reference::rows(reference::GBT2260_DIVISIONS_2024) {
            let child = code(field(&row, 0));
            let expected_parent = match field(&row, 2) {
                "" => RegionCode::NATIONAL,
                parent => code(parent),
            };
            assert_eq!(child.parent(), Some(expected_parent), "{child}");
            let expected_tier = match field(&row, 3) {
                "province" => Tier::Provincial,
                "city" => Tier::Municipal,
                _ => Tier::County,
            };
            assert_eq!(child.tier(), expected_tier, "{child}");
        }
    }

    #[test]
    fn parse_rejects_bad_shapes_and_unknown_codes() {
        assert_eq!(RegionCode::parse("33010"), Err(RegionError::Format("33010".into())));
        assert_eq!(RegionCode::parse("33O106"), Err(RegionError::Format("33O106".into())));
        assert_eq!(RegionCode::parse("３３０１０６"), Err(RegionError::Format("３３０１０６".into())));
        assert_eq!(RegionCode::parse("110100"), Err(RegionError::Unknown("110100".into())));
        assert_eq!(RegionCode::parse(" 330106 "), Ok(code("330106")));
        assert_eq!(RegionCode::parse("000000"), Ok(RegionCode::NATIONAL));
        assert_eq!(
            RegionError::Unknown("110100".into()).to_string(),
            "110100 is not a current GB/T 2260 division code"
        );
    }

    #[test]
    fn historical_codes_parse_only_historically() {
        // 330102 上城区 is current; 330103 下城区 was abolished in 2021.
        assert!(RegionCode::parse("330103").is_err());
        let xiacheng = match RegionCode::parse_historical("330103") {
            Ok(code) => code,
            Err(e) => panic!("{e}"),
        };
        assert!(!xiacheng.is_current());
        assert_eq!(xiacheng.name(), Some("下城区"));
        assert_eq!(xiacheng.parent(), Some(code("330100")));
        assert!(RegionCode::parse_historical("330106").is_ok());
        assert_eq!(RegionCode::parse_historical("999999"), Err(RegionError::UnknownHistorical("999999".into())));
        assert!(RegionCode::parse_historical("000000").is_err());
        assert!(RegionCode::all_historical().len() >= 6450);
    }

    #[test]
    fn prefixes_children_and_containment() {
        assert_eq!(RegionCode::NATIONAL.jurisdiction_prefix(), "");
        assert_eq!(code("330000").jurisdiction_prefix(), "33");
        assert_eq!(code("330100").jurisdiction_prefix(), "3301");
        assert_eq!(code("330106").jurisdiction_prefix(), "330106");
        assert!(code("330000").contains(&code("330106")));
        assert!(code("330100").contains(&code("330106")));
        assert!(!code("330100").contains(&code("330200")));
        assert!(!code("330106").contains(&code("330100")));
        assert!(RegionCode::NATIONAL.contains(&code("650000")));

        assert_eq!(RegionCode::NATIONAL.children().len(), 34);
        let hubei = code("420000").children();
        assert!(hubei.contains(&code("429004")));
        assert!(hubei.contains(&code("420100")));
        assert!(!hubei.contains(&code("420102")));
        assert!(code("441900").children().is_empty(), "东莞 has no counties");
        assert!(code("810000").children().is_empty());
        assert!(code("330106").children().is_empty());
        assert_eq!(code("330106").province(), Some(code("330000")));
        assert_eq!(RegionCode::NATIONAL.province(), None);
        assert_eq!(code("330106").ancestors(), vec![code("330100"), code("330000"), RegionCode::NATIONAL]);
    }

    #[test]
    fn display_fromstr_debug_and_serde() {
        let xihu: RegionCode = match "330106".parse() {
            Ok(code) => code,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(xihu.to_string(), "330106");
        assert_eq!(format!("{xihu:?}"), "RegionCode(\"330106\")");
        use serde::de::{value::Error, IntoDeserializer};
        let from_json: Result<RegionCode, Error> = serde::Deserialize::deserialize("330106".into_deserializer());
        assert_eq!(from_json, Ok(xihu));
        let bad: Result<RegionCode, Error> = serde::Deserialize::deserialize("110100".into_deserializer());
        assert!(bad.is_err());
    }

    #[test]
    fn tier_names_round_trip() {
        for tier in Tier::ALL {
            assert_eq!(Tier::parse(tier.as_str()), Ok(tier));
        }
        assert!(Tier::National < Tier::County);
        assert!(Tier::parse("village").is_err());
    }

    #[test]
    fn every_current_code_hangs_from_a_current_parent_of_a_higher_tier() {
        for child in RegionCode::all_current() {
            let Some(parent) = child.parent() else {
                panic!("{child} has no parent");
            };
            assert!(parent.is_current(), "{child} -> {parent}");
            assert!(parent.tier() < child.tier(), "{child} -> {parent}");
            assert!(parent.contains(child), "{child} -> {parent}");
            assert!(parent.children().contains(child), "{child} -> {parent}");
            assert_eq!(child.ancestors().last(), Some(&RegionCode::NATIONAL));
        }
    }

    fn any_current() -> impl Strategy<Value = RegionCode> {
        prop_oneof![
            1 => Just(RegionCode::NATIONAL),
            50 => proptest::sample::select(RegionCode::all_current()),
        ]
    }

    proptest! {
        #[test]
        fn parent_is_current_higher_and_contains_child(child in any_current()) {
            if let Some(parent) = child.parent() {
                prop_assert!(parent.is_current());
                prop_assert!(parent.tier() < child.tier());
                prop_assert!(parent.contains(&child));
                prop_assert_eq!(child.ancestors().last().copied(), Some(RegionCode::NATIONAL));
            } else {
                prop_assert_eq!(child, RegionCode::NATIONAL);
            }
        }

        #[test]
        fn contains_agrees_with_ancestors(a in any_current(), b in any_current()) {
            let by_prefix = a.contains(&b);
            let by_tree = a == b || b.ancestors().contains(&a);
            prop_assert_eq!(by_prefix, by_tree, "{} contains {}", a, b);
        }

        #[test]
        fn contains_every_ancestor_relation(b in any_current()) {
            for ancestor in b.ancestors() {
                prop_assert!(ancestor.contains(&b));
                prop_assert!(!b.contains(&ancestor));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,8}") {
            let _ = RegionCode::parse(&s);
            let _ = RegionCode::parse_historical(&s);
        }
    }
}
