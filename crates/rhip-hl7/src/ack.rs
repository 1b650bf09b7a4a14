//! Original-mode acknowledgements (ACK with MSA and ERR), in ER7 text.
//!
//! The ACK is addressed back to the sender (their MSH-3/4 become our MSH-5/6), speaks their
//! version, delimiters and charset, and lists every problem in its own ERR segment with the
//! standard codes, so the hospital's engine can show the engineer what to fix.

use chrono::NaiveDateTime;

use crate::charset::Charset;
use crate::error::Problem;
use crate::escape::Delimiters;
use crate::receive::{Header, Received};

/// The acknowledgement code of MSA-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AckCode {
    /// `AA`: accepted and applied.
    Accept,
    /// `AE`: understood but the content has errors; nothing applied.
    Error,
    /// `AR`: refused (unreadable, unsupported version, type or charset).
    Reject,
}

impl AckCode {
    /// The MSA-1 value: `"AA"`, `"AE"` or `"AR"`.
    pub fn code(&self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }

    /// MSA-1 of an ACK as received (any field separator), for clients and
    /// for answers repeated from an archive.
    pub fn of(ack: &[u8]) -> Option<AckCode> {
        let text = String::from_utf8_lossy(ack);
        let separator = text.strip_prefix("MSH")?.chars().next()?;
        let msa = text.split(['\r', '\n']).find(|segment| segment.starts_with("MSA"))?;
        match msa.split(separator).nth(1)? {
            "AA" | "CA" => Some(AckCode::Accept),
            "AE" | "CE" => Some(AckCode::Error),
            "AR" | "CR" => Some(AckCode::Reject),
            _ => None,
        }
    }
}

/// Who we are in the ACK's MSH-3/MSH-4.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AckSender {
    /// MSH-3, e.g. `"RHIP"`.
    pub application: String,
    /// MSH-4: the node's region code.
    pub facility: String,
}

/// Version used in MSH-12 when the received one is unknown.
const DEFAULT_VERSION: &str = "2.5";
/// Most ERR segments in one ACK: a hostile message with thousands of broken segments must
/// not make us send back many times its size. MSA-3 still gives the total.
pub const MAX_ERR_SEGMENTS: usize = 100;
/// Longest MSA-3 text (ST, 80 characters).
const MSA_TEXT_MAX_CHARS: usize = 80;

impl Received {
    /// The acknowledgement code this outcome is answered with.
    pub fn ack_code(&self) -> AckCode {
        match self {
            Received::Accepted { .. } => AckCode::Accept,
            Received::Invalid { .. } => AckCode::Error,
            Received::Rejected { .. } => AckCode::Reject,
        }
    }
}

/// Builds the ACK for an outcome of [`crate::receive`]: [`ack`] with the outcome's header,
/// code and problems (the rejection as one problem for AR).
pub fn ack_for(received: &Received, sender: &AckSender, ack_control_id: &str, now: NaiveDateTime) -> String {
    ack(received.header(), received.ack_code(), &received.problems(), sender, ack_control_id, now)
}

/// Builds an original-mode ACK (ER7 text, each segment ended by `\r`).
///
/// Uses the received message's delimiters when known (standard ones otherwise). MSH-3/4 =
/// `sender`, MSH-5/6 = the received MSH-3/4, MSH-7 = `now` (UTC, written with `+0000`),
/// MSH-9 = `ACK^<trigger>^ACK`, MSH-10 = `ack_control_id`, MSH-11 = the received processing
/// ID (`P` if unknown), MSH-12 = the received version (`2.5` if unknown), MSH-18 = the
/// received charset only when it is not UTF-8 (encode the text with [`crate::encode`]).
/// MSA-1 = `code`, MSA-2 = the received MSH-10 (empty if unknown), MSA-3 = a short text.
/// One ERR per problem (the first [`MAX_ERR_SEGMENTS`]): ERR-2 location, ERR-3
/// `code^text^HL70357`, ERR-4 `E`, ERR-8 the message; for v2.3/2.4 senders ERR-1 (ELD) too.
pub fn ack(
    received: Option<&Header>,
    code: AckCode,
    problems: &[Problem],
    sender: &AckSender,
    ack_control_id: &str,
    now: NaiveDateTime,
) -> String {
    let d = received.map_or(Delimiters::STANDARD, Header::delimiters);
    let e = |text: &str| d.escape(text);
    let component = d.component.to_string();
    let subcomponent = d.subcomponent.to_string();

    let trigger = received.map(|header| header.trigger_event.as_str()).unwrap_or_default();
    let message_type = if trigger.is_empty() { "ACK".to_owned() } else { ["ACK", &e(trigger), "ACK"].join(&component) };
    let processing_id = received.map(|header| header.processing_id.as_str()).filter(|p| !p.is_empty()).unwrap_or("P");
    let version = received.map(|header| header.version.as_str()).filter(|v| !v.is_empty()).unwrap_or(DEFAULT_VERSION);
    let charset = received.map_or(Charset::Utf8, |header| header.charset);

    let mut msh = vec![
        e(&sender.application),
        e(&sender.facility),
        e(received.map(|header| header.sending_application.as_str()).unwrap_or_default()),
        e(received.map(|header| header.sending_facility.as_str()).unwrap_or_default()),
        format!("{}+0000", now.format("%Y%m%d%H%M%S")),
        String::new(),
        message_type,
        e(ack_control_id),
        e(processing_id),
        e(version),
    ];
    if charset != Charset::Utf8 {
        msh.extend(std::iter::repeat_n(String::new(), 5));
        msh.push(e(charset.hl7_name()));
    }
    let mut text = format!("MSH{}{}{}{}", d.field, d.encoding_characters(), d.field, msh.join(&d.field.to_string()));
    text.push('\r');

    let control_id = received.map(|header| header.control_id.as_str()).unwrap_or_default();
    let msa = ["MSA".to_owned(), code.code().to_owned(), e(control_id), e(&msa_text(code, problems))];
    push_segment(&mut text, &msa, d.field);

    let legacy_err = matches!(minor_version(version), Some(3 | 4));
    for problem in problems.iter().take(MAX_ERR_SEGMENTS) {
        let location = &problem.location;
        let number = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        let erl = trim_join(
            &[
                e(&location.segment),
                location.sequence.to_string(),
                number(location.field),
                number(location.repetition),
                number(location.component),
                number(location.subcomponent),
            ],
            &component,
        );
        let condition = [e(problem.code.code()), e(problem.code.text()), "HL70357".to_owned()].join(&component);
        let eld = if legacy_err {
            let coded = [e(problem.code.code()), e(problem.code.text()), "HL70357".to_owned()].join(&subcomponent);
            trim_join(&[e(&location.segment), location.sequence.to_string(), number(location.field), coded], &component)
        } else {
            String::new()
        };
        let err = [
            "ERR".to_owned(),
            eld,
            erl,
            condition,
            "E".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            e(&problem.message),
        ];
        push_segment(&mut text, &err, d.field);
    }
    text
}

/// Appends one segment, without trailing empty fields, ended by `\r`.
fn push_segment(text: &mut String, fields: &[String], field_separator: char) {
    text.push_str(&trim_join(fields, &field_separator.to_string()));
    text.push('\r');
}

/// Joins parts, leaving out trailing empty ones.
fn trim_join(parts: &[String], separator: &str) -> String {
    let used = parts.iter().rposition(|part| !part.is_empty()).map_or(0, |last| last + 1);
    parts.get(..used).unwrap_or_default().join(separator)
}

/// MSA-3: a short summary, at most 80 characters.
fn msa_text(code: AckCode, problems: &[Problem]) -> String {
    let text = match (code, problems.first()) {
        (AckCode::Accept, _) => "Message accepted".to_owned(),
        (AckCode::Error, Some(first)) if problems.len() == 1 => format!("1 error: {}", first.message),
        (AckCode::Error, Some(first)) => format!("{} errors, first: {}", problems.len(), first.message),
        (AckCode::Error, None) => "Message has errors".to_owned(),
        (AckCode::Reject, Some(first)) => format!("Rejected: {}", first.message),
        (AckCode::Reject, None) => "Message rejected".to_owned(),
    };
    if text.chars().count() <= MSA_TEXT_MAX_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(MSA_TEXT_MAX_CHARS - 3).collect();
    short.push_str("...");
    short
}

/// The minor version of a `2.x` version string.
fn minor_version(version: &str) -> Option<u32> {
    let mut parts = version.trim().split('.');
    if parts.next() != Some("2") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ack_codes_are_read_back_with_any_field_separator() {
        use super::AckCode;
        assert_eq!(AckCode::of(b"MSH|^~\\&|A\rMSA|AE|1|x\r"), Some(AckCode::Error));
        assert_eq!(AckCode::of(b"MSH^~|\\&^A\rMSA^AR^1\r"), Some(AckCode::Reject));
        assert_eq!(AckCode::of(b"MSH|^~\\&|A\nMSA|AA|1\n"), Some(AckCode::Accept));
        assert_eq!(AckCode::of(b"not an ack"), None);
    }

    use super::*;
    use crate::error::{ErrorCode, Location};

    fn now() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2025, 3, 1).and_then(|d| d.and_hms_opt(8, 30, 0)).unwrap_or_default()
    }

    fn sender() -> AckSender {
        AckSender { application: "RHIP".into(), facility: "330106".into() }
    }

    #[test]
    fn ack_without_header_uses_standard_delimiters() {
        let text = ack(None, AckCode::Reject, &[], &sender(), "ACK1", now());
        assert_eq!(text, "MSH|^~\\&|RHIP|330106|||20250301083000+0000||ACK|ACK1|P|2.5\rMSA|AR||Message rejected\r");
    }

    #[test]
    fn msa_text_is_short() {
        let long = Problem::new(Location::segment("PID", 1), ErrorCode::SegmentSequence, "x".repeat(200));
        let text = msa_text(AckCode::Error, &[long.clone(), long]);
        assert_eq!(text.chars().count(), 80);
        assert!(text.starts_with("2 errors, first: xxx"));
    }

    #[test]
    fn trailing_empty_parts_are_dropped() {
        let parts = ["A".to_owned(), String::new(), "C".to_owned(), String::new()];
        assert_eq!(trim_join(&parts, "^"), "A^^C");
        assert_eq!(trim_join(&[String::new()], "^"), "");
        assert_eq!(minor_version("2.3.1"), Some(3));
        assert_eq!(minor_version("3.0"), None);
    }
}
