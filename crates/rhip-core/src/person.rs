//! Persons as the demographic index (DID) knows them: platform ids, local identifiers,
//! demographics and the home-region rule.
//!
//! Nothing here knows about storage. The types carry what a hospital submits and the
//! rules every node applies before linking or storing it, so the same submission gets the
//! same verdict whichever node receives it.

use chrono::{NaiveDate, Utc};

use crate::citizen_id::{check_against_id, CitizenId, Discrepancy};
use crate::region::{RegionCode, Tier};
use crate::value_domain::{Ethnicity, MaritalStatus, Sex};

/// A person's platform id (EMPI id): a UUIDv7, unique federation-wide without coordination.
pub type EmpiId = uuid::Uuid;

/// A fresh time-ordered UUIDv7, for EMPI ids and every other platform id.
///
/// Time-ordered keys keep B-tree inserts at the right edge of the index, which is several
/// times faster than random UUIDs at bulk-load rates.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Longest accepted `system` or `value` of an [`Identifier`], in characters.
pub const IDENTIFIER_PART_MAX_CHARS: usize = 128;

/// A local identifier of a person, cross-referenced to the EMPI id (PIX-style): a
/// hospital MRN with its assigning facility, an insurance card, a passport, …
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Identifier {
    /// The assigning authority: a facility code or an OID.
    pub system: String,
    /// The identifier within that authority.
    pub value: String,
    /// HL7 table 0203 identifier type (`MR`, `NNCHN`, `PPN`, …), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_code: Option<String>,
}

/// Why a text is not an acceptable identifier or identifier token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum IdentifierError {
    /// The token has no `|` between system and value.
    #[error("identifier must be written system|value (e.g. 330106001|MR0001), got {0:?}")]
    MissingSeparator(String),
    /// The system (assigning authority) part is empty.
    #[error("identifier system (assigning authority, before the |) must not be empty")]
    EmptySystem,
    /// The value part is empty.
    #[error("identifier value (after the |) must not be empty")]
    EmptyValue,
    /// A part is longer than [`IDENTIFIER_PART_MAX_CHARS`].
    #[error("identifier {part} must be at most 128 characters, got {length}")]
    TooLong {
        /// `"system"` or `"value"`.
        part: &'static str,
        /// Its length in characters.
        length: usize,
    },
    /// A part contains a control character (newline, tab, NUL, …).
    #[error("identifier {part} must not contain control characters")]
    ControlCharacter {
        /// `"system"` or `"value"`.
        part: &'static str,
    },
    /// The system contains `|`, which would make the token ambiguous.
    #[error("identifier system must not contain |")]
    SeparatorInSystem,
}

/// Checks one part of an identifier.
fn check_part(part: &'static str, text: &str) -> Result<(), IdentifierError> {
    let length = text.chars().count();
    if length == 0 {
        return Err(if part == "system" { IdentifierError::EmptySystem } else { IdentifierError::EmptyValue });
    }
    if length > IDENTIFIER_PART_MAX_CHARS {
        return Err(IdentifierError::TooLong { part, length });
    }
    if text.chars().any(char::is_control) {
        return Err(IdentifierError::ControlCharacter { part });
    }
    Ok(())
}

impl Identifier {
    /// Builds a checked identifier (same rules as [`parse_token`](Self::parse_token)).
    pub fn new(
        system: impl Into<String>,
        value: impl Into<String>,
        type_code: Option<String>,
    ) -> Result<Identifier, IdentifierError> {
        let identifier = Identifier { system: system.into(), value: value.into(), type_code };
        identifier.validate()?;
        Ok(identifier)
    }

    /// Parses a `system|value` search token (as in `?identifier=330106001|MR0001`).
    ///
    /// Splits at the first `|`, trims both parts, and requires each to be non-empty, at
    /// most 128 characters and free of control characters. The value may contain `|`.
    pub fn parse_token(s: &str) -> Result<Identifier, IdentifierError> {
        let (system, value) = s.split_once('|').ok_or_else(|| IdentifierError::MissingSeparator(s.to_owned()))?;
        Identifier::new(system.trim(), value.trim(), None)
    }

    /// Checks an identifier built field by field (e.g. from HL7 PID-3).
    pub fn validate(&self) -> Result<(), IdentifierError> {
        check_part("system", &self.system)?;
        check_part("value", &self.value)?;
        if self.system.contains('|') {
            return Err(IdentifierError::SeparatorInSystem);
        }
        Ok(())
    }

    /// The `system|value` token form, the inverse of [`parse_token`](Self::parse_token).
    pub fn token(&self) -> String {
        format!("{}|{}", self.system, self.value)
    }
}

/// A person as the platform knows them: demographics only, no storage concerns.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonDemographics {
    /// Full name as written (Chinese names have no given/family split in most feeds).
    pub name: String,
    /// Sex (GB/T 2261.1).
    pub sex: Sex,
    /// Date of birth, if known.
    pub birth_date: Option<NaiveDate>,
    /// Citizen identity number, if known.
    pub id_number: Option<CitizenId>,
    /// Ethnic group (GB 3304), if known.
    pub ethnicity: Option<Ethnicity>,
    /// Marital status (GB/T 2261.2), if known.
    pub marital_status: Option<MaritalStatus>,
    /// Phone number: digits, `+` and `-` only.
    pub phone: Option<String>,
    /// County (or other current division) of the residential address.
    pub address_region: Option<RegionCode>,
    /// Street address below the division.
    pub address_line: Option<String>,
    /// Local identifiers (MRNs, insurance cards, passports).
    pub identifiers: Vec<Identifier>,
}

/// One problem with one field of a submission, shown to the submitter as is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name as in the JSON form (`"birth_date"`, `"identifiers[0]"`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Longest accepted name, in characters.
pub const NAME_MAX_CHARS: usize = 100;

impl PersonDemographics {
    /// Checks the record, with "today" from the system clock (UTC); see
    /// [`validate_as_of`](Self::validate_as_of).
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        self.validate_as_of(Utc::now().date_naive())
    }

    /// Checks the record and reports every problem at once: name non-empty and at most
    /// 100 characters without control characters; birth date not after `today`;
    /// disagreement with the citizen ID (on `"birth_date"` and `"sex"`); phone made of
    /// digits, `+` and `-`, 5 to 20 characters; every identifier well-formed.
    pub fn validate_as_of(&self, today: NaiveDate) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();

        let name = self.name.trim();
        let name_length = name.chars().count();
        if name_length == 0 {
            errors.push(FieldError::new("name", "name must not be empty"));
        } else if name_length > NAME_MAX_CHARS {
            errors.push(FieldError::new(
                "name",
                format!("name must be at most {NAME_MAX_CHARS} characters, got {name_length}"),
            ));
        } else if name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "name must not contain control characters"));
        }

        if let Some(birth_date) = self.birth_date {
            if birth_date > today {
                errors.push(FieldError::new(
                    "birth_date",
                    format!("birth date {birth_date} is in the future (today is {today})"),
                ));
            }
        }

        if let Some(id_number) = &self.id_number {
            for discrepancy in check_against_id(id_number, self.birth_date, Some(self.sex)) {
                let field = match discrepancy {
                    Discrepancy::BirthDate { .. } => "birth_date",
                    Discrepancy::Sex { .. } => "sex",
                };
                errors.push(FieldError::new(field, discrepancy.to_string()));
            }
        }

        if let Some(phone) = &self.phone {
            let length = phone.chars().count();
            if !phone.chars().all(|c| c.is_ascii_digit() || c == '+' || c == '-') {
                errors.push(FieldError::new("phone", format!("phone {phone:?} may contain only digits, + and -")));
            } else if !(5..=20).contains(&length) {
                errors.push(FieldError::new("phone", format!("phone must be 5 to 20 characters, got {length}")));
            }
        }

        for (index, identifier) in self.identifiers.iter().enumerate() {
            if let Err(error) = identifier.validate() {
                errors.push(FieldError::new(format!("identifiers[{index}]"), error.to_string()));
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The home region (DESIGN §4) of a person first seen in a submission: the county of the
/// residential address if it is a current county code; else the citizen ID's prefix if
/// that is a current county code; else the receiving node's own region.
///
/// The home county node is authoritative for the person's demographics, so this decides
/// where a new person's record lives.
pub fn home_region_for(
    address_region: Option<&RegionCode>,
    id_number: Option<&CitizenId>,
    receiving_node: &RegionCode,
) -> RegionCode {
    let current_county = |code: &RegionCode| code.tier() == Tier::County && code.is_current();
    if let Some(address) = address_region.filter(|code| current_county(code)) {
        return *address;
    }
    if let Some(prefix) = id_number.map(CitizenId::region_prefix).filter(current_county) {
        return prefix;
    }
    *receiving_node
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> RegionCode {
        RegionCode::parse_historical(s).or_else(|_| RegionCode::parse(s)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn person() -> PersonDemographics {
        PersonDemographics {
            name: "王芳".into(),
            sex: Sex::Female,
            birth_date: Some(date(1949, 12, 31)),
            id_number: CitizenId::parse("11010519491231002X").ok(),
            ethnicity: Ethnicity::parse("01").ok(),
            marital_status: MaritalStatus::parse("20").ok(),
            phone: Some("+86-13800138000".into()),
            address_region: Some(region("330106")),
            address_line: Some("文三路 1 号".into()),
            identifiers: vec![Identifier {
                system: "330106001".into(),
                value: "MR0001".into(),
                type_code: Some("MR".into()),
            }],
        }
    }

    #[test]
    fn new_ids_are_v7_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn identifier_tokens() {
        let parsed = Identifier::parse_token(" 330106001 | MR|0001 ");
        assert_eq!(parsed, Ok(Identifier { system: "330106001".into(), value: "MR|0001".into(), type_code: None }));
        assert_eq!(parsed.map(|i| i.token()).as_deref(), Ok("330106001|MR|0001"));
        assert_eq!(Identifier::parse_token("MR0001"), Err(IdentifierError::MissingSeparator("MR0001".into())));
        assert_eq!(Identifier::parse_token("|x"), Err(IdentifierError::EmptySystem));
        assert_eq!(Identifier::parse_token("a| "), Err(IdentifierError::EmptyValue));
        assert_eq!(
            Identifier::parse_token(&format!("a|{}", "9".repeat(129))),
            Err(IdentifierError::TooLong { part: "value", length: 129 })
        );
        assert!(Identifier::parse_token(&format!("a|{}", "号".repeat(128))).is_ok());
        assert_eq!(Identifier::parse_token("a\u{0}b|x"), Err(IdentifierError::ControlCharacter { part: "system" }));
        assert!(Identifier::new("a|b", "x", None).is_err());
    }

    #[test]
    fn a_good_person_validates() {
        assert_eq!(person().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut bad = person();
        bad.name = "  ".into();
        bad.birth_date = Some(date(1950, 1, 1));
        bad.sex = Sex::Male;
        bad.phone = Some("138 0013 8000".into());
        bad.identifiers.push(Identifier { system: String::new(), value: "x".into(), type_code: None });
        let errors = bad.validate().err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "birth_date", "sex", "phone", "identifiers[1]"]);
        assert_eq!(
            errors[4].to_string(),
            "identifiers[1]: identifier system (assigning authority, before the |) must not be empty"
        );
    }

    #[test]
    fn future_birth_long_name_and_short_phone() {
        let mut bad = person();
        bad.id_number = None;
        bad.name = "名".repeat(101);
        bad.birth_date = Some(date(2030, 1, 1));
        bad.phone = Some("1234".into());
        let errors = bad.validate_as_of(date(2025, 1, 1)).err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "birth_date", "phone"]);
        bad.name = "名".repeat(100);
        bad.birth_date = None;
        bad.phone = Some("12345".into());
        assert_eq!(bad.validate(), Ok(()));
    }

    #[test]
    fn unknown_sex_never_disagrees_with_the_id() {
        let mut p = person();
        p.sex = Sex::Unknown;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn home_region_rule() {
        let node = region("330100");
        let xihu = region("330106");
        let id = CitizenId::generate(region("110105"), date(1980, 1, 1), 11);
        let retired = CitizenId::generate(region("330103"), date(1980, 1, 1), 11);
        // 1. The address county wins.
        assert_eq!(home_region_for(Some(&xihu), Some(&id), &node), xihu);
        // 2. An address that is not a county falls through to the ID prefix.
        assert_eq!(home_region_for(Some(&region("330100")), Some(&id), &node), region("110105"));
        assert_eq!(home_region_for(None, Some(&id), &node), region("110105"));
        // 3. A retired ID prefix falls through to the receiving node.
        assert_eq!(home_region_for(None, Some(&retired), &node), node);
        assert_eq!(home_region_for(None, None, &node), node);
        // A retired address county also falls through.
        assert_eq!(home_region_for(Some(&region("330103")), None, &node), node);
    }
}
