//! `rhip demo`: one county node (Xihu, 330106) on the embedded SQLite in a
//! folder, seeded with synthetic residents, facilities, encounters, EHR
//! entries and a document, serving its API, with ready tokens and a curl line
//! that works. `--once` runs the checks below through the real HTTP API,
//! prints a summary table and exits 0 only if every check passed.

use super::init::initialise;
use super::token::{mint, TokenRequest};
use crate::cli::DemoArgs;
use crate::Failure;
use anyhow::Context;
use chrono::{Duration, NaiveDate};
use rhip_core::{
    CitizenId, EhrEntryKind, EncounterType, FacilityCode, FacilityKind, Identifier, PersonDemographics, RegionCode,
    Role, Sex,
};
use rhip_server::{Application, Settings};
use rhip_store::{NewDocument, NewEhrEntry, NewEncounter, NewFacility, NewPerson, Store};

/// The demo county: Xihu district, Hangzhou, Zhejiang.
const DEMO_REGION: &str = "330106";
/// A neighbouring county, for a non-resident patient.
const NEIGHBOUR_REGION: &str = "330108";
const HOSPITAL: &str = "H330106001";
const CLINIC: &str = "C330106002";

const SURNAMES: &str = include_str!("../../../../schemas/reference/surnames_zh_cn.csv");
const GIVEN_NAMES: &str = include_str!("../../../../schemas/reference/given_names_zh_cn.csv");

/// Runs `rhip demo`.
pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    let (dir, _temporary) = match &args.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temporary =
                tempfile::Builder::new().prefix("rhip-demo-").tempdir().context("create a temporary folder")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let region = RegionCode::parse(DEMO_REGION).map_err(|e| Failure::Runtime(e.into()))?;
    let config = dir.join("node.toml");
    if !config.exists() {
        initialise(region, &dir, args.db.as_deref(), None)?;
    }
    let settings = Settings::load(&config)?;
    let store = super::open_store(&settings)?;
    let seeded = seed(&store)?;
    drop(store);
    let commission = token(&settings, Role::Commission, None)?;
    let auditor = token(&settings, Role::Auditor, None)?;
    let resident = token(&settings, Role::Resident, Some(seeded.resident.clone()))?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        let api = app.api_url();
        print_guide(&dir, &api, &seeded, &commission, &auditor, &resident);
        if let Some(mllp) = app.mllp_address() {
            println!();
            println!("HL7 v2 (MLLP) for facility {HOSPITAL}: rhip hl7 send --to {mllp} FILE...");
        }
        if !args.once {
            app.run().await?;
            return Ok(());
        }
        let handle = app.handle();
        let server = actix_web::rt::spawn(app.run());
        let tokens = Tokens { commission, auditor, resident };
        let checks =
            tokio::task::spawn_blocking(move || run_checks(&api, &tokens, &seeded)).await.context("run checks")?;
        handle.stop(true).await;
        server.await.context("server task")??;
        print_summary(&checks);
        if checks.iter().all(|c| c.passed) {
            Ok(())
        } else {
            Err(Failure::Runtime(anyhow::anyhow!(
                "{} of {} demo checks failed",
                checks.iter().filter(|c| !c.passed).count(),
                checks.len()
            )))
        }
    })
}

fn token(settings: &Settings, role: Role, person: Option<String>) -> Result<String, Failure> {
    mint(
        settings,
        &TokenRequest {
            role,
            region: None,
            facility: None,
            person,
            ttl: std::time::Duration::from_secs(24 * 3600),
            sub: Some(format!("demo-{role}")),
        },
    )
}

/// What the seed made, for the guide and the checks.
struct Seeded {
    persons: usize,
    residents_here: usize,
    resident: String,
    other_person: String,
    resident_id_number: String,
}

/// Adds the sample data once (a second run on the same folder reuses it).
fn seed(store: &Store) -> Result<Seeded, Failure> {
    let region = store.region();
    let neighbour = RegionCode::parse(NEIGHBOUR_REGION).map_err(|e| Failure::Runtime(e.into()))?;
    let surnames: Vec<&str> = SURNAMES.lines().skip(1).filter_map(|l| l.split(',').nth(1)).take(40).collect();
    let given: Vec<(&str, &str)> = GIVEN_NAMES.lines().skip(1).filter_map(|l| l.split_once(',')).collect();
    let result = store.write(|tx| {
        let existing =
            tx.find_persons(&rhip_store::Scope::Node, &rhip_store::PersonQuery { limit: 1000, ..Default::default() })?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        for (code, name, kind) in [
            (HOSPITAL, "西湖区示范人民医院（演示）", FacilityKind::Hospital),
            (CLINIC, "西湖区示范社区卫生服务中心（演示）", FacilityKind::CommunityHealthCentre),
        ] {
            let code = FacilityCode::parse(code).map_err(|e| rhip_store::StoreError::Corrupt(e.to_string()))?;
            tx.insert_facility(&NewFacility { code, name: name.into(), kind, region })?;
        }
        let mut created = Vec::new();
        for n in 0..8u16 {
            let male = n % 2 == 0;
            let home = if n == 7 { neighbour } else { region };
            let birth = NaiveDate::from_ymd_opt(1950 + i32::from(n) * 9, 1 + u32::from(n % 12), 3 + u32::from(n))
                .unwrap_or_default();
            // Sequence parity decides sex in GB 11643: odd for men.
            let id = CitizenId::generate(home, birth, 100 + n * 2 + u16::from(male));
            let given_name = given
                .iter()
                .filter(|(_, sex)| *sex == if male { "male" } else { "female" })
                .nth(usize::from(n) * 3)
                .map_or("明", |(name, _)| name);
            let name = format!("{}{}", surnames.get(usize::from(n) * 5).unwrap_or(&"王"), given_name);
            let demographics = PersonDemographics {
                name,
                sex: if male { Sex::Male } else { Sex::Female },
                birth_date: Some(birth),
                id_number: Some(id),
                ethnicity: None,
                marital_status: None,
                phone: Some(format!("1390000{:04}", 1000 + n)),
                address_region: Some(home),
                address_line: Some(format!("示范路{}号（演示地址）", 10 + n)),
                identifiers: vec![Identifier {
                    system: HOSPITAL.into(),
                    value: format!("MRN{:06}", 1000 + n),
                    type_code: Some("MR".into()),
                }],
            };
            let person =
                tx.insert_person(&NewPerson { non_resident: home != region, home_region: home, demographics })?;
            let start = chrono::Utc::now().naive_utc() - Duration::days(i64::from(n) * 30 + 3);
            let encounter = tx.insert_encounter(&NewEncounter {
                person_id: person.id.clone(),
                facility_code: HOSPITAL.into(),
                visit_number: format!("V{:08}", 5000 + n),
                encounter_type: EncounterType::Outpatient,
                status: "finished".into(),
                admitted_at: Some(start),
                discharged_at: Some(start + Duration::hours(2)),
                department: Some("全科".into()),
                location: None,
                prior_location: None,
                attending: None,
                admit_reason: None,
            })?;
            tx.insert_ehr_entry(&NewEhrEntry {
                person_id: person.id.clone(),
                kind: EhrEntryKind::Encounter,
                occurred_at: start,
                facility_code: Some(HOSPITAL.into()),
                summary: "门诊就诊 全科".into(),
                encounter_id: Some(encounter.id.clone()),
                document_id: None,
            })?;
            if n == 0 {
                let xml = sample_document(&person.id, &start.format("%Y%m%d%H%M%S").to_string());
                let document = tx.insert_document(&NewDocument {
                    person_id: Some(person.id.clone()),
                    encounter_id: Some(encounter.id.clone()),
                    type_code: "C0002".into(),
                    title: "门(急)诊病历".into(),
                    effective_at: start,
                    author_facility: Some(HOSPITAL.into()),
                    custodian: Some(HOSPITAL.into()),
                    confidentiality: "N".into(),
                    content_type: "application/xml".into(),
                    type_system: Some(rhip_core::OID_DOCUMENT_TYPE_CODE_SYSTEM.into()),
                    kind: "emr".into(),
                    content: xml.into_bytes(),
                    ..NewDocument::default()
                })?;
                tx.insert_ehr_entry(&NewEhrEntry {
                    person_id: person.id.clone(),
                    kind: EhrEntryKind::Document,
                    occurred_at: start + Duration::hours(1),
                    facility_code: Some(HOSPITAL.into()),
                    summary: "门(急)诊病历".into(),
                    encounter_id: Some(encounter.id.clone()),
                    document_id: Some(document.id.clone()),
                })?;
            }
            created.push(person);
        }
        Ok(created)
    });
    let persons = result.map_err(|e| Failure::Runtime(e.into()))?;
    let first = persons.first().ok_or_else(|| Failure::Runtime(anyhow::anyhow!("demo seed made no persons")))?;
    let other = persons.get(1).unwrap_or(first);
    Ok(Seeded {
        persons: persons.len(),
        residents_here: persons.iter().filter(|p| p.home_region == region.as_str()).count(),
        resident: first.id.clone(),
        other_person: other.id.clone(),
        resident_id_number: first.id_number.clone().unwrap_or_default(),
    })
}

/// A small synthetic outpatient note in CDA R2 shape (demo data only).
fn sample_document(person: &str, time: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <templateId root="2.16.156.10011.2.1.1.22"/>
  <id root="2.16.156.10011.1.1" extension="DEMO-{person}"/>
  <code code="C0002" codeSystem="2.16.156.10011.2.4" displayName="门(急)诊病历"/>
  <title>门(急)诊病历（演示）</title>
  <effectiveTime value="{time}"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
</ClinicalDocument>
"#
    )
}

fn print_guide(dir: &std::path::Path, api: &str, seeded: &Seeded, commission: &str, auditor: &str, resident: &str) {
    println!("RHIP demo: county node {DEMO_REGION} (Xihu district, Hangzhou) in {}", dir.display());
    println!("  API        {api}   (OpenAPI {api}/api/openapi.json, health {api}/healthz, metrics {api}/metrics)");
    println!(
        "  Data       {} synthetic persons ({} resident here), 2 facilities, encounters, EHR entries, 1 document",
        seeded.persons, seeded.residents_here
    );
    println!();
    println!("Try (a county commission searching its residents):");
    println!("  curl -H 'Authorization: Bearer {commission}' '{api}/api/v1/persons?home_region={DEMO_REGION}'");
    println!();
    println!("Tokens (valid 24h):");
    println!("  commission {commission}");
    println!("  auditor    {auditor}");
    println!("  resident   {resident}");
    println!("             (EMPI {}; try {api}/api/v1/me/ehr and {api}/api/v1/me/access-log)", seeded.resident);
}

struct Tokens {
    commission: String,
    auditor: String,
    resident: String,
}

struct Check {
    name: &'static str,
    passed: bool,
    detail: String,
}

fn run_checks(api: &str, tokens: &Tokens, seeded: &Seeded) -> Vec<Check> {
    let get = |path: &str, token: Option<&str>| -> (u16, serde_json::Value) {
        let mut request = ureq::get(&format!("{api}{path}"));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        match request.call() {
            Ok(response) => (response.status(), response.into_json().unwrap_or_default()),
            Err(ureq::Error::Status(status, response)) => (status, response.into_json().unwrap_or_default()),
            Err(error) => (0, serde_json::json!({ "error": error.to_string() })),
        }
    };
    let count = |body: &serde_json::Value| body["items"].as_array().map_or(0, Vec::len);
    let mut checks = Vec::new();
    let mut check = |name, passed, detail: String| checks.push(Check { name, passed, detail });

    let (status, body) = get("/healthz", None);
    check(
        "node answers /healthz",
        status == 200 && body["region"] == DEMO_REGION,
        format!("{status} {}", body["tier"]),
    );

    let (status, body) = get(&format!("/api/v1/persons?home_region={DEMO_REGION}"), Some(&tokens.commission));
    check(
        "commission finds its county's residents",
        status == 200 && count(&body) == seeded.residents_here,
        format!("{status}, {} of {} persons", count(&body), seeded.residents_here),
    );

    let (status, body) =
        get(&format!("/api/v1/persons?id_number={}", seeded.resident_id_number), Some(&tokens.commission));
    check(
        "search by citizen ID finds one person",
        status == 200 && count(&body) == 1,
        format!("{status}, {} found", count(&body)),
    );

    let (status, body) = get("/api/v1/persons?id_number=330106199901011234", Some(&tokens.commission));
    check("an invalid citizen ID is refused with 422", status == 422, format!("{status} {}", body["detail"]));

    let (status, body) = get("/api/v1/me/ehr", Some(&tokens.resident));
    check("resident reads own EHR", status == 200 && count(&body) > 0, format!("{status}, {} entries", count(&body)));

    let (status, _) = get(&format!("/api/v1/persons/{}", seeded.other_person), Some(&tokens.resident));
    check("resident is refused another person's record", status == 403, format!("{status}"));

    let (status, _) = get("/api/v1/persons", Some("forged.token.value"));
    check("a forged token is refused with 401", status == 401, format!("{status}"));

    let (status, body) = get("/api/v1/me/access-log", Some(&tokens.resident));
    let commission_seen = body["items"].as_array().is_some_and(|items| items.iter().any(|e| e["role"] == "commission"));
    check(
        "resident sees the commission's access in the log",
        status == 200 && commission_seen,
        format!("{status}, {} entries", count(&body)),
    );

    let (status, body) = get("/api/v1/audit?outcome=denied", Some(&tokens.auditor));
    check(
        "auditor sees refused accesses",
        status == 200 && count(&body) >= 2,
        format!("{status}, {} denied entries", count(&body)),
    );
    checks
}

fn print_summary(checks: &[Check]) {
    println!();
    println!("{:<52} {:<6} detail", "check", "result");
    for c in checks {
        println!("{:<52} {:<6} {}", c.name, if c.passed { "PASS" } else { "FAIL" }, c.detail);
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    println!("{passed}/{} checks passed", checks.len());
}
