//! `rhip bench`: repeatable measurements an operator can run on their own
//! machine. `bench parse` times the HL7 v2 reader in process; `bench mllp`
//! drives a running node over MLLP with synthetic admissions on one or more
//! connections and reports throughput and ACK latency; `bench federation`
//! pushes synthetic changes over one federation link and up three hops in
//! process, with the steps of the node's pusher and listener. Messages are
//! synthetic (made-up names, generated citizen IDs) and deterministic for a seed.

use crate::cli::{BenchCdaParseArgs, BenchDocumentsArgs, BenchIngestArgs, BenchMllpArgs, BenchParseArgs};
use crate::workload::{bench_store_options, synthetic_adt, synthetic_document};
use crate::Failure;
use anyhow::Context;
use rhip_core::RegionCode;
use rhip_hl7::mllp::{frame, Deframer, FrameEvent};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod ehr;
mod federation;
mod record;

pub use ehr::ehr;
pub use federation::federation;

/// Runs `rhip bench parse`.
pub fn parse(args: &BenchParseArgs) -> Result<(), Failure> {
    let (messages, dataset) = match &args.from {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| Failure::usage(format!("--from {}: {e}", path.display())))?;
            let messages = crate::commands::hl7::split_messages(&bytes);
            if messages.is_empty() {
                return Err(Failure::usage(format!("--from {}: holds no HL7 v2 messages", path.display())));
            }
            (messages, path.display().to_string())
        }
        None => {
            let synthetic = (0..args.messages).map(|n| synthetic_adt("H330106001", "P", n)).collect();
            (synthetic, "synthetic ADT^A04/A01".to_string())
        }
    };
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let today = chrono::Utc::now().date_naive();
    // One warm-up pass, then the measured pass.
    for message in messages.iter().take(1000) {
        let _ = rhip_hl7::receive(message, today);
    }
    let mut accepted = 0;
    let started = Instant::now();
    for message in &messages {
        if matches!(rhip_hl7::receive(message, today), rhip_hl7::Received::Accepted { .. }) {
            accepted += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.from.is_none() && accepted != messages.len() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} of {} synthetic messages were not accepted",
            messages.len() - accepted,
            messages.len()
        )));
    }
    let summary = serde_json::json!({
        "benchmark": "hl7-parse",
        "run": record::run(None, serde_json::json!({ "messages": messages.len(), "bytes": bytes, "input": dataset })),
        "messages": messages.len(),
        "accepted": accepted,
        "rejected": messages.len() - accepted,
        "bytes": bytes,
        "seconds": elapsed,
        "messages_per_second": messages.len() as f64 / elapsed,
        "megabytes_per_second": bytes as f64 / elapsed / 1e6,
    });
    println!("{summary}");
    Ok(())
}

/// Runs `rhip bench ingest`: the ingest pipeline in process, without the network.
pub fn ingest(args: &BenchIngestArgs) -> Result<(), Failure> {
    let folder = tempfile::tempdir().context("temporary folder")?;
    let url = args.db.clone().unwrap_or_else(|| format!("sqlite://{}", folder.path().join("bench.db").display()));
    let region = RegionCode::parse("330106").map_err(|e| Failure::Runtime(e.into()))?;
    let store =
        rhip_store::Store::open(&url, region, &bench_store_options()?).map_err(|e| Failure::usage(e.to_string()))?;
    store.migrate().map_err(|e| Failure::Runtime(e.into()))?;
    store.write(|tx| tx.bind_node_region()).map_err(|e| Failure::usage(e.to_string()))?;
    let facility = rhip_core::FacilityCode::parse("H330106001").map_err(|e| Failure::Runtime(e.into()))?;
    let _ = store.write(|tx| {
        tx.insert_facility(&rhip_store::NewFacility {
            code: facility,
            name: "bench".into(),
            kind: rhip_core::FacilityKind::Hospital,
            region,
        })
    });
    let run = format!("I{}", chrono::Utc::now().timestamp() % 1_000_000);
    let channel = rhip_server::ingest::Channel::Mllp("bench".into());
    let started = Instant::now();
    for n in 0..args.messages {
        let answer = rhip_server::ingest::process_hl7(&store, &synthetic_adt("H330106001", &run, n), &channel)
            .map_err(|e| Failure::Runtime(e.into()))?;
        if answer.code != "AA" {
            return Err(Failure::Runtime(anyhow::anyhow!("message {n} got {}", answer.code)));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "benchmark": "hl7-ingest-in-process",
        "run": record::run(Some(store.backend().as_str()), serde_json::json!({ "messages": args.messages, "input": "synthetic ADT^A04/A01, a new person each" })),
        "backend": store.backend().as_str(),
        "messages": args.messages,
        "seconds": elapsed,
        "messages_per_second": args.messages as f64 / elapsed,
    });
    println!("{summary}");
    Ok(())
}

/// Runs `rhip bench mllp` against a running node.
pub fn mllp(args: &BenchMllpArgs) -> Result<(), Failure> {
    if args.connections == 0 || args.messages == 0 {
        return Err(Failure::usage("--connections and --messages must be at least 1"));
    }
    let run = args.run.clone().unwrap_or_else(|| format!("R{}", chrono::Utc::now().timestamp() % 1_000_000));
    let per_connection = args.messages.div_ceil(args.connections);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|c| {
            let (to, facility, run) = (args.to.clone(), args.facility.clone(), run.clone());
            let first = c * per_connection;
            let last = ((c + 1) * per_connection).min(args.messages);
            std::thread::spawn(move || drive(&to, &facility, &run, first..last))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut codes = std::collections::BTreeMap::new();
    for worker in workers {
        let (mut lat, counted) =
            worker.join().map_err(|_| Failure::Runtime(anyhow::anyhow!("a sender thread panicked")))??;
        latencies.append(&mut lat);
        for (code, count) in counted {
            *codes.entry(code).or_insert(0u64) += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "benchmark": "hl7-mllp-ingest",
        "run": record::run(None, serde_json::json!({ "messages": args.messages, "input": "synthetic ADT^A04/A01, a new person each", "node": "the running node at --to (its backend is its own)" })),
        "to": args.to,
        "connections": args.connections,
        "messages": latencies.len(),
        "seconds": elapsed,
        "messages_per_second": latencies.len() as f64 / elapsed,
        "ack_latency_ms": latency_ms(&mut latencies),
        "acks": codes,
    });
    println!("{summary}");
    if codes.keys().any(|code| code != "AA") {
        return Err(Failure::Runtime(anyhow::anyhow!("some messages were not accepted: {codes:?}")));
    }
    Ok(())
}

pub fn cda_parse(args: &BenchCdaParseArgs) -> Result<(), Failure> {
    let documents: Vec<Vec<u8>> = (0..args.documents).map(|n| synthetic_document("H330106001", "P", n)).collect();
    let bytes: usize = documents.iter().map(Vec::len).sum();
    let today = chrono::Utc::now().date_naive();
    let limits = rhip_cda::Limits::default();
    let started = Instant::now();
    for (n, document) in documents.iter().enumerate() {
        let read =
            rhip_cda::read(document, &limits).map_err(|e| Failure::Runtime(anyhow::anyhow!("document {n}: {e}")))?;
        let problems = rhip_cda::validate(&read, today);
        if !problems.is_empty() {
            return Err(Failure::Runtime(anyhow::anyhow!("document {n}: {problems:?}")));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "benchmark": "cda-read-validate",
        "run": record::run(None, serde_json::json!({ "documents": documents.len(), "bytes": bytes, "input": "synthetic C0053 discharge summaries" })),
        "documents": documents.len(),
        "bytes": bytes,
        "seconds": elapsed,
        "documents_per_second": documents.len() as f64 / elapsed,
        "megabytes_per_second": bytes as f64 / elapsed / 1e6,
    });
    println!("{summary}");
    Ok(())
}

/// Runs `rhip bench documents` against a running node.
pub fn documents(args: &BenchDocumentsArgs) -> Result<(), Failure> {
    if args.connections == 0 || args.documents == 0 {
        return Err(Failure::usage("--connections and --documents must be at least 1"));
    }
    let run = format!("D{}", chrono::Utc::now().timestamp() % 1_000_000);
    let per_client = args.documents.div_ceil(args.connections);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|c| {
            let (api, token, facility, run) =
                (args.api.clone(), args.token.clone(), args.facility.clone(), run.clone());
            let range = c * per_client..((c + 1) * per_client).min(args.documents);
            std::thread::spawn(move || -> Result<(Vec<Duration>, usize), Failure> {
                let agent = ureq::AgentBuilder::new().build();
                let mut latencies = Vec::new();
                let mut bytes = 0;
                for n in range {
                    let body = synthetic_document(&facility, &run, n);
                    bytes += body.len();
                    let sent = Instant::now();
                    let answer = agent
                        .post(&format!("{api}/api/v1/documents"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .set("Content-Type", "application/xml")
                        .send_bytes(&body);
                    match answer {
                        Ok(response) if response.status() == 201 => latencies.push(sent.elapsed()),
                        Ok(response) => {
                            return Err(Failure::Runtime(anyhow::anyhow!("document {n}: HTTP {}", response.status())))
                        }
                        Err(ureq::Error::Status(status, response)) => {
                            let text = response.into_string().unwrap_or_default();
                            return Err(Failure::Runtime(anyhow::anyhow!("document {n}: HTTP {status}: {text}")));
                        }
                        Err(error) => return Err(Failure::Runtime(anyhow::anyhow!("document {n}: {error}"))),
                    }
                }
                Ok((latencies, bytes))
            })
        })
        .collect();
    let (mut latencies, mut bytes) = (Vec::new(), 0);
    for worker in workers {
        let (mut lat, b) =
            worker.join().map_err(|_| Failure::Runtime(anyhow::anyhow!("a client thread panicked")))??;
        latencies.append(&mut lat);
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "benchmark": "cda-http-ingest",
        "run": record::run(None, serde_json::json!({ "documents": args.documents, "input": "synthetic C0053 discharge summaries", "node": "the running node at --api (its backend is its own)" })),
        "api": args.api,
        "connections": args.connections,
        "documents": latencies.len(),
        "bytes": bytes,
        "seconds": elapsed,
        "documents_per_second": latencies.len() as f64 / elapsed,
        "latency_ms": latency_ms(&mut latencies),
    });
    println!("{summary}");
    Ok(())
}

type Driven = (Vec<Duration>, Vec<(String, u64)>);

fn drive(to: &str, facility: &str, run: &str, range: std::ops::Range<u64>) -> Result<Driven, Failure> {
    let mut stream = TcpStream::connect(to).with_context(|| format!("connect to {to}"))?;
    stream.set_nodelay(true).context("nodelay")?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).context("timeout")?;
    let mut deframer = Deframer::new(1 << 20);
    let mut buffer = [0u8; 8192];
    let mut latencies = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    for n in range {
        let message = frame(&synthetic_adt(facility, run, n));
        let sent = Instant::now();
        stream.write_all(&message).context("send")?;
        let ack = loop {
            let count = stream.read(&mut buffer).context("read ACK")?;
            if count == 0 {
                return Err(Failure::Runtime(anyhow::anyhow!("the node closed the connection")));
            }
            if let Some(FrameEvent::Message(ack)) = deframer.push(&buffer[..count]).into_iter().next() {
                break ack;
            }
        };
        latencies.push(sent.elapsed());
        let code = rhip_hl7::AckCode::of(&ack).map_or("??", |c| c.code()).to_string();
        *codes.entry(code).or_insert(0) += 1;
    }
    Ok((latencies, codes.into_iter().collect()))
}

/// Quantiles of `values` in milliseconds (sorted in place): what every
/// latency figure of `rhip bench` reports.
fn latency_ms(values: &mut [Duration]) -> serde_json::Value {
    values.sort();
    let at = |q: f64| {
        values
            .get(((values.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
    };
    serde_json::json!({ "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0) })
}
