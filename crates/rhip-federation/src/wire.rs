//! The change records a batch carries between nodes, and their byte encoding.
//!
//! A [`WireChange`] is one row of a node's outbox (`change_log`) as it travels: the same
//! fields, with the record itself as a JSON object. A batch payload is
//! `{"changes": [...]}` in UTF-8 JSON; its SHA-256 is bound into the signed manifest,
//! so these bytes are what is verified, never a re-encoding of them.
//!
//! A document change may carry the document's bytes in `payload.content_base64`, so the
//! home county and the nodes that keep documents in full get them, while nodes that keep
//! only the index get the change without them ([`WireChange::without_content`]).

use std::cell::Cell;
use std::fmt;

use base64::Engine;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use rhip_core::JsonText;

use crate::retention::DataClass;

/// Most changes accepted in one batch payload unless the caller chooses otherwise.
pub const DEFAULT_MAX_CHANGES: usize = 10_000;

/// Key of a document change's payload that holds the document bytes, standard base64.
pub const CONTENT_KEY: &str = "content_base64";

/// One change as it travels between nodes. Field for field the outbox row, so a node can
/// forward what it received without reinterpreting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireChange {
    /// Federation-wide id of the change; every node applies a change once, whatever path
    /// it took.
    pub id: String,
    /// Hybrid-logical-clock time of the change ([`rhip_core::HlcTimestamp::encode`]).
    pub hlc: String,
    /// Region of the node where the change was made.
    pub origin_region: String,
    /// What changed: `person`, the person details `allergy`, `person_contact`,
    /// `person_coverage`, `encounter`, `ehr_entry`, `document`, `medication`,
    /// `facility`, `value_domain` (see [`DataClass::of`]).
    pub entity: String,
    /// Id of the record that changed (a facility's code for facilities).
    pub entity_id: String,
    /// `create`, `update`, `merge`, `unmerge`, `supersede`, ...
    pub op: String,
    /// The person the change is about, if any.
    pub person_id: Option<String>,
    /// That person's home region, which routing steers toward.
    pub home_region: Option<String>,
    /// The record as a JSON object, kept as the text it came in (forwarded as it is).
    pub payload: JsonText,
}

/// Why payload bytes or a change's content could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a JSON batch of changes of this schema version.
    #[error("batch payload is not a valid list of changes: {0}")]
    Json(String),
    /// More changes than the receiver accepts in one batch.
    #[error("batch payload holds more than {limit} changes, the most accepted in one batch")]
    TooMany {
        /// The limit that was passed.
        limit: usize,
    },
    /// A document's `content_base64` is not base64 text.
    #[error("change {change_id}: document content (payload.content_base64) is not valid base64: {reason}")]
    Content {
        /// The change's id.
        change_id: String,
        /// What was wrong.
        reason: String,
    },
}

impl WireChange {
    /// The document bytes this change carries: `None` when it carries none, else the
    /// decoded `payload.content_base64` (an error if that is not base64 text).
    pub fn content(&self) -> Option<Result<Vec<u8>, WireError>> {
        if !self.may_have_content() {
            return None;
        }
        let payload = self.payload.to_value();
        let value = payload.get(CONTENT_KEY)?;
        let error = |reason: String| WireError::Content { change_id: self.id.clone(), reason };
        Some(match value.as_str() {
            Some(text) => base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| error(e.to_string())),
            None => Err(error("it is not a string".into())),
        })
    }

    /// Whether the change carries document bytes.
    pub fn has_content(&self) -> bool {
        self.may_have_content() && self.payload.to_value().get(CONTENT_KEY).is_some()
    }

    /// Whether the payload text names the content key at all: a cheap test
    /// that spares the parse for the many changes that are not documents.
    fn may_have_content(&self) -> bool {
        self.payload.get().contains(CONTENT_KEY)
    }

    /// This change carrying `bytes` as its document content. A payload that is not a JSON
    /// object (the outbox never writes one) is kept under `value`.
    pub fn with_content(mut self, bytes: &[u8]) -> WireChange {
        let encoded = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
        let mut payload = self.payload.to_value();
        match &mut payload {
            serde_json::Value::Object(map) => {
                map.insert(CONTENT_KEY.to_owned(), encoded);
            }
            other => {
                let mut map = serde_json::Map::new();
                if !other.is_null() {
                    map.insert("value".to_owned(), other.take());
                }
                map.insert(CONTENT_KEY.to_owned(), encoded);
                *other = serde_json::Value::Object(map);
            }
        }
        self.payload = JsonText::from_value(&payload);
        self
    }

    /// This change without document content, for a peer that keeps only the index (it
    /// fetches the bytes from the holder when someone asks for them).
    pub fn without_content(mut self) -> WireChange {
        if self.may_have_content() {
            let mut payload = self.payload.to_value();
            if let serde_json::Value::Object(map) = &mut payload {
                if map.remove(CONTENT_KEY).is_some() {
                    self.payload = JsonText::from_value(&payload);
                }
            }
        }
        self
    }

    /// The data class of the change's entity, if the entity is known.
    pub fn class(&self) -> Option<DataClass> {
        DataClass::of(&self.entity)
    }

    /// Problems that stop a receiver from applying this change, as one sentence each:
    /// unreadable HLC, region codes that are not six digits, an unknown entity, a payload
    /// that is not an object, an empty id. A receiver parks such a change (with these
    /// reasons in its receipt) instead of refusing the whole batch, so one bad record
    /// does not block a link.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.id.trim().is_empty() {
            problems.push("change id is empty".to_owned());
        }
        if self.entity_id.trim().is_empty() {
            problems.push("entity_id is empty".to_owned());
        }
        if let Err(e) = rhip_core::HlcTimestamp::decode(&self.hlc) {
            problems.push(format!("hlc: {e}"));
        }
        if !is_region_code(&self.origin_region) {
            problems.push(format!("origin_region must be 6 digits, got {:?}", self.origin_region));
        }
        if let Some(home) = self.home_region.as_deref().filter(|home| !is_region_code(home)) {
            problems.push(format!("home_region must be 6 digits, got {home:?}"));
        }
        if self.class().is_none() {
            problems.push(format!("entity {:?} is not one this node knows", self.entity));
        }
        if !self.payload.is_object() {
            problems.push("payload is not a JSON object".to_owned());
        }
        if let Some(Err(e)) = self.content() {
            problems.push(e.to_string());
        }
        problems
    }
}

/// Whether `text` is six ASCII digits, the shape of every region code on the wire.
pub(crate) fn is_region_code(text: &str) -> bool {
    text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `text` is 64 lowercase hex digits, the shape of every SHA-256 on the wire.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The changes of one batch, in the order the receiver applies them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The changes, oldest first.
    pub changes: Vec<WireChange>,
}

impl Payload {
    /// The payload bytes: `{"changes":[...]}` as compact UTF-8 JSON, fields in declaration
    /// order, each record's text copied as it is. Written by hand with serde_json's string
    /// escaping (into a `Vec`, so it cannot fail) and byte-identical to `serde_json::to_vec`
    /// (a test holds that).
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.changes.iter().map(|c| c.payload.get().len() + 256).sum();
        let mut out = Vec::with_capacity(size + 16);
        out.extend_from_slice(b"{\"changes\":[");
        for (index, change) in self.changes.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            let fields: [(&str, Option<&str>); 8] = [
                ("{\"id\":", Some(&change.id)),
                (",\"hlc\":", Some(&change.hlc)),
                (",\"origin_region\":", Some(&change.origin_region)),
                (",\"entity\":", Some(&change.entity)),
                (",\"entity_id\":", Some(&change.entity_id)),
                (",\"op\":", Some(&change.op)),
                (",\"person_id\":", change.person_id.as_deref()),
                (",\"home_region\":", change.home_region.as_deref()),
            ];
            for (key, value) in fields {
                out.extend_from_slice(key.as_bytes());
                match value {
                    Some(text) => write_json_string(&mut out, text),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.extend_from_slice(b",\"payload\":");
            out.extend_from_slice(change.payload.get().as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// Reads payload bytes, refusing more than `max_changes` changes before building them
    /// and anything that is not exactly this shape (unknown fields included: a newer
    /// shape comes with a newer schema version).
    pub fn decode(bytes: &[u8], max_changes: usize) -> Result<Payload, WireError> {
        let exceeded = Cell::new(false);
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let outcome = PayloadSeed { max_changes, exceeded: &exceeded }
            .deserialize(&mut deserializer)
            .and_then(|payload| deserializer.end().map(|()| payload));
        outcome.map_err(|e| {
            if exceeded.get() {
                WireError::TooMany { limit: max_changes }
            } else {
                WireError::Json(e.to_string())
            }
        })
    }
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail; should it ever, the digest check at the
    // receiver refuses the batch rather than anything being silently wrong.
    let _ = text.serialize(&mut serde_json::Serializer::new(out));
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

/// Reads `{"changes": [...]}` with a limit on the number of changes.
struct PayloadSeed<'a> {
    max_changes: usize,
    exceeded: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Payload, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"changes\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        let mut changes = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "changes" {
                return Err(serde::de::Error::unknown_field(&key, &["changes"]));
            }
            if changes.is_some() {
                return Err(serde::de::Error::duplicate_field("changes"));
            }
            changes =
                Some(map.next_value_seed(ChangesSeed { max_changes: self.max_changes, exceeded: self.exceeded })?);
        }
        let changes = changes.ok_or_else(|| serde::de::Error::missing_field("changes"))?;
        Ok(Payload { changes })
    }
}

/// Reads the list of changes, stopping at the first one past the limit.
struct ChangesSeed<'a> {
    max_changes: usize,
    exceeded: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for ChangesSeed<'_> {
    type Value = Vec<WireChange>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Vec<WireChange>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChangesSeed<'_> {
    type Value = Vec<WireChange>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} changes", self.max_changes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<WireChange>, A::Error> {
        let mut changes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_changes).min(1024));
        loop {
            if changes.len() == self.max_changes {
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.exceeded.set(true);
                    return Err(serde::de::Error::custom(format!("more than {} changes", self.max_changes)));
                }
                return Ok(changes);
            }
            match seq.next_element::<WireChange>()? {
                Some(change) => changes.push(change),
                None => return Ok(changes),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn change(id: &str, entity: &str) -> WireChange {
        WireChange {
            id: id.into(),
            hlc: "001700000000000.000001".into(),
            origin_region: "440106".into(),
            entity: entity.into(),
            entity_id: format!("{id}-record"),
            op: "create".into(),
            person_id: Some("p-1".into()),
            home_region: Some("330106".into()),
            payload: json!({"name": "张三 \"quoted\" \u{1}", "nested": {"n": 1.5, "list": [true, null]}}).into(),
        }
    }

    #[test]
    fn payloads_round_trip_and_encode_as_serde_does() {
        let mut without_person = change("c2", "facility");
        without_person.person_id = None;
        without_person.home_region = None;
        let payload = Payload { changes: vec![change("c1", "encounter"), without_person] };
        let bytes = payload.encode();
        assert_eq!(bytes, serde_json::to_vec(&payload).unwrap());
        assert_eq!(Payload::decode(&bytes, 10).unwrap(), payload);
        assert_eq!(Payload::decode(&Payload::default().encode(), 0).unwrap(), Payload::default());
    }

    #[test]
    fn too_many_changes_are_refused_with_the_limit() {
        let payload = Payload { changes: (0..4).map(|i| change(&format!("c{i}"), "person")).collect() };
        assert_eq!(Payload::decode(&payload.encode(), 4).unwrap().changes.len(), 4);
        let refused = Payload::decode(&payload.encode(), 3).unwrap_err();
        assert_eq!(refused, WireError::TooMany { limit: 3 });
        assert!(refused.to_string().contains("more than 3 changes"));
    }

    #[test]
    fn malformed_payloads_say_what_is_wrong() {
        for (bytes, needle) in [
            (&b"not json"[..], "expected"),
            (b"{}", "missing field `changes`"),
            (b"{\"changes\":[],\"extra\":1}", "unknown field `extra`"),
            (b"{\"changes\":[{\"id\":\"x\"}]}", "missing field"),
            (b"{\"changes\":[]} trailing", "trailing"),
            (b"[]", "an object"),
        ] {
            let refused = Payload::decode(bytes, 10).unwrap_err();
            assert!(matches!(&refused, WireError::Json(m) if m.contains(needle)), "{bytes:?}: {refused}");
        }
    }

    #[test]
    fn document_content_is_added_read_and_removed() {
        let document = change("d1", "document");
        assert!(document.content().is_none());
        let bytes = b"<ClinicalDocument/>\x00\xff";
        let carrying = document.clone().with_content(bytes);
        assert!(carrying.has_content());
        assert_eq!(carrying.content().unwrap().unwrap(), bytes);
        assert_eq!(carrying.payload.to_value()["name"], document.payload.to_value()["name"]);
        let stripped = carrying.without_content();
        assert!(!stripped.has_content());
        assert_eq!(stripped, document);

        let mut odd = change("d2", "document");
        odd.payload = serde_json::Value::Null.into();
        assert_eq!(odd.with_content(b"x").payload, json!({"content_base64": "eA=="}).into());
        let mut broken = change("d3", "document");
        broken.payload = json!({"content_base64": "@@@"}).into();
        assert!(matches!(broken.content(), Some(Err(WireError::Content { change_id, .. })) if change_id == "d3"));
        broken.payload = json!({"content_base64": 5}).into();
        assert!(matches!(broken.content(), Some(Err(_))));
    }

    #[test]
    fn problems_name_what_a_receiver_cannot_apply() {
        assert!(change("c1", "encounter").problems().is_empty());
        let mut bad = change("", "spaceship");
        bad.hlc = "yesterday".into();
        bad.origin_region = "44".into();
        bad.home_region = Some("3301060".into());
        bad.payload = json!([1]).into();
        let problems = bad.problems().join("; ");
        for needle in ["change id", "hlc", "origin_region", "home_region", "spaceship", "payload"] {
            assert!(problems.contains(needle), "{problems}");
        }
    }
}
