//! Verifying the chain and its seals from genesis, archives first, then the database.

use super::*;

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
    pub(super) fn describe(self) -> &'static str {
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
pub(super) struct Walk<'k> {
    pub(super) keys: &'k PeerKeys,
    pub(super) region: String,
    /// Last position walked.
    pub(super) position: i64,
    /// Stored chain hash at `position` (each link is checked against the
    /// stored one before it, so one damaged entry is reported once).
    pub(super) chain_hash: String,
    /// Highest seal position checked, so a seal met twice (in an archive
    /// and in the database) counts once.
    pub(super) sealed_up_to: i64,
    pub(super) report: Report,
    /// (position, discovery order) of the first broken entry so far.
    pub(super) first_order: Option<(i64, u64)>,
    /// Problems found so far, including those not kept in the report.
    pub(super) found: u64,
    /// Lowest position of a problem since the current archive began.
    pub(super) segment_first: Option<i64>,
}

impl<'k> Walk<'k> {
    pub(super) fn new(keys: &'k PeerKeys, region: RegionCode) -> Walk<'k> {
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

    pub(super) fn problem(&mut self, problem: Problem) {
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
    pub(super) fn link(&mut self, link: &ChainLink, entry: Option<&AuditRecord>, archive: Option<&str>) {
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
    pub(super) fn seal(&mut self, seal: &AuditSeal, archive: Option<&str>) {
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
pub(super) struct SealCursor {
    pub(super) page: std::collections::VecDeque<AuditSeal>,
    pub(super) after: i64,
    pub(super) done: bool,
}

impl SealCursor {
    pub(super) fn new() -> SealCursor {
        SealCursor { page: Default::default(), after: 0, done: false }
    }

    pub(super) fn peek(&mut self, store: &Store) -> Result<Option<&AuditSeal>, StoreError> {
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

    pub(super) fn next(&mut self) -> Option<AuditSeal> {
        self.page.pop_front()
    }

    /// Checks every seal at or below the walk's position: at it, against
    /// the chain; below it, the position was never met.
    pub(super) fn meet(&mut self, store: &Store, walk: &mut Walk<'_>) -> Result<(), StoreError> {
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
    pub(super) fn skip_through(&mut self, store: &Store, position: i64) -> Result<(), StoreError> {
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
pub(super) struct GivenArchive {
    pub(super) path: PathBuf,
    /// As given on the command line, for messages.
    pub(super) name: String,
    /// The file name alone, as `audit_archives.file_name` records it.
    pub(super) base_name: String,
    /// The header, or why it could not be read.
    pub(super) header: Result<ArchiveHeader, String>,
}

pub(super) fn unreadable(path: &Path, error: &std::io::Error) -> AuditChainError {
    AuditChainError::Usage(format!("cannot read archive {}: {error}", path.display()))
}

pub(super) fn open_archive(path: &Path) -> Result<GivenArchive, AuditChainError> {
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
pub(super) fn verify_archive(
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
