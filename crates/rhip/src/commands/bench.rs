//! `rhip bench`: repeatable measurements an operator can run on their own
//! machine. `bench parse` times the HL7 v2 reader in process; `bench mllp`
//! drives a running node over MLLP with synthetic admissions on one or more
//! connections and reports throughput and ACK latency. Messages are synthetic
//! (made-up names, generated citizen IDs) and deterministic for a seed.

use crate::cli::{BenchCdaParseArgs, BenchDocumentsArgs, BenchIngestArgs, BenchMllpArgs, BenchParseArgs};
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
    let store = rhip_store::Store::open(&url, region, &rhip_store::StoreOptions::default())
        .map_err(|e| Failure::usage(e.to_string()))?;
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
