//! Versioned value domains published by the national node (DESIGN §6:
//! reference data flows down). A version is stored once per node; the one
//! with the newest hybrid-logical-clock stamp is in force for its domain,
//! and validation uses it. Publishing appends a change that the routing
//! rules send to every child.

use crate::conn::Direct;
use crate::schema::value_domain_versions;
use crate::{StoreError, Tx};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One code of a published version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedEntry {
    /// The code.
    pub code: String,
    /// Its Chinese name.
    pub name_zh: String,
    /// The enclosing code in hierarchical domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A version to publish (national node only).
#[derive(Clone, Debug)]
pub struct NewValueDomainVersion {
    /// Domain identifier, e.g. `GB/T 2261.2` or `CV02.01.101`.
    pub domain: String,
    /// Version label, e.g. `2026.1`.
    pub version: String,
    /// The domain's name.
    pub name: String,
    /// Its codes.
    pub entries: Vec<PublishedEntry>,
}

/// A stored version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = value_domain_versions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ValueDomainVersion {
    /// Domain identifier.
    pub domain: String,
    /// Version label.
    pub version: String,
    /// The domain's name.
    pub name: String,
    /// The codes as JSON (`[{code, name_zh, parent}]`).
    pub entries: String,
    /// Region of the node that published it (the national node).
    pub published_by: String,
    /// When it was published.
    pub published_at: NaiveDateTime,
    /// HLC stamp of the publication; the newest is in force.
    pub hlc: String,
    /// When this node stored it.
    pub received_at: NaiveDateTime,
}

impl ValueDomainVersion {
    /// The codes of this version.
    pub fn codes(&self) -> Result<Vec<PublishedEntry>, StoreError> {
        serde_json::from_str(&self.entries).map_err(|e| StoreError::Corrupt(format!("value domain entries: {e}")))
    }
}

/// The version of a domain in force here, as a code set for validators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldDomain {
    /// Version label.
    pub version: String,
    /// Its codes.
    pub codes: HashSet<String>,
}

/// The versions in force, by domain; cached by the store (see
/// [`Tx::held_value_domain`]).
pub type HeldDomains = HashMap<String, Arc<HeldDomain>>;

impl Tx<'_> {
    /// Publishes a version (the caller checks this is the national node) and
    /// records the change that carries it to every child.
    pub fn publish_value_domain(&mut self, new: &NewValueDomainVersion) -> Result<ValueDomainVersion, StoreError> {
        let now = crate::now();
        let record = ValueDomainVersion {
            domain: new.domain.clone(),
            version: new.version.clone(),
            name: new.name.clone(),
            entries: serde_json::to_string(&new.entries).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            published_by: self.node_region().as_str().to_string(),
            published_at: now,
            hlc: self.tick().encode(),
            received_at: now,
        };
        diesel::insert_into(value_domain_versions::table).values(&record).run(self.conn).map_err(|e| {
            match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("version {} of {} is already published", new.version, new.domain))
                }
                other => other,
            }
        })?;
        self.forget_held_domains();
        let payload = serde_json::to_value(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = format!("{}@{}", record.domain, record.version);
        self.record_change("value_domain", &id, "publish", None, &record.hlc, &payload)?;
        Ok(record)
    }

    /// Stores a version received from the parent; a version already held is
    /// left as it is.
    pub(crate) fn store_value_domain(&mut self, record: &ValueDomainVersion) -> Result<(), StoreError> {
        let mut row = record.clone();
        row.received_at = crate::now();
        let exists: i64 =
            value_domain_versions::table.find((&record.domain, &record.version)).count().fetch_one(self.conn)?;
        if exists == 0 {
            diesel::insert_into(value_domain_versions::table).values(&row).run(self.conn)?;
            self.forget_held_domains();
        }
        Ok(())
    }

    /// The version of each domain in force here (newest HLC per domain).
    pub fn current_value_domains(&mut self) -> Result<Vec<ValueDomainVersion>, StoreError> {
        let all: Vec<ValueDomainVersion> = value_domain_versions::table
            .order((value_domain_versions::domain.asc(), value_domain_versions::hlc.desc()))
            .select(ValueDomainVersion::as_select())
            .load(self.conn)?;
        let mut current: Vec<ValueDomainVersion> = Vec::new();
        for version in all {
            if current.last().is_none_or(|last| last.domain != version.domain) {
                current.push(version);
            }
        }
        Ok(current)
    }

    /// The version of `domain` in force here, for validation; `None` when
    /// the node holds no published version (the embedded table applies).
    /// Read through a per-process cache refreshed every ten seconds and
    /// whenever this process stores a version, so the ingest path pays no
    /// query per message.
    pub fn held_value_domain(&mut self, domain: &str) -> Result<Option<Arc<HeldDomain>>, StoreError> {
        {
            let cache = self.inner.held_domains.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((loaded, domains)) = cache.as_ref() {
                if loaded.elapsed() < std::time::Duration::from_secs(10) {
                    return Ok(domains.get(domain).cloned());
                }
            }
        }
        let mut domains = HeldDomains::new();
        for version in self.current_value_domains()? {
            let codes = version.codes()?.into_iter().map(|entry| entry.code).collect();
            domains.insert(version.domain.clone(), Arc::new(HeldDomain { version: version.version, codes }));
        }
        let found = domains.get(domain).cloned();
        *self.inner.held_domains.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), domains));
        Ok(found)
    }

    fn forget_held_domains(&mut self) {
        *self.inner.held_domains.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
