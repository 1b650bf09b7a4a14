//! Residents and households, each computable on its own from the seed and
//! its index.
//!
//! Residents are generated in blocks of [`BLOCK`]: block *b* holds residents
//! `64b .. 64b+64` and is drawn from its own random sequence, household after
//! household (1 to 5 members, a household never crosses a block), so resident
//! *i* costs at most one block's work and nothing before it. A household's
//! number is the index of its first member.
//!
//! Citizen IDs must never repeat, at any size up to [`MAX_RESIDENTS`], without
//! remembering the ones issued. Uniqueness is built into the numbering instead:
//! the birth *year* follows the household (a child is 20 to 40 years younger
//! than its mother), while the day of that year and the sequence number come
//! from a bijective scramble of `i mod 182 500` (365 days × 500 sequences per
//! sex), so two residents of one "ID class" `i / 182 500` never share day and
//! sequence. Classes never share a birth region: class 0 is born in the
//! population's home counties or in a first slice of China's other counties,
//! and every later class in a slice of its own. Populations up to 182 500
//! residents (every demo) are therefore born mostly at home; larger ones get
//! more residents born elsewhere, as migrants are.

use chrono::{Datelike, NaiveDate};
use rhip_core::{CitizenId, Ethnicity, FamilyRelationship, MaritalStatus, RegionCode, Sex, Tier};
use serde::Serialize;

use crate::names;
use crate::rng::{mix, Rng, Stream};

/// Residents per block: the unit of generation.
pub const BLOCK: u64 = 64;
/// The largest population supported (IDs stay unique up to 64 classes of 182 500).
pub const MAX_RESIDENTS: u64 = 10_000_000;
/// Day-and-sequence slots per birth year and sex: 365 days × 500 sequences.
const ID_SLOTS: u64 = 365 * 500;
/// Birth-region classes; `ID_CLASSES * ID_SLOTS` must exceed [`MAX_RESIDENTS`].
const ID_CLASSES: usize = 64;
/// Multiplier of the slot scramble; coprime with 182 500 = 2² · 5⁴ · 73.
const SLOT_MULTIPLIER: u64 = 7_919;

/// Household sizes 1–5 with their weights (China's 2020 census: many small
/// households, few of five).
const HOUSEHOLD_SIZES: [u32; 5] = [25, 30, 22, 13, 10];

/// Ages of a lone adult householder by band (from, to inclusive, weight).
const SINGLE_AGES: [(u64, u64, u32); 8] =
    [(18, 24, 12), (25, 29, 14), (30, 39, 14), (40, 49, 10), (50, 59, 12), (60, 69, 16), (70, 79, 14), (80, 99, 8)];
/// Ages of the head of a family household by band.
const HEAD_AGES: [(u64, u64, u32); 7] =
    [(22, 29, 10), (30, 39, 24), (40, 49, 22), (50, 59, 20), (60, 69, 14), (70, 79, 7), (80, 92, 3)];

/// Ethnic groups other than Han with their weights (2020 census, per 10 000):
/// Zhuang, Uyghur, Hui, Miao, Manchu, Yi, Tujia, Zang, Mongol, Dong, Buyei, Yao, Bai.
const MINORITIES: [(&str, u32); 13] = [
    ("08", 138),
    ("05", 84),
    ("03", 81),
    ("06", 79),
    ("11", 74),
    ("07", 70),
    ("15", 68),
    ("04", 50),
    ("02", 45),
    ("12", 25),
    ("09", 25),
    ("13", 24),
    ("14", 15),
];
/// Share of Han residents.
const HAN_SHARE: f64 = 0.911;

/// Street names used everywhere in China, so no real address is implied.
const STREETS: [&str; 16] = [
    "和平路",
    "建设路",
    "人民路",
    "解放路",
    "中山路",
    "新华路",
    "长江路",
    "青年路",
    "文化路",
    "光明路",
    "幸福路",
    "朝阳路",
    "团结路",
    "育才路",
    "丰收路",
    "振兴路",
];

/// Mobile number prefixes (the three carriers' common ranges).
const PHONE_PREFIXES: [&str; 16] =
    ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "158", "159", "177", "186", "188", "189"];

/// One synthetic resident. Every field is derived from `(seed, index)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Resident {
    /// Position in the population, `0..residents`.
    pub index: u64,
    /// The household's number (the index of its first member).
    pub household: u64,
    /// Relationship to the head of household (GB/T 4761: `02` the head, `11`/`12`
    /// husband/wife, `21`–`24` sons, `31`–`34` daughters, `51`/`52` the head's parents).
    pub relation: FamilyRelationship,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// Sex (male or female; the citizen ID's 17th digit agrees).
    pub sex: Sex,
    /// Date of birth (the citizen ID's characters 7–14 agree).
    pub birth_date: NaiveDate,
    /// Where the citizen ID was issued (its first six digits).
    pub birth_region: RegionCode,
    /// A valid, population-unique citizen identity number.
    pub citizen_id: CitizenId,
    /// Ethnic group (GB 3304), shared by the household.
    pub ethnicity: Ethnicity,
    /// Marital status (GB/T 2261.2) for adults; `None` for children.
    pub marital_status: Option<MaritalStatus>,
    /// Mobile number; a child's is the household head's.
    pub phone: String,
    /// The home county (a county of the topology).
    pub home_region: RegionCode,
    /// Street address, shared by the household.
    pub address_line: String,
}

impl Resident {
    /// Family and given name written together, as Chinese records do.
    pub fn name(&self) -> String {
        format!("{}{}", self.family_name, self.given_name)
    }

    /// Age in whole years on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        date.years_since(self.birth_date).unwrap_or(0)
    }

    /// The resident's demographics as the DID holds them (no identifiers:
    /// a facility's MRN is the caller's to add).
    pub fn demographics(&self) -> rhip_core::PersonDemographics {
        rhip_core::PersonDemographics {
            name: self.name(),
            sex: self.sex,
            birth_date: Some(self.birth_date),
            id_number: Some(self.citizen_id.clone()),
            ethnicity: Some(self.ethnicity),
            marital_status: self.marital_status,
            phone: Some(self.phone.clone()),
            address_region: Some(self.home_region),
            address_line: Some(self.address_line.clone()),
            identifiers: Vec::new(),
        }
    }

    /// The resident as a line of `rhip person import`.
    pub fn import_record(&self) -> ImportRecord {
        ImportRecord {
            name: self.name(),
            sex: self.sex.code(),
            birth_date: self.birth_date.format("%Y-%m-%d").to_string(),
            id_number: self.citizen_id.as_str().to_owned(),
            ethnicity: self.ethnicity.code(),
            marital_status: self.marital_status.map(|status| status.code()),
            phone: self.phone.clone(),
            address_region: self.home_region.as_str().to_owned(),
            address_line: self.address_line.clone(),
            home_region: self.home_region.as_str().to_owned(),
        }
    }
}

/// A resident in the JSON-lines shape `rhip person import` reads (exactly its
/// fields, since that reader refuses unknown ones).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportRecord {
    /// Full name.
    pub name: String,
    /// GB/T 2261.1 code.
    pub sex: &'static str,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Citizen ID.
    pub id_number: String,
    /// GB 3304 code.
    pub ethnicity: &'static str,
    /// GB/T 2261.2 code, absent for children.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marital_status: Option<&'static str>,
    /// Mobile number.
    pub phone: String,
    /// County of the address.
    pub address_region: String,
    /// Street address.
    pub address_line: String,
    /// Home county.
    pub home_region: String,
}

/// A household: members sharing an address and a household number.
#[derive(Clone, Debug, PartialEq)]
pub struct Household {
    /// The household's number (the index of its first member).
    pub number: u64,
    /// Its county.
    pub region: RegionCode,
    /// Its street address.
    pub address_line: String,
    /// Its members, head first (fewer than generated when the population ends
    /// inside the household).
    pub members: Vec<Resident>,
}

impl Household {
    /// The household as one line of `households.jsonl`.
    pub fn record(&self) -> HouseholdRecord {
        HouseholdRecord {
            household: format!("HH{:010}", self.number),
            region: self.region.as_str().to_owned(),
            address_line: self.address_line.clone(),
            members: self
                .members
                .iter()
                .map(|member| HouseholdMemberRecord {
                    resident: member.index,
                    id_number: member.citizen_id.as_str().to_owned(),
                    relation: member.relation.code(),
                    relation_name: member.relation.name_zh(),
                })
                .collect(),
        }
    }
}

/// A household as written to `households.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HouseholdRecord {
    /// `HH` and the household number.
    pub household: String,
    /// County.
    pub region: String,
    /// Street address.
    pub address_line: String,
    /// Members, head first.
    pub members: Vec<HouseholdMemberRecord>,
}

/// One member of a household record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HouseholdMemberRecord {
    /// Resident index.
    pub resident: u64,
    /// Citizen ID, to join with `persons.jsonl`.
    pub id_number: String,
    /// GB/T 4761 code of the relationship to the head.
    pub relation: &'static str,
    /// Its Chinese name.
    pub relation_name: &'static str,
}

/// Where residents live and are born: fixed per population.
#[derive(Clone, Debug)]
pub(crate) struct Geography {
    /// The home counties.
    pub(crate) counties: Vec<RegionCode>,
    /// Their weights.
    pub(crate) weights: Vec<u32>,
    /// Birth regions of each ID class other than the home counties (disjoint).
    pub(crate) birth_classes: Vec<Vec<RegionCode>>,
    /// GB 3304 `01` 汉族.
    han: Ethnicity,
    /// The minorities drawn, with their weights.
    minorities: Vec<Ethnicity>,
    minority_weights: Vec<u32>,
}

impl Geography {
    /// Splits China's other current counties into the ID classes; fails only
    /// when rhip-core's embedded GB 3304 table lacks a code used here.
    pub(crate) fn new(counties: Vec<RegionCode>, weights: Vec<u32>) -> Result<Geography, String> {
        let mut birth_classes = vec![Vec::new(); ID_CLASSES];
        let others = RegionCode::all_current()
            .iter()
            .filter(|region| region.tier() == Tier::County && !counties.contains(region));
        for (position, region) in others.enumerate() {
            if let Some(class) = birth_classes.get_mut(position % ID_CLASSES) {
                class.push(*region);
            }
        }
        let parse = |code: &str| Ethnicity::parse(code).map_err(|e| format!("GB 3304 {code}: {e}"));
        let han = parse("01")?;
        let minorities = MINORITIES.iter().map(|(code, _)| parse(code)).collect::<Result<Vec<_>, _>>()?;
        let minority_weights = MINORITIES.iter().map(|(_, weight)| *weight).collect();
        Ok(Geography { counties, weights, birth_classes, han, minorities, minority_weights })
    }
}

/// What a household plan says about one member before names and IDs.
struct MemberPlan {
    relation: &'static str,
    sex: Sex,
    age: u64,
    family_name: String,
    marital_status: Option<&'static str>,
}

/// Generates block `block` of the population: up to [`BLOCK`] residents,
/// whole households only.
pub(crate) fn block(seed: u64, as_of: NaiveDate, geography: &Geography, block: u64) -> Vec<Household> {
    let mut rng = Rng::new(seed, Stream::Block, block);
    let slot_offset = Rng::new(seed, Stream::Layout, 0).below(ID_SLOTS);
    let start = block * BLOCK;
    let mut households = Vec::new();
    let mut filled = 0u64;
    while filled < BLOCK {
        let size = (rng.weighted(&HOUSEHOLD_SIZES) as u64 + 1).min(BLOCK - filled);
        let number = start + filled;
        let county_index = rng.weighted(&geography.weights);
        let region = geography.counties.get(county_index).copied().unwrap_or(RegionCode::NATIONAL);
        let address_line = address(&mut rng);
        let ethnicity = ethnicity(&mut rng, geography);
        let plans = plan_household(&mut rng, size);
        let head_phone = phone(&mut rng);
        let mut members = Vec::with_capacity(plans.len());
        for plan in plans {
            let index = start + filled;
            filled += 1;
            let sex = plan.sex;
            let given_name = names::given_name(&mut rng, sex);
            let (birth_date, sequence) = birth_and_sequence(index, plan.age, sex, slot_offset, as_of);
            let birth_region = birth_region(&mut rng, index, region, geography);
            let own_phone = phone(&mut rng);
            members.push(Resident {
                index,
                household: number,
                relation: FamilyRelationship::parse(plan.relation).unwrap_or(FamilyRelationship::HEAD_OF_HOUSEHOLD),
                family_name: plan.family_name,
                given_name,
                sex,
                birth_date,
                birth_region,
                citizen_id: CitizenId::generate(birth_region, birth_date, sequence),
                ethnicity,
                marital_status: plan.marital_status.and_then(|code| MaritalStatus::parse(code).ok()),
                phone: if plan.relation == "02" || plan.age >= 16 { own_phone } else { head_phone.clone() },
                home_region: region,
                address_line: address_line.clone(),
            });
        }
        if let Some(head) = members.first_mut() {
            head.phone = head_phone;
        }
        households.push(Household { number, region, address_line, members });
    }
    households
}

/// The birth date and ID sequence of resident `index`: the year from the
/// planned age, day and sequence from the index's slot (see the module docs).
fn birth_and_sequence(index: u64, age: u64, sex: Sex, slot_offset: u64, as_of: NaiveDate) -> (NaiveDate, u16) {
    let slot = ((index % ID_SLOTS) * SLOT_MULTIPLIER + slot_offset) % ID_SLOTS;
    let day = (slot % 365) as u32;
    let sequence = (slot / 365) as u16 * 2 + u16::from(sex == Sex::Male);
    let year = as_of.year() - 1 - i32::try_from(age).unwrap_or(0);
    let birth = NaiveDate::from_yo_opt(year, day + 1).unwrap_or_default();
    (birth, sequence)
}

/// Where resident `index` was born: in class 0 mostly the home county, else a
/// region of the index's own class, in the home province when the class has one.
fn birth_region(rng: &mut Rng, index: u64, home: RegionCode, geography: &Geography) -> RegionCode {
    let class = usize::try_from(index / ID_SLOTS).unwrap_or(0);
    let roll = rng.unit();
    if class == 0 && roll < 0.7 {
        return home;
    }
    if class == 0 && roll < 0.8 {
        if let Some(county) = rng.pick(&geography.counties) {
            return *county;
        }
    }
    let Some(regions) = geography.birth_classes.get(class) else { return home };
    let province = home.province();
    let same_province: Vec<RegionCode> = regions.iter().copied().filter(|r| r.province() == province).collect();
    let choices = if same_province.is_empty() || rng.chance(0.3) { regions.as_slice() } else { &same_province };
    rng.pick(choices).copied().unwrap_or(home)
}

/// An age in one of the weighted bands.
fn age_in(rng: &mut Rng, bands: &[(u64, u64, u32)]) -> u64 {
    let weights: Vec<u32> = bands.iter().map(|(_, _, weight)| *weight).collect();
    let (from, to, _) = bands.get(rng.weighted(&weights)).copied().unwrap_or((30, 40, 1));
    rng.between(from, to)
}

/// The members of a household of `size`: relations, sexes, ages and family
/// names consistent with each other.
fn plan_household(rng: &mut Rng, size: u64) -> Vec<MemberPlan> {
    let surname = names::surname(rng).to_owned();
    if size == 1 {
        let age = age_in(rng, &SINGLE_AGES);
        let sex = if rng.chance(0.5) { Sex::Male } else { Sex::Female };
        let marital = match age {
            0..=29 => "10",
            30..=59 if rng.chance(0.5) => "40",
            30..=59 => "10",
            _ if rng.chance(0.7) => "30",
            _ => "40",
        };
        return vec![MemberPlan { relation: "02", sex, age, family_name: surname, marital_status: Some(marital) }];
    }
    let head_age = age_in(rng, &HEAD_AGES);
    let head_sex = if rng.chance(0.65) { Sex::Male } else { Sex::Female };
    let single_parent = size == 2 && rng.chance(0.25);
    let mut members = Vec::new();
    let mut mother_age = head_age;
    let mut father_surname = surname.clone();
    if single_parent {
        let marital = if head_age >= 55 { "30" } else { "40" };
        members.push(MemberPlan {
            relation: "02",
            sex: head_sex,
            age: head_age,
            family_name: surname.clone(),
            marital_status: Some(marital),
        });
    } else {
        let spouse_sex = if head_sex == Sex::Male { Sex::Female } else { Sex::Male };
        let spouse_age = if head_sex == Sex::Male {
            head_age.saturating_sub(rng.between(0, 5)).max(20)
        } else {
            (head_age + rng.between(0, 5)).min(99)
        };
        let spouse_surname = names::surname(rng).to_owned();
        if head_sex == Sex::Male {
            mother_age = spouse_age;
        } else {
            father_surname = spouse_surname.clone();
        }
        members.push(MemberPlan {
            relation: "02",
            sex: head_sex,
            age: head_age,
            family_name: surname.clone(),
            marital_status: Some("20"),
        });
        members.push(MemberPlan {
            relation: if spouse_sex == Sex::Male { "11" } else { "12" },
            sex: spouse_sex,
            age: spouse_age,
            family_name: spouse_surname,
            marital_status: Some("20"),
        });
    }
    let remaining = size - members.len() as u64;
    // Three- and four-generation households keep the head's parents.
    let parents = match (size, remaining) {
        (4, 2) if rng.chance(0.4) => 1,
        (5, 3) if rng.chance(0.5) => 2,
        (5, 3) => 1,
        _ => 0,
    };
    let parents = if head_age + 22 > 99 { 0 } else { parents };
    let children = remaining - parents;
    let mut child_plans: Vec<(Sex, u64)> = (0..children)
        .map(|_| {
            let sex = if rng.chance(0.52) { Sex::Male } else { Sex::Female };
            let oldest = mother_age.saturating_sub(20);
            let youngest = mother_age.saturating_sub(40);
            (sex, rng.between(youngest, oldest))
        })
        .collect();
    child_plans.sort_by_key(|plan| std::cmp::Reverse(plan.1));
    let sons = child_plans.iter().filter(|(sex, _)| *sex == Sex::Male).count();
    let daughters = child_plans.len() - sons;
    let (mut son, mut daughter) = (0usize, 0usize);
    for (sex, age) in child_plans {
        let relation = if sex == Sex::Male {
            son += 1;
            match (sons, son) {
                (1, _) if daughters == 0 => "21",
                (_, 1) => "22",
                (_, 2) => "23",
                _ => "24",
            }
        } else {
            daughter += 1;
            match (daughters, daughter) {
                (1, _) if sons == 0 => "31",
                (_, 1) => "32",
                (_, 2) => "33",
                _ => "34",
            }
        };
        members.push(MemberPlan {
            relation,
            sex,
            age,
            family_name: father_surname.clone(),
            marital_status: (age >= 18).then_some("10"),
        });
    }
    for parent in 0..parents {
        let age = (head_age + rng.between(22, 32)).min(99);
        let (relation, sex) = if parents == 2 && parent == 1 || parents == 1 && rng.chance(0.6) {
            ("52", Sex::Female)
        } else {
            ("51", Sex::Male)
        };
        let family_name = if relation == "51" { surname.clone() } else { names::surname(rng).to_owned() };
        members.push(MemberPlan {
            relation,
            sex,
            age,
            family_name,
            marital_status: Some(if parents == 2 { "20" } else { "30" }),
        });
    }
    members
}

/// A street address: road, number, building, unit and flat.
fn address(rng: &mut Rng) -> String {
    let street = rng.pick(&STREETS).copied().unwrap_or("人民路");
    format!(
        "{street}{}号{}幢{}单元{}{:02}室",
        rng.between(1, 399),
        rng.between(1, 30),
        rng.between(1, 4),
        rng.between(1, 18),
        rng.between(1, 4)
    )
}

/// A mobile number.
fn phone(rng: &mut Rng) -> String {
    let prefix = rng.pick(&PHONE_PREFIXES).copied().unwrap_or("138");
    format!("{prefix}{:08}", rng.below(100_000_000))
}

/// Mostly Han; else a minority by its weight.
fn ethnicity(rng: &mut Rng, geography: &Geography) -> Ethnicity {
    if rng.chance(HAN_SHARE) {
        return geography.han;
    }
    geography.minorities.get(rng.weighted(&geography.minority_weights)).copied().unwrap_or(geography.han)
}

/// A stable pseudo-random number for a resident's lasting attributes (a
/// chronic condition), independent of the generation order.
pub(crate) fn trait_of(seed: u64, index: u64, salt: u64) -> u64 {
    mix(mix(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)) ^ index)
}
