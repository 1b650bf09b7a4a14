//! `receive` on the third-party corpus (`shared/corpus/hl7v2`, see its MANIFEST.md): every
//! file is split into messages, each is read, and its outcome must be the class this table
//! expects. Skipped (with a message) when the corpus is absent, as on a user's machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{split, today, CORPUS};
use rhip_hl7::{ack_for, receive, AckSender, Received, Rejection};

/// Outcome classes.
const OK: &str = "accepted";
const AE: &str = "invalid";
const UNREADABLE: &str = "unreadable";
const VERSION: &str = "version";
const TYPE: &str = "type";
const CHARSET: &str = "charset";

/// The expected class of every message of every file, in file order, with why.
const EXPECTED: &[(&str, &[&str], &str)] = &[
    // CDC ELR feeds: real US public-health messages. Most have the patient name redacted
    // (PID-5 `~^^^^^^S`), which we require; US county codes in XAD-9 are not GB/T 2260.
    ("cdc/batch_fhs_bhs_5msgs_v251.hl7", &[AE, AE, AE, AE, AE], "FHS/BHS skipped; PID-5 redacted"),
    ("cdc/batch_fhs_bhs_empty_v251.hl7", &[UNREADABLE], "envelope only: no MSH"),
    ("cdc/batch_fhs_bhs_mixed_cr_crlf_v231.hl7", &[AE, AE], "mixed CR/CRLF read; PID-5 redacted"),
    ("cdc/elr_cepheid_v251_invalid_nonascii.hl7", &[AE], "\\T\\ and UTF-8 read; PID-5 redacted"),
    ("cdc/elr_covid19_abbott_v251.hl7", &[OK], "clean ORU^R01 with offsets"),
    ("cdc/elr_enhanced_covid19_v251_truncation_char.hl7", &[AE], "5-character MSH-2 read; PID-5 redacted"),
    ("cdc/elr_phlip_v231_utah.hl7", &[AE], "PID-5 redacted"),
    ("cdc/elr_scion_v251_BAD_pid16_component.hl7", &[AE], "home XAD-9 45039 is a US county (103)"),
    ("cdc/elr_scion_v251_good.hl7", &[AE], "home XAD-9 45039 is a US county (103)"),
    ("cdc/elr_v23_zlr_texas.hl7", &[AE], "PID-5 redacted (OBR-4 uses the alternate triplet, accepted)"),
    ("cdc/elr_v23z_zlr_segment.hl7", &[OK], "version 2.3.z read as 2.3; ZLR kept"),
    ("cdc/elr_v251_dc_bad.hl7", &[AE], "no PID-3, no PID-5, OBR-4 empty"),
    ("cdc/elr_v251_missing_msh9.hl7", &[TYPE], "MSH-9 empty: AR 101 at MSH-9"),
    ("cdc/elr_v251_mixed_cr_crlf.hl7", &[AE], "OBX-14 holds two timestamps run together (102)"),
    ("cdc/lyme_v251_bad_delimiters.hl7", &[UNREADABLE], "MSH-2 &&&&"),
    // hl7-parser's own samples (v2.3/2.4, LF separators).
    ("hamaluik-hl7-parser/sample_adt_a01.hl7", &[OK], "A01 v2.3, LF"),
    ("hamaluik-hl7-parser/sample_adt_a01_encoded.hl7", &[AE], "MSH and EVN only: no PID (100)"),
    ("hamaluik-hl7-parser/sample_adt_a02.hl7", &[OK], "A02"),
    ("hamaluik-hl7-parser/sample_adt_a03.hl7", &[OK], "A03"),
    ("hamaluik-hl7-parser/sample_adt_a04.hl7", &[AE], "PID-8 \"M-\" is not in table 0001 (103)"),
    ("hamaluik-hl7-parser/sample_adt_a08.hl7", &[OK], "A08 without PV1"),
    ("hamaluik-hl7-parser/sample_oru_r01_generic.hl7", &[OK], "ORU v2.3"),
    ("hamaluik-hl7-parser/sample_oru_r01_lab.hl7", &[OK], "escapes and Z segments"),
    // HAPI test messages.
    ("hapi/adt_a01_v24_docs_example.hl7", &[AE], "PV1-2 empty in an A01 (101)"),
    ("hapi/adt_a03_v25_italian.hl7", &[OK], "PID-3 with an empty repetition, LF"),
    ("hapi/adt_a24_nonstandard_delimiters.hl7", &[TYPE], "MSH^~|\\& read; A24 unsupported (201)"),
    (
        "hapi/legacy_messages_with_comments.txt",
        &[
            VERSION, TYPE, VERSION, UNREADABLE, TYPE, TYPE, TYPE, VERSION, TYPE, TYPE, TYPE, TYPE, TYPE, VERSION,
            VERSION, VERSION, VERSION, VERSION,
        ],
        "2.1/2.2 refused, BAR^P01 (labelled 2.4) unsupported, 3-character MSH-2 ^~} unreadable",
    ),
    ("hapi/olis_erp_z99_v231_zsegment.hl7", &[TYPE], "ERP^Z99 (8859/1 accepted first)"),
    ("hapi/omd_o03_rep_v25.hl7", &[TYPE], "OMD^O03"),
    (
        "hapi/oml_o21_13msgs_v251.hl7",
        &[TYPE, TYPE, TYPE, TYPE, TYPE, TYPE, TYPE, TYPE, TYPE, AE, TYPE, TYPE, TYPE],
        "OML/OUL/ORL unsupported; the one ORU^R01 has a blank PID-3 (101)",
    ),
    // nHapi: messages and AFL fuzz cases.
    ("nhapi/adt_a28_v25_minimal.hl7", &[AE], "PID has only PID-2: no PID-3, no PID-5"),
    ("nhapi/fuzz/legacy_enc_not_supported_aoor1.bin", &[UNREADABLE], "empty file"),
    ("nhapi/fuzz/legacy_enc_not_supported_nullref1.bin", &[UNREADABLE], "MSHH0: letter as field separator"),
    ("nhapi/fuzz/legacy_hl7exception_hang1.bin", &[UNREADABLE], "1-character MSH-2"),
    ("nhapi/fuzz/legacy_hl7exception_stackoverflow1.bin", &[UNREADABLE], "1-character MSH-2"),
    ("nhapi/fuzz/legacy_noexception_regex1.bin", &[UNREADABLE], "control character in MSH-2"),
    ("nhapi/fuzz/pipe_enc_not_supported_id_000014.bin", &[UNREADABLE], "NUL bytes before MSH"),
    ("nhapi/fuzz/pipe_hl7exception_id_000087.bin", &[UNREADABLE], "0xFD in MSH-2 is not UTF-8"),
    ("nhapi/fuzz/pipe_hl7exception_id_000123.bin", &[UNREADABLE], "space as repetition separator"),
    ("nhapi/fuzz/pipe_hl7exception_so5.bin", &[UNREADABLE], "digits as encoding characters"),
    ("nhapi/fuzz/pipe_noexception_id_000109.bin", &[TYPE], "ADT^A07 unsupported (its garbage lines come later)"),
    ("nhapi/oml_o21_7msgs_v251.hl7", &[TYPE, TYPE, TYPE, TYPE, TYPE, TYPE, TYPE], "OML^O21"),
    // python-hl7 samples: MSH-18 "ASCII" is read as UTF-8; the batch envelopes are dropped by the splitter.
    ("python-hl7/MALFORMED_batch_nested_bhs.hl7", &[OK], "MSH-18 ASCII"),
    ("python-hl7/MALFORMED_batch_without_msh.hl7", &[UNREADABLE], "segments without MSH"),
    ("python-hl7/MALFORMED_file_nested_fhs.hl7", &[OK], "MSH-18 ASCII"),
    ("python-hl7/adt_a01_v23_cerner_hnam.hl7", &[OK], "explicit nulls, leading spaces, IN1/IN2 pairs"),
    ("python-hl7/batch_fhs_2batches_3msgs_v25.hl7", &[OK, OK, OK], "MSH-18 ASCII"),
    ("python-hl7/batch_fhs_bhs_1msg_v25.hl7", &[OK], "MSH-18 ASCII"),
    ("python-hl7/oru_r01_v24_ghh_lab_normative.hl7", &[AE], "PID-7 196203520 has 9 digits (102)"),
    ("python-hl7/pid_repetitions_subcomponents.hl7", &[AE], "structure sample: no name, no OBR"),
    ("python-hl7/two_msgs_no_batch_header_v25.hl7", &[OK, OK], "MSH-18 ASCII"),
];

fn class(received: &Received) -> &'static str {
    match received {
        Received::Accepted { .. } => OK,
        Received::Invalid { .. } => AE,
        Received::Rejected { reason, .. } => match reason {
            Rejection::Unreadable(_) => UNREADABLE,
            Rejection::UnsupportedVersion(_) => VERSION,
            Rejection::UnsupportedMessageType(_) => TYPE,
            Rejection::UnsupportedCharset(_) => CHARSET,
        },
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable corpus folder") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A one-line summary of an outcome, for the failure report.
fn summary(received: &Received) -> String {
    match received {
        Received::Accepted { event, .. } => format!("accepted {}", event.name()),
        Received::Invalid { problems, .. } => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!("invalid: {}", list.join("; "))
        }
        Received::Rejected { reason, header } => {
            format!("rejected ({} header): {reason}", if header.is_some() { "with" } else { "no" })
        }
    }
}

#[test]
fn corpus_messages_get_the_expected_outcome() {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        println!("skipped: corpus absent ({CORPUS})");
        return;
    }
    let sender = AckSender { application: "RHIP".into(), facility: "330106".into() };
    let now = common::at(2025, 12, 1, 0, 0, 0);
    let mut report = Vec::new();
    let mut mismatches = Vec::new();
    let mut seen = Vec::new();
    let mut total = 0;
    for path in files(dir) {
        let name = path.strip_prefix(dir).expect("inside corpus").to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(&path).expect("readable corpus file");
        let outcomes: Vec<Received> = split(&bytes).iter().map(|message| receive(message, today())).collect();
        total += outcomes.len();
        for outcome in &outcomes {
            // Every outcome can be answered, and the answer is readable HL7.
            let answer = ack_for(outcome, &sender, "CORPUS", now);
            assert!(hl7_parser::Message::parse(&answer).is_ok(), "{name}: ACK does not parse: {answer:?}");
        }
        let classes: Vec<&str> = outcomes.iter().map(class).collect();
        let lines: Vec<String> = outcomes.iter().map(summary).collect();
        report.push(format!("{name}:\n    {}", lines.join("\n    ")));
        match EXPECTED.iter().find(|(file, _, _)| *file == name) {
            Some((_, expected, _)) if *expected == classes.as_slice() => {}
            Some((_, expected, why)) => mismatches
                .push(format!("{name}: expected {expected:?} ({why}), got {classes:?}\n    {}", lines.join("\n    "))),
            None => mismatches.push(format!("{name}: not in the table; got {classes:?}\n    {}", lines.join("\n    "))),
        }
        seen.push(name);
    }
    if std::env::var_os("RHIP_HL7_CORPUS_REPORT").is_some() {
        println!("{}", report.join("\n"));
    }
    for (file, _, _) in EXPECTED {
        if !seen.iter().any(|name| name == file) {
            mismatches.push(format!("{file}: in the table but not in the corpus"));
        }
    }
    println!("corpus: {} files, {total} messages", seen.len());
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn splitting() {
    let file = b"FHS|^~\\&|X\r/* comment */\r\nMSH|1\rPID|1\nBTS|1\rMSH|2\r\nEVN|x\r\nFTS|1";
    let messages = split(file);
    assert_eq!(messages, [b"MSH|1\rPID|1\n".to_vec(), b"MSH|2\r\nEVN|x\r\n".to_vec()]);
    assert_eq!(split(b""), [Vec::<u8>::new()]);
    assert_eq!(split(b"BHS|x\rPID|1\r"), [b"PID|1\r".to_vec()]);
}

/// The messages of one corpus file, or `None` (with a note) when the corpus is absent.
fn corpus_file(name: &str) -> Option<Vec<Received>> {
    let path = Path::new(CORPUS).join(name);
    if !path.is_file() {
        println!("skipped: corpus absent ({})", path.display());
        return None;
    }
    let bytes = std::fs::read(&path).expect("readable corpus file");
    Some(split(&bytes).iter().map(|message| receive(message, today())).collect())
}

#[test]
fn corpus_details() {
    let Some(a24) = corpus_file("hapi/adt_a24_nonstandard_delimiters.hl7") else { return };
    let header = a24[0].header().expect("custom delimiters read");
    assert_eq!((header.field_separator, header.encoding_characters.as_str()), ('^', "~|\\&"));
    assert_eq!((header.sending_application.as_str(), header.control_id.as_str()), ("SENDING", "2003582144"));
    assert_eq!(header.message_time, Some(common::at(2012, 9, 18, 22, 39, 31)), "-0500 converted to UTC");

    let Some(encoded) = corpus_file("hamaluik-hl7-parser/sample_adt_a01_encoded.hl7") else { return };
    assert_eq!(encoded[0].header().map(|h| h.receiving_application.as_str()), Some("Isaac^2"), "\\S\\ decoded");

    let Some(lab) = corpus_file("hamaluik-hl7-parser/sample_oru_r01_lab.hl7") else { return };
    let Received::Accepted { event, z_segments, .. } = &lab[0] else { panic!("{:?}", lab[0]) };
    assert_eq!(event.patient().name, "Patlast Patfirst");
    assert!(z_segments.iter().any(|z| z.starts_with("ZDR")), "{z_segments:?}");
    let rhip_hl7::Event::Results { orders, .. } = event else { panic!("results") };
    assert!(!orders.is_empty() && orders.iter().all(|order| !order.observations.is_empty()));

    let Some(italian) = corpus_file("hapi/adt_a03_v25_italian.hl7") else { return };
    let Received::Accepted { event, .. } = &italian[0] else { panic!("{:?}", italian[0]) };
    let ids: Vec<&str> = event.patient().identifiers.iter().map(|cx| cx.type_code.as_str()).collect();
    assert_eq!(ids, ["PK", "CF", "SSN"], "the empty repetition is skipped");
    assert_eq!(event.visit().and_then(|v| v.event_time), Some(common::at(2008, 3, 3, 7, 8, 0)), "EVN-6");

    let Some(cerner) = corpus_file("python-hl7/adt_a01_v23_cerner_hnam.hl7") else { return };
    let Received::Accepted { event, .. } = &cerner[0] else { panic!("{:?}", cerner[0]) };
    let visit = event.visit().expect("visit");
    assert_eq!(visit.visit_number.as_deref(), Some("01"));
    assert_eq!(visit.department.as_deref(), Some("NUR"));
    assert_eq!(visit.attending.as_deref(), Some("FARP YONAN"));
    assert_eq!(visit.location.as_deref(), Some("MBN1/MBN1/06"));
    assert!(!event.patient().insurance.is_empty());

    let Some(missing_type) = corpus_file("cdc/elr_v251_missing_msh9.hl7") else { return };
    let Received::Rejected { reason, header } = &missing_type[0] else { panic!("{:?}", missing_type[0]) };
    assert_eq!((reason.code().code(), reason.location().to_string().as_str()), ("101", "MSH[1].9"));
    assert_eq!(header.as_ref().map(|h| h.encoding_characters.as_str()), Some("^~\\&#"));

    let Some(texas) = corpus_file("cdc/elr_v23_zlr_texas.hl7") else { return };
    let Received::Invalid { problems, .. } = &texas[0] else { panic!("{:?}", texas[0]) };
    assert_eq!(problems.len(), 1, "only the redacted name: {problems:?}");
}
