//! The node's data keys: secrets for personal data at rest, kept in a file
//! outside the database (`keys/data-keys.json`, written by `rhip init`), so
//! that a copy of the database or a dump alone reveals nothing they protect.
//!
//! Two kinds of key live in the file:
//!
//! - The **index key** makes blind indexes: a keyed hash (HMAC-SHA-256) of a
//!   value such as a citizen ID, stored where the value itself must not be,
//!   so an exact lookup still works while nobody holding only the database
//!   can test guesses against it. It never rotates (every index would have
//!   to be rebuilt).
//! - **Encryption keys** (AES-256-GCM), each with a key id, one of them
//!   current. New values are sealed under the current key; a stored value
//!   names its key id, so older keys keep opening older values until
//!   `rhip keys rotate` has re-encrypted them.
//!
//! Version 1 files hold only the index key; they are still read (a node with
//! one can look up but not encrypt) and [`rotate_key_file`] upgrades them.
//!
//! [`DataKeyRing`] is what a running node holds: the keys plus a way to read
//! the file again, so a process started before a rotation learns the new key
//! when it meets a value sealed under it, and starts sealing under it soon
//! after. Reading the file is the caller's closure: this crate does no I/O.

use base64::Engine;
use rhip_core::{CipherError, FieldCipher};
use ring::aead;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Version of the key file's layout written now.
const FILE_VERSION: u32 = 2;

/// Length of an AES-GCM nonce, which leads every sealed value.
const NONCE_LEN: usize = 12;

/// The data keys of a node.
pub struct DataKeys {
    index: hmac::Key,
    /// Encryption keys by id, in file order.
    keys: Vec<(String, aead::LessSafeKey)>,
    /// Id of the key new values are sealed under (`None` in a version 1 file).
    current: Option<String>,
}

/// The key file as stored (base64 key material).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    index_key: String,
    /// Id of the current encryption key (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    /// Encryption keys, oldest first (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    encryption_keys: Vec<EncryptionKeyEntry>,
}

/// One AES-256-GCM key in the file.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptionKeyEntry {
    id: String,
    key: String,
    created_at: String,
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

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn random_bytes<const N: usize>() -> Result<[u8; N], DataKeyError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| DataKeyError::Random)?;
    Ok(bytes)
}

/// A fresh encryption key entry with a random 12-hex-digit id.
fn new_entry() -> Result<EncryptionKeyEntry, DataKeyError> {
    let id = hex::encode(random_bytes::<6>()?);
    Ok(EncryptionKeyEntry {
        id,
        key: b64().encode(random_bytes::<32>()?),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A key id must be short and must not contain the `:` that separates the
/// parts of a stored value.
fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn to_text(file: &KeyFile) -> Result<String, DataKeyError> {
    Ok(serde_json::to_string_pretty(file).map_err(|e| DataKeyError::Format(e.to_string()))? + "\n")
}

/// What [`rotate_key_file`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The new file text (write it atomically, mode 0600).
    pub text: String,
    /// The new current key id.
    pub new_key_id: String,
    /// The key id that was current before (`None` for a version 1 file).
    pub previous_key_id: Option<String>,
    /// The file was version 1 and is now version 2.
    pub upgraded: bool,
}

/// Adds a new encryption key to a key file's text and makes it current;
/// every older key stays so older values still open. Reads version 1 files
/// and answers version 2.
pub fn rotate_key_file(text: &str) -> Result<Rotated, DataKeyError> {
    let mut file = parse(text)?;
    let upgraded = file.version == 1;
    let previous_key_id = file.current.clone();
    let mut entry = new_entry()?;
    while file.encryption_keys.iter().any(|k| k.id == entry.id) {
        entry = new_entry()?;
    }
    let new_key_id = entry.id.clone();
    file.encryption_keys.push(entry);
    file.current = Some(new_key_id.clone());
    file.version = FILE_VERSION;
    let text = to_text(&file)?;
    // Check what is about to be written reads back.
    DataKeys::from_json(&text)?;
    Ok(Rotated { text, new_key_id, previous_key_id, upgraded })
}

/// Removes encryption keys from a key file's text (`rhip keys retire`, once
/// no stored value names them); the current key cannot be retired.
pub fn retire_keys(text: &str, retire: &[String]) -> Result<String, DataKeyError> {
    let mut file = parse(text)?;
    if let Some(current) = &file.current {
        if retire.contains(current) {
            return Err(DataKeyError::Format(format!("key {current} is current and cannot be retired")));
        }
    }
    for id in retire {
        if !file.encryption_keys.iter().any(|k| &k.id == id) {
            return Err(DataKeyError::Format(format!("key {id} is not in the file")));
        }
    }
    file.encryption_keys.retain(|k| !retire.contains(&k.id));
    to_text(&file)
}

fn parse(text: &str) -> Result<KeyFile, DataKeyError> {
    let file: KeyFile = serde_json::from_str(text).map_err(|e| DataKeyError::Format(e.to_string()))?;
    if !(1..=FILE_VERSION).contains(&file.version) {
        return Err(DataKeyError::Format(format!(
            "key file version {} is not one this node reads (1 to {FILE_VERSION})",
            file.version
        )));
    }
    if file.version == 1 && (file.current.is_some() || !file.encryption_keys.is_empty()) {
        return Err(DataKeyError::Format("a version 1 key file holds no encryption keys".into()));
    }
    Ok(file)
}

impl DataKeys {
    /// New random keys (an index key and one current encryption key) and the
    /// version 2 file text that keeps them.
    pub fn generate() -> Result<(DataKeys, String), DataKeyError> {
        let file = KeyFile {
            version: FILE_VERSION,
            index_key: b64().encode(random_bytes::<32>()?),
            current: None,
            encryption_keys: Vec::new(),
        };
        let rotated = rotate_key_file(&to_text(&file)?)?;
        Ok((DataKeys::from_json(&rotated.text)?, rotated.text))
    }

    /// Reads the file text written by [`DataKeys::generate`] (version 1 or 2).
    pub fn from_json(text: &str) -> Result<DataKeys, DataKeyError> {
        let file = parse(text)?;
        let index = b64().decode(file.index_key.trim()).map_err(|e| DataKeyError::Format(format!("index_key: {e}")))?;
        if index.len() != 32 {
            return Err(DataKeyError::Format(format!("index_key holds {} bytes, not 32", index.len())));
        }
        let mut keys = Vec::with_capacity(file.encryption_keys.len());
        for entry in &file.encryption_keys {
            if !valid_key_id(&entry.id) {
                return Err(DataKeyError::Format(format!(
                    "key id {:?} must be 1 to 32 letters, digits, '-' or '_'",
                    entry.id
                )));
            }
            if keys.iter().any(|(id, _)| id == &entry.id) {
                return Err(DataKeyError::Format(format!("key id {} appears twice", entry.id)));
            }
            let material =
                b64().decode(entry.key.trim()).map_err(|e| DataKeyError::Format(format!("key {}: {e}", entry.id)))?;
            let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, &material).map_err(|_| {
                DataKeyError::Format(format!("key {} holds {} bytes, not 32", entry.id, material.len()))
            })?;
            keys.push((entry.id.clone(), aead::LessSafeKey::new(unbound)));
        }
        if let Some(current) = &file.current {
            if !keys.iter().any(|(id, _)| id == current) {
                return Err(DataKeyError::Format(format!("current key {current} is not among the encryption keys")));
            }
        } else if !keys.is_empty() {
            return Err(DataKeyError::Format("encryption keys are listed but none is current".into()));
        }
        Ok(DataKeys { index: hmac::Key::new(hmac::HMAC_SHA256, &index), keys, current: file.current })
    }

    /// The blind index of `value` in `domain` (e.g. `citizen_id`, `login`),
    /// as 64 hex digits. Domains separate the indexes, so equal values in
    /// two domains do not produce equal indexes.
    pub fn blind_index(&self, domain: &str, value: &str) -> String {
        let mut context = hmac::Context::with_key(&self.index);
        context.update(domain.as_bytes());
        context.update(&[0]);
        context.update(value.as_bytes());
        // hex::encode: formatting byte by byte was 5 µs a value, a tenth of
        // receiving a person.
        hex::encode(context.sign().as_ref())
    }

    /// Id of the key new values are sealed under (`None`: a version 1 file).
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Ids of every encryption key held, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }

    fn key(&self, id: &str) -> Option<&aead::LessSafeKey> {
        self.keys.iter().find(|(key_id, _)| key_id == id).map(|(_, key)| key)
    }

    /// Seals under the current key: answers its id and nonce || ciphertext || tag.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(String, Vec<u8>), CipherError> {
        let id = self.current.as_deref().ok_or(CipherError::NoKey)?;
        let key = self.key(id).ok_or_else(|| CipherError::UnknownKey(id.to_string()))?;
        let nonce = fresh_nonce()?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + aead::AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| CipherError::Refused)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok((id.to_string(), sealed))
    }

    /// Opens a value sealed under `id`; `None` when this holds no such key.
    fn open(&self, id: &str, aad: &[u8], sealed: &[u8]) -> Option<Result<Vec<u8>, CipherError>> {
        let key = self.key(id)?;
        if sealed.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Some(Err(CipherError::Refused));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let Ok(nonce) = aead::Nonce::try_assume_unique_for_key(nonce) else { return Some(Err(CipherError::Refused)) };
        let mut buffer = rest.to_vec();
        Some(match key.open_in_place(nonce, aead::Aad::from(aad), &mut buffer) {
            Ok(plain) => Ok(plain.to_vec()),
            Err(_) => Err(CipherError::Refused),
        })
    }
}

/// Nonces drawn from the system generator per refill: one `getrandom` call
/// serves this many seals instead of one each (a sealed value per column
/// per row made the syscall a measurable share of a federation apply).
const NONCE_POOL: usize = 256;

thread_local! {
    /// Random bytes for the next nonces of this thread, and how many are used.
    static NONCES: std::cell::RefCell<(Vec<u8>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// A fresh random 96-bit nonce. Every nonce is still drawn from the system's
/// CSPRNG (never derived or counted), only in bulk; each pooled byte is used
/// once and the pool is per thread, so no two seals share one.
fn fresh_nonce() -> Result<[u8; NONCE_LEN], CipherError> {
    NONCES.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + NONCE_LEN > bytes.len() {
            bytes.resize(NONCE_POOL * NONCE_LEN, 0);
            SystemRandom::new().fill(bytes).map_err(|_| CipherError::Random)?;
            *used = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[*used..*used + NONCE_LEN]);
        // Spent bytes are wiped so they cannot be read back later.
        bytes[*used..*used + NONCE_LEN].fill(0);
        *used += NONCE_LEN;
        Ok(nonce)
    })
}

/// Reads the key file again (the server's closure over its path).
pub type KeyReloader = Box<dyn Fn() -> Result<DataKeys, DataKeyError> + Send + Sync>;

/// How often a ring re-reads its key file to learn a new current key, at most.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The data keys a running node holds, implementing [`FieldCipher`] for the
/// store. With a reloader, it re-reads the key file once when a value names
/// a key id it does not hold (a rotation ran in another process), and before
/// sealing when [`REFRESH_EVERY`] has passed, so after `rhip keys rotate`
/// every process of the node seals under the new key within seconds.
pub struct DataKeyRing {
    keys: RwLock<Arc<DataKeys>>,
    reload: Option<KeyReloader>,
    last_read: Mutex<Instant>,
}

impl DataKeyRing {
    /// A ring over fixed keys (tests, benchmarks): nothing to re-read.
    pub fn fixed(keys: DataKeys) -> DataKeyRing {
        DataKeyRing { keys: RwLock::new(Arc::new(keys)), reload: None, last_read: Mutex::new(Instant::now()) }
    }

    /// A ring that reads its keys with `reload` now and again when needed.
    pub fn reloading(reload: KeyReloader) -> Result<DataKeyRing, DataKeyError> {
        let keys = reload()?;
        Ok(DataKeyRing {
            keys: RwLock::new(Arc::new(keys)),
            reload: Some(reload),
            last_read: Mutex::new(Instant::now()),
        })
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<DataKeys> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The blind index of `value` in `domain` (see [`DataKeys::blind_index`]).
    pub fn blind_index(&self, domain: &str, value: &str) -> String {
        self.keys().blind_index(domain, value)
    }

    /// Re-reads the key file; answers whether the keys changed. A file that
    /// cannot be read leaves the keys as they were (logged by the caller's
    /// error path when a value then cannot be opened).
    fn reread(&self) -> bool {
        let Some(reload) = &self.reload else { return false };
        *self.last_read.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        match reload() {
            Ok(fresh) => {
                let mut held = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                let changed = held.current != fresh.current || held.key_ids() != fresh.key_ids();
                *held = Arc::new(fresh);
                changed
            }
            Err(_) => false,
        }
    }

    /// Re-reads the file when [`REFRESH_EVERY`] has passed, without making
    /// other threads wait for it.
    fn refresh_if_due(&self) {
        if self.reload.is_none() {
            return;
        }
        let due = match self.last_read.try_lock() {
            Ok(mut last) if last.elapsed() >= REFRESH_EVERY => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            self.reread();
        }
    }
}

impl FieldCipher for DataKeyRing {
    fn current_key_id(&self) -> Result<String, CipherError> {
        self.refresh_if_due();
        self.keys().current_key_id().map(str::to_string).ok_or(CipherError::NoKey)
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<(String, Vec<u8>), CipherError> {
        self.refresh_if_due();
        self.keys().seal(aad, plaintext)
    }

    fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if let Some(opened) = self.keys().open(key_id, aad, sealed) {
            return opened;
        }
        // Sealed by a process that knows a newer key file: read it once.
        self.reread();
        self.keys().open(key_id, aad, sealed).unwrap_or_else(|| Err(CipherError::UnknownKey(key_id.to_string())))
    }

    fn blind_index(&self, domain: &str, value: &str) -> String {
        DataKeyRing::blind_index(self, domain, value)
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
        assert!(text.contains("\"version\": 2"), "{text}");
        assert_eq!(keys.current_key_id(), again.current_key_id());
    }

    #[test]
    fn pooled_nonces_never_repeat_across_refills_and_threads() {
        let draw = || (0..NONCE_POOL * 3 + 7).map(|_| fresh_nonce().unwrap()).collect::<Vec<_>>();
        let mut all = draw();
        all.extend(std::thread::spawn(draw).join().unwrap());
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|nonce| nonce.iter().any(|b| *b != 0)));
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        for (text, needle) in [
            ("{}", "missing field"),
            ("{\"version\":3,\"index_key\":\"\"}", "version 3"),
            ("{\"version\":1,\"index_key\":\"AAAA\"}", "3 bytes"),
            ("{\"version\":1,\"index_key\":\"@@\"}", "index_key"),
        ] {
            let error = DataKeys::from_json(text).err().unwrap().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let ring = DataKeyRing::fixed(DataKeys::generate().unwrap().0);
        let (id, sealed) = ring.seal(b"persons.name", "张三".as_bytes()).unwrap();
        assert_eq!(id, ring.current_key_id().unwrap());
        assert_eq!(ring.open(&id, b"persons.name", &sealed).unwrap(), "张三".as_bytes());
        assert_eq!(ring.open(&id, b"persons.phone", &sealed), Err(CipherError::Refused));
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert_eq!(ring.open(&id, b"persons.name", &tampered), Err(CipherError::Refused));
        assert_eq!(ring.open("nope", b"persons.name", &sealed), Err(CipherError::UnknownKey("nope".into())));
        // A fresh nonce each time: equal plaintexts do not give equal values.
        assert_ne!(ring.seal(b"persons.name", "张三".as_bytes()).unwrap().1, sealed);
    }

    #[test]
    fn version_1_files_upgrade_on_rotation_and_old_keys_keep_opening() {
        let v1 = format!("{{\"version\":1,\"index_key\":\"{}\"}}", b64().encode([7u8; 32]));
        let old = DataKeys::from_json(&v1).unwrap();
        assert_eq!(old.current_key_id(), None);
        assert_eq!(old.seal(b"a", b"b"), Err(CipherError::NoKey));
        let first = rotate_key_file(&v1).unwrap();
        assert!(first.upgraded);
        let second = rotate_key_file(&first.text).unwrap();
        assert_eq!(second.previous_key_id.as_deref(), Some(first.new_key_id.as_str()));
        let keys = DataKeys::from_json(&second.text).unwrap();
        // The index key never changes.
        assert_eq!(keys.blind_index("d", "v"), old.blind_index("d", "v"));
        let under_first = DataKeys::from_json(&first.text).unwrap().seal(b"t.c", b"x").unwrap();
        assert_eq!(keys.open(&under_first.0, b"t.c", &under_first.1).unwrap().unwrap(), b"x");
        assert!(retire_keys(&second.text, std::slice::from_ref(&second.new_key_id)).is_err());
        let retired = retire_keys(&second.text, std::slice::from_ref(&first.new_key_id)).unwrap();
        assert_eq!(DataKeys::from_json(&retired).unwrap().key_ids(), vec![second.new_key_id]);
    }

    #[test]
    fn a_ring_rereads_its_file_for_a_key_it_does_not_know() {
        let (_, text) = DataKeys::generate().unwrap();
        let file = Arc::new(Mutex::new(text));
        let source = file.clone();
        let ring = DataKeyRing::reloading(Box::new(move || DataKeys::from_json(&source.lock().unwrap()))).unwrap();
        let rotated = rotate_key_file(&file.lock().unwrap()).unwrap();
        *file.lock().unwrap() = rotated.text.clone();
        let newer = DataKeys::from_json(&rotated.text).unwrap().seal(b"t.c", b"after").unwrap();
        assert_eq!(newer.0, rotated.new_key_id);
        assert_eq!(ring.open(&newer.0, b"t.c", &newer.1).unwrap(), b"after");
        assert_eq!(ring.current_key_id().unwrap(), rotated.new_key_id);
    }
}
