//! `rhip bench federation`: one link, then three hops, in process.

use crate::cli::BenchFederationArgs;
use crate::workload::federation::{generate_changes, link_step, open_chain, FedNode, LinkClock, LinkEvent, CHAIN};
use crate::Failure;
use anyhow::Context;
use std::time::{Duration, Instant};

/// Where a link's time went, in seconds, for the summary.
fn link_summary(clock: &mut LinkClock, from: &FedNode, to: &FedNode) -> serde_json::Value {
    let s = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    serde_json::json!({
        "from": from.me.as_str(),
        "to": to.me.as_str(),
        "batches": clock.batches,
        "changes": clock.changes,
        "parked": clock.parked,
        "seconds": {
            "cut": s(clock.cut),
            "cut_select": s(clock.cut_select),
            "cut_to_wire_and_route": s(clock.cut_wire),
            "cut_seal_sign": s(clock.cut_seal),
            "cut_save_commit": s(clock.cut_save),
            "verify": s(clock.verify),
            "apply_receipt": s(clock.apply),
            "apply_changes": s(clock.apply_changes),
            "apply_commit": s(clock.apply_commit),
            "ack": s(clock.ack),
            "ack_verify_receipt": s(clock.ack_verify),
        },
        "apply_batch_ms": super::latency_ms(&mut clock.apply_each),
    })
}

/// Runs `rhip bench federation`.
pub fn federation(args: &BenchFederationArgs) -> Result<(), Failure> {
    if args.changes < 2 || args.batch == 0 {
        return Err(Failure::usage("--changes must be at least 2 and --batch at least 1"));
    }
    let temporary = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("temporary folder")?),
    };
    let root = args.dir.clone().or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf())).unwrap_or_default();
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };

    // One link: county → municipal.
    let link_dir = root.join("link");
    std::fs::create_dir_all(&link_dir).with_context(|| format!("create {}", link_dir.display()))?;
    let nodes = open_chain(&link_dir, &CHAIN[..2])?;
    let setup = Instant::now();
    let changes = generate_changes(&nodes[0], 0, args.changes)?;
    let setup_seconds = setup.elapsed().as_secs_f64();
    say(format!("link: {changes} changes written at {} in {setup_seconds:.1} s (not timed)", CHAIN[0]));
    let mut clock = LinkClock::default();
    let started = Instant::now();
    while link_step(&nodes[0], &nodes[1], args.batch, true, &mut clock, &mut |_| {})? {}
    let link_seconds = started.elapsed().as_secs_f64();
    if clock.changes != changes {
        return Err(Failure::Runtime(anyhow::anyhow!("{changes} changes written but {} acknowledged", clock.changes)));
    }
    let link_rate = clock.changes as f64 / link_seconds;
    say(format!("link: {} changes in {link_seconds:.2} s = {link_rate:.0} changes/s", clock.changes));
    let link = link_summary(&mut clock, &nodes[0], &nodes[1]);
    drop(nodes);

    // Three hops: county → municipal → provincial → national, twice: one
    // batch at a time through all three hops, then one thread per link.
    let mut chains = serde_json::Map::new();
    let modes = match args.link_only {
        true => &[][..],
        false => &[ChainMode::OneBatchAtATime, ChainMode::Pipelined][..],
    };
    for &mode in modes {
        let chain_dir = root.join(mode.name());
        std::fs::create_dir_all(&chain_dir).with_context(|| format!("create {}", chain_dir.display()))?;
        let nodes = open_chain(&chain_dir, &CHAIN)?;
        let setup = Instant::now();
        let written = generate_changes(&nodes[0], 0, args.changes)?;
        say(format!(
            "{}: {written} changes written at {} in {:.1} s (not timed)",
            mode.name(),
            CHAIN[0],
            elapsed(setup)
        ));
        let report = run_chain(&nodes, args.batch, mode)?;
        let at_national = report["changes_at_national"].as_u64().unwrap_or(0);
        if at_national != written {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{written} changes written but {at_national} reached national"
            )));
        }
        say(format!(
            "{}: {at_national} changes at {} after {:.2} s = {:.0} changes/s; batch latency county → national ms {}",
            mode.name(),
            CHAIN[3],
            report["seconds"].as_f64().unwrap_or(0.0),
            report["changes_per_second"].as_f64().unwrap_or(0.0),
            report["latency_ms"]
        ));
        chains.insert(mode.name().into(), report);
    }
    let summary = serde_json::json!({
        "benchmark": "federation",
        "run": super::record::run(Some("sqlite"), serde_json::json!({ "changes": args.changes, "batch_size": args.batch, "input": "synthetic persons, encounters and EHR entries written at 330106" })),
        "backend": "sqlite",
        "batch_size": args.batch,
        "link": {
            "changes": changes,
            "setup_seconds": setup_seconds,
            "seconds": link_seconds,
            "changes_per_second": link_rate,
            "detail": link,
        },
        "chain": chains,
    });
    println!("{summary}");
    Ok(())
}

/// Seconds since `since`.
fn elapsed(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// How the three links of the chain take turns.
#[derive(Clone, Copy)]
enum ChainMode {
    /// One thread: a batch is cut at the county and pushed up all three hops
    /// before the next is cut. No queueing: the latency is the work of the hops.
    OneBatchAtATime,
    /// One thread per link, each pushing whatever its node has pending as fast
    /// as it can (as three nodes would, with no push interval).
    Pipelined,
}

impl ChainMode {
    fn name(self) -> &'static str {
        match self {
            ChainMode::OneBatchAtATime => "chain_one_batch_at_a_time",
            ChainMode::Pipelined => "chain_pipelined",
        }
    }
}

/// Batches cut at the county (hop 0) or applied at national (hop 2), with the instant.
type Observed = Vec<(Instant, Vec<String>)>;

/// Pushes everything pending at the county up to national; returns the summary.
fn run_chain(nodes: &[FedNode], batch: usize, mode: ChainMode) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let (mut clocks, observed) = match mode {
        ChainMode::OneBatchAtATime => chain_one_batch_at_a_time(nodes, batch)?,
        ChainMode::Pipelined => chain_pipelined(nodes, batch)?,
    };
    let (cuts, applies) = (&observed[0], &observed[2]);
    let applied_at: std::collections::HashMap<&str, Instant> =
        applies.iter().flat_map(|(at, ids)| ids.iter().map(move |id| (id.as_str(), *at))).collect();
    let mut latencies = Vec::new();
    for (cut_at, ids) in cuts {
        let mut last = None;
        for id in ids {
            let at =
                applied_at.get(id.as_str()).ok_or_else(|| anyhow::anyhow!("change {id} never reached national"))?;
            last = last.max(Some(*at));
        }
        if let Some(last) = last {
            latencies.push(last.saturating_duration_since(*cut_at));
        }
    }
    let seconds = applies.iter().map(|(at, _)| *at).max().map_or(0.0, |at| (at - started).as_secs_f64());
    let at_national = clocks[2].changes;
    let hops: Vec<serde_json::Value> =
        clocks.iter_mut().enumerate().map(|(hop, clock)| link_summary(clock, &nodes[hop], &nodes[hop + 1])).collect();
    Ok(serde_json::json!({
        "regions": CHAIN,
        "changes_at_national": at_national,
        "seconds": seconds,
        "changes_per_second": at_national as f64 / seconds,
        "county_batches": latencies.len(),
        "latency_ms": super::latency_ms(&mut latencies),
        "hops": hops,
    }))
}

/// One thread: each county batch goes up all three hops before the next is cut.
fn chain_one_batch_at_a_time(nodes: &[FedNode], batch: usize) -> anyhow::Result<(Vec<LinkClock>, Vec<Observed>)> {
    let mut clocks: Vec<LinkClock> = (0..3).map(|_| LinkClock::default()).collect();
    let mut observed: Vec<Observed> = (0..3).map(|_| Vec::new()).collect();
    loop {
        // Cut at the county, then send (two turns of its push loop).
        let mut progressed = false;
        for _ in 0..2 {
            progressed |= link_step(&nodes[0], &nodes[1], batch, false, &mut clocks[0], &mut |event| {
                if let LinkEvent::Cut(at, ids) = event {
                    observed[0].push((at, ids));
                }
            })?;
        }
        if !progressed {
            return Ok((clocks, observed));
        }
        for hop in 1..3 {
            let (clock, seen) = (&mut clocks[hop], &mut observed[hop]);
            while link_step(&nodes[hop], &nodes[hop + 1], batch, false, clock, &mut |event| {
                if let LinkEvent::Applied(at, ids) = event {
                    seen.push((at, ids));
                }
            })? {}
        }
    }
}

/// One thread per link, each draining its node as fast as it can; a link
/// stops when its upstream link has stopped and nothing is pending.
fn chain_pipelined(nodes: &[FedNode], batch: usize) -> anyhow::Result<(Vec<LinkClock>, Vec<Observed>)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done: Vec<AtomicBool> = (0..3).map(|_| AtomicBool::new(false)).collect();
    let results: Vec<anyhow::Result<(LinkClock, Observed)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|hop| {
                let done = &done;
                scope.spawn(move || {
                    let mut clock = LinkClock::default();
                    let mut observed = Vec::new();
                    let mut run = || -> anyhow::Result<()> {
                        loop {
                            let upstream_done = hop == 0 || done[hop - 1].load(Ordering::Acquire);
                            let progressed =
                                link_step(&nodes[hop], &nodes[hop + 1], batch, true, &mut clock, &mut |event| {
                                    match event {
                                        LinkEvent::Cut(at, ids) if hop == 0 => observed.push((at, ids)),
                                        LinkEvent::Applied(at, ids) if hop == 2 => observed.push((at, ids)),
                                        _ => {}
                                    }
                                })?;
                            if !progressed {
                                if upstream_done {
                                    return Ok(());
                                }
                                std::thread::sleep(Duration::from_micros(500));
                            }
                        }
                    };
                    let outcome = run();
                    // Set on failure too, so the links downstream drain and stop.
                    done[hop].store(true, Ordering::Release);
                    outcome.map(|()| (clock, observed))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a link thread panicked"))))
            .collect()
    });
    let mut clocks = Vec::new();
    let mut observed = Vec::new();
    for result in results {
        let (clock, seen) = result?;
        clocks.push(clock);
        observed.push(seen);
    }
    Ok((clocks, observed))
}
