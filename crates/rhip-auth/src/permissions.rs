//! The permission table: which role may do what (DESIGN §7).
//!
//! Scope (which records) is separate from permission (which actions): a
//! commission may read persons, but only those of its region subtree.

use rhip_core::Role;

/// Actions guarded by the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Search and read persons (DID).
    ReadPersons,
    /// Read a person's EHR index.
    ReadEhr,
    /// Read document index entries and documents.
    ReadDocuments,
    /// Read one's own record (`/api/v1/me...`).
    ReadOwnRecord,
    /// Change one's own password (`/auth/password`).
    ManageOwnAccount,
    /// Restrict sensitive categories of one's own record (`/api/v1/me/consent`).
    ManageOwnConsent,
    /// List facilities.
    ReadFacilities,
    /// Register facilities.
    WriteFacilities,
    /// Read the audit log.
    ReadAudit,
    /// Submit HL7 messages and documents for one's facility.
    SubmitRecords,
    /// List received submissions (a hospital its own, a commission its region's).
    ReadSubmissions,
    /// Read counts of a region.
    ReadStats,
    /// Read the node's federation link status.
    ReadFederation,
    /// Read the value domains in force (reference data, not personal).
    ReadReference,
    /// Take a de-identified export of a region's residents (statistics and
    /// research; pseudonyms, generalised, k-anonymous).
    ExportDeidentified,
}

/// Whether `role` may perform `permission` (within its scope).
pub fn permits(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        ReadPersons | ReadEhr | ReadDocuments => {
            matches!(role, Commission | Clinician | HospitalSystem | Resident)
        }
        ReadOwnRecord | ManageOwnAccount | ManageOwnConsent => matches!(role, Resident),
        ReadFacilities => matches!(role, Commission | Auditor | NodeAdmin | HospitalSystem | Clinician),
        WriteFacilities => matches!(role, NodeAdmin),
        ReadAudit => matches!(role, Auditor),
        SubmitRecords => matches!(role, HospitalSystem),
        ReadSubmissions => matches!(role, HospitalSystem | Commission | NodeAdmin),
        ReadStats => matches!(role, Commission),
        ReadFederation => matches!(role, Commission | NodeAdmin | Auditor),
        ReadReference => true,
        ExportDeidentified => matches!(role, Commission),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_admins_register_facilities() {
        for role in Role::ALL {
            assert_eq!(permits(role, Permission::WriteFacilities), role == Role::NodeAdmin, "{role}");
        }
    }

    #[test]
    fn only_commissions_take_de_identified_exports() {
        for role in Role::ALL {
            assert_eq!(permits(role, Permission::ExportDeidentified), role == Role::Commission, "{role}");
        }
    }

    #[test]
    fn auditors_read_the_log_but_not_records() {
        assert!(permits(Role::Auditor, Permission::ReadAudit));
        assert!(!permits(Role::Auditor, Permission::ReadPersons));
        assert!(!permits(Role::Commission, Permission::ReadAudit));
        assert!(!permits(Role::NodeAdmin, Permission::ReadPersons));
    }
}
