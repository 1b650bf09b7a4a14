//! `receive` on synthetic messages, table-driven: every event type, every validation rule
//! failing, charsets, separators, escapes, delimiters, versions and message types.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use rhip_core::{EncounterType, Sex};
use rhip_hl7::{receive, Event, Header, Received, Rejection};

/// What a case must produce.
enum Expect {
    /// Accepted as this event (by name), then the function checks the details.
    Accepted(&'static str, fn(&Event, &Header, &[String])),
    /// Invalid with exactly these problems: (location, code), in any order.
    Invalid(&'static [(&'static str, &'static str)]),
    /// Rejected: (variant, code, location, whether the header was read).
    Rejected(&'static str, &'static str, &'static str, bool),
}

fn variant(reason: &Rejection) -> &'static str {
    match reason {
        Rejection::Unreadable(_) => "Unreadable",
        Rejection::UnsupportedVersion(_) => "UnsupportedVersion",
        Rejection::UnsupportedMessageType(_) => "UnsupportedMessageType",
        Rejection::UnsupportedCharset(_) => "UnsupportedCharset",
    }
}

fn check(name: &str, input: &[u8], expected: &Expect) {
    let received = receive(input, today());
    match (&received, expected) {
        (Received::Accepted { header, event, z_segments }, Expect::Accepted(event_name, details)) => {
            assert_eq!(event.name(), *event_name, "{name}");
            details(event, header, z_segments);
        }
        (Received::Invalid { problems, .. }, Expect::Invalid(wanted)) => {
            let mut found: Vec<(String, String)> =
                problems.iter().map(|p| (p.location.to_string(), p.code.code().to_owned())).collect();
            let mut wanted: Vec<(String, String)> =
                wanted.iter().map(|(location, code)| ((*location).to_owned(), (*code).to_owned())).collect();
            found.sort();
            wanted.sort();
            assert_eq!(found, wanted, "{name}: problems were {problems:#?}");
        }
        (Received::Rejected { header, reason }, Expect::Rejected(kind, code, location, has_header)) => {
            assert_eq!(variant(reason), *kind, "{name}: {reason}");
            assert_eq!(reason.code().code(), *code, "{name}: {reason}");
            assert_eq!(reason.location().to_string(), *location, "{name}: {reason}");
            assert_eq!(header.is_some(), *has_header, "{name}: header {header:?}");
        }
        (other, _) => panic!("{name}: unexpected outcome {other:#?}"),
    }
}

fn patient_of(event: &Event) -> &rhip_hl7::Patient {
    event.patient()
}

fn visit_of(event: &Event) -> &rhip_hl7::Visit {
    event.visit().expect("event has a visit")
}

fn check_admit(event: &Event, header: &Header, z: &[String]) {
    assert_eq!(header.sending_facility, "330106001");
    assert_eq!(header.control_id, "MSG00001");
    assert_eq!(header.version, "2.5");
    assert_eq!((header.message_type.as_str(), header.trigger_event.as_str()), ("ADT", "A01"));
    assert_eq!(header.message_time, Some(at(2025, 11, 20, 0, 30, 0)));
    assert!(z.is_empty());
    let patient = patient_of(event);
    assert_eq!(patient.name, "张伟");
    assert_eq!(patient.citizen_id.as_ref(), Some(&zhang_wei_id()));
    assert_eq!(patient.identifiers.len(), 1);
    assert_eq!(patient.identifiers[0].value, "MRN0001");
    assert_eq!(patient.identifiers[0].assigning_authority, "330106001");
    assert_eq!(patient.identifiers[0].type_code, "MR");
    assert_eq!(patient.birth_date, Some(date(1990, 3, 7)));
    assert_eq!(patient.sex, Some(Sex::Male));
    assert_eq!(patient.ethnicity.map(|e| e.code()), Some("01"));
    assert_eq!(patient.marital_status.map(|m| m.code()), Some("20"));
    assert_eq!(patient.address_region, Some(region("330106")));
    assert_eq!(patient.address_line.as_deref(), Some("文三路90号 3幢201室杭州市"));
    assert_eq!(patient.phone.as_deref(), Some("13800000000"));
    assert_eq!(patient.deceased_at, None);
    let visit = visit_of(event);
    assert_eq!(visit.patient_class, EncounterType::Inpatient);
    assert_eq!(visit.visit_number.as_deref(), Some("V20251120001"));
    assert_eq!(visit.location.as_deref(), Some("5病区/501/02"));
    assert_eq!(visit.department.as_deref(), Some("心内科"));
    assert_eq!(visit.attending.as_deref(), Some("李明"));
    assert_eq!(visit.admitted_at, Some(at(2025, 11, 20, 0, 0, 0)));
    assert_eq!(visit.event_time, Some(at(2025, 11, 20, 0, 25, 0)));
    assert_eq!(visit.admit_reason.as_deref(), Some("不稳定型心绞痛"));
    assert_eq!(visit.diagnoses.len(), 2);
    assert_eq!(
        (
            visit.diagnoses[0].code.as_str(),
            visit.diagnoses[0].system.as_str(),
            visit.diagnoses[0].diagnosis_type.as_deref()
        ),
        ("I10", "ICD10", Some("A"))
    );
    assert_eq!(visit.diagnoses[0].display.as_deref(), Some("特发性（原发性）高血压"));
    assert_eq!(visit.diagnoses[1].diagnosed_at, Some(at(2025, 11, 20, 0, 15, 0)));
    assert_eq!(patient.allergies.len(), 1);
    assert_eq!(patient.allergies[0].display.as_deref(), Some("青霉素"));
    assert_eq!(patient.allergies[0].severity.as_deref(), Some("SV"));
    assert_eq!(patient.allergies[0].reaction.as_deref(), Some("皮疹"));
    assert_eq!(patient.next_of_kin.len(), 1);
    assert_eq!(patient.next_of_kin[0].name, "李娜");
    assert_eq!(patient.next_of_kin[0].relationship.as_deref(), Some("SPO"));
    assert_eq!(patient.next_of_kin[0].phone.as_deref(), Some("13900000000"));
    assert_eq!(patient.insurance.len(), 1);
    assert_eq!(patient.insurance[0].plan.as_deref(), Some("310"));
    assert_eq!(patient.insurance[0].company.as_deref(), Some("杭州市医疗保障局"));
    assert_eq!(patient.insurance[0].member_id.as_deref(), Some("YB330106123"));
}

fn check_transfer(event: &Event, _: &Header, _: &[String]) {
    let visit = visit_of(event);
    assert_eq!(visit.location.as_deref(), Some("ICU/3/1"));
    assert_eq!(visit.prior_location.as_deref(), Some("5病区/501/02"));
    assert_eq!(visit.event_time, Some(at(2025, 11, 21, 2, 0, 0)));
}

fn check_discharge(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(visit_of(event).discharged_at, Some(at(2025, 11, 28, 2, 0, 0)));
}

fn check_register(event: &Event, _: &Header, _: &[String]) {
    let visit = visit_of(event);
    assert_eq!(visit.patient_class, EncounterType::Outpatient);
    assert_eq!(visit.visit_number, None);
    assert_eq!(visit.department.as_deref(), Some("内分泌科门诊"), "PV1-3 point of care when PV1-10 is empty");
}

fn check_emergency(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(visit_of(event).patient_class, EncounterType::Emergency);
}

fn check_unknown_class(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(visit_of(event).patient_class, EncounterType::Outpatient, "fallback");
}

fn check_visit_present(event: &Event, _: &Header, _: &[String]) {
    assert!(event.visit().is_some());
}

fn check_no_visit(event: &Event, _: &Header, _: &[String]) {
    assert!(event.visit().is_none());
    assert_eq!(event.patient().name, "张伟");
}

fn check_merge(event: &Event, _: &Header, _: &[String]) {
    let Event::Merge { patient, prior } = event else { panic!("merge") };
    assert_eq!(patient.identifiers[0].value, "MRN0001");
    let values: Vec<(&str, &str)> =
        prior.iter().map(|cx| (cx.value.as_str(), cx.assigning_authority.as_str())).collect();
    assert_eq!(values, [("MRN0999", "330106001"), ("OLD77", "330106002")]);
}

fn check_results(event: &Event, _: &Header, _: &[String]) {
    let Event::Results { patient, visit, orders } = event else { panic!("results") };
    assert_eq!(patient.name, "李娜");
    assert_eq!(patient.citizen_id.as_ref(), Some(&li_na_id()), "from PID-19");
    assert_eq!(patient.sex, Some(Sex::Female));
    assert_eq!(visit.as_ref().and_then(|v| v.visit_number.as_deref()), Some("V20251119007"));
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.placer_number.as_deref(), Some("ORD100"));
    assert_eq!(order.filler_number.as_deref(), Some("LAB200"));
    assert_eq!(
        (order.code.as_str(), order.system.as_str(), order.display.as_deref()),
        ("24331-1", "LN", Some("血脂四项"))
    );
    assert_eq!(order.observed_at, Some(at(2025, 11, 19, 1, 0, 0)));
    assert_eq!(order.reported_at, Some(at(2025, 11, 19, 7, 0, 0)));
    assert_eq!(order.status.as_deref(), Some("F"));
    let values: Vec<(&str, Option<&str>)> =
        order.observations.iter().map(|o| (o.value_type.as_str(), o.value.as_deref())).collect();
    assert_eq!(
        values,
        [("NM", Some("5.8")), ("CE", Some("A型")), ("SN", Some(">10")), ("ST", Some("样本轻度溶血，结果仅供参考"))]
    );
    let first = &order.observations[0];
    assert_eq!(first.set_id.as_deref(), Some("1"));
    assert_eq!(
        (first.code.as_str(), first.display.as_deref(), first.system.as_str()),
        ("2093-3", Some("总胆固醇"), "LN")
    );
    assert_eq!(first.unit.as_deref(), Some("mmol/L"));
    assert_eq!(first.reference_range.as_deref(), Some("3.1-5.7"));
    assert_eq!(first.abnormal_flags.as_deref(), Some("H"));
    assert_eq!(first.status.as_deref(), Some("F"));
    assert_eq!(first.observed_at, Some(at(2025, 11, 19, 2, 0, 0)));
}

fn check_immunizations(event: &Event, _: &Header, _: &[String]) {
    let Event::Immunizations { patient, doses } = event else { panic!("immunizations") };
    assert_eq!(patient.name, "王小明");
    assert_eq!(doses.len(), 2);
    let first = &doses[0];
    assert_eq!((first.vaccine_code.as_str(), first.vaccine_system.as_str()), ("0101", "CNVX"));
    assert_eq!(first.vaccine_display.as_deref(), Some("乙肝疫苗"));
    assert_eq!(first.administered_at, Some(at(2025, 5, 20, 1, 30, 0)));
    assert_eq!(first.amount.as_deref(), Some("10 ug"));
    assert_eq!(first.lot_number.as_deref(), Some("B202504001"));
    assert_eq!(first.manufacturer.as_deref(), Some("北京生物制品研究所"));
    assert_eq!(first.completion_status.as_deref(), Some("CP"));
    assert_eq!(doses[1].amount.as_deref(), Some("0.5 mL"));
    assert_eq!(doses[1].manufacturer.as_deref(), Some("SINOVAC"));
}

fn check_citizen_from_pid19(event: &Event, _: &Header, _: &[String]) {
    let patient = event.patient();
    assert_eq!(patient.citizen_id.as_ref(), Some(&zhang_wei_id()));
    assert!(patient.identifiers.iter().all(|cx| cx.type_code != "NNCHN"));
}

fn check_citizen_only(event: &Event, _: &Header, _: &[String]) {
    assert!(event.patient().identifiers.is_empty());
    assert_eq!(event.patient().citizen_id.as_ref(), Some(&zhang_wei_id()));
}

fn check_escapes(event: &Event, _: &Header, _: &[String]) {
    let patient = event.patient();
    assert_eq!(patient.name, "O|Brien^Jr Mary&Ann~X\\Y");
    assert_eq!(patient.address_line.as_deref(), Some("张三路\n2号杭州市"));
}

fn check_western_name(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(event.patient().name, "EVERYMAN ADAM");
}

fn check_latin1(event: &Event, header: &Header, _: &[String]) {
    assert_eq!(event.patient().name, "MÜLLER JOSÉ");
    assert_eq!(header.charset, rhip_hl7::Charset::Latin1);
}

fn check_gb18030(event: &Event, header: &Header, _: &[String]) {
    check_admit(event, &Header { charset: rhip_hl7::Charset::Utf8, ..header.clone() }, &[]);
    assert_eq!(header.charset, rhip_hl7::Charset::Gb18030);
}

fn check_custom_delimiters(event: &Event, header: &Header, _: &[String]) {
    assert_eq!(header.field_separator, '^');
    assert_eq!(header.encoding_characters, "~|\\&");
    assert_eq!(event.patient().name, "张伟");
    assert_eq!(event.patient().identifiers.len(), 1);
    assert_eq!(event.patient().address_region, Some(region("330106")));
    assert_eq!(visit_of(event).location.as_deref(), Some("5病区/501/02"));
}

fn check_truncation(_: &Event, header: &Header, _: &[String]) {
    assert_eq!(header.encoding_characters, "^~\\&#");
}

fn check_z_segments(_: &Event, _: &Header, z: &[String]) {
    assert_eq!(z, ["ZPI|1|自定义|内容", "ZXX"]);
}

fn check_gb_sex(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(event.patient().sex, Some(Sex::Male));
}

fn check_other_values_ignored(event: &Event, _: &Header, _: &[String]) {
    let patient = event.patient();
    assert_eq!(patient.ethnicity, None);
    assert_eq!(patient.marital_status.map(|m| m.code()), Some("10"));
    assert_eq!(patient.address_region, None);
    assert_eq!(patient.address_line, None);
}

fn check_deceased(event: &Event, _: &Header, _: &[String]) {
    assert_eq!(event.patient().deceased_at, Some(at(2025, 11, 25, 6, 10, 0)));
}

fn check_anything(_: &Event, _: &Header, _: &[String]) {}

/// Replaces the whole PID-3 with the citizen ID only (in PID-19).
fn citizen_in_pid19() -> Msg {
    admit().set("PID", 3, "MRN0001^^^330106001^MR").set("PID", 19, zhang_wei_id().as_str())
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let bad_id = with_bad_checksum(&zhang_wei_id());
    let gb_message = admit().set("MSH", 18, "GB18030").text();
    let (gb_bytes, _, _) = encoding_rs::GB18030.encode(&gb_message);
    let latin1: Vec<u8> = admit()
        .set("MSH", 18, "8859/1")
        .set("PID", 5, "MÜLLER^JOSÉ")
        .text()
        .replace(['张', '伟'], "")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let custom = admit()
        .text()
        .replace('|', "\u{1}")
        .replace('^', "\u{2}")
        .replace('~', "\u{3}")
        .replace('\u{1}', "^")
        .replace('\u{2}', "~")
        .replace('\u{3}', "|");
    let mut with_bom = vec![0xef, 0xbb, 0xbf];
    with_bom.extend(admit().bytes());
    let mut bad_utf8 = admit().bytes();
    bad_utf8.extend_from_slice(b"\rNTE|1||\xff\xfe");
    let mut bad_gb =
        admit().set("MSH", 18, "GB18030").bytes().into_iter().filter(|b| b.is_ascii()).collect::<Vec<u8>>();
    bad_gb.extend_from_slice(b"\rNTE|1||\x81\x20");

    vec![
        // ---- every event type ----
        ("A01 admit", admit().bytes(), Expect::Accepted("ADT^A01", check_admit)),
        (
            "A02 transfer",
            admit()
                .typed("ADT^A02^ADT_A02")
                .set("PV1", 3, "ICU^3^1")
                .set("PV1", 6, "5病区^501^02")
                .set("EVN", 6, "20251121100000")
                .bytes(),
            Expect::Accepted("ADT^A02", check_transfer),
        ),
        ("A03 discharge", discharge().bytes(), Expect::Accepted("ADT^A03", check_discharge)),
        (
            "A04 register",
            admit()
                .typed("ADT^A04^ADT_A01")
                .set("PV1", 2, "O")
                .set("PV1", 3, "内分泌科门诊")
                .set("PV1", 10, "")
                .set("PV1", 19, "")
                .bytes(),
            Expect::Accepted("ADT^A04", check_register),
        ),
        (
            "A04 emergency",
            admit().typed("ADT^A04").set("PV1", 2, "E").bytes(),
            Expect::Accepted("ADT^A04", check_emergency),
        ),
        (
            "A05 preadmit",
            admit().typed("ADT^A05^ADT_A05").set("PV1", 2, "P").set("PV1", 19, "").bytes(),
            Expect::Accepted("ADT^A05", check_visit_present),
        ),
        ("A08 with visit", admit().typed("ADT^A08^ADT_A01").bytes(), Expect::Accepted("ADT^A08", check_visit_present)),
        (
            "A08 without PV1",
            admit().typed("ADT^A08").without("PV1").bytes(),
            Expect::Accepted("ADT^A08", check_no_visit),
        ),
        (
            "A08 with empty PV1",
            admit().typed("ADT^A08").without("PV1").with("PV1|1").bytes(),
            Expect::Accepted("ADT^A08", check_no_visit),
        ),
        (
            "A11 cancel admit",
            admit().typed("ADT^A11^ADT_A09").set("PV1", 2, "").bytes(),
            Expect::Accepted("ADT^A11", check_unknown_class),
        ),
        (
            "A13 cancel discharge",
            discharge().typed("ADT^A13^ADT_A01").bytes(),
            Expect::Accepted("ADT^A13", check_visit_present),
        ),
        (
            "A28 add person",
            person_update().typed("ADT^A28^ADT_A05").bytes(),
            Expect::Accepted("ADT^A28", check_no_visit),
        ),
        ("A31 update person", person_update().bytes(), Expect::Accepted("ADT^A31", check_no_visit)),
        (
            "A31 without PV1",
            person_update().without("PV1").without("EVN").bytes(),
            Expect::Accepted("ADT^A31", check_no_visit),
        ),
        ("A40 merge", merge().bytes(), Expect::Accepted("ADT^A40", check_merge)),
        ("ORU^R01 results", results().bytes(), Expect::Accepted("ORU^R01", check_results)),
        ("VXU^V04 immunizations", immunizations().bytes(), Expect::Accepted("VXU^V04", check_immunizations)),
        // ---- identity variants ----
        ("citizen ID in PID-19", citizen_in_pid19().bytes(), Expect::Accepted("ADT^A01", check_citizen_from_pid19)),
        (
            "citizen ID only",
            admit().set("PID", 3, &format!("{}^^^CHN^NNCHN", zhang_wei_id())).bytes(),
            Expect::Accepted("ADT^A01", check_citizen_only),
        ),
        (
            "foreign SSN in PID-19 ignored",
            admit().set("PID", 19, "123-45-6789").bytes(),
            Expect::Accepted("ADT^A01", check_admit),
        ),
        ("GB sex code", admit().set("PID", 8, "1").bytes(), Expect::Accepted("ADT^A01", check_gb_sex)),
        (
            "non-GB values ignored",
            admit()
                .set("PID", 22, "2186-5^Not Hispanic^CDCREC")
                .set("PID", 16, "S")
                .set("PID", 11, "1 Main St^^Springfield^IL^62701^USA^M^^17167")
                .bytes(),
            Expect::Accepted("ADT^A01", check_other_values_ignored),
        ),
        (
            "deceased",
            admit().set("PID", 29, "20251125141000").set("PID", 30, "Y").bytes(),
            Expect::Accepted("ADT^A01", check_deceased),
        ),
        (
            "western name, no citizen ID",
            admit().set("PID", 3, "12345^5^M10^Memphis_Hosp^PI").set("PID", 5, "EVERYMAN^ADAM^^JR^^^L").bytes(),
            Expect::Accepted("ADT^A01", check_western_name),
        ),
        // ---- bytes, separators, delimiters, escapes ----
        ("LF separators", admit().joined("\n").into_bytes(), Expect::Accepted("ADT^A01", check_admit)),
        ("CRLF separators", admit().joined("\r\n").into_bytes(), Expect::Accepted("ADT^A01", check_admit)),
        (
            "trailing and blank lines",
            format!("\r\n {}\r\r\n\n", admit().joined("\r\n\r\n")).into_bytes(),
            Expect::Accepted("ADT^A01", check_admit),
        ),
        ("UTF-8 BOM", with_bom, Expect::Accepted("ADT^A01", check_admit)),
        ("empty MSH-18 is UTF-8", admit().set("MSH", 18, "").bytes(), Expect::Accepted("ADT^A01", check_admit)),
        ("MSH-18 UNICODE", admit().set("MSH", 18, "UNICODE").bytes(), Expect::Accepted("ADT^A01", check_admit)),
        ("MSH-18 UTF-8", admit().set("MSH", 18, "UTF-8").bytes(), Expect::Accepted("ADT^A01", check_admit)),
        ("GB18030 bytes", gb_bytes.into_owned(), Expect::Accepted("ADT^A01", check_gb18030)),
        ("8859/1 bytes", latin1, Expect::Accepted("ADT^A01", check_latin1)),
        ("custom delimiters ^~|\\&", custom.into_bytes(), Expect::Accepted("ADT^A01", check_custom_delimiters)),
        (
            "truncation character",
            admit().set("MSH", 2, "^~\\&#").bytes(),
            Expect::Accepted("ADT^A01", check_truncation),
        ),
        (
            "escapes",
            admit()
                .set("PID", 5, r"O\F\Brien\S\Jr^Mary\T\Ann\R\X\E\Y")
                .set("PID", 11, r"\XE5BCA0\三路\.br\2号^^杭州市^浙江省^^CHN^H")
                .bytes(),
            Expect::Accepted("ADT^A01", check_escapes),
        ),
        (
            "Z segments kept",
            admit().with("ZPI|1|自定义|内容").with("ZXX").bytes(),
            Expect::Accepted("ADT^A01", check_z_segments),
        ),
        ("version 2.3", admit().set("MSH", 12, "2.3").bytes(), Expect::Accepted("ADT^A01", check_anything)),
        ("version 2.3.1", admit().set("MSH", 12, "2.3.1").bytes(), Expect::Accepted("ADT^A01", check_anything)),
        ("version 2.4", admit().set("MSH", 12, "2.4").bytes(), Expect::Accepted("ADT^A01", check_anything)),
        (
            "version 2.7.1 as VID",
            admit().set("MSH", 12, "2.7.1^CHN").bytes(),
            Expect::Accepted("ADT^A01", check_anything),
        ),
        ("version 2.8", admit().set("MSH", 12, "2.8").bytes(), Expect::Accepted("ADT^A01", check_anything)),
        ("lower-case message type", admit().typed("adt^a01").bytes(), Expect::Accepted("ADT^A01", check_anything)),
        // ---- every validation rule failing ----
        ("MSH-10 missing", admit().set("MSH", 10, "").bytes(), Expect::Invalid(&[("MSH[1].10", "101")])),
        ("MSH-7 unreadable", admit().set("MSH", 7, "2025-11-20").bytes(), Expect::Invalid(&[("MSH[1].7", "102")])),
        ("PID missing", admit().without("PID").bytes(), Expect::Invalid(&[("PID[1]", "100")])),
        (
            "two PIDs",
            admit().with("PID|1||MRN0002^^^330106001^MR||赵^六").bytes(),
            Expect::Invalid(&[("PID[2]", "100")]),
        ),
        ("PID-3 empty", admit().set("PID", 3, "").bytes(), Expect::Invalid(&[("PID[1].3", "101")])),
        ("PID-5 missing", admit().set("PID", 5, "").bytes(), Expect::Invalid(&[("PID[1].5", "101")])),
        ("PID-5 explicit null", admit().set("PID", 5, "\"\"").bytes(), Expect::Invalid(&[("PID[1].5", "101")])),
        ("PV1 missing for A01", admit().without("PV1").bytes(), Expect::Invalid(&[("PV1[1]", "100")])),
        (
            "PV1 missing for A13",
            discharge().typed("ADT^A13").without("PV1").bytes(),
            Expect::Invalid(&[("PV1[1]", "100")]),
        ),
        ("PV1-19 missing for A01", admit().set("PV1", 19, "").bytes(), Expect::Invalid(&[("PV1[1].19", "101")])),
        ("PV1-19 missing for A03", discharge().set("PV1", 19, "").bytes(), Expect::Invalid(&[("PV1[1].19", "101")])),
        (
            "PV1-19 missing for A11",
            admit().typed("ADT^A11").set("PV1", 19, "").bytes(),
            Expect::Invalid(&[("PV1[1].19", "101")]),
        ),
        (
            "PV1-2 missing for A04",
            admit().typed("ADT^A04").set("PV1", 2, "").bytes(),
            Expect::Invalid(&[("PV1[1].2", "101")]),
        ),
        (
            "PV1-2 missing for A02",
            admit().typed("ADT^A02").set("PV1", 2, "").bytes(),
            Expect::Invalid(&[("PV1[1].2", "101")]),
        ),
        ("MRG missing", merge().without("MRG").bytes(), Expect::Invalid(&[("MRG[1]", "100")])),
        ("MRG-1 empty", merge().set("MRG", 1, "").bytes(), Expect::Invalid(&[("MRG[1].1", "101")])),
        ("ORU without OBR", results().without("OBR").without("OBX").bytes(), Expect::Invalid(&[("OBR[1]", "100")])),
        ("OBR-4 missing", results().set("OBR", 4, "").bytes(), Expect::Invalid(&[("OBR[1].4", "101")])),
        ("OBX-3 missing", results().set_nth("OBX", 2, 3, "").bytes(), Expect::Invalid(&[("OBX[2].3", "101")])),
        ("OBX-2 missing", results().set_nth("OBX", 1, 2, "").bytes(), Expect::Invalid(&[("OBX[1].2", "101")])),
        (
            "OBX before OBR",
            results().insert_before("OBR", "OBX|9|NM|1-1^X^LN||1").bytes(),
            Expect::Invalid(&[("OBX[1]", "100")]),
        ),
        ("VXU without RXA", immunizations().without("RXA").bytes(), Expect::Invalid(&[("RXA[1]", "100")])),
        ("RXA-3 missing", immunizations().set("RXA", 3, "").bytes(), Expect::Invalid(&[("RXA[1].3", "101")])),
        ("RXA-5 missing", immunizations().set_nth("RXA", 2, 5, "").bytes(), Expect::Invalid(&[("RXA[2].5", "101")])),
        (
            "NNCHN citizen ID bad checksum",
            admit().set("PID", 3, &format!("MRN0001^^^330106001^MR~{bad_id}^^^CHN^NNCHN")).bytes(),
            Expect::Invalid(&[("PID[1].3[2].1", "102")]),
        ),
        (
            "NNCHN citizen ID too short",
            admit().set("PID", 3, "MRN0001^^^330106001^MR~3301061990^^^CHN^NNCHN").bytes(),
            Expect::Invalid(&[("PID[1].3[2].1", "102")]),
        ),
        (
            "PID-19 citizen ID bad checksum",
            admit().set("PID", 3, "MRN0001^^^330106001^MR").set("PID", 19, &bad_id).bytes(),
            Expect::Invalid(&[("PID[1].19", "102")]),
        ),
        (
            "birth date disagrees with ID",
            admit().set("PID", 7, "19900308").bytes(),
            Expect::Invalid(&[("PID[1].7", "102")]),
        ),
        ("sex disagrees with ID", admit().set("PID", 8, "F").bytes(), Expect::Invalid(&[("PID[1].8", "102")])),
        ("sex not in tables", admit().set("PID", 8, "X").bytes(), Expect::Invalid(&[("PID[1].8", "103")])),
        (
            "ethnicity declared GB 3304 but unknown",
            admit().set("PID", 22, "99^未知^GB 3304").bytes(),
            Expect::Invalid(&[("PID[1].22.1", "103")]),
        ),
        (
            "ethnicity declared GB3304 but not 2 digits",
            admit().set("PID", 22, "1^汉^GB3304").bytes(),
            Expect::Invalid(&[("PID[1].22.1", "103")]),
        ),
        (
            "home county retired",
            admit().set("PID", 11, "延安路1号^^杭州市^浙江省^310006^CHN^H^^330103").bytes(),
            Expect::Invalid(&[("PID[1].11[1].9", "103")]),
        ),
        (
            "home county in second repetition",
            admit().set("PID", 11, "西溪路1号^^杭州市^^^^O^^330106~x^^^^^^H^^999999").bytes(),
            Expect::Invalid(&[("PID[1].11[2].9", "103")]),
        ),
        ("birth date unreadable", admit().set("PID", 7, "1990-03-07").bytes(), Expect::Invalid(&[("PID[1].7", "102")])),
        (
            "birth date in the future",
            admit().set("PID", 3, "MRN0001^^^330106001^MR").set("PID", 7, "20260101").bytes(),
            Expect::Invalid(&[("PID[1].7", "102")]),
        ),
        (
            "birth date tomorrow is allowed (time zones)",
            admit().set("PID", 3, "MRN0001^^^330106001^MR").set("PID", 7, "20251202").bytes(),
            Expect::Accepted("ADT^A01", check_anything),
        ),
        ("PV1-44 unreadable", admit().set("PV1", 44, "2025112").bytes(), Expect::Invalid(&[("PV1[1].44", "102")])),
        (
            "PV1-45 in the future",
            discharge().set("PV1", 45, "20251210100000").bytes(),
            Expect::Invalid(&[("PV1[1].45", "102")]),
        ),
        ("EVN-2 unreadable", admit().set("EVN", 2, "yesterday").bytes(), Expect::Invalid(&[("EVN[1].2", "102")])),
        (
            "EVN-6 bad offset",
            admit().set("EVN", 6, "20251120082500+2500").bytes(),
            Expect::Invalid(&[("EVN[1].6", "102")]),
        ),
        ("DG1-5 unreadable", admit().set_nth("DG1", 2, 5, "20251132").bytes(), Expect::Invalid(&[("DG1[2].5", "102")])),
        ("PID-29 unreadable", admit().set("PID", 29, "202511251").bytes(), Expect::Invalid(&[("PID[1].29", "102")])),
        ("OBR-7 unreadable", results().set("OBR", 7, "20251119 0900").bytes(), Expect::Invalid(&[("OBR[1].7", "102")])),
        (
            "OBR-22 in the future",
            results().set("OBR", 22, "20270101").bytes(),
            Expect::Invalid(&[("OBR[1].22", "102")]),
        ),
        (
            "OBX-14 unreadable",
            results().set_nth("OBX", 1, 14, "20251119T1000").bytes(),
            Expect::Invalid(&[("OBX[1].14", "102")]),
        ),
        (
            "RXA-3 unreadable",
            immunizations().set("RXA", 3, "2025-05-20").bytes(),
            Expect::Invalid(&[("RXA[1].3", "102")]),
        ),
        (
            "unterminated escape in PID-5",
            admit().set("PID", 5, r"张\伟").bytes(),
            Expect::Invalid(&[("PID[1].5[1].1.1", "102")]),
        ),
        (
            "bad hex escape in PV1-3",
            admit().set("PV1", 3, r"\XZZ\^501").bytes(),
            Expect::Invalid(&[("PV1[1].3[1].1.1", "102")]),
        ),
        (
            "all problems at once",
            admit()
                .set("MSH", 10, "")
                .set("PID", 5, "")
                .set("PID", 8, "X")
                .set("PV1", 19, "")
                .set("PV1", 44, "soon")
                .bytes(),
            Expect::Invalid(&[
                ("MSH[1].10", "101"),
                ("PID[1].5", "101"),
                ("PID[1].8", "103"),
                ("PV1[1].19", "101"),
                ("PV1[1].44", "102"),
            ]),
        ),
        (
            "missing PID still checks the rest",
            results().without("PID").set("OBR", 4, "").bytes(),
            Expect::Invalid(&[("PID[1]", "100"), ("OBR[1].4", "101")]),
        ),
        // ---- rejections ----
        ("empty", Vec::new(), Expect::Rejected("Unreadable", "100", "MSH[1]", false)),
        ("whitespace only", b" \r\n\t".to_vec(), Expect::Rejected("Unreadable", "100", "MSH[1]", false)),
        ("no MSH", admit().without("MSH").bytes(), Expect::Rejected("Unreadable", "100", "MSH[1]", false)),
        (
            "batch header first",
            format!("BHS|^~\\&|HIS\r{}", admit().text()).into_bytes(),
            Expect::Rejected("Unreadable", "100", "MSH[1]", false),
        ),
        (
            "bad delimiters &&&&",
            admit().set("MSH", 2, "&&&&").bytes(),
            Expect::Rejected("Unreadable", "102", "MSH[1]", false),
        ),
        (
            "3 encoding characters",
            admit().set("MSH", 2, "^~\\").bytes(),
            Expect::Rejected("Unreadable", "102", "MSH[1]", false),
        ),
        (
            "unterminated escape in MSH",
            admit().set("MSH", 3, r"HIS\X").bytes(),
            Expect::Rejected("Unreadable", "102", "MSH[1]", true),
        ),
        (
            "garbage line",
            admit().with("this is not a segment").bytes(),
            Expect::Rejected("Unreadable", "100", "MSH[1]", true),
        ),
        (
            "second MSH in one payload",
            format!("{}\r{}", admit().text(), admit().text()).into_bytes(),
            Expect::Rejected("Unreadable", "100", "MSH[1]", true),
        ),
        ("invalid UTF-8", bad_utf8, Expect::Rejected("Unreadable", "102", "MSH[1]", true)),
        ("invalid GB18030", bad_gb, Expect::Rejected("Unreadable", "102", "MSH[1]", true)),
        (
            "version 2.2",
            admit().set("MSH", 12, "2.2").bytes(),
            Expect::Rejected("UnsupportedVersion", "203", "MSH[1].12", true),
        ),
        (
            "version 2.1",
            admit().set("MSH", 12, "2.1").bytes(),
            Expect::Rejected("UnsupportedVersion", "203", "MSH[1].12", true),
        ),
        (
            "version 3.0",
            admit().set("MSH", 12, "3.0").bytes(),
            Expect::Rejected("UnsupportedVersion", "203", "MSH[1].12", true),
        ),
        (
            "version missing",
            admit().set("MSH", 12, "").bytes(),
            Expect::Rejected("UnsupportedVersion", "203", "MSH[1].12", true),
        ),
        (
            "OML^O21",
            admit().typed("OML^O21^OML_O21").bytes(),
            Expect::Rejected("UnsupportedMessageType", "200", "MSH[1].9.1", true),
        ),
        (
            "ACK received",
            admit().typed("ACK^A01^ACK").bytes(),
            Expect::Rejected("UnsupportedMessageType", "200", "MSH[1].9.1", true),
        ),
        (
            "ADT^A24",
            admit().typed("ADT^A24^ADT_A24").bytes(),
            Expect::Rejected("UnsupportedMessageType", "201", "MSH[1].9.2", true),
        ),
        (
            "ORU^R30",
            results().typed("ORU^R30").bytes(),
            Expect::Rejected("UnsupportedMessageType", "201", "MSH[1].9.2", true),
        ),
        ("MSH-9 empty", admit().typed("").bytes(), Expect::Rejected("UnsupportedMessageType", "101", "MSH[1].9", true)),
        (
            "MSH-9 type missing",
            admit().typed("^A01").bytes(),
            Expect::Rejected("UnsupportedMessageType", "101", "MSH[1].9", true),
        ),
        (
            "MSH-18 8859/15",
            admit().set("MSH", 18, "8859/15").bytes(),
            Expect::Rejected("UnsupportedCharset", "102", "MSH[1].18", true),
        ),
        (
            "MSH-18 ISO IR87",
            admit().set("MSH", 18, "ISO IR87").bytes(),
            Expect::Rejected("UnsupportedCharset", "102", "MSH[1].18", true),
        ),
        (
            "MSH-18 GB2312",
            admit().set("MSH", 18, "GB2312").bytes(),
            Expect::Rejected("UnsupportedCharset", "102", "MSH[1].18", true),
        ),
    ]
}

#[test]
fn table() {
    let cases = cases();
    assert!(cases.len() > 100, "the table shrank");
    for (name, input, expected) in &cases {
        eprintln!("case: {name}");
        check(name, input, expected);
    }
}

#[test]
fn rejection_texts_are_helpful() {
    let mut bad = admit().bytes();
    let offset = bad.len() + 8;
    bad.extend_from_slice(b"\rNTE|1||\xff");
    let Received::Rejected { header, reason } = receive(&bad, today()) else { panic!("rejected") };
    assert!(reason.to_string().contains(&format!("byte {offset} (0xFF)")), "{reason}");
    assert_eq!(header.map(|h| h.control_id), Some("MSG00001".to_owned()), "MSH-10 still echoed");

    let Received::Rejected { reason, .. } = receive(admit().typed("OML^O21^OML_O21").bytes().as_slice(), today())
    else {
        panic!("rejected")
    };
    assert_eq!(reason, Rejection::UnsupportedMessageType("OML^O21".into()));

    let Received::Rejected { reason, .. } = receive(admit().set("MSH", 12, "2.2").bytes().as_slice(), today()) else {
        panic!("rejected")
    };
    assert_eq!(reason, Rejection::UnsupportedVersion("2.2".into()));

    let Received::Rejected { reason, .. } = receive(b"PID|1||X", today()) else { panic!("rejected") };
    assert_eq!(reason.to_string(), "unreadable message: no MSH segment at the start (found \"PID|1||X\")");

    let Received::Rejected { reason, .. } = receive(admit().with("junk line").bytes().as_slice(), today()) else {
        panic!("rejected")
    };
    assert!(reason.to_string().contains("line 11 is not an HL7 segment"), "{reason}");
}

#[test]
fn problem_messages_name_both_values() {
    let Received::Invalid { problems, .. } =
        receive(&admit().set("PID", 7, "19900308").set("PID", 8, "F").bytes(), today())
    else {
        panic!("invalid")
    };
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "PID-7: submitted birth date 1990-03-08 differs from 1990-03-07 encoded in the citizen ID",
            "PID-8: submitted sex 2 (female) differs from 1 (male) implied by the citizen ID",
        ]
    );
    let Received::Invalid { problems, .. } = receive(
        &admit().set("PID", 3, &format!("{}^^^CHN^NNCHN", with_bad_checksum(&zhang_wei_id()))).bytes(),
        today(),
    ) else {
        panic!("invalid")
    };
    assert!(problems[0].message.contains("check character"), "{problems:?}");
    assert_eq!(problems.len(), 2, "bad ID and then no identifier at all: {problems:?}");
}

#[test]
fn public_types_serialize() {
    fn serializable<T: serde::Serialize>() {}
    serializable::<Event>();
    serializable::<Header>();
    serializable::<rhip_hl7::Problem>();
    serializable::<rhip_hl7::AckCode>();
    serializable::<rhip_hl7::ErrorCode>();
}

/// PD1-3 (XON) and PD1-4 (XCN) become the patient's primary facility and provider: name
/// with identifier, either alone, the first repetition with content; no PD1, nothing.
#[test]
fn primary_care_from_pd1() {
    let primary = |pd1: &str| {
        let message = admit().insert_before("PV1", pd1);
        match receive(&message.bytes(), today()) {
            Received::Accepted { event, .. } => {
                let patient = event.patient().clone();
                (patient.primary_facility, patient.primary_provider)
            }
            other => panic!("{pd1}: {other:#?}"),
        }
    };
    let s = |text: &str| Some(text.to_owned());
    assert_eq!(
        primary("PD1|||西湖区社区卫生服务中心^^^^^^^^^H330106002|G001^赵^敏^^^医师"),
        (s("西湖区社区卫生服务中心 (H330106002)"), s("赵敏 (G001)"))
    );
    // XON-3 (older versions) when XON-10 is empty; a provider with only an ID.
    assert_eq!(primary("PD1|||某社区医院^^H330106003|G002"), (s("某社区医院 (H330106003)"), s("G002")));
    // The first repetition with content; escapes decoded.
    assert_eq!(primary("PD1|||~卫生院\\T\\诊所|^钱^程"), (s("卫生院&诊所"), s("钱程")));
    assert_eq!(primary("PD1|||||"), (None, None));
    let without = receive(&admit().bytes(), today());
    let Received::Accepted { event, .. } = &without else { panic!("{without:#?}") };
    assert_eq!(
        (event.patient().primary_facility.as_deref(), event.patient().primary_provider.as_deref()),
        (None, None)
    );
}

/// AL1, NK1 and IN1 are the person's: read on messages without a visit (A28, A31) too,
/// with the allergen's coding system.
#[test]
fn person_segments_without_a_visit() {
    for message in [person_update(), person_update().without("PV1").typed("ADT^A28^ADT_A05")] {
        let message = message
            .with("PD1|||社区中心^^^^^^^^^H330106002")
            .with("NK1|1|李^娜|SPO^配偶^HL70063||13900000000")
            .with("NK1|2|张^强|FTH^父亲")
            .with("AL1|1|DA|70618^青霉素^RXNORM|SV|皮疹")
            .with("AL1|2|FA|^花生|MI")
            .with("IN1|1|310^城镇职工基本医疗保险|330100|杭州市医疗保障局")
            .set("IN1", 36, "YB330106123");
        let received = receive(&message.bytes(), today());
        let Received::Accepted { event, .. } = &received else { panic!("{received:#?}") };
        assert!(event.visit().is_none());
        let patient = event.patient();
        assert_eq!(patient.primary_facility.as_deref(), Some("社区中心 (H330106002)"));
        assert_eq!(patient.next_of_kin.len(), 2);
        assert_eq!(patient.next_of_kin[1].name, "张强");
        assert_eq!(patient.next_of_kin[1].relationship.as_deref(), Some("FTH"));
        assert_eq!(patient.next_of_kin[1].phone, None);
        assert_eq!(patient.allergies.len(), 2);
        assert_eq!(patient.allergies[0].system.as_deref(), Some("RXNORM"));
        assert_eq!((patient.allergies[1].code.as_str(), patient.allergies[1].display.as_deref()), ("", Some("花生")));
        assert_eq!(patient.insurance[0].member_id.as_deref(), Some("YB330106123"));
    }
}
