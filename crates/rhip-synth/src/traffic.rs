//! Hospital traffic: a stream of episodes, each a few HL7 v2 messages (and
//! sometimes a CDA document) about one resident at one facility, every one
//! labelled with the answer the county node must give.
//!
//! Episode *e* is computed from `(seed, e)` alone (and the episode count,
//! which spreads the episodes over the year before `as_of`), so the stream is
//! an iterator holding one episode at a time. The first episodes are
//! scripted: each county gets every scenario once (every kind of visit, the
//! duplicates, each kind of invalid message, patients from another province),
//! so even a population of 100 exercises everything. The rest are drawn:
//! a resident, a scenario fitting their age, usually a facility of their home
//! county, sometimes one elsewhere in the province or in another province.
//!
//! Linking is exercised by the duplicates episode: a registration, the same
//! message sent again (the node answers from its archive), a result with the
//! name miswritten but the right citizen ID, a result with only the
//! hospital's record number. All four are one person.

use std::collections::VecDeque;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rhip_core::{EncounterType, RegionCode, Sex};
use serde::Serialize;

use crate::clinical::{self, Diagnosis, Panel, Test};
use crate::documents::{self, VisitFacts};
use crate::facilities::{self, Facility};
use crate::hl7::{self, PidInput, Pv1Input};
use crate::names;
use crate::population::{trait_of, Resident};
use crate::rng::{Rng, Stream};
use crate::Synth;

/// How a submission reaches the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An HL7 v2 message over MLLP (or `POST /api/v1/hl7v2`).
    Mllp,
    /// A CDA document posted to `POST /api/v1/documents` with the facility's
    /// `hospital_system` token.
    Http,
}

/// The answer a correct node gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Stored: ACK `AA`, or HTTP 201.
    Accept,
    /// Understood but wrong content: ACK `AE` with ERR segments naming it.
    Error,
    /// Refused outright (unreadable, unsupported, unknown sender): ACK `AR`
    /// with an ERR segment.
    Reject,
}

impl Expected {
    /// MSA-1 of the expected ACK.
    pub fn ack_code(&self) -> &'static str {
        match self {
            Expected::Accept => "AA",
            Expected::Error => "AE",
            Expected::Reject => "AR",
        }
    }
}

/// What a deliberately invalid message gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The citizen ID's check character is wrong (AE, PID-3).
    BadCheckDigit,
    /// PID-7 disagrees with the birth date in the citizen ID (AE, PID-7).
    BirthDateMismatch,
    /// MSH-4 names a facility the node does not know (AR, MSH-4).
    UnknownFacility,
    /// The message stops in the middle of PID (AE: no name, no PV1).
    Truncated,
    /// A line of garbage after MSH (AR: not a segment).
    Garbage,
    /// A message type the node does not take, `SIU^S12` (AR).
    UnsupportedType,
}

impl Invalid {
    /// Every kind, in the order the script uses them.
    pub const ALL: [Invalid; 6] = [
        Invalid::BadCheckDigit,
        Invalid::BirthDateMismatch,
        Invalid::UnknownFacility,
        Invalid::Truncated,
        Invalid::Garbage,
        Invalid::UnsupportedType,
    ];

    /// The answer the node must give.
    pub fn expected(&self) -> Expected {
        match self {
            Invalid::BadCheckDigit | Invalid::BirthDateMismatch | Invalid::Truncated => Expected::Error,
            Invalid::UnknownFacility | Invalid::Garbage | Invalid::UnsupportedType => Expected::Reject,
        }
    }

    /// A short description for `expected.jsonl`.
    pub fn describe(&self) -> &'static str {
        match self {
            Invalid::BadCheckDigit => "citizen ID check character wrong",
            Invalid::BirthDateMismatch => "birth date disagrees with the citizen ID",
            Invalid::UnknownFacility => "sending facility not registered",
            Invalid::Truncated => "message truncated inside PID",
            Invalid::Garbage => "garbage line after MSH",
            Invalid::UnsupportedType => "unsupported message type SIU^S12",
        }
    }
}

/// What an episode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// An outpatient visit (A04), often with lab results (ORU), sometimes a
    /// C0002 document.
    Outpatient,
    /// A stay: admission (A01), perhaps a transfer (A02), results, discharge
    /// (A03), often a C0053 discharge summary.
    Inpatient,
    /// A hypertension (I10) or type 2 diabetes (E11) follow-up with its labs.
    ChronicFollowUp,
    /// Vaccines due for a child under seven (VXU^V04).
    Immunization,
    /// One person sent four ways: registration, exact resend, name typo,
    /// record number only.
    Duplicates,
    /// A deliberately broken message.
    Invalid(Invalid),
}

impl Scenario {
    /// Its name in `expected.jsonl` and summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Outpatient => "outpatient",
            Scenario::Inpatient => "inpatient",
            Scenario::ChronicFollowUp => "chronic_follow_up",
            Scenario::Immunization => "immunization",
            Scenario::Duplicates => "duplicates",
            Scenario::Invalid(Invalid::BadCheckDigit) => "invalid_check_digit",
            Scenario::Invalid(Invalid::BirthDateMismatch) => "invalid_birth_date",
            Scenario::Invalid(Invalid::UnknownFacility) => "invalid_unknown_facility",
            Scenario::Invalid(Invalid::Truncated) => "invalid_truncated",
            Scenario::Invalid(Invalid::Garbage) => "invalid_garbage",
            Scenario::Invalid(Invalid::UnsupportedType) => "invalid_unsupported_type",
        }
    }
}

/// One message or document with the answer it must get.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The episode it belongs to.
    pub episode: u64,
    /// Its position in the episode.
    pub position: u32,
    /// MLLP (HL7 v2) or HTTP (CDA).
    pub channel: Channel,
    /// The county node it is sent to (the facility's county).
    pub county: RegionCode,
    /// The sending facility's code (MSH-4, or the document's custodian).
    pub facility: String,
    /// `ADT^A04`, `ORU^R01`, `VXU^V04`, `SIU^S12`, or `CDA C0053`.
    pub kind: String,
    /// MSH-10, echoed in MSA-2; for a document, its id's extension.
    pub control_id: String,
    /// The bytes to send: an HL7 message (segments end with `\r`), or XML.
    pub bytes: Vec<u8>,
    /// The answer a correct node gives.
    pub expected: Expected,
    /// The episode's scenario.
    pub scenario: Scenario,
    /// The resident it is about.
    pub resident: u64,
    /// True when the county is in another province than the resident's home.
    pub outside_home_province: bool,
    /// What is special about it (a resend, a typo, what is broken).
    pub note: Option<&'static str>,
}

impl Submission {
    /// The expected answer as the driver sees it: the ACK code for HL7
    /// (`AA`, `AE`, `AR`), the HTTP status for documents (`201`, `422`).
    pub fn expected_code(&self) -> &'static str {
        match (self.channel, self.expected) {
            (Channel::Mllp, expected) => expected.ack_code(),
            (Channel::Http, Expected::Accept) => "201",
            (Channel::Http, _) => "422",
        }
    }

    /// The line of `expected.jsonl` for this submission, written to `file` at
    /// `index` (0-based position in that file).
    pub fn expected_record(&self, file: &str, index: u64) -> ExpectedRecord {
        ExpectedRecord {
            file: file.to_owned(),
            index,
            channel: self.channel,
            county: self.county.as_str().to_owned(),
            facility: self.facility.clone(),
            kind: self.kind.clone(),
            control_id: self.control_id.clone(),
            expected: self.expected_code(),
            scenario: self.scenario.name(),
            episode: self.episode,
            resident: self.resident,
            outside_home_province: self.outside_home_province,
            note: self.note,
        }
    }
}

/// A line of `expected.jsonl`: where a submission is and what it must get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectedRecord {
    /// The file holding it, relative to the output folder.
    pub file: String,
    /// Its 0-based position among the messages of that file (0 for a document).
    pub index: u64,
    /// `mllp` or `http`.
    pub channel: Channel,
    /// The county node it goes to.
    pub county: String,
    /// The sending facility.
    pub facility: String,
    /// Message type or document type.
    pub kind: String,
    /// MSH-10 or the document id.
    pub control_id: String,
    /// `AA`, `AE`, `AR`, or an HTTP status.
    pub expected: &'static str,
    /// The scenario's name.
    pub scenario: &'static str,
    /// The episode.
    pub episode: u64,
    /// The resident it is about.
    pub resident: u64,
    /// Treated outside the home province.
    pub outside_home_province: bool,
    /// What is special about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// Scripted episodes per county: (scenario, treated outside the home province).
const SCRIPT: [(Scenario, bool); 13] = [
    (Scenario::Outpatient, false),
    (Scenario::Inpatient, false),
    (Scenario::ChronicFollowUp, false),
    (Scenario::Immunization, false),
    (Scenario::Duplicates, false),
    (Scenario::Invalid(Invalid::BadCheckDigit), false),
    (Scenario::Invalid(Invalid::BirthDateMismatch), false),
    (Scenario::Invalid(Invalid::UnknownFacility), false),
    (Scenario::Invalid(Invalid::Truncated), false),
    (Scenario::Invalid(Invalid::Garbage), false),
    (Scenario::Invalid(Invalid::UnsupportedType), false),
    (Scenario::Outpatient, true),
    (Scenario::Inpatient, true),
];

/// How many episodes are scripted for `counties` counties.
pub(crate) fn scripted(counties: usize) -> u64 {
    (SCRIPT.len() * counties) as u64
}

/// Days of the traffic period, which ends a fortnight before `as_of`.
const PERIOD_DAYS: i64 = 350;
/// Blocks searched for a resident who fits a scripted episode.
const SEARCH_BLOCKS: u64 = 256;
/// A child gets vaccines until this age in days.
const IMMUNIZATION_DAYS: i64 = 7 * 365;

/// The traffic, episode after episode: an iterator that holds one episode.
#[derive(Clone, Debug)]
pub struct Traffic<'a> {
    synth: &'a Synth,
    next_episode: u64,
    pending: VecDeque<Submission>,
}

impl<'a> Traffic<'a> {
    pub(crate) fn new(synth: &'a Synth) -> Traffic<'a> {
        Traffic { synth, next_episode: 0, pending: VecDeque::new() }
    }
}

impl Iterator for Traffic<'_> {
    type Item = Submission;

    fn next(&mut self) -> Option<Submission> {
        while self.pending.is_empty() {
            if self.next_episode >= self.synth.episodes() {
                return None;
            }
            self.pending.extend(episode(self.synth, self.next_episode));
            self.next_episode += 1;
        }
        self.pending.pop_front()
    }
}

/// The submissions of episode `number`.
pub(crate) fn episode(synth: &Synth, number: u64) -> Vec<Submission> {
    let mut rng = Rng::new(synth.seed(), Stream::Episode, number);
    let counties = synth.counties();
    let count = counties.len().max(1) as u64;
    let day = number.saturating_mul(PERIOD_DAYS as u64) / synth.episodes().max(1);
    let start = synth.as_of() - Duration::days(PERIOD_DAYS + 14) + Duration::days(i64::try_from(day).unwrap_or(0));
    let time = start.and_time(NaiveTime::MIN) + Duration::hours(8) + Duration::seconds(rng.between(0, 9 * 3600) as i64);
    let (scenario, county, resident, away) = if number < scripted(counties.len()) {
        let county = counties.get((number % count) as usize).copied().unwrap_or(RegionCode::NATIONAL);
        let (scenario, away) = SCRIPT.get((number / count) as usize).copied().unwrap_or((Scenario::Outpatient, false));
        let Some(resident) = scripted_resident(synth, &mut rng, scenario, county, away, time.date()) else {
            return Vec::new();
        };
        (scenario, county, resident, away)
    } else {
        let index = rng.below(synth.residents());
        let Some(resident) = synth.resident(index) else { return Vec::new() };
        let scenario = drawn_scenario(&mut rng, &resident, time.date());
        let county = drawn_county(&mut rng, synth, resident.home_region);
        let away = county.province() != resident.home_region.province();
        (scenario, county, resident, away)
    };
    // Nobody is treated before they are born.
    let born = resident.birth_date.and_time(NaiveTime::MIN) + Duration::hours(33);
    let time = time.max(born);
    let mut builder =
        Episode { synth, rng, number, county, resident, away, scenario, time, facility: None, out: Vec::new() };
    builder.build();
    builder.out
}

/// A resident who fits a scripted episode at `county`, searched from a
/// random start a block at a time; the one at the start when none fits
/// (`None` only for an empty population, which `Synth::new` refuses).
fn scripted_resident(
    synth: &Synth,
    rng: &mut Rng,
    scenario: Scenario,
    county: RegionCode,
    away: bool,
    date: NaiveDate,
) -> Option<Resident> {
    let other_province = synth.counties().iter().any(|c| c.province() != county.province());
    let other_county = synth.counties().iter().any(|c| *c != county);
    let fits = |resident: &Resident| {
        let home = if away {
            if other_province {
                resident.home_region.province() != county.province()
            } else {
                !other_county || resident.home_region != county
            }
        } else {
            resident.home_region == county
        };
        let days = (date - resident.birth_date).num_days();
        let age = match scenario {
            Scenario::Immunization => (1..IMMUNIZATION_DAYS).contains(&days),
            Scenario::ChronicFollowUp => days >= 35 * 365,
            _ => days >= 1,
        };
        home && age
    };
    let start = rng.below(synth.residents());
    let blocks = synth.residents().div_ceil(crate::BLOCK);
    let first_block = start / crate::BLOCK;
    for step in 0..SEARCH_BLOCKS.min(blocks) {
        let block = (first_block + step) % blocks;
        if let Some(found) = synth.block_residents(block).into_iter().find(|r| fits(r)) {
            return Some(found);
        }
    }
    synth.resident(start)
}

/// A scenario fitting the resident's age.
fn drawn_scenario(rng: &mut Rng, resident: &Resident, date: NaiveDate) -> Scenario {
    let days = (date - resident.birth_date).num_days();
    // Outpatient, inpatient, chronic, immunization, duplicates, invalid.
    let weights: [u32; 6] = if days < IMMUNIZATION_DAYS {
        [40, 5, 0, 45, 4, 3]
    } else if days >= 35 * 365 {
        [40, 14, 25, 0, 4, 3]
    } else {
        [60, 14, 0, 0, 4, 3]
    };
    match rng.weighted(&weights) {
        0 => Scenario::Outpatient,
        1 => Scenario::Inpatient,
        2 => Scenario::ChronicFollowUp,
        3 => Scenario::Immunization,
        4 => Scenario::Duplicates,
        _ => Scenario::Invalid(rng.pick(&Invalid::ALL).copied().unwrap_or(Invalid::Garbage)),
    }
}

/// Usually the home county; sometimes another county of the province or one
/// of another province, when the topology has them.
fn drawn_county(rng: &mut Rng, synth: &Synth, home: RegionCode) -> RegionCode {
    let roll = rng.unit();
    let same_province: Vec<RegionCode> =
        synth.counties().iter().copied().filter(|c| *c != home && c.province() == home.province()).collect();
    let other_province: Vec<RegionCode> =
        synth.counties().iter().copied().filter(|c| c.province() != home.province()).collect();
    let chosen = if roll < 0.06 {
        rng.pick(&same_province)
    } else if roll < 0.12 {
        rng.pick(&other_province)
    } else {
        None
    };
    chosen.copied().unwrap_or(home)
}

/// One episode under construction.
struct Episode<'a> {
    synth: &'a Synth,
    rng: Rng,
    number: u64,
    county: RegionCode,
    resident: Resident,
    away: bool,
    scenario: Scenario,
    time: NaiveDateTime,
    /// The facility chosen for the episode.
    facility: Option<Facility>,
    out: Vec<Submission>,
}

impl Episode<'_> {
    fn build(&mut self) {
        self.facility = self.choose_facility();
        if self.facility.is_none() {
            return;
        }
        match self.scenario {
            Scenario::Outpatient => self.outpatient(),
            Scenario::Inpatient => self.inpatient(),
            Scenario::ChronicFollowUp => self.chronic(),
            Scenario::Immunization => self.immunization(),
            Scenario::Duplicates => self.duplicates(),
            Scenario::Invalid(invalid) => self.invalid(invalid),
        }
    }

    /// The facility of the county suited to the scenario (every county has
    /// the five synthetic facilities, hospitals first).
    fn choose_facility(&mut self) -> Option<Facility> {
        let all: Vec<&Facility> = self.synth.facilities().iter().filter(|f| f.region == self.county).collect();
        // Order per county: H001, H002, S001, C001, C002.
        let weights: [u32; 5] = match self.scenario {
            Scenario::Outpatient => [35, 25, 10, 15, 15],
            Scenario::ChronicFollowUp => [30, 20, 50, 0, 0],
            Scenario::Immunization => [0, 0, 1, 0, 0],
            Scenario::Inpatient | Scenario::Duplicates | Scenario::Invalid(_) => [65, 35, 0, 0, 0],
        };
        let pick = self.rng.weighted(weights.get(..all.len().min(5)).unwrap_or(&[]));
        all.get(pick).or(all.first()).map(|f| (*f).clone())
    }

    fn facility_code(&self) -> String {
        self.facility.as_ref().map(|f| f.code.as_str().to_owned()).unwrap_or_default()
    }

    fn tag(&self) -> String {
        format!("{:04X}", self.synth.tag())
    }

    fn control_id(&self) -> String {
        format!("S{}-{}-{}", self.tag(), self.number, self.out.len() + 1)
    }

    fn visit_number(&self) -> String {
        format!("V{}{:08}", self.tag(), self.number)
    }

    /// The resident's record number at the episode's facility: a bijection of
    /// the resident index, offset per facility.
    fn mrn(&self) -> String {
        let offset = self.facility_code().bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
        let number = (self.resident.index.wrapping_mul(2_654_435_761).wrapping_add(offset)) % 1_000_000_000;
        format!("MR{number:09}")
    }

    fn age(&self) -> u32 {
        self.resident.age_on(self.time.date())
    }

    /// A doctor: id, family name, given name.
    fn doctor(&mut self) -> (String, String, String) {
        let family = names::surname(&mut self.rng).to_owned();
        let sex = if self.rng.chance(0.5) { Sex::Male } else { Sex::Female };
        let given = names::given_name(&mut self.rng, sex);
        (format!("D{}{:03}", &self.county.as_str()[4..], self.rng.below(1000)), family, given)
    }

    /// PID for the resident as the hospital knows them.
    fn pid(&self, citizen_id: Option<&str>, name: Option<(&str, &str)>, birth_date: Option<String>) -> String {
        let resident = &self.resident;
        let mrn = self.mrn();
        let facility = self.facility_code();
        let province = resident.home_region.province().and_then(|p| p.name()).unwrap_or("");
        let (family, given) = name.unwrap_or((&resident.family_name, &resident.given_name));
        hl7::pid(&PidInput {
            mrn: Some((&mrn, &facility)),
            citizen_id,
            family_name: family,
            given_name: given,
            birth_date: birth_date.unwrap_or_else(|| resident.birth_date.format("%Y%m%d").to_string()),
            sex: resident.sex.to_hl7(),
            address: Some((&resident.address_line, province, resident.home_region.as_str())),
            phone: Some(&resident.phone),
            marital_status: resident.marital_status.map(|m| m.code()),
            ethnicity: Some((resident.ethnicity.code(), resident.ethnicity.name_zh())),
        })
    }

    /// The full PID, citizen ID included.
    fn full_pid(&self) -> String {
        self.pid(Some(self.resident.citizen_id.as_str()), None, None)
    }

    /// NK1 naming the household head as guardian, for a child whose parent is
    /// the head.
    fn guardian(&self) -> String {
        let child = matches!(self.resident.relation.code().as_bytes().first(), Some(b'2' | b'3'));
        if self.age() >= 16 || !child {
            return String::new();
        }
        let Some(head) = self.synth.resident(self.resident.household) else { return String::new() };
        let relation = if head.sex == Sex::Male { ("51", "父亲") } else { ("52", "母亲") };
        hl7::nk1(&head.family_name, &head.given_name, relation, &head.phone)
    }

    fn msh(&self, at: NaiveDateTime, message_type: &str, control_id: &str) -> String {
        hl7::msh(&self.facility_code(), self.county.as_str(), at, message_type, control_id)
    }

    fn push(&mut self, kind: &str, control_id: String, bytes: Vec<u8>, expected: Expected, note: Option<&'static str>) {
        self.push_as(Channel::Mllp, &self.facility_code(), kind, control_id, bytes, expected, note);
    }

    #[expect(clippy::too_many_arguments, reason = "one private helper that fills every field")]
    fn push_as(
        &mut self,
        channel: Channel,
        facility: &str,
        kind: &str,
        control_id: String,
        bytes: Vec<u8>,
        expected: Expected,
        note: Option<&'static str>,
    ) {
        self.out.push(Submission {
            episode: self.number,
            position: self.out.len() as u32,
            channel,
            county: self.county,
            facility: facility.to_owned(),
            kind: kind.to_owned(),
            control_id,
            bytes,
            expected,
            scenario: self.scenario,
            resident: self.resident.index,
            outside_home_province: self.away,
            note,
        });
    }

    /// ADT^A04 for an outpatient visit with one diagnosis.
    fn registration(
        &mut self,
        at: NaiveDateTime,
        diagnosis: (Diagnosis, &str),
        department: &str,
        pid: String,
    ) -> String {
        let (diagnosis, diagnosis_type) = diagnosis;
        let control = self.control_id();
        let (doctor_id, family, given) = self.doctor();
        let room = format!("{}诊室", self.rng.between(1, 12));
        let visit = self.visit_number();
        let mut text = self.msh(at, "ADT^A04^ADT_A01", &control);
        text.push_str(&hl7::evn("A04", at));
        text.push_str(&pid);
        text.push_str(&self.guardian());
        text.push_str(&hl7::pv1(&Pv1Input {
            class: "O",
            location: (department, &room, ""),
            prior_location: None,
            doctor: (&doctor_id, &family, &given),
            department,
            visit_number: &visit,
            admitted_at: Some(at),
            discharged_at: None,
        }));
        text.push_str(&hl7::dg1(1, diagnosis.code, diagnosis.name, at, diagnosis_type));
        text
    }

    /// ORU^R01 with the panels' results for the visit.
    fn results(&mut self, at: NaiveDateTime, class: &str, department: &str, panels: &[Panel], pid: String) -> String {
        let control = self.control_id();
        let visit = self.visit_number();
        let mut text = self.msh(at, "ORU^R01^ORU_R01", &control);
        text.push_str(&pid);
        text.push_str(&hl7::pv1(&Pv1Input {
            class,
            location: (department, "", ""),
            prior_location: None,
            doctor: ("", "", ""),
            department,
            visit_number: &visit,
            admitted_at: None,
            discharged_at: None,
        }));
        let reported = at + Duration::minutes(90);
        for (set, panel) in panels.iter().enumerate() {
            let order = format!("{}-{}", control, set + 1);
            text.push_str(&hl7::obr(
                set + 1,
                &format!("P{order}"),
                &format!("L{order}"),
                (panel.code, panel.name),
                at,
                reported,
            ));
            for (index, test) in panel.tests.iter().enumerate() {
                let (value, flag, range) = clinical::measure(&mut self.rng, test);
                text.push_str(&hl7::obx(index + 1, (test.code, test.name), &value, test.unit, &range, flag, at));
            }
        }
        text
    }

    fn outpatient(&mut self) {
        let at = self.time;
        let age = self.age();
        let diagnosis = clinical::outpatient_problem(&mut self.rng, age);
        let (department, _) = clinical::department(diagnosis, age);
        let pid = self.full_pid();
        let text = self.registration(at, (diagnosis, "W"), department, pid);
        self.push("ADT^A04", self.control_id(), text.into_bytes(), Expected::Accept, None);
        let mut results = Vec::new();
        if self.rng.chance(0.5) {
            let at = at + Duration::minutes(40);
            let pid = self.full_pid();
            let text = self.results(at, "O", department, &[clinical::BLOOD_COUNT], pid);
            self.push("ORU^R01", self.control_id(), text.into_bytes(), Expected::Accept, None);
            results = self.document_results(&clinical::BLOOD_COUNT);
        }
        if self.rng.chance(0.15) {
            self.document(EncounterType::Outpatient, at, None, diagnosis, results);
        }
    }

    fn inpatient(&mut self) {
        let admitted = self.time;
        let age = self.age();
        let female = self.resident.sex == Sex::Female;
        let diagnosis = clinical::inpatient_problem(&mut self.rng, age, female);
        let (department, _) = clinical::department(diagnosis, age);
        let (doctor_id, family, given) = self.doctor();
        let visit = self.visit_number();
        let ward = format!("{}病区", self.rng.between(1, 9));
        let room = format!("{}", self.rng.between(101, 130));
        let bed = format!("{}", self.rng.between(1, 4));
        let stay = (ward.clone(), room.clone(), bed.clone());

        let control = self.control_id();
        let mut text = self.msh(admitted, "ADT^A01^ADT_A01", &control);
        text.push_str(&hl7::evn("A01", admitted));
        text.push_str(&self.full_pid());
        text.push_str(&self.guardian());
        text.push_str(&hl7::pv1(&Pv1Input {
            class: "I",
            location: (&stay.0, &stay.1, &stay.2),
            prior_location: None,
            doctor: (&doctor_id, &family, &given),
            department,
            visit_number: &visit,
            admitted_at: Some(admitted),
            discharged_at: None,
        }));
        text.push_str(&hl7::dg1(1, diagnosis.code, diagnosis.name, admitted, "A"));
        self.push("ADT^A01", control, text.into_bytes(), Expected::Accept, None);

        let mut location = stay;
        if self.rng.chance(0.4) {
            let at = admitted + Duration::hours(self.rng.between(20, 40) as i64);
            let moved = (location.0.clone(), format!("{}", self.rng.between(131, 160)), "1".to_owned());
            let control = self.control_id();
            let mut text = self.msh(at, "ADT^A02^ADT_A02", &control);
            text.push_str(&hl7::evn("A02", at));
            text.push_str(&self.full_pid());
            text.push_str(&hl7::pv1(&Pv1Input {
                class: "I",
                location: (&moved.0, &moved.1, &moved.2),
                prior_location: Some((&location.0, &location.1, &location.2)),
                doctor: (&doctor_id, &family, &given),
                department,
                visit_number: &visit,
                admitted_at: Some(admitted),
                discharged_at: None,
            }));
            self.push("ADT^A02", control, text.into_bytes(), Expected::Accept, None);
            location = moved;
        }

        // Blood is drawn on the ward the next morning.
        let next_morning = (admitted.date() + Duration::days(1)).and_time(NaiveTime::MIN) + Duration::hours(6);
        let lab_time = next_morning + Duration::minutes(self.rng.between(0, 90) as i64);
        let pid = self.full_pid();
        let text = self.results(lab_time, "I", department, &[clinical::BLOOD_COUNT, clinical::CHEMISTRY], pid);
        self.push("ORU^R01", self.control_id(), text.into_bytes(), Expected::Accept, None);
        let results = self.document_results(&clinical::CHEMISTRY);

        let discharged = admitted + Duration::days(self.rng.between(3, 12) as i64) + Duration::hours(2);
        let control = self.control_id();
        let mut text = self.msh(discharged, "ADT^A03^ADT_A03", &control);
        text.push_str(&hl7::evn("A03", discharged));
        text.push_str(&self.full_pid());
        text.push_str(&hl7::pv1(&Pv1Input {
            class: "I",
            location: (&location.0, &location.1, &location.2),
            prior_location: None,
            doctor: (&doctor_id, &family, &given),
            department,
            visit_number: &visit,
            admitted_at: Some(admitted),
            discharged_at: Some(discharged),
        }));
        text.push_str(&hl7::dg1(1, diagnosis.code, diagnosis.name, discharged, "F"));
        self.push("ADT^A03", control, text.into_bytes(), Expected::Accept, None);

        if self.rng.chance(0.6) {
            self.document(EncounterType::Inpatient, admitted, Some(discharged), diagnosis, results);
        }
    }

    fn chronic(&mut self) {
        let at = self.time;
        let hypertension = trait_of(self.synth.seed(), self.resident.index, 1) % 10 < 6;
        let (diagnosis, panel) = if hypertension {
            (clinical::HYPERTENSION, clinical::HYPERTENSION_LABS)
        } else {
            (clinical::DIABETES, clinical::DIABETES_LABS)
        };
        let community =
            self.facility.as_ref().is_some_and(|f| f.kind == rhip_core::FacilityKind::CommunityHealthCentre);
        let department = if community { "全科" } else { clinical::department(diagnosis, self.age()).0 };
        let pid = self.full_pid();
        // A follow-up confirms the known condition: a final diagnosis.
        let text = self.registration(at, (diagnosis, "F"), department, pid);
        self.push("ADT^A04", self.control_id(), text.into_bytes(), Expected::Accept, Some("chronic disease follow-up"));
        let at = at + Duration::minutes(30);
        let pid = self.full_pid();
        let text = self.results(at, "O", department, &[panel], pid);
        self.push("ORU^R01", self.control_id(), text.into_bytes(), Expected::Accept, None);
    }

    fn immunization(&mut self) {
        let at = self.time;
        let age_days = u32::try_from((at.date() - self.resident.birth_date).num_days()).unwrap_or(0);
        let control = self.control_id();
        let mut text = self.msh(at, "VXU^V04^VXU_V04", &control);
        text.push_str(&self.full_pid());
        text.push_str(&self.guardian());
        text.push_str(&hl7::Segment::new("ORC").set(1, "RE").set(3, format!("I{control}")).render());
        for vaccine in clinical::vaccines_due(age_days) {
            let lot = format!("{}{:06}", ["A", "B", "C", "D"][self.rng.index(4)], self.rng.below(1_000_000));
            text.push_str(&hl7::rxa((vaccine.cvx, vaccine.name), at, vaccine.dose, &lot));
        }
        self.push("VXU^V04", control, text.into_bytes(), Expected::Accept, None);
    }

    fn duplicates(&mut self) {
        let at = self.time;
        let age = self.age();
        let diagnosis = clinical::outpatient_problem(&mut self.rng, age);
        let (department, _) = clinical::department(diagnosis, age);
        let pid = self.full_pid();
        let control = self.control_id();
        let first = self.registration(at, (diagnosis, "W"), department, pid).into_bytes();
        self.push("ADT^A04", control.clone(), first.clone(), Expected::Accept, None);
        self.push("ADT^A04", control, first, Expected::Accept, Some("resend: same control id and bytes"));

        let typo = names::typo(&mut self.rng, &self.resident.family_name, &self.resident.given_name);
        let given: String = typo.chars().skip(self.resident.family_name.chars().count()).collect();
        let pid = self.pid(Some(self.resident.citizen_id.as_str()), Some((&self.resident.family_name, &given)), None);
        let text = self.results(at + Duration::minutes(40), "O", department, &[clinical::BLOOD_COUNT], pid);
        self.push(
            "ORU^R01",
            self.control_id(),
            text.into_bytes(),
            Expected::Accept,
            Some("name typo, same citizen ID"),
        );

        let pid = self.pid(None, None, None);
        let text = self.results(at + Duration::minutes(80), "O", department, &[clinical::CHEMISTRY], pid);
        self.push(
            "ORU^R01",
            self.control_id(),
            text.into_bytes(),
            Expected::Accept,
            Some("no citizen ID, same record number"),
        );
    }

    fn invalid(&mut self, invalid: Invalid) {
        let at = self.time;
        let age = self.age();
        let diagnosis = clinical::outpatient_problem(&mut self.rng, age);
        let (department, _) = clinical::department(diagnosis, age);
        let control = self.control_id();
        let note = Some(invalid.describe());
        let mut facility = self.facility_code();
        let (kind, text) = match invalid {
            Invalid::BadCheckDigit => {
                let id = self.resident.citizen_id.as_str();
                let wrong = wrong_check_character(id);
                let pid = self.pid(Some(&wrong), None, None);
                ("ADT^A04", self.registration(at, (diagnosis, "W"), department, pid))
            }
            Invalid::BirthDateMismatch => {
                let shifted = (self.resident.birth_date - Duration::days(1)).format("%Y%m%d").to_string();
                let pid = self.pid(Some(self.resident.citizen_id.as_str()), None, Some(shifted));
                ("ADT^A04", self.registration(at, (diagnosis, "W"), department, pid))
            }
            Invalid::UnknownFacility => {
                let unknown = facilities::unregistered_code(self.county);
                let pid = self.full_pid();
                let text = self.registration(at, (diagnosis, "W"), department, pid);
                let text = text.replacen(&format!("|HIS|{facility}|"), &format!("|HIS|{unknown}|"), 1);
                facility = unknown;
                ("ADT^A04", text)
            }
            Invalid::Truncated => {
                let mut text = self.msh(at, "ADT^A01^ADT_A01", &control);
                text.push_str(&hl7::evn("A01", at));
                let pid: String = self.full_pid().chars().take(40).collect();
                text.push_str(pid.trim_end_matches('\r'));
                text.push('\r');
                ("ADT^A01", text)
            }
            Invalid::Garbage => {
                let mut text = self.msh(at, "ADT^A04^ADT_A01", &control);
                text.push_str("@@@@ 乱码 #### ???? 0x1F 0x7F\r");
                text.push_str(&self.full_pid());
                ("ADT^A04", text)
            }
            Invalid::UnsupportedType => {
                let mut text = self.msh(at, "SIU^S12^SIU_S12", &control);
                text.push_str(&hl7::Segment::new("SCH").set(1, format!("A{control}")).render());
                text.push_str(&self.full_pid());
                ("SIU^S12", text)
            }
        };
        let facility_for_record = facility;
        self.push_as(Channel::Mllp, &facility_for_record, kind, control, text.into_bytes(), invalid.expected(), note);
    }

    /// Results as a document lists them: (test, value, flag).
    fn document_results(&mut self, panel: &Panel) -> Vec<(Test, String, &'static str)> {
        panel
            .tests
            .iter()
            .map(|test| {
                let (value, flag, _) = clinical::measure(&mut self.rng, test);
                (*test, value, flag)
            })
            .collect()
    }

    /// A CDA document of the visit, posted by the facility.
    fn document(
        &mut self,
        kind: EncounterType,
        start: NaiveDateTime,
        end: Option<NaiveDateTime>,
        diagnosis: Diagnosis,
        results: Vec<(Test, String, &'static str)>,
    ) {
        let (_, family, given) = self.doctor();
        let facility = self.facility.clone();
        let Some(facility) = facility else { return };
        let document_id = format!("D{}-{}-{}", self.tag(), self.number, self.out.len() + 1);
        let visit = self.visit_number();
        let bytes = documents::encounter_document(&VisitFacts {
            document_id: &document_id,
            resident: &self.resident,
            facility_code: facility.code.as_str(),
            facility_name: &facility.name,
            doctor: &format!("{family}{given}"),
            kind,
            visit_number: &visit,
            start,
            end,
            diagnosis,
            results,
        });
        let kind = format!("CDA {}", documents::type_code(kind));
        self.push_as(Channel::Http, facility.code.as_str(), &kind, document_id, bytes, Expected::Accept, None);
    }
}

/// The citizen ID with another check character.
fn wrong_check_character(id: &str) -> String {
    let mut characters: Vec<char> = id.chars().collect();
    if let Some(last) = characters.last_mut() {
        *last = match *last {
            '0' => '1',
            'X' => '0',
            digit => char::from_digit((digit.to_digit(10).unwrap_or(0) + 1) % 10, 10).unwrap_or('X'),
        };
    }
    characters.into_iter().collect()
}

/// The script, for the tests that check every county got every scenario.
#[cfg(test)]
pub(crate) fn tests_script() -> &'static [(Scenario, bool)] {
    &SCRIPT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_iterator_holds_one_episode_at_most() {
        let counties = [RegionCode::parse("330106"), RegionCode::parse("440106")];
        let counties: Vec<RegionCode> = counties.into_iter().flatten().collect();
        let Ok(synth) = Synth::new(Config::new(8, 2_000, &counties)) else { panic!("config") };
        let mut traffic = synth.traffic();
        let mut most = 0;
        let mut count = 0;
        while traffic.next().is_some() {
            most = most.max(traffic.pending.len());
            count += 1;
        }
        // The longest episode is a stay: A01, A02, ORU, A03 and a document.
        assert!(most <= 4, "{most} submissions pending");
        assert!(count > 2_000, "{count} submissions");
        assert_eq!(traffic.next_episode, synth.episodes());
    }
}
