//! What can be wrong with a received message, in the terms the ACK needs: HL7 table 0357
//! error codes, ERL locations, content problems (AE) and rejections (AR).
//!
//! The sending hospital's interface engineer reads these in the ACK, so every message says
//! what was found and where, and the codes are the standard ones their engine understands.

use std::fmt;

/// HL7 table 0357 message error condition codes.
///
/// The ACK carries one of these per problem (ERR-3), so a sending engine can route
/// errors without parsing our English text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ErrorCode {
    /// 100: a segment is missing, extra or out of order.
    SegmentSequence,
    /// 101: a required field is empty.
    RequiredFieldMissing,
    /// 102: a value does not have the form of its data type (dates, IDs, escapes, bytes).
    DataTypeError,
    /// 103: a coded value is not in its table.
    TableValueNotFound,
    /// 200: MSH-9.1 is a message type this node does not take.
    UnsupportedMessageType,
    /// 201: MSH-9.2 is a trigger event this node does not take for a known type.
    UnsupportedEventCode,
    /// 202: MSH-11 is not supported.
    UnsupportedProcessingId,
    /// 203: MSH-12 is not a version this node reads.
    UnsupportedVersionId,
    /// 204: a referenced record does not exist.
    UnknownKeyIdentifier,
    /// 205: a record that must be new already exists.
    DuplicateKeyIdentifier,
    /// 206: the record is locked by another transaction.
    ApplicationRecordLocked,
    /// 207: the node failed for reasons that are not the sender's fault.
    ApplicationInternalError,
}

impl ErrorCode {
    /// Every code, in numeric order (for tables and tests).
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::SegmentSequence,
        ErrorCode::RequiredFieldMissing,
        ErrorCode::DataTypeError,
        ErrorCode::TableValueNotFound,
        ErrorCode::UnsupportedMessageType,
        ErrorCode::UnsupportedEventCode,
        ErrorCode::UnsupportedProcessingId,
        ErrorCode::UnsupportedVersionId,
        ErrorCode::UnknownKeyIdentifier,
        ErrorCode::DuplicateKeyIdentifier,
        ErrorCode::ApplicationRecordLocked,
        ErrorCode::ApplicationInternalError,
    ];

    /// The numeric code as it goes into ERR-3.1, e.g. `"101"`.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "100",
            ErrorCode::RequiredFieldMissing => "101",
            ErrorCode::DataTypeError => "102",
            ErrorCode::TableValueNotFound => "103",
            ErrorCode::UnsupportedMessageType => "200",
            ErrorCode::UnsupportedEventCode => "201",
            ErrorCode::UnsupportedProcessingId => "202",
            ErrorCode::UnsupportedVersionId => "203",
            ErrorCode::UnknownKeyIdentifier => "204",
            ErrorCode::DuplicateKeyIdentifier => "205",
            ErrorCode::ApplicationRecordLocked => "206",
            ErrorCode::ApplicationInternalError => "207",
        }
    }

    /// The table's text for the code, as it goes into ERR-3.2, e.g. `"Required field missing"`.
    pub fn text(&self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataTypeError => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersionId => "Unsupported version id",
            ErrorCode::UnknownKeyIdentifier => "Unknown key identifier",
            ErrorCode::DuplicateKeyIdentifier => "Duplicate key identifier",
            ErrorCode::ApplicationRecordLocked => "Application record locked",
            ErrorCode::ApplicationInternalError => "Application internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.text())
    }
}

/// Where in a message a problem is (ERR-2, data type ERL), all positions 1-based.
///
/// Points the sender's engineer at the exact value, down to the sub-component when known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    /// Segment ID, e.g. `"PID"`.
    pub segment: String,
    /// Which occurrence of that segment (1 for the first OBX, 2 for the second …).
    pub sequence: u32,
    /// Field position; `None` when the whole segment is meant.
    pub field: Option<u32>,
    /// Field repetition.
    pub repetition: Option<u32>,
    /// Component.
    pub component: Option<u32>,
    /// Sub-component.
    pub subcomponent: Option<u32>,
}

impl Location {
    /// A whole segment (e.g. a missing PV1).
    pub fn segment(segment: &str, sequence: u32) -> Location {
        Location {
            segment: segment.to_owned(),
            sequence,
            field: None,
            repetition: None,
            component: None,
            subcomponent: None,
        }
    }

    /// A whole field of a segment (e.g. `PID[1].5`).
    pub fn field(segment: &str, sequence: u32, field: u32) -> Location {
        Location { field: Some(field), ..Location::segment(segment, sequence) }
    }

    /// The same location narrowed to one repetition.
    pub fn with_repetition(mut self, repetition: u32) -> Location {
        self.repetition = Some(repetition);
        self
    }

    /// The same location narrowed to one component.
    pub fn with_component(mut self, component: u32) -> Location {
        self.component = Some(component);
        self
    }

    /// The same location narrowed to one sub-component.
    pub fn with_subcomponent(mut self, subcomponent: u32) -> Location {
        self.subcomponent = Some(subcomponent);
        self
    }
}

/// Renders in the query syntax of `hl7-parser` (`PID[1].3[2].1`, `MSH[1].9`), so a location
/// in a log line can be pasted into tools that read that syntax.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.segment, self.sequence)?;
        let Some(field) = self.field else {
            return Ok(());
        };
        write!(f, ".{field}")?;
        if let Some(repetition) = self.repetition {
            write!(f, "[{repetition}]")?;
        }
        let Some(component) = self.component else {
            return Ok(());
        };
        write!(f, ".{component}")?;
        if let Some(subcomponent) = self.subcomponent {
            write!(f, ".{subcomponent}")?;
        }
        Ok(())
    }
}

/// One content problem: the message is answered AE with one ERR segment per problem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Problem {
    /// Where the problem is.
    pub location: Location,
    /// Its table 0357 code.
    pub code: ErrorCode,
    /// What is wrong, for a person (goes into ERR-8).
    pub message: String,
}

impl Problem {
    /// Builds a problem.
    pub fn new(location: Location, code: ErrorCode, message: impl Into<String>) -> Problem {
        Problem { location, code, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.code.code(), self.location, self.message)
    }
}

/// Why a message cannot be processed at all (answered AR).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not a readable HL7 v2 message: empty, no MSH, bad delimiters, an
    /// unterminated escape in MSH, bytes undecodable in the declared charset, or lines
    /// that are not segments.
    #[error("unreadable message: {0}")]
    Unreadable(String),
    /// MSH-12 is missing, older than 2.3, or not a 2.x version (holds MSH-12.1 as received).
    #[error("{}", unsupported_version_text(.0))]
    UnsupportedVersion(String),
    /// MSH-9 is not one of the supported message types (holds e.g. `"OML^O21"`; empty when
    /// MSH-9 is missing).
    #[error("{}", unsupported_type_text(.0))]
    UnsupportedMessageType(String),
    /// MSH-18 names a character set this node does not decode (holds MSH-18 as received).
    #[error(
        "unsupported character set {0:?} in MSH-18 (accepted: UNICODE UTF-8, UNICODE, UTF-8, ASCII, GB18030, 8859/1)"
    )]
    UnsupportedCharset(String),
}

/// Message text of [`Rejection::UnsupportedVersion`].
fn unsupported_version_text(version: &str) -> String {
    if version.is_empty() {
        "version (MSH-12) is missing".to_owned()
    } else {
        format!("unsupported HL7 version {version:?} in MSH-12 (2.3 or later 2.x required)")
    }
}

/// Message text of [`Rejection::UnsupportedMessageType`].
fn unsupported_type_text(message_type: &str) -> String {
    if message_type_is_missing(message_type) {
        "message type (MSH-9) is missing".to_owned()
    } else {
        format!(
            "unsupported message type {message_type:?} in MSH-9 (supported: ADT^A01 A02 A03 A04 A05 A08 A11 A13 \
             A28 A31 A40, ORU^R01, VXU^V04)"
        )
    }
}

/// Whether an `UnsupportedMessageType` value means "MSH-9.1 was empty".
fn message_type_is_missing(message_type: &str) -> bool {
    message_type.split('^').next().is_none_or(|kind| kind.trim().is_empty())
}

/// The message types whose trigger events are known here (so an unknown trigger is 201).
const KNOWN_TYPES: [&str; 3] = ["ADT", "ORU", "VXU"];

/// Beginnings of [`Rejection::Unreadable`] texts that describe the segment structure
/// (answered with code 100 rather than 102).
pub(crate) const STRUCTURE_PREFIXES: [&str; 3] = ["empty message", "no MSH segment", "line "];

impl Rejection {
    /// The table 0357 code for ERR-3 of the AR.
    ///
    /// Unreadable: 100 when the segment structure is wrong (empty, no MSH, a line that is
    /// not a segment), else 102. Version: 203. Message type: 101 when MSH-9 is empty, 200
    /// for an unknown type (including ACK), 201 for an unsupported trigger of ADT/ORU/VXU.
    /// Charset: 102.
    pub fn code(&self) -> ErrorCode {
        match self {
            Rejection::Unreadable(text) => {
                if STRUCTURE_PREFIXES.iter().any(|prefix| text.starts_with(prefix)) {
                    ErrorCode::SegmentSequence
                } else {
                    ErrorCode::DataTypeError
                }
            }
            Rejection::UnsupportedVersion(_) => ErrorCode::UnsupportedVersionId,
            Rejection::UnsupportedMessageType(message_type) => {
                if message_type_is_missing(message_type) {
                    ErrorCode::RequiredFieldMissing
                } else {
                    let kind = message_type.split('^').next().unwrap_or_default().trim().to_ascii_uppercase();
                    if KNOWN_TYPES.contains(&kind.as_str()) {
                        ErrorCode::UnsupportedEventCode
                    } else {
                        ErrorCode::UnsupportedMessageType
                    }
                }
            }
            Rejection::UnsupportedCharset(_) => ErrorCode::DataTypeError,
        }
    }

    /// Where the cause is, for ERR-2 of the AR: MSH for unreadable messages, MSH-12 for the
    /// version, MSH-9 (.1 for the type, .2 for the trigger) for the message type, MSH-18 for
    /// the charset.
    pub fn location(&self) -> Location {
        match self {
            Rejection::Unreadable(_) => Location::segment("MSH", 1),
            Rejection::UnsupportedVersion(_) => Location::field("MSH", 1, 12),
            Rejection::UnsupportedMessageType(_) => {
                let location = Location::field("MSH", 1, 9);
                match self.code() {
                    ErrorCode::UnsupportedMessageType => location.with_component(1),
                    ErrorCode::UnsupportedEventCode => location.with_component(2),
                    _ => location,
                }
            }
            Rejection::UnsupportedCharset(_) => Location::field("MSH", 1, 18),
        }
    }

    /// The rejection as a [`Problem`], for the ERR segment of the AR built by [`crate::ack`].
    pub fn problem(&self) -> Problem {
        Problem::new(self.location(), self.code(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_texts() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::code).collect();
        assert_eq!(codes, ["100", "101", "102", "103", "200", "201", "202", "203", "204", "205", "206", "207"]);
        assert_eq!(ErrorCode::RequiredFieldMissing.text(), "Required field missing");
        assert_eq!(ErrorCode::TableValueNotFound.to_string(), "103 Table value not found");
    }

    #[test]
    fn locations_render_like_hl7_parser_queries() {
        assert_eq!(Location::segment("PV1", 1).to_string(), "PV1[1]");
        assert_eq!(Location::field("PID", 1, 5).to_string(), "PID[1].5");
        assert_eq!(Location::field("PID", 1, 3).with_repetition(2).with_component(1).to_string(), "PID[1].3[2].1");
        assert_eq!(Location::field("PID", 1, 11).with_component(9).with_subcomponent(1).to_string(), "PID[1].11.9.1");
        assert_eq!(Location::field("OBX", 3, 3).to_string(), "OBX[3].3");
    }

    #[test]
    fn rejection_codes_and_locations() {
        let cases = [
            (Rejection::Unreadable("empty message".into()), "100", "MSH[1]"),
            (Rejection::Unreadable("no MSH segment at the start".into()), "100", "MSH[1]"),
            (Rejection::Unreadable("byte 7 is not valid UTF-8".into()), "102", "MSH[1]"),
            (Rejection::UnsupportedVersion("2.2".into()), "203", "MSH[1].12"),
            (Rejection::UnsupportedVersion(String::new()), "203", "MSH[1].12"),
            (Rejection::UnsupportedMessageType("OML^O21".into()), "200", "MSH[1].9.1"),
            (Rejection::UnsupportedMessageType("ACK^A01".into()), "200", "MSH[1].9.1"),
            (Rejection::UnsupportedMessageType("ADT^A24".into()), "201", "MSH[1].9.2"),
            (Rejection::UnsupportedMessageType(String::new()), "101", "MSH[1].9"),
            (Rejection::UnsupportedMessageType("^A01".into()), "101", "MSH[1].9"),
            (Rejection::UnsupportedCharset("ISO IR87".into()), "102", "MSH[1].18"),
        ];
        for (rejection, code, location) in cases {
            assert_eq!(rejection.code().code(), code, "{rejection:?}");
            assert_eq!(rejection.location().to_string(), location, "{rejection:?}");
            assert_eq!(rejection.problem().message, rejection.to_string());
        }
        assert_eq!(Rejection::UnsupportedMessageType(String::new()).to_string(), "message type (MSH-9) is missing");
        assert_eq!(Rejection::UnsupportedVersion(String::new()).to_string(), "version (MSH-12) is missing");
    }
}
