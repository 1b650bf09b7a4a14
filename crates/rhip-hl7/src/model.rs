//! The domain events a message turns into, and what they carry.
//!
//! These are what the storage side applies: everything is escape-decoded, coded values are
//! rhip-core newtypes, times are UTC. They hold no HL7 structure beyond what a clinician or
//! a statistician would recognise (a visit number, a location "ward/room/bed").

use chrono::{NaiveDate, NaiveDateTime};
use rhip_core::{CitizenId, EncounterType, Ethnicity, MaritalStatus, RegionCode, Sex};

/// What a supported message means for the platform.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Event {
    /// ADT^A01: the patient was admitted.
    Admit {
        /// The patient (PID).
        patient: Patient,
        /// The inpatient visit.
        visit: Visit,
    },
    /// ADT^A02: the patient moved (new location PV1-3, prior PV1-6).
    Transfer {
        /// The patient (PID).
        patient: Patient,
        /// The visit, with its new and prior location.
        visit: Visit,
    },
    /// ADT^A03: the visit ended (PV1-45 discharge time).
    Discharge {
        /// The patient (PID).
        patient: Patient,
        /// The visit that ended.
        visit: Visit,
    },
    /// ADT^A04: outpatient (or emergency) registration.
    Register {
        /// The patient (PID).
        patient: Patient,
        /// The registered visit.
        visit: Visit,
    },
    /// ADT^A05: pre-admission.
    PreAdmit {
        /// The patient (PID).
        patient: Patient,
        /// The planned visit.
        visit: Visit,
    },
    /// ADT^A08: patient or visit information changed.
    UpdateVisit {
        /// The patient (PID).
        patient: Patient,
        /// The visit, when the message carries one.
        visit: Option<Visit>,
    },
    /// ADT^A11: an admission was cancelled.
    CancelAdmit {
        /// The patient (PID).
        patient: Patient,
        /// The cancelled visit.
        visit: Visit,
    },
    /// ADT^A13: a discharge was cancelled.
    CancelDischarge {
        /// The patient (PID).
        patient: Patient,
        /// The visit that goes on.
        visit: Visit,
    },
    /// ADT^A28: a person was added to the hospital's index.
    AddPerson {
        /// The person (PID).
        patient: Patient,
    },
    /// ADT^A31: a person's demographics changed.
    UpdatePerson {
        /// The person (PID).
        patient: Patient,
    },
    /// ADT^A40: two patient records are one person.
    Merge {
        /// The surviving patient (PID).
        patient: Patient,
        /// The identifiers of the record merged away (MRG-1).
        prior: Vec<Cx>,
    },
    /// ORU^R01: results (laboratory, examination).
    Results {
        /// The patient (PID).
        patient: Patient,
        /// The visit, when the message carries one.
        visit: Option<Visit>,
        /// The orders (OBR) with their observations (OBX).
        orders: Vec<Order>,
    },
    /// VXU^V04: immunizations given.
    Immunizations {
        /// The patient (PID).
        patient: Patient,
        /// The doses (RXA).
        doses: Vec<Dose>,
    },
}

impl Event {
    /// The patient every event is about.
    pub fn patient(&self) -> &Patient {
        match self {
            Event::Admit { patient, .. }
            | Event::Transfer { patient, .. }
            | Event::Discharge { patient, .. }
            | Event::Register { patient, .. }
            | Event::PreAdmit { patient, .. }
            | Event::UpdateVisit { patient, .. }
            | Event::CancelAdmit { patient, .. }
            | Event::CancelDischarge { patient, .. }
            | Event::AddPerson { patient }
            | Event::UpdatePerson { patient }
            | Event::Merge { patient, .. }
            | Event::Results { patient, .. }
            | Event::Immunizations { patient, .. } => patient,
        }
    }

    /// The visit, for events that carry one.
    pub fn visit(&self) -> Option<&Visit> {
        match self {
            Event::Admit { visit, .. }
            | Event::Transfer { visit, .. }
            | Event::Discharge { visit, .. }
            | Event::Register { visit, .. }
            | Event::PreAdmit { visit, .. }
            | Event::CancelAdmit { visit, .. }
            | Event::CancelDischarge { visit, .. } => Some(visit),
            Event::UpdateVisit { visit, .. } | Event::Results { visit, .. } => visit.as_ref(),
            Event::AddPerson { .. }
            | Event::UpdatePerson { .. }
            | Event::Merge { .. }
            | Event::Immunizations { .. } => None,
        }
    }

    /// The message type and trigger this event comes from, e.g. `"ADT^A01"` (for logs,
    /// metrics and the archive).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Admit { .. } => "ADT^A01",
            Event::Transfer { .. } => "ADT^A02",
            Event::Discharge { .. } => "ADT^A03",
            Event::Register { .. } => "ADT^A04",
            Event::PreAdmit { .. } => "ADT^A05",
            Event::UpdateVisit { .. } => "ADT^A08",
            Event::CancelAdmit { .. } => "ADT^A11",
            Event::CancelDischarge { .. } => "ADT^A13",
            Event::AddPerson { .. } => "ADT^A28",
            Event::UpdatePerson { .. } => "ADT^A31",
            Event::Merge { .. } => "ADT^A40",
            Event::Results { .. } => "ORU^R01",
            Event::Immunizations { .. } => "VXU^V04",
        }
    }
}

/// An extended composite ID (CX) from PID-3 / MRG-1: a hospital's identifier of a patient.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cx {
    /// CX-1, the identifier.
    pub value: String,
    /// CX-4 first sub-component (namespace ID; its universal ID when the namespace is
    /// empty); empty if none.
    pub assigning_authority: String,
    /// CX-5 identifier type code (table 0203), e.g. `"MR"`, `"NNCHN"`; empty if none.
    pub type_code: String,
}

/// The patient of a message (PID), in domain terms.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Patient {
    /// Every PID-3 repetition with a value, except the NNCHN (citizen ID) one.
    pub identifiers: Vec<Cx>,
    /// The citizen ID: PID-3 repetition with CX-5 `NNCHN`, else PID-19.
    pub citizen_id: Option<CitizenId>,
    /// PID-5: family and given name, joined without a space when both are CJK.
    pub name: String,
    /// PID-7, the date as written (never shifted by time zone); `None` when less precise
    /// than a day.
    pub birth_date: Option<NaiveDate>,
    /// PID-8 (table 0001 or GB/T 2261.1).
    pub sex: Option<Sex>,
    /// PID-22 when a GB 3304 code.
    pub ethnicity: Option<Ethnicity>,
    /// PID-16: GB/T 2261.2 code, or table 0002 letter mapped (S, M, W, D).
    pub marital_status: Option<MaritalStatus>,
    /// XAD-9 of the home address (PID-11 repetition with XAD-7 `H`).
    pub address_region: Option<RegionCode>,
    /// Street, other designation and city of the home address.
    pub address_line: Option<String>,
    /// PID-13 first repetition.
    pub phone: Option<String>,
    /// PID-29, UTC.
    pub deceased_at: Option<NaiveDateTime>,
    /// PD1-3 patient primary facility (first repetition with content): XON-1 organization
    /// name and its identifier (XON-10, else XON-3), rendered `name (id)`, or either alone.
    pub primary_facility: Option<String>,
    /// PD1-4 primary care provider (first repetition with content): XCN-2/XCN-3 name and
    /// XCN-1 identifier, rendered `name (id)`, or either alone.
    pub primary_provider: Option<String>,
    /// AL1 segments: the person's allergies, whatever the message type.
    pub allergies: Vec<Allergy>,
    /// NK1 segments: the person's contacts.
    pub next_of_kin: Vec<NextOfKin>,
    /// IN1 segments: the person's insurance.
    pub insurance: Vec<Insurance>,
}

/// A visit (PV1, PV2 and the DG1 segments of the message). AL1, NK1 and IN1 are about the
/// person, not the visit: they are on [`Patient`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Visit {
    /// PV1-2 mapped by `EncounterType::from_hl7_patient_class` (outpatient when unknown).
    pub patient_class: EncounterType,
    /// PV1-19 CX-1, the hospital's visit number.
    pub visit_number: Option<String>,
    /// PV1-3 rendered `point/room/bed`.
    pub location: Option<String>,
    /// PV1-6 rendered `point/room/bed`.
    pub prior_location: Option<String>,
    /// PV1-10 hospital service, else the PV1-3 point of care.
    pub department: Option<String>,
    /// PV1-7 attending doctor's name.
    pub attending: Option<String>,
    /// PV1-44, UTC.
    pub admitted_at: Option<NaiveDateTime>,
    /// PV1-45, UTC.
    pub discharged_at: Option<NaiveDateTime>,
    /// EVN-6 (occurred), else EVN-2 (recorded), UTC.
    pub event_time: Option<NaiveDateTime>,
    /// DG1 segments.
    pub diagnoses: Vec<Diagnosis>,
    /// PV2-3 admit reason (text, else code).
    pub admit_reason: Option<String>,
}

/// A diagnosis (DG1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnosis {
    /// DG1-3.1, e.g. `"I10"`.
    pub code: String,
    /// DG1-3.3, e.g. `"ICD10"`.
    pub system: String,
    /// DG1-3.2, else DG1-4.
    pub display: Option<String>,
    /// DG1-6 (A admitting, W working, F final).
    pub diagnosis_type: Option<String>,
    /// DG1-5, UTC.
    pub diagnosed_at: Option<NaiveDateTime>,
}

/// An allergy (AL1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Allergy {
    /// AL1-3.1 (empty when only the text is given).
    pub code: String,
    /// AL1-3.3 coding system.
    pub system: Option<String>,
    /// AL1-3.2.
    pub display: Option<String>,
    /// AL1-4 (code, else text).
    pub severity: Option<String>,
    /// AL1-5 first repetition.
    pub reaction: Option<String>,
}

/// A contact person (NK1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NextOfKin {
    /// NK1-2.
    pub name: String,
    /// NK1-3 (code, e.g. GB/T 4761, else text).
    pub relationship: Option<String>,
    /// NK1-5 first repetition.
    pub phone: Option<String>,
}

/// An insurance (IN1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Insurance {
    /// IN1-2.1 plan ID.
    pub plan: Option<String>,
    /// IN1-4 company name, else IN1-3 company ID.
    pub company: Option<String>,
    /// IN1-36 policy number, else IN1-49 insured's ID.
    pub member_id: Option<String>,
}

/// An order with its results (OBR and its OBX segments).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Order {
    /// OBR-2 placer order number.
    pub placer_number: Option<String>,
    /// OBR-3 filler order number.
    pub filler_number: Option<String>,
    /// OBR-4.1 universal service ID.
    pub code: String,
    /// OBR-4.3 coding system.
    pub system: String,
    /// OBR-4.2 text.
    pub display: Option<String>,
    /// OBR-7 observation time, UTC.
    pub observed_at: Option<NaiveDateTime>,
    /// OBR-22 results reported time, UTC.
    pub reported_at: Option<NaiveDateTime>,
    /// OBR-25 result status.
    pub status: Option<String>,
    /// The OBX segments that follow this OBR.
    pub observations: Vec<Observation>,
}

/// One result (OBX).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Observation {
    /// OBX-1.
    pub set_id: Option<String>,
    /// OBX-2 value type (NM, ST, CE, CWE, SN, …).
    pub value_type: String,
    /// OBX-3.1.
    pub code: String,
    /// OBX-3.3.
    pub system: String,
    /// OBX-3.2.
    pub display: Option<String>,
    /// OBX-4.
    pub sub_id: Option<String>,
    /// OBX-5 first repetition: coded values give their text (else code), SN its parts
    /// joined (`">10"`, `"1:128"`), others their components joined by spaces.
    pub value: Option<String>,
    /// OBX-6.1, else OBX-6.2.
    pub unit: Option<String>,
    /// OBX-7.
    pub reference_range: Option<String>,
    /// OBX-8 first repetition.
    pub abnormal_flags: Option<String>,
    /// OBX-11.
    pub status: Option<String>,
    /// OBX-14, UTC.
    pub observed_at: Option<NaiveDateTime>,
}

/// One immunization given (RXA).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Dose {
    /// RXA-5.1.
    pub vaccine_code: String,
    /// RXA-5.3.
    pub vaccine_system: String,
    /// RXA-5.2.
    pub vaccine_display: Option<String>,
    /// RXA-3, UTC.
    pub administered_at: Option<NaiveDateTime>,
    /// RXA-6 and RXA-7 (unit code, else text), e.g. `"0.5 mL"`.
    pub amount: Option<String>,
    /// RXA-15 first repetition.
    pub lot_number: Option<String>,
    /// RXA-17 (text, else code).
    pub manufacturer: Option<String>,
    /// RXA-20 (CP complete, RE refused, NA not administered, PA partial).
    pub completion_status: Option<String>,
}
