//! The seam between the store and the node's data keys: what the store needs
//! to keep personal data encrypted at rest, without knowing where keys live.
//!
//! The store (`rhip-store`) depends only on this crate, so it cannot reach the
//! key file or a cryptography library itself; `rhip-auth` implements
//! [`FieldCipher`] over the node's key file and the server hands it to the
//! store when opening it. The value format (key id, nonce, ciphertext) and the
//! associated data that binds a value to its column are the store's business;
//! this trait only seals and opens bytes.
//!
//! **Architecture Invariant:** no I/O and no cryptography here, only the
//! contract.

/// Why a value could not be sealed or opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The value names a key id this node does not hold (even after
    /// re-reading its key file).
    #[error("data key {0:?} is not in the node's key file")]
    UnknownKey(String),
    /// The ciphertext, its tag or its associated data do not match: the
    /// value was tampered with, moved to another column, or is not ours.
    #[error("the value does not authenticate (tampered, moved or under another key)")]
    Refused,
    /// No encryption key is configured (a version 1 key file).
    #[error("no encryption key is configured (run `rhip keys rotate` to add one)")]
    NoKey,
    /// The random generator failed.
    #[error("the random generator failed")]
    Random,
}

/// Authenticated encryption of single values plus keyed blind indexes.
///
/// Implementations must be cheap to call from many threads at once: the store
/// calls them for every encrypted column it writes or reads.
pub trait FieldCipher: Send + Sync {
    /// The id of the key new values are sealed under.
    fn current_key_id(&self) -> Result<String, CipherError>;

    /// Seals `plaintext` under the current key with `aad` as associated data;
    /// answers the key id used and `nonce || ciphertext || tag`.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(String, Vec<u8>), CipherError>;

    /// Opens what [`FieldCipher::seal`] answered under `key_id`, with the
    /// same `aad`.
    fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError>;

    /// The blind index of `value` in `domain`: a keyed hash (hex) that allows
    /// exact lookup without storing the value. Domains separate indexes, so
    /// equal values in two domains give unrelated indexes.
    fn blind_index(&self, domain: &str, value: &str) -> String;
}

/// A name as the name + birth date blind index sees it: surrounding and
/// inner whitespace removed (including the ideographic space), Latin letters
/// lower-cased, so `张 三` and `张三`, `Li Lei` and `LILEI` index alike.
pub fn normalize_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_without_whitespace_or_case() {
        assert_eq!(normalize_name(" 张\u{3000}三 "), "张三");
        assert_eq!(normalize_name("Li  Lei"), normalize_name("LILEI"));
    }
}
