//! The user roles of DESIGN §7.
//!
//! Roles travel inside JWTs and CLI arguments as snake_case words; the permission table
//! that gives them meaning lives in the auth crate, so this module only fixes the names.

use crate::names::named_enum;

/// A role word that is not one of the six roles.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RoleError {
    /// The text is not a role name.
    #[error("{found:?} is not a role; expected one of: {expected}")]
    Unknown {
        /// The text that was received.
        found: String,
        /// The accepted role names, comma-separated.
        expected: String,
    },
}

named_enum! {
    /// Who a user or system is, for authorization. Scope (own record, facility, region)
    /// comes from the token's other claims.
    pub enum Role {
        /// A resident: sees their own record and who accessed it.
        Resident => "resident",
        /// A clinician at a registered facility.
        Clinician => "clinician",
        /// A hospital information system submitting data for its facility.
        HospitalSystem => "hospital_system",
        /// Health-commission staff: their region and everything below it.
        Commission => "commission",
        /// An auditor: reads the audit log.
        Auditor => "auditor",
        /// An operator of the node itself.
        NodeAdmin => "node_admin",
    }
    error: RoleError, |found, expected| RoleError::Unknown { found, expected }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        assert_eq!(Role::ALL.len(), 6);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert_eq!(Role::HospitalSystem.as_str(), "hospital_system");
        assert_eq!(Role::parse("Node-Admin"), Ok(Role::NodeAdmin));
    }

    #[test]
    fn unknown_role_names_the_choices() {
        let error = Role::parse("doctor").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("\"doctor\" is not a role; expected one of: resident, clinician, hospital_system, commission, auditor, node_admin")
        );
    }

    #[test]
    fn serde_uses_the_snake_case_names() {
        use serde::de::{value::Error, IntoDeserializer};
        let role: Result<Role, Error> = serde::Deserialize::deserialize("node_admin".into_deserializer());
        assert_eq!(role, Ok(Role::NodeAdmin));
        let bad: Result<Role, Error> = serde::Deserialize::deserialize("root".into_deserializer());
        assert!(bad.is_err());
    }
}
