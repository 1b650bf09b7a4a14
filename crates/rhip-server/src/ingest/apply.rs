//! Applying an accepted HL7 v2 event to DID, EMRD and EHRD.
//!
//! The person is linked first (citizen ID, then local identifier, then the
//! deterministic demographic rule); then the event's clinical content is
//! written: the person's primary care (PD1), allergies (AL1), contacts (NK1)
//! and insurance (IN1) from any event that carries them, encounters by
//! facility + visit number with their admit reason (PV2-3), diagnoses,
//! results, immunizations, and an EHR index entry for each encounter and
//! report. A message without PD1, AL1, NK1 or IN1 costs no statement for them.

use chrono::NaiveDateTime;
use rhip_core::{EhrEntryKind, EncounterType, Identifier, PersonDemographics, Sex};
use rhip_hl7::{Cx, ErrorCode, Event, Header, Location, Patient, Problem, Visit};
use rhip_store::{
    DemographicsChange, EncounterChanges, EncounterRecord, NewAllergy, NewContact, NewCoverage, NewDiagnosis,
    NewEhrEntry, NewEncounter, NewObservation, PrimaryCare, StoreError, Tx,
};

/// Why an event could not be applied.
#[derive(Debug)]
pub enum ApplyError {
    /// The content breaks a rule of the records (answered with AE).
    Content(Vec<Problem>),
    /// Storage failed.
    Store(StoreError),
}

impl From<StoreError> for ApplyError {
    fn from(error: StoreError) -> ApplyError {
        ApplyError::Store(error)
    }
}

// Savepoints need the error to absorb the database's own errors.
impl From<rhip_store::DieselError> for ApplyError {
    fn from(error: rhip_store::DieselError) -> ApplyError {
        ApplyError::Store(error.into())
    }
}

/// Applies one event; returns the EMPI id of the person it was about.
pub fn apply(
    tx: &mut Tx<'_>,
    header: &Header,
    event: &Event,
    submission_id: &str,
) -> Result<Option<String>, ApplyError> {
    let facility = header.sending_facility.as_str();
    let patient = event.patient();
    let change = match event {
        Event::UpdatePerson { .. } | Event::UpdateVisit { .. } | Event::AddPerson { .. } | Event::Merge { .. } => {
            DemographicsChange::Replace
        }
        _ => DemographicsChange::FillGaps,
    };
    let problems = held_domain_problems(tx, patient)?;
    if !problems.is_empty() {
        return Err(ApplyError::Content(problems));
    }
    tx.lock_for(&format!("{facility}|{}", patient_key(patient)))?;
    let facts = demographics(patient, facility);
    let linked = tx.link_person(&facts, change, Some(submission_id))?;
    let person = linked.person_id;
    let at = |visit: Option<&Visit>| {
        visit.and_then(|v| v.event_time).or(header.message_time).unwrap_or_else(|| chrono::Utc::now().naive_utc())
    };
    person_details(tx, &person, patient, change, facility, submission_id, at(event.visit()))?;
    match event {
        Event::AddPerson { .. } | Event::UpdatePerson { .. } => {}
        Event::Merge { prior, .. } => merge(tx, &person, prior, facility, submission_id)?,
        Event::Admit { visit, .. } => {
            let changes = EncounterChanges {
                status: Some("in_progress".into()),
                admitted_at: visit.admitted_at.or(Some(at(Some(visit)))),
                ..visit_changes(visit)
            };
            visit_event(tx, &person, facility, header, visit, changes, "入院", true)?;
        }
        Event::Register { visit, .. } => {
            let changes = EncounterChanges {
                status: Some("in_progress".into()),
                admitted_at: visit.admitted_at.or(Some(at(Some(visit)))),
                ..visit_changes(visit)
            };
            visit_event(tx, &person, facility, header, visit, changes, "就诊登记", true)?;
        }
        Event::PreAdmit { visit, .. } => {
            let changes = EncounterChanges { status: Some("planned".into()), ..visit_changes(visit) };
            visit_event(tx, &person, facility, header, visit, changes, "预约入院", false)?;
        }
        Event::Transfer { visit, .. } => {
            // Without PV1-6 the prior location is where the encounter was until now.
            let current = match &visit.visit_number {
                Some(number) => tx.find_encounter(facility, number)?.and_then(|e| e.location),
                None => None,
            };
            let changes = EncounterChanges {
                status: Some("in_progress".into()),
                prior_location: visit.prior_location.clone().or(current),
                ..visit_changes(visit)
            };
            visit_event(tx, &person, facility, header, visit, changes, "转科/转床", true)?;
        }
        Event::Discharge { visit, .. } => {
            let changes = EncounterChanges {
                status: Some("finished".into()),
                discharged_at: Some(visit.discharged_at.or(Some(at(Some(visit))))),
                ..visit_changes(visit)
            };
            visit_event(tx, &person, facility, header, visit, changes, "出院", true)?;
        }
        Event::UpdateVisit { visit: Some(visit), .. } => {
            visit_event(tx, &person, facility, header, visit, visit_changes(visit), "就诊信息更新", true)?;
        }
        Event::UpdateVisit { visit: None, .. } => {}
        Event::CancelAdmit { visit, .. } => {
            let encounter = existing_encounter(tx, facility, visit)?;
            let changes = EncounterChanges { status: Some("cancelled".into()), ..EncounterChanges::default() };
            tx.update_encounter(&encounter.id, &changes)?;
        }
        Event::CancelDischarge { visit, .. } => {
            let encounter = existing_encounter(tx, facility, visit)?;
            let changes = EncounterChanges {
                status: Some("in_progress".into()),
                discharged_at: Some(None),
                ..EncounterChanges::default()
            };
            tx.update_encounter(&encounter.id, &changes)?;
        }
        Event::Results { visit, orders, .. } => {
            let encounter = match visit {
                Some(visit) if visit.visit_number.is_some() => {
                    let changes = visit_changes(visit);
                    Some(visit_event(tx, &person, facility, header, visit, changes, "就诊", true)?)
                }
                _ => None,
            };
            for (index, order) in orders.iter().enumerate() {
                let report_id = order
                    .filler_number
                    .clone()
                    .or_else(|| order.placer_number.clone())
                    .unwrap_or_else(|| format!("{}-{}", header.control_id, index + 1));
                let report_id = format!("{facility}|{report_id}");
                for observation in &order.observations {
                    tx.insert_observation(&NewObservation {
                        person_id: person.clone(),
                        encounter_id: encounter.as_ref().map(|e| e.id.clone()),
                        report_id: Some(report_id.clone()),
                        code_system: observation.system.clone(),
                        code: observation.code.clone(),
                        display: observation.display.clone(),
                        value: observation.value.clone(),
                        value_type: Some(observation.value_type.clone()),
                        unit: observation.unit.clone(),
                        reference_range: observation.reference_range.clone(),
                        abnormal_flag: observation.abnormal_flags.clone(),
                        status: observation.status.clone().unwrap_or_else(|| "F".into()),
                        observed_at: observation.observed_at.or(order.observed_at),
                        submission_id: Some(submission_id.to_string()),
                        document_id: None,
                    })?;
                }
                let name = order.display.clone().unwrap_or_else(|| order.code.clone());
                let abnormal = order.observations.iter().filter(|o| is_abnormal(o.abnormal_flags.as_deref())).count();
                let summary = match abnormal {
                    0 => format!("检验报告 {name}（{} 项）", order.observations.len()),
                    n => format!("检验报告 {name}（{} 项，{n} 项异常）", order.observations.len()),
                };
                tx.insert_ehr_entry(&NewEhrEntry {
                    person_id: person.clone(),
                    kind: EhrEntryKind::LabReport,
                    occurred_at: order.reported_at.or(order.observed_at).unwrap_or_else(|| at(visit.as_ref())),
                    facility_code: Some(facility.to_string()),
                    summary,
                    encounter_id: encounter.as_ref().map(|e| e.id.clone()),
                    document_id: None,
                })?;
            }
        }
        Event::Immunizations { doses, .. } => {
            for dose in doses {
                let vaccine = dose.vaccine_display.clone().unwrap_or_else(|| dose.vaccine_code.clone());
                let mut summary = format!("预防接种 {vaccine}");
                if let Some(lot) = &dose.lot_number {
                    summary.push_str(&format!(" 批号 {lot}"));
                }
                if let Some(status) = &dose.completion_status {
                    if status != "CP" {
                        summary.push_str(&format!("（状态 {status}）"));
                    }
                }
                tx.insert_ehr_entry(&NewEhrEntry {
                    person_id: person.clone(),
                    kind: EhrEntryKind::Immunization,
                    occurred_at: dose.administered_at.unwrap_or_else(|| at(None)),
                    facility_code: Some(facility.to_string()),
                    summary,
                    encounter_id: None,
                    document_id: None,
                })?;
            }
        }
    }
    Ok(Some(person))
}

/// Stores what the message says about the person beyond the demographics:
/// primary care (PD1, filling gaps or replacing like the demographics),
/// allergies, contacts and insurance (each updated in place when already
/// known). Nothing is read or written for segments the message lacks.
fn person_details(
    tx: &mut Tx<'_>,
    person: &str,
    patient: &Patient,
    change: DemographicsChange,
    facility: &str,
    submission_id: &str,
    recorded_at: NaiveDateTime,
) -> Result<(), ApplyError> {
    if patient.primary_facility.is_some() || patient.primary_provider.is_some() {
        let care =
            PrimaryCare { facility: patient.primary_facility.clone(), provider: patient.primary_provider.clone() };
        tx.set_primary_care(person, &care, change)?;
    }
    for allergy in &patient.allergies {
        tx.upsert_allergy(&NewAllergy {
            person_id: person.to_string(),
            code: allergy.code.clone(),
            code_system: allergy.system.clone(),
            display: allergy.display.clone(),
            severity: allergy.severity.clone(),
            reaction: allergy.reaction.clone(),
            facility_code: facility.to_string(),
            submission_id: Some(submission_id.to_string()),
            recorded_at,
        })?;
    }
    for contact in &patient.next_of_kin {
        tx.upsert_contact(&NewContact {
            person_id: person.to_string(),
            name: contact.name.clone(),
            relationship: contact.relationship.clone(),
            phone: contact.phone.clone(),
            facility_code: facility.to_string(),
            submission_id: Some(submission_id.to_string()),
        })?;
    }
    for insurance in &patient.insurance {
        tx.upsert_coverage(&NewCoverage {
            person_id: person.to_string(),
            plan: insurance.plan.clone(),
            company: insurance.company.clone(),
            member_id: insurance.member_id.clone(),
            facility_code: facility.to_string(),
            submission_id: Some(submission_id.to_string()),
        })?;
    }
    Ok(())
}

/// A stable key for "this patient at this facility", for ordering locks.
fn patient_key(patient: &Patient) -> String {
    if let Some(id) = &patient.citizen_id {
        return id.as_str().to_string();
    }
    patient.identifiers.first().map(|cx| format!("{}|{}", cx.assigning_authority, cx.value)).unwrap_or_default()
}

/// The submitted patient as DID demographics; identifiers without an
/// assigning authority are the sending facility's.
pub fn demographics(patient: &Patient, facility: &str) -> PersonDemographics {
    PersonDemographics {
        name: patient.name.clone(),
        sex: patient.sex.unwrap_or(Sex::Unknown),
        birth_date: patient.birth_date,
        id_number: patient.citizen_id.clone(),
        ethnicity: patient.ethnicity,
        marital_status: patient.marital_status,
        phone: patient.phone.clone(),
        address_region: patient.address_region,
        address_line: patient.address_line.clone(),
        identifiers: patient.identifiers.iter().map(|cx| identifier(cx, facility)).collect(),
    }
}

fn identifier(cx: &Cx, facility: &str) -> Identifier {
    let system = if cx.assigning_authority.is_empty() { facility.to_string() } else { cx.assigning_authority.clone() };
    Identifier { system, value: cx.value.clone(), type_code: (!cx.type_code.is_empty()).then(|| cx.type_code.clone()) }
}

fn visit_changes(visit: &Visit) -> EncounterChanges {
    EncounterChanges {
        encounter_type: Some(visit.patient_class),
        admitted_at: visit.admitted_at,
        department: visit.department.clone(),
        location: visit.location.clone(),
        prior_location: visit.prior_location.clone(),
        attending: visit.attending.clone(),
        admit_reason: visit.admit_reason.clone(),
        ..EncounterChanges::default()
    }
}

/// Creates or updates the encounter a visit event is about, adds its
/// diagnoses, and indexes a new encounter in the EHR.
#[expect(clippy::too_many_arguments, reason = "one call site per event kind, all arguments distinct")]
fn visit_event(
    tx: &mut Tx<'_>,
    person: &str,
    facility: &str,
    header: &Header,
    visit: &Visit,
    changes: EncounterChanges,
    label: &str,
    index_in_ehr: bool,
) -> Result<EncounterRecord, ApplyError> {
    // Registrations without a visit number get one from the message, so a resend does not duplicate them.
    let visit_number = visit.visit_number.clone().unwrap_or_else(|| format!("MSG-{}", header.control_id));
    let encounter = match tx.find_encounter(facility, &visit_number)? {
        Some(existing) => tx.update_encounter(&existing.id, &changes)?,
        None => {
            let new = NewEncounter {
                person_id: person.to_string(),
                facility_code: facility.to_string(),
                visit_number,
                encounter_type: changes.encounter_type.unwrap_or(EncounterType::Outpatient),
                status: changes.status.clone().unwrap_or_else(|| "in_progress".into()),
                admitted_at: changes.admitted_at,
                discharged_at: changes.discharged_at.flatten(),
                department: changes.department.clone(),
                location: changes.location.clone(),
                prior_location: changes.prior_location.clone(),
                attending: changes.attending.clone(),
                admit_reason: changes.admit_reason.clone(),
            };
            let encounter = tx.insert_encounter(&new)?;
            if index_in_ehr {
                let kind_name = encounter_type_name(&encounter.encounter_type);
                let department = encounter.department.clone().unwrap_or_default();
                tx.insert_ehr_entry(&NewEhrEntry {
                    person_id: person.to_string(),
                    kind: EhrEntryKind::Encounter,
                    occurred_at: encounter.admitted_at.or(header.message_time).unwrap_or_else(now),
                    facility_code: Some(facility.to_string()),
                    summary: format!("{kind_name} {label} {department}").trim().to_string(),
                    encounter_id: Some(encounter.id.clone()),
                    document_id: None,
                })?;
            }
            encounter
        }
    };
    for diagnosis in &visit.diagnoses {
        tx.insert_diagnosis(&NewDiagnosis {
            encounter_id: Some(encounter.id.clone()),
            person_id: encounter.person_id.clone(),
            code_system: diagnosis.system.clone(),
            code: diagnosis.code.clone(),
            display: diagnosis.display.clone(),
            diagnosis_type: diagnosis.diagnosis_type.clone(),
            diagnosed_at: diagnosis.diagnosed_at,
            document_id: None,
        })?;
    }
    Ok(encounter)
}

fn existing_encounter(tx: &mut Tx<'_>, facility: &str, visit: &Visit) -> Result<EncounterRecord, ApplyError> {
    let number = visit.visit_number.clone().unwrap_or_default();
    match tx.find_encounter(facility, &number)? {
        Some(encounter) => Ok(encounter),
        None => Err(ApplyError::Content(vec![Problem {
            location: Location {
                segment: "PV1".into(),
                sequence: 1,
                field: Some(19),
                repetition: None,
                component: Some(1),
                subcomponent: None,
            },
            code: ErrorCode::UnknownKeyIdentifier,
            message: format!("no encounter with visit number {number:?} from facility {facility}"),
        }])),
    }
}

fn merge(tx: &mut Tx<'_>, survivor: &str, prior: &[Cx], facility: &str, submission_id: &str) -> Result<(), ApplyError> {
    let mut merged_any = false;
    for cx in prior {
        let Some(merged) = tx.person_by_identifier(&identifier(cx, facility))? else { continue };
        if merged != survivor {
            let actor = format!("facility:{facility}");
            let record = tx.merge_persons(survivor, &merged, Some(submission_id), &actor)?;
            for person in [&record.merged_id, &record.survivor_id] {
                tx.append_audit(&rhip_store::NewAuditEntry {
                    actor: actor.clone(),
                    role: Some("hospital_system".into()),
                    facility_code: Some(facility.to_string()),
                    action: "merge".into(),
                    resource_type: "person".into(),
                    resource_id: Some(record.id.clone()),
                    person_id: Some(person.clone()),
                    outcome: "success".into(),
                    detail: Some(format!("{} merged into {} (ADT^A40)", record.merged_id, record.survivor_id)),
                    ..rhip_store::NewAuditEntry::default()
                })?;
            }
        }
        merged_any = true;
    }
    if merged_any {
        return Ok(());
    }
    let listed = prior.iter().map(|cx| format!("{}|{}", identifier(cx, facility).system, cx.value)).collect::<Vec<_>>();
    Err(ApplyError::Content(vec![Problem {
        location: Location {
            segment: "MRG".into(),
            sequence: 1,
            field: Some(1),
            repetition: None,
            component: Some(1),
            subcomponent: None,
        },
        code: ErrorCode::UnknownKeyIdentifier,
        message: format!("prior patient {} is not known at this node", listed.join(", ")),
    }]))
}

fn is_abnormal(flags: Option<&str>) -> bool {
    matches!(flags.map(str::trim), Some(flag) if !flag.is_empty() && flag != "N")
}

fn encounter_type_name(encounter_type: &str) -> &'static str {
    EncounterType::parse(encounter_type).map_or("就诊", |t| t.name_zh())
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Coded demographics checked against the versions of their value domains
/// this node holds (published by the national node and received down the
/// federation); a code the version in force no longer lists is refused, with
/// the field and the version named. Without a published version the
/// embedded table, already checked when the message was read, applies.
fn held_domain_problems(tx: &mut Tx<'_>, patient: &Patient) -> Result<Vec<Problem>, StoreError> {
    let coded = [
        ("GB/T 2261.1", 8, patient.sex.map(|s| s.code().to_string())),
        ("GB/T 2261.2", 16, patient.marital_status.map(|m| m.code().to_string())),
        ("GB 3304", 22, patient.ethnicity.map(|e| e.code().to_string())),
    ];
    let mut problems = Vec::new();
    for (domain, field, code) in coded {
        let Some(code) = code else { continue };
        if let Some(held) = tx.held_value_domain(domain)? {
            if !held.codes.contains(&code) {
                problems.push(Problem::new(
                    Location::field("PID", 1, field),
                    ErrorCode::TableValueNotFound,
                    format!(
                        "PID-{field}: {code:?} is not a code of {domain} version {} held by this node",
                        held.version
                    ),
                ));
            }
        }
    }
    Ok(problems)
}
