//! Consent on the read paths: what of one person's record a caller sees
//! ([`Lens`]), decided in the read's own transaction by the rule of
//! [`rhip_core::consent_verdict`], so every handler, the federated document
//! fetch and the exports withhold the same items.

use crate::principal::Principal;
use crate::state::AppState;
use rhip_core::{consent_verdict, ConsentCategory, RegionCode, Role, Verdict, Viewer};
use rhip_federation::Links;
use rhip_store::{
    DiagnosisRecord, DocumentIndexRecord, EhrEntryRecord, EncounterRecord, MedicationRecord, ObservationRecord,
    StoreError, Tx,
};
use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};

/// Whether this node is a person's home county node: where a consent that
/// keeps a category at home still shows it.
#[derive(Clone, Debug)]
pub struct Home {
    me: RegionCode,
    links: Option<Links>,
}

impl Home {
    /// This node, as the application state describes it.
    pub fn of(state: &AppState) -> Home {
        Home { me: state.region, links: state.federation.as_ref().map(|f| f.links()) }
    }

    /// A node with these federation links (the holder of a fetched document).
    pub fn with_links(links: Links) -> Home {
        Home { me: links.me, links: Some(links) }
    }

    /// Whether a person whose home is `home_region` is at home here: this is
    /// the node where their records end their way down (without federation,
    /// the node whose region holds the home region).
    pub fn is_home(&self, home_region: &str) -> bool {
        match &self.links {
            Some(links) => rhip_federation::is_destination(links, home_region),
            None => RegionCode::parse(home_region)
                .or_else(|_| RegionCode::parse_historical(home_region))
                .is_ok_and(|home| self.me.contains(&home)),
        }
    }
}

/// The user a federated document fetch is made for.
pub fn on_behalf_of(principal: &Principal, node: RegionCode) -> crate::federation::context::OnBehalfOf {
    let staff = matches!(principal.claims.role, Role::Clinician | Role::HospitalSystem);
    crate::federation::context::OnBehalfOf {
        user: principal.describe(),
        facility: staff.then(|| principal.claims.facility.clone().unwrap_or_default()),
        break_glass: principal.break_glass.clone(),
        node: Some(node),
    }
}

/// The consent viewer a caller is.
pub fn viewer(principal: &Principal) -> Viewer {
    match principal.claims.role {
        Role::Resident => Viewer::Subject,
        Role::Clinician | Role::HospitalSystem => Viewer::Staff {
            facility: principal.claims.facility.clone().unwrap_or_default(),
            break_glass: principal.break_glass.is_some(),
        },
        Role::Commission | Role::Auditor | Role::NodeAdmin => Viewer::Authority,
    }
}

/// What one viewer sees of one person's record: the items withheld by the
/// person's consent, and the categories shown only because the glass was
/// broken.
#[derive(Clone, Debug, Default)]
pub struct Lens {
    encounters: HashSet<String>,
    documents: HashSet<String>,
    diagnoses: HashSet<String>,
    /// Categories withheld from this viewer.
    pub withheld: BTreeSet<ConsentCategory>,
    /// Categories shown because a clinician broke the glass (to be audited
    /// as `consent_override`).
    pub overridden: BTreeSet<ConsentCategory>,
    refused: Cell<bool>,
}

impl Lens {
    /// The lens of `viewer` on `person`'s record at a node that is
    /// (`at_home`) or is not the person's home county node.
    pub fn read(tx: &mut Tx<'_>, person: &str, viewer: &Viewer, at_home: bool) -> Result<Lens, StoreError> {
        let mut lens = Lens::default();
        if *viewer == Viewer::Subject {
            return Ok(lens);
        }
        let restrictions = tx.restrictions_for(person)?;
        if restrictions.is_empty() {
            return Ok(lens);
        }
        for item in tx.sensitive_items(person)? {
            let Some(rule) = restrictions.get(&item.category) else { continue };
            match consent_verdict(*rule, item.recorded_by.as_deref(), viewer, at_home) {
                Verdict::Show => {}
                Verdict::Override => {
                    lens.overridden.insert(item.category);
                }
                Verdict::Withhold => {
                    lens.withheld.insert(item.category);
                    lens.diagnoses.insert(item.diagnosis_id);
                    lens.encounters.extend(item.encounter_id);
                    lens.documents.extend(item.document_ids);
                }
            }
        }
        Ok(lens)
    }

    /// Marks the whole read as refused: the one item asked for is withheld.
    /// The read is then audited as denied and answered with
    /// [`withheld_error`].
    pub fn refuse(&self) {
        self.refused.set(true);
    }

    /// Whether [`Lens::refuse`] was called.
    pub fn refused(&self) -> bool {
        self.refused.get()
    }

    /// Nothing withheld and nothing overridden.
    pub fn is_clear(&self) -> bool {
        self.withheld.is_empty() && self.overridden.is_empty()
    }

    /// How many encounters, documents and diagnoses are withheld (for the
    /// `X-RHIP-Consent-Withheld` header, so a clinician knows to ask).
    pub fn withheld_count(&self) -> usize {
        self.encounters.len() + self.documents.len() + self.diagnoses.len()
    }

    /// What the audit entry of the read notes: the categories overridden and
    /// withheld.
    pub fn audit_note(&self) -> Option<String> {
        let names = |set: &BTreeSet<ConsentCategory>| set.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
        let mut parts = Vec::new();
        if !self.overridden.is_empty() {
            parts.push(format!("consent_override: {}", names(&self.overridden)));
        }
        if !self.withheld.is_empty() {
            parts.push(format!("withheld by consent: {}", names(&self.withheld)));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Whether something linked to an encounter and/or a document is shown.
    pub fn shows_linked(&self, encounter: Option<&str>, document: Option<&str>) -> bool {
        !encounter.is_some_and(|e| self.encounters.contains(e)) && !document.is_some_and(|d| self.documents.contains(d))
    }

    /// Whether an encounter is shown.
    pub fn shows_encounter(&self, id: &str) -> bool {
        !self.encounters.contains(id)
    }

    /// Whether a document is shown.
    pub fn shows_document(&self, document: &DocumentIndexRecord) -> bool {
        !self.documents.contains(&document.id) && self.shows_linked(document.encounter_id.as_deref(), None)
    }

    /// Keeps the encounters shown.
    pub fn encounters(&self, list: Vec<EncounterRecord>) -> Vec<EncounterRecord> {
        list.into_iter().filter(|e| self.shows_encounter(&e.id)).collect()
    }

    /// Keeps the diagnoses shown.
    pub fn diagnoses(&self, list: Vec<DiagnosisRecord>) -> Vec<DiagnosisRecord> {
        list.into_iter()
            .filter(|d| {
                !self.diagnoses.contains(&d.id)
                    && self.shows_linked(d.encounter_id.as_deref(), d.document_id.as_deref())
            })
            .collect()
    }

    /// Keeps the documents shown.
    pub fn documents(&self, list: Vec<DocumentIndexRecord>) -> Vec<DocumentIndexRecord> {
        list.into_iter().filter(|d| self.shows_document(d)).collect()
    }

    /// Keeps the EHR entries shown.
    pub fn ehr_entries(&self, list: Vec<EhrEntryRecord>) -> Vec<EhrEntryRecord> {
        list.into_iter().filter(|e| self.shows_linked(e.encounter_id.as_deref(), e.document_id.as_deref())).collect()
    }

    /// Keeps the results shown.
    pub fn observations(&self, list: Vec<ObservationRecord>) -> Vec<ObservationRecord> {
        list.into_iter().filter(|o| self.shows_linked(o.encounter_id.as_deref(), o.document_id.as_deref())).collect()
    }

    /// Keeps the medications shown.
    pub fn medications(&self, list: Vec<MedicationRecord>) -> Vec<MedicationRecord> {
        list.into_iter().filter(|m| self.shows_linked(m.encounter_id.as_deref(), m.document_id.as_deref())).collect()
    }
}

/// Header that tells a caller how many items of the record consent withheld
/// from them (a clinician may then break the glass, audited).
pub const WITHHELD_HEADER: &str = "X-RHIP-Consent-Withheld";

/// A 200 response that says, when consent withheld something, how much.
pub fn respond(withheld: usize) -> actix_web::HttpResponseBuilder {
    let mut response = actix_web::HttpResponse::Ok();
    if withheld > 0 {
        response.insert_header((WITHHELD_HEADER, withheld.to_string()));
    }
    response
}

/// The answer for one item consent withholds from the caller: 403 naming the
/// reason and the way out, and nothing of the item.
pub fn withheld_error(kind: &str) -> crate::error::ApiError {
    crate::error::ApiError::Forbidden(format!(
        "this {kind} is withheld by the resident's consent; a clinician in an emergency may break the glass \
         ({}: <reason>), which is audited and shown to the resident",
        crate::principal::BREAK_GLASS_HEADER
    ))
}
