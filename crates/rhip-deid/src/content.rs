//! The clinical content of an export record: what the node hands in
//! ([`SourceContent`], already free of identifiers because the store never
//! reads them for an export), what goes out ([`RecordContent`]: coded,
//! generalised to months, sorted), and the hook through which a consent rule
//! removes content ([`ContentFilter`]).

use chrono::NaiveDateTime;
use rhip_core::{EhrEntryKind, EncounterType, FacilityKind};
use serde::{Deserialize, Serialize};

use crate::rules::{code, month_of};

/// A person's clinical rows as read for an export.
#[derive(Clone, Debug, Default)]
pub struct SourceContent {
    /// Encounters with their diagnoses.
    pub encounters: Vec<Encounter>,
    /// Lab and exam results.
    pub results: Vec<LabResult>,
    /// EHR entries other than encounters and lab reports (immunizations,
    /// follow-ups, exams, ...).
    pub services: Vec<Service>,
}

/// An encounter as read: no facility code, visit number, department,
/// location, clinician or reason.
#[derive(Clone, Debug)]
pub struct Encounter {
    /// Stored encounter type (`outpatient`, `inpatient`, ...).
    pub encounter_type: String,
    /// Stored status; cancelled encounters are left out.
    pub status: String,
    /// Admission or visit start (UTC).
    pub admitted_at: Option<NaiveDateTime>,
    /// The kind of the facility, when it is in this node's registry.
    pub facility_kind: Option<String>,
    /// Its coded diagnoses.
    pub diagnoses: Vec<Diagnosis>,
}

/// A coded diagnosis as read (no display text).
#[derive(Clone, Debug)]
pub struct Diagnosis {
    /// Code system (`ICD10`, ...).
    pub system: String,
    /// Code (`I10`).
    pub code: String,
    /// Diagnosis type (HL7 DG1-6: `A` admitting, `W` working, `F` final).
    pub role: Option<String>,
}

/// A result as read (no value, unit, range or report id).
#[derive(Clone, Debug)]
pub struct LabResult {
    /// Code system (`LN`, ...).
    pub system: String,
    /// Code (`718-7`).
    pub code: String,
    /// When observed (UTC).
    pub observed_at: Option<NaiveDateTime>,
    /// HL7 abnormal flag (`N` normal; `L`, `H`, `A`, ... abnormal).
    pub abnormal_flag: Option<String>,
}

/// An EHR entry as read: its kind and time, no summary.
#[derive(Clone, Debug)]
pub struct Service {
    /// Stored EHR entry kind.
    pub kind: String,
    /// When it happened (UTC).
    pub occurred_at: NaiveDateTime,
}

/// The clinical content of one export record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordContent {
    /// Encounters, by month and type.
    pub encounters: Vec<ExportEncounter>,
    /// Results, by month, system and code.
    pub results: Vec<ExportResult>,
    /// Other EHR entries, by month and kind.
    pub services: Vec<ExportService>,
}

/// An exported encounter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEncounter {
    /// Month of admission (`YYYY-MM`, China Standard Time).
    pub month: Option<String>,
    /// Encounter type (`outpatient`, `inpatient`, ...).
    #[serde(rename = "type")]
    pub encounter_type: String,
    /// Kind of facility (`hospital`, `clinic`, ...), when known.
    pub facility_kind: Option<String>,
    /// Coded diagnoses.
    pub diagnoses: Vec<ExportDiagnosis>,
}

/// An exported diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDiagnosis {
    /// Code system.
    pub system: String,
    /// Code.
    pub code: String,
    /// Diagnosis type code, when given.
    pub role: Option<String>,
}

/// An exported result.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportResult {
    /// Month observed.
    pub month: Option<String>,
    /// Code system.
    pub system: String,
    /// Code.
    pub code: String,
    /// Abnormal (`true`), normal (`false`) or not flagged (`null`).
    pub abnormal: Option<bool>,
}

/// An exported EHR entry (immunization, follow-up, exam, ...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportService {
    /// Month it happened.
    pub month: String,
    /// EHR entry kind.
    pub kind: String,
}

impl SourceContent {
    /// Applies the content rules: cancelled encounters, unknown vocabularies
    /// and text that is not code-like are dropped; times become months; lists
    /// are sorted (no order that could hint at ids or arrival) and
    /// de-duplicated.
    pub fn generalise(self) -> RecordContent {
        let mut encounters: Vec<ExportEncounter> = self
            .encounters
            .into_iter()
            .filter(|e| e.status != "cancelled")
            .filter_map(|e| {
                let encounter_type = EncounterType::parse(&e.encounter_type).ok()?.as_str().to_string();
                let mut diagnoses: Vec<ExportDiagnosis> = e
                    .diagnoses
                    .iter()
                    .filter_map(|d| {
                        Some(ExportDiagnosis {
                            system: code(&d.system)?,
                            code: code(&d.code)?,
                            role: d.role.as_deref().and_then(code),
                        })
                    })
                    .collect();
                diagnoses.sort();
                diagnoses.dedup();
                Some(ExportEncounter {
                    month: e.admitted_at.map(month_of),
                    encounter_type,
                    facility_kind: e
                        .facility_kind
                        .as_deref()
                        .and_then(|kind| FacilityKind::parse(kind).ok())
                        .map(|kind| kind.as_str().to_string()),
                    diagnoses,
                })
            })
            .collect();
        encounters.sort();
        let mut results: Vec<ExportResult> = self
            .results
            .iter()
            .filter_map(|r| {
                Some(ExportResult {
                    month: r.observed_at.map(month_of),
                    system: code(&r.system)?,
                    code: code(&r.code)?,
                    abnormal: r
                        .abnormal_flag
                        .as_deref()
                        .map(str::trim)
                        .filter(|flag| !flag.is_empty())
                        .map(|flag| !flag.eq_ignore_ascii_case("N")),
                })
            })
            .collect();
        results.sort();
        results.dedup();
        let mut services: Vec<ExportService> = self
            .services
            .iter()
            .filter_map(|s| {
                let kind = EhrEntryKind::parse(&s.kind).ok()?;
                // Encounters and lab reports are exported as such above.
                if matches!(kind, EhrEntryKind::Encounter | EhrEntryKind::LabReport) {
                    return None;
                }
                Some(ExportService { month: month_of(s.occurred_at), kind: kind.as_str().to_string() })
            })
            .collect();
        services.sort();
        RecordContent { encounters, results, services }
    }
}

/// A rule that removes content from every record before it is written (a
/// consent rule, a sensitive category). It sees content only, never the
/// quasi-identifiers, so it cannot change a record's equivalence class.
pub trait ContentFilter: Send + Sync {
    /// What it removes, in one line for the export's header.
    fn describe(&self) -> String;
    /// Removes what it must from one record's content.
    fn filter(&self, content: &mut RecordContent);
}

/// Removes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepAll;

impl ContentFilter for KeepAll {
    fn describe(&self) -> String {
        "none".into()
    }

    fn filter(&self, _content: &mut RecordContent) {}
}

/// Removes diagnoses whose code starts with one of the prefixes (e.g. `F`
/// for mental disorders, `B20` to `B24` for HIV disease).
#[derive(Clone, Debug, Default)]
pub struct DropDiagnoses {
    /// Code prefixes, compared without regard to ASCII case.
    pub prefixes: Vec<String>,
}

impl ContentFilter for DropDiagnoses {
    fn describe(&self) -> String {
        format!("diagnoses with codes starting {} removed", self.prefixes.join(", "))
    }

    fn filter(&self, content: &mut RecordContent) {
        for encounter in &mut content.encounters {
            encounter.diagnoses.retain(|d| {
                !self
                    .prefixes
                    .iter()
                    .any(|prefix| d.code.to_ascii_uppercase().starts_with(&prefix.to_ascii_uppercase()))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn sample() -> SourceContent {
        SourceContent {
            encounters: vec![
                Encounter {
                    encounter_type: "inpatient".into(),
                    status: "finished".into(),
                    admitted_at: Some(at("2024-03-01 00:00")),
                    facility_kind: Some("hospital".into()),
                    diagnoses: vec![
                        Diagnosis { system: "ICD10".into(), code: "I10".into(), role: Some("A".into()) },
                        Diagnosis { system: "ICD10".into(), code: "F32.9".into(), role: None },
                        Diagnosis { system: "ICD10".into(), code: "told the nurse about".into(), role: None },
                    ],
                },
                Encounter {
                    encounter_type: "outpatient".into(),
                    status: "cancelled".into(),
                    admitted_at: None,
                    facility_kind: None,
                    diagnoses: vec![],
                },
            ],
            results: vec![
                LabResult {
                    system: "LN".into(),
                    code: "718-7".into(),
                    observed_at: Some(at("2024-03-02 01:30")),
                    abnormal_flag: Some("L".into()),
                },
                LabResult {
                    system: "LN".into(),
                    code: "6690-2".into(),
                    observed_at: None,
                    abnormal_flag: Some("N".into()),
                },
            ],
            services: vec![
                Service { kind: "immunization".into(), occurred_at: at("2024-03-10 01:00") },
                Service { kind: "encounter".into(), occurred_at: at("2024-03-01 00:00") },
            ],
        }
    }

    #[test]
    fn content_is_coded_monthly_and_sorted() {
        let content = sample().generalise();
        assert_eq!(content.encounters.len(), 1, "the cancelled encounter is left out");
        let encounter = &content.encounters[0];
        assert_eq!(encounter.month.as_deref(), Some("2024-03"));
        assert_eq!(encounter.facility_kind.as_deref(), Some("hospital"));
        let codes: Vec<&str> = encounter.diagnoses.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["F32.9", "I10"], "free text is not a code");
        assert_eq!(content.results[0].abnormal, Some(false));
        assert_eq!(content.results[1].abnormal, Some(true));
        assert_eq!(content.services, vec![ExportService { month: "2024-03".into(), kind: "immunization".into() }]);
    }

    #[test]
    fn a_filter_drops_diagnoses_by_code() {
        let mut content = sample().generalise();
        let filter = DropDiagnoses { prefixes: vec!["f".into()] };
        filter.filter(&mut content);
        let codes: Vec<&str> = content.encounters[0].diagnoses.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["I10"]);
        assert_eq!(filter.describe(), "diagnoses with codes starting f removed");
        assert_eq!(KeepAll.describe(), "none");
    }
}
