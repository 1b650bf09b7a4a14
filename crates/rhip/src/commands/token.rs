//! `rhip token`: mint a JWT signed by the node, after checking that what it
//! names exists (a registered facility, a known person) and lies within the
//! node's jurisdiction.

use crate::cli::TokenArgs;
use crate::Failure;
use rhip_auth::claims::AUDIENCE;
use rhip_auth::Claims;
use rhip_core::{RegionCode, Role};
use rhip_server::Settings;
use rhip_store::{Access, Scope};

/// Runs `rhip token`.
pub fn run(args: &TokenArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let role = Role::parse(&args.role).map_err(|e| Failure::usage(format!("--role: {e}")))?;
    let ttl = humantime::parse_duration(&args.ttl).map_err(|e| Failure::usage(format!("--ttl: {e}")))?;
    let request = TokenRequest {
        role,
        region: args.region.clone(),
        facility: args.facility.clone(),
        person: args.person.clone(),
        ttl,
        sub: args.sub.clone(),
    };
    println!("{}", mint(&settings, &request)?);
    Ok(())
}

/// What to put in a token.
pub struct TokenRequest {
    /// Role.
    pub role: Role,
    /// Region of authority.
    pub region: Option<String>,
    /// Facility code.
    pub facility: Option<String>,
    /// EMPI id.
    pub person: Option<String>,
    /// Lifetime.
    pub ttl: std::time::Duration,
    /// Subject.
    pub sub: Option<String>,
}

/// Checks a request against the node and signs it.
pub fn mint(settings: &Settings, request: &TokenRequest) -> Result<String, Failure> {
    let node = settings.node.region;
    if request.ttl > settings.max_token_ttl() {
        return Err(Failure::usage(format!("--ttl: longer than auth.max_token_ttl ({})", settings.auth.max_token_ttl)));
    }
    if request.ttl.is_zero() {
        return Err(Failure::usage("--ttl: must be longer than zero"));
    }
    let role = request.role;
    let region = match (&request.region, role) {
        (Some(region), _) => {
            let region = RegionCode::parse(region).map_err(|e| Failure::usage(format!("--region: {e}")))?;
            if !node.contains(&region) {
                return Err(Failure::usage(format!(
                    "--region: {region} lies outside this node's jurisdiction ({node})"
                )));
            }
            Some(region)
        }
        (None, Role::Commission | Role::Auditor | Role::NodeAdmin) => Some(node),
        (None, _) => None,
    };
    let needs_facility = matches!(role, Role::Clinician | Role::HospitalSystem);
    let needs_person = role == Role::Resident;
    match (&request.facility, needs_facility) {
        (None, true) => return Err(Failure::usage(format!("--facility is required for role {role}"))),
        (Some(_), false) => return Err(Failure::usage(format!("--facility does not apply to role {role}"))),
        _ => {}
    }
    match (&request.person, needs_person) {
        (None, true) => return Err(Failure::usage("--person is required for role resident")),
        (Some(_), false) => return Err(Failure::usage(format!("--person does not apply to role {role}"))),
        _ => {}
    }
    if needs_facility || needs_person {
        check_subject_exists(settings, request)?;
    }
    let key = rhip_server::load_key(settings)?;
    let sub = request.sub.clone().unwrap_or_else(|| match (&request.facility, &request.person) {
        (Some(facility), _) => format!("{role}@{facility}"),
        (_, Some(person)) => format!("resident:{person}"),
        _ => format!("{role}@{}", region.unwrap_or(node)),
    });
    let claims = claims(node, sub, role, region, request.facility.as_deref(), request.person.as_deref(), request.ttl);
    key.mint(&claims).map_err(|e| Failure::usage(e.to_string()))
}

/// The claims of a token issued by `node` now and valid for `ttl`, with a
/// fresh id; the one place that fills them in (`rhip token`, the demo and
/// the benchmarks sign what it returns).
pub fn claims(
    node: RegionCode,
    sub: String,
    role: Role,
    region: Option<RegionCode>,
    facility: Option<&str>,
    person: Option<&str>,
    ttl: std::time::Duration,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub,
        role,
        region: region.map(|r| r.as_str().to_string()),
        facility: facility.map(str::to_string),
        person: person.map(str::to_string),
        iss: node.as_str().to_string(),
        aud: AUDIENCE.to_string(),
        iat: now,
        exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        jti: rhip_core::new_id().to_string(),
    }
}

fn check_subject_exists(settings: &Settings, request: &TokenRequest) -> Result<(), Failure> {
    let store = super::open_store(settings)?;
    if let Some(code) = &request.facility {
        let found = store.read(|tx| tx.get_facility(code)).map_err(|e| Failure::Runtime(e.into()))?;
        if found.is_none() {
            return Err(Failure::usage(format!(
                "--facility: {code} is not registered at this node (rhip facility add)"
            )));
        }
    }
    if let Some(person) = &request.person {
        if uuid::Uuid::parse_str(person).is_err() {
            return Err(Failure::usage(format!("--person: {person:?} is not an EMPI id (UUID)")));
        }
        let found = store.read(|tx| tx.get_person(&Scope::Node, person)).map_err(|e| Failure::Runtime(e.into()))?;
        if !matches!(found, Access::Granted(_)) {
            return Err(Failure::usage(format!("--person: no person {person} at this node")));
        }
    }
    Ok(())
}
