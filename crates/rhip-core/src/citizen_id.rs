//! Citizen identity numbers (公民身份号码, GB 11643-1999) and their agreement with
//! submitted demographics.
//!
//! The number is the strongest key the master patient index has: exact linking happens
//! on it, and it carries the birth date and sex. So it is checked completely before a
//! person is linked by it: shape, region prefix (any GB/T 2260 code since 1981, since the
//! prefix is the code at registration), a real and plausible birth date, and the
//! ISO 7064 MOD 11-2 check character.

use chrono::{Datelike, NaiveDate, Utc};

use crate::names::string_newtype_traits;
use crate::region::RegionCode;
use crate::value_domain::Sex;

/// A validated 18-character citizen identity number (check character `X` upper-case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CitizenId(String);

/// Why a text is not a valid citizen identity number.
///
/// Positions are 1-based, as an integration engineer counts characters on the card.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CitizenIdError {
    /// Not 18 characters (15-digit first-generation numbers are not accepted).
    #[error("citizen ID must be 18 characters, got {found}")]
    Length {
        /// The number of characters received.
        found: usize,
    },
    /// One of the first 17 characters is not a digit.
    #[error("citizen ID character {position} must be a digit 0-9 (only the 18th may be X)")]
    NonDigit {
        /// 1-based position of the offending character.
        position: usize,
    },
    /// The 18th character is neither a digit nor `X`.
    #[error("citizen ID check character (18th) must be a digit 0-9 or X")]
    BadCheckCharacter,
    /// The first six digits are not a GB/T 2260 code of any year since 1981.
    #[error("citizen ID region prefix {0} is not a GB/T 2260 division code of any year since 1981")]
    UnknownRegion(String),
    /// Characters 7–14 are not a real calendar date on or after 1880-01-01.
    #[error("citizen ID birth date {0} (characters 7-14, YYYYMMDD) is not a real date on or after 18800101")]
    InvalidBirthDate(String),
    /// Characters 7–14 are a date after today (UTC).
    #[error("citizen ID birth date {0} (characters 7-14, YYYYMMDD) is in the future")]
    FutureBirthDate(String),
    /// The 18th character does not match the one computed from the first 17.
    #[error("citizen ID check character is {found} but the number computes to {expected} (ISO 7064 MOD 11-2)")]
    Checksum {
        /// The check character computed from the first 17 digits.
        expected: char,
        /// The check character received.
        found: char,
    },
}

/// ISO 7064 MOD 11-2 weights (2^(17-i) mod 11) for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK_TABLE: [u8; 11] = *b"10X98765432";
/// The earliest birth date accepted: no living record predates it.
const EARLIEST_BIRTH: (i32, u32, u32) = (1880, 1, 1);

/// The check character of 17 ASCII digits.
fn check_char_of(digits: &[u8]) -> char {
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(digit, weight)| u32::from(digit - b'0') * weight).sum();
    char::from(CHECK_TABLE[(sum % 11) as usize])
}

impl CitizenId {
    /// Parses and fully validates a number, with "today" taken from the system clock (UTC).
    ///
    /// Surrounding whitespace is ignored and a lower-case `x` is accepted (and stored
    /// upper-case). Checks, in order: length 18, first 17 digits, last digit or `X`,
    /// region prefix known (current or retired), birth date real, not before 1880-01-01
    /// and not after today, check character.
    pub fn parse(s: &str) -> Result<CitizenId, CitizenIdError> {
        CitizenId::parse_as_of(s, Utc::now().date_naive())
    }

    /// [`parse`](Self::parse) with an explicit "today", for reproducible tests and for
    /// re-validating old records as of their submission date.
    pub fn parse_as_of(s: &str, today: NaiveDate) -> Result<CitizenId, CitizenIdError> {
        let trimmed = s.trim();
        let length = trimmed.chars().count();
        if length != 18 {
            return Err(CitizenIdError::Length { found: length });
        }
        // 18 characters; from here on, non-ASCII characters fail the digit checks.
        let chars: Vec<char> = trimmed.chars().collect();
        if let Some(index) = chars[..17].iter().position(|c| !c.is_ascii_digit()) {
            return Err(CitizenIdError::NonDigit { position: index + 1 });
        }
        let found = chars[17].to_ascii_uppercase();
        if !(found.is_ascii_digit() || found == 'X') {
            return Err(CitizenIdError::BadCheckCharacter);
        }
        let normalised: String = chars[..17].iter().chain([&found]).collect();

        let prefix = &normalised[..6];
        if RegionCode::parse_historical(prefix).is_err() {
            return Err(CitizenIdError::UnknownRegion(prefix.to_owned()));
        }

        let date_text = &normalised[6..14];
        let birth = birth_date_of(date_text)
            .filter(|date| {
                let (y, m, d) = EARLIEST_BIRTH;
                NaiveDate::from_ymd_opt(y, m, d).is_some_and(|earliest| *date >= earliest)
            })
            .ok_or_else(|| CitizenIdError::InvalidBirthDate(date_text.to_owned()))?;
        if birth > today {
            return Err(CitizenIdError::FutureBirthDate(date_text.to_owned()));
        }

        let expected = check_char_of(&normalised.as_bytes()[..17]);
        if expected != found {
            return Err(CitizenIdError::Checksum { expected, found });
        }
        Ok(CitizenId(normalised))
    }

    /// The full 18-character number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region of registration (characters 1–6); may be a retired code.
    pub fn region_prefix(&self) -> RegionCode {
        // Validated at parse time; the national fallback is unreachable.
        RegionCode::parse_historical(&self.0[..6]).unwrap_or(RegionCode::NATIONAL)
    }

    /// The birth date (characters 7–14).
    pub fn birth_date(&self) -> NaiveDate {
        // Validated at parse time; the fallback is unreachable.
        birth_date_of(&self.0[6..14]).unwrap_or_default()
    }

    /// The sex given by the parity of the 17th digit: odd male, even female.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The sequence number (characters 15–17), 0–999.
    pub fn sequence(&self) -> u16 {
        self.0.as_bytes()[14..17].iter().fold(0, |n, digit| n * 10 + u16::from(digit - b'0'))
    }

    /// The ISO 7064 MOD 11-2 check character for 17 digits, or `None` if `first17` is
    /// not exactly 17 ASCII digits. Used to build valid test numbers and in error hints.
    pub fn check_character(first17: &str) -> Option<char> {
        let bytes = first17.as_bytes();
        (bytes.len() == 17 && bytes.iter().all(u8::is_ascii_digit)).then(|| check_char_of(bytes))
    }

    /// Builds a number with a correct check character, for synthetic data and tests.
    ///
    /// `sequence` is taken modulo 1000 (its parity gives the sex) and the year modulo
    /// 10000. The result is a valid number when `region` is a GB/T 2260 code and the date
    /// is between 1880-01-01 and today; it is not re-validated here.
    pub fn generate(region: RegionCode, birth_date: NaiveDate, sequence: u16) -> CitizenId {
        let mut number = format!(
            "{}{:04}{:02}{:02}{:03}",
            region.as_str(),
            birth_date.year().rem_euclid(10_000),
            birth_date.month(),
            birth_date.day(),
            sequence % 1000
        );
        let check = check_char_of(number.as_bytes());
        number.push(check);
        CitizenId(number)
    }

    /// The number with its middle eight characters hidden (`330106********123X`), for
    /// logs and screens that must not show the birth date or the full number.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// Parses `YYYYMMDD` into a date, or `None` if it is not a real calendar date.
fn birth_date_of(text: &str) -> Option<NaiveDate> {
    let year = text.get(0..4)?.parse().ok()?;
    let month = text.get(4..6)?.parse().ok()?;
    let day = text.get(6..8)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

string_newtype_traits!(CitizenId, CitizenIdError);

/// A disagreement between what a citizen ID says and what a submission says.
///
/// Reported rather than silently corrected: either the ID or the demographics were
/// keyed wrongly, and only the submitting hospital can tell which.
#[derive(Debug, Clone, PartialEq)]
pub enum Discrepancy {
    /// The submitted birth date differs from the one in the ID.
    BirthDate {
        /// Birth date encoded in the citizen ID.
        id: NaiveDate,
        /// Birth date submitted with the record.
        submitted: NaiveDate,
    },
    /// The submitted sex differs from the one implied by the ID.
    Sex {
        /// Sex implied by the citizen ID.
        id: Sex,
        /// Sex submitted with the record.
        submitted: Sex,
    },
}

impl std::fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discrepancy::BirthDate { id, submitted } => {
                write!(f, "submitted birth date {submitted} differs from {id} encoded in the citizen ID")
            }
            Discrepancy::Sex { id, submitted } => write!(
                f,
                "submitted sex {} ({}) differs from {} ({}) implied by the citizen ID",
                submitted.code(),
                submitted.name_en(),
                id.code(),
                id.name_en()
            ),
        }
    }
}

/// Compares submitted birth date and sex with what the ID encodes.
///
/// A missing value, or a submitted sex of [`Sex::Unknown`] or [`Sex::NotStated`],
/// never disagrees.
pub fn check_against_id(id: &CitizenId, birth_date: Option<NaiveDate>, sex: Option<Sex>) -> Vec<Discrepancy> {
    let mut discrepancies = Vec::new();
    if let Some(submitted) = birth_date {
        if submitted != id.birth_date() {
            discrepancies.push(Discrepancy::BirthDate { id: id.birth_date(), submitted });
        }
    }
    if let Some(submitted @ (Sex::Male | Sex::Female)) = sex {
        if submitted != id.sex() {
            discrepancies.push(Discrepancy::Sex { id: id.sex(), submitted });
        }
    }
    discrepancies
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The sample number printed in GB 11643-1999 itself and in countless tutorials.
    const SAMPLE: &str = "11010519491231002X";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn today() -> NaiveDate {
        date(2025, 11, 22)
    }

    fn id(s: &str) -> CitizenId {
        match CitizenId::parse(s) {
            Ok(id) => id,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn the_standard_sample_is_valid() {
        let sample = id(SAMPLE);
        assert_eq!(sample.as_str(), SAMPLE);
        assert_eq!(sample.birth_date(), date(1949, 12, 31));
        assert_eq!(sample.sex(), Sex::Female);
        assert_eq!(sample.sequence(), 2);
        assert_eq!(sample.region_prefix().as_str(), "110105");
        assert_eq!(sample.region_prefix().name(), Some("朝阳区"));
        assert_eq!(sample.masked(), "110105********002X");
        assert_eq!(sample.to_string(), SAMPLE);
        assert_eq!(CitizenId::check_character("11010519491231002"), Some('X'));
    }

    #[test]
    fn lower_case_x_and_whitespace_are_accepted() {
        assert_eq!(id(" 11010519491231002x ").as_str(), SAMPLE);
    }

    #[test]
    fn computed_examples() {
        // 330106 西湖区, 1990-03-07, sequence 123 (odd: male).
        let first17 = "33010619900307123";
        let Some(check) = CitizenId::check_character(first17) else {
            panic!("17 digits");
        };
        let xihu = id(&format!("{first17}{check}"));
        assert_eq!(xihu.sex(), Sex::Male);
        assert_eq!(xihu.sequence(), 123);
        assert_eq!(CitizenId::generate(xihu.region_prefix(), date(1990, 3, 7), 123), xihu);
        // A retired prefix: 330103 下城区 (abolished 2021) is still a valid ID prefix.
        let old = CitizenId::generate(
            match RegionCode::parse_historical("330103") {
                Ok(code) => code,
                Err(e) => panic!("{e}"),
            },
            date(1975, 6, 1),
            8,
        );
        let reparsed = id(old.as_str());
        assert!(!reparsed.region_prefix().is_current());
        assert_eq!(reparsed.sex(), Sex::Female);
    }

    #[test]
    fn check_character_rejects_non_digits() {
        assert_eq!(CitizenId::check_character("1101051949123100"), None);
        assert_eq!(CitizenId::check_character("1101051949123100A"), None);
        assert_eq!(CitizenId::check_character("110105194912310021"), None);
    }

    #[test]
    fn each_error_is_reported() {
        let parse = |s: &str| CitizenId::parse_as_of(s, today());
        assert_eq!(parse("11010519491231002"), Err(CitizenIdError::Length { found: 17 }));
        assert_eq!(parse("1101051949123100２X"), Err(CitizenIdError::NonDigit { position: 17 }));
        assert_eq!(parse("1101A519491231002X"), Err(CitizenIdError::NonDigit { position: 5 }));
        assert_eq!(parse("11010519491231002Y"), Err(CitizenIdError::BadCheckCharacter));
        assert_eq!(parse("99010519491231002X"), Err(CitizenIdError::UnknownRegion("990105".into())));
        assert_eq!(parse("11010519490231002X"), Err(CitizenIdError::InvalidBirthDate("19490231".into())));
        assert_eq!(parse("11010518791231002X"), Err(CitizenIdError::InvalidBirthDate("18791231".into())));
        let future = CitizenId::generate(RegionCode::NATIONAL, date(2025, 11, 23), 1);
        let future = format!("110105{}", &future.as_str()[6..17]);
        let future = format!("{future}{}", CitizenId::check_character(&future).unwrap_or('0'));
        assert_eq!(parse(&future), Err(CitizenIdError::FutureBirthDate("20251123".into())));
        assert_eq!(parse("110105194912310021"), Err(CitizenIdError::Checksum { expected: 'X', found: '1' }));
        assert_eq!(
            CitizenIdError::Checksum { expected: 'X', found: '3' }.to_string(),
            "citizen ID check character is 3 but the number computes to X (ISO 7064 MOD 11-2)"
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        use serde::de::{value::Error, IntoDeserializer};
        let ok: Result<CitizenId, Error> = serde::Deserialize::deserialize(SAMPLE.into_deserializer());
        assert_eq!(ok, Ok(id(SAMPLE)));
        let bad: Result<CitizenId, Error> = serde::Deserialize::deserialize("110105194912310021".into_deserializer());
        assert!(bad.is_err());
    }

    #[test]
    fn discrepancies() {
        let sample = id(SAMPLE);
        assert!(check_against_id(&sample, Some(date(1949, 12, 31)), Some(Sex::Female)).is_empty());
        assert!(check_against_id(&sample, None, None).is_empty());
        assert!(check_against_id(&sample, None, Some(Sex::Unknown)).is_empty());
        assert!(check_against_id(&sample, None, Some(Sex::NotStated)).is_empty());
        let found = check_against_id(&sample, Some(date(1950, 1, 1)), Some(Sex::Male));
        assert_eq!(
            found,
            vec![
                Discrepancy::BirthDate { id: date(1949, 12, 31), submitted: date(1950, 1, 1) },
                Discrepancy::Sex { id: Sex::Female, submitted: Sex::Male },
            ]
        );
        assert_eq!(
            found[0].to_string(),
            "submitted birth date 1950-01-01 differs from 1949-12-31 encoded in the citizen ID"
        );
        assert_eq!(found[1].to_string(), "submitted sex 1 (male) differs from 2 (female) implied by the citizen ID");
    }

    fn any_valid_id() -> impl Strategy<Value = (RegionCode, NaiveDate, u16)> {
        let first = date(1900, 1, 1);
        let span = (date(2019, 12, 31) - first).num_days();
        (proptest::sample::select(RegionCode::all_historical()), 0..=span, 0u16..=999)
            .prop_map(move |(region, offset, sequence)| (region, first + chrono::Duration::days(offset), sequence))
    }

    proptest! {
        #[test]
        fn generate_then_parse_round_trips((region, birth, sequence) in any_valid_id()) {
            let generated = CitizenId::generate(region, birth, sequence);
            let parsed = CitizenId::parse(generated.as_str());
            prop_assert_eq!(parsed.as_ref(), Ok(&generated));
            prop_assert_eq!(generated.birth_date(), birth);
            prop_assert_eq!(generated.region_prefix(), region);
            prop_assert_eq!(generated.sequence(), sequence);
            let expected_sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
            prop_assert_eq!(generated.sex(), expected_sex);
        }

        #[test]
        fn any_single_character_change_is_rejected(
            (region, birth, sequence) in any_valid_id(),
            position in 0usize..18,
            replacement in 0usize..10,
        ) {
            let valid = CitizenId::generate(region, birth, sequence);
            let alphabet: &[u8] = if position == 17 { b"0123456789X" } else { b"0123456789" };
            let original = valid.as_str().as_bytes()[position];
            // Pick a character different from the original.
            let candidates: Vec<u8> = alphabet.iter().copied().filter(|c| *c != original).collect();
            let mut bytes = valid.as_str().as_bytes().to_vec();
            bytes[position] = candidates[replacement % candidates.len()];
            let changed = String::from_utf8(bytes).unwrap_or_default();
            prop_assert!(CitizenId::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = CitizenId::parse(&s);
        }
    }
}
