//! Synthetic populations for RHIP: residents with valid citizen IDs and
//! households, the facilities of each county, and the hospital traffic those
//! facilities send to their county node, every message labelled with the
//! answer a correct node gives.
//!
//! The demo, the benchmarks and the end-to-end tests need people and
//! traffic that look like a region's without being anyone's. Everything here
//! is synthetic: names are drawn from lists of common names, citizen IDs are
//! generated (valid checksums, made-up sequence numbers), addresses use street
//! names found in every Chinese city.
//!
//! Determinism and scale: resident *i* is computed from `(seed, i)` alone (a
//! block of 64 residents at most is generated to get it), traffic episode *e*
//! from `(seed, e)`, so a population of 10 million is streamed, never held,
//! and the same seed gives the same bytes on every machine. See
//! [`Synth::resident`] for how citizen IDs stay unique without remembering
//! them.
//!
//! **Architecture Invariant:** no I/O and no clock: the reference date is
//! part of the [`Config`], so output depends on the configuration only. The
//! CLI (`rhip synth`) writes the files.

mod clinical;
mod documents;
mod facilities;
mod hl7;
mod names;
mod population;
mod rng;
mod traffic;

use chrono::NaiveDate;
use rhip_core::{RegionCode, Tier};

pub use facilities::{Facility, FacilityRecord};
pub use population::{Household, HouseholdMemberRecord, HouseholdRecord, ImportRecord, Resident, BLOCK, MAX_RESIDENTS};
pub use traffic::{Channel, Expected, ExpectedRecord, Invalid, Scenario, Submission, Traffic};

use population::Geography;

/// The reference date of a population when none is given: ages are counted
/// to it and traffic happens in the year before it. Fixed, so output never
/// depends on the day it is generated; it must not be in the future, or
/// birth dates of the last year would be refused.
pub fn default_as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
}

/// A home county of the population and its weight (its share of households).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct County {
    /// A current county-level GB/T 2260 code.
    pub region: RegionCode,
    /// Relative share of households (at least 1).
    pub weight: u32,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Everything follows from the seed.
    pub seed: u64,
    /// Number of residents, 1 to [`MAX_RESIDENTS`].
    pub residents: u64,
    /// Where residents live, and where the facilities are.
    pub counties: Vec<County>,
    /// Traffic episodes; default half the residents, and never fewer than the
    /// scripted ones (13 per county).
    pub episodes: Option<u64>,
    /// The reference date (see [`default_as_of`]).
    pub as_of: NaiveDate,
}

impl Config {
    /// A configuration with equally weighted counties, default episodes and
    /// reference date.
    pub fn new(seed: u64, residents: u64, counties: &[RegionCode]) -> Config {
        Config {
            seed,
            residents,
            counties: counties.iter().map(|region| County { region: *region, weight: 1 }).collect(),
            episodes: None,
            as_of: default_as_of(),
        }
    }
}

/// Why a configuration cannot be generated.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SynthError {
    /// Zero residents asked for.
    #[error("residents must be at least 1")]
    NoResidents,
    /// More residents than citizen IDs can be kept unique for.
    #[error("residents must be at most {max}, got {requested}")]
    TooManyResidents {
        /// What was asked for.
        requested: u64,
        /// [`MAX_RESIDENTS`].
        max: u64,
    },
    /// No county to live in.
    #[error("at least one county is needed for residents to live in")]
    NoCounties,
    /// A region that is not a current county-level division.
    #[error("{0} is not a current county-level region (GB/T 2260)")]
    NotACounty(String),
    /// A county listed twice.
    #[error("county {0} is listed twice")]
    DuplicateCounty(String),
    /// A county with weight 0.
    #[error("county {0} has weight 0")]
    ZeroWeight(String),
    /// A reference date whose oldest residents would be born before 1880.
    #[error("the reference date {0} is too early (residents up to 100 years old must be born after 1880)")]
    AsOfTooEarly(NaiveDate),
    /// An embedded code table lacks a code the generator uses (a build defect).
    #[error("reference data: {0}")]
    Reference(String),
}

/// A synthetic population: residents, facilities and traffic, all computed
/// on demand from the configuration.
#[derive(Clone, Debug)]
pub struct Synth {
    seed: u64,
    residents: u64,
    episodes: u64,
    as_of: NaiveDate,
    geography: Geography,
    facilities: Vec<Facility>,
}

impl Synth {
    /// Checks the configuration and prepares the fixed tables (birth regions,
    /// facilities).
    pub fn new(config: Config) -> Result<Synth, SynthError> {
        if config.residents == 0 {
            return Err(SynthError::NoResidents);
        }
        if config.residents > MAX_RESIDENTS {
            return Err(SynthError::TooManyResidents { requested: config.residents, max: MAX_RESIDENTS });
        }
        if config.counties.is_empty() {
            return Err(SynthError::NoCounties);
        }
        let mut counties = Vec::new();
        let mut weights = Vec::new();
        for county in &config.counties {
            let code = county.region.as_str().to_owned();
            if county.region.tier() != Tier::County || !county.region.is_current() {
                return Err(SynthError::NotACounty(code));
            }
            if counties.contains(&county.region) {
                return Err(SynthError::DuplicateCounty(code));
            }
            if county.weight == 0 {
                return Err(SynthError::ZeroWeight(code));
            }
            counties.push(county.region);
            weights.push(county.weight);
        }
        if chrono::Datelike::year(&config.as_of) < 1990 {
            return Err(SynthError::AsOfTooEarly(config.as_of));
        }
        let facilities = counties.iter().flat_map(|county| facilities::of_county(*county)).collect();
        let scripted = traffic::scripted(counties.len());
        let episodes = config.episodes.unwrap_or_else(|| config.residents.div_ceil(2)).max(scripted);
        let geography = Geography::new(counties, weights).map_err(SynthError::Reference)?;
        Ok(Synth {
            seed: config.seed,
            residents: config.residents,
            episodes,
            as_of: config.as_of,
            geography,
            facilities,
        })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of residents.
    pub fn residents(&self) -> u64 {
        self.residents
    }

    /// Number of traffic episodes.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// The reference date.
    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// The home counties, in configuration order.
    pub fn counties(&self) -> &[RegionCode] {
        &self.geography.counties
    }

    /// A short tag of the seed (4 hex digits in control ids, visit numbers and
    /// document ids), so traffic of two seeds sent to one node does not look
    /// like resends.
    pub fn tag(&self) -> u16 {
        (rng::mix(self.seed) & 0xFFFF) as u16
    }

    /// Resident `index`, or `None` past the end. Costs one block (64
    /// residents) of work, whatever the index: nothing before it is generated.
    ///
    /// Citizen IDs never repeat up to [`MAX_RESIDENTS`], without a record of
    /// those issued: the birth year follows the household, while the day of
    /// the year and the sequence number come from a bijection of
    /// `index mod 182 500` (365 days × 500 sequences per sex), and residents
    /// of different `index / 182 500` classes are born in disjoint sets of
    /// regions (class 0 mostly in their home county).
    pub fn resident(&self, index: u64) -> Option<Resident> {
        if index >= self.residents {
            return None;
        }
        self.block_residents(index / BLOCK).into_iter().find(|resident| resident.index == index)
    }

    /// The residents of block `block` that belong to the population.
    pub(crate) fn block_residents(&self, block: u64) -> Vec<Resident> {
        self.block_households(block).into_iter().flat_map(|household| household.members).collect()
    }

    /// The households of block `block`, cut at the end of the population.
    fn block_households(&self, block: u64) -> Vec<Household> {
        let mut households = population::block(self.seed, self.as_of, &self.geography, block);
        for household in &mut households {
            household.members.retain(|member| member.index < self.residents);
        }
        households.retain(|household| !household.members.is_empty());
        households
    }

    /// The household whose number is `number` (the index of its first
    /// member), or `None` when no household starts there.
    pub fn household(&self, number: u64) -> Option<Household> {
        if number >= self.residents {
            return None;
        }
        self.block_households(number / BLOCK).into_iter().find(|household| household.number == number)
    }

    /// Every resident in index order, one block in memory at a time.
    pub fn all_residents(&self) -> impl Iterator<Item = Resident> + '_ {
        self.households().flat_map(|household| household.members)
    }

    /// Every household in order, one block in memory at a time.
    pub fn households(&self) -> impl Iterator<Item = Household> + '_ {
        (0..self.residents.div_ceil(BLOCK)).flat_map(move |block| self.block_households(block))
    }

    /// Every facility, county by county: hospitals `H…001` and `H…002`, a
    /// community health centre `S…001`, clinics `C…001` and `C…002`.
    pub fn facilities(&self) -> &[Facility] {
        &self.facilities
    }

    /// The traffic: every episode's submissions in order, one episode in
    /// memory at a time.
    pub fn traffic(&self) -> Traffic<'_> {
        Traffic::new(self)
    }

    /// The submissions of episode `number` alone (empty past the end).
    pub fn episode(&self, number: u64) -> Vec<Submission> {
        if number >= self.episodes {
            return Vec::new();
        }
        traffic::episode(self, number)
    }
}

#[cfg(test)]
mod tests;
