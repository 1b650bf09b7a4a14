//! The tamper-evident audit log: sealing the chain head with the node's
//! key, verifying the chain and its seals from genesis (archives first, then
//! the database), and writing sealed segments to archive files.
//!
//! The store chains entries and keeps seals and archive records
//! (`rhip_store::audit_chain`); it knows no keys and no files. This module
//! adds both, and is shared by the scheduled jobs (`jobs.rs`) and the
//! `rhip audit seal|verify|archive` commands.
//!
//! A seal is a compact JWS (`typ` [`SEAL_TYPE`]) over [`SealClaims`]. It is
//! checked against the node's current key and the keys it signed with
//! before a rotation (`keys/previous-*.pem`).
//!
//! An archive is a JSON-lines file ([`ARCHIVE_FORMAT`]): a header line
//! ([`ArchiveHeader`]), then every entry of the segment in chain order with
//! its chain link, each seal right after the entry at its position. Its
//! SHA-256 is recorded in `audit_archives` when the archived rows are
//! removed, so a changed byte is found even where it changes no hash.
//!
//! Verification streams: it pages through the database a thousand links at
//! a time and reads archives line by line, so it holds no more than a page
//! in memory however long the log is.

use anyhow::Context;
use chrono::{NaiveDateTime, SubsecRound};
use rhip_auth::{JwsError, NodeKey, PeerKeys};
use rhip_core::RegionCode;
use rhip_store::{
    audit_chain_hash, audit_entry_hash, AuditArchive, AuditFence, AuditRecord, AuditSeal, ChainLink, ChainRun,
    NewAuditEntry, Store, StoreError, GENESIS_CHAIN_HASH,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// JWS `typ` of a seal, so a seal is never mistaken for a token or a batch manifest.
pub const SEAL_TYPE: &str = "rhip-audit-seal+jws";

/// `format` of an archive file's header.
pub const ARCHIVE_FORMAT: &str = "rhip-audit-archive";

/// Version of the archive format this code writes and reads.
pub const ARCHIVE_VERSION: u32 = 1;

/// Links (and seals) read from the database per page.
const PAGE: i64 = 1_000;

/// Problems kept in a report; the count covers all of them.
const KEPT_PROBLEMS: usize = 100;

/// What a seal signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealClaims {
    /// The node's region: a seal of one node never vouches for another's log.
    pub region: String,
    /// The chain position sealed up to.
    pub position: i64,
    /// The chain hash at that position.
    pub chain_hash: String,
    /// When it was sealed, UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (as stored).
    pub sealed_at: String,
}

fn format_time(time: &NaiveDateTime) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The keys a node's seals may carry: its current key and those it signed
/// with before a rotation, all bound to its region.
pub fn seal_keys(region: RegionCode, current: &NodeKey, previous: &[NodeKey]) -> PeerKeys {
    let mut keys = PeerKeys::new();
    for key in std::iter::once(current).chain(previous) {
        keys.trust(region.as_str(), key.public_key());
    }
    keys
}

/// Seals the chain head with `key` when it moved since the last seal;
/// returns the new seal, or `None` when there was nothing new to seal.
pub fn seal_head(store: &Store, key: &NodeKey) -> anyhow::Result<Option<AuditSeal>> {
    let region = store.region();
    let (head, last) =
        store.read(|tx| Ok((tx.audit_chain_head()?, tx.last_audit_seal()?))).context("read the chain head")?;
    let Some(head) = head else { return Ok(None) };
    if last.as_ref().is_some_and(|seal| seal.position >= head.position) {
        return Ok(None);
    }
    let sealed_at = chrono::Utc::now().naive_utc().trunc_subsecs(6);
    let claims = SealClaims {
        region: region.as_str().to_string(),
        position: head.position,
        chain_hash: head.chain_hash.clone(),
        sealed_at: format_time(&sealed_at),
    };
    let signature = key.sign_jws(SEAL_TYPE, &claims).context("sign the seal")?;
    let seal = AuditSeal {
        position: head.position,
        chain_hash: head.chain_hash,
        key_id: key.key_id().to_string(),
        signature,
        sealed_at,
    };
    match store.write(|tx| tx.insert_audit_seal(&seal)) {
        Ok(()) => Ok(Some(seal)),
        // Another process sealed the same head first.
        Err(StoreError::Conflict(_)) => Ok(None),
        // The head was archived meanwhile: nothing to seal.
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(error) => Err(anyhow::Error::new(error).context("store the seal")),
    }
}

/// Chains pending entries now (twice, so the watermark settles when nothing
/// is in flight) and seals the head: what `rhip audit seal` does.
pub fn chain_and_seal(store: &Store, key: &NodeKey) -> anyhow::Result<(ChainRun, Option<AuditSeal>)> {
    let first = store.chain_audit(None).context("chain the audit log")?;
    let second = store.chain_audit(Some(&first.fence)).context("chain the audit log")?;
    let seal = seal_head(store, key)?;
    Ok((ChainRun { chained: first.chained + second.chained, ..second }, seal))
}

/// The chaining job: remembers the last run's fence so the watermark can
/// pass transactions that were open then; overlapping runs skip.
pub struct Chainer {
    store: Store,
    fence: Mutex<Option<AuditFence>>,
}

impl Chainer {
    /// A chainer over the node's store.
    pub fn new(store: Store) -> Chainer {
        Chainer { store, fence: Mutex::new(None) }
    }

    /// One run; failures are logged, never raised (the next run retries).
    /// Several processes of one node may run it at once: their transactions
    /// take turns on the chain's lock. Blocking: run on the blocking pool.
    pub fn run(&self) {
        let Ok(mut fence) = self.fence.try_lock() else { return };
        match self.store.chain_audit(fence.as_ref()) {
            Ok(run) => {
                if run.chained > 0 {
                    tracing::debug!(chained = run.chained, watermark = run.watermark, "audit entries chained");
                }
                *fence = Some(run.fence);
            }
            Err(error) => tracing::warn!(%error, "audit entries not chained"),
        }
    }
}

/// The sealing job: seals the head with the node's key when it moved.
pub struct Sealer {
    store: Store,
    key: NodeKey,
    busy: Mutex<()>,
}

impl Sealer {
    /// A sealer signing with `key`.
    pub fn new(store: Store, key: NodeKey) -> Sealer {
        Sealer { store, key, busy: Mutex::new(()) }
    }

    /// One run; failures are logged, never raised. When several processes
    /// of one node seal the same head at once, one seal is stored and the
    /// others stand down. Blocking: run on the blocking pool.
    pub fn run(&self) {
        let Ok(_busy) = self.busy.try_lock() else { return };
        match seal_head(&self.store, &self.key) {
            Ok(Some(seal)) => tracing::info!(position = seal.position, key_id = %seal.key_id, "audit chain sealed"),
            Ok(None) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "audit chain not sealed"),
        }
    }
}

/// The header line of an archive file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveHeader {
    /// Always [`ARCHIVE_FORMAT`].
    pub format: String,
    /// [`ARCHIVE_VERSION`] when written.
    pub version: u32,
    /// Region of the node whose log this is.
    pub region: String,
    /// First chain position in the file.
    pub from_position: i64,
    /// Last chain position in the file.
    pub to_position: i64,
    /// Chain hash before `from_position`: genesis (64 zeros) or the previous archive's end.
    pub start_prev_hash: String,
    /// Chain hash at `to_position`.
    pub end_chain_hash: String,
    /// Entries in the file (`to_position - from_position + 1`).
    pub count: i64,
    /// When the file was written (UTC).
    pub created_at: String,
}

/// One line after the header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArchiveLine {
    /// An entry with its chain link.
    Entry {
        /// Chain position.
        position: i64,
        /// Entry hash as chained.
        entry_hash: String,
        /// Chain hash at this position.
        chain_hash: String,
        /// When it was chained.
        chained_at: NaiveDateTime,
        /// The audit entry, every column.
        entry: Box<ArchivedEntry>,
    },
    /// A seal at the position of the entry before it.
    Seal {
        /// Position sealed.
        position: i64,
        /// Chain hash sealed.
        chain_hash: String,
        /// Signing key id.
        key_id: String,
        /// Compact JWS.
        signature: String,
        /// When sealed.
        sealed_at: NaiveDateTime,
    },
}

/// Every column of an audit entry, as archived: the stored record itself
/// (serialised with every field, unknown fields refused when read back).
pub type ArchivedEntry = AuditRecord;

/// What kind of damage verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An entry's content does not match the hash it was chained with (altered).
    EntryHash,
    /// A chain hash does not follow from the previous one, or positions are
    /// missing or out of order.
    ChainLink,
    /// A chained entry is gone from `audit_log` (deleted).
    MissingRow,
    /// An entry at or below the chainer's watermark is not in the chain
    /// (slipped in behind the chain).
    UnchainedRow,
    /// A seal's signature does not verify with the node's keys, or its
    /// claims differ from the stored seal.
    SealSignature,
    /// A seal's chain hash is not the chain's at its position, or its
    /// position is not in the chain.
    SealHash,
    /// An archive file's SHA-256 or hashes differ from what was recorded
    /// when it was archived.
    ArchiveDigest,
    /// An archive file cannot be read as an archive (a line is not what the
    /// format says).
    ArchiveFormat,
    /// A recorded archive was not given, so its positions were not checked.
    ArchiveMissing,
    /// A given archive file matches no archive recorded in the database.
    ArchiveUnknown,
}

impl ProblemKind {
    fn describe(self) -> &'static str {
        match self {
            ProblemKind::EntryHash => "entry hash mismatch (the entry was altered)",
            ProblemKind::ChainLink => "chain link broken",
            ProblemKind::MissingRow => "entry missing from audit_log (deleted)",
            ProblemKind::UnchainedRow => "entry not in the chain (slipped in behind it)",
            ProblemKind::SealSignature => "seal signature invalid",
            ProblemKind::SealHash => "seal does not match the chain",
            ProblemKind::ArchiveDigest => "archive file digest mismatch",
            ProblemKind::ArchiveFormat => "archive file unreadable as an archive",
            ProblemKind::ArchiveMissing => "archived segment not given (--archive)",
            ProblemKind::ArchiveUnknown => "archive file not recorded in the database",
        }
    }
}

/// One problem found, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// Chain position, when the problem has one.
    pub position: Option<i64>,
    /// `audit_log.seq` of the entry, when known.
    pub audit_seq: Option<i64>,
    /// Entry id, when known.
    pub audit_id: Option<String>,
    /// Archive file, when the problem is in one.
    pub archive: Option<String>,
    /// Details for the operator.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut place = Vec::new();
        if let Some(position) = self.position {
            place.push(format!("position {position}"));
        }
        if let Some(seq) = self.audit_seq {
            place.push(format!("audit seq {seq}"));
        }
        if let Some(id) = &self.audit_id {
            place.push(format!("id {id}"));
        }
        if let Some(archive) = &self.archive {
            place.push(format!("archive {archive}"));
        }
        write!(f, "{} at {}: {}", self.kind.describe(), place.join(", "), self.detail)
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The node's region.
    pub region: String,
    /// True when no problem was found.
    pub intact: bool,
    /// Chain entries whose hashes were recomputed (archives and database).
    pub entries_checked: u64,
    /// Of those, entries read from archive files.
    pub archived_entries_checked: u64,
    /// Seals whose signature and hash were checked.
    pub seals_checked: u64,
    /// Archive files read.
    pub archives_checked: u64,
    /// The last chain position (none while the chain is empty).
    pub head_position: Option<i64>,
    /// The last sealed position.
    pub last_seal_position: Option<i64>,
    /// Chained entries after the last seal (their integrity rests on the next seal).
    pub unsealed_entries: i64,
    /// Entries not chained yet (the chainer picks them up; not an error).
    pub unchained: i64,
    /// The first broken entry, in chain order.
    pub first_broken: Option<Problem>,
    /// Problems found (the first hundred).
    pub problems: Vec<Problem>,
    /// How many problems in all.
    pub problems_total: u64,
}

/// Why a verification or an archive could not be done at all (as opposed
/// to finding the chain broken).
#[derive(Debug, thiserror::Error)]
pub enum AuditChainError {
    /// The operator asked for something impossible (an unreadable archive
    /// file, a `--through` past the last seal, an existing output file).
    #[error("{0}")]
    Usage(String),
    /// Anything else (database, disk).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl From<StoreError> for AuditChainError {
    fn from(error: StoreError) -> AuditChainError {
        AuditChainError::Runtime(error.into())
    }
}

/// The state of a walk along the chain: what the next link must continue
/// and the problems found so far.
struct Walk<'k> {
    keys: &'k PeerKeys,
    region: String,
    /// Last position walked.
    position: i64,
    /// Stored chain hash at `position` (each link is checked against the
    /// stored one before it, so one damaged entry is reported once).
    chain_hash: String,
    /// Highest seal position checked, so a seal met twice (in an archive
    /// and in the database) counts once.
    sealed_up_to: i64,
    report: Report,
    /// (position, discovery order) of the first broken entry so far.
    first_order: Option<(i64, u64)>,
    /// Problems found so far, including those not kept in the report.
    found: u64,
    /// Lowest position of a problem since the current archive began.
    segment_first: Option<i64>,
}

impl<'k> Walk<'k> {
    fn new(keys: &'k PeerKeys, region: RegionCode) -> Walk<'k> {
        Walk {
            keys,
            region: region.as_str().to_string(),
            position: 0,
            chain_hash: GENESIS_CHAIN_HASH.to_string(),
            sealed_up_to: 0,
            report: Report {
                region: region.as_str().to_string(),
                intact: true,
                entries_checked: 0,
                archived_entries_checked: 0,
                seals_checked: 0,
                archives_checked: 0,
                head_position: None,
                last_seal_position: None,
                unsealed_entries: 0,
                unchained: 0,
                first_broken: None,
                problems: Vec::new(),
                problems_total: 0,
            },
            first_order: None,
            found: 0,
            segment_first: None,
        }
    }

    fn problem(&mut self, problem: Problem) {
        self.found += 1;
        self.report.intact = false;
        self.report.problems_total += 1;
        // The first broken entry is the lowest position; problems without
        // one (entries outside the chain) come after every positioned one.
        let order = (problem.position.unwrap_or(i64::MAX), self.found);
        if let Some(position) = problem.position {
            self.segment_first = Some(self.segment_first.map_or(position, |first| first.min(position)));
        }
        if self.first_order.is_none_or(|first| order < first) {
            self.first_order = Some(order);
            self.report.first_broken = Some(problem.clone());
        }
        if self.report.problems.len() < KEPT_PROBLEMS {
            self.report.problems.push(problem);
        }
    }

    /// Checks one link and its entry (`None`: the entry is gone).
    fn link(&mut self, link: &ChainLink, entry: Option<&AuditRecord>, archive: Option<&str>) {
        let expected = self.position + 1;
        let at = |kind, detail: String| Problem {
            kind,
            position: Some(link.position),
            audit_seq: Some(link.audit_seq),
            audit_id: entry.map(|e| e.id.clone()),
            archive: archive.map(str::to_string),
            detail,
        };
        if link.position != expected {
            let detail = if link.position > expected {
                format!("positions {expected}..={} are missing from the chain", link.position - 1)
            } else {
                format!("position {} follows position {} (out of order or repeated)", link.position, self.position)
            };
            self.problem(at(ProblemKind::ChainLink, detail));
        }
        match entry {
            None => {
                self.problem(at(ProblemKind::MissingRow, format!("audit_log has no row with seq {}", link.audit_seq)))
            }
            Some(entry) => {
                let computed = audit_entry_hash(entry);
                if entry.seq != link.audit_seq {
                    self.problem(at(
                        ProblemKind::EntryHash,
                        format!("the entry has seq {} but the link is for seq {}", entry.seq, link.audit_seq),
                    ));
                } else if computed != link.entry_hash {
                    self.problem(at(
                        ProblemKind::EntryHash,
                        format!("the entry hashes to {computed}, the chain recorded {}", link.entry_hash),
                    ));
                }
            }
        }
        let linked = audit_chain_hash(&self.chain_hash, &link.entry_hash);
        if link.position == expected && linked != link.chain_hash {
            self.problem(at(
                ProblemKind::ChainLink,
                format!("the chain hash should be {linked} (previous hash and entry hash), found {}", link.chain_hash),
            ));
        }
        self.position = link.position.max(self.position);
        self.chain_hash.clone_from(&link.chain_hash);
        self.report.entries_checked += 1;
        if archive.is_some() {
            self.report.archived_entries_checked += 1;
        }
        self.report.head_position = Some(self.position);
    }

    /// Checks a seal met at the walk's current position.
    fn seal(&mut self, seal: &AuditSeal, archive: Option<&str>) {
        let at = |kind, detail: String| Problem {
            kind,
            position: Some(seal.position),
            audit_seq: None,
            audit_id: None,
            archive: archive.map(str::to_string),
            detail,
        };
        let mut problems = Vec::new();
        match self.keys.verify_jws::<SealClaims>(&seal.signature, SEAL_TYPE) {
            Err(JwsError::UnknownKey(kid)) => problems.push(at(
                ProblemKind::SealSignature,
                format!("signed with key {kid:?}, which is neither this node's key nor one of keys/previous-*.pem"),
            )),
            Err(error) => problems.push(at(ProblemKind::SealSignature, error.to_string())),
            Ok(verified) => {
                let claims = verified.claims;
                let expected = SealClaims {
                    region: self.region.clone(),
                    position: seal.position,
                    chain_hash: seal.chain_hash.clone(),
                    sealed_at: format_time(&seal.sealed_at),
                };
                if claims != expected || verified.kid != seal.key_id {
                    problems.push(at(
                        ProblemKind::SealSignature,
                        format!(
                            "the signed claims {} do not match the stored seal {}",
                            serde_json::to_string(&claims).unwrap_or_default(),
                            serde_json::to_string(&expected).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        if seal.position != self.position {
            problems.push(at(ProblemKind::SealHash, format!("position {} is not in the chain", seal.position)));
        } else if seal.chain_hash != self.chain_hash {
            problems.push(at(
                ProblemKind::SealHash,
                format!("sealed chain hash {} but the chain has {} there", seal.chain_hash, self.chain_hash),
            ));
        }
        for problem in problems {
            self.problem(problem);
        }
        if seal.position > self.sealed_up_to {
            self.sealed_up_to = seal.position;
            self.report.seals_checked += 1;
            self.report.last_seal_position = Some(seal.position);
        }
    }
}

/// Seals of the database in position order, a page at a time.
struct SealCursor {
    page: std::collections::VecDeque<AuditSeal>,
    after: i64,
    done: bool,
}

impl SealCursor {
    fn new() -> SealCursor {
        SealCursor { page: Default::default(), after: 0, done: false }
    }

    fn peek(&mut self, store: &Store) -> Result<Option<&AuditSeal>, StoreError> {
        if self.page.is_empty() && !self.done {
            let after = self.after;
            let page = store.read(|tx| tx.audit_seals_after(after, PAGE))?;
            self.done = (page.len() as i64) < PAGE;
            if let Some(last) = page.last() {
                self.after = last.position;
            }
            self.page.extend(page);
        }
        Ok(self.page.front())
    }

    fn next(&mut self) -> Option<AuditSeal> {
        self.page.pop_front()
    }

    /// Checks every seal at or below the walk's position: at it, against
    /// the chain; below it, the position was never met.
    fn meet(&mut self, store: &Store, walk: &mut Walk<'_>) -> Result<(), StoreError> {
        while let Some(seal) = self.peek(store)? {
            if seal.position > walk.position {
                break;
            }
            if let Some(seal) = self.next() {
                walk.seal(&seal, None);
            }
        }
        Ok(())
    }

    /// Drops the seals at or below `position` unchecked (an archived
    /// segment that was not given; that is reported on its own).
    fn skip_through(&mut self, store: &Store, position: i64) -> Result<(), StoreError> {
        while let Some(seal) = self.peek(store)? {
            if seal.position > position {
                break;
            }
            self.next();
        }
        Ok(())
    }
}

/// An archive file given to verification, with its header read.
struct GivenArchive {
    path: PathBuf,
    /// As given on the command line, for messages.
    name: String,
    /// The file name alone, as `audit_archives.file_name` records it.
    base_name: String,
    /// The header, or why it could not be read.
    header: Result<ArchiveHeader, String>,
}

fn unreadable(path: &Path, error: &std::io::Error) -> AuditChainError {
    AuditChainError::Usage(format!("cannot read archive {}: {error}", path.display()))
}

fn open_archive(path: &Path) -> Result<GivenArchive, AuditChainError> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
    let mut first = Vec::new();
    std::io::BufReader::new(file).read_until(b'\n', &mut first).map_err(|e| unreadable(path, &e))?;
    let header = match serde_json::from_slice::<ArchiveHeader>(&first) {
        Ok(header) if header.format == ARCHIVE_FORMAT && header.version == ARCHIVE_VERSION => Ok(header),
        Ok(header) => Err(format!(
            "format {:?} version {} is not {ARCHIVE_FORMAT} version {ARCHIVE_VERSION}",
            header.format, header.version
        )),
        Err(error) => Err(format!("the header line is not an archive header: {error}")),
    };
    Ok(GivenArchive {
        path: path.to_path_buf(),
        name: path.display().to_string(),
        base_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        header,
    })
}

/// Verifies the whole chain: the given archives in chain order, then the
/// database, every entry hash and link, every seal, and the entries outside
/// the chain. `Err` only when verification could not run (an unreadable
/// file, the database); a broken chain is a report with `intact = false`.
pub fn verify(store: &Store, keys: &PeerKeys, archives: &[PathBuf]) -> Result<Report, AuditChainError> {
    let mut given = archives.iter().map(|path| open_archive(path)).collect::<Result<Vec<_>, _>>()?;
    let recorded = store.read(|tx| tx.audit_archives())?;
    let mut walk = Walk::new(keys, store.region());
    let mut seals = SealCursor::new();

    for record in &recorded {
        // A file is matched by the positions its header names or, when its
        // header is damaged, by the file name recorded.
        let matching = given
            .iter()
            .position(|a| {
                a.header
                    .as_ref()
                    .is_ok_and(|h| h.from_position == record.from_position && h.to_position == record.to_position)
            })
            .or_else(|| given.iter().position(|a| a.header.is_err() && a.base_name == record.file_name));
        match matching {
            Some(index) => {
                let archive = given.remove(index);
                verify_archive(store, &mut walk, &mut seals, &archive, record)?;
            }
            None => walk.problem(Problem {
                kind: ProblemKind::ArchiveMissing,
                position: Some(record.from_position),
                audit_seq: None,
                audit_id: None,
                archive: Some(record.file_name.clone()),
                detail: format!(
                    "positions {}..={} were archived to {} (sha256 {}); give it with --archive to check them",
                    record.from_position, record.to_position, record.file_name, record.file_sha256
                ),
            }),
        }
        // The database continues from what was recorded, so its own part is
        // checked even when an archive is damaged or missing.
        seals.skip_through(store, record.to_position)?;
        walk.position = record.to_position;
        walk.chain_hash.clone_from(&record.end_chain_hash);
        walk.report.head_position = Some(record.to_position);
    }
    for archive in &given {
        let (position, detail) = match &archive.header {
            Ok(header) => (
                Some(header.from_position),
                format!(
                    "no archive of positions {}..={} is recorded in this node's database",
                    header.from_position, header.to_position
                ),
            ),
            Err(problem) => (None, format!("{problem}; and no archive named {} is recorded", archive.base_name)),
        };
        let kind = if archive.header.is_ok() { ProblemKind::ArchiveUnknown } else { ProblemKind::ArchiveFormat };
        walk.problem(Problem {
            kind,
            position,
            audit_seq: None,
            audit_id: None,
            archive: Some(archive.name.clone()),
            detail,
        });
    }

    loop {
        let after = walk.position;
        let page = store.read(|tx| tx.audit_chain_after(after, PAGE))?;
        for chained in &page {
            // Seals at the positions walked so far are met before the next link.
            seals.meet(store, &mut walk)?;
            walk.link(&chained.link, chained.entry.as_ref(), None);
        }
        seals.meet(store, &mut walk)?;
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    while let Some(seal) = seals.peek(store)?.cloned() {
        seals.next();
        walk.problem(Problem {
            kind: ProblemKind::SealHash,
            position: Some(seal.position),
            audit_seq: None,
            audit_id: None,
            archive: None,
            detail: format!("the seal is beyond the chain's head (position {})", walk.position),
        });
    }

    let (watermark, slipped_in) = store.read(|tx| {
        let watermark = tx.audit_chain_watermark()?;
        Ok((watermark, tx.unchained_audit_between(i64::MIN, watermark, KEPT_PROBLEMS as i64)?))
    })?;
    for entry in slipped_in {
        walk.problem(Problem {
            kind: ProblemKind::UnchainedRow,
            position: None,
            audit_seq: Some(entry.seq),
            audit_id: Some(entry.id.clone()),
            archive: None,
            detail: format!(
                "seq {} is at or below the chainer's watermark ({watermark}) but has no place in the chain",
                entry.seq
            ),
        });
    }
    walk.report.unchained = store.read(|tx| tx.count_unchained_audit(watermark))?;
    walk.report.unsealed_entries = walk.position - walk.report.last_seal_position.unwrap_or(0).min(walk.position);
    Ok(walk.report)
}

/// Walks one archive file matched to `record`: entries, links and seals as
/// in the database, then the file's digest and hashes against the record.
fn verify_archive(
    store: &Store,
    walk: &mut Walk<'_>,
    seals: &mut SealCursor,
    archive: &GivenArchive,
    record: &AuditArchive,
) -> Result<(), AuditChainError> {
    let name = archive.name.as_str();
    walk.report.archives_checked += 1;
    walk.segment_first = None;
    let in_archive = |kind, position: i64, detail: String| Problem {
        kind,
        position: Some(position),
        audit_seq: None,
        audit_id: None,
        archive: Some(name.to_string()),
        detail,
    };
    let mut reader =
        std::io::BufReader::new(std::fs::File::open(&archive.path).map_err(|e| unreadable(&archive.path, &e))?);
    let mut digest = Sha256::new();
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).map_err(|e| unreadable(&archive.path, &e))?;
    digest.update(&line);
    let mut readable = match &archive.header {
        Ok(header) => {
            if header.start_prev_hash != record.start_prev_hash
                || header.end_chain_hash != record.end_chain_hash
                || header.region != walk.region
            {
                walk.problem(in_archive(
                    ProblemKind::ArchiveDigest,
                    record.from_position,
                    format!(
                        "the header (region {}, hashes {}..{}) differs from the recorded archive (region {}, hashes {}..{})",
                        header.region,
                        header.start_prev_hash,
                        header.end_chain_hash,
                        walk.region,
                        record.start_prev_hash,
                        record.end_chain_hash
                    ),
                ));
            }
            if walk.chain_hash != header.start_prev_hash || walk.position + 1 != header.from_position {
                walk.problem(in_archive(
                    ProblemKind::ChainLink,
                    header.from_position,
                    format!(
                        "the archive continues position {} with hash {}, the chain is at position {} with hash {}",
                        header.from_position - 1,
                        header.start_prev_hash,
                        walk.position,
                        walk.chain_hash
                    ),
                ));
            }
            walk.position = header.from_position - 1;
            walk.chain_hash.clone_from(&header.start_prev_hash);
            true
        }
        Err(problem) => {
            walk.problem(in_archive(ProblemKind::ArchiveFormat, record.from_position, problem.clone()));
            false
        }
    };
    let mut number = 1usize;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(|e| unreadable(&archive.path, &e))? == 0 {
            break;
        }
        digest.update(&line);
        number += 1;
        if !readable {
            continue;
        }
        match serde_json::from_slice::<ArchiveLine>(&line) {
            Ok(ArchiveLine::Entry { position, entry_hash, chain_hash, chained_at, entry }) => {
                let entry = *entry;
                let link = ChainLink { position, audit_seq: entry.seq, entry_hash, chain_hash, chained_at };
                // Database seals inside the segment are met here too.
                seals.meet(store, walk)?;
                walk.link(&link, Some(&entry), Some(name));
            }
            Ok(ArchiveLine::Seal { position, chain_hash, key_id, signature, sealed_at }) => {
                walk.seal(&AuditSeal { position, chain_hash, key_id, signature, sealed_at }, Some(name));
            }
            Err(error) => {
                let position = walk.position + 1;
                walk.problem(in_archive(
                    ProblemKind::ArchiveFormat,
                    position,
                    format!("line {number} is not an archive line: {error}"),
                ));
                readable = false;
            }
        }
    }
    seals.meet(store, walk)?;
    if readable && (walk.position != record.to_position || walk.chain_hash != record.end_chain_hash) {
        let position = walk.position + 1;
        walk.problem(in_archive(
            ProblemKind::ChainLink,
            position,
            format!(
                "the archive ends at position {} with hash {}, {} with hash {} was recorded",
                walk.position, walk.chain_hash, record.to_position, record.end_chain_hash
            ),
        ));
    }
    let actual = hex::encode(digest.finalize());
    if actual != record.file_sha256 {
        // Named at the first damaged entry of the file when there is one.
        let position = walk.segment_first.unwrap_or(record.from_position);
        walk.problem(in_archive(
            ProblemKind::ArchiveDigest,
            position,
            format!("the file's SHA-256 is {actual}, {} was recorded when it was archived", record.file_sha256),
        ));
    }
    Ok(())
}

/// What `archive` did.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveOutcome {
    /// First position archived.
    pub from_position: i64,
    /// Last position archived.
    pub to_position: i64,
    /// Entries written and removed from the database.
    pub entries: i64,
    /// Seals written into the file.
    pub seals: u64,
    /// The file written.
    pub file: PathBuf,
    /// Its SHA-256.
    pub file_sha256: String,
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.digest.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the sealed entries after the last archive, up to `through` (the
/// last seal by default), to a new file `out`, fsyncs it, then records the
/// archive and removes the archived rows in one transaction, with an audit
/// entry by `actor`. The segment is verified while it is written; a broken
/// one is not archived. Any failure removes the file and leaves the
/// database as it was. `Ok(None)` when nothing sealed is left to archive.
pub fn archive(
    store: &Store,
    keys: &PeerKeys,
    out: &Path,
    through: Option<i64>,
    actor: &str,
) -> Result<Option<ArchiveOutcome>, AuditChainError> {
    if out.exists() {
        return Err(AuditChainError::Usage(format!(
            "{} exists already; archives are never overwritten",
            out.display()
        )));
    }
    let (last_archive, last_seal) = store.read(|tx| Ok((tx.last_audit_archive()?, tx.last_audit_seal()?)))?;
    let (from, start_prev_hash) = match &last_archive {
        Some(last) => (last.to_position + 1, last.end_chain_hash.clone()),
        None => (1, GENESIS_CHAIN_HASH.to_string()),
    };
    let sealed = last_seal.map_or(0, |seal| seal.position);
    let to = match through {
        Some(through) if through > sealed => {
            return Err(AuditChainError::Usage(format!(
                "--through {through} is past the last seal (position {sealed}); run `rhip audit seal` first"
            )))
        }
        Some(through) if through < from => {
            return Err(AuditChainError::Usage(format!(
                "--through {through}: positions up to {} are archived already",
                from - 1
            )))
        }
        Some(through) => through,
        None if sealed < from => return Ok(None),
        None => sealed,
    };
    let end = store
        .read(|tx| tx.audit_chain_link(to))?
        .ok_or_else(|| AuditChainError::Runtime(anyhow::anyhow!("chain position {to} is not in the database")))?;
    let file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(out).map_err(|e| {
            AuditChainError::Usage(format!("cannot create {} (it must not exist yet): {e}", out.display()))
        })?;
    let written = write_archive(store, keys, file, from, to, &start_prev_hash, &end.chain_hash);
    let (file_sha256, seals) = match written {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(out);
            return Err(error);
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The directory entry too, so the file survives a crash.
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    let record = AuditArchive {
        id: rhip_core::new_id().to_string(),
        from_position: from,
        to_position: to,
        start_prev_hash,
        end_chain_hash: end.chain_hash,
        file_name: out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        file_sha256: file_sha256.clone(),
        archived_at: chrono::Utc::now().naive_utc().trunc_subsecs(6),
    };
    let region = store.region();
    let recorded = store.write(|tx| {
        let removed = tx.record_audit_archive(&record)?;
        tx.append_audit(&NewAuditEntry {
            actor: actor.to_string(),
            role: Some("node_admin".into()),
            actor_region: Some(region.as_str().to_string()),
            action: "archive".into(),
            resource_type: "audit_log".into(),
            resource_id: Some(record.id.clone()),
            outcome: "success".into(),
            detail: Some(format!(
                "chain positions {from}..={to} ({removed} entries) archived to {} (sha256 {})",
                record.file_name, record.file_sha256
            )),
            ..NewAuditEntry::default()
        })?;
        Ok(removed)
    });
    if let Err(error) = recorded {
        let _ = std::fs::remove_file(out);
        return Err(match error {
            StoreError::Conflict(message) => AuditChainError::Usage(format!("not archived: {message}")),
            other => AuditChainError::Runtime(anyhow::Error::new(other).context("record the archive")),
        });
    }
    Ok(Some(ArchiveOutcome {
        from_position: from,
        to_position: to,
        entries: to - from + 1,
        seals,
        file: out.to_path_buf(),
        file_sha256,
    }))
}

/// Streams positions `from..=to` (with the seals among them) into `file`,
/// checking them as a verification would; returns the file's SHA-256 and
/// how many seals it holds.
fn write_archive(
    store: &Store,
    keys: &PeerKeys,
    file: std::fs::File,
    from: i64,
    to: i64,
    start_prev_hash: &str,
    end_chain_hash: &str,
) -> Result<(String, u64), AuditChainError> {
    let region = store.region();
    let mut out = Hashing { inner: std::io::BufWriter::new(file), digest: Sha256::new() };
    let header = ArchiveHeader {
        format: ARCHIVE_FORMAT.into(),
        version: ARCHIVE_VERSION,
        region: region.as_str().to_string(),
        from_position: from,
        to_position: to,
        start_prev_hash: start_prev_hash.to_string(),
        end_chain_hash: end_chain_hash.to_string(),
        count: to - from + 1,
        created_at: format_time(&chrono::Utc::now().naive_utc()),
    };
    write_line(&mut out, &header)?;
    let mut walk = Walk::new(keys, region);
    walk.position = from - 1;
    walk.chain_hash = start_prev_hash.to_string();
    let mut seals = SealCursor { page: Default::default(), after: from - 1, done: false };
    let mut seal_count = 0;
    while walk.position < to {
        let after = walk.position;
        let page = store.read(|tx| tx.audit_chain_after(after, PAGE.min(to - after)))?;
        if page.is_empty() {
            break;
        }
        for chained in page {
            walk.link(&chained.link, chained.entry.as_ref(), None);
            if let Some(entry) = chained.entry {
                let line = ArchiveLine::Entry {
                    position: chained.link.position,
                    entry_hash: chained.link.entry_hash,
                    chain_hash: chained.link.chain_hash,
                    chained_at: chained.link.chained_at,
                    entry: Box::new(entry),
                };
                write_line(&mut out, &line)?;
            }
            while let Some(seal) = seals.peek(store)?.filter(|s| s.position <= walk.position).cloned() {
                seals.next();
                walk.seal(&seal, None);
                let line = ArchiveLine::Seal {
                    position: seal.position,
                    chain_hash: seal.chain_hash,
                    key_id: seal.key_id,
                    signature: seal.signature,
                    sealed_at: seal.sealed_at,
                };
                write_line(&mut out, &line)?;
                seal_count += 1;
            }
        }
    }
    if let Some(problem) = walk.report.first_broken {
        return Err(AuditChainError::Runtime(anyhow::anyhow!(
            "not archived: the chain is broken ({problem}); run `rhip audit verify`"
        )));
    }
    if walk.position != to || walk.chain_hash != end_chain_hash {
        return Err(AuditChainError::Runtime(anyhow::anyhow!(
            "not archived: the chain reached position {} with hash {}, expected position {to} with hash \
             {end_chain_hash}; run `rhip audit verify`",
            walk.position,
            walk.chain_hash
        )));
    }
    out.flush().context("write the archive")?;
    let Hashing { inner, digest } = out;
    let file = inner.into_inner().map_err(|e| anyhow::anyhow!("write the archive: {}", e.error()))?;
    file.sync_all().context("fsync the archive")?;
    Ok((hex::encode(digest.finalize()), seal_count))
}

/// Writes `value` as one JSON line.
fn write_line<T: Serialize>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value).context("write the archive")?;
    out.write_all(b"\n").context("write the archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> RegionCode {
        RegionCode::parse("330106").unwrap()
    }

    fn entry(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            id: format!("entry-{seq}"),
            occurred_at: chrono::DateTime::from_timestamp(1_800_000_000 + seq, 0).unwrap().naive_utc(),
            actor: "commission:330106".into(),
            role: Some("commission".into()),
            actor_region: Some("330106".into()),
            facility_code: None,
            action: "read".into(),
            resource_type: "person".into(),
            resource_id: None,
            person_id: None,
            purpose: None,
            outcome: "success".into(),
            http_status: Some(200),
            request_id: None,
            source_ip: None,
            detail: None,
            origin_region: None,
        }
    }

    /// Links for `entries` in order, as the chainer makes them.
    fn chain(entries: &[AuditRecord]) -> Vec<ChainLink> {
        let mut previous = GENESIS_CHAIN_HASH.to_string();
        entries
            .iter()
            .zip(1..)
            .map(|(entry, position)| {
                let entry_hash = audit_entry_hash(entry);
                let chain_hash = audit_chain_hash(&previous, &entry_hash);
                previous.clone_from(&chain_hash);
                ChainLink { position, audit_seq: entry.seq, entry_hash, chain_hash, chained_at: entry.occurred_at }
            })
            .collect()
    }

    fn seal_of(key: &NodeKey, link: &ChainLink) -> AuditSeal {
        let sealed_at = link.chained_at;
        let claims = SealClaims {
            region: "330106".into(),
            position: link.position,
            chain_hash: link.chain_hash.clone(),
            sealed_at: format_time(&sealed_at),
        };
        AuditSeal {
            position: link.position,
            chain_hash: link.chain_hash.clone(),
            key_id: key.key_id().into(),
            signature: key.sign_jws(SEAL_TYPE, &claims).unwrap(),
            sealed_at,
        }
    }

    /// Walks `entries` against `links`, meeting `seals` after their positions.
    fn walk(keys: &PeerKeys, entries: &[Option<AuditRecord>], links: &[ChainLink], seals: &[AuditSeal]) -> Report {
        let mut walk = Walk::new(keys, region());
        for (link, entry) in links.iter().zip(entries) {
            walk.link(link, entry.as_ref(), None);
            for seal in seals.iter().filter(|s| s.position == link.position) {
                walk.seal(seal, None);
            }
        }
        walk.report
    }

    #[test]
    fn an_intact_sealed_chain_passes_and_damage_is_named_at_its_entry() {
        let (key, _) = NodeKey::generate().unwrap();
        let (old, _) = NodeKey::generate().unwrap();
        let keys = seal_keys(region(), &key, std::slice::from_ref(&old));
        let entries: Vec<AuditRecord> = (10..15).map(entry).collect();
        let links = chain(&entries);
        let seals = [seal_of(&old, &links[1]), seal_of(&key, &links[4])];
        let stored: Vec<Option<AuditRecord>> = entries.iter().cloned().map(Some).collect();
        let report = walk(&keys, &stored, &links, &seals);
        assert!(report.intact, "{:?}", report.problems);
        assert_eq!((report.entries_checked, report.seals_checked), (5, 2), "a seal by a previous key verifies");

        // An altered entry is named once, at its own position.
        let mut altered = stored.clone();
        if let Some(entry) = altered[2].as_mut() {
            entry.outcome = "denied".into();
        }
        let report = walk(&keys, &altered, &links, &seals);
        let first = report.first_broken.clone().unwrap();
        assert_eq!((first.kind, first.position, first.audit_seq), (ProblemKind::EntryHash, Some(3), Some(12)));
        assert_eq!(report.problems_total, 1, "{:?}", report.problems);

        // A deleted entry is missing; an entry rewritten with its hash and
        // the links after it recomputed is caught by the next seal.
        let mut deleted = stored.clone();
        deleted[3] = None;
        let first = walk(&keys, &deleted, &links, &seals).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::MissingRow, Some(4)));
        let mut rewritten_entries = entries.clone();
        rewritten_entries[3].actor = "nobody".into();
        let rewritten = chain(&rewritten_entries);
        let stored_rewritten: Vec<Option<AuditRecord>> = rewritten_entries.into_iter().map(Some).collect();
        let first = walk(&keys, &stored_rewritten, &rewritten, &seals).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::SealHash, Some(5)));

        // A seal by a key the node never had.
        let (stranger, _) = NodeKey::generate().unwrap();
        let forged = [seal_of(&stranger, &links[4])];
        let first = walk(&keys, &stored, &links, &forged).first_broken.unwrap();
        assert_eq!((first.kind, first.position), (ProblemKind::SealSignature, Some(5)));
        assert!(first.to_string().contains("position 5"), "{first}");
    }

    #[test]
    fn an_archive_line_round_trips_every_column() {
        let mut original = entry(7);
        original.detail = Some("西湖 \"quoted\"\n".into());
        original.occurred_at += chrono::Duration::microseconds(123_456);
        let line = ArchiveLine::Entry {
            position: 1,
            entry_hash: audit_entry_hash(&original),
            chain_hash: GENESIS_CHAIN_HASH.into(),
            chained_at: original.occurred_at,
            entry: Box::new(original.clone()),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(!text.contains('\n'), "one line: {text}");
        let ArchiveLine::Entry { entry, entry_hash, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("not an entry line: {text}")
        };
        let back = *entry;
        assert_eq!(back, original);
        assert_eq!(audit_entry_hash(&back), entry_hash);
    }
}
