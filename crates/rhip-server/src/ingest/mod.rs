//! The ingest pipeline every HL7 v2 message goes through, whichever listener
//! received it (MLLP or `POST /api/v1/hl7v2`).
//!
//! One message is one transaction: the sending facility is checked against
//! the registry, a resend (same facility and MSH-10) gets its stored answer,
//! the content is applied in a savepoint (so a business-rule failure undoes
//! the content but keeps the archive row), the raw bytes are archived with
//! the ACK, and the access is audited. The ACK is returned only after the
//! commit, so an `AA` always means the data is stored.

mod apply;
mod writer;

pub use writer::Writer;

use rhip_core::RegionCode;
use rhip_hl7::{AckCode, AckSender, Header, Problem, Received};
use rhip_store::{NewAuditEntry, NewSubmission, Store, StoreError, Tx};

/// Where a message came from.
#[derive(Clone, Debug)]
pub enum Channel {
    /// An MLLP connection from this peer address.
    Mllp(String),
    /// `POST /api/v1/hl7v2` by this token subject, whose token names this facility.
    Http {
        /// Token subject.
        subject: String,
        /// The facility the token was issued for.
        facility: String,
        /// Request id.
        request_id: String,
    },
}

impl Channel {
    fn name(&self) -> &'static str {
        match self {
            Channel::Mllp(_) => "mllp",
            Channel::Http { .. } => "http",
        }
    }
}

/// The answer to one message.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The ACK, encoded in the message's character set.
    pub ack: Vec<u8>,
    /// `AA`, `AE` or `AR`.
    pub code: &'static str,
    /// True when this was a resend answered from the archive.
    pub repeated: bool,
}

/// Processes one message end to end; blocking (runs on the blocking pool).
pub fn process_hl7(store: &Store, raw: &[u8], channel: &Channel) -> Result<Answer, StoreError> {
    let today = chrono::Utc::now().date_naive();
    let received = rhip_hl7::receive(raw, today);
    match store.write(|tx| process_in(tx, raw, &received, channel)) {
        Err(StoreError::Conflict(_)) => answer_from_archive(store, &received),
        other => other,
    }
}

/// When a concurrent resend archived the same dedup key first, its stored
/// answer is this message's answer too.
fn answer_from_archive(store: &Store, received: &Received) -> Result<Answer, StoreError> {
    let key = match received {
        Received::Accepted { header, .. } | Received::Invalid { header, .. } => dedup_key(header),
        Received::Rejected { .. } => None,
    };
    let Some(key) = key else { return Err(StoreError::Conflict("submission archive".into())) };
    match store.read(|tx| tx.find_answer(&key))? {
        Some((_, ack)) => Ok(Answer { code: ack_code_of(&ack), ack, repeated: true }),
        None => Err(StoreError::Conflict("submission archive".into())),
    }
}

fn process_in(tx: &mut Tx<'_>, raw: &[u8], received: &Received, channel: &Channel) -> Result<Answer, StoreError> {
    let node = tx.node_region();
    let submission_id = rhip_core::new_id().to_string();
    let (header, mut outcome) = match received {
        Received::Rejected { header, reason } => {
            let problem = Problem { location: reason.location(), code: reason.code(), message: reason.to_string() };
            (header.as_ref(), Outcome::refused(AckCode::Reject, vec![problem]))
        }
        Received::Invalid { header, problems } => (Some(header), Outcome::refused(AckCode::Error, problems.clone())),
        Received::Accepted { header, .. } => (Some(header), Outcome::accepted()),
    };
    // The sending facility must be registered and active, and an HTTP token must be its own.
    let mut facility_region = None;
    if let Some(header) = header {
        match facility_problem(tx, header, channel)? {
            Ok(region) => facility_region = Some(region),
            // An unreadable or unsupported message keeps its own reason.
            Err(problem) if outcome.code != AckCode::Reject => {
                outcome = Outcome::refused(AckCode::Reject, vec![problem])
            }
            Err(_) => {}
        }
    }
    let key = match (header, outcome.code) {
        (Some(header), AckCode::Accept | AckCode::Error) => dedup_key(header),
        _ => None,
    };
    // A resend is found by the archive's unique dedup key: the insert below
    // fails with a conflict, the caller rolls this message back and answers
    // from the archive (no lookup for the many messages that are new).
    // Archive first: the records a message brings point at its submission.
    let z_segments = match received {
        Received::Accepted { z_segments, .. } if !z_segments.is_empty() => Some(z_segments.join("\r")),
        _ => None,
    };
    tx.insert_submission(
        &submission_id,
        &NewSubmission {
            channel: channel.name().into(),
            kind: "hl7v2".into(),
            sending_facility: header.map(|h| h.sending_facility.clone()).unwrap_or_default(),
            control_id: header.map(|h| h.control_id.clone()).unwrap_or_default(),
            message_type: header.map(|h| format!("{}^{}", h.message_type, h.trigger_event)),
            version: header.map(|h| h.version.clone()),
            dedup_key: key,
            region: facility_region.map(|r: RegionCode| r.as_str().to_string()),
            outcome: "pending".into(),
            errors: None,
            person_id: None,
            raw: raw.to_vec(),
            ack: Vec::new(),
            z_segments,
        },
    )?;
    if let (Received::Accepted { header, event, .. }, AckCode::Accept) = (received, outcome.code) {
        // Content that breaks a business rule is rolled back; the archive row stays.
        match tx.savepoint(|tx| apply::apply(tx, header, event, &submission_id)) {
            Ok(person) => outcome.person = person,
            Err(apply::ApplyError::Content(problems)) => outcome = Outcome::refused(AckCode::Error, problems),
            Err(apply::ApplyError::Store(error)) => return Err(error),
        }
    }
    let sender = AckSender { application: "RHIP".into(), facility: node.as_str().to_string() };
    let now = chrono::Utc::now().naive_utc();
    let text = rhip_hl7::ack(header, outcome.code, &outcome.problems, &sender, &submission_id, now);
    let charset = header.map_or(rhip_hl7::Charset::Utf8, |h| h.charset);
    let ack = rhip_hl7::encode(&text, charset);
    let code = outcome.code.code();
    let errors = (!outcome.problems.is_empty()).then(|| serde_json::to_string(&outcome.problems).unwrap_or_default());
    tx.complete_submission(&submission_id, code, errors.as_deref(), outcome.person.as_deref(), &ack)?;
    tx.append_audit(&audit_entry(channel, header, code, &outcome, &submission_id))?;
    if outcome.code != AckCode::Accept {
        // Identifiers only: the problems name fields, never patient data.
        let first = outcome.problems.first().map(|p| format!("{} {}: {}", p.location, p.code.code(), p.message));
        tracing::warn!(
            channel = channel.name(),
            facility = header.map(|h| h.sending_facility.as_str()).unwrap_or(""),
            control_id = header.map(|h| h.control_id.as_str()).unwrap_or(""),
            ack = code,
            problems = outcome.problems.len(),
            first = first.as_deref().unwrap_or(""),
            submission = %submission_id,
            "HL7 message refused"
        );
    }
    Ok(Answer { ack, code, repeated: false })
}

/// What the pipeline decided about one message.
struct Outcome {
    code: AckCode,
    problems: Vec<Problem>,
    person: Option<String>,
}

impl Outcome {
    fn accepted() -> Outcome {
        Outcome { code: AckCode::Accept, problems: Vec::new(), person: None }
    }

    fn refused(code: AckCode, problems: Vec<Problem>) -> Outcome {
        Outcome { code, problems, person: None }
    }
}

fn facility_problem(
    tx: &mut Tx<'_>,
    header: &Header,
    channel: &Channel,
) -> Result<Result<RegionCode, Problem>, StoreError> {
    let location = rhip_hl7::Location {
        segment: "MSH".into(),
        sequence: 1,
        field: Some(4),
        repetition: None,
        component: Some(1),
        subcomponent: None,
    };
    let refuse = |message: String| Problem {
        location: location.clone(),
        code: rhip_hl7::ErrorCode::UnknownKeyIdentifier,
        message,
    };
    let code = header.sending_facility.as_str();
    if let Channel::Http { facility, .. } = channel {
        if facility != code {
            return Ok(Err(refuse(format!("sending facility {code:?} is not the facility of the token ({facility})"))));
        }
    }
    let Some(facility) = tx.get_facility(code)? else {
        return Ok(Err(refuse(format!("sending facility {code:?} is not registered at this node"))));
    };
    if facility.status != "active" {
        return Ok(Err(refuse(format!("sending facility {code} is {}", facility.status))));
    }
    match RegionCode::parse(&facility.region) {
        Ok(region) => Ok(Ok(region)),
        Err(e) => Err(StoreError::Corrupt(format!("facility {code} region: {e}"))),
    }
}

fn dedup_key(header: &Header) -> Option<String> {
    (!header.control_id.is_empty()).then(|| format!("{}|{}", header.sending_facility, header.control_id))
}

/// MSA-1 of a stored ACK (for answers repeated from the archive).
fn ack_code_of(ack: &[u8]) -> &'static str {
    AckCode::of(ack).unwrap_or(AckCode::Reject).code()
}

fn audit_entry(
    channel: &Channel,
    header: Option<&Header>,
    code: &str,
    outcome: &Outcome,
    submission_id: &str,
) -> NewAuditEntry {
    let (actor, request_id, source_ip) = match channel {
        Channel::Mllp(peer) => (
            format!("facility:{}", header.map(|h| h.sending_facility.as_str()).unwrap_or("?")),
            None,
            Some(peer.clone()),
        ),
        Channel::Http { subject, request_id, .. } => (subject.clone(), Some(request_id.clone()), None),
    };
    NewAuditEntry {
        actor,
        role: Some("hospital_system".into()),
        facility_code: header.map(|h| h.sending_facility.clone()),
        action: "submit".into(),
        resource_type: "hl7v2".into(),
        resource_id: Some(submission_id.to_string()),
        person_id: outcome.person.clone(),
        outcome: if code == "AA" { "success".into() } else { "refused".into() },
        request_id,
        source_ip,
        detail: header.map(|h| format!("{}^{} {} {code}", h.message_type, h.trigger_event, h.control_id)),
        ..NewAuditEntry::default()
    }
}
