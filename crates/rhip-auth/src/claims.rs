//! What a token says about its bearer.

use rhip_core::{RegionCode, Role};
use serde::{Deserialize, Serialize};

/// Audience every RHIP user token carries.
pub const AUDIENCE: &str = "rhip";

/// Registered and private claims of an RHIP user token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: user name or operator-chosen id.
    pub sub: String,
    /// Role the bearer acts in.
    pub role: Role,
    /// Region of authority (commissions and auditors see its subtree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Facility of clinicians and hospital systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<String>,
    /// EMPI id of a resident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Region of the node that issued the token.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Token id, for revocation and audit.
    pub jti: String,
}

/// A token whose claims do not fit its role.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimsError {
    /// A role needs a claim that is missing.
    #[error("role {role} needs a {claim} claim")]
    Missing {
        /// The role.
        role: Role,
        /// The missing claim.
        claim: &'static str,
    },
    /// A claim is malformed.
    #[error("claim {claim}: {message}")]
    Invalid {
        /// The claim.
        claim: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Claims {
    /// Checks that the role-specific claims are present and well formed:
    /// commissions and auditors carry a region, clinicians and hospital
    /// systems a facility, residents a person.
    pub fn check_shape(&self) -> Result<(), ClaimsError> {
        let role = self.role;
        if let Some(region) = &self.region {
            RegionCode::parse(region).map_err(|e| ClaimsError::Invalid { claim: "region", message: e.to_string() })?;
        }
        match role {
            Role::Commission | Role::Auditor | Role::NodeAdmin if self.region.is_none() => {
                Err(ClaimsError::Missing { role, claim: "region" })
            }
            Role::Clinician | Role::HospitalSystem if self.facility.is_none() => {
                Err(ClaimsError::Missing { role, claim: "facility" })
            }
            Role::Resident => match &self.person {
                None => Err(ClaimsError::Missing { role, claim: "person" }),
                Some(person) => uuid::Uuid::parse_str(person).map(|_| ()).map_err(|_| ClaimsError::Invalid {
                    claim: "person",
                    message: format!("{person:?} is not an EMPI id (UUID)"),
                }),
            },
            _ => Ok(()),
        }
    }

    /// The region of authority, parsed.
    pub fn region_code(&self) -> Option<RegionCode> {
        self.region.as_deref().and_then(|r| RegionCode::parse(r).ok())
    }
}
