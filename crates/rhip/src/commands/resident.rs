//! `rhip resident enrol-code`: the one-time code a resident registers with.
//!
//! There is no SMS here: the home county's staff print the code and hand it
//! to the resident in person. Only its hash is kept; it works once, for
//! that person's citizen ID, until `auth.enrolment_code_ttl` passes.

use crate::cli::EnrolCodeArgs;
use crate::Failure;
use anyhow::Context;
use rhip_store::{Access, NewAuditEntry, Scope};

/// Letters and digits that cannot be mistaken for one another.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";

/// Characters in a code (about 59 bits), printed in groups of four.
const CODE_CHARS: usize = 12;

/// Issues and prints an enrolment code.
pub fn enrol_code(args: &EnrolCodeArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let node = settings.node.region;
    let person_id = args.person.trim().to_string();
    uuid::Uuid::parse_str(&person_id)
        .map_err(|_| Failure::usage(format!("--person: {person_id:?} is not an EMPI id")))?;
    let code = new_code()?;
    let code_hash = rhip_server::routes::auth::secret_hash(&rhip_server::routes::auth::normalise_code(&code));
    let ttl = chrono::Duration::from_std(settings.auth.enrolment_code_ttl()).context("enrolment code lifetime")?;
    let expires_at = chrono::Utc::now().naive_utc() + ttl;
    let store = super::open_store(&settings)?;
    let issued = store
        .write(|tx| {
            // Looked up anywhere the node holds persons, to say where a visitor's home is.
            let person = match tx.get_person(&Scope::Region(rhip_core::RegionCode::NATIONAL), &person_id)? {
                Access::Granted(person) => person,
                Access::OutOfScope | Access::NotFound => {
                    return Ok(Err(format!("--person: no person {person_id} is known at this node")))
                }
            };
            if person.status != "active" {
                return Ok(Err(format!("--person: person {person_id} is {}, not active", person.status)));
            }
            if person.home_region != node.as_str() {
                return Ok(Err(format!(
                    "--person: {person_id}'s home county is {}; enrolment codes are issued there, not at {node}",
                    person.home_region
                )));
            }
            tx.issue_enrolment_code(&person_id, &code_hash, &super::facility::operator(), expires_at)?;
            tx.append_audit(&NewAuditEntry {
                actor: super::facility::operator(),
                role: Some("node_admin".into()),
                action: "issue_enrolment_code".into(),
                resource_type: "account".into(),
                person_id: Some(person_id.clone()),
                outcome: "success".into(),
                detail: Some("rhip resident enrol-code".into()),
                ..NewAuditEntry::default()
            })?;
            Ok(Ok(()))
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    issued.map_err(Failure::Usage)?;
    let expires = expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if args.json {
        let answer = serde_json::json!({ "person": person_id, "code": code, "expires_at": expires });
        println!("{answer}");
    } else {
        println!("enrolment code for {person_id}: {code} (valid once, until {expires})");
    }
    Ok(())
}

/// A new random code, `XXXX-XXXX-XXXX`.
fn new_code() -> Result<String, Failure> {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut code = String::with_capacity(CODE_CHARS + 2);
    while code.chars().filter(|c| *c != '-').count() < CODE_CHARS {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte).map_err(|_| Failure::Runtime(anyhow::anyhow!("no randomness")))?;
        // Rejection sampling keeps every character equally likely.
        if usize::from(byte[0]) >= 256 - 256 % ALPHABET.len() {
            continue;
        }
        if !code.is_empty() && code.chars().filter(|c| *c != '-').count() % 4 == 0 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
    }
    Ok(code)
}
