//! Hostile and broken input: every case is refused with a problem that names where and
//! what, and nothing panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::prelude::*;
use rhip_cda::write::ehr_summary;
use rhip_cda::{read, Limits, Rejected};

/// Reads and expects a refusal.
fn refused(bytes: &[u8]) -> Rejected {
    match read(bytes, &Limits::default()) {
        Ok(document) => panic!("accepted: {document:?}"),
        Err(rejected) => {
            assert!(!rejected.problems.is_empty());
            rejected
        }
    }
}

/// A minimal ClinicalDocument around `inner`.
fn minimal(inner: &str) -> String {
    format!("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"1.2.3\"/>{inner}</ClinicalDocument>")
}

#[test]
fn billion_laughs_is_refused_for_its_doctype() {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    xml.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for level in 2..=9 {
        let previous = format!("&lol{};", level - 1);
        xml.push_str(&format!("<!ENTITY lol{level} \"{}\">\n", previous.repeat(10)));
    }
    xml.push_str("]>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>&lol9;</title></ClinicalDocument>");
    let rejected = refused(xml.as_bytes());
    assert_eq!(rejected.problems[0].path, "/");
    assert!(rejected.problems[0].expected.contains("no DOCTYPE"), "{rejected}");
}

#[test]
fn external_entity_is_refused() {
    let xml = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
               <ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>&x;</title></ClinicalDocument>";
    let rejected = refused(xml.as_bytes());
    assert!(rejected.problems[0].expected.contains("no DOCTYPE"), "{rejected}");
    // Without the DOCTYPE the reference is an unknown entity, and refused as such.
    let rejected = refused(minimal("<title>&x;</title>").as_bytes());
    assert_eq!(rejected.problems[0].path, "/ClinicalDocument/title");
    assert!(rejected.problems[0].expected.contains("five XML entities"), "{rejected}");
}

#[test]
fn predefined_entities_and_character_references_are_fine() {
    let document =
        read(minimal("<title>&lt;&#27979;&#x8BD5;&amp;&quot;&apos;&gt;</title>").as_bytes(), &Limits::default())
            .unwrap();
    assert_eq!(document.title.as_deref(), Some("<测试&\"'>"));
}

#[test]
fn two_hundred_megabytes_are_refused_by_size_before_parsing() {
    let mut bytes = minimal("").into_bytes();
    bytes.resize(200 * 1024 * 1024, b' ');
    let rejected = refused(&bytes);
    assert_eq!(rejected.problems[0].path, "/");
    assert!(rejected.problems[0].expected.contains("not parsed"), "{rejected}");
    // A tighter limit applies the same way.
    let small = Limits { max_bytes: 10, ..Limits::default() };
    assert!(read(minimal("").as_bytes(), &small).is_err());
}

#[test]
fn depth_bomb_is_refused_at_the_depth_limit() {
    let xml = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    let rejected = refused(xml.as_bytes());
    assert!(rejected.problems[0].expected.contains("nested at most 256 deep"), "{}", rejected.problems[0].expected);
    assert_eq!(rejected.problems[0].path.matches('/').count(), 257, "the path of the first element too deep");
}

#[test]
fn ten_thousand_attributes_are_refused() {
    let attributes: String = (0..10_000).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let xml = format!("<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id{attributes}/></ClinicalDocument>");
    let rejected = refused(xml.as_bytes());
    assert_eq!(rejected.problems[0].path, "/ClinicalDocument/id");
    assert!(rejected.problems[0].expected.contains("at most 64 attributes"), "{rejected}");
}

#[test]
fn element_count_is_limited() {
    let limits = Limits { max_elements: 10, ..Limits::default() };
    let xml = minimal(&"<templateId root=\"1\"/>".repeat(20));
    let rejected = read(xml.as_bytes(), &limits).unwrap_err();
    assert!(rejected.problems[0].expected.contains("at most 10 elements"), "{rejected}");
}

#[test]
fn not_xml_is_refused() {
    for input in ["hello world", "{\"resourceType\": \"Patient\"}", "MSH|^~\\&|A|B\r", ""] {
        let rejected = refused(input.as_bytes());
        assert_eq!(rejected.problems[0].path, "/", "{input}: {rejected}");
    }
}

#[test]
fn binary_garbage_is_refused() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let rejected = refused(&garbage);
    assert!(rejected.problems[0].expected.contains("UTF-8"), "{rejected}");
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend_from_slice(&garbage);
    refused(&pdf);
}

#[test]
fn truncated_document_is_refused_at_the_open_element() {
    let bytes = ehr_summary(&support::summary());
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
        let rejected = refused(&bytes[..cut]);
        assert!(rejected.problems[0].path.starts_with("/ClinicalDocument"), "{rejected}");
    }
    let rejected = refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><title>x");
    assert_eq!(rejected.problems[0].path, "/ClinicalDocument/title");
    assert!(rejected.problems[0].expected.contains("truncated"), "{rejected}");
}

#[test]
fn wrong_root_or_namespace_is_refused() {
    let rejected = refused(b"<documentationOf xmlns=\"urn:hl7-org:v3\"/>");
    assert_eq!(rejected.problems[0].path, "/documentationOf");
    let rejected = refused(b"<ClinicalDocument xmlns=\"urn:hl7-org:v2\"/>");
    assert_eq!(rejected.problems[0].path, "/ClinicalDocument");
    assert!(rejected.problems[0].expected.contains("found urn:hl7-org:v2"), "{rejected}");
    let rejected = refused(b"<ClinicalDocument/>");
    assert!(rejected.problems[0].expected.contains("found no namespace"), "{rejected}");
    // A prefixed root in the right namespace is fine.
    read(
        b"<cda:ClinicalDocument xmlns:cda=\"urn:hl7-org:v3\"><cda:title>t</cda:title></cda:ClinicalDocument>",
        &Limits::default(),
    )
    .unwrap();
}

#[test]
fn gb18030_document_is_decoded() {
    let text = "<?xml version=\"1.0\" encoding=\"GB18030\"?>\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\
                <title>门(急)诊病历</title><recordTarget><patientRole><id root=\"2.16.156.10011.1.2\" extension=\"1\"/>\
                <patient><name>测试㐀𠀀</name></patient></patientRole></recordTarget></ClinicalDocument>";
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
    assert!(!unmappable);
    let document = read(&bytes, &Limits::default()).unwrap();
    assert_eq!(document.title.as_deref(), Some("门(急)诊病历"));
    assert_eq!(document.patient.unwrap().name.unwrap().text, "测试㐀𠀀");
    for label in ["GBK", "gb2312"] {
        let relabelled = text.replace("GB18030", label);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&relabelled);
        assert_eq!(read(&bytes, &Limits::default()).unwrap().title.as_deref(), Some("门(急)诊病历"));
    }
    // The same bytes declared as UTF-8 are not UTF-8.
    let wrong = text.replace("GB18030", "UTF-8");
    let (bytes, _, _) = encoding_rs::GB18030.encode(&wrong);
    assert!(refused(&bytes).problems[0].expected.contains("UTF-8"));
}

#[test]
fn unknown_encoding_is_refused() {
    let rejected =
        refused(b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>");
    assert!(rejected.problems[0].expected.contains("'shift_jis'"), "{rejected}");
}

#[test]
fn utf8_with_bom_is_read() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend(ehr_summary(&support::summary()));
    let document = read(&bytes, &Limits::default()).unwrap();
    assert_eq!(document.patient.unwrap().name.unwrap().text, "测试甲");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_documents_never_panic(position in 0usize..10_000, length in 0usize..64, byte in any::<u8>()) {
        let mut bytes = ehr_summary(&support::summary());
        let start = position % bytes.len();
        let end = (start + length).min(bytes.len());
        for slot in &mut bytes[start..end] {
            *slot = byte;
        }
        if let Ok(document) = read(&bytes, &Limits::default()) {
            let _ = rhip_cda::validate(&document, support::today());
        }
    }
}
