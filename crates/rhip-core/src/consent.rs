//! A resident's consent (DESIGN §7): sensitive categories of their record they
//! keep from leaving the home county or from the eyes of other facilities, and
//! the one rule that decides, per item and viewer, whether it is shown.
//!
//! A category is recognised from ICD-10 diagnoses; an encounter and every
//! document, result and EHR entry attached to it share the categories of its
//! diagnoses. The rule here is pure so every read path (API, federated
//! retrieval, exports, the batch cutter) asks the same question.

use crate::names::named_enum;
use serde::{Deserialize, Serialize};

/// A word that is not a consent category or restriction.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConsentError {
    /// The text names no category.
    #[error("{found:?} is not a consent category; expected one of: {expected}")]
    UnknownCategory {
        /// The text that was received.
        found: String,
        /// The accepted names, comma-separated.
        expected: String,
    },
}

named_enum! {
    /// A sensitive category a resident may restrict.
    pub enum ConsentCategory {
        /// Mental and behavioural disorders (ICD-10 chapter V, `F00`–`F99`).
        MentalHealth => "mental_health",
        /// Infectious and parasitic diseases (`A00`–`B99`) and HIV status (`Z21`, `R75`).
        InfectiousDisease => "infectious_disease",
        /// Pregnancy and childbirth (`O00`–`O9A`), contraception and procreation
        /// (`Z30`–`Z39`), infertility (`N96`–`N98`).
        ReproductiveHealth => "reproductive_health",
    }
    error: ConsentError, |found, expected| ConsentError::UnknownCategory { found, expected }
}

impl ConsentCategory {
    /// The category of a diagnosis, if it is sensitive. Only ICD-10 codes are
    /// classified: a code system that names another vocabulary (SNOMED CT,
    /// LOINC) is left alone, an unnamed one is read as ICD-10 when the code
    /// has its shape (a letter and two digits).
    pub fn of_diagnosis(system: &str, code: &str) -> Option<ConsentCategory> {
        let system = system.to_ascii_uppercase();
        if ["SNOMED", "SCT", "LOINC", "LN"].iter().any(|other| system == *other || system.starts_with("SNOMED")) {
            return None;
        }
        let code = code.trim().to_ascii_uppercase();
        let mut chars = code.chars();
        let letter = chars.next().filter(char::is_ascii_uppercase)?;
        let digits: String = chars.take(2).collect();
        let number: u32 = digits.parse().ok().filter(|_| digits.len() == 2)?;
        match (letter, number) {
            ('F', _) => Some(ConsentCategory::MentalHealth),
            ('A' | 'B', _) | ('Z', 21) | ('R', 75) => Some(ConsentCategory::InfectiousDisease),
            ('O', _) | ('Z', 30..=39) | ('N', 96..=98) => Some(ConsentCategory::ReproductiveHealth),
            _ => None,
        }
    }
}

/// What a resident restricts for one category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrictions {
    /// Kept in the home county: not sent up by the home node, and withheld at
    /// every other node except from the facility that recorded it.
    pub leave_home: bool,
    /// Withheld from clinicians and systems of facilities other than the one
    /// that recorded it.
    pub other_facilities: bool,
}

impl Restrictions {
    /// Whether anything is restricted.
    pub fn any(&self) -> bool {
        self.leave_home || self.other_facilities
    }

    /// Both sets of restrictions at once (a person known under two ids).
    pub fn union(self, other: Restrictions) -> Restrictions {
        Restrictions {
            leave_home: self.leave_home || other.leave_home,
            other_facilities: self.other_facilities || other.other_facilities,
        }
    }
}

/// Who is looking, as far as consent cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// The resident the record is about: sees everything.
    Subject,
    /// A clinician or hospital system of a facility; `break_glass` when a
    /// clinician stated an emergency.
    Staff {
        /// The viewer's facility code.
        facility: String,
        /// The glass is broken (an audited emergency override).
        break_glass: bool,
    },
    /// Commissions, auditors and node operators: no facility of their own.
    Authority,
}

/// The answer for one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Shown: nothing restricts it for this viewer.
    Show,
    /// Restricted, shown only because the glass was broken; audit it.
    Override,
    /// Withheld.
    Withhold,
}

/// Decides whether an item of a restricted category, recorded at
/// `recorded_by` (a facility code, when known), is shown to `viewer` at a node
/// that is (`at_home`) or is not the person's home county node.
pub fn decide(restrictions: Restrictions, recorded_by: Option<&str>, viewer: &Viewer, at_home: bool) -> Verdict {
    let (staff, own_facility, break_glass) = match viewer {
        Viewer::Subject => return Verdict::Show,
        Viewer::Staff { facility, break_glass } => (true, recorded_by == Some(facility.as_str()), *break_glass),
        Viewer::Authority => (false, false, false),
    };
    let restricted = (restrictions.leave_home && !at_home) || (restrictions.other_facilities && staff);
    match (restricted && !own_facility, break_glass) {
        (false, _) => Verdict::Show,
        (true, true) => Verdict::Override,
        (true, false) => Verdict::Withhold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentCategory::*;

    #[test]
    fn diagnoses_fall_into_categories_by_icd10_chapter() {
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "F32.9"), Some(MentalHealth));
        assert_eq!(ConsentCategory::of_diagnosis("2.16.156.10011.2.3.3.11", "f20"), Some(MentalHealth));
        assert_eq!(ConsentCategory::of_diagnosis("I10", "B20"), Some(InfectiousDisease));
        assert_eq!(ConsentCategory::of_diagnosis("", "A15.0"), Some(InfectiousDisease));
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "Z21"), Some(InfectiousDisease));
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "O80"), Some(ReproductiveHealth));
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "Z34.0"), Some(ReproductiveHealth));
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "N97"), Some(ReproductiveHealth));
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "N18"), None);
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "Z29"), None);
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "I10"), None);
        assert_eq!(ConsentCategory::of_diagnosis("SNOMED-CT", "F32"), None);
        assert_eq!(ConsentCategory::of_diagnosis("LN", "A12"), None);
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "F"), None);
        assert_eq!(ConsentCategory::of_diagnosis("ICD10", "心境障碍"), None);
    }

    #[test]
    fn category_names_round_trip_and_unknown_ones_name_the_choices() {
        for category in ConsentCategory::ALL {
            assert_eq!(ConsentCategory::parse(category.as_str()), Ok(category));
        }
        let error = ConsentCategory::parse("dental").unwrap_err().to_string();
        assert!(error.contains("mental_health") && error.contains("dental"), "{error}");
    }

    #[test]
    fn the_rule_per_viewer_and_place() {
        let other = Restrictions { other_facilities: true, ..Restrictions::default() };
        let home = Restrictions { leave_home: true, ..Restrictions::default() };
        let staff = |facility: &str, break_glass| Viewer::Staff { facility: facility.into(), break_glass };
        // The resident sees everything, everywhere.
        assert_eq!(decide(other.union(home), Some("H1"), &Viewer::Subject, false), Verdict::Show);
        // Other facilities: withheld from other facilities' staff only.
        assert_eq!(decide(other, Some("H1"), &staff("H2", false), true), Verdict::Withhold);
        assert_eq!(decide(other, Some("H1"), &staff("H1", false), true), Verdict::Show);
        assert_eq!(decide(other, None, &staff("H1", false), true), Verdict::Withhold);
        assert_eq!(decide(other, Some("H1"), &Viewer::Authority, false), Verdict::Show);
        assert_eq!(decide(other, Some("H1"), &staff("H2", true), true), Verdict::Override);
        // Leave home: shown at home, withheld elsewhere except from the recording facility.
        assert_eq!(decide(home, Some("H1"), &staff("H2", false), true), Verdict::Show);
        assert_eq!(decide(home, Some("H1"), &Viewer::Authority, true), Verdict::Show);
        assert_eq!(decide(home, Some("H1"), &Viewer::Authority, false), Verdict::Withhold);
        assert_eq!(decide(home, Some("H1"), &staff("H2", false), false), Verdict::Withhold);
        assert_eq!(decide(home, Some("H1"), &staff("H1", false), false), Verdict::Show);
        assert_eq!(decide(home, Some("H1"), &staff("H2", true), false), Verdict::Override);
        // Nothing restricted: nothing to decide.
        assert_eq!(decide(Restrictions::default(), None, &staff("H2", false), false), Verdict::Show);
    }
}
