#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod check;
mod content;
mod format;
mod kanon;
mod rules;

#[cfg(test)]
mod schema_tests;

pub use check::{CheckError, CheckReport, Checker, ClassSize};
pub use content::{ContentFilter, DropDiagnoses};
pub use content::{
    Diagnosis, Encounter, ExportDiagnosis, ExportEncounter, ExportResult, ExportService, KeepAll, LabResult,
    RecordContent, Service, SourceContent,
};
pub use format::{
    Counts, ExportHeader, ExportRecord, HeaderFacts, Pseudonym, Suppression, Transformation, FORMAT, FORMAT_VERSION,
    PSEUDONYM_DOMAIN,
};
pub use kanon::{Birth, Census, ClassKey, ExportPlan, KError, QuasiIdentifiers, K};
pub use rules::{
    age_on, generalise_birth, generalise_region, generalise_region_text, generalise_sex, is_code_like, month_of,
    OLDEST_EXACT_AGE,
};
