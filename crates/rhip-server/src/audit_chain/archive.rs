//! Writing sealed segments to archive files and removing them from the database.

use super::*;

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
pub(super) struct Hashing<W> {
    pub(super) inner: W,
    pub(super) digest: Sha256,
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
pub(super) fn write_archive(
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
pub(super) fn write_line<T: Serialize>(out: &mut impl Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value).context("write the archive")?;
    out.write_all(b"\n").context("write the archive")
}
