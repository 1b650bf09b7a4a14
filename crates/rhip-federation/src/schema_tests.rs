//! Keeps `schemas/federation/*.schema.json` and the Rust types in step: a serialized
//! manifest and receipt must have exactly the properties the schemas list, and every
//! value must satisfy its property's type, pattern, const, enum and minimum. Patterns are
//! checked by a small matcher for the only forms the schemas use (anchored sequences of
//! literals and `[...]` classes with `{n}` counts), to avoid a regex dependency.

use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::manifest::{Parked, Receipt, ReceiptStatus};
use crate::{seal, verify_batch, Payload, GENESIS};
use rhip_auth::{NodeKey, PeerKeys};

const MANIFEST_SCHEMA: &str = include_str!("../../../schemas/federation/batch-manifest.schema.json");
const RECEIPT_SCHEMA: &str = include_str!("../../../schemas/federation/batch-receipt.schema.json");

/// Whether `text` matches an anchored pattern of literals and `[...]{n}` classes.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let body = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).unwrap();
    let pattern: Vec<char> = body.chars().collect();
    let mut text = text.chars().peekable();
    let mut i = 0;
    while i < pattern.len() {
        // One atom: a class or a literal.
        let (allowed, next): (Box<dyn Fn(char) -> bool>, usize) = if pattern[i] == '[' {
            let close = i + pattern[i..].iter().position(|c| *c == ']').unwrap();
            let class: Vec<char> = pattern[i + 1..close].to_vec();
            let test = move |c: char| {
                let mut j = 0;
                while j < class.len() {
                    if j + 2 < class.len() && class[j + 1] == '-' {
                        if class[j] <= c && c <= class[j + 2] {
                            return true;
                        }
                        j += 3;
                    } else {
                        if class[j] == c {
                            return true;
                        }
                        j += 1;
                    }
                }
                false
            };
            (Box::new(test), close + 1)
        } else {
            let literal = pattern[i];
            (Box::new(move |c: char| c == literal), i + 1)
        };
        // Its count.
        let (count, next) = if pattern.get(next) == Some(&'{') {
            let close = next + pattern[next..].iter().position(|c| *c == '}').unwrap();
            (pattern[next + 1..close].iter().collect::<String>().parse::<usize>().unwrap(), close + 1)
        } else {
            (1, next)
        };
        for _ in 0..count {
            match text.next() {
                Some(c) if allowed(c) => {}
                _ => return false,
            }
        }
        i = next;
    }
    text.next().is_none()
}

/// Checks `value` against the subset of JSON Schema the federation schemas use.
fn check(schema: &Value, value: &Value, path: &str) {
    match schema["type"].as_str().unwrap() {
        "object" => {
            let object = value.as_object().unwrap_or_else(|| panic!("{path}: not an object"));
            let properties = schema["properties"].as_object().unwrap();
            let listed: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
            let required: BTreeSet<&str> =
                schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
            let present: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(schema["additionalProperties"], json!(false), "{path}: schema must be closed");
            assert_eq!(present, required, "{path}: serialized properties differ from the schema's required list");
            assert!(required.is_subset(&listed), "{path}: a required property is not described");
            assert_eq!(present, listed, "{path}: serialized properties differ from the schema's properties");
            for (name, property) in properties {
                check(property, &object[name], &format!("{path}.{name}"));
            }
        }
        "array" => {
            let items = value.as_array().unwrap_or_else(|| panic!("{path}: not an array"));
            for (index, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{index}]"));
            }
        }
        "string" => {
            let text = value.as_str().unwrap_or_else(|| panic!("{path}: not a string"));
            if let Some(pattern) = schema["pattern"].as_str() {
                assert!(matches_pattern(pattern, text), "{path}: {text:?} does not match {pattern}");
            }
            if let Some(options) = schema["enum"].as_array() {
                assert!(options.contains(value), "{path}: {text:?} not in {options:?}");
            }
            if schema["format"] == json!("date-time") {
                assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{path}: {text:?} is not RFC 3339");
            }
            if let Some(min) = schema["minLength"].as_u64() {
                assert!(text.chars().count() as u64 >= min, "{path}: too short");
            }
        }
        "integer" => {
            let number = value.as_u64().unwrap_or_else(|| panic!("{path}: not a non-negative integer"));
            if let Some(min) = schema["minimum"].as_u64() {
                assert!(number >= min, "{path}: {number} < {min}");
            }
            if let Some(constant) = schema.get("const") {
                assert_eq!(value, constant, "{path}");
            }
        }
        other => panic!("{path}: schema type {other} is not handled by this check"),
    }
}

fn schema(text: &str) -> Value {
    let schema: Value = serde_json::from_str(text).unwrap();
    assert_eq!(schema["$schema"], json!("https://json-schema.org/draft/2020-12/schema"));
    schema
}

#[test]
fn the_pattern_matcher_matches_what_it_should() {
    assert!(matches_pattern("^[0-9]{6}$", "330106"));
    assert!(!matches_pattern("^[0-9]{6}$", "33010"));
    assert!(!matches_pattern("^[0-9]{6}$", "3301066"));
    assert!(!matches_pattern("^[0-9a-f]{64}$", &"A".repeat(64)));
    assert!(matches_pattern("^[0-9a-f]{64}$", GENESIS));
    assert!(matches_pattern("^a-[89ab]$", "a-9"));
    assert!(!matches_pattern("^a-[89ab]$", "a-c"));
}

#[test]
fn manifests_serialize_exactly_as_the_schema_describes() {
    let key = NodeKey::generate().unwrap().0;
    let mut peers = PeerKeys::new();
    peers.trust("330106", key.public_key());
    let batch = seal(&key, "330106", "330100", 1, GENESIS, &Payload::default()).unwrap();
    let manifest = verify_batch(&peers, "330106", "330100", &batch.manifest_jws, &batch.payload).unwrap().manifest;
    check(&schema(MANIFEST_SCHEMA), &serde_json::to_value(&manifest).unwrap(), "manifest");
}

#[test]
fn receipts_serialize_exactly_as_the_schema_describes() {
    let receipt = Receipt {
        schema_version: 1,
        batch_id: rhip_core::new_id().to_string(),
        source: "330106".into(),
        target: "330100".into(),
        seq: 7,
        batch_digest: "ab".repeat(32),
        status: ReceiptStatus::Applied,
        applied: 2,
        parked: vec![Parked { change_id: "c3".into(), reason: "entity \"spaceship\" is unknown".into() }],
        received_at: chrono::Utc::now(),
    };
    let schema = schema(RECEIPT_SCHEMA);
    check(&schema, &serde_json::to_value(&receipt).unwrap(), "receipt");
    let duplicate = Receipt { status: ReceiptStatus::Duplicate, applied: 0, parked: vec![], ..receipt };
    check(&schema, &serde_json::to_value(&duplicate).unwrap(), "receipt");
}
