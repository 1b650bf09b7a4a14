//! The synthetic facilities of each county: two hospitals, a community health
//! centre and two clinics, with codes in the registry's convention (a letter
//! for the kind, the county code, a three-digit number: `H330106001`).
//!
//! They do not depend on the seed: a county's hospitals are the same in every
//! synthetic population, so a node registered once serves any seed.

use rhip_core::{FacilityCode, FacilityKind, RegionCode};
use serde::Serialize;

/// A facility that submits traffic to its county's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facility {
    /// Its registry code, sent in MSH-4 and as CDA custodian.
    pub code: FacilityCode,
    /// Display name (marked 合成, synthetic).
    pub name: String,
    /// What kind of institution it is.
    pub kind: FacilityKind,
    /// Its county.
    pub region: RegionCode,
}

impl Facility {
    /// The facility in the shape of `POST /api/v1/facilities` and the
    /// arguments of `rhip facility add` (`--code --name --kind --region`).
    pub fn record(&self) -> FacilityRecord {
        FacilityRecord {
            code: self.code.as_str().to_owned(),
            name: self.name.clone(),
            kind: self.kind.as_str(),
            region: self.region.as_str().to_owned(),
        }
    }
}

/// A facility as written to `facilities.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FacilityRecord {
    /// Registry code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Facility kind (`hospital`, `clinic`, `community_health_centre`).
    pub kind: &'static str,
    /// County code.
    pub region: String,
}

/// The facilities of one county: (code prefix, number, name suffix, kind).
const TEMPLATE: [(&str, u32, &str, FacilityKind); 5] = [
    ("H", 1, "第一人民医院", FacilityKind::Hospital),
    ("H", 2, "中医医院", FacilityKind::Hospital),
    ("S", 1, "城区社区卫生服务中心", FacilityKind::CommunityHealthCentre),
    ("C", 1, "康宁诊所", FacilityKind::Clinic),
    ("C", 2, "仁和门诊部", FacilityKind::Clinic),
];

/// The facilities of `county`, hospitals first.
pub(crate) fn of_county(county: RegionCode) -> Vec<Facility> {
    let place = county.name().unwrap_or("");
    TEMPLATE
        .iter()
        .filter_map(|(prefix, number, suffix, kind)| {
            let code = FacilityCode::parse(&format!("{prefix}{}{number:03}", county.as_str())).ok()?;
            Some(Facility { code, name: format!("{place}{suffix}（合成）"), kind: *kind, region: county })
        })
        .collect()
}

/// A code in the county's convention that no synthetic facility has: the
/// sender of the "unknown facility" invalid messages.
pub(crate) fn unregistered_code(county: RegionCode) -> String {
    format!("H{}999", county.as_str())
}
