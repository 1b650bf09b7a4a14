//! `rhip person import`: load demographics (for example an initial extract of
//! a county's population register) into the DID. The file is checked whole
//! first; one bad line stops the import with its line and field named, and
//! nothing is written.

use crate::cli::{PersonImportArgs, PersonUnmergeArgs};
use crate::Failure;
use anyhow::Context;
use rhip_core::{
    home_region_for, CitizenId, Ethnicity, Identifier, MaritalStatus, PersonDemographics, RegionCode, Sex,
};
use rhip_store::{NewAuditEntry, NewPerson, StoreError};
use serde::Deserialize;

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    name: String,
    sex: Option<String>,
    birth_date: Option<String>,
    id_number: Option<String>,
    ethnicity: Option<String>,
    marital_status: Option<String>,
    phone: Option<String>,
    address_region: Option<String>,
    address_line: Option<String>,
    home_region: Option<String>,
    #[serde(default)]
    identifiers: Vec<Identifier>,
}

/// Runs `rhip person import`.
pub fn import(args: &PersonImportArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.file.display())))?;
    let node = settings.node.region;
    let mut persons = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |message: String| Failure::usage(format!("{} line {}: {message}", args.file.display(), index + 1));
        let parsed: ImportLine = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        persons.push(to_new_person(parsed, node).map_err(at)?);
    }
    if persons.is_empty() {
        return Err(Failure::usage(format!("{} holds no persons", args.file.display())));
    }
    let store = super::open_store(&settings)?;
    let created = store
        .write(|tx| {
            let mut created = Vec::with_capacity(persons.len());
            for person in &persons {
                created.push(tx.insert_person(person)?);
            }
            tx.append_audit(&NewAuditEntry {
                actor: super::facility::operator(),
                role: Some("node_admin".into()),
                action: "import".into(),
                resource_type: "person".into(),
                outcome: "success".into(),
                detail: Some(format!("{} persons from {}", created.len(), args.file.display())),
                ..NewAuditEntry::default()
            })?;
            Ok(created)
        })
        .map_err(|e| match e {
            StoreError::Conflict(message) => {
                Failure::Usage(format!("{}: {message}; nothing imported", args.file.display()))
            }
            other => Failure::Runtime(other.into()),
        })?;
    if args.json {
        let ids: Vec<_> =
            created.iter().map(|p| serde_json::json!({"empi_id": p.id, "home_region": p.home_region})).collect();
        println!("{}", serde_json::to_string(&serde_json::json!({ "items": ids })).context("encode")?);
    } else {
        println!("imported {} persons", created.len());
    }
    Ok(())
}

fn to_new_person(line: ImportLine, node: RegionCode) -> Result<NewPerson, String> {
    fn field<T, E: std::fmt::Display>(
        name: &str,
        value: Option<String>,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, String> {
        value.map(|v| parse(&v).map_err(|e| format!("{name}: {e}"))).transpose()
    }
    let id_number = field("id_number", line.id_number, CitizenId::parse)?;
    let sex = field("sex", line.sex, Sex::from_code)?;
    let birth_date = field("birth_date", line.birth_date, |v| {
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| format!("{v:?} is not a date in the form YYYY-MM-DD"))
    })?;
    let address_region = field("address_region", line.address_region, RegionCode::parse)?;
    let home_region = field("home_region", line.home_region, RegionCode::parse)?;
    let demographics = PersonDemographics {
        name: line.name.trim().to_string(),
        // Without a stated sex, the citizen ID's parity tells it.
        sex: sex.or_else(|| id_number.as_ref().map(CitizenId::sex)).unwrap_or(Sex::Unknown),
        birth_date: birth_date.or_else(|| id_number.as_ref().map(CitizenId::birth_date)),
        ethnicity: field("ethnicity", line.ethnicity, Ethnicity::parse)?,
        marital_status: field("marital_status", line.marital_status, MaritalStatus::parse)?,
        phone: line.phone,
        address_region,
        address_line: line.address_line,
        identifiers: line.identifiers,
        id_number,
    };
    demographics.validate().map_err(|errors| {
        errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
    })?;
    let home_region = home_region.unwrap_or_else(|| {
        home_region_for(demographics.address_region.as_ref(), demographics.id_number.as_ref(), &node)
    });
    Ok(NewPerson { non_resident: !node.contains(&home_region), home_region, demographics })
}

/// Undoes a merge and audits it for both persons.
pub fn unmerge(args: &PersonUnmergeArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let store = super::open_store(&settings)?;
    let actor = super::facility::operator();
    let record = store
        .write(|tx| {
            let record = tx.unmerge(&args.merge, &actor)?;
            for person in [&record.merged_id, &record.survivor_id] {
                tx.append_audit(&NewAuditEntry {
                    actor: actor.clone(),
                    role: Some("node_admin".into()),
                    action: "unmerge".into(),
                    resource_type: "person".into(),
                    resource_id: Some(record.id.clone()),
                    person_id: Some(person.clone()),
                    outcome: "success".into(),
                    detail: Some(format!("{} separated from {}", record.merged_id, record.survivor_id)),
                    ..NewAuditEntry::default()
                })?;
            }
            Ok(record)
        })
        .map_err(|e| match e {
            StoreError::NotFound(message) | StoreError::Conflict(message) => {
                Failure::Usage(format!("--merge: {message}"))
            }
            other => Failure::Runtime(other.into()),
        })?;
    println!("merge {} undone: {} is active again, apart from {}", record.id, record.merged_id, record.survivor_id);
    Ok(())
}
