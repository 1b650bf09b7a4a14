//! Encryption at rest of personal fields, at the row boundary.
//!
//! Repository methods seal the columns listed in [`ENCRYPTED_COLUMNS`] when
//! they write a row and open them when they read one, so nothing above the
//! store sees ciphertext and nothing below it sees plaintext. The cipher is
//! the node's [`FieldCipher`] (its data keys, from `rhip-auth`), handed to
//! [`crate::Store::open`]; this module owns the stored format:
//!
//! - text: `enc1:<key id>:<base64 of nonce || ciphertext || tag>`;
//! - bytes: `RHIPENC1`, one byte of key-id length, the key id, then
//!   nonce || ciphertext || tag.
//!
//! Each value has a fresh random 96-bit nonce, and its associated data is
//! `rhip:<table>.<column>`, so a ciphertext copied into another column (or
//! another table) does not open. A value without the prefix is plaintext
//! written before encryption at rest (an upgraded database): it reads as is,
//! and [`crate::Store::reencrypt_batch`] seals it.
//!
//! Exact lookups go through **blind indexes** (keyed HMAC, domain-separated):
//! `persons.id_number_index` (unique: it holds citizen-ID uniqueness now),
//! `persons.name_index` (normalised name + birth date, for search and
//! linking) and `person_contacts.name_index` (part of the contacts' unique
//! key).

use crate::conn::Direct;
use crate::schema::{
    change_log, documents, fed_batches_out, fed_dead_letters, households, node_meta, person_contacts, persons,
    submissions,
};
use crate::{Store, StoreError, Tx};
use base64::Engine;
use chrono::NaiveDate;
use diesel::prelude::*;
use rhip_core::{CipherError, FieldCipher};

/// Prefix of an encrypted text value (format version 1).
const TEXT_PREFIX: &str = "enc1:";
/// Prefix of an encrypted binary value (format version 1).
const BYTES_MAGIC: &[u8] = b"RHIPENC1";

/// Blind-index domain of citizen IDs (`persons.id_number_index`).
pub(crate) const CITIZEN_ID_DOMAIN: &str = "citizen_id";
/// Blind-index domain of normalised name + birth date (`persons.name_index`).
pub(crate) const NAME_BIRTH_DOMAIN: &str = "name_birth_date";
/// Blind-index domain of a contact's exact name (`person_contacts.name_index`).
pub(crate) const CONTACT_NAME_DOMAIN: &str = "contact_name";

/// One encrypted column: its name is the associated data of its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
}

impl Field {
    const fn new(table: &'static str, column: &'static str) -> Field {
        Field { table, column }
    }

    fn aad(&self) -> Vec<u8> {
        format!("rhip:{}.{}", self.table, self.column).into_bytes()
    }

    fn refused(&self, error: CipherError) -> StoreError {
        StoreError::Corrupt(format!("{}.{}: {error}", self.table, self.column))
    }
}

pub(crate) const PERSON_NAME: Field = Field::new("persons", "name");
pub(crate) const PERSON_ID_NUMBER: Field = Field::new("persons", "id_number");
pub(crate) const PERSON_PHONE: Field = Field::new("persons", "phone");
pub(crate) const PERSON_ADDRESS: Field = Field::new("persons", "address_line");
pub(crate) const CONTACT_NAME: Field = Field::new("person_contacts", "name");
pub(crate) const CONTACT_PHONE: Field = Field::new("person_contacts", "phone");
pub(crate) const HOUSEHOLD_ADDRESS: Field = Field::new("households", "address_line");
pub(crate) const SUBMISSION_RAW: Field = Field::new("submissions", "raw");
pub(crate) const SUBMISSION_ACK: Field = Field::new("submissions", "ack");
pub(crate) const SUBMISSION_ERRORS: Field = Field::new("submissions", "errors");
pub(crate) const SUBMISSION_Z_SEGMENTS: Field = Field::new("submissions", "z_segments");
pub(crate) const DOCUMENT_CONTENT: Field = Field::new("documents", "content");
pub(crate) const CHANGE_PAYLOAD: Field = Field::new("change_log", "payload");
pub(crate) const BATCH_PAYLOAD: Field = Field::new("fed_batches_out", "payload");
pub(crate) const DEAD_LETTER_CHANGE: Field = Field::new("fed_dead_letters", "change");

/// Every encrypted column, table by table (the order `rhip keys rotate` walks).
pub const ENCRYPTED_COLUMNS: &[Field] = &[
    PERSON_NAME,
    PERSON_ID_NUMBER,
    PERSON_PHONE,
    PERSON_ADDRESS,
    CONTACT_NAME,
    CONTACT_PHONE,
    HOUSEHOLD_ADDRESS,
    SUBMISSION_RAW,
    SUBMISSION_ACK,
    SUBMISSION_ERRORS,
    SUBMISSION_Z_SEGMENTS,
    DOCUMENT_CONTENT,
    CHANGE_PAYLOAD,
    BATCH_PAYLOAD,
    DEAD_LETTER_CHANGE,
];

/// Tables holding encrypted columns, in the order they are re-encrypted.
pub const ENCRYPTED_TABLES: &[&str] = &[
    "persons",
    "person_contacts",
    "households",
    "submissions",
    "documents",
    "change_log",
    "fed_batches_out",
    "fed_dead_letters",
];

/// The key id a stored text value names (`None`: plaintext).
pub fn text_key_id(stored: &str) -> Option<&str> {
    stored.strip_prefix(TEXT_PREFIX)?.split_once(':').map(|(id, _)| id)
}

/// The key id a stored binary value names (`None`: plaintext). A value in
/// the text format (a column that held text before, `change_log.payload`)
/// names its key too.
pub fn bytes_key_id(stored: &[u8]) -> Option<&str> {
    if stored.starts_with(TEXT_PREFIX.as_bytes()) {
        let head = stored.get(..stored.len().min(TEXT_PREFIX.len() + 256))?;
        let head = std::str::from_utf8(head).ok()?;
        return text_key_id(head);
    }
    let rest = stored.strip_prefix(BYTES_MAGIC)?;
    let (&len, rest) = rest.split_first()?;
    std::str::from_utf8(rest.get(..usize::from(len))?).ok()
}

/// Seals and opens values of one column with the node's cipher.
#[derive(Clone, Copy)]
pub(crate) struct Crypt<'a>(pub(crate) &'a dyn FieldCipher);

impl Crypt<'_> {
    /// Seals a text value.
    pub(crate) fn seal(&self, field: Field, plain: &str) -> Result<String, StoreError> {
        let (id, sealed) = self.0.seal(&field.aad(), plain.as_bytes()).map_err(|e| field.refused(e))?;
        Ok(format!("{TEXT_PREFIX}{id}:{}", base64::engine::general_purpose::STANDARD.encode(sealed)))
    }

    /// Seals an optional text value.
    pub(crate) fn seal_opt(&self, field: Field, plain: Option<&str>) -> Result<Option<String>, StoreError> {
        plain.map(|p| self.seal(field, p)).transpose()
    }

    /// Opens a text value (plaintext from before encryption reads as is).
    pub(crate) fn open(&self, field: Field, stored: &str) -> Result<String, StoreError> {
        let Some(rest) = stored.strip_prefix(TEXT_PREFIX) else { return Ok(stored.to_string()) };
        let (id, body) = rest.split_once(':').ok_or_else(|| {
            StoreError::Corrupt(format!("{}.{}: malformed encrypted value", field.table, field.column))
        })?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| StoreError::Corrupt(format!("{}.{}: {e}", field.table, field.column)))?;
        let plain = self.0.open(id, &field.aad(), &sealed).map_err(|e| field.refused(e))?;
        String::from_utf8(plain).map_err(|e| StoreError::Corrupt(format!("{}.{}: {e}", field.table, field.column)))
    }

    /// Opens an optional text value.
    pub(crate) fn open_opt(&self, field: Field, stored: Option<&str>) -> Result<Option<String>, StoreError> {
        stored.map(|s| self.open(field, s)).transpose()
    }

    /// Opens an optional text value in place.
    pub(crate) fn open_in_place(&self, field: Field, stored: &mut Option<String>) -> Result<(), StoreError> {
        if let Some(value) = stored.as_mut() {
            *value = self.open(field, value)?;
        }
        Ok(())
    }

    /// Seals bytes.
    pub(crate) fn seal_bytes(&self, field: Field, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (id, sealed) = self.0.seal(&field.aad(), plain).map_err(|e| field.refused(e))?;
        let len = u8::try_from(id.len())
            .map_err(|_| StoreError::Config(format!("data key id {id:?} is longer than 255 bytes")))?;
        let mut out = Vec::with_capacity(BYTES_MAGIC.len() + 1 + id.len() + sealed.len());
        out.extend_from_slice(BYTES_MAGIC);
        out.push(len);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens bytes (plaintext from before encryption reads as is, and a
    /// value sealed in the text format while the column held text opens too).
    pub(crate) fn open_bytes(&self, field: Field, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        if stored.starts_with(TEXT_PREFIX.as_bytes()) {
            let text = std::str::from_utf8(stored)
                .map_err(|e| StoreError::Corrupt(format!("{}.{}: {e}", field.table, field.column)))?;
            return Ok(self.open(field, text)?.into_bytes());
        }
        let Some(rest) = stored.strip_prefix(BYTES_MAGIC) else { return Ok(stored.to_vec()) };
        let malformed = || StoreError::Corrupt(format!("{}.{}: malformed encrypted value", field.table, field.column));
        let (&len, rest) = rest.split_first().ok_or_else(malformed)?;
        let len = usize::from(len);
        let id = rest.get(..len).and_then(|id| std::str::from_utf8(id).ok()).ok_or_else(malformed)?;
        let sealed = rest.get(len..).ok_or_else(malformed)?;
        self.0.open(id, &field.aad(), sealed).map_err(|e| field.refused(e))
    }

    /// A blind index.
    pub(crate) fn index(&self, domain: &str, value: &str) -> String {
        self.0.blind_index(domain, value)
    }

    /// The citizen-ID blind index.
    pub(crate) fn citizen_id_index(&self, id_number: &str) -> String {
        self.index(CITIZEN_ID_DOMAIN, id_number)
    }

    /// The name + birth date blind index (none without a birth date).
    pub(crate) fn name_birth_index(&self, name: &str, birth_date: Option<NaiveDate>) -> Option<String> {
        birth_date
            .map(|date| self.index(NAME_BIRTH_DOMAIN, &format!("{}\u{1f}{date}", rhip_core::normalize_name(name))))
    }

    /// The contact-name blind index (exact name, as the unique key had it).
    pub(crate) fn contact_name_index(&self, name: &str) -> String {
        self.index(CONTACT_NAME_DOMAIN, name)
    }
}

impl Tx<'_> {
    /// The node's cipher for this transaction's rows.
    pub(crate) fn crypt(&self) -> Crypt<'_> {
        Crypt(&*self.inner.cipher)
    }
}

/// A table row's key as the re-encryption walk keeps it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKey {
    /// A text primary key.
    Text(String),
    /// `change_log.seq`.
    Seq(i64),
    /// `fed_batches_out (peer_region, seq)`.
    PeerSeq(String, i64),
}

/// What one batch of [`Store::reencrypt_batch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReencryptBatch {
    /// Rows read.
    pub examined: u64,
    /// Values sealed again (or for the first time) under the current key.
    pub rewritten: u64,
    /// Values left alone because another writer changed the row meanwhile
    /// (it sealed them itself; the next pass looks again).
    pub skipped: u64,
    /// Where the next batch starts; `None` when the table is done.
    pub next: Option<RowKey>,
}

/// How the stored values of a column divide among key ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// `table.column`.
    pub column: String,
    /// Plaintext values (written before encryption at rest).
    pub plaintext: u64,
    /// Values per key id.
    pub by_key: std::collections::BTreeMap<String, u64>,
}

/// Whether a stored value needs sealing under `current`.
fn stale_text(stored: &str, current: &str) -> bool {
    text_key_id(stored) != Some(current)
}

fn stale_bytes(stored: &[u8], current: &str) -> bool {
    bytes_key_id(stored) != Some(current)
}

/// Key of the `node_meta` row that says plaintext from before encryption at
/// rest may remain (set by the migration, cleared by the first full pass).
const BACKFILL_KEY: &str = "encryption_backfill";

impl Store {
    /// The cipher this store seals with.
    pub fn cipher(&self) -> &dyn FieldCipher {
        &*self.inner.cipher
    }

    /// Seals, once, the plaintext an upgraded database still holds: runs a
    /// full re-encryption pass when the migration left its marker in
    /// `node_meta`, then removes the marker. A fresh database's pass has
    /// nothing to do; later calls cost one lookup.
    pub fn encrypt_plaintext_once(&self, batch: i64) -> Result<u64, StoreError> {
        let pending = self.read(|tx| {
            Ok(node_meta::table.find(BACKFILL_KEY).select(node_meta::value).get_result::<String>(tx.conn).optional()?)
        })?;
        if pending.is_none() {
            return Ok(0);
        }
        let mut rewritten = 0;
        for table in ENCRYPTED_TABLES {
            let mut after = None;
            loop {
                let step = self.reencrypt_batch(table, after.as_ref(), batch)?;
                rewritten += step.rewritten;
                match step.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        self.write(|tx| {
            diesel::delete(node_meta::table.find(BACKFILL_KEY)).execute(tx.conn)?;
            Ok(())
        })?;
        if rewritten > 0 {
            self.scrub_free_space()?;
        }
        Ok(rewritten)
    }

    /// Leaves no copy of what was just sealed in the database's files: on
    /// SQLite the old plaintext sat in the WAL and in pages the rewrite
    /// freed, so the WAL is checkpointed and truncated, the file rebuilt
    /// (`VACUUM`) and the WAL truncated again. On PostgreSQL a dump shows
    /// only live rows; the dead ones go with the server's (auto)vacuum.
    fn scrub_free_space(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        let _writer =
            self.inner.sqlite_writer.as_ref().map(|lock| lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let mut conn = self.inner.pool.get()?;
        if let crate::DbConn::Sqlite(sqlite) = &mut *conn {
            sqlite.batch_execute("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }

    /// Seals again, under the current key, the encrypted values of up to
    /// `limit` rows of `table` after `after` (plaintext included; blind
    /// indexes filled where missing), in one transaction. Idempotent: a value
    /// already under the current key is left alone, so an interrupted
    /// rotation resumes by running again. Each value is written only if the
    /// row still holds what was read (compare-and-set), so a node serving
    /// meanwhile never loses a write to it.
    pub fn reencrypt_batch(
        &self,
        table: &str,
        after: Option<&RowKey>,
        limit: i64,
    ) -> Result<ReencryptBatch, StoreError> {
        let current = self.cipher().current_key_id().map_err(|e| StoreError::Config(e.to_string()))?;
        let limit = limit.clamp(1, 100_000);
        self.write(|tx| {
            tx.take_write_lock()?;
            tx.reencrypt_rows(table, after, limit, &current)
        })
    }

    /// How the values of every encrypted column divide among key ids and
    /// plaintext (`rhip keys status`; a key can be retired when it counts
    /// nothing).
    pub fn key_usage(&self) -> Result<Vec<KeyUsage>, StoreError> {
        self.read(|tx| ENCRYPTED_COLUMNS.iter().map(|field| tx.column_usage(*field)).collect())
    }
}

/// Counts a stored value into its column's usage.
fn tally(usage: &mut KeyUsage, id: Option<&str>) {
    match id {
        Some(id) => *usage.by_key.entry(id.to_string()).or_default() += 1,
        None => usage.plaintext += 1,
    }
}

impl Tx<'_> {
    /// On SQLite, takes the database's write lock before reading, so the
    /// rows read cannot change before they are written (another process
    /// waits on the busy timeout instead of failing this transaction).
    fn take_write_lock(&mut self) -> Result<(), StoreError> {
        if let crate::DbConn::Sqlite(_) = self.conn {
            diesel::update(node_meta::table.filter(node_meta::key.eq("region")))
                .set(node_meta::value.eq(node_meta::value))
                .run(self.conn)?;
        }
        Ok(())
    }

    fn column_usage(&mut self, field: Field) -> Result<KeyUsage, StoreError> {
        let mut usage = KeyUsage { column: format!("{}.{}", field.table, field.column), ..KeyUsage::default() };
        // Only the value's head is needed to name its key: 64 characters or bytes.
        macro_rules! text_heads {
            ($table:ident, $column:ident) => {{
                let heads: Vec<Option<String>> = $table::table
                    .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>(concat!(
                        "substr(",
                        stringify!($column),
                        ", 1, 64)"
                    )))
                    .fetch_all(self.conn)?;
                for head in heads.iter().flatten() {
                    tally(&mut usage, text_key_id(head));
                }
            }};
        }
        macro_rules! byte_heads {
            ($table:ident, $column:ident) => {{
                let heads: Vec<Option<Vec<u8>>> = $table::table
                    .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Binary>>(concat!(
                        "substr(",
                        stringify!($column),
                        ", 1, 64)"
                    )))
                    .fetch_all(self.conn)?;
                for head in heads.iter().flatten() {
                    tally(&mut usage, bytes_key_id(head));
                }
            }};
        }
        match (field.table, field.column) {
            ("persons", "name") => text_heads!(persons, name),
            ("persons", "id_number") => text_heads!(persons, id_number),
            ("persons", "phone") => text_heads!(persons, phone),
            ("persons", "address_line") => text_heads!(persons, address_line),
            ("person_contacts", "name") => text_heads!(person_contacts, name),
            ("person_contacts", "phone") => text_heads!(person_contacts, phone),
            ("households", "address_line") => text_heads!(households, address_line),
            ("submissions", "raw") => byte_heads!(submissions, raw),
            ("submissions", "ack") => byte_heads!(submissions, ack),
            ("submissions", "errors") => text_heads!(submissions, errors),
            ("submissions", "z_segments") => text_heads!(submissions, z_segments),
            ("documents", "content") => byte_heads!(documents, content),
            ("change_log", "payload") => byte_heads!(change_log, payload),
            ("fed_batches_out", "payload") => byte_heads!(fed_batches_out, payload),
            ("fed_dead_letters", "change") => text_heads!(fed_dead_letters, change),
            (table, column) => return Err(StoreError::Config(format!("{table}.{column} is not an encrypted column"))),
        }
        Ok(usage)
    }

    /// Seals `stored` again when it is not under `current`: (plaintext, new value).
    fn renew_text(&self, field: Field, stored: &str, current: &str) -> Result<Option<(String, String)>, StoreError> {
        if !stale_text(stored, current) {
            return Ok(None);
        }
        let plain = self.crypt().open(field, stored)?;
        let sealed = self.crypt().seal(field, &plain)?;
        Ok(Some((plain, sealed)))
    }

    fn renew_bytes(&self, field: Field, stored: &[u8], current: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !stale_bytes(stored, current) {
            return Ok(None);
        }
        let plain = self.crypt().open_bytes(field, stored)?;
        Ok(Some(self.crypt().seal_bytes(field, &plain)?))
    }

    fn reencrypt_rows(
        &mut self,
        table: &str,
        after: Option<&RowKey>,
        limit: i64,
        current: &str,
    ) -> Result<ReencryptBatch, StoreError> {
        let mut out = ReencryptBatch::default();
        let after_text = match after {
            Some(RowKey::Text(key)) => key.clone(),
            _ => String::new(),
        };
        // Counts one compare-and-set write.
        fn count(out: &mut ReencryptBatch, written: usize) {
            if written == 1 {
                out.rewritten += 1;
            } else {
                out.skipped += 1;
            }
        }
        match table {
            "persons" => {
                type Row = (
                    String,
                    String,
                    Option<NaiveDate>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let rows: Vec<Row> = persons::table
                    .filter(persons::id.gt(&after_text))
                    .order(persons::id.asc())
                    .limit(limit)
                    .select((
                        persons::id,
                        persons::name,
                        persons::birth_date,
                        persons::id_number,
                        persons::phone,
                        persons::address_line,
                        persons::id_number_index,
                        persons::name_index,
                    ))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, name, birth_date, id_number, phone, address_line, id_number_index, name_index) in rows {
                    let renewed = self.renew_text(PERSON_NAME, &name, current)?;
                    if renewed.is_some() || (name_index.is_none() && birth_date.is_some()) {
                        let (plain, sealed) = match renewed {
                            Some(pair) => pair,
                            None => (self.crypt().open(PERSON_NAME, &name)?, name.clone()),
                        };
                        let index = self.crypt().name_birth_index(&plain, birth_date);
                        let written =
                            diesel::update(persons::table.filter(persons::id.eq(&id)).filter(persons::name.eq(&name)))
                                .set((persons::name.eq(&sealed), persons::name_index.eq(&index)))
                                .run(self.conn)?;
                        count(&mut out, written);
                    }
                    if let Some(stored) = &id_number {
                        let renewed = self.renew_text(PERSON_ID_NUMBER, stored, current)?;
                        if renewed.is_some() || id_number_index.is_none() {
                            let (plain, sealed) = match renewed {
                                Some(pair) => pair,
                                None => (self.crypt().open(PERSON_ID_NUMBER, stored)?, stored.clone()),
                            };
                            let index = self.crypt().citizen_id_index(&plain);
                            let written = diesel::update(
                                persons::table.filter(persons::id.eq(&id)).filter(persons::id_number.eq(stored)),
                            )
                            .set((persons::id_number.eq(&sealed), persons::id_number_index.eq(&index)))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                    if let Some(stored) = &phone {
                        if let Some((_, sealed)) = self.renew_text(PERSON_PHONE, stored, current)? {
                            let written = diesel::update(
                                persons::table.filter(persons::id.eq(&id)).filter(persons::phone.eq(stored)),
                            )
                            .set(persons::phone.eq(&sealed))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                    if let Some(stored) = &address_line {
                        if let Some((_, sealed)) = self.renew_text(PERSON_ADDRESS, stored, current)? {
                            let written = diesel::update(
                                persons::table.filter(persons::id.eq(&id)).filter(persons::address_line.eq(stored)),
                            )
                            .set(persons::address_line.eq(&sealed))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                }
            }
            "person_contacts" => {
                let rows: Vec<(String, String, Option<String>, Option<String>)> = person_contacts::table
                    .filter(person_contacts::id.gt(&after_text))
                    .order(person_contacts::id.asc())
                    .limit(limit)
                    .select((
                        person_contacts::id,
                        person_contacts::name,
                        person_contacts::phone,
                        person_contacts::name_index,
                    ))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, name, phone, name_index) in rows {
                    let renewed = self.renew_text(CONTACT_NAME, &name, current)?;
                    if renewed.is_some() || name_index.is_none() {
                        let (plain, sealed) = match renewed {
                            Some(pair) => pair,
                            None => (self.crypt().open(CONTACT_NAME, &name)?, name.clone()),
                        };
                        let index = self.crypt().contact_name_index(&plain);
                        let written = diesel::update(
                            person_contacts::table
                                .filter(person_contacts::id.eq(&id))
                                .filter(person_contacts::name.eq(&name)),
                        )
                        .set((person_contacts::name.eq(&sealed), person_contacts::name_index.eq(&index)))
                        .run(self.conn)?;
                        count(&mut out, written);
                    }
                    if let Some(stored) = &phone {
                        if let Some((_, sealed)) = self.renew_text(CONTACT_PHONE, stored, current)? {
                            let written = diesel::update(
                                person_contacts::table
                                    .filter(person_contacts::id.eq(&id))
                                    .filter(person_contacts::phone.eq(stored)),
                            )
                            .set(person_contacts::phone.eq(&sealed))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                }
            }
            "households" => {
                let rows: Vec<(String, Option<String>)> = households::table
                    .filter(households::id.gt(&after_text))
                    .order(households::id.asc())
                    .limit(limit)
                    .select((households::id, households::address_line))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, address_line) in rows {
                    if let Some(stored) = &address_line {
                        if let Some((_, sealed)) = self.renew_text(HOUSEHOLD_ADDRESS, stored, current)? {
                            let written = diesel::update(
                                households::table
                                    .filter(households::id.eq(&id))
                                    .filter(households::address_line.eq(stored)),
                            )
                            .set(households::address_line.eq(&sealed))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                }
            }
            "submissions" => {
                type Row = (String, Vec<u8>, Vec<u8>, Option<String>, Option<String>);
                let rows: Vec<Row> = submissions::table
                    .filter(submissions::id.gt(&after_text))
                    .order(submissions::id.asc())
                    .limit(limit)
                    .select((
                        submissions::id,
                        submissions::raw,
                        submissions::ack,
                        submissions::errors,
                        submissions::z_segments,
                    ))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, raw, ack, errors, z_segments) in rows {
                    let row = || submissions::table.filter(submissions::id.eq(id.clone()));
                    if let Some(sealed) = self.renew_bytes(SUBMISSION_RAW, &raw, current)? {
                        let written = diesel::update(row().filter(submissions::raw.eq(&raw)))
                            .set(submissions::raw.eq(&sealed))
                            .run(self.conn)?;
                        count(&mut out, written);
                    }
                    if let Some(sealed) = self.renew_bytes(SUBMISSION_ACK, &ack, current)? {
                        let written = diesel::update(row().filter(submissions::ack.eq(&ack)))
                            .set(submissions::ack.eq(&sealed))
                            .run(self.conn)?;
                        count(&mut out, written);
                    }
                    if let Some(stored) = &errors {
                        if let Some((_, sealed)) = self.renew_text(SUBMISSION_ERRORS, stored, current)? {
                            let written = diesel::update(row().filter(submissions::errors.eq(stored)))
                                .set(submissions::errors.eq(&sealed))
                                .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                    if let Some(stored) = &z_segments {
                        if let Some((_, sealed)) = self.renew_text(SUBMISSION_Z_SEGMENTS, stored, current)? {
                            let written = diesel::update(row().filter(submissions::z_segments.eq(stored)))
                                .set(submissions::z_segments.eq(&sealed))
                                .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                }
            }
            "documents" => {
                let rows: Vec<(String, Option<Vec<u8>>)> = documents::table
                    .filter(documents::id.gt(&after_text))
                    .order(documents::id.asc())
                    .limit(limit)
                    .select((documents::id, documents::content))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, content) in rows {
                    if let Some(stored) = &content {
                        if let Some(sealed) = self.renew_bytes(DOCUMENT_CONTENT, stored, current)? {
                            let written = diesel::update(
                                documents::table.filter(documents::id.eq(&id)).filter(documents::content.eq(stored)),
                            )
                            .set(documents::content.eq(&sealed))
                            .run(self.conn)?;
                            count(&mut out, written);
                        }
                    }
                }
            }
            "change_log" => {
                let after_seq = match after {
                    Some(RowKey::Seq(seq)) => *seq,
                    _ => i64::MIN,
                };
                let rows: Vec<(i64, Vec<u8>)> = change_log::table
                    .filter(change_log::seq.gt(after_seq))
                    .order(change_log::seq.asc())
                    .limit(limit)
                    .select((change_log::seq, change_log::payload))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Seq(r.0))).flatten();
                for (seq, payload) in rows {
                    if let Some(sealed) = self.renew_bytes(CHANGE_PAYLOAD, &payload, current)? {
                        let written = diesel::update(
                            change_log::table.filter(change_log::seq.eq(seq)).filter(change_log::payload.eq(&payload)),
                        )
                        .set(change_log::payload.eq(&sealed))
                        .run(self.conn)?;
                        count(&mut out, written);
                    }
                }
            }
            "fed_batches_out" => {
                let (after_peer, after_seq) = match after {
                    Some(RowKey::PeerSeq(peer, seq)) => (peer.clone(), *seq),
                    _ => (String::new(), i64::MIN),
                };
                let rows: Vec<(String, i64, Vec<u8>)> = fed_batches_out::table
                    .filter(
                        fed_batches_out::peer_region
                            .gt(&after_peer)
                            .or(fed_batches_out::peer_region.eq(&after_peer).and(fed_batches_out::seq.gt(after_seq))),
                    )
                    .order((fed_batches_out::peer_region.asc(), fed_batches_out::seq.asc()))
                    .limit(limit)
                    .select((fed_batches_out::peer_region, fed_batches_out::seq, fed_batches_out::payload))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next = (rows.len() as i64 == limit)
                    .then(|| rows.last().map(|r| RowKey::PeerSeq(r.0.clone(), r.1)))
                    .flatten();
                for (peer, seq, payload) in rows {
                    if let Some(sealed) = self.renew_bytes(BATCH_PAYLOAD, &payload, current)? {
                        let written = diesel::update(
                            fed_batches_out::table
                                .filter(fed_batches_out::peer_region.eq(&peer))
                                .filter(fed_batches_out::seq.eq(seq))
                                .filter(fed_batches_out::payload.eq(&payload)),
                        )
                        .set(fed_batches_out::payload.eq(&sealed))
                        .run(self.conn)?;
                        count(&mut out, written);
                    }
                }
            }
            "fed_dead_letters" => {
                let rows: Vec<(String, String)> = fed_dead_letters::table
                    .filter(fed_dead_letters::id.gt(&after_text))
                    .order(fed_dead_letters::id.asc())
                    .limit(limit)
                    .select((fed_dead_letters::id, fed_dead_letters::change))
                    .fetch_all(self.conn)?;
                out.examined = rows.len() as u64;
                out.next =
                    (rows.len() as i64 == limit).then(|| rows.last().map(|r| RowKey::Text(r.0.clone()))).flatten();
                for (id, change) in rows {
                    if let Some((_, sealed)) = self.renew_text(DEAD_LETTER_CHANGE, &change, current)? {
                        let written = diesel::update(
                            fed_dead_letters::table
                                .filter(fed_dead_letters::id.eq(&id))
                                .filter(fed_dead_letters::change.eq(&change)),
                        )
                        .set(fed_dead_letters::change.eq(&sealed))
                        .run(self.conn)?;
                        count(&mut out, written);
                    }
                }
            }
            other => return Err(StoreError::Config(format!("{other} holds no encrypted column"))),
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_read_from_both_formats() {
        assert_eq!(text_key_id("enc1:abc:AAAA"), Some("abc"));
        assert_eq!(text_key_id("张三"), None);
        let mut bytes = BYTES_MAGIC.to_vec();
        bytes.push(3);
        bytes.extend_from_slice(b"abcdef");
        assert_eq!(bytes_key_id(&bytes), Some("abc"));
        assert_eq!(bytes_key_id(b"MSH|^~\\&"), None);
        // A text-format value in a column that is binary now.
        assert_eq!(bytes_key_id(b"enc1:abc:AAAA"), Some("abc"));
    }

    /// A fixed-key cipher, enough to seal and open.
    struct TestCipher;

    impl FieldCipher for TestCipher {
        fn current_key_id(&self) -> Result<String, CipherError> {
            Ok("k1".into())
        }
        fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<(String, Vec<u8>), CipherError> {
            // Not encryption: the test only needs the formats round-tripped.
            let mut out = aad.to_vec();
            out.extend_from_slice(plain);
            Ok(("k1".into(), out))
        }
        fn open(&self, key_id: &str, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
            if key_id != "k1" {
                return Err(CipherError::UnknownKey(key_id.into()));
            }
            sealed.strip_prefix(aad).map(<[u8]>::to_vec).ok_or(CipherError::Refused)
        }
        fn blind_index(&self, domain: &str, value: &str) -> String {
            format!("{domain}:{value}")
        }
    }

    #[test]
    fn a_value_sealed_as_text_opens_from_a_binary_column() {
        let crypt = Crypt(&TestCipher);
        let text = crypt.seal(CHANGE_PAYLOAD, r#"{"id":"p1"}"#).unwrap();
        assert!(text.starts_with("enc1:k1:"));
        assert_eq!(crypt.open_bytes(CHANGE_PAYLOAD, text.as_bytes()).unwrap(), br#"{"id":"p1"}"#);
        let bytes = crypt.seal_bytes(CHANGE_PAYLOAD, br#"{"id":"p2"}"#).unwrap();
        assert_eq!(bytes_key_id(&bytes), Some("k1"));
        assert_eq!(crypt.open_bytes(CHANGE_PAYLOAD, &bytes).unwrap(), br#"{"id":"p2"}"#);
        // Sealed for another column, it does not open here.
        let other = crypt.seal(PERSON_NAME, "张三").unwrap();
        assert!(crypt.open_bytes(CHANGE_PAYLOAD, other.as_bytes()).is_err());
    }
}
