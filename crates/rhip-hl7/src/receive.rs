//! Reading one message: bytes → charset → segments (by `hl7-parser`) → header checks →
//! domain event with every content problem collected.
//!
//! The order of the steps is the order of the questions a sender needs answered: can the
//! bytes be read at all (else AR, Unreadable), is this a version and message type we take
//! (else AR), and is the content valid (else AE listing every problem, not only the first).
//! Nothing here panics or indexes unchecked: the input comes from the network.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use hl7_parser::message::Segment;
use rhip_core::{check_against_id, CitizenId, Discrepancy, EncounterType, Ethnicity, MaritalStatus, RegionCode, Sex};

use crate::charset::{self, Charset, Declared};
use crate::dtm;
use crate::error::{ErrorCode, Location, Problem, Rejection};
use crate::escape::{decode_lenient, Delimiters, EscapeError};
use crate::model::{Allergy, Cx, Diagnosis, Dose, Event, Insurance, NextOfKin, Observation, Order, Patient, Visit};

/// MSH facts needed to answer and to route.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Header {
    /// MSH-1.
    pub field_separator: char,
    /// MSH-2 as received (e.g. `"^~\\&"`, or 5 characters with a truncation character).
    pub encoding_characters: String,
    /// MSH-3 first component, decoded (its universal ID when the namespace is empty).
    pub sending_application: String,
    /// MSH-4 first component: the facility code RHIP registers.
    pub sending_facility: String,
    /// MSH-5 first component.
    pub receiving_application: String,
    /// MSH-6 first component.
    pub receiving_facility: String,
    /// MSH-7 in UTC (`None` when absent or unreadable).
    pub message_time: Option<NaiveDateTime>,
    /// MSH-9.1, e.g. `"ADT"`.
    pub message_type: String,
    /// MSH-9.2, e.g. `"A01"`.
    pub trigger_event: String,
    /// MSH-10, echoed in MSA-2.
    pub control_id: String,
    /// MSH-11.1 (`P`, `T`, `D`).
    pub processing_id: String,
    /// MSH-12.1.
    pub version: String,
    /// From MSH-18 (UTF-8 when empty).
    pub charset: Charset,
}

impl Header {
    /// The delimiters to answer with: the received ones when they are usable, else `|^~\&`.
    pub fn delimiters(&self) -> Delimiters {
        let msh = format!("MSH{}{}", self.field_separator, self.encoding_characters);
        Delimiters::from_msh(&msh).map(|(delimiters, _, _)| delimiters).unwrap_or(Delimiters::STANDARD)
    }

    /// `"ADT^A01"`: MSH-9.1 and MSH-9.2 as one string.
    pub fn message_name(&self) -> String {
        if self.trigger_event.is_empty() {
            self.message_type.clone()
        } else {
            format!("{}^{}", self.message_type, self.trigger_event)
        }
    }
}

/// Outcome of reading one message.
// One per message, moved once: boxing the event would only make matching on it clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// Header understood and content valid: apply it.
    Accepted {
        /// The message header.
        header: Header,
        /// What the message means.
        event: Event,
        /// Raw Z segment lines, kept for the archive.
        z_segments: Vec<String>,
    },
    /// Header understood but content invalid: answer AE with these problems; apply nothing.
    Invalid {
        /// The message header.
        header: Header,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// Not processable: answer AR. The header is present when MSH could be read, to echo
    /// MSH-10 and address the ACK.
    Rejected {
        /// The header, when MSH could be read.
        header: Option<Header>,
        /// Why the message is refused.
        reason: Rejection,
    },
}

impl Received {
    /// The header, whatever the outcome, when MSH could be read.
    pub fn header(&self) -> Option<&Header> {
        match self {
            Received::Accepted { header, .. } | Received::Invalid { header, .. } => Some(header),
            Received::Rejected { header, .. } => header.as_ref(),
        }
    }

    /// The problems to report in ERR segments: none for Accepted, the content problems for
    /// Invalid, the rejection as one problem for Rejected.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Received::Accepted { .. } => Vec::new(),
            Received::Invalid { problems, .. } => problems.clone(),
            Received::Rejected { reason, .. } => vec![reason.problem()],
        }
    }
}

/// The message types and triggers this node takes.
const SUPPORTED: [(&str, &[&str]); 3] = [
    ("ADT", &["A01", "A02", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31", "A40"]),
    ("ORU", &["R01"]),
    ("VXU", &["V04"]),
];

/// Longest excerpt of a bad line quoted in a rejection.
const PREVIEW_CHARS: usize = 40;

/// Reads one message (the payload of one MLLP frame, or one HTTP body).
///
/// `today` bounds dates: birth dates and clinical times after `today` plus one day (for
/// time zones) are problems. See the crate documentation for the steps and rules.
pub fn receive(raw: &[u8], today: NaiveDate) -> Received {
    let bom = if raw.starts_with(&[0xef, 0xbb, 0xbf]) { 3 } else { 0 };
    let body = raw.get(bom..).unwrap_or_default();
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let message = body.get(start..).unwrap_or_default();
    if message.is_empty() {
        return rejected(None, Rejection::Unreadable("empty message".to_owned()));
    }
    if !message.starts_with(b"MSH") {
        let found: String = String::from_utf8_lossy(message).chars().take(8).collect();
        return rejected(None, Rejection::Unreadable(format!("no MSH segment at the start (found {found:?})")));
    }
    let charset = match charset::sniff(message) {
        Declared::Known(charset) => charset,
        Declared::Unsupported(name) => {
            return rejected(lenient_header(message, Charset::Utf8), Rejection::UnsupportedCharset(name));
        }
    };
    match charset::decode(message, charset) {
        Ok(text) => read_text(&text, charset, today),
        Err(offset) => {
            let byte = message.get(offset).copied().unwrap_or_default();
            let position = bom + start + offset;
            rejected(
                lenient_header(message, charset),
                Rejection::Unreadable(format!(
                    "byte {position} (0x{byte:02X}) is not valid {charset}, the character set declared by MSH-18 \
                     (UTF-8 when MSH-18 is empty)"
                )),
            )
        }
    }
}

/// A rejection.
fn rejected(header: Option<Header>, reason: Rejection) -> Received {
    Received::Rejected { header, reason }
}

/// The header of a message whose body cannot be decoded: read from the MSH line decoded
/// with replacement characters, so the AR can still echo MSH-10.
fn lenient_header(message: &[u8], charset: Charset) -> Option<Header> {
    let line_end = message.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(message.len());
    let line = message.get(..line_end).unwrap_or_default();
    let text = match charset {
        Charset::Utf8 => String::from_utf8_lossy(line).into_owned(),
        Charset::Gb18030 => encoding_rs::GB18030.decode_without_bom_handling(line).0.into_owned(),
        Charset::Latin1 => line.iter().map(|&b| char::from(b)).collect(),
    };
    let structure = Structure::split(&text).ok()?;
    let parsed = hl7_parser::Message::parse(&structure.msh_line).ok()?;
    let msh = parsed.segments.first()?;
    Some(read_header(msh, &structure, charset).header)
}

/// The lines of a message, with its delimiters, ready for `hl7-parser`.
struct Structure {
    /// The delimiters from MSH-1/MSH-2.
    delimiters: Delimiters,
    /// MSH-2 as received.
    encoding_characters: String,
    /// The fifth MSH-2 character (v2.7 truncation), if any.
    truncation: Option<char>,
    /// The MSH line rewritten with a 4-character MSH-2 (what `hl7-parser` expects).
    msh_line: String,
    /// Every segment line after MSH, as `hl7-parser` gets it.
    lines: Vec<String>,
    /// Every line as received (MSH first), for Z segments.
    originals: Vec<String>,
    /// 1-based line number (after dropping blank lines) of each entry of `originals`.
    line_numbers: Vec<usize>,
    /// The first line that is not a segment: (line number, excerpt).
    bad_line: Option<(usize, String)>,
}

impl Structure {
    /// Splits text into segment lines (CR, LF and CRLF all end a segment; blank lines are
    /// dropped) and reads the delimiters.
    fn split(text: &str) -> Result<Structure, Rejection> {
        let all: Vec<&str> = text.split(['\r', '\n']).filter(|line| !line.trim().is_empty()).collect();
        let Some(first) = all.first() else {
            return Err(Rejection::Unreadable("empty message".to_owned()));
        };
        if !first.starts_with("MSH") {
            return Err(Rejection::Unreadable("no MSH segment at the start".to_owned()));
        }
        let (delimiters, encoding_characters, after) = Delimiters::from_msh(first).map_err(Rejection::Unreadable)?;
        let truncation = encoding_characters.chars().nth(4);
        let msh_line = format!(
            "MSH{}{}{}",
            delimiters.field,
            delimiters.encoding_characters(),
            first.get(after..).unwrap_or_default()
        );
        let mut structure = Structure {
            delimiters,
            encoding_characters,
            truncation,
            msh_line,
            lines: Vec::new(),
            originals: vec![(*first).to_owned()],
            line_numbers: vec![1],
            bad_line: None,
        };
        for (index, line) in all.iter().enumerate().skip(1) {
            match segment_line(line, delimiters.field) {
                Some(prepared) => {
                    structure.lines.push(prepared);
                    structure.originals.push((*line).to_owned());
                    structure.line_numbers.push(index + 1);
                }
                None => {
                    if structure.bad_line.is_none() {
                        let excerpt: String = line.chars().take(PREVIEW_CHARS).collect();
                        structure.bad_line = Some((index + 1, excerpt));
                    }
                }
            }
        }
        Ok(structure)
    }

    /// The text handed to `hl7-parser`: MSH alone when a line is bad (only the header is
    /// needed then), else every segment.
    fn parser_input(&self) -> String {
        if self.bad_line.is_some() {
            return self.msh_line.clone();
        }
        let mut text = self.msh_line.clone();
        for line in &self.lines {
            text.push('\r');
            text.push_str(line);
        }
        text
    }
}

/// A line ready for `hl7-parser` if it is a segment: a three-character ID (an upper-case
/// letter, then upper-case letters or digits) followed by the field separator or nothing
/// (a separator is then added, as the parser needs one). A second MSH is not a segment of
/// this message.
fn segment_line(line: &str, field_separator: char) -> Option<String> {
    let bytes = line.as_bytes();
    let id = bytes.get(..3)?;
    let valid_id = id.first().is_some_and(u8::is_ascii_uppercase)
        && id.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && id != b"MSH";
    if !valid_id {
        return None;
    }
    let rest = line.get(3..)?;
    if rest.is_empty() {
        return Some(format!("{line}{field_separator}"));
    }
    rest.starts_with(field_separator).then(|| line.to_owned())
}

/// Reads a decoded message.
fn read_text(text: &str, charset: Charset, today: NaiveDate) -> Received {
    let structure = match Structure::split(text) {
        Ok(structure) => structure,
        Err(reason) => return rejected(None, reason),
    };
    let input = structure.parser_input();
    let message = match hl7_parser::Message::parse(&input) {
        Ok(message) => message,
        Err(error) => return rejected(None, Rejection::Unreadable(format!("MSH cannot be parsed: {error}"))),
    };
    if message.separators != structure.delimiters.separators() {
        return rejected(
            None,
            Rejection::Unreadable("MSH-1/MSH-2 delimiters could not be read consistently".to_owned()),
        );
    }
    let Some(msh) = message.segments.first() else {
        return rejected(None, Rejection::Unreadable("no MSH segment at the start".to_owned()));
    };
    let HeaderRead { header, problems: header_problems, escape_error } = read_header(msh, &structure, charset);
    if let Some((field, error)) = escape_error {
        return rejected(Some(header), Rejection::Unreadable(format!("MSH-{field}: {error}")));
    }
    if !version_supported(&header.version) {
        let version = header.version.clone();
        return rejected(Some(header), Rejection::UnsupportedVersion(version));
    }
    let kind = header.message_type.trim().to_ascii_uppercase();
    let trigger = header.trigger_event.trim().to_ascii_uppercase();
    let supported = SUPPORTED.iter().any(|(k, triggers)| *k == kind && triggers.contains(&trigger.as_str()));
    if !supported {
        let name = if kind.is_empty() && !trigger.is_empty() { format!("^{trigger}") } else { header.message_name() };
        return rejected(Some(header), Rejection::UnsupportedMessageType(name));
    }
    if let Some((line, excerpt)) = &structure.bad_line {
        let reason = format!(
            "line {line} is not an HL7 segment (3-character segment ID, then the field separator): {excerpt:?}"
        );
        return rejected(Some(header), Rejection::Unreadable(reason));
    }
    if message.segments.len() != structure.originals.len() {
        let index = message.segments.len();
        let line = structure.line_numbers.get(index).copied().unwrap_or(index + 1);
        return rejected(Some(header), Rejection::Unreadable(format!("line {line} could not be parsed as a segment")));
    }
    let mut reader = Reader {
        delimiters: structure.delimiters,
        truncation: structure.truncation,
        charset,
        today,
        problems: header_problems,
        segments: index_segments(&message.segments),
    };
    let outcome = reader.read_event(&kind, &trigger);
    // The same value can be read twice (e.g. PV1-3 for the location and the department);
    // report each problem once, in order, in linear time whatever the input.
    let mut seen = HashSet::new();
    let mut problems = reader.problems;
    problems.retain(|problem| seen.insert(problem.clone()));
    match outcome {
        Some(event) if problems.is_empty() => {
            let z_segments = structure.originals.iter().skip(1).filter(|line| line.starts_with('Z')).cloned().collect();
            Received::Accepted { header, event, z_segments }
        }
        _ => {
            if problems.is_empty() {
                problems.push(Problem::new(
                    Location::segment("MSH", 1),
                    ErrorCode::ApplicationInternalError,
                    "the message could not be mapped although no problem was found",
                ));
            }
            Received::Invalid { header, problems }
        }
    }
}

/// Whether MSH-12.1 is a 2.x version from 2.3 on ("2.3", "2.3.1", "2.5.1", "2.8", also
/// non-standard suffixes such as "2.3.z").
fn version_supported(version: &str) -> bool {
    let mut parts = version.trim().split('.');
    let major = parts.next();
    let minor = parts.next().filter(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()));
    major == Some("2") && minor.and_then(|minor| minor.parse::<u32>().ok()).is_some_and(|minor| minor >= 3)
}

/// The header and what was wrong with it.
struct HeaderRead {
    header: Header,
    /// Content problems (a bad MSH-7, a missing MSH-10).
    problems: Vec<Problem>,
    /// The first field of MSH with a broken escape: the message is unreadable.
    escape_error: Option<(u32, EscapeError)>,
}

/// Reads MSH.
fn read_header(msh: &Segment<'_>, structure: &Structure, charset: Charset) -> HeaderRead {
    let mut escape_error = None;
    let mut problems = Vec::new();
    let mut text = |field: u32, component: u32| -> String {
        let raw = raw_value(msh, field, 1, component, 1).unwrap_or_default();
        let (value, error) = decode_lenient(raw, &structure.delimiters, structure.truncation, charset);
        if let Some(error) = error {
            escape_error.get_or_insert((field, error));
        }
        let value = value.trim();
        if value == "\"\"" {
            String::new()
        } else {
            value.to_owned()
        }
    };
    let hd = |text: &mut dyn FnMut(u32, u32) -> String, field: u32| {
        let namespace = text(field, 1);
        if namespace.is_empty() {
            text(field, 2)
        } else {
            namespace
        }
    };
    let sending_application = hd(&mut text, 3);
    let sending_facility = hd(&mut text, 4);
    let receiving_application = hd(&mut text, 5);
    let receiving_facility = hd(&mut text, 6);
    let time_text = text(7, 1);
    let message_type = text(9, 1);
    let trigger_event = text(9, 2);
    let control_id = text(10, 1);
    let processing_id = text(11, 1);
    let version = text(12, 1);
    let message_time = if time_text.is_empty() {
        None
    } else {
        match dtm::parse(&time_text) {
            Ok(time) => Some(time.utc()),
            Err(why) => {
                problems.push(Problem::new(
                    Location::field("MSH", 1, 7),
                    ErrorCode::DataTypeError,
                    format!("MSH-7: {why}"),
                ));
                None
            }
        }
    };
    if control_id.is_empty() {
        problems.push(Problem::new(
            Location::field("MSH", 1, 10),
            ErrorCode::RequiredFieldMissing,
            "MSH-10 message control ID is required",
        ));
    }
    HeaderRead {
        header: Header {
            field_separator: structure.delimiters.field,
            encoding_characters: structure.encoding_characters.clone(),
            sending_application,
            sending_facility,
            receiving_application,
            receiving_facility,
            message_time,
            message_type,
            trigger_event,
            control_id,
            processing_id,
            version,
            charset,
        },
        problems,
        escape_error,
    }
}

/// The raw text of one sub-component, positions 1-based; `None` when absent.
fn raw_value<'m>(
    segment: &Segment<'m>,
    field: u32,
    repetition: u32,
    component: u32,
    subcomponent: u32,
) -> Option<&'m str> {
    let index = |n: u32| usize::try_from(n).ok()?.checked_sub(1);
    let field = segment.fields.get(index(field)?)?;
    let repetition = field.repeats.get(index(repetition)?)?;
    let component = repetition.components.get(index(component)?)?;
    component.subcomponents.get(index(subcomponent)?).map(|sub| sub.value)
}

/// A count as a location position.
fn position(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One segment of the message with its occurrence number.
#[derive(Clone, Copy)]
struct Seg<'a, 'm> {
    segment: &'a Segment<'m>,
    /// 1-based occurrence of this segment ID in the message.
    sequence: u32,
}

impl<'a, 'm> Seg<'a, 'm> {
    fn name(&self) -> &'m str {
        self.segment.name
    }

    fn location(&self, field: u32) -> Location {
        Location::field(self.name(), self.sequence, field)
    }

    fn repetitions(&self, field: u32) -> u32 {
        let index = usize::try_from(field).ok().and_then(|n| n.checked_sub(1));
        index.and_then(|i| self.segment.fields.get(i)).map_or(0, |field| position(field.repeats.len()))
    }

    fn components(&self, field: u32, repetition: u32) -> u32 {
        let index = |n: u32| usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
        index(field)
            .and_then(|i| self.segment.fields.get(i))
            .and_then(|field| index(repetition).and_then(|i| field.repeats.get(i)))
            .map_or(0, |repetition| position(repetition.components.len()))
    }

    fn subcomponents(&self, field: u32, repetition: u32, component: u32) -> u32 {
        let index = |n: u32| usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
        index(field)
            .and_then(|i| self.segment.fields.get(i))
            .and_then(|field| index(repetition).and_then(|i| field.repeats.get(i)))
            .and_then(|repetition| index(component).and_then(|i| repetition.components.get(i)))
            .map_or(0, |component| position(component.subcomponents.len()))
    }

    /// Whether the segment has a non-empty field after its set ID (field 1).
    fn has_content(&self) -> bool {
        self.segment.fields.iter().skip(1).any(|field| !field.is_empty() && field.raw_value().trim() != "\"\"")
    }
}

/// Numbers the segments by occurrence.
fn index_segments<'a, 'm>(segments: &'a [Segment<'m>]) -> Vec<Seg<'a, 'm>> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    let mut indexed = Vec::with_capacity(segments.len());
    for segment in segments {
        let count = counts.entry(segment.name).or_insert(0);
        *count = count.saturating_add(1);
        indexed.push(Seg { segment, sequence: *count });
    }
    indexed
}

/// What an ADT trigger requires of PV1.
#[derive(Clone, Copy)]
struct VisitRules {
    /// PV1 must be present (100 otherwise).
    segment: bool,
    /// PV1-19 must be valued (101).
    visit_number: bool,
    /// PV1-2 must be valued (101).
    patient_class: bool,
}

impl VisitRules {
    fn for_trigger(trigger: &str) -> VisitRules {
        let (segment, visit_number, patient_class) = match trigger {
            "A01" | "A02" | "A03" => (true, true, true),
            "A04" | "A05" => (true, false, true),
            "A11" | "A13" => (true, true, false),
            _ => (false, false, false),
        };
        VisitRules { segment, visit_number, patient_class }
    }
}

/// A coded element: (code, text, coding system).
type Coded = (Option<String>, Option<String>, Option<String>);

/// Reads the content of a message whose header passed, collecting problems.
struct Reader<'a, 'm> {
    delimiters: Delimiters,
    truncation: Option<char>,
    charset: Charset,
    today: NaiveDate,
    problems: Vec<Problem>,
    segments: Vec<Seg<'a, 'm>>,
}

impl<'a, 'm> Reader<'a, 'm> {
    fn problem(&mut self, location: Location, code: ErrorCode, message: impl Into<String>) {
        self.problems.push(Problem::new(location, code, message));
    }

    fn first(&self, name: &str) -> Option<Seg<'a, 'm>> {
        self.segments.iter().find(|seg| seg.name() == name).copied()
    }

    fn all(&self, name: &str) -> Vec<Seg<'a, 'm>> {
        self.segments.iter().filter(|seg| seg.name() == name).copied().collect()
    }

    /// The decoded, trimmed value of one sub-component; `None` when empty or the explicit
    /// null `""`. A broken escape is a 102 problem at the sub-component.
    fn text(
        &mut self,
        seg: Seg<'a, 'm>,
        field: u32,
        repetition: u32,
        component: u32,
        subcomponent: u32,
    ) -> Option<String> {
        let raw = raw_value(seg.segment, field, repetition, component, subcomponent)?;
        let (value, error) = decode_lenient(raw, &self.delimiters, self.truncation, self.charset);
        if let Some(error) = error {
            let location = seg
                .location(field)
                .with_repetition(repetition)
                .with_component(component)
                .with_subcomponent(subcomponent);
            self.problem(location, ErrorCode::DataTypeError, format!("{}-{field}: {error}", seg.name()));
        }
        let value = value.trim();
        (!value.is_empty() && value != "\"\"").then(|| value.to_owned())
    }

    /// First sub-component of a component.
    fn comp(&mut self, seg: Seg<'a, 'm>, field: u32, repetition: u32, component: u32) -> Option<String> {
        self.text(seg, field, repetition, component, 1)
    }

    /// First component of the first repetition of a field.
    fn field(&mut self, seg: Seg<'a, 'm>, field: u32) -> Option<String> {
        self.text(seg, field, 1, 1, 1)
    }

    /// A whole component with its sub-components joined by the sub-component separator.
    fn component_whole(&mut self, seg: Seg<'a, 'm>, field: u32, repetition: u32, component: u32) -> Option<String> {
        let count = seg.subcomponents(field, repetition, component);
        let parts: Vec<String> =
            (1..=count).map(|sub| self.text(seg, field, repetition, component, sub).unwrap_or_default()).collect();
        let joined = parts.join(&self.delimiters.subcomponent.to_string());
        let joined = joined.trim_matches(self.delimiters.subcomponent).trim();
        (!joined.is_empty()).then(|| joined.to_owned())
    }

    /// A coded element (CE/CWE) of one repetition: the primary triplet, or the alternate
    /// one (components 4-6) when the primary has neither code nor text.
    fn coded(&mut self, seg: Seg<'a, 'm>, field: u32, repetition: u32) -> Coded {
        let code = self.comp(seg, field, repetition, 1);
        let text = self.comp(seg, field, repetition, 2);
        if code.is_some() || text.is_some() {
            return (code, text, self.comp(seg, field, repetition, 3));
        }
        (
            self.comp(seg, field, repetition, 4),
            self.comp(seg, field, repetition, 5),
            self.comp(seg, field, repetition, 6),
        )
    }

    /// A date/time field (first component, TS or DTM) in UTC; 102 when unreadable or, for
    /// clinical times, after tomorrow.
    fn time(&mut self, seg: Seg<'a, 'm>, field: u32, what: &str) -> Option<NaiveDateTime> {
        let text = self.field(seg, field)?;
        let label = format!("{}-{field} {what}", seg.name());
        match dtm::parse(&text) {
            Ok(time) => {
                let utc = time.utc();
                if utc.date() > self.latest_date() {
                    self.problem(
                        seg.location(field),
                        ErrorCode::DataTypeError,
                        format!("{label} {text} is in the future (today is {})", self.today),
                    );
                }
                Some(utc)
            }
            Err(why) => {
                self.problem(seg.location(field), ErrorCode::DataTypeError, format!("{label}: {why}"));
                None
            }
        }
    }

    /// The last acceptable date: tomorrow, for senders ahead of UTC.
    fn latest_date(&self) -> NaiveDate {
        self.today.checked_add_signed(Duration::days(1)).unwrap_or(self.today)
    }

    /// Maps the message to its event.
    fn read_event(&mut self, kind: &str, trigger: &str) -> Option<Event> {
        let pids = self.all("PID");
        for extra in pids.iter().skip(1) {
            self.problem(
                Location::segment("PID", extra.sequence),
                ErrorCode::SegmentSequence,
                "only one patient (PID) per message is supported",
            );
        }
        // Without PID the rest is still checked, so the sender hears of every problem at
        // once; the event built on the placeholder patient is never returned.
        let patient = match pids.first() {
            Some(pid) => self.patient(*pid),
            None => {
                self.problem(Location::segment("PID", 1), ErrorCode::SegmentSequence, "PID segment is required");
                placeholder_patient()
            }
        };
        match kind {
            "ADT" => self.adt(trigger, patient),
            "ORU" => self.oru(patient),
            "VXU" => self.vxu(patient),
            _ => None,
        }
    }

    fn adt(&mut self, trigger: &str, patient: Patient) -> Option<Event> {
        match trigger {
            "A28" => return Some(Event::AddPerson { patient }),
            "A31" => return Some(Event::UpdatePerson { patient }),
            "A40" => return self.merge(patient),
            _ => {}
        }
        let rules = VisitRules::for_trigger(trigger);
        let pv1 = self.first("PV1");
        let visit = match pv1 {
            Some(pv1) if rules.segment || pv1.has_content() => Some(self.visit(pv1, rules)),
            Some(_) => None,
            None => {
                if rules.segment {
                    self.problem(
                        Location::segment("PV1", 1),
                        ErrorCode::SegmentSequence,
                        format!("PV1 segment is required for ADT^{trigger}"),
                    );
                }
                None
            }
        };
        match trigger {
            "A08" => Some(Event::UpdateVisit { patient, visit }),
            "A01" => Some(Event::Admit { patient, visit: visit? }),
            "A02" => Some(Event::Transfer { patient, visit: visit? }),
            "A03" => Some(Event::Discharge { patient, visit: visit? }),
            "A04" => Some(Event::Register { patient, visit: visit? }),
            "A05" => Some(Event::PreAdmit { patient, visit: visit? }),
            "A11" => Some(Event::CancelAdmit { patient, visit: visit? }),
            "A13" => Some(Event::CancelDischarge { patient, visit: visit? }),
            _ => None,
        }
    }

    fn merge(&mut self, patient: Patient) -> Option<Event> {
        let Some(mrg) = self.first("MRG") else {
            self.problem(
                Location::segment("MRG", 1),
                ErrorCode::SegmentSequence,
                "MRG segment is required for ADT^A40",
            );
            return None;
        };
        let prior = self.identifiers(mrg, 1);
        if prior.is_empty() {
            self.problem(
                mrg.location(1),
                ErrorCode::RequiredFieldMissing,
                "MRG-1 prior patient identifier list is required",
            );
        }
        Some(Event::Merge { patient, prior })
    }

    fn oru(&mut self, patient: Patient) -> Option<Event> {
        let visit = match self.first("PV1") {
            Some(pv1) if pv1.has_content() => Some(self.visit(pv1, VisitRules::for_trigger(""))),
            _ => None,
        };
        let mut orders: Vec<Order> = Vec::new();
        for seg in self.segments.clone() {
            match seg.name() {
                "OBR" => {
                    let order = self.order(seg);
                    orders.push(order);
                }
                "OBX" => {
                    let observation = self.observation(seg);
                    match orders.last_mut() {
                        Some(order) => order.observations.push(observation),
                        None => self.problem(
                            Location::segment("OBX", seg.sequence),
                            ErrorCode::SegmentSequence,
                            "OBX comes before any OBR",
                        ),
                    }
                }
                _ => {}
            }
        }
        if orders.is_empty() {
            self.problem(
                Location::segment("OBR", 1),
                ErrorCode::SegmentSequence,
                "ORU^R01 needs at least one OBR segment",
            );
        }
        Some(Event::Results { patient, visit, orders })
    }

    fn vxu(&mut self, patient: Patient) -> Option<Event> {
        let rxas = self.all("RXA");
        if rxas.is_empty() {
            self.problem(
                Location::segment("RXA", 1),
                ErrorCode::SegmentSequence,
                "VXU^V04 needs at least one RXA segment",
            );
        }
        let doses = rxas.into_iter().map(|rxa| self.dose(rxa)).collect();
        Some(Event::Immunizations { patient, doses })
    }

    /// CX repetitions of a field (PID-3, MRG-1), each with a value.
    fn identifiers(&mut self, seg: Seg<'a, 'm>, field: u32) -> Vec<Cx> {
        let mut list = Vec::new();
        for repetition in 1..=seg.repetitions(field) {
            if let Some(cx) = self.cx(seg, field, repetition) {
                list.push(cx);
            }
        }
        list
    }

    fn cx(&mut self, seg: Seg<'a, 'm>, field: u32, repetition: u32) -> Option<Cx> {
        let value = self.comp(seg, field, repetition, 1);
        let namespace = self.text(seg, field, repetition, 4, 1);
        let universal = self.text(seg, field, repetition, 4, 2);
        let type_code = self.comp(seg, field, repetition, 5);
        Some(Cx {
            value: value?,
            assigning_authority: namespace.or(universal).unwrap_or_default(),
            type_code: type_code.unwrap_or_default(),
        })
    }

    fn patient(&mut self, pid: Seg<'a, 'm>) -> Patient {
        let mut identifiers = Vec::new();
        let mut citizen_id = None;
        for repetition in 1..=pid.repetitions(3) {
            let Some(cx) = self.cx(pid, 3, repetition) else {
                continue;
            };
            if !cx.type_code.trim().eq_ignore_ascii_case("NNCHN") {
                identifiers.push(cx);
                continue;
            }
            match CitizenId::parse_as_of(&cx.value, self.today) {
                Ok(id) => {
                    citizen_id.get_or_insert(id);
                }
                Err(error) => self.problem(
                    pid.location(3).with_repetition(repetition).with_component(1),
                    ErrorCode::DataTypeError,
                    format!("PID-3 citizen ID (NNCHN): {error}"),
                ),
            }
        }
        if let Some(number) = self.field(pid, 19) {
            if looks_like_citizen_id(&number) {
                match CitizenId::parse_as_of(&number, self.today) {
                    Ok(id) => {
                        citizen_id.get_or_insert(id);
                    }
                    Err(error) => {
                        self.problem(pid.location(19), ErrorCode::DataTypeError, format!("PID-19 citizen ID: {error}"));
                    }
                }
            }
        }
        if identifiers.is_empty() && citizen_id.is_none() {
            self.problem(
                pid.location(3),
                ErrorCode::RequiredFieldMissing,
                "PID-3 needs at least one patient identifier (or a citizen ID, CX-5 NNCHN or PID-19)",
            );
        }

        let mut name = None;
        for repetition in 1..=pid.repetitions(5) {
            let family = self.text(pid, 5, repetition, 1, 1);
            let given = self.comp(pid, 5, repetition, 2);
            if let Some(full) = join_name(family, given) {
                name = Some(full);
                break;
            }
        }
        if name.is_none() {
            self.problem(pid.location(5), ErrorCode::RequiredFieldMissing, "PID-5 patient name is required");
        }

        let birth_date = self.birth_date(pid);
        let sex = self.field(pid, 8).and_then(|code| match Sex::from_hl7(&code) {
            Ok(sex) => Some(sex),
            Err(error) => {
                self.problem(pid.location(8), ErrorCode::TableValueNotFound, format!("PID-8 sex: {error}"));
                None
            }
        });
        if let Some(id) = &citizen_id {
            for discrepancy in check_against_id(id, birth_date, sex) {
                let field = match discrepancy {
                    Discrepancy::BirthDate { .. } => 7,
                    Discrepancy::Sex { .. } => 8,
                };
                self.problem(pid.location(field), ErrorCode::DataTypeError, format!("PID-{field}: {discrepancy}"));
            }
        }

        let ethnicity = self.ethnicity(pid);
        let marital_status = self.field(pid, 16).and_then(|code| marital_status(&code));
        let (address_region, address_line) = self.home_address(pid);
        let phone = self.phone(pid, 13);
        let deceased_at = self.time(pid, 29, "death date/time");
        let (primary_facility, primary_provider) = match self.first("PD1") {
            Some(pd1) => (self.primary_facility(pd1), self.primary_provider(pd1)),
            None => (None, None),
        };
        let allergies = self.all("AL1").into_iter().filter_map(|al1| self.allergy(al1)).collect();
        let next_of_kin = self.all("NK1").into_iter().filter_map(|nk1| self.next_of_kin(nk1)).collect();
        let insurance = self.all("IN1").into_iter().filter_map(|in1| self.insurance(in1)).collect();
        Patient {
            identifiers,
            citizen_id,
            name: name.unwrap_or_default(),
            birth_date,
            sex,
            ethnicity,
            marital_status,
            address_region,
            address_line,
            phone,
            deceased_at,
            primary_facility,
            primary_provider,
            allergies,
            next_of_kin,
            insurance,
        }
    }

    /// PD1-3 (XON): the first repetition with a name or an identifier (XON-10, else XON-3).
    fn primary_facility(&mut self, pd1: Seg<'a, 'm>) -> Option<String> {
        for repetition in 1..=pd1.repetitions(3) {
            let name = self.comp(pd1, 3, repetition, 1);
            let id = match self.comp(pd1, 3, repetition, 10) {
                Some(id) => Some(id),
                None => self.comp(pd1, 3, repetition, 3),
            };
            if let Some(rendered) = name_with_id(name, id) {
                return Some(rendered);
            }
        }
        None
    }

    /// PD1-4 (XCN): the first repetition with a name (XCN-2 family, XCN-3 given) or an
    /// identifier (XCN-1).
    fn primary_provider(&mut self, pd1: Seg<'a, 'm>) -> Option<String> {
        for repetition in 1..=pd1.repetitions(4) {
            let id = self.comp(pd1, 4, repetition, 1);
            let family = self.text(pd1, 4, repetition, 2, 1);
            let given = self.comp(pd1, 4, repetition, 3);
            if let Some(rendered) = name_with_id(join_name(family, given), id) {
                return Some(rendered);
            }
        }
        None
    }

    /// PID-7 as the calendar date written (no time zone shift); `None` when less precise
    /// than a day.
    fn birth_date(&mut self, pid: Seg<'a, 'm>) -> Option<NaiveDate> {
        let text = self.field(pid, 7)?;
        match dtm::parse(&text) {
            Ok(time) => {
                let date = time.date()?;
                if date > self.latest_date() {
                    self.problem(
                        pid.location(7),
                        ErrorCode::DataTypeError,
                        format!("PID-7 birth date {date} is in the future (today is {})", self.today),
                    );
                }
                Some(date)
            }
            Err(why) => {
                self.problem(pid.location(7), ErrorCode::DataTypeError, format!("PID-7 birth date: {why}"));
                None
            }
        }
    }

    /// PID-22 when a GB 3304 code; other values are ignored unless CE-3 names GB 3304.
    fn ethnicity(&mut self, pid: Seg<'a, 'm>) -> Option<Ethnicity> {
        let (code, _, system) = self.coded(pid, 22, 1);
        let code = code?;
        let declared = system.is_some_and(|system| {
            let compact: String =
                system.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
            compact.starts_with("GB3304")
        });
        let two_digits = code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit());
        match (two_digits.then(|| Ethnicity::parse(&code)), declared) {
            (Some(Ok(ethnicity)), _) => Some(ethnicity),
            (Some(Err(error)), true) => {
                self.problem(
                    pid.location(22).with_component(1),
                    ErrorCode::TableValueNotFound,
                    format!("PID-22: {error}"),
                );
                None
            }
            (None, true) => {
                self.problem(
                    pid.location(22).with_component(1),
                    ErrorCode::TableValueNotFound,
                    format!("PID-22: {code:?} is not a GB 3304 ethnic group code (two digits, 01-56)"),
                );
                None
            }
            _ => None,
        }
    }

    /// The home address (PID-11 repetition with XAD-7 `H`): region from XAD-9, line from
    /// XAD-1, XAD-2 and XAD-3.
    fn home_address(&mut self, pid: Seg<'a, 'm>) -> (Option<RegionCode>, Option<String>) {
        let mut home = None;
        for repetition in 1..=pid.repetitions(11) {
            if self.comp(pid, 11, repetition, 7).is_some_and(|kind| kind.eq_ignore_ascii_case("H")) {
                home = Some(repetition);
                break;
            }
        }
        let Some(repetition) = home else {
            return (None, None);
        };
        let region = self.comp(pid, 11, repetition, 9).and_then(|code| match RegionCode::parse(&code) {
            Ok(region) => Some(region),
            Err(error) => {
                self.problem(
                    pid.location(11).with_repetition(repetition).with_component(9),
                    ErrorCode::TableValueNotFound,
                    format!("PID-11 home address county code (XAD-9): {error}"),
                );
                None
            }
        });
        let parts: Vec<String> = (1..=3).filter_map(|component| self.comp(pid, 11, repetition, component)).collect();
        (region, join_text(&parts))
    }

    /// First repetition of an XTN field: XTN-1, else XTN-12 (unformatted), else area code
    /// (XTN-6) and local number (XTN-7).
    fn phone(&mut self, seg: Seg<'a, 'm>, field: u32) -> Option<String> {
        if let Some(number) = self.comp(seg, field, 1, 1) {
            return Some(number);
        }
        if let Some(number) = self.comp(seg, field, 1, 12) {
            return Some(number);
        }
        let area = self.comp(seg, field, 1, 6);
        let local = self.comp(seg, field, 1, 7)?;
        Some(format!("{}{local}", area.unwrap_or_default()))
    }

    /// A person's name from an XPN repetition at `family` (family, then given at +1).
    fn person_name(&mut self, seg: Seg<'a, 'm>, field: u32, family: u32) -> Option<String> {
        let family_name = self.text(seg, field, 1, family, 1);
        let given = self.comp(seg, field, 1, family + 1);
        join_name(family_name, given)
    }

    /// A PL location rendered `point/room/bed`.
    fn place(&mut self, seg: Seg<'a, 'm>, field: u32) -> Option<String> {
        let parts: Vec<String> = (1..=3).filter_map(|component| self.comp(seg, field, 1, component)).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    fn visit(&mut self, pv1: Seg<'a, 'm>, rules: VisitRules) -> Visit {
        let class = self.field(pv1, 2);
        if class.is_none() && rules.patient_class {
            self.problem(pv1.location(2), ErrorCode::RequiredFieldMissing, "PV1-2 patient class is required");
        }
        let patient_class =
            class.as_deref().and_then(EncounterType::from_hl7_patient_class).unwrap_or(EncounterType::Outpatient);
        let visit_number = self.field(pv1, 19);
        if visit_number.is_none() && rules.visit_number {
            self.problem(pv1.location(19), ErrorCode::RequiredFieldMissing, "PV1-19 visit number is required");
        }
        let location = self.place(pv1, 3);
        let prior_location = self.place(pv1, 6);
        let department = match self.field(pv1, 10) {
            Some(service) => Some(service),
            None => match self.comp(pv1, 10, 1, 2) {
                Some(text) => Some(text),
                None => self.field(pv1, 3),
            },
        };
        let attending = self.person_name(pv1, 7, 2);
        let admitted_at = self.time(pv1, 44, "admit date/time");
        let discharged_at = self.time(pv1, 45, "discharge date/time");
        let event_time = match self.first("EVN") {
            Some(evn) => {
                let occurred = self.time(evn, 6, "event occurred");
                let recorded = self.time(evn, 2, "recorded date/time");
                occurred.or(recorded)
            }
            None => None,
        };
        let diagnoses = self.all("DG1").into_iter().filter_map(|dg1| self.diagnosis(dg1)).collect();
        let admit_reason = match self.first("PV2") {
            Some(pv2) => {
                let (code, text, _) = self.coded(pv2, 3, 1);
                text.or(code)
            }
            None => None,
        };
        Visit {
            patient_class,
            visit_number,
            location,
            prior_location,
            department,
            attending,
            admitted_at,
            discharged_at,
            event_time,
            diagnoses,
            admit_reason,
        }
    }

    fn diagnosis(&mut self, dg1: Seg<'a, 'm>) -> Option<Diagnosis> {
        let (code, text, system) = self.coded(dg1, 3, 1);
        let description = self.field(dg1, 4);
        let diagnosed_at = self.time(dg1, 5, "diagnosis date/time");
        let diagnosis_type = self.field(dg1, 6);
        if code.is_none() && text.is_none() && description.is_none() {
            return None;
        }
        Some(Diagnosis {
            code: code.unwrap_or_default(),
            system: system.unwrap_or_default(),
            display: text.or(description),
            diagnosis_type,
            diagnosed_at,
        })
    }

    fn allergy(&mut self, al1: Seg<'a, 'm>) -> Option<Allergy> {
        let (code, display, system) = self.coded(al1, 3, 1);
        let (severity_code, severity_text, _) = self.coded(al1, 4, 1);
        let reaction = self.field(al1, 5);
        if code.is_none() && display.is_none() {
            return None;
        }
        Some(Allergy {
            code: code.unwrap_or_default(),
            system,
            display,
            severity: severity_code.or(severity_text),
            reaction,
        })
    }

    fn next_of_kin(&mut self, nk1: Seg<'a, 'm>) -> Option<NextOfKin> {
        let name = self.person_name(nk1, 2, 1);
        let (code, text, _) = self.coded(nk1, 3, 1);
        let phone = self.phone(nk1, 5);
        Some(NextOfKin { name: name?, relationship: code.or(text), phone })
    }

    fn insurance(&mut self, in1: Seg<'a, 'm>) -> Option<Insurance> {
        let plan = self.field(in1, 2);
        let company = match self.field(in1, 4) {
            Some(name) => Some(name),
            None => self.field(in1, 3),
        };
        let member_id = match self.field(in1, 36) {
            Some(policy) => Some(policy),
            None => self.field(in1, 49),
        };
        (plan.is_some() || company.is_some() || member_id.is_some()).then_some(Insurance { plan, company, member_id })
    }

    fn order(&mut self, obr: Seg<'a, 'm>) -> Order {
        let placer_number = self.field(obr, 2);
        let filler_number = self.field(obr, 3);
        let (code, display, system) = self.coded(obr, 4, 1);
        if code.is_none() && display.is_none() {
            self.problem(
                obr.location(4),
                ErrorCode::RequiredFieldMissing,
                "OBR-4 universal service identifier is required",
            );
        }
        Order {
            placer_number,
            filler_number,
            code: code.unwrap_or_default(),
            system: system.unwrap_or_default(),
            display,
            observed_at: self.time(obr, 7, "observation date/time"),
            reported_at: self.time(obr, 22, "results reported date/time"),
            status: self.field(obr, 25),
            observations: Vec::new(),
        }
    }

    fn observation(&mut self, obx: Seg<'a, 'm>) -> Observation {
        let value_type = self.field(obx, 2);
        if value_type.is_none() {
            self.problem(obx.location(2), ErrorCode::RequiredFieldMissing, "OBX-2 value type is required");
        }
        let (code, display, system) = self.coded(obx, 3, 1);
        if code.is_none() && display.is_none() {
            self.problem(obx.location(3), ErrorCode::RequiredFieldMissing, "OBX-3 observation identifier is required");
        }
        let value_type = value_type.unwrap_or_default();
        let value = self.observation_value(obx, &value_type);
        let (unit_code, unit_text, _) = self.coded(obx, 6, 1);
        Observation {
            set_id: self.field(obx, 1),
            value_type,
            code: code.unwrap_or_default(),
            system: system.unwrap_or_default(),
            display,
            sub_id: self.field(obx, 4),
            value,
            unit: unit_code.or(unit_text),
            reference_range: self.field(obx, 7),
            abnormal_flags: self.field(obx, 8),
            status: self.field(obx, 11),
            observed_at: self.time(obx, 14, "observation date/time"),
        }
    }

    /// OBX-5, first repetition, rendered by value type.
    fn observation_value(&mut self, obx: Seg<'a, 'm>, value_type: &str) -> Option<String> {
        match value_type.trim().to_ascii_uppercase().as_str() {
            "CE" | "CWE" | "CNE" | "CF" => {
                let (code, text, _) = self.coded(obx, 5, 1);
                text.or(code)
            }
            "SN" => {
                let parts: Vec<String> = (1..=4).filter_map(|component| self.comp(obx, 5, 1, component)).collect();
                (!parts.is_empty()).then(|| parts.concat())
            }
            _ => {
                let count = obx.components(5, 1);
                let parts: Vec<String> =
                    (1..=count).filter_map(|component| self.component_whole(obx, 5, 1, component)).collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
        }
    }

    fn dose(&mut self, rxa: Seg<'a, 'm>) -> Dose {
        let administered_at = self.time(rxa, 3, "administration date/time");
        if self.field(rxa, 3).is_none() {
            self.problem(
                rxa.location(3),
                ErrorCode::RequiredFieldMissing,
                "RXA-3 administration date/time is required",
            );
        }
        let (code, display, system) = self.coded(rxa, 5, 1);
        if code.is_none() && display.is_none() {
            self.problem(rxa.location(5), ErrorCode::RequiredFieldMissing, "RXA-5 administered code is required");
        }
        let quantity = self.field(rxa, 6);
        let (unit_code, unit_text, _) = self.coded(rxa, 7, 1);
        let amount = join_text(&[quantity, unit_code.or(unit_text)].into_iter().flatten().collect::<Vec<_>>());
        let (maker_code, maker_text, _) = self.coded(rxa, 17, 1);
        Dose {
            vaccine_code: code.unwrap_or_default(),
            vaccine_system: system.unwrap_or_default(),
            vaccine_display: display,
            administered_at,
            amount,
            lot_number: self.field(rxa, 15),
            manufacturer: maker_text.or(maker_code),
            completion_status: self.field(rxa, 20),
        }
    }
}

/// The patient of a message without PID (only used while collecting problems).
fn placeholder_patient() -> Patient {
    Patient {
        identifiers: Vec::new(),
        citizen_id: None,
        name: String::new(),
        birth_date: None,
        sex: None,
        ethnicity: None,
        marital_status: None,
        address_region: None,
        address_line: None,
        phone: None,
        deceased_at: None,
        primary_facility: None,
        primary_provider: None,
        allergies: Vec::new(),
        next_of_kin: Vec::new(),
        insurance: Vec::new(),
    }
}

/// Whether a PID-19 value is meant as a citizen ID (and so must be one): 18 characters,
/// or 15 to 19 digits/X (a mistyped one). Anything else (a foreign SSN) is ignored.
fn looks_like_citizen_id(value: &str) -> bool {
    let length = value.chars().count();
    length == 18 || ((15..=19).contains(&length) && value.chars().all(|c| c.is_ascii_digit() || c == 'X' || c == 'x'))
}

/// PID-16: a GB/T 2261.2 code, or a table 0002 letter mapped (S 10, M 20, D 30, W 40).
fn marital_status(code: &str) -> Option<MaritalStatus> {
    if let Ok(status) = MaritalStatus::parse(code) {
        return Some(status);
    }
    let mapped = match code.trim().to_ascii_uppercase().as_str() {
        "S" => "10",
        "M" => "20",
        "D" => "30",
        "W" => "40",
        _ => return None,
    };
    MaritalStatus::parse(mapped).ok()
}

/// Whether a character is a CJK ideograph (or the middle dot of transliterated names).
fn is_cjk_char(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{20000}'..='\u{2ebef}'
        | '\u{30000}'..='\u{3134f}'
        | '\u{3007}'
        | '·'
        | '•')
}

/// Whether text is non-empty and entirely CJK.
fn is_cjk(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_cjk_char)
}

/// Family and given name: `"张伟"` when both are CJK, `"EVERYMAN ADAM"` otherwise.
fn join_name(family: Option<String>, given: Option<String>) -> Option<String> {
    match (family, given) {
        (Some(family), Some(given)) if is_cjk(&family) && is_cjk(&given) => Some(format!("{family}{given}")),
        (Some(family), Some(given)) => Some(format!("{family} {given}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// `"name (id)"`, or whichever of the two is present.
fn name_with_id(name: Option<String>, id: Option<String>) -> Option<String> {
    match (name, id) {
        (Some(name), Some(id)) if name != id => Some(format!("{name} ({id})")),
        (Some(name), _) => Some(name),
        (None, id) => id,
    }
}

/// Joins parts with a space, except between two CJK characters (Chinese addresses run on).
fn join_text(parts: &[String]) -> Option<String> {
    let mut joined = String::new();
    for part in parts.iter().filter(|part| !part.is_empty()) {
        let cjk_boundary =
            joined.chars().last().is_some_and(is_cjk_char) && part.chars().next().is_some_and(is_cjk_char);
        if !joined.is_empty() && !cjk_boundary {
            joined.push(' ');
        }
        joined.push_str(part);
    }
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for accepted in
            ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.9", "2.10", "2.3.z", " 2.5 "]
        {
            assert!(version_supported(accepted), "{accepted}");
        }
        for refused in ["", "2.1", "2.2", "2", "2.", "3.0", "2.x", "v2.5", "2.5a", "25"] {
            assert!(!version_supported(refused), "{refused}");
        }
    }

    #[test]
    fn segment_lines() {
        assert_eq!(segment_line("PID|1", '|').as_deref(), Some("PID|1"));
        assert_eq!(segment_line("PV1", '|').as_deref(), Some("PV1|"));
        assert_eq!(segment_line("ZP1|x", '|').as_deref(), Some("ZP1|x"));
        for bad in ["PI|1", "pid|1", "1AB|x", "PIDX|1", "MSH|^~\\&", "张三|1", "PID^1", "0|0"] {
            assert_eq!(segment_line(bad, '|'), None, "{bad}");
        }
    }

    #[test]
    fn names_and_text() {
        let s = |text: &str| Some(text.to_owned());
        assert_eq!(join_name(s("张"), s("伟")).as_deref(), Some("张伟"));
        assert_eq!(join_name(s("EVERYMAN"), s("ADAM")).as_deref(), Some("EVERYMAN ADAM"));
        assert_eq!(join_name(s("欧阳"), s("Na")).as_deref(), Some("欧阳 Na"));
        assert_eq!(join_name(s("买买提"), None).as_deref(), Some("买买提"));
        assert_eq!(join_name(None, None), None);
        let parts = ["文三路90号".to_owned(), "3幢201室".to_owned(), "杭州市".to_owned()];
        assert_eq!(join_text(&parts).as_deref(), Some("文三路90号 3幢201室杭州市"));
        assert_eq!(
            join_text(&["1 Main St".to_owned(), "Springfield".to_owned()]).as_deref(),
            Some("1 Main St Springfield")
        );
    }

    #[test]
    fn marital_codes() {
        let code = |text: &str| marital_status(text).map(|status| status.code());
        assert_eq!(code("21"), Some("21"));
        assert_eq!(code("S"), Some("10"));
        assert_eq!(code("m"), Some("20"));
        assert_eq!(code("D"), Some("30"));
        assert_eq!(code("W"), Some("40"));
        assert_eq!(code("A"), None);
        assert_eq!(code("U"), None);
    }

    #[test]
    fn citizen_id_shapes() {
        assert!(looks_like_citizen_id("33010619900307123X"));
        assert!(looks_like_citizen_id("330106199003071234"));
        assert!(looks_like_citizen_id("330106900307123"));
        assert!(!looks_like_citizen_id("123-45-6789"));
        assert!(!looks_like_citizen_id("123121234"));
    }
}
