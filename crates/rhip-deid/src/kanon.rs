//! k-anonymity: the quasi-identifiers of a person, the equivalence classes
//! they fall into, and the plan that says which persons an export may carry.
//!
//! An export takes two passes over the same snapshot: a [`Census`] counts the
//! classes from the quasi-identifiers alone, then the [`ExportPlan`] it yields
//! turns each person into a record only if the person's class has at least
//! `k` members. Suppression is whole-record: a person of a small class is not
//! in the file at all.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rhip_core::RegionCode;
use serde::Serialize;

use crate::content::{ContentFilter, SourceContent};
use crate::format::{Counts, ExportHeader, ExportRecord, HeaderFacts, RECORD_TYPE};
use crate::rules::{generalise_birth, generalise_region_text, generalise_sex};

/// The `k` of k-anonymity: every equivalence class in an export has at least
/// this many records. Between [`K::MIN`] and [`K::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct K(u32);

/// Why a number is not an acceptable `k`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KError {
    /// Not a whole number in the accepted range.
    #[error("k must be a whole number from {min} to {max}, got {found:?}", min = K::MIN, max = K::MAX)]
    OutOfRange {
        /// What was given.
        found: String,
    },
}

impl K {
    /// The smallest `k` accepted: 1 would protect nobody.
    pub const MIN: u32 = 2;
    /// The largest `k` accepted.
    pub const MAX: u32 = 1000;
    /// The default: classes of five or more.
    pub const DEFAULT: K = K(5);

    /// `k` = `n`, if in range.
    pub fn new(n: u32) -> Result<K, KError> {
        if (K::MIN..=K::MAX).contains(&n) {
            Ok(K(n))
        } else {
            Err(KError::OutOfRange { found: n.to_string() })
        }
    }

    /// Parses a decimal `k` (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<K, KError> {
        text.trim().parse::<u32>().ok().and_then(|n| K::new(n).ok()).ok_or(KError::OutOfRange { found: text.into() })
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for K {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A generalised birth date: the year, the band of persons aged 90 or more,
/// or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Birth {
    /// Born in this year, aged 89 or less on the reference date.
    Year(i32),
    /// Aged 90 or more on the reference date (`"90+"`), year withheld.
    Band90Plus,
    /// No birth date on record.
    Unknown,
}

impl Birth {
    /// The text of the age band.
    pub const BAND_90_PLUS: &'static str = "90+";

    /// The `birth_year` field.
    pub fn year(self) -> Option<i32> {
        match self {
            Birth::Year(year) => Some(year),
            Birth::Band90Plus | Birth::Unknown => None,
        }
    }

    /// The `age_band` field.
    pub fn band(self) -> Option<&'static str> {
        match self {
            Birth::Band90Plus => Some(Birth::BAND_90_PLUS),
            Birth::Year(_) | Birth::Unknown => None,
        }
    }

    /// From the two fields of a record; `None` when both are set or the band
    /// is not one this format knows.
    pub fn from_fields(year: Option<i32>, band: Option<&str>) -> Option<Birth> {
        match (year, band) {
            (Some(year), None) => Some(Birth::Year(year)),
            (None, Some(Birth::BAND_90_PLUS)) => Some(Birth::Band90Plus),
            (None, None) => Some(Birth::Unknown),
            _ => None,
        }
    }
}

impl fmt::Display for Birth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Birth::Year(year) => write!(f, "birth_year={year}"),
            Birth::Band90Plus => write!(f, "age_band={}", Birth::BAND_90_PLUS),
            Birth::Unknown => write!(f, "birth unknown"),
        }
    }
}

/// An equivalence class: the generalised quasi-identifiers a record shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassKey {
    /// GB/T 2261.1 sex code.
    pub sex: String,
    /// Birth year, age band or unknown.
    pub birth: Birth,
    /// Municipal-level region code.
    pub region: String,
}

impl fmt::Display for ClassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sex={} {} region={}", self.sex, self.birth, self.region)
    }
}

/// A person's quasi-identifiers as stored (before generalisation).
#[derive(Clone, Copy, Debug)]
pub struct QuasiIdentifiers<'a> {
    /// Stored sex code.
    pub sex: &'a str,
    /// Stored birth date.
    pub birth_date: Option<NaiveDate>,
    /// Stored home region code.
    pub home_region: &'a str,
}

/// The first pass: counts the equivalence classes of the persons to export.
#[derive(Clone, Debug)]
pub struct Census {
    export_region: RegionCode,
    generated_at: DateTime<Utc>,
    reference_date: NaiveDate,
    classes: HashMap<ClassKey, u64>,
    persons: u64,
}

impl Census {
    /// An empty census for an export of `export_region` made at
    /// `generated_at`; ages are taken on that day (China Standard Time).
    pub fn new(export_region: RegionCode, generated_at: DateTime<Utc>) -> Census {
        let reference_date = (generated_at + chrono::Duration::hours(8)).date_naive();
        Census { export_region, generated_at, reference_date, classes: HashMap::new(), persons: 0 }
    }

    /// The day ages are taken on.
    pub fn reference_date(&self) -> NaiveDate {
        self.reference_date
    }

    /// The class a person falls into.
    pub fn class_of(&self, person: &QuasiIdentifiers<'_>) -> ClassKey {
        class_of(person, self.export_region, self.reference_date)
    }

    /// Counts one person.
    pub fn add(&mut self, person: &QuasiIdentifiers<'_>) {
        *self.classes.entry(self.class_of(person)).or_insert(0) += 1;
        self.persons += 1;
    }

    /// The plan for `k`: which classes are exported and which suppressed.
    pub fn plan(self, k: K) -> ExportPlan {
        let threshold = u64::from(k.get());
        let mut counts = Counts { persons_considered: self.persons, ..Counts::default() };
        for size in self.classes.values() {
            counts.classes += 1;
            if *size >= threshold {
                counts.records_exported += size;
                counts.classes_exported += 1;
            } else {
                counts.records_suppressed += size;
                counts.classes_suppressed += 1;
            }
        }
        ExportPlan {
            k,
            export_region: self.export_region,
            generated_at: self.generated_at,
            reference_date: self.reference_date,
            classes: self.classes,
            counts,
            emitted: 0,
        }
    }
}

fn class_of(person: &QuasiIdentifiers<'_>, export_region: RegionCode, reference: NaiveDate) -> ClassKey {
    ClassKey {
        sex: generalise_sex(person.sex).to_string(),
        birth: generalise_birth(person.birth_date, reference),
        region: generalise_region_text(person.home_region, export_region).as_str().to_string(),
    }
}

/// The second pass: turns the persons of classes of at least `k` into
/// records, and nobody else.
#[derive(Clone, Debug)]
pub struct ExportPlan {
    k: K,
    export_region: RegionCode,
    generated_at: DateTime<Utc>,
    reference_date: NaiveDate,
    classes: HashMap<ClassKey, u64>,
    counts: Counts,
    emitted: u64,
}

impl ExportPlan {
    /// The `k` of this export.
    pub fn k(&self) -> K {
        self.k
    }

    /// What the census found and what will be exported.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The day ages are taken on.
    pub fn reference_date(&self) -> NaiveDate {
        self.reference_date
    }

    /// The header line that states what this export did.
    pub fn header(&self, facts: &HeaderFacts, filter: &dyn ContentFilter) -> ExportHeader {
        ExportHeader::new(
            facts,
            self.export_region,
            self.generated_at,
            self.reference_date,
            self.k,
            self.counts.clone(),
            filter.describe(),
        )
    }

    /// Whether a person's class is exported (so its clinical rows are worth
    /// reading).
    pub fn is_exported(&self, person: &QuasiIdentifiers<'_>) -> bool {
        let class = class_of(person, self.export_region, self.reference_date);
        self.classes.get(&class).is_some_and(|size| *size >= u64::from(self.k.get()))
    }

    /// The record of one person, or `None` when the person's class has fewer
    /// than `k` members (or was not in the census). `pseudonym` turns the EMPI
    /// id into the person's pseudonym; `filter` may then drop content.
    pub fn record(
        &mut self,
        empi_id: &str,
        person: &QuasiIdentifiers<'_>,
        content: SourceContent,
        pseudonym: &dyn Fn(&str) -> String,
        filter: &dyn ContentFilter,
    ) -> Option<ExportRecord> {
        let class = class_of(person, self.export_region, self.reference_date);
        let size = self.classes.get(&class).copied().unwrap_or(0);
        if size < u64::from(self.k.get()) {
            return None;
        }
        let mut content = content.generalise();
        filter.filter(&mut content);
        self.emitted += 1;
        Some(ExportRecord {
            line_type: RECORD_TYPE.to_string(),
            pseudonym: pseudonym(empi_id),
            sex: class.sex,
            birth_year: class.birth.year(),
            age_band: class.birth.band().map(str::to_string),
            region: class.region,
            encounters: content.encounters,
            results: content.results,
            services: content.services,
        })
    }

    /// Records made so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Whether exactly the records the header announces were made (the two
    /// passes saw the same persons).
    pub fn is_complete(&self) -> bool {
        self.emitted == self.counts.records_exported
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::KeepAll;
    use proptest::prelude::*;

    fn region(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T02:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn person(sex: &'static str, year: i32, home: &'static str) -> QuasiIdentifiers<'static> {
        QuasiIdentifiers { sex, birth_date: NaiveDate::from_ymd_opt(year, 3, 1), home_region: home }
    }

    #[test]
    fn k_is_bounded() {
        assert_eq!(K::new(5).map(K::get), Ok(5));
        assert!(K::new(1).is_err());
        assert!(K::new(1001).is_err());
        assert_eq!(K::parse(" 7 ").map(K::get), Ok(7));
        let error = K::parse("five").unwrap_err().to_string();
        assert_eq!(error, "k must be a whole number from 2 to 1000, got \"five\"");
        assert!(K::parse("-3").is_err());
    }

    #[test]
    fn small_classes_are_suppressed_whole() {
        let mut census = Census::new(region("330106"), at());
        let mut people = Vec::new();
        for _ in 0..5 {
            people.push(person("1", 1980, "330106"));
        }
        people.push(person("2", 1980, "330106"));
        for p in &people {
            census.add(p);
        }
        let mut plan = census.plan(K::DEFAULT);
        assert_eq!(plan.counts().persons_considered, 6);
        assert_eq!(plan.counts().records_exported, 5);
        assert_eq!(plan.counts().records_suppressed, 1);
        assert_eq!((plan.counts().classes, plan.counts().classes_suppressed), (2, 1));
        let hash = |id: &str| format!("p-{id}");
        let records: Vec<_> = people
            .iter()
            .enumerate()
            .filter_map(|(i, p)| plan.record(&i.to_string(), p, SourceContent::default(), &hash, &KeepAll))
            .collect();
        assert_eq!(records.len(), 5);
        assert!(records.iter().all(|r| r.sex == "1" && r.region == "330100" && r.birth_year == Some(1980)));
        assert!(plan.is_complete());
        // A person the census never saw is not exported.
        assert!(plan.record("x", &person("1", 1990, "330106"), SourceContent::default(), &hash, &KeepAll).is_none());
    }

    proptest! {
        #[test]
        fn every_exported_class_has_at_least_k_records(
            people in proptest::collection::vec((0usize..3, 1930i32..2020, 0usize..3), 0..200),
            k in 2u32..8,
        ) {
            let sexes = ["1", "2", "9"];
            let homes = ["330106", "330108", "110101"];
            let persons: Vec<QuasiIdentifiers<'static>> =
                people.iter().map(|(s, y, h)| person(sexes[*s], *y, homes[*h])).collect();
            let mut census = Census::new(region("330000"), at());
            for p in &persons {
                census.add(p);
            }
            let mut plan = census.plan(K::new(k).unwrap());
            let hash = |id: &str| id.to_string();
            let mut classes: HashMap<(String, Option<i32>, Option<String>, String), u64> = HashMap::new();
            for (i, p) in persons.iter().enumerate() {
                if let Some(r) = plan.record(&i.to_string(), p, SourceContent::default(), &hash, &KeepAll) {
                    *classes.entry((r.sex, r.birth_year, r.age_band, r.region)).or_insert(0) += 1;
                }
            }
            prop_assert!(plan.is_complete());
            prop_assert!(classes.values().all(|size| *size >= u64::from(k)));
            let counts = plan.counts();
            prop_assert_eq!(counts.records_exported + counts.records_suppressed, persons.len() as u64);
            prop_assert_eq!(classes.values().sum::<u64>(), counts.records_exported);
        }
    }
}
