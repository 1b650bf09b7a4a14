//! `rhip bench`: repeatable measurements an operator can run on their own
//! machine. `bench parse` times the HL7 v2 reader in process; `bench mllp`
//! drives a running node over MLLP with synthetic admissions on one or more
//! connections and reports throughput and ACK latency; `bench federation`
//! pushes synthetic changes over one federation link and up three hops in
//! process, with the steps of the node's pusher and listener. Messages are
//! synthetic (made-up names, generated citizen IDs) and deterministic for a seed.

use crate::cli::{
    BenchCdaParseArgs, BenchDocumentsArgs, BenchFederationArgs, BenchIngestArgs, BenchMllpArgs, BenchParseArgs,
};
use crate::Failure;
use anyhow::Context;
use rhip_core::{CitizenId, RegionCode};
use rhip_hl7::mllp::{frame, Deframer, FrameEvent};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const FAMILY: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙"];
const GIVEN: [&str; 12] = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰"];

/// One synthetic ADT message (A04 registration, or A01 admission every fifth).
pub fn synthetic_adt(facility: &str, run: &str, n: u64) -> Vec<u8> {
    let region = RegionCode::parse("330106").unwrap_or(RegionCode::NATIONAL);
    let days = i64::try_from(n % 25_000).unwrap_or(0);
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
    let id = CitizenId::generate(region, birth, u16::try_from(n % 1000).unwrap_or(0));
    let sex = if id.sex() == rhip_core::Sex::Male { "M" } else { "F" };
    let index = usize::try_from(n % 144).unwrap_or(0);
    let (family, given) = (FAMILY[index % 12], GIVEN[index / 12]);
    let (trigger, class) = if n % 5 == 0 { ("A01", "I") } else { ("A04", "O") };
    format!(
        "MSH|^~\\&|BENCH|{facility}|RHIP|330106|20240301083000||ADT^{trigger}^ADT_A01|{run}-{n}|P|2.5|||AL|NE||UNICODE UTF-8\r\
         EVN|{trigger}|20240301083000\r\
         PID|1||B{run}{n:08}^^^{facility}^MR~{id}^^^CHN^NNCHN||{family}^{given}||{birth}|{sex}|||测试路{n}号^^杭州市^浙江省^310000^CHN^H^^330106||139{:08}\r\
         PV1|1|{class}|内科^301^2||||D001^张^医生|||MED|||||||||V{run}{n:08}|||||||||||||||||||||||||20240301080000\r",
        n % 100_000_000,
        birth = birth.format("%Y%m%d"),
    )
    .into_bytes()
}

/// Runs `rhip bench parse`.
pub fn parse(args: &BenchParseArgs) -> Result<(), Failure> {
    let messages: Vec<Vec<u8>> = (0..args.messages).map(|n| synthetic_adt("H330106001", "P", n)).collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let today = chrono::Utc::now().date_naive();
    // One warm-up pass, then the measured pass.
    let mut accepted = 0;
    for message in messages.iter().take(1000) {
        let _ = rhip_hl7::receive(message, today);
    }
    let started = Instant::now();
    for message in &messages {
        if matches!(rhip_hl7::receive(message, today), rhip_hl7::Received::Accepted { .. }) {
            accepted += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if accepted != messages.len() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{} of {} synthetic messages were not accepted",
            messages.len() - accepted,
            messages.len()
        )));
    }
    let summary = serde_json::json!({
        "benchmark": "hl7-parse",
        "messages": messages.len(),
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
    latencies.sort();
    let at =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let summary = serde_json::json!({
        "benchmark": "hl7-mllp-ingest",
        "to": args.to,
        "connections": args.connections,
        "messages": latencies.len(),
        "seconds": elapsed,
        "messages_per_second": latencies.len() as f64 / elapsed,
        "ack_latency_ms": { "p50": at(0.5), "p99": at(0.99), "max": at(1.0) },
        "acks": codes,
    });
    println!("{summary}");
    if codes.keys().any(|code| code != "AA") {
        return Err(Failure::Runtime(anyhow::anyhow!("some messages were not accepted: {codes:?}")));
    }
    Ok(())
}

/// One synthetic discharge summary (C0053) of a synthetic inpatient, authored by `facility`.
pub fn synthetic_document(facility: &str, run: &str, n: u64) -> Vec<u8> {
    use rhip_cda::write::{DiagnosisInput, EncounterDocument, EncounterInput, HeaderInput, PatientInput, ResultInput};
    use rhip_cda::{Code, InstanceId, Organization, Quantity, Timestamp};
    let region = RegionCode::parse("330106").unwrap_or(RegionCode::NATIONAL);
    let days = i64::try_from(n % 25_000).unwrap_or(0);
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default() + chrono::Duration::days(days);
    let id = CitizenId::generate(region, birth, u16::try_from(n % 1000).unwrap_or(0));
    let index = usize::try_from(n % 144).unwrap_or(0);
    let at = |text: &str| Timestamp::parse(text).ok();
    let start = at("20240301080000").unwrap_or(Timestamp::from_date(birth));
    let hospital =
        Organization { ids: vec![InstanceId::new("2.16.156.10011.1.5", facility)], name: Some("bench".into()) };
    let document = EncounterDocument {
        header: HeaderInput {
            id: InstanceId::new("2.16.156.10011.1.1", format!("{run}-{n}")),
            effective_time: at("20240305170000").unwrap_or(start),
            custodian: hospital.clone(),
            author_organization: hospital.clone(),
            author_name: Some("张医生".into()),
        },
        patient: PatientInput {
            citizen_id: Some(id.as_str().to_string()),
            other_ids: vec![InstanceId::new("2.16.156.10011.1.13", format!("B{run}{n:08}"))],
            name: format!("{}{}", FAMILY[index % 12], GIVEN[index / 12]),
            sex: id.sex(),
            birth_date: birth,
            county: Some(region),
            street: Some(format!("测试路{n}号")),
        },
        encounter: EncounterInput {
            id: InstanceId::new("2.16.156.10011.1.12", format!("Z{run}{n:08}")),
            kind: rhip_core::EncounterType::Inpatient,
            start,
            end: at("20240305160000"),
            facility: hospital,
        },
        chief_complaint: Some("咳嗽、发热3天".into()),
        diagnoses: vec![DiagnosisInput::icd10("J18.9", "肺炎", Some(start))],
        results: vec![ResultInput {
            code: Code::new("6690-2", "2.16.840.1.113883.6.1", "白细胞计数"),
            value: rhip_cda::write::ResultValue::Quantity(Quantity {
                value: "12.3".into(),
                unit: Some("10*9/L".into()),
            }),
            reference_range: None,
            flag: Some("H".into()),
            time: Some(start),
        }],
        medications: Vec::new(),
    };
    rhip_cda::write::emr_encounter(&document)
}

/// Runs `rhip bench cda-parse`.
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
    latencies.sort();
    let at =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let summary = serde_json::json!({
        "benchmark": "cda-http-ingest",
        "api": args.api,
        "connections": args.connections,
        "documents": latencies.len(),
        "bytes": bytes,
        "seconds": elapsed,
        "documents_per_second": latencies.len() as f64 / elapsed,
        "latency_ms": { "p50": at(0.5), "p99": at(0.99), "max": at(1.0) },
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

/// The regions of `bench federation`, county first, each the parent of the one before.
const CHAIN: [&str; 4] = ["330106", "330100", "330000", "000000"];

/// The facility that records the county's synthetic visits.
const FED_FACILITY: &str = "H330106001";

/// One node of `bench federation`: its own SQLite store, signing key, the
/// keys of its neighbours, its tier's default retention and its links.
struct FedNode {
    me: RegionCode,
    store: rhip_store::Store,
    key: rhip_auth::NodeKey,
    peer_keys: rhip_auth::PeerKeys,
    policy: rhip_federation::RetentionPolicy,
    links: rhip_federation::Links,
}

/// Opens one node per region of `chain` in `dir`, each the parent of the one
/// before, trusting its neighbours' keys, with its links registered as
/// `Pusher::new` does.
fn open_chain(dir: &std::path::Path, chain: &[&str]) -> anyhow::Result<Vec<FedNode>> {
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

/// Writes, through the store's normal write paths, one facility and then
/// persons each with an outpatient (every fifth an inpatient) encounter and
/// an EHR index entry, until `changes` change-log rows exist. Returns how many
/// changes are pending for the parent.
fn generate_changes(node: &FedNode, changes: u64) -> anyhow::Result<u64> {
    use rhip_core::{EhrEntryKind, EncounterType, FacilityKind, Identifier, PersonDemographics};
    let county = node.me;
    let facility = rhip_core::FacilityCode::parse(FED_FACILITY)?;
    node.store.write(|tx| {
        tx.insert_facility(&rhip_store::NewFacility {
            code: facility,
            name: "bench".into(),
            kind: FacilityKind::Hospital,
            region: county,
        })
    })?;
    let mut written = 1u64;
    let mut n = 0u64;
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
struct LinkClock {
    /// `unacked_batches` reads plus the cut transactions.
    cut: Duration,
    /// `changes_for_link` inside the cut.
    cut_select: Duration,
    /// Change-log rows to wire changes (payload JSON parsed) and routing.
    cut_wire: Duration,
    /// `seal`: payload JSON, SHA-256 and the Ed25519 manifest signature.
    cut_seal: Duration,
    /// `save_outbound_batch` and the cut's commit.
    cut_save: Duration,
    /// `verify_batch` at the receiver: signature, digest, payload JSON.
    verify: Duration,
    /// The receiver's transaction, commit included.
    apply: Duration,
    /// `apply_remote_change` for every change of the batch.
    apply_changes: Duration,
    /// The receiver's COMMIT.
    apply_commit: Duration,
    /// Each batch's apply transaction.
    apply_each: Vec<Duration>,
    /// Sent mark, receipt verification and acknowledgement at the sender.
    ack: Duration,
    /// `verify_receipt` alone.
    ack_verify: Duration,
    /// Batches acknowledged.
    batches: u64,
    /// Changes in them.
    changes: u64,
    /// Changes the receiver parked.
    parked: u64,
}

/// What a link step reports to the caller, for the end-to-end latency.
enum LinkEvent {
    /// A batch was cut at the sender (the instant its transaction began).
    Cut(Instant, Vec<String>),
    /// A batch was applied at the receiver (the instant its transaction committed).
    Applied(Instant, Vec<String>),
}

/// One turn of a link's push loop, as `Pusher::drain` does it: send the
/// unacknowledged batches, else cut one more. False when nothing is pending.
fn link_step(
    from: &FedNode,
    to: &FedNode,
    batch_size: usize,
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
    for batch in unacked {
        let seq = u64::try_from(batch.seq).unwrap_or(0);
        let (receipt, ids) = fed_receive(to, from.me, &batch.manifest, &batch.payload, clock)?;
        on_event(LinkEvent::Applied(Instant::now(), ids));
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

/// Cuts the next batch for `peer` as `Pusher::cut` does: the change-log rows
/// after the link's cut cursor that `route` sends to the peer, sealed and
/// stored. `None` when nothing is pending; else the ids sealed (empty when
/// the rows examined were not for this peer and the cursor only moved on).
fn fed_cut(
    node: &FedNode,
    peer: RegionCode,
    batch_size: usize,
    clock: &mut LinkClock,
) -> anyhow::Result<Option<Vec<String>>> {
    use rhip_federation::{route, seal, Payload, RetentionPolicy, RouteInfo, GENESIS};
    use rhip_store::StoreError;
    let parent_policy = (node.links.parent == Some(peer)).then(|| RetentionPolicy::default_for(peer.tier()));
    let limit = i64::try_from(batch_size).unwrap_or(1000);
    let peer_code = peer.as_str();
    let mut lap = Instant::now();
    let mut split = |into: &mut Duration| {
        let now = Instant::now();
        *into += now - lap;
        lap = now;
    };
    let (mut select, mut wire_time, mut seal_time) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let cut = node.store.write(|tx| {
        let link = tx.link(peer_code)?.ok_or_else(|| StoreError::NotFound(format!("link {peer_code}")))?;
        let changes = tx.changes_for_link(peer_code, link.cut_seq, limit)?;
        split(&mut select);
        let Some(last) = changes.last().map(|c| c.seq) else { return Ok(None) };
        // As the pusher does: what residents keep at home does not go up.
        let kept_home: std::collections::HashSet<i64> = if node.links.parent == Some(peer) {
            tx.kept_at_home(&changes, |home| rhip_federation::is_destination(&node.links, home))?
        } else {
            std::collections::HashSet::new()
        };
        let mut wire = Vec::with_capacity(changes.len());
        for change in changes.iter().filter(|c| !kept_home.contains(&c.seq)) {
            let info = RouteInfo {
                entity: &change.entity,
                home_region: change.home_region.as_deref(),
                received_from: change.received_from.as_deref(),
                origin_region: &change.origin_region,
            };
            let Some(route) = route(&node.links, &info, parent_policy.as_ref()).into_iter().find(|r| r.peer == peer)
            else {
                continue;
            };
            let mut change = rhip_server::federation::push::to_wire(change)?;
            if change.entity == "document" && change.op == "create" {
                change = if route.content {
                    match change.has_content() {
                        true => change,
                        false => match tx.document_content(&change.entity_id) {
                            Ok(bytes) => change.with_content(&bytes),
                            Err(StoreError::NotFound(_)) => change,
                            Err(error) => return Err(error),
                        },
                    }
                } else {
                    change.without_content()
                };
            }
            wire.push(change);
        }
        split(&mut wire_time);
        if wire.is_empty() {
            tx.advance_cut(peer_code, last)?;
            return Ok(Some(Vec::new()));
        }
        let seq = link.next_seq;
        let prev_digest = if seq <= 1 {
            GENESIS.to_string()
        } else {
            tx.outbound_digest(peer_code, seq - 1)?
                .ok_or_else(|| StoreError::Corrupt(format!("batch {} to {peer_code} is gone", seq - 1)))?
        };
        let payload = Payload { changes: wire };
        let batch =
            seal(&node.key, node.me.as_str(), peer_code, u64::try_from(seq).unwrap_or(1), &prev_digest, &payload)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        split(&mut seal_time);
        tx.save_outbound_batch(
            &rhip_store::NewOutboundBatch {
                peer: peer_code.to_string(),
                seq,
                batch_id: batch.batch_id.clone(),
                digest: batch.digest(),
                manifest: batch.manifest_jws.clone(),
                payload: batch.payload.clone(),
                record_count: i64::try_from(payload.changes.len()).unwrap_or(0),
                first_change_seq: changes.first().map_or(last, |c| c.seq),
                last_change_seq: last,
            },
            last,
        )?;
        Ok(Some(payload.changes.into_iter().map(|c| c.id).collect()))
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
fn fed_receive(
    node: &FedNode,
    from: RegionCode,
    manifest: &str,
    payload: &[u8],
    clock: &mut LinkClock,
) -> anyhow::Result<(String, Vec<String>)> {
    use rhip_federation::{check_sequence, sign_receipt, verify_batch, Receipt, ReceiptStatus, Sequencing};
    use rhip_store::{NewAuditEntry, StoreError};
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
        let receipt = Receipt::for_batch(&batch, ReceiptStatus::Applied, applied, parked.clone());
        let signed = sign_receipt(&node.key, &receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.record_inbound_batch(
            from.as_str(),
            i64::try_from(seq).unwrap_or(i64::MAX),
            &batch.manifest.batch_id,
            &batch.digest,
            &signed,
        )?;
        tx.append_audit(&NewAuditEntry {
            actor: format!("node:{from}"),
            actor_region: Some(from.to_string()),
            action: "federation_apply".into(),
            resource_type: "batch".into(),
            resource_id: Some(batch.manifest.batch_id.clone()),
            outcome: "success".into(),
            detail: Some(format!(
                "batch {seq}: {} changes, {applied} applied, {} parked",
                batch.payload.changes.len(),
                parked.len()
            )),
            ..NewAuditEntry::default()
        })?;
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

/// p50, p99 and max of `values` in milliseconds.
fn percentiles_ms(values: &mut [Duration]) -> serde_json::Value {
    values.sort();
    let at = |q: f64| {
        values.get(((values.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| (d.as_secs_f64() * 1e4).round() / 10.0)
    };
    serde_json::json!({ "p50": at(0.5), "p99": at(0.99), "max": at(1.0) })
}

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
        "apply_batch_ms": percentiles_ms(&mut clock.apply_each),
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
    let changes = generate_changes(&nodes[0], args.changes)?;
    let setup_seconds = setup.elapsed().as_secs_f64();
    say(format!("link: {changes} changes written at {} in {setup_seconds:.1} s (not timed)", CHAIN[0]));
    let mut clock = LinkClock::default();
    let started = Instant::now();
    while link_step(&nodes[0], &nodes[1], args.batch, &mut clock, &mut |_| {})? {}
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
        let written = generate_changes(&nodes[0], args.changes)?;
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
        "latency_ms": percentiles_ms(&mut latencies),
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
            progressed |= link_step(&nodes[0], &nodes[1], batch, &mut clocks[0], &mut |event| {
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
            while link_step(&nodes[hop], &nodes[hop + 1], batch, clock, &mut |event| {
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
                                link_step(&nodes[hop], &nodes[hop + 1], batch, &mut clock, &mut |event| match event {
                                    LinkEvent::Cut(at, ids) if hop == 0 => observed.push((at, ids)),
                                    LinkEvent::Applied(at, ids) if hop == 2 => observed.push((at, ids)),
                                    _ => {}
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

/// Store options for a benchmark's throwaway database: fresh data keys, so
/// the measurement includes sealing and opening personal fields as a node does.
fn bench_store_options() -> anyhow::Result<rhip_store::StoreOptions> {
    let (keys, _) = rhip_auth::DataKeys::generate().context("generate data keys")?;
    Ok(rhip_store::StoreOptions::with_cipher(std::sync::Arc::new(rhip_auth::DataKeyRing::fixed(keys))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_messages_are_accepted_by_the_reader() {
        let today = chrono::Utc::now().date_naive();
        for n in [0, 1, 5, 999, 123_456] {
            let message = super::synthetic_adt("H330106001", "T", n);
            let received = rhip_hl7::receive(&message, today);
            assert!(matches!(received, rhip_hl7::Received::Accepted { .. }), "{n}: {received:?}");
        }
    }

    #[test]
    fn synthetic_documents_are_valid() {
        let today = chrono::Utc::now().date_naive();
        for n in [0, 1, 77, 123_456] {
            let document = super::synthetic_document("H330106001", "T", n);
            let read = rhip_cda::read(&document, &rhip_cda::Limits::default()).unwrap();
            assert!(rhip_cda::validate(&read, today).is_empty(), "{n}");
        }
    }
}
