//! ACKs built for real outcomes, read back with `hl7-parser` (and with our own `receive`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hl7_parser::Message;
use rhip_hl7::escape::decode;
use rhip_hl7::mllp::{frame, Deframer, FrameEvent};
use rhip_hl7::{
    ack, ack_for, encode, receive, AckCode, AckSender, Charset, Delimiters, ErrorCode, Location, Problem, Received,
    Rejection,
};

fn sender() -> AckSender {
    AckSender { application: "RHIP".into(), facility: "330106".into() }
}

fn now() -> chrono::NaiveDateTime {
    at(2025, 11, 20, 0, 31, 5)
}

/// The raw value of a field (MSH fields numbered as in the standard).
fn field<'m>(message: &'m Message<'m>, segment: &str, n: usize) -> &'m str {
    message.segment(segment).and_then(|s| s.field(n)).map(|f| f.raw_value()).unwrap_or_default()
}

fn errs<'m>(message: &'m Message<'m>) -> Vec<&'m hl7_parser::message::Segment<'m>> {
    message.segments().filter(|s| s.name == "ERR").collect()
}

fn err_field<'m>(err: &'m hl7_parser::message::Segment<'m>, n: usize) -> &'m str {
    err.field(n).map(|f| f.raw_value()).unwrap_or_default()
}

#[test]
fn aa_round_trip() {
    let received = receive(&admit().bytes(), today());
    assert_eq!(received.ack_code(), AckCode::Accept);
    let text = ack_for(&received, &sender(), "RHIP-ACK-1", now());
    assert!(text.ends_with('\r'));
    let message = Message::parse(&text).expect("our ACK parses");
    assert_eq!(field(&message, "MSH", 3), "RHIP");
    assert_eq!(field(&message, "MSH", 4), "330106");
    assert_eq!(field(&message, "MSH", 5), "HIS");
    assert_eq!(field(&message, "MSH", 6), "330106001");
    assert_eq!(field(&message, "MSH", 7), "20251120003105+0000");
    assert_eq!(field(&message, "MSH", 9), "ACK^A01^ACK");
    assert_eq!(field(&message, "MSH", 10), "RHIP-ACK-1");
    assert_eq!(field(&message, "MSH", 11), "P");
    assert_eq!(field(&message, "MSH", 12), "2.5");
    assert_eq!(field(&message, "MSH", 18), "", "UTF-8 is not echoed");
    assert_eq!(field(&message, "MSA", 1), "AA");
    assert_eq!(field(&message, "MSA", 2), "MSG00001");
    assert_eq!(field(&message, "MSA", 3), "Message accepted");
    assert!(errs(&message).is_empty());
}

#[test]
fn ae_lists_every_problem() {
    let received = receive(&admit().set("PID", 5, "").set("PV1", 19, "").set("PID", 8, "X").bytes(), today());
    let Received::Invalid { problems, .. } = &received else { panic!("invalid: {received:?}") };
    let text = ack_for(&received, &sender(), "A2", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSA", 1), "AE");
    assert_eq!(field(&message, "MSA", 2), "MSG00001");
    assert!(field(&message, "MSA", 3).starts_with("3 errors, first: "), "{text}");
    let errs = errs(&message);
    assert_eq!(errs.len(), problems.len());
    let rows: Vec<(&str, &str, &str)> =
        errs.iter().map(|e| (err_field(e, 2), err_field(e, 3), err_field(e, 4))).collect();
    assert_eq!(
        rows,
        [
            ("PID^1^5", "101^Required field missing^HL70357", "E"),
            ("PID^1^8", "103^Table value not found^HL70357", "E"),
            ("PV1^1^19", "101^Required field missing^HL70357", "E"),
        ]
    );
    for (err, problem) in errs.iter().zip(problems) {
        assert_eq!(err_field(err, 1), "", "no ERR-1 for v2.5");
        let decoded = decode(err_field(err, 8), &Delimiters::STANDARD, None, Charset::Utf8).expect("escapes");
        assert_eq!(decoded, problem.message);
    }
}

#[test]
fn legacy_senders_get_err_1() {
    let received = receive(&admit().set("MSH", 12, "2.3").set("PID", 5, "").bytes(), today());
    let text = ack_for(&received, &sender(), "A3", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSH", 12), "2.3");
    let errs = errs(&message);
    assert_eq!(err_field(errs[0], 1), "PID^1^5^101&Required field missing&HL70357");
    assert_eq!(err_field(errs[0], 2), "PID^1^5");
}

#[test]
fn err_2_carries_the_full_location() {
    let bad = with_bad_checksum(&zhang_wei_id());
    let received =
        receive(&admit().set("PID", 3, &format!("MRN0001^^^330106001^MR~{bad}^^^CHN^NNCHN")).bytes(), today());
    let text = ack_for(&received, &sender(), "A4", now());
    let message = Message::parse(&text).expect("parses");
    let errs = errs(&message);
    assert_eq!(err_field(errs[0], 2), "PID^1^3^2^1");
    assert_eq!(err_field(errs[0], 3), "102^Data type error^HL70357");
}

#[test]
fn ar_without_header() {
    let received = receive(b"garbage", today());
    assert_eq!(received.ack_code(), AckCode::Reject);
    let text = ack_for(&received, &sender(), "A5", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSH", 5), "");
    assert_eq!(field(&message, "MSH", 9), "ACK");
    assert_eq!(field(&message, "MSH", 12), "2.5");
    assert_eq!(field(&message, "MSA", 1), "AR");
    assert_eq!(field(&message, "MSA", 2), "");
    let errs = errs(&message);
    assert_eq!(errs.len(), 1);
    assert_eq!(err_field(errs[0], 2), "MSH^1");
    assert_eq!(err_field(errs[0], 3), "100^Segment sequence error^HL70357");
}

#[test]
fn ar_for_old_version_echoes_the_control_id() {
    let received = receive(&admit().set("MSH", 12, "2.2").bytes(), today());
    let text = ack_for(&received, &sender(), "A6", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSA", 1), "AR");
    assert_eq!(field(&message, "MSA", 2), "MSG00001");
    assert_eq!(field(&message, "MSH", 12), "2.2");
    let errs = errs(&message);
    assert_eq!(err_field(errs[0], 2), "MSH^1^12");
    assert_eq!(err_field(errs[0], 3), "203^Unsupported version id^HL70357");
    assert_eq!(err_field(errs[0], 1), "", "2.2 is not 2.3/2.4");
}

#[test]
fn ar_for_unsupported_type_names_the_trigger_component() {
    let received = receive(&admit().typed("ADT^A24^ADT_A24").bytes(), today());
    let text = ack_for(&received, &sender(), "A7", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSH", 9), "ACK^A24^ACK");
    assert_eq!(err_field(errs(&message)[0], 2), "MSH^1^9^^2");
    assert_eq!(err_field(errs(&message)[0], 3), "201^Unsupported event code^HL70357");
}

#[test]
fn custom_delimiters_are_answered_in_kind() {
    let custom = admit().text().replace('|', "\u{1}").replace('^', "|").replace('~', "^").replace('\u{1}', "~");
    // field '~', component '|', repetition '^'
    assert!(custom.starts_with("MSH~|^\\&~"));
    let received = receive(custom.as_bytes(), today());
    assert_eq!(received.ack_code(), AckCode::Accept, "{received:?}");
    let problem = Problem::new(Location::field("PID", 1, 5), ErrorCode::RequiredFieldMissing, "a~b|c^d&e\\f");
    let text = ack(received.header(), AckCode::Error, std::slice::from_ref(&problem), &sender(), "A8", now());
    assert!(text.starts_with("MSH~|^\\&~RHIP~330106~HIS~330106001~"), "{text}");
    let message = Message::parse(&text).expect("parses with its own delimiters");
    assert_eq!(message.separators.field, '~');
    assert_eq!(field(&message, "MSA", 2), "MSG00001");
    let err = errs(&message)[0];
    assert_eq!(err_field(err, 2), "PID|1|5");
    let delimiters = received.header().expect("header").delimiters();
    assert_eq!(decode(err_field(err, 8), &delimiters, None, Charset::Utf8).expect("escapes"), problem.message);
}

#[test]
fn delimiters_in_texts_are_escaped() {
    let problem = Problem::new(Location::segment("OBX", 2), ErrorCode::DataTypeError, "value \"1|2^3~4&5\\6\" is odd");
    let text = ack(None, AckCode::Error, std::slice::from_ref(&problem), &sender(), "A|9", now());
    let message = Message::parse(&text).expect("parses");
    assert_eq!(field(&message, "MSH", 10), "A\\F\\9");
    assert!(field(&message, "MSA", 3).contains("\\F\\"));
    let err = errs(&message)[0];
    assert_eq!(err.fields.len(), 8, "ERR-8 is the last field: {text}");
    let decoded = decode(err_field(err, 8), &Delimiters::STANDARD, None, Charset::Utf8).expect("escapes");
    assert_eq!(decoded, problem.message);
}

#[test]
fn gb18030_senders_get_gb18030() {
    let message = admit().set("MSH", 18, "GB18030").text();
    let (bytes, _, _) = encoding_rs::GB18030.encode(&message);
    let received = receive(&bytes, today());
    let header = received.header().expect("header").clone();
    assert_eq!(header.charset, Charset::Gb18030);
    let problem = Problem::new(Location::field("PID", 1, 5), ErrorCode::RequiredFieldMissing, "患者姓名必填");
    let text = ack(Some(&header), AckCode::Error, &[problem], &sender(), "A10", now());
    let parsed = Message::parse(&text).expect("parses");
    assert_eq!(field(&parsed, "MSH", 18), "GB18030");
    let wire = encode(&text, header.charset);
    assert_ne!(wire, text.as_bytes());
    let (back, _, had_errors) = encoding_rs::GB18030.decode(&wire);
    assert!(!had_errors);
    assert_eq!(back, text);

    // Through MLLP and back into `receive`: our ACK is itself a readable message (which we
    // refuse, as we take no ACKs), in the right charset.
    let mut deframer = Deframer::new(1 << 20);
    let events = deframer.push(&frame(&wire));
    let [FrameEvent::Message(payload)] = events.as_slice() else { panic!("one frame: {events:?}") };
    let Received::Rejected { header: Some(echo), reason } = receive(payload, today()) else { panic!("rejected") };
    assert_eq!(reason, Rejection::UnsupportedMessageType("ACK^A01".into()));
    assert_eq!((echo.control_id.as_str(), echo.charset), ("A10", Charset::Gb18030));
    assert_eq!(echo.sending_application, "RHIP");
}

#[test]
fn latin1_senders_get_8859_1() {
    let received = receive(&admit().set("MSH", 18, "8859/1").text().replace(['张', '伟'], "X").into_bytes(), today());
    let header = received.header().expect("header");
    assert_eq!(header.charset, Charset::Latin1);
    let text = ack(Some(header), AckCode::Accept, &[], &sender(), "A11", now());
    let parsed = Message::parse(&text).expect("parses");
    assert_eq!(field(&parsed, "MSH", 18), "8859/1");
}

#[test]
fn rejection_as_problem() {
    let reason = Rejection::UnsupportedCharset("ISO IR87".into());
    let text = ack(None, AckCode::Reject, &[reason.problem()], &sender(), "A12", now());
    let parsed = Message::parse(&text).expect("parses");
    assert_eq!(err_field(errs(&parsed)[0], 2), "MSH^1^18");
    assert!(field(&parsed, "MSA", 3).starts_with("Rejected: unsupported character set"));
}
