//! Retention policies: what a node keeps of each class of data (DESIGN §6).
//!
//! Upper tiers need to find records, not hold every byte: the national node keeps the
//! whole person index but only an index of health records and documents, and fetches
//! the rest from the holder on demand. The policy of a node decides what it stores, and
//! the policy of its parent decides what it forwards upward ([`crate::routing`]).
//!
//! What `index` means per class:
//! - **DID** (persons): the person records (demographics, identifiers, home region,
//!   merges) without their details (allergies, contacts, insurance).
//! - **EHR**: EHR entries are already an index (kind, date, facility, a pointer to the
//!   source record), so `index` keeps them as they are.
//! - **EMR**: encounters and document index entries without the document bytes; the
//!   bytes stay with the nodes that keep EMR in `full` and are fetched from there.
//!
//! Registry data (facilities) and reference data (value domains) are always kept in full.

use rhip_core::Tier;
use serde::{Deserialize, Serialize};

/// A class of data with its own retention rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataClass {
    /// The person index (DID): persons and their details.
    Did,
    /// Health-record index entries (EHRD).
    Ehr,
    /// Medical records (EMRD): encounters, documents and what is extracted from them.
    Emr,
    /// The facility registry; every node above a facility knows it.
    Registry,
    /// Value domains and code tables, published downward by the national node, and
    /// the trust every descendant needs: nodes' token-signing keys and revoked tokens.
    Reference,
    /// Audit entries about a person, recorded away from the person's home: they
    /// travel to the home node (so the resident's access log is complete) and are
    /// kept there only ([`crate::routing::is_destination`]); nodes on the way forward
    /// them without keeping them.
    Audit,
}

impl DataClass {
    /// The class of a change's `entity`; `None` for an entity this version does not know.
    ///
    /// The person details are accepted both by their short names (`contact`, `coverage`)
    /// and by the outbox's table-like names (`person_contact`, `person_coverage`);
    /// `medication` (extracted from documents) is EMR.
    pub fn of(entity: &str) -> Option<DataClass> {
        Some(match entity {
            "person" | "allergy" | "contact" | "person_contact" | "coverage" | "person_coverage" => DataClass::Did,
            "ehr_entry" => DataClass::Ehr,
            "encounter" | "document" | "medication" | "diagnosis" | "observation" => DataClass::Emr,
            "facility" => DataClass::Registry,
            "value_domain" | "issuer_key" | "token_revocation" | "consent" => DataClass::Reference,
            "audit_entry" => DataClass::Audit,
            _ => return None,
        })
    }
}

/// Whether an entity is a person detail, which a DID `index` leaves out.
fn is_person_detail(entity: &str) -> bool {
    matches!(entity, "allergy" | "contact" | "person_contact" | "coverage" | "person_coverage")
}

/// How much of a class a node keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// Everything, document bytes included.
    Full,
    /// Metadata and pointers for federated retrieval (see the module docs per class).
    Index,
    /// Nothing of the class.
    None,
}

/// Serde default of a policy field that a configuration leaves out.
fn keep_full() -> Keep {
    Keep::Full
}

/// What a node keeps of the classes whose retention varies by tier. Registry and
/// reference data are always kept in full and have no field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// The person index. Default when left out of a configuration: `full`.
    #[serde(default = "keep_full")]
    pub did: Keep,
    /// Health-record index entries. Default when left out: `full`.
    #[serde(default = "keep_full")]
    pub ehr: Keep,
    /// Medical records and documents. Default when left out: `full`.
    #[serde(default = "keep_full")]
    pub emr: Keep,
}

/// A configuration's changes to its tier's default policy: only the classes it names
/// (`[retention] emr = "full"`), the rest as [`RetentionPolicy::default_for`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOverride {
    /// The person index, if not the tier's default.
    #[serde(default)]
    pub did: Option<Keep>,
    /// Health-record index entries, if not the tier's default.
    #[serde(default)]
    pub ehr: Option<Keep>,
    /// Medical records and documents, if not the tier's default.
    #[serde(default)]
    pub emr: Option<Keep>,
}

impl RetentionPolicy {
    /// The policy of a tier when its configuration says nothing: the national node keeps
    /// the full person index and an index of EHR and EMR; provincial, municipal and
    /// county nodes keep everything of their jurisdiction.
    pub fn default_for(tier: Tier) -> RetentionPolicy {
        match tier {
            Tier::National => RetentionPolicy { did: Keep::Full, ehr: Keep::Index, emr: Keep::Index },
            Tier::Provincial | Tier::Municipal | Tier::County => {
                RetentionPolicy { did: Keep::Full, ehr: Keep::Full, emr: Keep::Full }
            }
        }
    }

    /// This policy with a configuration's overrides applied.
    pub fn with(self, overrides: RetentionOverride) -> RetentionPolicy {
        RetentionPolicy {
            did: overrides.did.unwrap_or(self.did),
            ehr: overrides.ehr.unwrap_or(self.ehr),
            emr: overrides.emr.unwrap_or(self.emr),
        }
    }

    /// How much of `class` this policy keeps (registry and reference data: always full).
    pub fn keep(&self, class: DataClass) -> Keep {
        match class {
            DataClass::Did => self.did,
            DataClass::Ehr => self.ehr,
            DataClass::Emr => self.emr,
            DataClass::Registry | DataClass::Reference => Keep::Full,
            // Kept by the person's home node whatever its policy, and by no other:
            // the receiver decides with `routing::is_destination`.
            DataClass::Audit => Keep::None,
        }
    }

    /// What a node with this policy does with one change of `entity`, spelled out per
    /// entity from [`keep`](Self::keep) and the meaning of `index`:
    /// [`Keep::Full`] stores it as it is, [`Keep::Index`] stores it without document
    /// bytes (documents under an EMR `index`), [`Keep::None`] does not store it (any
    /// class kept `none`, person details under a DID `index`, unknown entities).
    pub fn keep_entity(&self, entity: &str) -> Keep {
        let Some(class) = DataClass::of(entity) else {
            return Keep::None;
        };
        match (class, self.keep(class)) {
            (_, Keep::None) => Keep::None,
            (DataClass::Did, Keep::Index) if is_person_detail(entity) => Keep::None,
            (DataClass::Emr, Keep::Index) if entity == "document" => Keep::Index,
            _ => Keep::Full,
        }
    }

    /// Whether a node with this policy wants changes of `entity` at all.
    pub fn wants(&self, entity: &str) -> bool {
        self.keep_entity(entity) != Keep::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_have_classes() {
        for (entity, class) in [
            ("person", DataClass::Did),
            ("allergy", DataClass::Did),
            ("contact", DataClass::Did),
            ("person_contact", DataClass::Did),
            ("coverage", DataClass::Did),
            ("person_coverage", DataClass::Did),
            ("ehr_entry", DataClass::Ehr),
            ("encounter", DataClass::Emr),
            ("document", DataClass::Emr),
            ("medication", DataClass::Emr),
            ("facility", DataClass::Registry),
            ("value_domain", DataClass::Reference),
            ("audit_entry", DataClass::Audit),
            ("issuer_key", DataClass::Reference),
            ("token_revocation", DataClass::Reference),
            ("consent", DataClass::Reference),
        ] {
            assert_eq!(DataClass::of(entity), Some(class), "{entity}");
        }
        assert_eq!(DataClass::of("Person"), None);
        assert_eq!(DataClass::of(""), None);
    }

    #[test]
    fn tiers_have_default_policies() {
        let national = RetentionPolicy::default_for(Tier::National);
        assert_eq!((national.did, national.ehr, national.emr), (Keep::Full, Keep::Index, Keep::Index));
        for tier in [Tier::Provincial, Tier::Municipal, Tier::County] {
            let policy = RetentionPolicy::default_for(tier);
            assert_eq!((policy.did, policy.ehr, policy.emr), (Keep::Full, Keep::Full, Keep::Full));
        }
        let none = RetentionPolicy { did: Keep::None, ehr: Keep::None, emr: Keep::None };
        assert_eq!(none.keep(DataClass::Registry), Keep::Full);
        assert_eq!(none.keep(DataClass::Reference), Keep::Full);
    }

    #[test]
    fn index_means_different_things_per_class() {
        let index = RetentionPolicy { did: Keep::Index, ehr: Keep::Index, emr: Keep::Index };
        assert_eq!(index.keep_entity("person"), Keep::Full);
        assert_eq!(index.keep_entity("allergy"), Keep::None);
        assert_eq!(index.keep_entity("person_contact"), Keep::None);
        assert_eq!(index.keep_entity("coverage"), Keep::None);
        assert_eq!(index.keep_entity("ehr_entry"), Keep::Full);
        assert_eq!(index.keep_entity("encounter"), Keep::Full);
        assert_eq!(index.keep_entity("document"), Keep::Index);
        assert_eq!(index.keep_entity("facility"), Keep::Full);
        assert_eq!(index.keep_entity("unknown"), Keep::None);
        let nothing = RetentionPolicy { did: Keep::Full, ehr: Keep::None, emr: Keep::None };
        assert!(!nothing.wants("document") && !nothing.wants("ehr_entry") && nothing.wants("allergy"));
        assert_eq!(RetentionPolicy::default_for(Tier::County).keep_entity("document"), Keep::Full);
    }

    #[test]
    fn configuration_text_reads_lowercase_and_overrides_some_classes() {
        let policy: RetentionPolicy = serde_json::from_str(r#"{"emr": "index"}"#).unwrap();
        assert_eq!(policy, RetentionPolicy { did: Keep::Full, ehr: Keep::Full, emr: Keep::Index });
        assert_eq!(serde_json::to_string(&Keep::None).unwrap(), "\"none\"");
        assert!(serde_json::from_str::<RetentionPolicy>(r#"{"emr": "partial"}"#).is_err());
        assert!(serde_json::from_str::<RetentionPolicy>(r#"{"emd": "full"}"#).is_err());
        let overrides: RetentionOverride = serde_json::from_str(r#"{"emr": "full"}"#).unwrap();
        let national = RetentionPolicy::default_for(Tier::National).with(overrides);
        assert_eq!(national, RetentionPolicy { did: Keep::Full, ehr: Keep::Index, emr: Keep::Full });
    }
}
