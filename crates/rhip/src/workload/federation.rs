//! Federation links in process for `rhip bench federation` and the
//! criterion benches: nodes with their own SQLite stores and keys, a county
//! that writes synthetic changes through the store's normal paths, and the
//! steps of the node's pusher (`push.rs` `drain`/`cut`/`send`) and listener
//! (`context.rs` `receive`) with the time of each step recorded.

use super::bench_store_options;
use rhip_core::{CitizenId, RegionCode};
use std::time::{Duration, Instant};

use super::{FAMILY, GIVEN};

/// The regions of `bench federation`, county first, each the parent of the one before.
pub const CHAIN: [&str; 4] = ["330106", "330100", "330000", "000000"];

/// The facility that records the county's synthetic visits.
pub const FED_FACILITY: &str = "H330106001";

/// One node of `bench federation`: its own SQLite store, signing key, the
/// keys of its neighbours, its tier's default retention and its links.
pub struct FedNode {
    /// The node's region.
    pub me: RegionCode,
    /// Its database.
    pub store: rhip_store::Store,
    /// Its batch and receipt signing key.
    pub key: rhip_auth::NodeKey,
    /// The keys of its parent and child in the chain.
    pub peer_keys: rhip_auth::PeerKeys,
    /// Its tier's default retention.
    pub policy: rhip_federation::RetentionPolicy,
    /// Its parent and children.
    pub links: rhip_federation::Links,
}

/// Opens one node per region of `chain` in `dir`, each the parent of the one
/// before, trusting its neighbours' keys, with its links registered as
/// `Pusher::new` does.
pub fn open_chain(dir: &std::path::Path, chain: &[&str]) -> anyhow::Result<Vec<FedNode>> {
    let regions = chain.iter().map(|r| RegionCode::parse(r)).collect::<Result<Vec<_>, _>>()?;
    let mut keys = Vec::new();
    for _ in &regions {
        keys.push(rhip_auth::NodeKey::generate()?.0);
    }
    let publics: Vec<Vec<u8>> = keys.iter().map(|k| k.public_key().to_vec()).collect();
    let mut nodes = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let me = regions[i];
        let parent = regions.get(i + 1).copied();
        let children: Vec<RegionCode> = i.checked_sub(1).map(|c| regions[c]).into_iter().collect();
        let mut peer_keys = rhip_auth::PeerKeys::new();
        for n in [i.checked_sub(1), Some(i + 1)].into_iter().flatten().filter(|n| *n < regions.len()) {
            peer_keys.trust(regions[n].as_str(), &publics[n]);
        }
        let url = format!("sqlite://{}", dir.join(format!("{me}.db")).display());
        let store = rhip_store::Store::open(&url, me, &bench_store_options()?)?;
        store.migrate()?;
        store.write(|tx| {
            tx.bind_node_region()?;
            if let Some(parent) = parent {
                tx.ensure_link(parent.as_str(), "parent")?;
            }
            for child in &children {
                tx.ensure_link(child.as_str(), "child")?;
            }
            Ok(())
        })?;
        let policy = rhip_federation::RetentionPolicy::default_for(me.tier());
        nodes.push(FedNode {
            me,
            store,
            key,
            peer_keys,
            policy,
            links: rhip_federation::Links { me, parent, children },
        });
    }
    Ok(nodes)
}

/// Writes, through the store's normal write paths, the facility (the first
/// time) and then persons numbered from `first`, each with an outpatient
/// (every fifth an inpatient) encounter and an EHR index entry, until
/// `changes` change-log rows are written. Returns how many changes are
/// pending for the parent. Calls with `first` apart by more than the
/// persons written before (a third of their changes) never collide; keep
/// every number below 25 million (the citizen IDs stay unique).
pub fn generate_changes(node: &FedNode, first: u64, changes: u64) -> anyhow::Result<u64> {
    use rhip_core::{EhrEntryKind, EncounterType, FacilityKind, Identifier, PersonDemographics};
    let county = node.me;
    let facility = rhip_core::FacilityCode::parse(FED_FACILITY)?;
    let mut written = node.store.write(|tx| {
        if tx.get_facility(FED_FACILITY)?.is_some() {
            return Ok(0u64);
        }
        tx.insert_facility(&rhip_store::NewFacility {
            code: facility,
            name: "bench".into(),
            kind: FacilityKind::Hospital,
            region: county,
        })?;
        Ok(1)
    })?;
    let mut n = first;
    while written < changes {
        written = node.store.write(|tx| {
            let mut written = written;
            for _ in 0..500 {
                if written >= changes {
                    break;
                }
                let days = i64::try_from(n % 25_000).unwrap_or(0);
                let birth =
                    chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
                let id = CitizenId::generate(county, birth, u16::try_from(n / 25_000 % 1000).unwrap_or(0));
                let index = usize::try_from(n % 144).unwrap_or(0);
                let person = tx.insert_person(&rhip_store::NewPerson {
                    demographics: PersonDemographics {
                        name: format!("{}{}", FAMILY[index % 12], GIVEN[index / 12]),
                        sex: id.sex(),
                        birth_date: Some(birth),
                        id_number: Some(id),
                        ethnicity: None,
                        marital_status: None,
                        phone: Some(format!("139{:08}", n % 100_000_000)),
                        address_region: Some(county),
                        address_line: Some(format!("测试路{n}号")),
                        identifiers: vec![Identifier {
                            system: FED_FACILITY.into(),
                            value: format!("B{n:08}"),
                            type_code: Some("MR".into()),
                        }],
                    },
                    home_region: county,
                    non_resident: false,
                })?;
                written += 1;
                let now = chrono::Utc::now().naive_utc();
                let inpatient = n % 5 == 0;
                if written < changes {
                    let visit = tx.insert_encounter(&rhip_store::NewEncounter {
                        person_id: person.id.clone(),
                        facility_code: FED_FACILITY.into(),
                        visit_number: format!("V{n:08}"),
                        encounter_type: if inpatient { EncounterType::Inpatient } else { EncounterType::Outpatient },
                        status: "finished".into(),
                        admitted_at: Some(now),
                        discharged_at: None,
                        department: Some("内科".into()),
                        location: Some("内科^301^2".into()),
                        prior_location: None,
                        attending: Some("D001^张^医生".into()),
                        admit_reason: None,
                    })?;
                    written += 1;
                    if written < changes {
                        tx.insert_ehr_entry(&rhip_store::NewEhrEntry {
                            person_id: person.id.clone(),
                            kind: EhrEntryKind::Encounter,
                            occurred_at: now,
                            facility_code: Some(FED_FACILITY.into()),
                            summary: if inpatient { "住院 内科" } else { "门诊 内科" }.into(),
                            encounter_id: Some(visit.id),
                            document_id: None,
                        })?;
                        written += 1;
                    }
                }
                n += 1;
            }
            Ok(written)
        })?;
    }
    let parent = node.links.parent.map(|p| p.to_string()).unwrap_or_default();
    let pending = node.store.read(|tx| tx.pending_count(&parent))?;
    Ok(u64::try_from(pending).unwrap_or(0))
}

/// Where the time of one link went, summed over its batches.
#[derive(Default)]
pub struct LinkClock {
    /// `unacked_batches` reads plus the cut transactions.
    pub cut: Duration,
    /// `changes_for_link` inside the cut.
    pub cut_select: Duration,
    /// Change-log rows to wire changes (payload JSON parsed) and routing.
    pub cut_wire: Duration,
    /// `seal`: payload JSON, SHA-256 and the Ed25519 manifest signature.
    pub cut_seal: Duration,
    /// `save_outbound_batch` and the cut's commit.
    pub cut_save: Duration,
    /// `verify_batch` at the receiver: signature, digest, payload JSON.
    pub verify: Duration,
    /// The receiver's transaction, commit included.
    pub apply: Duration,
    /// `apply_remote_change` for every change of the batch.
    pub apply_changes: Duration,
    /// The receiver's COMMIT.
    pub apply_commit: Duration,
    /// Each batch's apply transaction.
    pub apply_each: Vec<Duration>,
    /// Sent mark, receipt verification and acknowledgement at the sender.
    pub ack: Duration,
    /// `verify_receipt` alone.
    pub ack_verify: Duration,
    /// Batches acknowledged.
    pub batches: u64,
    /// Changes in them.
    pub changes: u64,
    /// Changes the receiver parked.
    pub parked: u64,
}

impl LinkClock {
    /// Adds the cut times of a cut made on another thread.
    fn add_cut(&mut self, other: &LinkClock) {
        self.cut += other.cut;
        self.cut_select += other.cut_select;
        self.cut_wire += other.cut_wire;
        self.cut_seal += other.cut_seal;
        self.cut_save += other.cut_save;
    }
}

/// What a link step reports to the caller, for the end-to-end latency.
pub enum LinkEvent {
    /// A batch was cut at the sender (the instant its transaction began).
    Cut(Instant, Vec<String>),
    /// A batch was applied at the receiver (the instant its transaction committed).
    Applied(Instant, Vec<String>),
}

/// One turn of a link's push loop, as `Pusher::drain` does it: send the
/// unacknowledged batches (with `cut_ahead`, cutting the next while the last
/// is applied), else cut one more. False when nothing is pending.
pub fn link_step(
    from: &FedNode,
    to: &FedNode,
    batch_size: usize,
    cut_ahead: bool,
    clock: &mut LinkClock,
    on_event: &mut dyn FnMut(LinkEvent),
) -> anyhow::Result<bool> {
    let peer = to.me.as_str();
    let started = Instant::now();
    let unacked = from.store.read(|tx| tx.unacked_batches(peer, 16))?;
    if unacked.is_empty() {
        let cut = fed_cut(from, to.me, batch_size, clock)?;
        clock.cut += started.elapsed();
        return Ok(match cut {
            None => false,
            Some(ids) => {
                if !ids.is_empty() {
                    on_event(LinkEvent::Cut(started, ids));
                }
                true
            }
        });
    }
    clock.cut += started.elapsed();
    let count = unacked.len();
    for (index, batch) in unacked.into_iter().enumerate() {
        let seq = u64::try_from(batch.seq).unwrap_or(0);
        // As the pusher does: the next batch is cut while this one is applied.
        let cut_ahead = cut_ahead && index + 1 == count && count < rhip_server::federation::push::CUT_AHEAD;
        let (received, cut) = std::thread::scope(|scope| {
            let cutter = cut_ahead.then(|| {
                scope.spawn(|| {
                    let mut cut_clock = LinkClock::default();
                    let started = Instant::now();
                    let cut = fed_cut(from, to.me, batch_size, &mut cut_clock);
                    cut_clock.cut += started.elapsed();
                    (started, cut, cut_clock)
                })
            });
            let received = fed_receive(to, from.me, &batch.manifest, &batch.payload, clock);
            let cut = cutter.map(|handle| handle.join().map_err(|_| anyhow::anyhow!("the cutting thread panicked")));
            (received, cut)
        });
        let (receipt, ids) = received?;
        on_event(LinkEvent::Applied(Instant::now(), ids));
        if let Some(cut) = cut {
            let (cut_started, cut, cut_clock) = cut?;
            clock.add_cut(&cut_clock);
            if let Some(ids) = cut?.filter(|ids| !ids.is_empty()) {
                on_event(LinkEvent::Cut(cut_started, ids));
            }
        }
        let acked = Instant::now();
        let verifying = Instant::now();
        let checked = rhip_federation::verify_receipt(&from.peer_keys, peer, &receipt, &batch.digest, seq)
            .map_err(|e| anyhow::anyhow!("receipt from {peer} refused: {}", e.message()))?;
        clock.ack_verify += verifying.elapsed();
        let parked = i64::try_from(checked.parked.len()).unwrap_or(i64::MAX);
        from.store.write(|tx| tx.acknowledge_sent_batch(peer, batch.seq, &batch.digest, &receipt, parked))?;
        clock.ack += acked.elapsed();
        clock.batches += 1;
        clock.changes += u64::try_from(batch.record_count).unwrap_or(0);
        clock.parked += u64::try_from(parked).unwrap_or(0);
    }
    Ok(true)
}

/// Cuts the next batch for `peer` with the pusher's own `cut_batch`, timing
/// its steps. `None` when nothing is pending; else the ids sealed (empty
/// when the rows examined were not for this peer and the cursor only moved
/// on).
pub fn fed_cut(
    node: &FedNode,
    peer: RegionCode,
    batch_size: usize,
    clock: &mut LinkClock,
) -> anyhow::Result<Option<Vec<String>>> {
    use rhip_server::federation::push::{cut_batch, CutPhase};
    let parent_policy =
        (node.links.parent == Some(peer)).then(|| rhip_federation::RetentionPolicy::default_for(peer.tier()));
    let limit = i64::try_from(batch_size).unwrap_or(1000);
    let mut lap = Instant::now();
    let (mut select, mut wire_time, mut seal_time) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let cut = node.store.write(|tx| {
        cut_batch(tx, &node.key, node.me, &node.links, peer, parent_policy.as_ref(), limit, &mut |phase| {
            let now = Instant::now();
            *match phase {
                CutPhase::Selected => &mut select,
                CutPhase::Wired => &mut wire_time,
                CutPhase::Sealed => &mut seal_time,
            } += now - lap;
            lap = now;
        })
    })?;
    clock.cut_select += select;
    clock.cut_wire += wire_time;
    clock.cut_seal += seal_time;
    clock.cut_save += lap.elapsed();
    Ok(cut)
}

/// Receives one batch as `FederationContext::receive` does: verify, check
/// the sequence, apply every change and sign, record and audit the receipt
/// in one transaction. Returns the receipt and the ids of the changes.
pub fn fed_receive(
    node: &FedNode,
    from: RegionCode,
    manifest: &str,
    payload: &[u8],
    clock: &mut LinkClock,
) -> anyhow::Result<(String, Vec<String>)> {
    use rhip_federation::{check_sequence, verify_batch, Sequencing};
    use rhip_store::StoreError;
    let verifying = Instant::now();
    let batch = verify_batch(&node.peer_keys, from.as_str(), node.me.as_str(), manifest, payload)
        .map_err(|refusal| anyhow::anyhow!("{} refused batch from {from}: {}", node.me, refusal.message()))?;
    clock.verify += verifying.elapsed();
    let seq = batch.manifest.seq;
    let policy = node.policy;
    let applying = Instant::now();
    let (mut changes_time, mut body_end) = (Duration::ZERO, applying);
    let signed = node.store.write(|tx| {
        let (last_seq, last_digest) = tx.inbound_state(from.as_str())?;
        let last_seq = u64::try_from(last_seq).unwrap_or(0);
        match check_sequence(last_seq, &last_digest, &batch.manifest) {
            Sequencing::Next => {}
            other => return Err(StoreError::Corrupt(format!("batch {seq} out of sequence: {other:?}"))),
        }
        let loop_start = Instant::now();
        let (applied, parked) =
            rhip_server::federation::context::apply_changes(tx, &policy, &node.links, from, &batch.payload.changes)?;
        changes_time = loop_start.elapsed();
        let signed =
            rhip_server::federation::context::record_applied_batch(tx, &node.key, from, &batch, applied, parked)?;
        body_end = Instant::now();
        Ok(signed)
    })?;
    let took = applying.elapsed();
    clock.apply += took;
    clock.apply_each.push(took);
    clock.apply_changes += changes_time;
    clock.apply_commit += body_end.elapsed();
    Ok((signed, batch.payload.changes.into_iter().map(|c| c.id).collect()))
}
