//! Recomputing an export's equivalence classes from the file alone, so that
//! anyone holding it (the commission, an auditor, the node itself before it
//! lets the file go) can tell whether it keeps its promise.
//!
//! Lines are fed one at a time ([`Checker::feed`]); the caller reads them.
//! A line that is not part of the format is an error ([`CheckError`]); a
//! file in the format that breaks a rule is a report that did not pass
//! ([`CheckReport::passed`]): a class below `k`, a birth year that implies an
//! age of 90 or more, a region below municipal level or outside the export's
//! region, a repeated pseudonym (which would pad a class), or counts that
//! differ from the header's.

use std::collections::{BTreeMap, HashSet};

use chrono::Datelike;
use rhip_core::{RegionCode, Tier};
use serde::Serialize;

use crate::format::{ExportHeader, ExportRecord, FORMAT, FORMAT_VERSION, HEADER_TYPE, RECORD_TYPE};
use crate::kanon::{Birth, ClassKey, K};
use crate::rules::{generalise_region, OLDEST_EXACT_AGE};

/// Most rule problems listed one by one in a report (all are counted).
const PROBLEMS_LISTED: usize = 100;

/// A file that is not an export of this format.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// A line is not what the format says.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// No header line at all.
    #[error("the file is empty: an export starts with a header line")]
    Empty,
}

/// One equivalence class and its size, as a report lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassSize {
    /// Sex code.
    pub sex: String,
    /// Birth year, if the class has one.
    pub birth_year: Option<i32>,
    /// Age band, if the class has one.
    pub age_band: Option<String>,
    /// Region code.
    pub region: String,
    /// Records in the class.
    pub size: u64,
}

impl std::fmt::Display for ClassSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let birth = Birth::from_fields(self.birth_year, self.age_band.as_deref()).unwrap_or(Birth::Unknown);
        let key = ClassKey { sex: self.sex.clone(), birth, region: self.region.clone() };
        write!(f, "{key} has {} record(s)", self.size)
    }
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// No class below `k` and no other problem.
    pub passed: bool,
    /// The `k` checked against (the header's unless one was given).
    pub k: u32,
    /// The `k` the header claims.
    pub header_k: u32,
    /// The export's region.
    pub export_region: String,
    /// Record lines read.
    pub records: u64,
    /// Equivalence classes found.
    pub classes: u64,
    /// The smallest class's size (none for an empty export).
    pub smallest_class: Option<u64>,
    /// Every class with fewer than `k` records, smallest first.
    pub below_k: Vec<ClassSize>,
    /// Other rule problems (at most 100 listed).
    pub problems: Vec<String>,
    /// Other rule problems in all.
    pub problems_total: u64,
}

/// Reads an export line by line.
#[derive(Debug)]
pub struct Checker {
    k: Option<K>,
    line: u64,
    header: Option<ExportHeader>,
    export_region: Option<RegionCode>,
    classes: BTreeMap<ClassKey, u64>,
    pseudonyms: HashSet<[u8; 32]>,
    records: u64,
    problems: Vec<String>,
    problems_total: u64,
}

impl Checker {
    /// A checker against `k`, or against the header's `k` when `None`.
    pub fn new(k: Option<K>) -> Checker {
        Checker {
            k,
            line: 0,
            header: None,
            export_region: None,
            classes: BTreeMap::new(),
            pseudonyms: HashSet::new(),
            records: 0,
            problems: Vec::new(),
            problems_total: 0,
        }
    }

    /// Reads the next line (without its line break). Blank lines are skipped.
    pub fn feed(&mut self, text: &str) -> Result<(), CheckError> {
        self.line += 1;
        let line = self.line;
        if text.trim().is_empty() {
            return Ok(());
        }
        let fail = |message: String| CheckError::Line { line, message };
        match &self.header {
            None => {
                let header: ExportHeader = serde_json::from_str(text)
                    .map_err(|e| fail(format!("not a header line of {FORMAT} version {FORMAT_VERSION}: {e}")))?;
                if header.line_type != HEADER_TYPE || header.format != FORMAT {
                    return Err(fail(format!("the header's type and format must be {HEADER_TYPE:?} and {FORMAT:?}")));
                }
                if header.format_version != FORMAT_VERSION {
                    return Err(fail(format!(
                        "format version {} is not one this checker reads ({FORMAT_VERSION})",
                        header.format_version
                    )));
                }
                K::new(header.k).map_err(|e| fail(format!("header k: {e}")))?;
                let region =
                    RegionCode::parse(&header.export_region).map_err(|e| fail(format!("header export_region: {e}")))?;
                self.export_region = Some(region);
                self.header = Some(header);
                Ok(())
            }
            Some(header) => {
                let record: ExportRecord =
                    serde_json::from_str(text).map_err(|e| fail(format!("not a record line: {e}")))?;
                if record.line_type != RECORD_TYPE {
                    return Err(fail(format!("a record's type must be {RECORD_TYPE:?}")));
                }
                let reference_year = header.reference_date.year();
                self.record(line, record, reference_year);
                Ok(())
            }
        }
    }

    fn problem(&mut self, message: String) {
        self.problems_total += 1;
        if self.problems.len() < PROBLEMS_LISTED {
            self.problems.push(message);
        }
    }

    fn record(&mut self, line: u64, record: ExportRecord, reference_year: i32) {
        self.records += 1;
        match pseudonym_bytes(&record.pseudonym) {
            None => self.problem(format!("line {line}: the pseudonym is not 64 lowercase hex digits")),
            Some(bytes) => {
                if !self.pseudonyms.insert(bytes) {
                    self.problem(format!("line {line}: pseudonym {} appears more than once", record.pseudonym));
                }
            }
        }
        let birth = match Birth::from_fields(record.birth_year, record.age_band.as_deref()) {
            Some(birth) => birth,
            None => {
                self.problem(format!("line {line}: birth_year and age_band must not both be set (band \"90+\" only)"));
                Birth::Unknown
            }
        };
        if let Birth::Year(year) = birth {
            // Born in `year`, a person is at least reference_year - year - 1 years old.
            if i64::from(reference_year) - i64::from(year) - 1 > i64::from(OLDEST_EXACT_AGE) {
                self.problem(format!(
                    "line {line}: birth year {year} means an age of 90 or more on the reference date (age band 90+ expected)"
                ));
            }
        }
        match RegionCode::parse(&record.region).or_else(|_| RegionCode::parse_historical(&record.region)) {
            Err(e) => self.problem(format!("line {line}: region: {e}")),
            Ok(region) if region.tier() == Tier::County => {
                self.problem(format!("line {line}: region {region} is a county, not municipal level or higher"))
            }
            Ok(region) => {
                if let Some(export_region) = self.export_region {
                    if !generalise_region(export_region).contains(&region) {
                        self.problem(format!("line {line}: region {region} lies outside the export's region"));
                    }
                }
            }
        }
        let key = ClassKey { sex: record.sex, birth, region: record.region };
        *self.classes.entry(key).or_insert(0) += 1;
    }

    /// The report, once every line was fed.
    pub fn finish(mut self) -> Result<CheckReport, CheckError> {
        let Some(header) = self.header.take() else {
            return Err(CheckError::Empty);
        };
        let k = self.k.map_or(header.k, K::get);
        if header.counts.records_exported != self.records {
            self.problem(format!(
                "the header announces {} records, the file holds {}",
                header.counts.records_exported, self.records
            ));
        }
        if header.counts.classes_exported != self.classes.len() as u64 {
            self.problem(format!(
                "the header announces {} classes, the file holds {}",
                header.counts.classes_exported,
                self.classes.len()
            ));
        }
        let mut below_k: Vec<ClassSize> = self
            .classes
            .iter()
            .filter(|(_, size)| **size < u64::from(k))
            .map(|(key, size)| ClassSize {
                sex: key.sex.clone(),
                birth_year: key.birth.year(),
                age_band: key.birth.band().map(str::to_string),
                region: key.region.clone(),
                size: *size,
            })
            .collect();
        below_k.sort_by_key(|class| class.size);
        Ok(CheckReport {
            passed: below_k.is_empty() && self.problems_total == 0,
            k,
            header_k: header.k,
            export_region: header.export_region,
            records: self.records,
            classes: self.classes.len() as u64,
            smallest_class: self.classes.values().min().copied(),
            below_k,
            problems: self.problems,
            problems_total: self.problems_total,
        })
    }
}

/// The 32 bytes of a pseudonym written as 64 lowercase hex digits.
fn pseudonym_bytes(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = value(digits[2 * i])? << 4 | value(digits[2 * i + 1])?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{KeepAll, SourceContent};
    use crate::format::HeaderFacts;
    use crate::kanon::{Census, QuasiIdentifiers};
    use chrono::{DateTime, NaiveDate, Utc};

    /// An export of six persons: five men born 1980, one woman born 1980,
    /// one woman born 1930 (aged 95), made with `k`.
    fn export(k: u32) -> Vec<String> {
        let region = RegionCode::parse("330106").unwrap();
        let at = DateTime::parse_from_rfc3339("2025-06-01T02:00:00Z").unwrap().with_timezone(&Utc);
        let born = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        let mut people = vec![];
        for _ in 0..5 {
            people.push(QuasiIdentifiers { sex: "1", birth_date: born(1980, 1, 1), home_region: "330106" });
        }
        people.push(QuasiIdentifiers { sex: "2", birth_date: born(1980, 1, 1), home_region: "330106" });
        people.push(QuasiIdentifiers { sex: "2", birth_date: born(1930, 1, 1), home_region: "330106" });
        let mut census = Census::new(region, at);
        people.iter().for_each(|p| census.add(p));
        let mut plan = census.plan(K::new(k).unwrap());
        let facts = HeaderFacts { node_region: region };
        let mut lines = vec![plan.header(&facts, &KeepAll).to_line().unwrap()];
        let hash = |id: &str| format!("{:0>64}", id);
        for (i, p) in people.iter().enumerate() {
            if let Some(record) = plan.record(&i.to_string(), p, SourceContent::default(), &hash, &KeepAll) {
                lines.push(record.to_line().unwrap());
            }
        }
        lines
    }

    fn check(lines: &[String], k: Option<u32>) -> Result<CheckReport, CheckError> {
        let mut checker = Checker::new(k.map(|k| K::new(k).unwrap()));
        for line in lines {
            checker.feed(line)?;
        }
        checker.finish()
    }

    #[test]
    fn an_export_passes_its_own_check() {
        let lines = export(5);
        assert_eq!(lines.len(), 6, "the woman of 1980 and the woman of 90+ are suppressed");
        let report = check(&lines, None).unwrap();
        assert!(report.passed, "{report:?}");
        assert_eq!((report.k, report.records, report.classes, report.smallest_class), (5, 5, 1, Some(5)));
        // With k = 1 ... not allowed; with k = 2 everyone is in a class of one or five.
        let lines = export(2);
        assert_eq!(lines.len(), 6);
        // Checked against a larger k, the same file fails and names the class.
        let report = check(&export(5), Some(6)).unwrap();
        assert!(!report.passed);
        assert_eq!(report.below_k[0].to_string(), "sex=1 birth_year=1980 region=330100 has 5 record(s)");
    }

    #[test]
    fn tampering_is_found() {
        let lines = export(5);
        // A copied record repeats a pseudonym and breaks the header's count.
        let mut padded = lines.clone();
        padded.push(lines[1].clone());
        let report = check(&padded, None).unwrap();
        assert!(!report.passed);
        assert!(report.problems.iter().any(|p| p.contains("appears more than once")), "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("announces 5 records")), "{report:?}");
        // One record changed to a woman: two classes below k, the smaller first.
        let mut changed = lines.clone();
        changed[1] = changed[1].replace("\"sex\":\"1\"", "\"sex\":\"2\"");
        let report = check(&changed, None).unwrap();
        let sizes: Vec<(&str, u64)> = report.below_k.iter().map(|c| (c.sex.as_str(), c.size)).collect();
        assert_eq!(sizes, [("2", 1), ("1", 4)]);
        // An exact old year, a county region.
        let mut old = lines.clone();
        old[1] = old[1].replace("\"birth_year\":1980", "\"birth_year\":1930");
        old[2] = old[2].replace("330100", "330106");
        let report = check(&old, None).unwrap();
        assert!(report.problems.iter().any(|p| p.contains("birth year 1930")), "{report:?}");
        assert!(report.problems.iter().any(|p| p.contains("is a county")), "{report:?}");
    }

    #[test]
    fn other_files_are_refused_naming_the_line() {
        assert_eq!(check(&[], None), Err(CheckError::Empty));
        let error = check(&["{\"type\":\"person\"}".to_string()], None).unwrap_err().to_string();
        assert!(error.starts_with("line 1: not a header line"), "{error}");
        let mut lines = export(5);
        lines[2] = "{\"type\":\"person\",\"name\":\"张三\"}".into();
        let error = check(&lines, None).unwrap_err().to_string();
        assert!(error.starts_with("line 3: not a record line"), "{error}");
    }

    #[test]
    fn pseudonyms_are_hex() {
        assert!(pseudonym_bytes(&"ab".repeat(32)).is_some());
        assert!(pseudonym_bytes(&"AB".repeat(32)).is_none());
        assert!(pseudonym_bytes("ab").is_none());
    }
}
