//! Real-world CDA R2 documents from the shared corpus (HL7 samples and C-CDA examples):
//! reading must never panic, must succeed for every well-formed `ClinicalDocument`, and
//! validation must refuse them as unknown (US LOINC) document types at `/ClinicalDocument/code`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chrono::NaiveDate;
use rhip_cda::{read, validate, Body, Limits};

/// The shared corpus, next to the workspace; absent on users' machines.
fn corpus() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus"));
    if path.is_dir() {
        Some(path)
    } else {
        println!("skipped: corpus absent ({})", path.display());
        None
    }
}

/// Every `.xml` file of the CDA corpus, sorted.
fn documents(corpus: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["cda/hl7-cda-core", "cda/c-cda-examples"] {
        for entry in std::fs::read_dir(corpus.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "xml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_corpus_document_reads_and_fails_validation_as_an_unknown_type() {
    let Some(corpus) = corpus() else { return };
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let files = documents(&corpus);
    assert!(files.len() >= 20);
    let mut read_ok = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let result = read(&bytes, &Limits::default());
        if name == "Header_Care_Team_Transition.xml" {
            let rejected = result.expect_err("a fragment with root <documentationOf> must be refused");
            assert_eq!(rejected.problems[0].path, "/documentationOf", "{rejected}");
            assert!(rejected.problems[0].expected.contains("root element ClinicalDocument"));
            continue;
        }
        let document = result.unwrap_or_else(|rejected| panic!("{name}: {rejected}"));
        read_ok += 1;
        assert!(document.id.is_some(), "{name}");
        let problems = validate(&document, today);
        assert!(
            problems
                .iter()
                .any(|p| p.path == "/ClinicalDocument/code" && p.expected.contains("registered document type")),
            "{name}: {problems:?}"
        );
    }
    assert_eq!(read_ok, files.len() - 1);
}

#[test]
fn ccd_entries_are_extracted() {
    let Some(corpus) = corpus() else { return };
    let bytes = std::fs::read(corpus.join("cda/c-cda-examples/CCD_1.xml")).unwrap();
    let document = read(&bytes, &Limits::default()).unwrap();
    let patient = document.patient.as_ref().unwrap();
    assert!(!patient.ids.is_empty());
    let name = patient.name.as_ref().unwrap();
    assert!(!name.family.is_empty() && !name.given.is_empty(), "{name:?}");
    assert!(patient.gender.as_ref().and_then(|g| g.code.as_deref()).is_some());
    assert!(patient.birth_time.as_ref().and_then(|t| t.value).is_some());
    assert!(!document.authors.is_empty());
    assert!(document.custodian.is_some());
    assert!(document.all_sections().len() >= 5);
    assert!(!document.observations().is_empty());
    assert!(!document.medications().is_empty());
    assert!(!document.immunizations().is_empty());
    for observation in document.observations() {
        assert!(observation.path.starts_with("/ClinicalDocument/component/structuredBody/component"));
    }
}

#[test]
fn related_documents_and_non_xml_bodies() {
    let Some(corpus) = corpus() else { return };
    let folder = corpus.join("cda/c-cda-examples");
    let replace =
        read(&std::fs::read(folder.join("CCD_Parent_Document_Replace_RPLC.xml")).unwrap(), &Limits::default()).unwrap();
    let related = &replace.related_documents[0];
    assert_eq!(related.type_code, "RPLC");
    assert!(!related.parent_ids.is_empty());
    assert!(related.parent_set_id.is_some());

    let embedded =
        read(&std::fs::read(folder.join("Unstructured_embedded_PDF_1.xml")).unwrap(), &Limits::default()).unwrap();
    match &embedded.body {
        Body::NonXml(body) => {
            assert_eq!(body.media_type.as_deref(), Some("application/pdf"));
            assert_eq!(body.representation.as_deref(), Some("B64"));
            assert!(body.embedded_size > 100_000);
        }
        other => panic!("expected a nonXMLBody, got {other:?}"),
    }
    let referenced =
        read(&std::fs::read(folder.join("Unstructured_reference_PDF.xml")).unwrap(), &Limits::default()).unwrap();
    match &referenced.body {
        Body::NonXml(body) => assert_eq!(body.reference.as_deref(), Some("UD_sample.pdf")),
        other => panic!("expected a nonXMLBody, got {other:?}"),
    }
}
