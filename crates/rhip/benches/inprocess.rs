//! Criterion benches of RHIP's in-process stages, on the same synthetic
//! input as `rhip bench` (`rhip::workload`): HL7 v2 reading, CDA reading and
//! validation, and a federation batch's cut, seal, verification and apply.
//! `cargo bench -p rhip --bench inprocess` runs them all; criterion keeps
//! its baselines under target/criterion and reports changes between runs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use rhip::workload::federation::{fed_cut, fed_receive, generate_changes, open_chain, FedNode, LinkClock, CHAIN};
use rhip::workload::{synthetic_adt, synthetic_document};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Messages or documents per measured iteration.
const PER_ITERATION: u64 = 1_000;

fn hl7(c: &mut Criterion) {
    let today = chrono::Utc::now().date_naive();
    let messages: Vec<Vec<u8>> = (0..PER_ITERATION).map(|n| synthetic_adt("H330106001", "C", n)).collect();
    let mut group = c.benchmark_group("hl7");
    group.throughput(Throughput::Elements(PER_ITERATION));
    group.bench_function("receive_adt_x1000", |b| {
        b.iter(|| {
            for message in &messages {
                black_box(rhip_hl7::receive(black_box(message), today));
            }
        })
    });
    group.finish();
}

fn cda(c: &mut Criterion) {
    let today = chrono::Utc::now().date_naive();
    let limits = rhip_cda::Limits::default();
    let documents: Vec<Vec<u8>> = (0..100).map(|n| synthetic_document("H330106001", "C", n)).collect();
    let mut group = c.benchmark_group("cda");
    group.throughput(Throughput::Elements(documents.len() as u64));
    group.bench_function("read_validate_c0053_x100", |b| {
        b.iter(|| {
            for document in &documents {
                if let Ok(read) = rhip_cda::read(black_box(document), &limits) {
                    black_box(rhip_cda::validate(&read, today));
                }
            }
        })
    });
    group.finish();
}

/// A county and its parent, each with its own SQLite file, and the next
/// person number for more synthetic changes.
struct Link {
    _dir: tempfile::TempDir,
    nodes: Vec<FedNode>,
    next_person: u64,
}

impl Link {
    fn new() -> Link {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary folder: {e}"));
        let nodes = open_chain(dir.path(), &CHAIN[..2]).unwrap_or_else(|e| panic!("open the link: {e}"));
        Link { _dir: dir, nodes, next_person: 0 }
    }

    /// The oldest batch cut and not yet acknowledged.
    fn unacked(&self) -> rhip_store::OutboundBatch {
        let (from, to) = (&self.nodes[0], &self.nodes[1]);
        from.store
            .read(|tx| tx.unacked_batches(to.me.as_str(), 1))
            .unwrap_or_else(|e| panic!("read the batch: {e}"))
            .pop()
            .unwrap_or_else(|| panic!("no batch was cut"))
    }

    /// Cuts the next batch of `size` changes, writing more at the county
    /// when none are pending (untimed by the callers).
    fn cut(&mut self, size: usize, clock: &mut LinkClock) -> Duration {
        loop {
            let started = Instant::now();
            let cut =
                fed_cut(&self.nodes[0], self.nodes[1].me, size, clock).unwrap_or_else(|e| panic!("cut a batch: {e}"));
            let took = started.elapsed();
            if matches!(cut, Some(ids) if !ids.is_empty()) {
                return took;
            }
            generate_changes(&self.nodes[0], self.next_person, 30_000).unwrap_or_else(|e| panic!("changes: {e}"));
            self.next_person += 20_000;
        }
    }
}

fn federation(c: &mut Criterion) {
    let mut group = c.benchmark_group("federation");
    group.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(Duration::from_secs(8));
    let size = usize::try_from(PER_ITERATION).unwrap_or(1000);
    group.throughput(Throughput::Elements(PER_ITERATION));

    // Cut: select, route, seal (SHA-256, Ed25519), save and commit.
    let mut cutting = Link::new();
    group.bench_function(BenchmarkId::new("cut_seal_save", size), |b| {
        b.iter_custom(|iters| {
            let mut clock = LinkClock::default();
            (0..iters).map(|_| cutting.cut(size, &mut clock)).sum()
        })
    });
    drop(cutting);

    // Seal and verify alone, on one cut batch's payload.
    let mut sealing = Link::new();
    let mut clock = LinkClock::default();
    sealing.cut(size, &mut clock);
    let batch = sealing.unacked();
    let (from, to) = (&sealing.nodes[0], &sealing.nodes[1]);
    let verified =
        rhip_federation::verify_batch(&to.peer_keys, from.me.as_str(), to.me.as_str(), &batch.manifest, &batch.payload)
            .unwrap_or_else(|refusal| panic!("verify: {}", refusal.message()));
    group.bench_function(BenchmarkId::new("seal", size), |b| {
        b.iter(|| {
            rhip_federation::seal(
                &from.key,
                from.me.as_str(),
                to.me.as_str(),
                1,
                rhip_federation::GENESIS,
                &verified.payload,
            )
        })
    });
    group.bench_function(BenchmarkId::new("verify", size), |b| {
        b.iter(|| {
            rhip_federation::verify_batch(
                &to.peer_keys,
                from.me.as_str(),
                to.me.as_str(),
                &batch.manifest,
                &batch.payload,
            )
        })
    });
    drop(sealing);

    // Receive: verify, then one transaction that applies every change,
    // signs the receipt, records the batch and audits it, and commits.
    let mut applying = Link::new();
    group.bench_function(BenchmarkId::new("verify_apply_commit", size), |b| {
        b.iter_custom(|iters| {
            let mut clock = LinkClock::default();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                applying.cut(size, &mut clock);
                let batch = applying.unacked();
                let (from, to) = (&applying.nodes[0], &applying.nodes[1]);
                let started = Instant::now();
                let (receipt, _) = fed_receive(to, from.me, &batch.manifest, &batch.payload, &mut clock)
                    .unwrap_or_else(|e| panic!("receive: {e}"));
                total += started.elapsed();
                from.store
                    .write(|tx| tx.acknowledge_sent_batch(to.me.as_str(), batch.seq, &batch.digest, &receipt, 0))
                    .unwrap_or_else(|e| panic!("acknowledge: {e}"));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, hl7, cda, federation);
criterion_main!(benches);
