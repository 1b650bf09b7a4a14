//! `rhip federation rotate-key`: a node takes a new Ed25519 signing key and
//! announces it, signed by its old key, so peers trust the new one without
//! an operator copying files; both keys are accepted during the overlap.
//!
//! The old key is kept as `keys/previous-<kid>.pem` (tokens it signed stay
//! valid until they expire) and the announcement as `keys/announcement.jws`,
//! which the node sends with every batch and receipt once restarted.

use super::init::write_private;
use crate::cli::FederationRotateKeyArgs;
use crate::Failure;
use anyhow::Context;
use rhip_auth::NodeKey;
use rhip_store::NewAuditEntry;

/// Runs `rhip federation rotate-key`.
pub fn rotate(args: &FederationRotateKeyArgs) -> Result<(), Failure> {
    let settings = super::load_settings(&args.config)?;
    let path = settings.keys.signing_key.clone();
    let old_pem = std::fs::read_to_string(&path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let old = NodeKey::from_pem(&old_pem).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let (new, new_pem) = NodeKey::generate().context("generate the new signing key")?;
    let region = settings.node.region;
    let announcement = old.announce(region.as_str(), &new).context("sign the key announcement")?;
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();

    // The old key first, then the new one swapped in by rename, so a crash
    // leaves either the old key in place or both keys on disk.
    let previous = dir.join(format!("previous-{}.pem", old.key_id()));
    if !previous.exists() {
        write_private(&previous, &old_pem)?;
    }
    let staged = dir.join("signing.pem.new");
    let _ = std::fs::remove_file(&staged);
    write_private(&staged, &new_pem)?;
    let staged_announcement = dir.join("announcement.jws.new");
    let _ = std::fs::remove_file(&staged_announcement);
    write_private(&staged_announcement, &announcement)?;
    std::fs::rename(&staged, &path).with_context(|| format!("replace {}", path.display()))?;
    let announcement_path = dir.join("announcement.jws");
    std::fs::rename(&staged_announcement, &announcement_path)
        .with_context(|| format!("write {}", announcement_path.display()))?;

    let store = super::open_store(&settings)?;
    store
        .write(|tx| {
            tx.append_audit(&NewAuditEntry {
                actor: super::facility::operator(),
                role: Some("node_admin".into()),
                actor_region: Some(region.to_string()),
                action: "rotate_key".into(),
                resource_type: "signing_key".into(),
                resource_id: Some(new.key_id().to_string()),
                outcome: "success".into(),
                detail: Some(format!("previous key {}", old.key_id())),
                ..NewAuditEntry::default()
            })
        })
        .context("audit the rotation")?;
    if args.json {
        let summary = serde_json::json!({
            "region": region.as_str(),
            "previous_key_id": old.key_id(),
            "key_id": new.key_id(),
            "announcement": announcement_path,
        });
        println!("{summary}");
    } else {
        println!("node {region}: signing key {} replaces {}", new.key_id(), old.key_id());
        println!("announcement {}", announcement_path.display());
        println!("restart the node to sign with the new key; peers learn it from the announcement and accept both");
    }
    Ok(())
}
