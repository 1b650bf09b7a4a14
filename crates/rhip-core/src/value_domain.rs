//! Coded demographic values (GB/T 2261, GB 3304, GB/T 4761) and the WS 364 value domains.
//!
//! Hospitals send codes, not words: `1` for male, `01` for 汉族, `01` for a resident
//! identity card. These types accept only codes of the embedded national tables, so a
//! value that reached the domain is always one a commission's statistics can count.
//! [`value_domains`] exposes every embedded table generically, for validation of coded
//! CDA entries and for publishing reference data down the federation.

use std::sync::LazyLock;

use crate::names::string_newtype_traits;
use crate::reference::{self, field, leak, optional_field};

/// A code that is not in the value domain it was checked against.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ValueDomainError {
    /// The code is not one of the domain's codes.
    #[error("{code:?} is not a code of {domain} ({name})")]
    UnknownCode {
        /// The domain's identifier, e.g. `"GB/T 2261.1"` or `"CV02.01.101"`.
        domain: &'static str,
        /// The domain's name, e.g. `"人的性别代码"`.
        name: &'static str,
        /// The code that was received.
        code: String,
    },
}

/// One embedded code table, in a shape common to all of them.
///
/// Exists so generic code (CDA entry validation, the reference-data API, publication
/// to child nodes) can treat every table alike.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ValueDomain {
    /// The domain's identifier: `"GB/T 2261.1"`, `"GB/T 2261.2"`, `"GB 3304"`,
    /// `"GB/T 4761"`, or a WS 364 code such as `"CV02.01.101"`.
    pub code: &'static str,
    /// The domain's Chinese name.
    pub name: &'static str,
    /// The codes, in the order of the standard.
    pub entries: Vec<DomainEntry>,
}

/// One code of a [`ValueDomain`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DomainEntry {
    /// The code, with its leading zeros.
    pub code: &'static str,
    /// The Chinese name of the code.
    pub name_zh: String,
    /// The enclosing code in hierarchical domains (e.g. `20 已婚` for `21 初婚`).
    pub parent: Option<String>,
}

impl ValueDomain {
    /// The entry for `code`, if the domain has it. Surrounding whitespace is ignored.
    pub fn entry(&self, code: &str) -> Option<&DomainEntry> {
        let code = code.trim();
        self.entries.iter().find(|entry| entry.code == code)
    }

    /// Whether `code` is a code of this domain.
    pub fn contains(&self, code: &str) -> bool {
        self.entry(code).is_some()
    }

    /// The entry for `code`, or an error that names the domain, for validators.
    pub fn check(&self, code: &str) -> Result<&DomainEntry, ValueDomainError> {
        self.entry(code).ok_or_else(|| ValueDomainError::UnknownCode {
            domain: self.code,
            name: self.name,
            code: code.to_owned(),
        })
    }
}

/// Identifier of the GB/T 2261.1 sex table.
const SEX_DOMAIN: &str = "GB/T 2261.1";
/// Identifier of the GB/T 2261.2 marital status table.
const MARITAL_DOMAIN: &str = "GB/T 2261.2";
/// Identifier of the GB 3304 ethnic group table.
const ETHNIC_DOMAIN: &str = "GB 3304";
/// Identifier of the GB/T 4761 family relationship table.
const FAMILY_DOMAIN: &str = "GB/T 4761";
/// Identifier of the WS 364 identity document type domain.
const IDENTITY_DOCUMENT_DOMAIN: &str = "CV02.01.101";

/// Extra columns of GB 3304 that do not fit [`DomainEntry`].
struct EthnicGroup {
    code: &'static str,
    romanized: &'static str,
    letter_code: &'static str,
}

/// Extra column of GB/T 2261.2 that does not fit [`DomainEntry`].
struct MaritalStatusName {
    code: &'static str,
    name_en: &'static str,
}

static ETHNIC_GROUPS: LazyLock<Vec<EthnicGroup>> = LazyLock::new(|| {
    reference::rows(reference::GB3304_ETHNIC_GROUPS)
        .iter()
        .map(|row| EthnicGroup {
            code: leak(field(row, 0)),
            romanized: leak(field(row, 2)),
            letter_code: leak(field(row, 3)),
        })
        .collect()
});

static MARITAL_STATUS_NAMES: LazyLock<Vec<MaritalStatusName>> = LazyLock::new(|| {
    reference::rows(reference::GBT2261_2_MARITAL_STATUS)
        .iter()
        .map(|row| MaritalStatusName { code: leak(field(row, 0)), name_en: leak(field(row, 2)) })
        .collect()
});

/// Builds a domain from a table whose first two columns are code and Chinese name.
fn simple_domain(
    code: &'static str,
    name: &'static str,
    text: &'static str,
    parent_column: Option<usize>,
) -> ValueDomain {
    let entries = reference::rows(text)
        .iter()
        .map(|row| DomainEntry {
            code: leak(field(row, 0)),
            name_zh: field(row, 1).to_owned(),
            parent: parent_column.and_then(|column| optional_field(row, column)),
        })
        .collect();
    ValueDomain { code, name, entries }
}

/// GB/T 4761-2008 groups `81`–`99` (伯父 … 非亲属) under `80 其他`; `90 姑母` is an
/// ordinary member of that group, not a group of its own. The embedded CSV derived
/// groups as "x0" and so files `91`–`99` under `90` and leaves `90` without a group;
/// this corrects that here until the CSV is fixed.
fn correct_family_group(code: &str, parent: Option<String>) -> Option<String> {
    match (code, parent.as_deref()) {
        ("90", None) | (_, Some("90")) => Some("80".to_owned()),
        _ => parent,
    }
}

static DOMAINS: LazyLock<Vec<ValueDomain>> = LazyLock::new(|| {
    let mut domains = vec![
        simple_domain(SEX_DOMAIN, "人的性别代码", reference::GBT2261_1_SEX, None),
        simple_domain(MARITAL_DOMAIN, "婚姻状况代码", reference::GBT2261_2_MARITAL_STATUS, Some(3)),
        simple_domain(ETHNIC_DOMAIN, "中国各民族名称代码", reference::GB3304_ETHNIC_GROUPS, None),
    ];
    let mut family = simple_domain(FAMILY_DOMAIN, "家庭关系代码", reference::GBT4761_FAMILY_RELATIONSHIP, Some(2));
    for entry in &mut family.entries {
        entry.parent = correct_family_group(entry.code, entry.parent.take());
    }
    domains.push(family);

    // WS 364: one CSV holds several domains, in blocks.
    for row in reference::rows(reference::WS364_VALUE_DOMAINS_SUBSET) {
        let domain_code = field(&row, 0);
        let entry = DomainEntry {
            code: leak(field(&row, 3)),
            name_zh: field(&row, 4).to_owned(),
            parent: optional_field(&row, 5),
        };
        match domains.iter_mut().find(|d| d.code == domain_code) {
            Some(domain) => domain.entries.push(entry),
            None => {
                domains.push(ValueDomain { code: leak(domain_code), name: leak(field(&row, 1)), entries: vec![entry] })
            }
        }
    }
    domains
});

/// The embedded value domain with this identifier (e.g. `"GB/T 2261.1"`, `"CV02.01.101"`).
pub fn value_domain(code: &str) -> Option<&'static ValueDomain> {
    let code = code.trim();
    DOMAINS.iter().find(|domain| domain.code == code)
}

/// Every embedded value domain: the four GB/GB/T tables, then the WS 364 subset.
pub fn value_domains() -> &'static [ValueDomain] {
    &DOMAINS
}

/// Looks a code up in one of this module's own domains (always present).
fn lookup(domain: &'static str, code: &str) -> Result<&'static DomainEntry, ValueDomainError> {
    match value_domain(domain) {
        Some(table) => table.check(code),
        None => Err(ValueDomainError::UnknownCode { domain, name: "embedded table missing", code: code.to_owned() }),
    }
}

/// The Chinese name of a code known to be in `domain` (empty if, impossibly, it is not).
fn name_of(domain: &'static str, code: &str) -> &'static str {
    lookup(domain, code).map_or("", |entry| entry.name_zh.as_str())
}

/// Sex as coded by GB/T 2261.1-2003; serialised as that code (`"1"`).
///
/// Four values rather than two because records must distinguish "not known" (`0`)
/// from "not stated / not applicable" (`9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `0` 未知的性别: the sex is not known.
    Unknown,
    /// `1` 男性.
    Male,
    /// `2` 女性.
    Female,
    /// `9` 未说明的性别: not stated, not applicable or ambiguous.
    NotStated,
}

impl Sex {
    /// Every value, in code order.
    pub const ALL: [Sex; 4] = [Sex::Unknown, Sex::Male, Sex::Female, Sex::NotStated];

    /// The GB/T 2261.1 code: `"0"`, `"1"`, `"2"` or `"9"`.
    pub fn code(&self) -> &'static str {
        match self {
            Sex::Unknown => "0",
            Sex::Male => "1",
            Sex::Female => "2",
            Sex::NotStated => "9",
        }
    }

    /// Parses a GB/T 2261.1 code (`0`, `1`, `2`, `9`).
    pub fn from_code(s: &str) -> Result<Sex, ValueDomainError> {
        match s.trim() {
            "0" => Ok(Sex::Unknown),
            "1" => Ok(Sex::Male),
            "2" => Ok(Sex::Female),
            "9" => Ok(Sex::NotStated),
            _ => Err(ValueDomainError::UnknownCode {
                domain: SEX_DOMAIN,
                name: "人的性别代码 (0, 1, 2, 9)",
                code: s.to_owned(),
            }),
        }
    }

    /// Parses PID-8 of an HL7 v2 message: table 0001 (`M`, `F`, `U`; `A`, `N`, `O` map to
    /// [`Sex::NotStated`]), case-insensitive. Chinese interfaces often send GB codes in
    /// PID-8 instead, so `0`, `1`, `2`, `9` are accepted too.
    pub fn from_hl7(s: &str) -> Result<Sex, ValueDomainError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "M" | "1" => Ok(Sex::Male),
            "F" | "2" => Ok(Sex::Female),
            "U" | "0" => Ok(Sex::Unknown),
            "A" | "N" | "O" | "9" => Ok(Sex::NotStated),
            _ => Err(ValueDomainError::UnknownCode {
                domain: "HL7 table 0001",
                name: "administrative sex M, F, U, A, N, O, or GB/T 2261.1 code 0, 1, 2, 9",
                code: s.to_owned(),
            }),
        }
    }

    /// The HL7 table 0001 code for outbound messages: `M`, `F`, `U` or `N`.
    pub fn to_hl7(&self) -> &'static str {
        match self {
            Sex::Unknown => "U",
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::NotStated => "N",
        }
    }

    /// The Chinese name from GB/T 2261.1, e.g. `"男性"`.
    pub fn name_zh(&self) -> &'static str {
        match self {
            Sex::Unknown => "未知的性别",
            Sex::Male => "男性",
            Sex::Female => "女性",
            Sex::NotStated => "未说明的性别",
        }
    }

    /// An English label, e.g. `"male"`.
    pub fn name_en(&self) -> &'static str {
        match self {
            Sex::Unknown => "not known",
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::NotStated => "not stated",
        }
    }

    /// Same as [`from_code`](Self::from_code); lets [`string_newtype_traits`] wire serde.
    fn parse(s: &str) -> Result<Sex, ValueDomainError> {
        Sex::from_code(s)
    }

    /// Same as [`code`](Self::code); lets [`string_newtype_traits`] wire serde.
    fn as_str(&self) -> &'static str {
        self.code()
    }
}

string_newtype_traits!(Sex, ValueDomainError);

/// Defines a newtype over a code of one embedded table.
macro_rules! coded_value {
    ($(#[$meta:meta])* $name:ident, $domain:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(&'static str);

        impl $name {
            /// Parses a code of the table (leading zeros matter; whitespace is ignored).
            pub fn parse(code: &str) -> Result<$name, ValueDomainError> {
                lookup($domain, code).map(|entry| $name(entry.code))
            }

            /// The code, with its leading zeros.
            pub fn code(&self) -> &'static str {
                self.0
            }

            /// The Chinese name of the code.
            pub fn name_zh(&self) -> &'static str {
                name_of($domain, self.0)
            }

            /// Same as [`code`](Self::code); lets [`string_newtype_traits`] wire serde.
            fn as_str(&self) -> &str {
                self.0
            }
        }

        string_newtype_traits!($name, ValueDomainError);
    };
}

coded_value!(
    /// An ethnic group coded by GB 3304-91 (`"01"` 汉族 … `"56"` 基诺族).
    Ethnicity,
    ETHNIC_DOMAIN
);

impl Ethnicity {
    /// The romanized name from GB 3304, e.g. `"Han"`.
    pub fn romanized(&self) -> &'static str {
        ETHNIC_GROUPS.iter().find(|group| group.code == self.0).map_or("", |group| group.romanized)
    }

    /// The two-letter code from GB 3304, e.g. `"HA"`.
    pub fn letter_code(&self) -> &'static str {
        ETHNIC_GROUPS.iter().find(|group| group.code == self.0).map_or("", |group| group.letter_code)
    }
}

coded_value!(
    /// Marital status coded by GB/T 2261.2-2003 (`10` 未婚, `20` 已婚 with `21`–`23`, …).
    MaritalStatus,
    MARITAL_DOMAIN
);

impl MaritalStatus {
    /// An English label, e.g. `"married"`.
    pub fn name_en(&self) -> &'static str {
        MARITAL_STATUS_NAMES.iter().find(|row| row.code == self.0).map_or("", |row| row.name_en)
    }

    /// The enclosing status for sub-codes (`21 初婚` → `20 已婚`).
    pub fn parent(&self) -> Option<MaritalStatus> {
        let entry = lookup(MARITAL_DOMAIN, self.0).ok()?;
        MaritalStatus::parse(entry.parent.as_deref()?).ok()
    }
}

coded_value!(
    /// A kind of identity document, coded by WS 364 CV02.01.101 (`01` 居民身份证 …).
    IdentityDocumentType,
    IDENTITY_DOCUMENT_DOMAIN
);

impl IdentityDocumentType {
    /// `01` 居民身份证: the resident identity card, whose number is a [`crate::CitizenId`].
    pub const RESIDENT_IDENTITY_CARD: IdentityDocumentType = IdentityDocumentType("01");
    /// `03` 护照: a passport.
    pub const PASSPORT: IdentityDocumentType = IdentityDocumentType("03");
}

coded_value!(
    /// A relationship to the head of household or to the person, coded by GB/T 4761-2008.
    FamilyRelationship,
    FAMILY_DOMAIN
);

impl FamilyRelationship {
    /// `01` 本人: the person themself.
    pub const SELF: FamilyRelationship = FamilyRelationship("01");
    /// `02` 户主: the head of household.
    pub const HEAD_OF_HOUSEHOLD: FamilyRelationship = FamilyRelationship("02");

    /// The category (`x0` code, `80` for `81`–`99`) of a detailed code, for statistics
    /// that only count categories.
    pub fn group(&self) -> Option<FamilyRelationship> {
        let entry = lookup(FAMILY_DOMAIN, self.0).ok()?;
        FamilyRelationship::parse(entry.parent.as_deref()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::{value::Error, IntoDeserializer};

    fn de<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, Error> {
        T::deserialize(s.into_deserializer())
    }

    #[test]
    fn sex_codes_match_the_embedded_table() {
        let domain = value_domain("GB/T 2261.1").map(|d| d.entries.clone());
        let Some(entries) = domain else { panic!("sex domain missing") };
        assert_eq!(entries.len(), 4);
        for (sex, entry) in Sex::ALL.iter().zip(&entries) {
            assert_eq!(sex.code(), entry.code);
            assert_eq!(sex.name_zh(), entry.name_zh);
            assert_eq!(Sex::from_code(entry.code), Ok(*sex));
        }
        let rows = reference::rows(reference::GBT2261_1_SEX);
        for (sex, row) in Sex::ALL.iter().zip(&rows) {
            assert_eq!(sex.name_en(), field(row, 2));
        }
    }

    #[test]
    fn sex_from_hl7_and_errors() {
        assert_eq!(Sex::from_hl7("M"), Ok(Sex::Male));
        assert_eq!(Sex::from_hl7("f"), Ok(Sex::Female));
        assert_eq!(Sex::from_hl7("U"), Ok(Sex::Unknown));
        assert_eq!(Sex::from_hl7("A"), Ok(Sex::NotStated));
        assert_eq!(Sex::from_hl7("N"), Ok(Sex::NotStated));
        assert_eq!(Sex::from_hl7("O"), Ok(Sex::NotStated));
        assert_eq!(Sex::from_hl7("2"), Ok(Sex::Female));
        for sex in Sex::ALL {
            assert_eq!(Sex::from_hl7(sex.to_hl7()), Ok(sex));
        }
        assert!(Sex::from_hl7("X").is_err());
        let err = Sex::from_code("M").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("\"M\" is not a code of GB/T 2261.1 (人的性别代码 (0, 1, 2, 9))"));
        assert_eq!(de::<Sex>("1"), Ok(Sex::Male));
        assert!(de::<Sex>("male").is_err());
        assert_eq!(Sex::Female.to_string(), "2");
    }

    #[test]
    fn ethnicity() {
        let han = Ethnicity::parse("01");
        assert_eq!(
            han.map(|e| (e.code(), e.name_zh(), e.romanized(), e.letter_code())),
            Ok(("01", "汉族", "Han", "HA"))
        );
        let sui = Ethnicity::parse("25");
        assert_eq!(sui.map(|e| (e.name_zh(), e.romanized(), e.letter_code())), Ok(("水族", "Sui", "SU")));
        assert_eq!(
            Ethnicity::parse("1"),
            Err(ValueDomainError::UnknownCode {
                domain: "GB 3304", name: "中国各民族名称代码", code: "1".into()
            })
        );
        assert!(Ethnicity::parse("97").is_err());
        assert_eq!(de::<Ethnicity>("56").map(|e| e.name_zh()), Ok("基诺族"));
        assert_eq!(value_domain("GB 3304").map(|d| d.entries.len()), Some(56));
    }

    #[test]
    fn marital_status() {
        let first = MaritalStatus::parse("21");
        assert_eq!(first.as_ref().map(|m| m.name_zh()), Ok("初婚"));
        assert_eq!(first.ok().and_then(|m| m.parent()).map(|p| p.code().to_owned()), Some("20".to_owned()));
        assert_eq!(MaritalStatus::parse("20").map(|m| m.name_en()), Ok("married"));
        assert_eq!(MaritalStatus::parse("10").ok().and_then(|m| m.parent()), None);
        assert!(MaritalStatus::parse("2").is_err());
    }

    #[test]
    fn identity_document_types() {
        assert_eq!(IdentityDocumentType::RESIDENT_IDENTITY_CARD.name_zh(), "居民身份证");
        assert_eq!(IdentityDocumentType::PASSPORT.name_zh(), "护照");
        assert_eq!(IdentityDocumentType::parse("01"), Ok(IdentityDocumentType::RESIDENT_IDENTITY_CARD));
        assert!(IdentityDocumentType::parse("19").is_err());
        assert_eq!(value_domain("CV02.01.101").map(|d| d.entries.len()), Some(8));
    }

    #[test]
    fn family_relationship_groups() {
        assert_eq!(FamilyRelationship::SELF.name_zh(), "本人");
        assert_eq!(FamilyRelationship::HEAD_OF_HOUSEHOLD.name_zh(), "户主");
        let group =
            |code: &str| FamilyRelationship::parse(code).ok().and_then(|r| r.group()).map(|g| g.code().to_owned());
        assert_eq!(group("11").as_deref(), Some("10"));
        assert_eq!(group("47").as_deref(), Some("40"));
        assert_eq!(group("89").as_deref(), Some("80"));
        assert_eq!(group("90").as_deref(), Some("80"), "姑母 is in 其他");
        assert_eq!(group("99").as_deref(), Some("80"));
        assert_eq!(group("80"), None);
        assert_eq!(group("01"), None);
        assert_eq!(value_domain("GB/T 4761").map(|d| d.entries.len()), Some(84));
    }

    #[test]
    fn all_domains_are_present_and_hierarchies_resolve() {
        let codes: Vec<&str> = value_domains().iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [
                "GB/T 2261.1",
                "GB/T 2261.2",
                "GB 3304",
                "GB/T 4761",
                "CV02.01.101",
                "CV04.50.005",
                "CV05.01.040",
                "CV05.10.019",
                "CV05.10.024",
                "CV06.00.103",
                "CV07.10.003",
                "CV09.00.403"
            ]
        );
        let ws364: usize = value_domains()[4..].iter().map(|d| d.entries.len()).sum();
        assert_eq!(ws364, 58);
        for domain in value_domains() {
            assert!(!domain.name.is_empty());
            for entry in &domain.entries {
                if let Some(parent) = &entry.parent {
                    assert!(domain.contains(parent), "{} {}", domain.code, entry.code);
                }
            }
        }
        let anaesthesia = value_domain("CV06.00.103");
        assert_eq!(anaesthesia.and_then(|d| d.entry("11")).and_then(|e| e.parent.clone()), Some("1".to_owned()));
        assert_eq!(value_domain("CV04.50.005").map(|d| d.name), Some("ABO血型代码"));
        assert!(value_domain("CV99.99.999").is_none());
        let err = value_domain("CV09.00.403").map(|d| d.check("5").map(|e| e.code));
        assert_eq!(
            err.map(|r| r.map_err(|e| e.to_string())),
            Some(Err("\"5\" is not a code of CV09.00.403 (入院途径代码)".to_owned()))
        );
    }
}
