//! `rhip bench ehr`: residents opening their own health record, at a fixed
//! request rate, against a real node process holding a large population.
//!
//! The node is loaded first, in process and through the store's normal
//! write paths (sealed personal fields, blind indexes, change log): the
//! synthetic residents of `rhip synth` for the node's county, each with one
//! to four visits at the county's synthetic facilities and their EHR index
//! entries. A marker file beside the config remembers how many residents of
//! which seed are loaded, so a second run only starts the node.
//!
//! The load is open-loop: request `i` is due at `start + i / rate`, and its
//! latency counts from that instant, so a slow answer delays the requests
//! behind it in the figures as it would delay real residents (no coordinated
//! omission). Each request is `GET /api/v1/me/ehr` with the token of one of
//! `--residents` residents spread over the population: every one is a read
//! of a person, its consent lens, its EHR entries and an audit entry
//! appended, as in production. The node's resident memory is sampled from
//! /proc while the load runs.

use super::{latency_ms, record};
use crate::cli::BenchEhrArgs;
use crate::Failure;
use anyhow::Context;
use rhip_core::{EhrEntryKind, EncounterType, Identifier, PersonDemographics, RegionCode, Role, Tier};
use rhip_store::{NewEhrEntry, NewEncounter, NewFacility, NewPerson};
use rhip_synth::{Config, Resident, Synth};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Residents written per transaction while loading.
const LOAD_CHUNK: usize = 2_000;

/// What a node was loaded with, kept beside its config.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Loaded {
    seed: u64,
    persons: u64,
}

/// Runs `rhip bench ehr`.
pub fn ehr(args: &BenchEhrArgs) -> Result<(), Failure> {
    if args.persons == 0 || args.rate == 0 || args.seconds == 0 || args.residents == 0 || args.clients == 0 {
        return Err(Failure::usage("--persons, --rate, --seconds, --residents and --clients must be at least 1"));
    }
    if args.residents > args.persons {
        return Err(Failure::usage("--residents cannot exceed --persons"));
    }
    let settings = crate::commands::load_settings(&args.config)?;
    let county = settings.node.region;
    if county.tier() != Tier::County {
        return Err(Failure::usage(format!("--config: {county} is not a county node; residents live in counties")));
    }
    let synth = Synth::new(Config::new(args.seed, args.persons, &[county]))
        .map_err(|e| Failure::usage(format!("--persons: {e}")))?;
    let marker = marker_path(&args.config);
    let store = crate::commands::open_store(&settings)?;
    let backend = store.backend().as_str();
    let loading = Instant::now();
    let loaded = load(&store, &synth, &marker)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let counts = store.read(|tx| tx.region_counts(&county)).map_err(|e| Failure::Runtime(e.into()))?;
    let (persons, entries) = (counts.persons, counts.ehr_entries);
    eprintln!("node {county} holds {persons} persons and {entries} EHR entries ({backend})");
    let dataset = json!({
        "persons": persons,
        "ehr_entries": entries,
        "synthetic_residents": args.persons,
        "seed": args.seed,
        "loaded_now": loaded,
        "load_seconds": load_seconds,
        "database_bytes": database_bytes(&settings),
    });
    if args.load_only {
        let summary = json!({ "benchmark": "ehr-load", "run": record::run(Some(backend), dataset) });
        println!("{summary}");
        return Ok(());
    }
    let tokens = resident_tokens(&settings, &store, &synth, args.residents)?;
    drop(store);

    let log = args.config.with_file_name("bench-ehr-serve.log");
    let mut starting = crate::commands::process::spawn_serve(&args.config, &log)?;
    let outcome = starting
        .ready()
        .ok_or_else(|| Failure::Runtime(anyhow::anyhow!("the node did not start; see {}", log.display())))
        .and_then(|addresses| measure(args, &addresses.api, starting.child.id(), &tokens));
    crate::commands::process::stop_all([&mut starting.child]);
    let measured = outcome?;
    let errors = measured["errors"].as_u64().unwrap_or(0);
    let summary = json!({
        "benchmark": "ehr-query",
        "run": record::run(Some(backend), dataset),
        "request": "GET /api/v1/me/ehr with a resident's token",
        "residents_queried": tokens.len(),
        "result": measured,
    });
    println!("{summary}");
    if errors > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!("{errors} requests failed; see {}", log.display())));
    }
    Ok(())
}

/// The marker beside `config`.
fn marker_path(config: &Path) -> PathBuf {
    config.with_file_name("bench-ehr-loaded.json")
}

/// Loads the residents `synth` has beyond those the marker counts; returns
/// how many were written now.
fn load(store: &rhip_store::Store, synth: &Synth, marker: &Path) -> Result<u64, Failure> {
    let before: Loaded = match std::fs::read_to_string(marker) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("read {}", marker.display()))?,
        Err(_) => Loaded::default(),
    };
    if before.persons > 0 && before.seed != synth.seed() {
        return Err(Failure::usage(format!(
            "this node holds the population of seed {} ({}); use --seed {} or a new node",
            before.seed,
            marker.display(),
            before.seed
        )));
    }
    if before.persons >= synth.residents() {
        return Ok(0);
    }
    let county = synth.counties().first().copied().unwrap_or(RegionCode::NATIONAL);
    let facilities: Vec<_> = synth.facilities().iter().filter(|f| f.region == county).cloned().collect();
    store
        .write(|tx| {
            for facility in &facilities {
                if tx.get_facility(facility.code.as_str())?.is_none() {
                    tx.insert_facility(&NewFacility {
                        code: facility.code.clone(),
                        name: facility.name.clone(),
                        kind: facility.kind,
                        region: facility.region,
                    })?;
                }
            }
            Ok(())
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    let codes: Vec<String> = facilities.iter().map(|f| f.code.as_str().to_string()).collect();
    if codes.is_empty() {
        return Err(Failure::Runtime(anyhow::anyhow!("no synthetic facility in {county}")));
    }
    let started = Instant::now();
    let mut written = before.persons;
    let mut chunk = Vec::with_capacity(LOAD_CHUNK);
    let mut residents = synth.all_residents().skip_while(|r| r.index < before.persons).peekable();
    while residents.peek().is_some() {
        chunk.clear();
        chunk.extend(residents.by_ref().take(LOAD_CHUNK));
        store
            .write(|tx| {
                for resident in &chunk {
                    write_resident(tx, synth, resident, &codes)?;
                }
                Ok(())
            })
            .map_err(|e| Failure::Runtime(e.into()))?;
        written += chunk.len() as u64;
        let state = serde_json::to_string(&Loaded { seed: synth.seed(), persons: written }).context("marker")?;
        std::fs::write(marker, state).with_context(|| format!("write {}", marker.display()))?;
        if written % 100_000 < LOAD_CHUNK as u64 {
            let rate = (written - before.persons) as f64 / started.elapsed().as_secs_f64();
            eprintln!("loaded {written} of {} residents ({rate:.0}/s)", synth.residents());
        }
    }
    Ok(written - before.persons)
}

/// One resident, an MRN at one of the county's facilities, and one to four
/// visits there, each with its EHR index entry.
fn write_resident(
    tx: &mut rhip_store::Tx<'_>,
    synth: &Synth,
    resident: &Resident,
    facilities: &[String],
) -> Result<(), rhip_store::StoreError> {
    let spread = resident.index.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let facility = &facilities[usize::try_from(spread % facilities.len() as u64).unwrap_or(0)];
    let person = tx.insert_person(&NewPerson {
        demographics: PersonDemographics {
            identifiers: vec![Identifier {
                system: facility.clone(),
                value: format!("M{:09}", resident.index),
                type_code: Some("MR".into()),
            }],
            ..resident.demographics()
        },
        home_region: resident.home_region,
        non_resident: false,
    })?;
    let as_of = synth.as_of().and_hms_opt(9, 0, 0).unwrap_or_default();
    for visit in 0..1 + spread % 4 {
        let inpatient = (spread >> 8).wrapping_add(visit) % 7 == 0;
        let days_ago = i64::try_from((spread >> 4).wrapping_add(visit * 211) % 1_000).unwrap_or(0);
        let at = as_of - chrono::Duration::days(days_ago);
        let encounter = tx.insert_encounter(&NewEncounter {
            person_id: person.id.clone(),
            facility_code: facility.clone(),
            visit_number: format!("B{:09}-{visit}", resident.index),
            encounter_type: if inpatient { EncounterType::Inpatient } else { EncounterType::Outpatient },
            status: "finished".into(),
            admitted_at: Some(at),
            discharged_at: Some(at + chrono::Duration::hours(if inpatient { 96 } else { 1 })),
            department: Some("内科".into()),
            location: None,
            prior_location: None,
            attending: None,
            admit_reason: None,
        })?;
        tx.insert_ehr_entry(&NewEhrEntry {
            person_id: person.id.clone(),
            kind: EhrEntryKind::Encounter,
            occurred_at: at,
            facility_code: Some(facility.clone()),
            summary: if inpatient { "住院 内科" } else { "门诊 内科" }.into(),
            encounter_id: Some(encounter.id),
            document_id: None,
        })?;
    }
    Ok(())
}

/// Resident tokens of `count` residents spread evenly over the population,
/// each found by citizen ID as the login does.
fn resident_tokens(
    settings: &rhip_server::Settings,
    store: &rhip_store::Store,
    synth: &Synth,
    count: u64,
) -> Result<Vec<String>, Failure> {
    let stride = (synth.residents() / count).max(1);
    let wanted: Vec<String> = synth
        .all_residents()
        .filter(|r| r.index % stride == stride / 2)
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .map(|r| r.citizen_id.as_str().to_string())
        .collect();
    let ids = store
        .read(|tx| {
            let mut ids = Vec::with_capacity(wanted.len());
            for citizen_id in &wanted {
                ids.extend(tx.active_person_by_citizen_id(citizen_id)?);
            }
            Ok(ids)
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    if ids.len() != wanted.len() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} of {} sampled residents are not at the node (was it loaded with another seed?)",
            wanted.len() - ids.len(),
            wanted.len()
        )));
    }
    let key = rhip_server::load_key(settings)?;
    let ttl = settings.max_token_ttl().min(Duration::from_secs(3600));
    ids.iter()
        .map(|id| {
            let claims = crate::commands::token::claims(
                settings.node.region,
                format!("resident:{id}"),
                Role::Resident,
                None,
                None,
                Some(id),
                ttl,
            );
            key.mint(&claims).map_err(|e| Failure::Runtime(anyhow::anyhow!("sign a resident token: {e}")))
        })
        .collect()
}

/// One answered request: when it was due, sent and answered, and its status.
struct Answered {
    due: Instant,
    sent: Instant,
    done: Instant,
    ok: bool,
}

/// Runs the warm-up and the measured load against `api`; samples the
/// node's memory (process `pid`) meanwhile.
fn measure(args: &BenchEhrArgs, api: &str, pid: u32, tokens: &[String]) -> Result<serde_json::Value, Failure> {
    let idle = memory_of(pid);
    let rate = f64::from(args.rate);
    let warmup = u64::from(args.rate) * args.warmup;
    let total = warmup + u64::from(args.rate) * args.seconds;
    let next = AtomicU64::new(0);
    let stop_sampling = AtomicBool::new(false);
    let samples = Mutex::new(Vec::new());
    let url = format!("{api}/api/v1/me/ehr");
    let start = Instant::now() + Duration::from_millis(200);
    let measured_from = start + Duration::from_secs(args.warmup);
    let answered: Vec<Answered> = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop_sampling.load(Ordering::Relaxed) {
                if Instant::now() >= measured_from {
                    if let Some(memory) = memory_of(pid) {
                        samples.lock().map(|mut s| s.push(memory.rss_kib)).ok();
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let clients: Vec<_> = (0..args.clients)
            .map(|_| {
                let (next, url) = (&next, &url);
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                    let mut answered = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return answered;
                        }
                        let due = start + Duration::from_secs_f64(i as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let token =
                            &tokens[usize::try_from(i.wrapping_mul(0x9E37_79B9) % tokens.len() as u64).unwrap_or(0)];
                        let sent = Instant::now();
                        let ok = match agent.get(url).set("Authorization", &format!("Bearer {token}")).call() {
                            Ok(response) => {
                                let body = response.into_string().unwrap_or_default();
                                body.contains("\"items\":[{")
                            }
                            Err(_) => false,
                        };
                        if i >= warmup {
                            answered.push(Answered { due, sent, done: Instant::now(), ok });
                        }
                    }
                })
            })
            .collect();
        let answered = clients.into_iter().flat_map(|client| client.join().unwrap_or_default()).collect();
        stop_sampling.store(true, Ordering::Relaxed);
        answered
    });
    let after = memory_of(pid);
    if let Some(path) = &args.trace {
        write_trace(path, &answered)?;
    }
    let errors = answered.iter().filter(|a| !a.ok).count();
    let first_due = answered.iter().map(|a| a.due).min().unwrap_or(measured_from);
    let last_done = answered.iter().map(|a| a.done).max().unwrap_or(first_due);
    let seconds = last_done.saturating_duration_since(first_due).as_secs_f64();
    let mut latency: Vec<Duration> = answered.iter().map(|a| a.done.saturating_duration_since(a.due)).collect();
    let mut service: Vec<Duration> = answered.iter().map(|a| a.done.saturating_duration_since(a.sent)).collect();
    let late = answered.iter().filter(|a| a.sent.saturating_duration_since(a.due) > Duration::from_millis(1)).count();
    let samples = samples.into_inner().unwrap_or_default();
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    let mean = samples.iter().sum::<u64>().checked_div(samples.len() as u64);
    Ok(json!({
        "rate_asked": args.rate,
        "requests": answered.len(),
        "errors": errors,
        "seconds": seconds,
        "rate_achieved": answered.len() as f64 / seconds.max(f64::EPSILON),
        "clients": args.clients,
        "warmup_seconds": args.warmup,
        "latency_ms": latency_ms(&mut latency),
        "service_time_ms": latency_ms(&mut service),
        "sent_late_over_1ms": late,
        "node_memory_mib": {
            "rss_idle": idle.map(|m| mib(m.rss_kib)),
            "rss_mean_under_load": mean.map(mib),
            "rss_max_sampled": samples.iter().max().copied().map(mib),
            "rss_after": after.as_ref().map(|m| mib(m.rss_kib)),
            "peak_hwm": after.map(|m| mib(m.hwm_kib)),
        },
    }))
}

/// Writes the measured requests, in the order they were due, as CSV.
fn write_trace(path: &Path, answered: &[Answered]) -> Result<(), Failure> {
    use std::io::Write;
    let mut sorted: Vec<&Answered> = answered.iter().collect();
    sorted.sort_by_key(|a| a.due);
    let Some(origin) = sorted.first().map(|a| a.due) else { return Ok(()) };
    let ms = |at: Instant| at.saturating_duration_since(origin).as_secs_f64() * 1000.0;
    let file = std::fs::File::create(path).map_err(|e| Failure::usage(format!("--trace {}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let write = || -> std::io::Result<()> {
        writeln!(out, "due_ms,sent_ms,answered_ms,ok")?;
        for a in sorted {
            writeln!(out, "{:.3},{:.3},{:.3},{}", ms(a.due), ms(a.sent), ms(a.done), a.ok)?;
        }
        out.flush()
    };
    write().with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// A process's resident memory now and at its peak.
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` from /proc/PID/status (Linux).
fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status.lines().find_map(|line| line.strip_prefix(name))?.split_whitespace().next()?.parse().ok()
    };
    Some(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

/// Bytes of the node's SQLite files (database, WAL); `None` on PostgreSQL.
fn database_bytes(settings: &rhip_server::Settings) -> Option<u64> {
    let path = settings.database.url.strip_prefix("sqlite://")?;
    let size = |suffix: &str| std::fs::metadata(format!("{path}{suffix}")).map(|m| m.len()).unwrap_or(0);
    Some(size("") + size("-wal"))
}
