//! De-identified exports, shared by `rhip export deidentified` and
//! `GET /api/v1/exports/deidentified`: the store's rows through `rhip-deid`'s
//! rules into a JSON Lines file, which is then checked by `rhip-deid`'s own
//! checker before anyone may have it.
//!
//! One read-only snapshot (`Tx::export_snapshot`) holds both passes: the
//! census of equivalence classes, then the records, a page of persons at a
//! time with their clinical rows in one query per kind. The file is written
//! to a path the caller chose (a temporary name), flushed and synced, read
//! back through [`rhip_deid::Checker`] (an export that would fail its own
//! check is refused, not released), and only then audited and released by
//! the caller: renamed into place or streamed. The audit entry is one per
//! export, with the counts and the file's SHA-256, and no identifier.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use chrono::Utc;
use rhip_auth::DataKeyRing;
use rhip_core::{ConsentCategory, RegionCode, Restrictions};
use rhip_deid::{
    Census, Checker, ContentFilter, Diagnosis, Encounter, ExportHeader, HeaderFacts, LabResult, QuasiIdentifiers,
    Service, SourceContent, K, PSEUDONYM_DOMAIN,
};
use rhip_store::{ExportClinical, ExportPerson, NewAuditEntry, Scope, Store, StoreError, Tx};
use sha2::{Digest, Sha256};

/// Persons per page of the two passes.
const PAGE: i64 = 1_000;

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// The region whose residents (by home region, its subtree) are considered.
    pub region: RegionCode,
    /// Smallest equivalence class.
    pub k: K,
    /// The stated purpose, for the audit log.
    pub purpose: String,
}

/// A written and checked export.
#[derive(Clone, Debug)]
pub struct WrittenExport {
    /// Its header (what was done, the counts).
    pub header: ExportHeader,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why an export could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written or read back.
    #[error("export file: {0}")]
    Io(#[from] std::io::Error),
    /// A line could not be encoded.
    #[error("export encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// The export failed its own check; it is not released.
    #[error("the export failed its own check: {0}")]
    SelfCheck(String),
}

/// Writes the export of `request` to `path` (which must not exist), checks
/// it, and returns its header. On any failure the file is removed.
pub fn write_export(
    store: &Store,
    keys: &DataKeyRing,
    request: &ExportRequest,
    filter: &dyn ContentFilter,
    path: &Path,
) -> Result<WrittenExport, ExportError> {
    let written = write_and_check(store, keys, request, filter, path);
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

fn write_and_check(
    store: &Store,
    keys: &DataKeyRing,
    request: &ExportRequest,
    filter: &dyn ContentFilter,
    path: &Path,
) -> Result<WrittenExport, ExportError> {
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut out = BufWriter::new(file);
    let header = store.read(|tx| Ok(export_in(tx, keys, request, filter, &mut out)))??;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let (report, sha256, bytes) = check_file(path)?;
    if !report.passed {
        let first = report
            .below_k
            .first()
            .map(|class| format!("class {class}, fewer than k={}", report.k))
            .or_else(|| report.problems.first().cloned())
            .unwrap_or_default();
        return Err(ExportError::SelfCheck(first));
    }
    Ok(WrittenExport { header, sha256, bytes })
}

/// Both passes in one snapshot; lines go to `out`.
fn export_in(
    tx: &mut Tx<'_>,
    keys: &DataKeyRing,
    request: &ExportRequest,
    filter: &dyn ContentFilter,
    out: &mut impl Write,
) -> Result<ExportHeader, ExportError> {
    tx.export_snapshot()?;
    let scope = Scope::Region(request.region);
    let mut census = Census::new(request.region, Utc::now());
    let mut after: Option<String> = None;
    loop {
        let page = tx.export_persons(&scope, after.as_deref(), PAGE)?;
        page.iter().for_each(|person| census.add(&quasi(person)));
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let mut plan = census.plan(request.k);
    let header = plan.header(&HeaderFacts { node_region: tx.node_region() }, &WithConsent(filter));
    writeln!(out, "{}", header.to_line()?)?;
    let pseudonym = |empi_id: &str| keys.blind_index(PSEUDONYM_DOMAIN, empi_id);
    let mut after: Option<String> = None;
    loop {
        let page = tx.export_persons(&scope, after.as_deref(), PAGE)?;
        let wanted: Vec<String> =
            page.iter().filter(|person| plan.is_exported(&quasi(person))).map(|person| person.id.clone()).collect();
        let mut clinical = tx.export_clinical(&wanted)?;
        withhold_by_consent(&mut clinical, &tx.restricted_among(&wanted, Restrictions::any)?);
        let mut contents = contents(clinical);
        for person in &page {
            let content = contents.remove(&person.id).unwrap_or_default();
            if let Some(record) = plan.record(&person.id, &quasi(person), content, &pseudonym, filter) {
                writeln!(out, "{}", record.to_line()?)?;
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = Some(last.id.clone()),
            _ => break,
        }
    }
    if !plan.is_complete() {
        return Err(ExportError::SelfCheck(format!(
            "{} records written where the census announced {}",
            plan.emitted(),
            plan.counts().records_exported
        )));
    }
    out.flush()?;
    Ok(header)
}

/// The header's statement of what was removed: the caller's filter and,
/// always, the residents' consent.
struct WithConsent<'a>(&'a dyn ContentFilter);

impl ContentFilter for WithConsent<'_> {
    fn describe(&self) -> String {
        let consent = "encounters in a category the resident restricted (consent), with their diagnoses, results \
                       and EHR entries, withheld";
        match self.0.describe().as_str() {
            "none" => consent.to_string(),
            other => format!("{other}; {consent}"),
        }
    }

    fn filter(&self, content: &mut rhip_deid::RecordContent) {
        self.0.filter(content);
    }
}

/// Removes from a page's rows what residents restricted: an export leaves the
/// platform, so either restriction keeps the category out. An encounter goes
/// with all its diagnoses, results and EHR entries.
fn withhold_by_consent(rows: &mut ExportClinical, restricted: &HashMap<String, BTreeSet<ConsentCategory>>) {
    if restricted.is_empty() {
        return;
    }
    let withheld: HashSet<String> = rows
        .diagnoses
        .iter()
        .filter(|d| {
            ConsentCategory::of_diagnosis(&d.code_system, &d.code)
                .is_some_and(|category| restricted.get(&d.person_id).is_some_and(|set| set.contains(&category)))
        })
        .map(|d| d.encounter_id.clone())
        .collect();
    let kept = |encounter: &Option<String>| !encounter.as_ref().is_some_and(|e| withheld.contains(e));
    rows.encounters.retain(|e| !withheld.contains(&e.id));
    rows.diagnoses.retain(|d| !withheld.contains(&d.encounter_id));
    rows.observations.retain(|o| kept(&o.encounter_id));
    rows.ehr_entries.retain(|e| kept(&e.encounter_id));
}

/// A stored person's quasi-identifiers.
fn quasi(person: &ExportPerson) -> QuasiIdentifiers<'_> {
    QuasiIdentifiers { sex: &person.sex, birth_date: person.birth_date, home_region: &person.home_region }
}

/// The clinical rows of a page, by person.
fn contents(rows: ExportClinical) -> HashMap<String, SourceContent> {
    let mut by_person: HashMap<String, SourceContent> = HashMap::new();
    let mut diagnoses: HashMap<String, Vec<Diagnosis>> = HashMap::new();
    for row in rows.diagnoses {
        diagnoses.entry(row.encounter_id).or_default().push(Diagnosis {
            system: row.code_system,
            code: row.code,
            role: row.diagnosis_type,
        });
    }
    for row in rows.encounters {
        by_person.entry(row.person_id).or_default().encounters.push(Encounter {
            diagnoses: diagnoses.remove(&row.id).unwrap_or_default(),
            encounter_type: row.encounter_type,
            status: row.status,
            admitted_at: row.admitted_at,
            facility_kind: row.facility_kind,
        });
    }
    for row in rows.observations {
        by_person.entry(row.person_id).or_default().results.push(LabResult {
            system: row.code_system,
            code: row.code,
            observed_at: row.observed_at,
            abnormal_flag: row.abnormal_flag,
        });
    }
    for row in rows.ehr_entries {
        by_person
            .entry(row.person_id)
            .or_default()
            .services
            .push(Service { kind: row.kind, occurred_at: row.occurred_at });
    }
    by_person
}

/// Runs [`Checker`] over a file; also returns its SHA-256 and size. A file
/// that is not an export is an `InvalidData` error naming the line.
pub fn check_file(path: &Path) -> Result<(rhip_deid::CheckReport, String, u64), std::io::Error> {
    check_file_against(path, None)
}

/// [`check_file`] against `k` instead of the header's.
pub fn check_file_against(path: &Path, k: Option<K>) -> Result<(rhip_deid::CheckReport, String, u64), std::io::Error> {
    let invalid = |e: rhip_deid::CheckError| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string());
    let mut reader = BufReader::new(std::fs::File::open(path)?);
    let mut checker = Checker::new(k);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line)?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        hasher.update(line.as_bytes());
        checker.feed(line.trim_end_matches(['\n', '\r'])).map_err(invalid)?;
    }
    let report = checker.finish().map_err(invalid)?;
    Ok((report, hex::encode(hasher.finalize()), bytes))
}

/// The one audit entry of an export, completing `base` (who asked, from
/// where): the region as the resource, the purpose, and the counts and the
/// file's hash as detail. No person, no identifier.
pub fn audit_entry(mut base: NewAuditEntry, request: &ExportRequest, written: &WrittenExport) -> NewAuditEntry {
    let counts = &written.header.counts;
    base.action = "export".into();
    base.resource_type = "deidentified_export".into();
    base.resource_id = Some(request.region.as_str().to_string());
    base.person_id = None;
    base.purpose = Some(request.purpose.clone());
    base.outcome = "success".into();
    base.detail = Some(
        serde_json::json!({
            "region": request.region.as_str(),
            "k": request.k.get(),
            "format_version": written.header.format_version,
            "persons_considered": counts.persons_considered,
            "records_exported": counts.records_exported,
            "records_suppressed": counts.records_suppressed,
            "classes_suppressed": counts.classes_suppressed,
            "sha256": written.sha256,
        })
        .to_string(),
    );
    base
}
