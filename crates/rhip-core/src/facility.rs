//! Facilities in a node's registry: their codes, kinds and status.
//!
//! A facility code is what a hospital sends in MSH-4 or as the CDA custodian, and it
//! becomes part of identifiers, URLs and log lines, so it is restricted to a small,
//! unambiguous alphabet.

use crate::names::{named_enum, string_newtype_traits, UnknownNameError};

/// Longest accepted facility code, in characters.
pub const FACILITY_CODE_MAX_CHARS: usize = 64;

/// A facility's registry code: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FacilityCode(String);

/// Why a text is not an acceptable facility code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FacilityCodeError {
    /// The code is empty.
    #[error("facility code must not be empty")]
    Empty,
    /// The code is longer than 64 characters.
    #[error("facility code must be at most 64 characters, got {length}")]
    TooLong {
        /// Its length in characters.
        length: usize,
    },
    /// The code contains a character outside `A-Z a-z 0-9 . _ -`.
    #[error("facility code may contain only letters A-Z a-z, digits, '.', '_' and '-', found {character:?} at position {position}")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its 1-based position.
        position: usize,
    },
}

impl FacilityCode {
    /// Parses a code; surrounding whitespace is ignored, case is kept.
    pub fn parse(s: &str) -> Result<FacilityCode, FacilityCodeError> {
        let code = s.trim();
        let length = code.chars().count();
        if length == 0 {
            return Err(FacilityCodeError::Empty);
        }
        if length > FACILITY_CODE_MAX_CHARS {
            return Err(FacilityCodeError::TooLong { length });
        }
        if let Some((index, character)) =
            code.chars().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(FacilityCodeError::InvalidCharacter { character, position: index + 1 });
        }
        Ok(FacilityCode(code.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_traits!(FacilityCode, FacilityCodeError);

named_enum! {
    /// What kind of institution a facility is; drives which submissions make sense from
    /// it and how statistics group it.
    pub enum FacilityKind {
        /// A hospital (医院).
        Hospital => "hospital",
        /// A clinic or outpatient department (诊所、门诊部).
        Clinic => "clinic",
        /// An urban community health service centre (社区卫生服务中心).
        CommunityHealthCentre => "community_health_centre",
        /// A rural township health centre (乡镇卫生院).
        TownshipHealthCentre => "township_health_centre",
        /// A public health institution such as a CDC (专业公共卫生机构).
        PublicHealthCentre => "public_health_centre",
        /// A maternal and child health centre (妇幼保健院).
        MaternalChildHealthCentre => "maternal_child_health_centre",
        /// An independent clinical laboratory (独立医学检验实验室).
        Laboratory => "laboratory",
        /// Anything else.
        Other => "other",
    }
    error: UnknownNameError, |found, expected| UnknownNameError { what: "facility kind", found, expected }
}

impl FacilityKind {
    /// The Chinese name of the kind, for console pages.
    pub fn name_zh(&self) -> &'static str {
        match self {
            FacilityKind::Hospital => "医院",
            FacilityKind::Clinic => "诊所",
            FacilityKind::CommunityHealthCentre => "社区卫生服务中心",
            FacilityKind::TownshipHealthCentre => "乡镇卫生院",
            FacilityKind::PublicHealthCentre => "专业公共卫生机构",
            FacilityKind::MaternalChildHealthCentre => "妇幼保健院",
            FacilityKind::Laboratory => "独立医学检验实验室",
            FacilityKind::Other => "其他",
        }
    }
}

named_enum! {
    /// Whether a registered facility may submit: submissions from a suspended facility
    /// are refused like those from an unregistered one.
    pub enum FacilityStatus {
        /// May submit.
        Active => "active",
        /// Registered, but submissions are refused.
        Suspended => "suspended",
    }
    error: UnknownNameError, |found, expected| UnknownNameError { what: "facility status", found, expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facility_codes() {
        assert_eq!(FacilityCode::parse(" 330106-H.01_a ").map(|c| c.to_string()), Ok("330106-H.01_a".to_owned()));
        assert_eq!(FacilityCode::parse(""), Err(FacilityCodeError::Empty));
        assert_eq!(FacilityCode::parse(&"A".repeat(64)).map(|c| c.as_str().len()), Ok(64));
        assert_eq!(FacilityCode::parse(&"A".repeat(65)), Err(FacilityCodeError::TooLong { length: 65 }));
        assert_eq!(
            FacilityCode::parse("浙一医院"),
            Err(FacilityCodeError::InvalidCharacter { character: '浙', position: 1 })
        );
        assert_eq!(
            FacilityCode::parse("A B"),
            Err(FacilityCodeError::InvalidCharacter { character: ' ', position: 2 })
        );
        assert_eq!(
            FacilityCode::parse("a/b").err().map(|e| e.to_string()).as_deref(),
            Some("facility code may contain only letters A-Z a-z, digits, '.', '_' and '-', found '/' at position 2")
        );
    }

    #[test]
    fn kinds_and_statuses_round_trip() {
        for kind in FacilityKind::ALL {
            assert_eq!(FacilityKind::parse(kind.as_str()), Ok(kind));
            assert!(!kind.name_zh().is_empty());
        }
        assert_eq!(FacilityKind::MaternalChildHealthCentre.as_str(), "maternal_child_health_centre");
        for status in FacilityStatus::ALL {
            assert_eq!(FacilityStatus::parse(status.as_str()), Ok(status));
        }
        let error = FacilityKind::parse("pharmacy").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("\"pharmacy\" is not a valid facility kind; expected one of: hospital, clinic,"));
    }
}
