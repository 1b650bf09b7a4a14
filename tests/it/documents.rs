//! CDA R2 documents through a running node: every registered document type
//! posted in two hospitals' styles (UTF-8 and GB18030), hostile and invalid
//! documents refused with the element named and nothing stored, retrieval
//! byte for byte, versions, generation of summaries and encounter documents
//! that re-ingest to the same data, on SQLite and PostgreSQL.

use rhip_tests::{both_backends, Backend, Mllp, Node, NodeDir, Response};
use serde_json::Value;
use std::io::{Read, Write};

const HOSPITAL: &str = "H330106001";
const OTHER_HOSPITAL: &str = "H330106002";

both_backends! {
    every_registered_type_is_stored_and_extracted => super::every_registered_type_is_stored_and_extracted;
    bad_documents_are_refused_and_change_nothing => super::bad_documents_are_refused_and_change_nothing;
    resubmission_and_new_versions => super::resubmission_and_new_versions;
    generated_documents_round_trip => super::generated_documents_round_trip;
    corpus_documents_get_a_clear_answer => super::corpus_documents_get_a_clear_answer;
}

/// The real-world corpus (`../shared/corpus/cda`, US C-CDA and HL7 samples):
/// their LOINC document types are not registered here, so each is refused
/// with the element named (the header-only fragment at its root), nothing is
/// stored, and the node keeps serving.
fn corpus_documents_get_a_clear_answer(backend: Backend) {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/cda");
    if !corpus.exists() {
        eprintln!("SKIPPED: CDA corpus absent at {} (CI always has it)", corpus.display());
        return;
    }
    let Some((_node, server, commission, hospital)) = start(backend) else { return };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .flat_map(|folder| std::fs::read_dir(folder.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} corpus documents", files.len());
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let answer = post(&server, Some(&hospital), &std::fs::read(file).unwrap());
        assert_eq!(answer.status, 422, "{name}: {}", answer.text);
        let problem = answer.json();
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        let expected = if name.starts_with("Header_Care_Team") { "/documentationOf" } else { "/ClinicalDocument" };
        assert!(fields.iter().any(|f| f.starts_with(expected)), "{name}: {fields:?}");
    }
    let totals = counts(&server, &commission);
    assert_eq!((totals["documents"].as_i64(), totals["persons"].as_i64()), (Some(0), Some(0)), "{totals}");
    assert_eq!(post(&server, Some(&hospital), &render(&doc("C0001", "AFTER-CORPUS", 109), Style::Plain)).status, 201);
}

/// How a hospital writes its documents.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Style {
    /// UTF-8, one-text Chinese name, GB/T 2261.1 sex code, default namespace.
    Plain,
    /// GB18030 declaration, family/given name parts, HL7 sex code, `cda:` prefix.
    Prefixed,
}

pub(crate) struct Doc<'a> {
    type_code: &'a str,
    id: String,
    citizen_id: String,
    sex: &'a str,
    birth: &'a str,
    visit: Option<&'a str>,
    replaces: Option<String>,
    entries: bool,
    pub(crate) facility: &'a str,
}

pub(crate) fn citizen_id(sequence: u16) -> String {
    let region = rhip_core::RegionCode::parse("330106").unwrap();
    let birth = chrono::NaiveDate::from_ymd_opt(1975, 3, 9).unwrap();
    rhip_core::CitizenId::generate(region, birth, sequence).as_str().to_string()
}

pub(crate) fn doc(type_code: &str, id: &str, sequence: u16) -> Doc<'static> {
    let type_code: &'static str = Box::leak(type_code.to_string().into_boxed_str());
    Doc {
        type_code,
        id: id.to_string(),
        citizen_id: citizen_id(sequence),
        sex: if sequence % 2 == 1 { "1" } else { "2" },
        birth: "19750309",
        visit: Some("MZ-0001"),
        replaces: None,
        entries: true,
        facility: HOSPITAL,
    }
}

/// A synthetic CDA document of a registered type with every required section.
pub(crate) fn render(d: &Doc<'_>, style: Style) -> Vec<u8> {
    let kind = rhip_cda::registry::all().iter().find(|t| t.code == d.type_code).expect("registered type");
    let p = if style == Style::Prefixed { "cda:" } else { "" };
    let (name, sex) = match style {
        Style::Plain => (
            format!("<{p}name>测试患者</{p}name>"),
            format!("<{p}administrativeGenderCode code=\"{}\" codeSystem=\"2.16.156.10011.2.3.3.4\"/>", d.sex),
        ),
        Style::Prefixed => (
            format!("<{p}name><{p}family>测试</{p}family><{p}given>患者</{p}given></{p}name>"),
            format!(
                "<{p}administrativeGenderCode code=\"{}\" codeSystem=\"2.16.840.1.113883.5.1\"/>",
                if d.sex == "1" { "M" } else { "F" }
            ),
        ),
    };
    let mut sections = String::new();
    for (index, section) in kind.required_sections.iter().enumerate() {
        let entries = if d.entries && index == 0 {
            format!(
                "<{p}entry><{p}observation classCode=\"OBS\" moodCode=\"EVN\"><{p}code code=\"29548-5\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"诊断\"/>\
                 <{p}effectiveTime value=\"20240301\"/>\
                 <{p}value xsi:type=\"CD\" code=\"I10\" codeSystem=\"2.16.156.10011.2.3.3.11\" displayName=\"原发性高血压\"/></{p}observation></{p}entry>\
                 <{p}entry><{p}observation classCode=\"OBS\" moodCode=\"EVN\"><{p}code code=\"14749-6\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"葡萄糖\"/>\
                 <{p}effectiveTime value=\"20240301083000\"/>\
                 <{p}value xsi:type=\"PQ\" value=\"7.8\" unit=\"mmol/L\"/><{p}interpretationCode code=\"H\"/>\
                 <{p}referenceRange><{p}observationRange><{p}value xsi:type=\"IVL_PQ\"><{p}low value=\"3.9\" unit=\"mmol/L\"/><{p}high value=\"6.1\" unit=\"mmol/L\"/></{p}value></{p}observationRange></{p}referenceRange>\
                 </{p}observation></{p}entry>\
                 <{p}entry><{p}substanceAdministration classCode=\"SBADM\" moodCode=\"EVN\"><{p}effectiveTime xsi:type=\"IVL_TS\"><{p}low value=\"20240301\"/></{p}effectiveTime>\
                 <{p}doseQuantity value=\"0.5\" unit=\"g\"/><{p}consumable><{p}manufacturedProduct><{p}manufacturedMaterial>\
                 <{p}code code=\"A10BA02\" codeSystem=\"2.16.840.1.113883.6.73\" displayName=\"二甲双胍\"/><{p}name>盐酸二甲双胍片</{p}name>\
                 </{p}manufacturedMaterial></{p}manufacturedProduct></{p}consumable></{p}substanceAdministration></{p}entry>"
            )
        } else {
            String::new()
        };
        sections.push_str(&format!(
            "<{p}component><{p}section><{p}code code=\"{}\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"{}\"/><{p}title>{}</{p}title><{p}text>无特殊</{p}text>{entries}</{p}section></{p}component>",
            section.code, section.name, section.name
        ));
    }
    let encounter = match (d.visit, kind.required_header.iter().any(|h| h.contains("encompassingEncounter"))) {
        (Some(visit), _) => format!(
            "<{p}componentOf><{p}encompassingEncounter><{p}id root=\"2.16.156.10011.1.11\" extension=\"{visit}\"/>\
             <{p}code code=\"AMB\" codeSystem=\"2.16.840.1.113883.5.4\"/><{p}effectiveTime><{p}low value=\"20240301080000\"/></{p}effectiveTime>\
             </{p}encompassingEncounter></{p}componentOf>"
        ),
        (None, _) => String::new(),
    };
    let related = match &d.replaces {
        Some(parent) => format!(
            "<{p}relatedDocument typeCode=\"RPLC\"><{p}parentDocument><{p}id root=\"2.16.156.10011.1.1\" extension=\"{parent}\"/></{p}parentDocument></{p}relatedDocument>"
        ),
        None => String::new(),
    };
    let (declaration, root_ns) = match style {
        Style::Plain => ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "xmlns=\"urn:hl7-org:v3\""),
        Style::Prefixed => ("<?xml version=\"1.0\" encoding=\"GB18030\"?>", "xmlns:cda=\"urn:hl7-org:v3\""),
    };
    let xml = format!(
        "{declaration}\n<{p}ClinicalDocument {root_ns} xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <{p}realmCode code=\"CN\"/><{p}typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_MT000040\"/>\
         <{p}templateId root=\"{template}\"/><{p}id root=\"2.16.156.10011.1.1\" extension=\"{id}\"/>\
         <{p}code code=\"{code}\" codeSystem=\"{system}\" displayName=\"{title}\"/><{p}title>{title}</{p}title>\
         <{p}effectiveTime value=\"20240301120000\"/><{p}confidentialityCode code=\"N\" codeSystem=\"2.16.840.1.113883.5.25\"/>\
         <{p}languageCode code=\"zh-CN\"/><{p}setId root=\"2.16.156.10011.1.1\" extension=\"SET-{id}\"/><{p}versionNumber value=\"1\"/>\
         <{p}recordTarget><{p}patientRole><{p}id root=\"2.16.156.10011.1.3\" extension=\"{citizen}\"/>\
         <{p}addr use=\"H\"><{p}streetAddressLine>测试路8号</{p}streetAddressLine><{p}county>西湖区</{p}county><{p}censusTract>330106</{p}censusTract></{p}addr>\
         <{p}patient>{name}{sex}<{p}birthTime value=\"{birth}\"/></{p}patient></{p}patientRole></{p}recordTarget>\
         <{p}author><{p}time value=\"20240301120000\"/><{p}assignedAuthor><{p}id root=\"2.16.156.10011.1.4\" extension=\"D001\"/>\
         <{p}assignedPerson><{p}name>测试医生</{p}name></{p}assignedPerson>\
         <{p}representedOrganization><{p}id root=\"2.16.156.10011.1.5\" extension=\"{facility}\"/><{p}name>测试医院</{p}name></{p}representedOrganization>\
         </{p}assignedAuthor></{p}author>\
         <{p}custodian><{p}assignedCustodian><{p}representedCustodianOrganization><{p}id root=\"2.16.156.10011.1.5\" extension=\"{facility}\"/>\
         <{p}name>测试医院</{p}name></{p}representedCustodianOrganization></{p}assignedCustodian></{p}custodian>\
         {related}{encounter}<{p}component><{p}structuredBody>{sections}</{p}structuredBody></{p}component></{p}ClinicalDocument>",
        template = kind.template_id,
        id = d.id,
        code = kind.code,
        system = kind.code_system,
        title = kind.title,
        citizen = d.citizen_id,
        birth = d.birth,
        facility = d.facility,
    );
    match style {
        Style::Plain => xml.into_bytes(),
        Style::Prefixed => encoding_rs::GB18030.encode(&xml).0.into_owned(),
    }
}

fn start(backend: Backend) -> Option<(NodeDir, Node, String, String)> {
    let node = NodeDir::init("330106", backend)?;
    node.add_facility(HOSPITAL, "330106");
    node.add_facility(OTHER_HOSPITAL, "330106");
    let server = node.start();
    let commission = node.token("commission", &[]);
    let hospital = node.token("hospital_system", &["--facility", HOSPITAL]);
    Some((node, server, commission, hospital))
}

fn post(server: &Node, token: Option<&str>, body: &[u8]) -> Response {
    let mut request = ureq::post(&format!("{}/api/v1/documents", server.api)).set("Content-Type", "application/xml");
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    Response::from(request.send_bytes(body))
}

fn get_bytes(server: &Node, path: &str, token: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let answer = ureq::get(&format!("{}{path}", server.api))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Accept", accept)
        .call();
    let response = match answer {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{error}"),
    };
    let (status, content_type) = (response.status(), response.content_type().to_string());
    let mut bytes = Vec::new();
    response.into_reader().read_to_end(&mut bytes).unwrap();
    (status, content_type, bytes)
}

fn counts(server: &Node, token: &str) -> Value {
    let answer = server.get("/api/v1/stats/summary?region=330106", Some(token));
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

fn person_of(server: &Node, token: &str, citizen: &str) -> String {
    let found = server.get(&format!("/api/v1/persons?id_number={citizen}"), Some(token)).items();
    assert_eq!(found.len(), 1, "one person with {citizen}");
    found[0]["empi_id"].as_str().unwrap().to_string()
}

fn every_registered_type_is_stored_and_extracted(backend: Backend) {
    let Some((_node, server, commission, hospital)) = start(backend) else { return };
    let types = rhip_cda::registry::all();
    assert!(types.len() >= 70, "{} registered types", types.len());
    for (index, kind) in types.iter().enumerate() {
        let style = if index % 2 == 0 { Style::Plain } else { Style::Prefixed };
        let mut d = doc(&kind.code, &format!("DOC-{index:03}"), 101);
        d.visit = Some("MZ-0001");
        let body = render(&d, style);
        let answer = post(&server, Some(&hospital), &body);
        assert_eq!(answer.status, 201, "{} ({}): {}", kind.code, kind.title, answer.text);
        let stored = answer.json();
        assert_eq!(stored["type"], kind.code.as_str());
        assert_eq!(stored["size_bytes"], body.len());
        // The original bytes come back unchanged, whatever their encoding.
        let (status, content_type, bytes) = get_bytes(
            &server,
            &format!("/api/v1/documents/{}", stored["id"].as_str().unwrap()),
            &commission,
            "application/xml",
        );
        assert_eq!((status, content_type.as_str()), (200, "application/xml"));
        assert_eq!(bytes, body, "{} bytes differ", kind.code);
    }
    // One person (both styles linked by the citizen ID), one encounter, entries extracted once per encounter.
    let person = person_of(&server, &commission, &citizen_id(101));
    let view = server.get(&format!("/api/v1/persons/{person}"), Some(&commission)).json();
    assert_eq!(view["name"], "测试患者");
    let documents = server.get(&format!("/api/v1/persons/{person}/documents?limit=1000"), Some(&commission)).items();
    assert_eq!(documents.len(), types.len());
    let encounters = server.get(&format!("/api/v1/persons/{person}/encounters"), Some(&commission)).items();
    assert_eq!(encounters.len(), 1, "{encounters:?}");
    assert!(encounters[0]["diagnoses"].as_array().unwrap().iter().any(|d| d["code"] == "I10"), "{encounters:?}");
    let observations = server.get(&format!("/api/v1/persons/{person}/observations"), Some(&commission)).items();
    let glucose = observations.iter().find(|o| o["code"] == "14749-6").expect("glucose extracted");
    assert_eq!(glucose["value"], "7.8");
    assert_eq!(glucose["unit"], "mmol/L");
    assert_eq!(glucose["reference_range"], "3.9-6.1");
    assert_eq!(glucose["abnormal_flag"], "H");
    // Filters: by type, by facility, by time.
    let by_type = server.get(&format!("/api/v1/persons/{person}/documents?type=C0032"), Some(&commission)).items();
    assert_eq!(by_type.len(), 1);
    assert_eq!(by_type[0]["type"], "C0032");
    let other = server.get(&format!("/api/v1/persons/{person}/documents?facility={OTHER_HOSPITAL}"), Some(&commission));
    assert_eq!(other.items().len(), 0);
    let later = server.get(&format!("/api/v1/persons/{person}/documents?from=2024-03-02T00:00:00Z"), Some(&commission));
    assert_eq!(later.items().len(), 0);
    let bad = server.get(&format!("/api/v1/persons/{person}/documents?from=yesterday"), Some(&commission));
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["errors"][0]["field"], "from");
    // The EHR indexes every document.
    let ehr = server.get(&format!("/api/v1/persons/{person}/ehr"), Some(&commission)).items();
    assert_eq!(ehr.iter().filter(|e| e["kind"] == "document").count(), types.len());
    assert_eq!(counts(&server, &commission)["documents"], types.len());
}

fn bad_documents_are_refused_and_change_nothing(backend: Backend) {
    let Some((_node, server, commission, hospital)) = start(backend) else { return };
    let good = render(&doc("C0002", "GOOD-1", 103), Style::Plain);
    let text = String::from_utf8(good.clone()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not XML", b"MSH|^~\\&|not xml".to_vec(), "/"),
        ("binary", vec![0u8, 159, 146, 150, 255, 0, 1], "/"),
        ("wrong namespace", text.replace("urn:hl7-org:v3", "urn:example:other").into_bytes(), "/ClinicalDocument"),
        (
            "unknown type",
            text.replace("code=\"C0002\"", "code=\"C9999\"").replace("2.16.156.10011.2.1.1.22", "1.2.3").into_bytes(),
            "/ClinicalDocument/code",
        ),
        (
            "missing section",
            remove_section(&text, "10154-3").into_bytes(),
            "/ClinicalDocument/component/structuredBody",
        ),
        (
            "invalid date",
            text.replace("<effectiveTime value=\"20240301120000\"/>", "<effectiveTime value=\"2024-13-45\"/>")
                .into_bytes(),
            "/ClinicalDocument/effectiveTime",
        ),
        (
            "future date",
            text.replace("<effectiveTime value=\"20240301120000\"/>", "<effectiveTime value=\"20990101\"/>")
                .into_bytes(),
            "/ClinicalDocument/effectiveTime",
        ),
        (
            "bad citizen ID",
            text.replace(&citizen_id(103), &corrupt(&citizen_id(103))).into_bytes(),
            "/ClinicalDocument/recordTarget/patientRole/id",
        ),
        ("no patient", cut(&text, "<recordTarget>", "</recordTarget>").into_bytes(), "/ClinicalDocument/recordTarget"),
        ("billion laughs", billion_laughs(), "/"),
        (
            "external entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
                &text[text.find("<ClinicalDocument").unwrap()..]
            )
            .into_bytes(),
            "/",
        ),
        (
            "another hospital's document",
            text.replace(HOSPITAL, OTHER_HOSPITAL).into_bytes(),
            "/ClinicalDocument/custodian",
        ),
    ];
    for (name, body, path) in cases {
        let answer = post(&server, Some(&hospital), &body);
        assert_eq!(answer.status, 422, "{name}: {}", answer.text);
        assert_eq!(answer.content_type, "application/problem+json", "{name}");
        let problem = answer.json();
        let fields: Vec<String> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_string()).collect();
        assert!(fields.iter().any(|f| f.starts_with(path)), "{name}: expected a problem at {path}, got {fields:?}");
        assert!(problem["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
    }
    // A 200 MB document is refused from its declared length, before its body is read.
    let mut stream = std::net::TcpStream::connect(server.api.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hospital}\r\nContent-Type: application/xml\r\nContent-Length: 209715200\r\n\r\n<?xml"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let read = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..read]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    // Only a hospital submits; nothing above was stored, and the node still serves.
    assert_eq!(post(&server, Some(&commission), &good).status, 403);
    assert_eq!(post(&server, None, &good).status, 401);
    let totals = counts(&server, &commission);
    assert_eq!((totals["documents"].as_i64(), totals["persons"].as_i64()), (Some(0), Some(0)), "{totals}");
    assert_eq!(post(&server, Some(&hospital), &good).status, 201);
    // Every refusal is in the submission archive with its problems; the stored one too.
    let archive = server.get("/api/v1/submissions?limit=100", Some(&commission)).items();
    let refused: Vec<&Value> = archive.iter().filter(|s| s["kind"] == "cda" && s["outcome"] == "AE").collect();
    assert_eq!(refused.len(), 12, "{archive:?}");
    assert!(refused.iter().all(|s| !s["errors"].as_array().unwrap().is_empty()));
    assert_eq!(archive.iter().filter(|s| s["kind"] == "cda" && s["outcome"] == "AA").count(), 1);
    assert_eq!(counts(&server, &commission)["submissions_rejected"], 12);
}

fn resubmission_and_new_versions(backend: Backend) {
    let Some((node, server, commission, hospital)) = start(backend) else { return };
    let first = render(&doc("C0053", "DS-1", 105), Style::Plain);
    let stored = post(&server, Some(&hospital), &first);
    assert_eq!(stored.status, 201, "{}", stored.text);
    let old_id = stored.json()["id"].as_str().unwrap().to_string();
    // The same document again is recognised, not stored twice.
    let again = post(&server, Some(&hospital), &first);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["id"], old_id.as_str());
    // Other content under the same id is a conflict.
    let changed = String::from_utf8(first.clone()).unwrap().replace("无特殊", "有变化");
    assert_eq!(post(&server, Some(&hospital), changed.as_bytes()).status, 409);
    // A new version replaces the old one, which stays retrievable.
    let mut second = doc("C0053", "DS-2", 105);
    second.replaces = Some("DS-1".into());
    let body = render(&second, Style::Prefixed);
    let replaced = post(&server, Some(&hospital), &body);
    assert_eq!(replaced.status, 201, "{}", replaced.text);
    assert_eq!(replaced.json()["supersedes"], old_id.as_str());
    let person = person_of(&server, &commission, &citizen_id(105));
    let current = server.get(&format!("/api/v1/persons/{person}/documents"), Some(&commission)).items();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], replaced.json()["id"]);
    let all =
        server.get(&format!("/api/v1/persons/{person}/documents?include_superseded=true"), Some(&commission)).items();
    assert_eq!(all.len(), 2);
    let old = server.get(&format!("/api/v1/documents/{old_id}"), Some(&commission)).json();
    assert_eq!(old["status"], "superseded");
    let (_, _, bytes) = get_bytes(&server, &format!("/api/v1/documents/{old_id}"), &commission, "application/xml");
    assert_eq!(bytes, first);
    // Entries of the old version give way to the new one's (not counted twice).
    let observations = server.get(&format!("/api/v1/persons/{person}/observations"), Some(&commission)).items();
    assert_eq!(observations.iter().filter(|o| o["code"] == "14749-6").count(), 1, "{observations:?}");
    // The same new document posted four times at once is stored once; every copy gets a success.
    let twin = render(&doc("C0002", "TWIN-1", 111), Style::Plain);
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..4).map(|_| scope.spawn(|| post(&server, Some(&hospital), &twin).status)).collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert_eq!(answers.iter().filter(|s| **s == 201).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|s| *s == 201 || *s == 200), "{answers:?}");
    let twin_person = person_of(&server, &commission, &citizen_id(111));
    assert_eq!(server.get(&format!("/api/v1/persons/{twin_person}/documents"), Some(&commission)).items().len(), 1);
    // A hospital reads documents of its own patients only.
    let other = node.token("hospital_system", &["--facility", OTHER_HOSPITAL]);
    assert_eq!(server.get(&format!("/api/v1/documents/{old_id}"), Some(&other)).status, 403);
    assert_eq!(server.get("/api/v1/documents/00000000-0000-7000-8000-000000000000", Some(&commission)).status, 403);
}

fn generated_documents_round_trip(backend: Backend) {
    let Some((_node, server, commission, _hospital)) = start(backend) else { return };
    // An inpatient stay arrives as HL7 v2 over MLLP.
    let citizen = citizen_id(107);
    let message = format!(
        "MSH|^~\\&|HIS|{HOSPITAL}|RHIP|330106|20240301083000||ADT^A01^ADT_A01|RT-1|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|A01|20240301083000\r\
         PID|1||RT0001^^^{HOSPITAL}^MR~{citizen}^^^CHN^NNCHN||测试^往返||19750309|M|||文三路1号^^杭州市^浙江省^310000^CHN^H^^330106||13900002222\r\
         PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||ZY-RT-1|||||||||||||||||||||||||20240301080000\r\
         DG1|1||J18.9^肺炎^ICD10||20240301|A\r"
    );
    let mut mllp = Mllp::connect(server.mllp.as_deref().unwrap());
    assert_eq!(mllp.send(message.as_bytes()).code(), "AA");
    let result = format!(
        "MSH|^~\\&|LIS|{HOSPITAL}|RHIP|330106|20240302090000||ORU^R01^ORU_R01|RT-2|P|2.5|||AL|NE||UNICODE UTF-8\r\
         PID|1||RT0001^^^{HOSPITAL}^MR~{citizen}^^^CHN^NNCHN||测试^往返||19750309|M\r\
         PV1|1|I|内科^301^2||||||||||||||||ZY-RT-1\r\
         OBR|1||LAB-1|CBC^血常规^L|||20240302080000\r\
         OBX|1|NM|6690-2^白细胞计数^LN||12.3|10*9/L|3.5-9.5|H|||F|||20240302080000\r"
    );
    assert_eq!(mllp.send(result.as_bytes()).code(), "AA");
    let person = person_of(&server, &commission, &citizen);
    let encounters = server.get(&format!("/api/v1/persons/{person}/encounters"), Some(&commission)).items();
    let encounter = encounters[0]["id"].as_str().unwrap().to_string();
    let (status, content_type, emr) =
        get_bytes(&server, &format!("/api/v1/encounters/{encounter}/document.xml"), &commission, "application/xml");
    assert_eq!((status, content_type.as_str()), (200, "application/xml"), "{}", String::from_utf8_lossy(&emr));
    let (status, _, summary) = get_bytes(&server, &format!("/api/v1/persons/{person}/summary.xml"), &commission, "*/*");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&summary));
    // Both validate against the CDA schema and RHIP's own templates.
    for (name, bytes) in [("emr", &emr), ("summary", &summary)] {
        let document = rhip_cda::read(bytes, &rhip_cda::Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let problems = rhip_cda::validate(&document, chrono::Utc::now().date_naive());
        assert!(problems.is_empty(), "{name}: {problems:?}");
        schema_valid(name, bytes);
    }
    // Re-ingested by another node, the EMR document gives the same data.
    let Some(second) = NodeDir::init("330106", backend) else { return };
    second.add_facility(HOSPITAL, "330106");
    let other = second.start();
    let hospital = second.token("hospital_system", &["--facility", HOSPITAL]);
    let answer = post(&other, Some(&hospital), &emr);
    assert_eq!(answer.status, 201, "{}", answer.text);
    let token = second.token("commission", &[]);
    let copy = person_of(&other, &token, &citizen);
    let (a, b) = (
        server.get(&format!("/api/v1/persons/{person}"), Some(&commission)).json(),
        other.get(&format!("/api/v1/persons/{copy}"), Some(&token)).json(),
    );
    for field in ["name", "sex", "birth_date", "home_region", "address_region"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    let copied = other.get(&format!("/api/v1/persons/{copy}/encounters"), Some(&token)).items();
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0]["visit_number"], encounters[0]["visit_number"]);
    assert_eq!(copied[0]["encounter_type"], "inpatient");
    let codes = |e: &Value| {
        let mut codes: Vec<String> =
            e["diagnoses"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap().to_string()).collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(&copied[0]), codes(&encounters[0]));
    let results = |n: &Node, t: &str, p: &str| {
        let mut r: Vec<(String, String, String)> = n
            .get(&format!("/api/v1/persons/{p}/observations"), Some(t))
            .items()
            .iter()
            .map(|o| (o["code"].to_string(), o["value"].to_string(), o["unit"].to_string()))
            .collect();
        r.sort();
        r
    };
    assert_eq!(results(&other, &token, &copy), results(&server, &commission, &person));
}

fn schema_valid(name: &str, bytes: &[u8]) {
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/cda/infrastructure/cda/CDA.xsd");
    if std::process::Command::new("xmllint").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but xmllint is absent");
        eprintln!("SKIPPED schema check of {name}: xmllint absent");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.xml"));
    std::fs::write(&file, bytes).unwrap();
    let output =
        std::process::Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(&file).output().unwrap();
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
}

fn remove_section(text: &str, loinc: &str) -> String {
    let marker = format!("<code code=\"{loinc}\"");
    let at = text.find(&marker).unwrap();
    let start = text[..at].rfind("<component>").unwrap();
    let end = at + text[at..].find("</component>").unwrap() + "</component>".len();
    format!("{}{}", &text[..start], &text[end..])
}

fn cut(text: &str, open: &str, close: &str) -> String {
    let start = text.find(open).unwrap();
    let end = text.find(close).unwrap() + close.len();
    format!("{}{}", &text[..start], &text[end..])
}

fn corrupt(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == '1' { '2' } else { '1' };
    chars.into_iter().collect()
}

fn billion_laughs() -> Vec<u8> {
    let mut entities = String::from("<!ENTITY a0 \"lol\">");
    for level in 1..10 {
        entities.push_str(&format!("<!ENTITY a{level} \"{}\">", format!("&a{};", level - 1).repeat(10)));
    }
    format!("<?xml version=\"1.0\"?><!DOCTYPE ClinicalDocument [{entities}]><ClinicalDocument xmlns=\"urn:hl7-org:v3\">&a9;</ClinicalDocument>").into_bytes()
}
