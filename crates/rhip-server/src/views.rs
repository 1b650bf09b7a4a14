//! Turning stored records into API shapes; the one place that decides what
//! leaves the node (a citizen ID is masked unless residents read their own).

use rhip_api_types::{
    AllergyView, AuditEntryView, ContactView, CoverageView, DiagnosisView, DocumentView, EhrEntryView, EncounterView,
    FacilityView, IdentifierView, MergeView, ObservationView, PersonView, PrimaryCareView,
};
use rhip_store::{
    AllergyRecord, AuditRecord, ContactRecord, CoverageRecord, DiagnosisRecord, DocumentIndexRecord, EhrEntryRecord,
    EncounterRecord, FacilityRecord, MergeRecord, ObservationRecord, PersonRecord,
};

/// Whether a person view shows the full citizen ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdNumber {
    /// Keep the first six and last four characters.
    Masked,
    /// The resident's own record.
    Full,
}

/// What is shown with a person beyond the demographics: their contacts and
/// insurance, read under the same scope as the person (rows of other persons
/// are ignored, so one read can serve a page of persons).
#[derive(Clone, Copy, Debug, Default)]
pub struct PersonDetails<'a> {
    /// Contacts (any persons').
    pub contacts: &'a [ContactRecord],
    /// Insurance (any persons').
    pub coverages: &'a [CoverageRecord],
}

/// A person as the API shows it.
pub fn person(record: PersonRecord, details: PersonDetails<'_>, id_number: IdNumber) -> PersonView {
    let shown = record.id_number.map(|value| match id_number {
        IdNumber::Full => value,
        IdNumber::Masked => mask(&value),
    });
    let primary_care = (record.primary_facility.is_some() || record.primary_provider.is_some())
        .then_some(PrimaryCareView { facility: record.primary_facility, provider: record.primary_provider });
    let contacts = details
        .contacts
        .iter()
        .filter(|c| c.person_id == record.id)
        .map(|c| ContactView { name: c.name.clone(), relationship: non_empty(&c.relationship), phone: c.phone.clone() })
        .collect();
    let coverages = details
        .coverages
        .iter()
        .filter(|c| c.person_id == record.id)
        .map(|c| CoverageView {
            plan: non_empty(&c.plan),
            company: c.company.clone(),
            member_id: non_empty(&c.member_id),
        })
        .collect();
    PersonView {
        empi_id: record.id,
        home_region: record.home_region,
        name: record.name,
        sex: record.sex,
        birth_date: record.birth_date,
        id_number: shown,
        ethnicity: record.ethnicity,
        phone: record.phone,
        address_region: record.address_region,
        status: record.status,
        merged_into: record.merged_into,
        identifiers: record
            .identifiers
            .into_iter()
            .map(|i| IdentifierView { system: i.system, value: i.value, r#type: i.type_code })
            .collect(),
        primary_care,
        contacts,
        coverages,
    }
}

/// Key columns store an absent value as `''`; the API shows it as absent.
fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// An allergy as the API shows it.
pub fn allergy(record: AllergyRecord) -> AllergyView {
    AllergyView {
        id: record.id,
        code: record.code,
        system: record.code_system,
        display: record.display,
        severity: record.severity,
        reaction: record.reaction,
        facility: record.facility_code,
        recorded_at: record.recorded_at,
    }
}

fn mask(value: &str) -> String {
    value.chars().enumerate().map(|(i, c)| if i < 6 || i + 4 >= value.chars().count() { c } else { '*' }).collect()
}

/// An EHR entry as the API shows it.
pub fn ehr_entry(record: EhrEntryRecord) -> EhrEntryView {
    EhrEntryView {
        id: record.id,
        kind: record.kind,
        occurred_at: record.occurred_at,
        facility: record.facility_code,
        source_region: record.source_region,
        summary: record.summary,
        document_id: record.document_id,
        encounter_id: record.encounter_id,
    }
}

/// A document index entry as the API shows it.
pub fn document(record: DocumentIndexRecord) -> DocumentView {
    DocumentView {
        id: record.id,
        person: record.person_id,
        r#type: record.type_code,
        title: record.title,
        effective_at: record.effective_at,
        author_facility: record.author_facility,
        custodian: record.custodian,
        confidentiality: record.confidentiality,
        sha256: record.sha256,
        size_bytes: record.size_bytes,
        status: record.status,
        kind: record.kind,
        type_system: record.type_system,
        encounter: record.encounter_id,
        cda_id: record.cda_id,
        set_id: record.set_id,
        version_number: record.version_number,
        supersedes: record.supersedes,
    }
}

/// A facility as the API shows it.
pub fn facility(record: FacilityRecord) -> FacilityView {
    FacilityView {
        code: record.code,
        name: record.name,
        kind: record.kind,
        region: record.region,
        status: record.status,
        created_at: record.created_at,
    }
}

/// An audit entry as the API shows it.
pub fn audit_entry(record: AuditRecord) -> AuditEntryView {
    AuditEntryView {
        seq: record.seq,
        occurred_at: record.occurred_at,
        actor: record.actor,
        role: record.role,
        actor_region: record.actor_region,
        facility: record.facility_code,
        action: record.action,
        resource_type: record.resource_type,
        resource_id: record.resource_id,
        person: record.person_id,
        purpose: record.purpose,
        outcome: record.outcome,
        http_status: record.http_status,
        request_id: record.request_id,
        detail: record.detail,
        recorded_at: record.origin_region,
    }
}

/// An encounter with the diagnoses (from `diagnoses`) that belong to it.
pub fn encounter(record: EncounterRecord, diagnoses: &[DiagnosisRecord]) -> EncounterView {
    let own = diagnoses
        .iter()
        .filter(|d| d.encounter_id.as_deref() == Some(record.id.as_str()))
        .map(|d| DiagnosisView {
            system: d.code_system.clone(),
            code: d.code.clone(),
            display: d.display.clone(),
            r#type: d.diagnosis_type.clone(),
            diagnosed_at: d.diagnosed_at,
        })
        .collect();
    EncounterView {
        id: record.id,
        facility: record.facility_code,
        visit_number: record.visit_number,
        encounter_type: record.encounter_type,
        status: record.status,
        admitted_at: record.admitted_at,
        discharged_at: record.discharged_at,
        department: record.department,
        location: record.location,
        prior_location: record.prior_location,
        attending: record.attending,
        admit_reason: record.admit_reason,
        diagnoses: own,
    }
}

/// A result as the API shows it.
pub fn observation(record: ObservationRecord) -> ObservationView {
    ObservationView {
        id: record.id,
        report: record.report_id,
        system: record.code_system,
        code: record.code,
        display: record.display,
        value: record.value,
        value_type: record.value_type,
        unit: record.unit,
        reference_range: record.reference_range,
        abnormal_flag: record.abnormal_flag,
        status: record.status,
        observed_at: record.observed_at,
    }
}

/// A merge as the API shows it.
pub fn merge(record: MergeRecord) -> MergeView {
    MergeView {
        id: record.id,
        survivor: record.survivor_id,
        merged: record.merged_id,
        actor: record.actor,
        merged_at: record.merged_at,
        undone_at: record.undone_at,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking_keeps_region_and_check_digits() {
        assert_eq!(super::mask("11010519491231002X"), "110105********002X");
    }
}
