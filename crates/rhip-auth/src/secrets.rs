//! The node's data keys: secrets for personal data at rest, kept in a file
//! outside the database (`keys/data-keys.json`, written by `rhip init`), so
//! that a copy of the database or a dump alone reveals nothing they protect.
//!
//! The index key makes **blind indexes**: a keyed hash (HMAC-SHA-256) of a
//! value such as a citizen ID, stored where the value itself must not be, so
//! an exact lookup still works while nobody holding only the database can
//! test guesses against it. It never rotates (every index would have to be
//! rebuilt); encryption keys (a later addition) rotate under key ids.

use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Version of the key file's layout.
const FILE_VERSION: u32 = 1;

/// The data keys of a node.
pub struct DataKeys {
    index: hmac::Key,
}

/// The key file as stored (base64 key material).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    index_key: String,
}

/// Why the data keys could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    /// The file is not a data-key file of a known version.
    #[error("data keys: {0}")]
    Format(String),
    /// The random generator failed.
    #[error("data keys: could not generate random key material")]
    Random,
}

impl DataKeys {
    /// New random keys and the file text that keeps them.
    pub fn generate() -> Result<(DataKeys, String), DataKeyError> {
        let mut index = [0u8; 32];
        SystemRandom::new().fill(&mut index).map_err(|_| DataKeyError::Random)?;
        let file =
            KeyFile { version: FILE_VERSION, index_key: base64::engine::general_purpose::STANDARD.encode(index) };
        let text = serde_json::to_string_pretty(&file).map_err(|e| DataKeyError::Format(e.to_string()))? + "\n";
        Ok((DataKeys::from_index_key(&index), text))
    }

    /// Reads the file text written by [`DataKeys::generate`].
    pub fn from_json(text: &str) -> Result<DataKeys, DataKeyError> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| DataKeyError::Format(e.to_string()))?;
        if file.version != FILE_VERSION {
            return Err(DataKeyError::Format(format!(
                "key file version {} is not one this node reads ({FILE_VERSION})",
                file.version
            )));
        }
        let index = base64::engine::general_purpose::STANDARD
            .decode(file.index_key.trim())
            .map_err(|e| DataKeyError::Format(format!("index_key: {e}")))?;
        if index.len() != 32 {
            return Err(DataKeyError::Format(format!("index_key holds {} bytes, not 32", index.len())));
        }
        Ok(DataKeys::from_index_key(&index))
    }

    fn from_index_key(index: &[u8]) -> DataKeys {
        DataKeys { index: hmac::Key::new(hmac::HMAC_SHA256, index) }
    }

    /// The blind index of `value` in `domain` (e.g. `citizen_id`, `login`),
    /// as 64 hex digits. Domains separate the indexes, so equal values in
    /// two domains do not produce equal indexes.
    pub fn blind_index(&self, domain: &str, value: &str) -> String {
        let mut context = hmac::Context::with_key(&self.index);
        context.update(domain.as_bytes());
        context.update(&[0]);
        context.update(value.as_bytes());
        context.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_file_and_index_by_domain() {
        let (keys, text) = DataKeys::generate().unwrap();
        let again = DataKeys::from_json(&text).unwrap();
        let index = keys.blind_index("citizen_id", "11010519491231002X");
        assert_eq!(index.len(), 64);
        assert_eq!(index, again.blind_index("citizen_id", "11010519491231002X"));
        assert_ne!(index, keys.blind_index("login", "11010519491231002X"));
        let (other, _) = DataKeys::generate().unwrap();
        assert_ne!(index, other.blind_index("citizen_id", "11010519491231002X"));
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        for (text, needle) in [
            ("{}", "missing field"),
            ("{\"version\":2,\"index_key\":\"\"}", "version 2"),
            ("{\"version\":1,\"index_key\":\"AAAA\"}", "3 bytes"),
            ("{\"version\":1,\"index_key\":\"@@\"}", "index_key"),
        ] {
            let error = DataKeys::from_json(text).err().unwrap().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
