//! `rhip demo`: the demo federation (`federation/demo.toml`, embedded in the
//! binary) running on this machine. It writes the eight node folders (or
//! reuses them), registers one hospital in each of Xihu, Binjiang and Tianhe
//! and the facilities of a synthetic population (`rhip_synth`, a few hundred
//! residents by default) at their counties, imports each county's synthetic
//! residents at its node (`rhip person import`), starts every node as a child
//! process (`rhip serve`), sends its scripted admissions over MLLP and one CDA
//! document over HTTP, then every county's synthetic HL7 v2 messages over MLLP
//! and CDA documents over HTTP (each answer compared with the generator's
//! expected one), and waits until the federation is quiet. Then it prints
//! where to look and runs until Ctrl-C; with `--once` it checks through the
//! nodes' HTTP APIs that every record is at every tier where the routing and
//! retention rules say it belongs (and nowhere else), that residents treated
//! in another province reach their home county, prints a summary table and
//! exits 0 only if every check passed.
//!
//! Traffic is deterministic (same control ids, visit numbers and documents for
//! the same seed), so a second run on the same folder resends it and changes
//! nothing; the synthetic residents are imported once per folder.

use super::facility::operator;
use crate::cli::DemoArgs;
use crate::topology::Topology;
use crate::Failure;
use anyhow::Context;
use chrono::NaiveDate;
use rhip_api_types::NewFacilityRequest;
use rhip_core::{CitizenId, RegionCode, Role};
use rhip_server::Settings;
use rhip_store::NewAuditEntry;
use rhip_synth::{Channel, Config, Expected, Synth};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo federation's topology, so the binary works without the repository.
const DEMO_TOPOLOGY: &str = include_str!("../../../../federation/demo.toml");
/// The demo's regions, parents before children (the order nodes start in).
const REGIONS: [&str; 8] = ["000000", "330000", "440000", "330100", "440100", "330106", "330108", "440106"];
const NATIONAL: &str = "000000";
const XIHU: &str = "330106";
const BINJIANG: &str = "330108";
const TIANHE: &str = "440106";
/// The demo's counties, where the synthetic residents live and are treated.
const COUNTIES: [&str; 3] = [XIHU, BINJIANG, TIANHE];
/// In each county's folder: the seed and size of the synthetic population
/// imported there, so a second run reuses it (and refuses another one).
const SYNTHETIC_MARKER: &str = "synthetic.json";
/// In each county's folder: that county's synthetic residents, as imported.
const SYNTHETIC_PERSONS: &str = "synthetic-persons.jsonl";
/// How many mismatched answers are shown (on stderr) at most.
const MISMATCHES_SHOWN: usize = 5;
/// The hospitals the demo registers: (code, name, county).
const HOSPITALS: [(&str, &str, &str); 3] = [
    ("H330106001", "西湖区示范人民医院（演示）", XIHU),
    ("H330108001", "滨江区示范人民医院（演示）", BINJIANG),
    ("H440106001", "天河区示范人民医院（演示）", TIANHE),
];
/// Where the Xihu resident treated in Tianhe travels: up from Tianhe, then down to Xihu.
const CROSS_PROVINCE_PATH: [&str; 7] = ["440106", "440100", "440000", "000000", "330000", "330100", "330106"];
/// The posted CDA document, kept so that a second run resends the same bytes.
const DOCUMENT_FILE: &str = "demo-document.xml";
/// How long the federation may take to become quiet.
const QUIET_TIMEOUT: Duration = Duration::from_secs(120);

const SURNAMES: &str = include_str!("../../../../schemas/reference/surnames_zh_cn.csv");
const GIVEN_NAMES: &str = include_str!("../../../../schemas/reference/given_names_zh_cn.csv");

/// Runs `rhip demo`.
pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    if args.db.is_some() {
        return Err(Failure::usage(
            "--db: the demo federation runs its eight nodes on embedded SQLite; for PostgreSQL write the nodes \
             with `rhip federation init` and set database.url in each node.toml",
        ));
    }
    let topology = match &args.topology {
        Some(path) => Topology::load(path).map_err(Failure::usage)?,
        None => Topology::parse(DEMO_TOPOLOGY).map_err(|e| Failure::Runtime(anyhow::anyhow!("demo topology: {e}")))?,
    };
    let mut regions: Vec<&str> = topology.nodes.iter().map(|n| n.region.as_str()).collect();
    regions.sort_unstable();
    let mut expected = REGIONS.to_vec();
    expected.sort_unstable();
    if regions != expected {
        return Err(Failure::usage(format!("--topology: the demo needs exactly the regions {}", expected.join(", "))));
    }
    let (dir, _temporary) = match &args.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temporary =
                tempfile::Builder::new().prefix("rhip-demo-").tempdir().context("create a temporary folder")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let synth = synthetic_population(args)?;
    prepare(&topology, &dir, &synth)?;
    let settings = REGIONS
        .iter()
        .map(|region| Ok((*region, Settings::load(&config_of(&dir, region))?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let signer = Signer { settings };

    let mut nodes = Nodes::start(&dir)?;
    let http = Http::new();
    let mut traffic = send_traffic(&dir, &nodes, &signer, &http)?;
    eprintln!("sending the traffic of {} synthetic residents ({} episodes) …", synth.residents(), synth.episodes());
    traffic.synthetic = send_synthetic(&synth, &nodes, &signer, &http)?;
    for mismatch in &traffic.synthetic.mismatches {
        eprintln!("warning: synthetic traffic: {mismatch}");
    }
    eprintln!("waiting for the federation to become quiet …");
    let quiet = wait_quiet(&nodes, &signer, &http);
    find_traveller(&nodes, &signer, &http, &mut traffic)?;
    print_guide(&dir, &nodes, &signer, &traffic)?;
    if let Err(error) = &quiet {
        eprintln!("warning: {error}");
    }
    if !args.once {
        println!();
        println!("Running until Ctrl-C. Every {} s while counts change: persons / encounters / documents per node, and changes pending on its links.", LIVE_EVERY.as_secs());
        let live = LiveLine::start(&nodes, &signer)?;
        wait_for_signal()?;
        live.stop();
        nodes.stop();
        return Ok(());
    }
    let mut checks = run_checks(&dir, &nodes, &signer, &http, &traffic)?;
    let propagation = measure_propagation(&nodes, &signer, &http)?;
    let arrived = propagation.iter().filter(|took| took.is_some()).count();
    checks.push(Check {
        check: "new admission reaches the national node".into(),
        place: place(NATIONAL),
        expected: format!("{PROPAGATION_PROBES} of {PROPAGATION_PROBES}"),
        found: format!("{arrived} of {PROPAGATION_PROBES}"),
        ok: arrived == PROPAGATION_PROBES,
    });
    nodes.stop();
    print_summary(&checks);
    print_propagation(&propagation);
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!("{failed} of {} demo checks failed", checks.len())))
    }
}

/// Admissions sent one at a time at Xihu to time their way to national.
const PROPAGATION_PROBES: usize = 5;

/// Sends admissions of new persons at Xihu's hospital, one at a time, and
/// times each from the send until the national node finds the person by
/// citizen ID: three hops over the real mutual-TLS links, at the nodes'
/// push schedule. `None` for one that did not arrive within 30 s.
fn measure_propagation(nodes: &Nodes, signer: &Signer, http: &Http) -> Result<Vec<Option<Duration>>, Failure> {
    let token = signer.sign(NATIONAL, Role::Commission, None, None)?;
    let xihu = RegionCode::parse(XIHU).map_err(|e| Failure::Runtime(e.into()))?;
    let hospital = hospital_of(XIHU);
    let mut took = Vec::new();
    for n in 0..PROPAGATION_PROBES {
        let birth = NaiveDate::from_ymd_opt(1960 + i32::try_from(n).unwrap_or(0), 6, 15).unwrap_or_default();
        let id_number = CitizenId::generate(xihu, birth, 901 + u16::try_from(n).unwrap_or(0) * 2).as_str().to_string();
        let message = format!(
            "MSH|^~\\&|HIS|{hospital}|RHIP|RHIP|20240601080000||ADT^A04^ADT_A01|DEMO-PROBE-{n}|P|2.5|||AL|NE||UNICODE UTF-8\r\
             EVN|A04|20240601080000\r\
             PID|1||DEMO-PROBE-{n}^^^{hospital}^MR~{id_number}^^^CHN^NNCHN||测试^探针||{birth}|M|||示范路1号（演示地址）^^^^^CHN^H^^{XIHU}\r\
             PV1|1|O|内科||||||||||||||||DEMO-PROBE-V-{n}\r",
            birth = birth.format("%Y%m%d"),
        );
        let url = format!("{}/api/v1/persons?id_number={id_number}", nodes.api(NATIONAL));
        let sent = Instant::now();
        let ack = send_mllp(&nodes.node(XIHU)?.mllp, message.as_bytes())?;
        if ack_code(&ack) != "AA" {
            return Err(Failure::Runtime(anyhow::anyhow!("the propagation probe was refused at Xihu: {ack}")));
        }
        let mut arrived = None;
        while sent.elapsed() < Duration::from_secs(30) {
            let found = http.get_json(&url, &token).1["items"].as_array().is_some_and(|items| !items.is_empty());
            if found {
                arrived = Some(sent.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        took.push(arrived);
    }
    Ok(took)
}

/// One line with the probes' times (a figure, not a check: the demo never
/// fails on time).
fn print_propagation(took: &[Option<Duration>]) {
    let mut arrived: Vec<Duration> = took.iter().flatten().copied().collect();
    arrived.sort();
    let Some(max) = arrived.last() else { return };
    let median = arrived[arrived.len() / 2];
    println!(
        "county → national (Xihu → Hangzhou → Zhejiang → national, real processes, push every second): {} admissions, median {} ms, max {} ms",
        arrived.len(),
        median.as_millis(),
        max.as_millis()
    );
}

fn config_of(dir: &Path, region: &str) -> PathBuf {
    dir.join(region).join("node.toml")
}

/// The synthetic population of `--seed` and `--residents`, living in the demo's counties.
fn synthetic_population(args: &DemoArgs) -> Result<Synth, Failure> {
    let counties = COUNTIES
        .iter()
        .map(|county| RegionCode::parse(county).map_err(|e| Failure::Runtime(e.into())))
        .collect::<Result<Vec<_>, Failure>>()?;
    Synth::new(Config::new(args.seed, args.residents, &counties))
        .map_err(|e| Failure::usage(format!("--residents: {e}")))
}

/// Writes the federation into `dir` unless it is already there, registers
/// the demo hospitals and the synthetic facilities at their counties
/// (facilities travel up from there), and imports the synthetic residents.
fn prepare(topology: &Topology, dir: &Path, synth: &Synth) -> Result<(), Failure> {
    let present = REGIONS.iter().filter(|region| config_of(dir, region).is_file()).count();
    if present == 0 {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(Failure::usage(format!(
                "--dir {} is neither empty nor a demo federation; choose a new folder",
                dir.display()
            )));
        }
        super::federation::generate(topology, dir)?;
    } else if present < REGIONS.len() {
        return Err(Failure::usage(format!(
            "--dir {} holds only {present} of the demo's {} nodes; choose a new folder",
            dir.display(),
            REGIONS.len()
        )));
    }
    // The demo's own hospitals first: a synthetic facility with the same code is that one.
    let demo = HOSPITALS.iter().map(|(code, name, region)| NewFacilityRequest {
        code: (*code).into(),
        name: (*name).into(),
        kind: Some("hospital".into()),
        region: Some((*region).into()),
    });
    let synthetic = synth.facilities().iter().map(|facility| {
        let record = facility.record();
        NewFacilityRequest {
            code: record.code,
            name: record.name,
            kind: Some(record.kind.into()),
            region: Some(record.region),
        }
    });
    let requests: Vec<NewFacilityRequest> = demo.chain(synthetic).collect();
    for county in COUNTIES {
        let settings = Settings::load(&config_of(dir, county))?;
        let store = super::open_store(&settings)?;
        let new = requests
            .iter()
            .filter(|request| request.region.as_deref() == Some(county))
            .map(|request| {
                rhip_server::routes::facilities::validate(request, settings.node.region)
                    .map_err(|e| Failure::Runtime(anyhow::anyhow!("facility {}: {e}", request.code)))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        store
            .write(|tx| {
                for facility in &new {
                    let code = facility.code.as_str();
                    if tx.get_facility(code)?.is_some() {
                        continue;
                    }
                    tx.insert_facility(facility)?;
                    tx.append_audit(&NewAuditEntry {
                        actor: operator(),
                        role: Some("node_admin".into()),
                        action: "create".into(),
                        resource_type: "facility".into(),
                        resource_id: Some(code.into()),
                        outcome: "success".into(),
                        detail: Some("rhip demo".into()),
                        ..NewAuditEntry::default()
                    })?;
                }
                Ok(())
            })
            .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context(format!("register facilities at {county}"))))?;
    }
    import_residents(dir, synth)
}

/// Imports each county's synthetic residents at its node with `rhip person
/// import`, as a county would load its population register, once per folder:
/// a county whose marker names this population is skipped, one holding
/// another population is refused.
fn import_residents(dir: &Path, synth: &Synth) -> Result<(), Failure> {
    let wanted = serde_json::json!({ "seed": synth.seed(), "residents": synth.residents() });
    let mut pending = Vec::new();
    for county in COUNTIES {
        let marker = dir.join(county).join(SYNTHETIC_MARKER);
        let Ok(text) = std::fs::read_to_string(&marker) else {
            pending.push(county);
            continue;
        };
        let found: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if found != wanted {
            return Err(Failure::usage(format!(
                "--dir {}: node {county} holds the synthetic population of seed {} with {} residents; run with \
                 those --seed and --residents, or choose a new folder",
                dir.display(),
                found["seed"],
                found["residents"]
            )));
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let mut files = BTreeMap::new();
    for county in &pending {
        let path = dir.join(county).join(SYNTHETIC_PERSONS);
        let file = std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        files.insert(*county, (std::io::BufWriter::new(file), path, 0u64));
    }
    for resident in synth.all_residents() {
        let Some((writer, path, count)) = files.get_mut(resident.home_region.as_str()) else { continue };
        serde_json::to_writer(&mut *writer, &resident.import_record())
            .with_context(|| format!("write {}", path.display()))?;
        writer.write_all(b"\n").with_context(|| format!("write {}", path.display()))?;
        *count += 1;
    }
    let exe = std::env::current_exe().context("find the rhip executable")?;
    for (county, (mut writer, path, count)) in files {
        writer.flush().with_context(|| format!("write {}", path.display()))?;
        drop(writer);
        if count > 0 {
            let imported = Command::new(&exe)
                .args(["person", "import", "--config"])
                .arg(config_of(dir, county))
                .arg("--file")
                .arg(&path)
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("run rhip person import for {county}"))?;
            if !imported.status.success() {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "import the synthetic residents of {county}: {}",
                    String::from_utf8_lossy(&imported.stderr).trim()
                )));
            }
        }
        let marker = dir.join(county).join(SYNTHETIC_MARKER);
        std::fs::write(&marker, wanted.to_string()).with_context(|| format!("write {}", marker.display()))?;
    }
    Ok(())
}

/// Signs tokens with each node's key. The claims are the demo's own, so the
/// store checks of `rhip token` (which would open a running node's database)
/// are skipped; the nodes check every token as usual.
struct Signer {
    settings: Vec<(&'static str, Settings)>,
}

impl Signer {
    fn sign(&self, node: &str, role: Role, facility: Option<&str>, person: Option<&str>) -> Result<String, Failure> {
        let settings = &self.settings.iter().find(|(r, _)| *r == node).context("demo node settings")?.1;
        let key = rhip_server::load_key(settings)?;
        let ttl = settings.max_token_ttl().min(Duration::from_secs(24 * 3600));
        let region = matches!(role, Role::Commission | Role::Auditor | Role::NodeAdmin).then_some(settings.node.region);
        let claims =
            super::token::claims(settings.node.region, format!("demo-{role}"), role, region, facility, person, ttl);
        key.mint(&claims).map_err(|e| Failure::Runtime(anyhow::anyhow!("sign a demo token: {e}")))
    }
}

/// One running node.
struct NodeProcess {
    region: &'static str,
    child: Child,
    api: String,
    mllp: String,
}

/// The running nodes; stopped (SIGTERM, then kill) when dropped.
struct Nodes {
    nodes: Vec<NodeProcess>,
}

impl Nodes {
    /// Starts every node as `rhip serve` of this executable, tier by tier
    /// from the national node down, each tier once the one above is ready.
    fn start(dir: &Path) -> Result<Nodes, Failure> {
        let mut nodes = Nodes { nodes: Vec::new() };
        for tier in [&REGIONS[..1], &REGIONS[1..3], &REGIONS[3..5], &REGIONS[5..]] {
            let mut waiting = Vec::new();
            for region in tier {
                let log = dir.join(region).join("serve.log");
                waiting.push((*region, super::process::spawn_serve(&config_of(dir, region), &log)?));
            }
            for (region, starting) in waiting {
                let ready = starting.ready();
                let mut node = NodeProcess { region, child: starting.child, api: String::new(), mllp: String::new() };
                let Some(addresses) = ready else {
                    nodes.nodes.push(node);
                    return Err(Failure::Runtime(anyhow::anyhow!(
                        "node {region} did not start; see {}",
                        dir.join(region).join("serve.log").display()
                    )));
                };
                node.api = addresses.api;
                node.mllp = addresses.mllp;
                nodes.nodes.push(node);
            }
        }
        Ok(nodes)
    }

    fn node(&self, region: &str) -> Result<&NodeProcess, Failure> {
        Ok(self.nodes.iter().find(|n| n.region == region).with_context(|| format!("node {region} is not running"))?)
    }

    fn api(&self, region: &str) -> String {
        self.node(region).map(|n| n.api.clone()).unwrap_or_default()
    }

    /// SIGTERM to every node, then waits (15 s at most) and kills what is left.
    fn stop(&mut self) {
        super::process::stop_all(self.nodes.iter_mut().map(|node| &mut node.child));
        self.nodes.clear();
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
fn wait_for_signal() -> Result<(), Failure> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("start a signal runtime")?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listen for SIGTERM")?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result.context("listen for Ctrl-C")?,
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.context("listen for Ctrl-C")?;
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}

/// A synthetic patient and the admission that brings them in.
struct Patient {
    /// Which group of the summary the patient belongs to.
    group: &'static str,
    home: &'static str,
    hospital: &'static str,
    name: String,
    id_number: String,
    message: Vec<u8>,
}

/// Residents of Xihu, Binjiang and Tianhe admitted at their own county's
/// hospital, and one Xihu resident admitted in Tianhe (the last one).
fn patients() -> Vec<Patient> {
    let surnames: Vec<&str> = SURNAMES.lines().skip(1).filter_map(|l| l.split(',').nth(1)).take(40).collect();
    let given: Vec<(&str, &str)> = GIVEN_NAMES.lines().skip(1).filter_map(|l| l.split_once(',')).collect();
    let plan: [(&str, &str, &str); 8] = [
        ("Xihu residents", XIHU, "H330106001"),
        ("Xihu residents", XIHU, "H330106001"),
        ("Xihu residents", XIHU, "H330106001"),
        ("Binjiang residents", BINJIANG, "H330108001"),
        ("Binjiang residents", BINJIANG, "H330108001"),
        ("Tianhe residents", TIANHE, "H440106001"),
        ("Tianhe residents", TIANHE, "H440106001"),
        ("Xihu resident treated in Tianhe", XIHU, "H440106001"),
    ];
    plan.iter()
        .zip(0u16..)
        .map(|(&(group, home, hospital), n)| {
            let male = n % 2 == 0;
            let birth = NaiveDate::from_ymd_opt(1950 + i32::from(n) * 7, 1 + u32::from(n), 3 + u32::from(n))
                .unwrap_or_default();
            // GB 11643: an odd sequence number is a man's.
            let region = RegionCode::parse(home).unwrap_or(RegionCode::NATIONAL);
            let id_number = CitizenId::generate(region, birth, 300 + n * 2 + u16::from(male)).as_str().to_string();
            let surname = surnames.get(usize::from(n) * 3).copied().unwrap_or("王");
            let given_name = given
                .iter()
                .filter(|(_, sex)| *sex == if male { "male" } else { "female" })
                .nth(usize::from(n) * 4 + 1)
                .map_or("明", |(name, _)| *name);
            let admitted = format!("202403{:02}0800", 1 + n);
            let message = format!(
                "MSH|^~\\&|HIS|{hospital}|RHIP|RHIP|{admitted}00||ADT^A01^ADT_A01|DEMO-A01-{n}|P|2.5|||AL|NE||UNICODE UTF-8\r\
                 EVN|A01|{admitted}00\r\
                 PID|1||DEMO-MRN-{n}^^^{hospital}^MR~{id_number}^^^CHN^NNCHN||{surname}^{given_name}||{birth}|{sex}|||示范路{street}号（演示地址）^^^^^CHN^H^^{home}||1390000{phone:04}\r\
                 PV1|1|I|内科^301^2||||D001^张^医生|||MED|||||||||DEMO-V-{n}|||||||||||||||||||||||||{admitted}00\r",
                birth = birth.format("%Y%m%d"),
                sex = if male { "M" } else { "F" },
                street = 10 + n,
                phone = 1000 + n,
            );
            Patient {
                group,
                home,
                hospital,
                name: format!("{surname}{given_name}"),
                id_number,
                message: message.into_bytes(),
            }
        })
        .collect()
}

/// What the traffic made, for the guide and the checks.
struct Traffic {
    patients: Vec<Patient>,
    /// EMPI id (at Xihu) of the Xihu resident treated in Tianhe.
    traveller: String,
    /// The document: its id, and the bytes posted.
    document_id: String,
    document: Vec<u8>,
    /// What the synthetic population's traffic got.
    synthetic: Synthetic,
}

/// The synthetic population's traffic and its answers.
#[derive(Default)]
struct Synthetic {
    seed: u64,
    residents: u64,
    facilities: usize,
    /// Per county (the node the traffic went to).
    counties: BTreeMap<String, CountyTally>,
    /// The first answers that differed from the expected ones.
    mismatches: Vec<String>,
    /// Residents treated in another province, at most one per home county.
    travellers: Vec<SyntheticTraveller>,
}

/// What one county's node was sent and how it answered.
#[derive(Default)]
struct CountyTally {
    messages: usize,
    messages_as_expected: usize,
    invalid: usize,
    invalid_rejected: usize,
    documents: usize,
    documents_accepted: usize,
}

/// A synthetic resident whose visit in another province was accepted there.
struct SyntheticTraveller {
    home: String,
    id_number: String,
    name: String,
    facility: String,
}

impl Synthetic {
    fn total(&self, field: fn(&CountyTally) -> usize) -> usize {
        self.counties.values().map(field).sum()
    }
}

fn hospital_of(region: &str) -> &'static str {
    HOSPITALS.iter().find(|(_, _, r)| *r == region).map_or("", |(code, _, _)| code)
}

/// Sends the admissions over MLLP to the hospitals' counties, then posts one
/// CDA document at Xihu as its hospital's system.
fn send_traffic(dir: &Path, nodes: &Nodes, signer: &Signer, http: &Http) -> Result<Traffic, Failure> {
    let patients = patients();
    for patient in &patients {
        let county = HOSPITALS.iter().find(|(code, _, _)| *code == patient.hospital).map_or(XIHU, |h| h.2);
        let ack = send_mllp(&nodes.node(county)?.mllp, &patient.message)
            .with_context(|| format!("send an admission to node {county}"))?;
        if ack_code(&ack) != "AA" {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "node {county} refused the admission of {}: {}",
                patient.name,
                ack.replace('\r', " ")
            )));
        }
    }
    let xihu = nodes.api(XIHU);
    let at_xihu = signer.sign(XIHU, Role::Commission, None, None)?;
    let empi_at_xihu = |patient: &Patient| -> Result<String, Failure> {
        let (status, body) = http.get_json(&format!("{xihu}/api/v1/persons?id_number={}", patient.id_number), &at_xihu);
        body["items"][0]["empi_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{status} {body}"))
            .map_err(|e| Failure::Runtime(e.context(format!("find {} at Xihu", patient.name))))
    };

    // The hospital posts the WS/T 500 EMR document Xihu generates for its first admission.
    let hospital = hospital_of(XIHU);
    let as_hospital = signer.sign(XIHU, Role::HospitalSystem, Some(hospital), None)?;
    let file = dir.join(DOCUMENT_FILE);
    let document = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(_) => {
            let first = patients.first().context("no demo patients")?;
            let empi = empi_at_xihu(first)?;
            let (status, body) = http.get_json(&format!("{xihu}/api/v1/persons/{empi}/encounters"), &as_hospital);
            let encounter = body["items"][0]["id"].as_str().with_context(|| format!("encounters: {status} {body}"))?;
            let (status, bytes) =
                http.get_bytes(&format!("{xihu}/api/v1/encounters/{encounter}/document.xml"), &as_hospital);
            if status != 200 {
                return Err(Failure::Runtime(anyhow::anyhow!("generate the demo document: {status}")));
            }
            std::fs::write(&file, &bytes).with_context(|| format!("write {}", file.display()))?;
            bytes
        }
    };
    let (status, body) = http.post_xml(&format!("{xihu}/api/v1/documents"), &as_hospital, &document);
    let document_id = match (status, body["id"].as_str()) {
        (200 | 201, Some(id)) => id.to_string(),
        _ => return Err(Failure::Runtime(anyhow::anyhow!("post the demo document at Xihu: {status} {body}"))),
    };
    Ok(Traffic { patients, traveller: String::new(), document_id, document, synthetic: Synthetic::default() })
}

/// Sends every county's synthetic traffic in the generator's order: HL7 v2
/// messages over MLLP to the county node, CDA documents to its
/// `POST /api/v1/documents` with a `hospital_system` token of the document's
/// facility; every answer is compared with the expected one (ACK code, or
/// 201, or 200 for a document sent again by an earlier run).
fn send_synthetic(synth: &Synth, nodes: &Nodes, signer: &Signer, http: &Http) -> Result<Synthetic, Failure> {
    let mut outcome = Synthetic {
        seed: synth.seed(),
        residents: synth.residents(),
        facilities: synth.facilities().len(),
        counties: COUNTIES.iter().map(|county| (county.to_string(), CountyTally::default())).collect(),
        ..Synthetic::default()
    };
    let mut tokens: HashMap<String, String> = HashMap::new();
    for submission in synth.traffic() {
        let county = submission.county.as_str();
        let expected = submission.expected_code();
        let answer = match submission.channel {
            Channel::Mllp => match send_mllp(&nodes.node(county)?.mllp, &submission.bytes) {
                Ok(ack) => ack_code(&ack),
                Err(error) => format!("no ACK ({error:#})"),
            },
            Channel::Http => {
                let token = match tokens.get(&submission.facility) {
                    Some(token) => token.clone(),
                    None => {
                        let token = signer.sign(county, Role::HospitalSystem, Some(&submission.facility), None)?;
                        tokens.insert(submission.facility.clone(), token.clone());
                        token
                    }
                };
                let (status, _) =
                    http.post_xml(&format!("{}/api/v1/documents", nodes.api(county)), &token, &submission.bytes);
                status.to_string()
            }
        };
        let as_expected = answer == expected || (expected == "201" && answer == "200");
        let tally = outcome.counties.entry(county.to_string()).or_default();
        match (submission.channel, submission.expected) {
            (Channel::Mllp, Expected::Accept) => {
                tally.messages += 1;
                tally.messages_as_expected += usize::from(as_expected);
            }
            (Channel::Mllp, Expected::Error | Expected::Reject) => {
                tally.messages += 1;
                tally.messages_as_expected += usize::from(as_expected);
                tally.invalid += 1;
                tally.invalid_rejected += usize::from(as_expected);
            }
            (Channel::Http, _) => {
                tally.documents += 1;
                tally.documents_accepted += usize::from(as_expected);
            }
        }
        if !as_expected && outcome.mismatches.len() < MISMATCHES_SHOWN {
            outcome.mismatches.push(format!(
                "{county} {} {} ({}): expected {expected}, got {answer}",
                submission.kind,
                submission.control_id,
                submission.scenario.name()
            ));
        }
        let visit = submission.channel == Channel::Mllp && submission.kind.starts_with("ADT");
        if as_expected && visit && submission.outside_home_province && submission.expected == Expected::Accept {
            if let Some(resident) = synth.resident(submission.resident) {
                let home = resident.home_region.as_str().to_string();
                if !outcome.travellers.iter().any(|t| t.home == home) {
                    outcome.travellers.push(SyntheticTraveller {
                        home,
                        id_number: resident.citizen_id.as_str().to_string(),
                        name: resident.name(),
                        facility: submission.facility.clone(),
                    });
                }
            }
        }
    }
    Ok(outcome)
}

/// The EMPI id at Xihu of the Xihu resident treated in Tianhe (there once
/// the federation carried the admission home).
fn find_traveller(nodes: &Nodes, signer: &Signer, http: &Http, traffic: &mut Traffic) -> Result<(), Failure> {
    let Some(traveller) = traffic.patients.last() else { return Ok(()) };
    let token = signer.sign(XIHU, Role::Commission, None, None)?;
    let url = format!("{}/api/v1/persons?id_number={}", nodes.api(XIHU), traveller.id_number);
    let (status, body) = http.get_json(&url, &token);
    traffic.traveller = body["items"][0]["empi_id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("find {} at Xihu: {status} {body}", traveller.name))?;
    Ok(())
}

/// Sends one framed message and reads the ACK.
fn send_mllp(address: &str, message: &[u8]) -> anyhow::Result<String> {
    let mut stream = std::net::TcpStream::connect(address).with_context(|| format!("connect to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).context("set a timeout")?;
    stream.write_all(&rhip_hl7::mllp::frame(message)).context("send")?;
    let mut deframer = rhip_hl7::mllp::Deframer::new(1 << 20);
    let mut buffer = [0u8; 8192];
    loop {
        let count = stream.read(&mut buffer).context("read the ACK")?;
        anyhow::ensure!(count > 0, "the node closed the connection without an ACK");
        for event in deframer.push(&buffer[..count]) {
            if let rhip_hl7::mllp::FrameEvent::Message(ack) = event {
                return Ok(String::from_utf8_lossy(&ack).into_owned());
            }
        }
    }
}

/// MSA-1 of an ACK.
fn ack_code(ack: &str) -> String {
    ack.split('\r').find(|s| s.starts_with("MSA")).and_then(|s| s.split('|').nth(1)).unwrap_or_default().to_string()
}

/// Link figures of every node, for deciding that nothing moves any more.
fn federation_snapshot(nodes: &Nodes, tokens: &[(String, String)], http: &Http) -> (bool, Vec<Value>) {
    let mut quiet = true;
    let mut figures = Vec::new();
    for (region, token) in tokens {
        let (status, body) = http.get_json(&format!("{}/api/v1/federation/status", nodes.api(region)), token);
        let links = body["links"].as_array().cloned().unwrap_or_default();
        quiet &= status == 200 && links.iter().all(|l| l["pending_changes"] == 0 && l["unacked_batches"] == 0);
        for link in links {
            figures.push(serde_json::json!([
                region,
                link["peer"],
                link["last_sent_seq"],
                link["last_acked_seq"],
                link["last_received_seq"]
            ]));
        }
    }
    (quiet, figures)
}

/// How often the live line looks at the nodes.
const LIVE_EVERY: Duration = Duration::from_secs(5);

/// The live line of counts per tier while the demo runs: a thread that asks
/// every node for its counts (`/api/v1/stats/summary`, as its commission)
/// and its links' backlog (`/api/v1/federation/status`), and prints one line
/// when anything changed.
struct LiveLine {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveLine {
    fn start(nodes: &Nodes, signer: &Signer) -> Result<LiveLine, Failure> {
        let mut targets = Vec::new();
        for region in REGIONS {
            let commission = signer.sign(region, Role::Commission, None, None)?;
            let admin = signer.sign(region, Role::NodeAdmin, None, None)?;
            targets.push((region.to_string(), nodes.api(region), commission, admin));
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rhip-demo-live".into())
            .spawn(move || {
                let http = Http::new();
                let mut last = String::new();
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let line = live_counts(&http, &targets);
                    if line != last {
                        println!("{} {line}", chrono::Local::now().format("%H:%M:%S"));
                        last = line;
                    }
                    let until = Instant::now() + LIVE_EVERY;
                    while Instant::now() < until && !flag.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            })
            .context("start the live line")?;
        Ok(LiveLine { stop, thread: Some(thread) })
    }

    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One look at every node: `region persons/encounters/documents (+pending)`,
/// nodes ordered by tier from the top; `?` for a node that did not answer.
fn live_counts(http: &Http, targets: &[(String, String, String, String)]) -> String {
    let mut ordered: Vec<&(String, String, String, String)> = targets.iter().collect();
    ordered
        .sort_by_key(|(region, ..)| (RegionCode::parse(region).map(|r| r.tier() as u8).unwrap_or(9), region.clone()));
    ordered
        .iter()
        .map(|(region, api, commission, admin)| {
            let (status, counts) = http.get_json(&format!("{api}/api/v1/stats/summary"), commission);
            let (_, links) = http.get_json(&format!("{api}/api/v1/federation/status"), admin);
            let pending: i64 = links["links"]
                .as_array()
                .map(|links| links.iter().filter_map(|l| l["pending_changes"].as_i64()).sum())
                .unwrap_or(0);
            if status != 200 {
                return format!("{region} ?");
            }
            let figure = |key: &str| counts[key].as_i64().unwrap_or(0);
            let pending = if pending > 0 { format!(" (+{pending})") } else { String::new() };
            format!("{region} {}/{}/{}{pending}", figure("persons"), figure("encounters"), figure("documents"))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// Waits until no node has anything pending or unacknowledged on any link,
/// twice in a row with the same sequence numbers (so no batch was in flight
/// between the two looks).
fn wait_quiet(nodes: &Nodes, signer: &Signer, http: &Http) -> Result<(), Failure> {
    let tokens = REGIONS
        .iter()
        .map(|region| Ok((region.to_string(), signer.sign(region, Role::NodeAdmin, None, None)?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let deadline = Instant::now() + QUIET_TIMEOUT;
    let mut previous: Option<Vec<Value>> = None;
    loop {
        let (quiet, figures) = federation_snapshot(nodes, &tokens, http);
        if quiet && previous.as_ref() == Some(&figures) {
            return Ok(());
        }
        previous = quiet.then_some(figures);
        if Instant::now() > deadline {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "the federation was not quiet after {} s",
                QUIET_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn print_guide(dir: &Path, nodes: &Nodes, signer: &Signer, traffic: &Traffic) -> Result<(), Failure> {
    println!("RHIP demo federation in {} (embedded SQLite; logs in <region>/serve.log)", dir.display());
    println!("  {:<8} {:<10} {:<26} {:<17} name", "region", "tier", "api", "mllp");
    for node in &nodes.nodes {
        let region = RegionCode::parse(node.region).unwrap_or(RegionCode::NATIONAL);
        println!(
            "  {:<8} {:<10} {:<26} {:<17} {}",
            node.region,
            region.tier().as_str(),
            node.api,
            node.mllp,
            region.name().unwrap_or("")
        );
    }
    println!();
    println!(
        "Traffic: {} admissions (HL7 v2 over MLLP) at {}, including a Xihu resident treated in Tianhe; one CDA \
         document posted at Xihu by {}.",
        traffic.patients.len(),
        HOSPITALS.iter().map(|(code, _, region)| format!("{code} ({region})")).collect::<Vec<_>>().join(", "),
        hospital_of(XIHU),
    );
    let synthetic = &traffic.synthetic;
    println!(
        "Synthetic population (seed {}): {} residents of Xihu, Binjiang and Tianhe imported at their counties, {} \
         facilities; {} HL7 v2 messages over MLLP ({} of them invalid) and {} CDA documents over HTTP, {} answered \
         as the generator expects.",
        synthetic.seed,
        synthetic.residents,
        synthetic.facilities,
        synthetic.total(|c| c.messages),
        synthetic.total(|c| c.invalid),
        synthetic.total(|c| c.documents),
        synthetic.total(|c| c.messages_as_expected + c.documents_accepted),
    );
    let national = nodes.api(NATIONAL);
    let xihu = nodes.api(XIHU);
    let national_admin = signer.sign(NATIONAL, Role::NodeAdmin, None, None)?;
    let national_commission = signer.sign(NATIONAL, Role::Commission, None, None)?;
    let xihu_commission = signer.sign(XIHU, Role::Commission, None, None)?;
    let resident = signer.sign(XIHU, Role::Resident, None, Some(&traffic.traveller))?;
    println!();
    println!("Try (tokens valid up to 24 h):");
    println!("  the links of the national node:");
    println!("    curl -H 'Authorization: Bearer {national_admin}' '{national}/api/v1/federation/status'");
    println!(
        "  the Xihu resident treated in Tianhe, at home in Xihu (the Tianhe encounter came via the national node):"
    );
    println!("    curl -H 'Authorization: Bearer {xihu_commission}' '{xihu}/api/v1/persons/{}/ehr'", traffic.traveller);
    println!(
        "  the document's bytes through the national node, which keeps only its index and fetches them from below:"
    );
    println!(
        "    curl -H 'Accept: application/xml' -H 'Authorization: Bearer {national_commission}' \
         '{national}/api/v1/documents/{}'",
        traffic.document_id
    );
    println!("  that resident's own record and who looked at it:");
    println!("    curl -H 'Authorization: Bearer {resident}' '{xihu}/api/v1/me/ehr'");
    println!("    curl -H 'Authorization: Bearer {resident}' '{xihu}/api/v1/me/access-log'");
    if let Some(traveller) = traffic.synthetic.travellers.first() {
        let token = signer.sign(&traveller.home, Role::Commission, None, None)?;
        println!(
            "  a synthetic resident, {} of {}, treated at {} in another province, found at home:",
            traveller.name,
            place(&traveller.home),
            traveller.facility
        );
        println!(
            "    curl -H 'Authorization: Bearer {token}' '{}/api/v1/persons?id_number={}'",
            nodes.api(&traveller.home),
            traveller.id_number
        );
    }
    println!("More tokens: rhip token --config {} --role commission", config_of(dir, "<region>").display());
    println!("Send HL7 v2: rhip hl7 send --to {} FILE... (MSH-4 {})", nodes.node(XIHU)?.mllp, hospital_of(XIHU));
    Ok(())
}

/// One line of the summary.
struct Check {
    check: String,
    place: String,
    expected: String,
    found: String,
    ok: bool,
}

/// Which token sees a patient at a node: the commission of a node whose
/// region contains the patient's home, otherwise a clinician of the treating
/// hospital (a facility-scoped token sees persons with an encounter there).
fn reader(signer: &Signer, node: &str, patient: &Patient) -> Result<String, Failure> {
    let node_region = RegionCode::parse(node).map_err(|e| Failure::Runtime(e.into()))?;
    let home = RegionCode::parse(patient.home).map_err(|e| Failure::Runtime(e.into()))?;
    if node_region.contains(&home) {
        signer.sign(node, Role::Commission, None, None)
    } else {
        signer.sign(node, Role::Clinician, Some(patient.hospital), None)
    }
}

fn place(region: &str) -> String {
    let name = RegionCode::parse(region).ok().and_then(|r| r.name()).unwrap_or("");
    format!("{region} {name}")
}

fn run_checks(
    dir: &Path,
    nodes: &Nodes,
    signer: &Signer,
    http: &Http,
    traffic: &Traffic,
) -> Result<Vec<Check>, Failure> {
    let mut checks = Vec::new();
    let mut check = |check: &str, region: &str, expected: String, found: String| {
        let ok = expected == found;
        checks.push(Check { check: check.into(), place: place(region), expected, found, ok });
    };
    let persons = |region: &str, token: &str, patient: &Patient| -> Vec<Value> {
        let url = format!("{}/api/v1/persons?id_number={}", nodes.api(region), patient.id_number);
        http.get_json(&url, token).1["items"].as_array().cloned().unwrap_or_default()
    };

    // Each county's residents, at their county and every tier above it, once each.
    for (group, home) in [("Xihu residents", XIHU), ("Binjiang residents", BINJIANG), ("Tianhe residents", TIANHE)] {
        let members: Vec<&Patient> = traffic.patients.iter().filter(|p| p.group == group).collect();
        let home_code = RegionCode::parse(home).map_err(|e| Failure::Runtime(e.into()))?;
        let mut tiers = vec![home_code];
        while let Some(parent) = tiers.last().and_then(RegionCode::parent) {
            tiers.push(parent);
        }
        for tier in tiers.iter().map(RegionCode::as_str) {
            let token = signer.sign(tier, Role::Commission, None, None)?;
            let once = members.iter().filter(|p| persons(tier, &token, p).len() == 1).count();
            check(
                &format!("{group} present once each"),
                tier,
                format!("{0} of {0}", members.len()),
                format!("{once} of {}", members.len()),
            );
        }
    }

    // Nowhere else: a clinician of the treating hospital would see them if they had arrived.
    for (group, elsewhere) in [
        ("Xihu residents", BINJIANG),
        ("Binjiang residents", XIHU),
        ("Tianhe residents", "330000"),
        ("Xihu residents", "440000"),
        ("Xihu resident treated in Tianhe", BINJIANG),
    ] {
        let members: Vec<&Patient> = traffic.patients.iter().filter(|p| p.group == group).collect();
        let mut found = 0;
        for patient in &members {
            let token = signer.sign(elsewhere, Role::Clinician, Some(patient.hospital), None)?;
            found += persons(elsewhere, &token, patient).len();
        }
        check(&format!("{group} absent"), elsewhere, "0 persons".into(), format!("{found} persons"));
    }

    // The cross-province encounter: up from Tianhe, down to Xihu, once at every node.
    if let Some(traveller) = traffic.patients.iter().find(|p| p.group == "Xihu resident treated in Tianhe") {
        for region in CROSS_PROVINCE_PATH {
            let token = reader(signer, region, traveller)?;
            let found = persons(region, &token, traveller);
            let found = match found.as_slice() {
                [person] => {
                    let empi = person["empi_id"].as_str().unwrap_or_default();
                    let url = format!("{}/api/v1/persons/{empi}/encounters", nodes.api(region));
                    let encounters = http.get_json(&url, &token).1["items"].as_array().cloned().unwrap_or_default();
                    let at_tianhe = encounters.iter().filter(|e| e["facility"] == traveller.hospital).count();
                    format!(
                        "1 person (home {}), {at_tianhe} encounter at {}",
                        person["home_region"], traveller.hospital
                    )
                    .replace('"', "")
                }
                other => format!("{} persons", other.len()),
            };
            check(
                "cross-province encounter",
                region,
                format!("1 person (home {XIHU}), 1 encounter at {}", traveller.hospital),
                found,
            );
        }
        let resident = signer.sign(XIHU, Role::Resident, None, Some(&traffic.traveller))?;
        let (status, body) = http.get_json(&format!("{}/api/v1/me/ehr", nodes.api(XIHU)), &resident);
        let entries = body["items"].as_array().cloned().unwrap_or_default();
        let from_tianhe = entries.iter().any(|e| e["facility"] == traveller.hospital);
        check(
            "resident reads own EHR with the Tianhe visit",
            XIHU,
            "200, Tianhe entry".into(),
            format!("{status}, {}", if from_tianhe { "Tianhe entry" } else { "no Tianhe entry" }),
        );
        // Who touched the record in Tianhe is in the access log at home.
        let (status, body) = http.get_json(&format!("{}/api/v1/me/access-log", nodes.api(XIHU)), &resident);
        let entries = body["items"].as_array().cloned().unwrap_or_default();
        let at_tianhe = entries.iter().filter(|e| e["recorded_at"] == TIANHE).count();
        check(
            "resident's access log shows Tianhe",
            XIHU,
            "200, entries recorded at 440106".into(),
            format!("{status}, {}", if at_tianhe > 0 { "entries recorded at 440106" } else { "none from 440106" }),
        );
    }

    // The synthetic traffic: every answer the one the generator expects.
    let synthetic = &traffic.synthetic;
    for (county, tally) in &synthetic.counties {
        check(
            "synthetic messages answered as expected",
            county,
            format!("{0} of {0}", tally.messages),
            format!("{} of {}", tally.messages_as_expected, tally.messages),
        );
        check(
            "invalid messages rejected (AE/AR)",
            county,
            format!("{0} of {0}", tally.invalid),
            format!("{} of {}", tally.invalid_rejected, tally.invalid),
        );
        check(
            "synthetic documents accepted",
            county,
            format!("{0} of {0}", tally.documents),
            format!("{} of {}", tally.documents_accepted, tally.documents),
        );
    }
    // Residents treated in another province: the visit is in their record at home.
    if synthetic.travellers.is_empty() {
        check(
            "synthetic residents treated outside their home province",
            NATIONAL,
            "at least 1 accepted visit".into(),
            "none".into(),
        );
    }
    for traveller in &synthetic.travellers {
        let home = nodes.api(&traveller.home);
        let token = signer.sign(&traveller.home, Role::Commission, None, None)?;
        let url = format!("{home}/api/v1/persons?id_number={}", traveller.id_number);
        let found = http.get_json(&url, &token).1["items"].as_array().cloned().unwrap_or_default();
        let found = match found.as_slice() {
            [person] => {
                let empi = person["empi_id"].as_str().unwrap_or_default();
                let url = format!("{home}/api/v1/persons/{empi}/encounters");
                let encounters = http.get_json(&url, &token).1["items"].as_array().cloned().unwrap_or_default();
                let there = encounters.iter().filter(|e| e["facility"] == traveller.facility.as_str()).count();
                format!("1 person, {} at {}", if there > 0 { "encounter" } else { "no encounter" }, traveller.facility)
            }
            other => format!("{} persons", other.len()),
        };
        check(
            "residents treated outside their home province reach their home county",
            &traveller.home,
            format!("1 person, encounter at {}", traveller.facility),
            found,
        );
    }

    // The document: indexed at the national node, its bytes fetched from below.
    let national = nodes.api(NATIONAL);
    let token = signer.sign(NATIONAL, Role::Commission, None, None)?;
    let url = format!("{national}/api/v1/documents/{}", traffic.document_id);
    let (status, index) = http.get_json(&url, &token);
    check(
        "document index entry",
        NATIONAL,
        "200, same id".into(),
        format!("{status}, {}", if index["id"] == traffic.document_id.as_str() { "same id" } else { "other id" }),
    );
    let (status, bytes) = http.get_bytes(&url, &token);
    check(
        "document bytes fetched from below",
        NATIONAL,
        format!("200, {} bytes, identical", traffic.document.len()),
        format!(
            "{status}, {} bytes, {}",
            bytes.len(),
            if bytes == traffic.document { "identical" } else { "different" }
        ),
    );
    let admin = signer.sign(NATIONAL, Role::NodeAdmin, None, None)?;
    let (status, body) = http.get_json(&format!("{national}/api/v1/federation/status"), &admin);
    check(
        "national keeps EMR documents as an index",
        NATIONAL,
        "200, emr index".into(),
        format!("{status}, emr {}", body["retention"]["emr"].as_str().unwrap_or("?")),
    );
    let (status, _) = http.get_json(&format!("{national}/api/v1/persons"), "forged.token.value");
    check("a forged token is refused", NATIONAL, "401".into(), status.to_string());

    // Every node's audit chain verifies (entries received from other nodes
    // included), checked by `rhip audit verify` as an operator would.
    let exe = std::env::current_exe().context("find the rhip executable")?;
    for region in REGIONS {
        let verified = Command::new(&exe)
            .args(["audit", "verify", "--config"])
            .arg(config_of(dir, region))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("run rhip audit verify for {region}"))?;
        let found = match verified.status.code() {
            Some(0) => "verifies".to_string(),
            code => format!(
                "exit {}: {}",
                code.unwrap_or(-1),
                String::from_utf8_lossy(&verified.stderr).lines().next().unwrap_or_default()
            ),
        };
        check("audit chain", region, "verifies".into(), found);
    }

    // Nothing left to send anywhere, nothing parked. The checks' own reads
    // of residents away from home are audit entries that travel to the home
    // county; the federation is quiet again once they are delivered (a
    // timeout shows below as what is still pending).
    let _ = wait_quiet(nodes, signer, http);
    for region in REGIONS {
        let token = signer.sign(region, Role::NodeAdmin, None, None)?;
        let (status, body) = http.get_json(&format!("{}/api/v1/federation/status", nodes.api(region)), &token);
        let links = body["links"].as_array().cloned().unwrap_or_default();
        let sum = |field: &str| links.iter().map(|l| l[field].as_i64().unwrap_or(0)).sum::<i64>();
        let found = if status == 200 {
            format!(
                "{} pending, {} unacked, {} dead letters",
                sum("pending_changes"),
                sum("unacked_batches"),
                body["dead_letters"].as_i64().unwrap_or(-1)
            )
        } else {
            format!("status {status}")
        };
        check("federation quiet", region, "0 pending, 0 unacked, 0 dead letters".into(), found);
    }
    Ok(checks)
}

/// Columns a text takes in a terminal: CJK characters take two.
fn display_width(text: &str) -> usize {
    text.chars().map(|c| if c >= '\u{2e80}' { 2 } else { 1 }).sum()
}

fn print_summary(checks: &[Check]) {
    let width = |column: fn(&Check) -> &str, title: &str| {
        checks.iter().map(|c| display_width(column(c))).chain([title.len()]).max().unwrap_or(0)
    };
    let widths = [
        width(|c| &c.check, "check"),
        width(|c| &c.place, "where"),
        width(|c| &c.expected, "expected"),
        width(|c| &c.found, "found"),
    ];
    let pad = |text: &str, width: usize| format!("{text}{}", " ".repeat(width.saturating_sub(display_width(text))));
    println!();
    println!(
        "{}  {}  {}  {}  ok",
        pad("check", widths[0]),
        pad("where", widths[1]),
        pad("expected", widths[2]),
        pad("found", widths[3])
    );
    for c in checks {
        println!(
            "{}  {}  {}  {}  {}",
            pad(&c.check, widths[0]),
            pad(&c.place, widths[1]),
            pad(&c.expected, widths[2]),
            pad(&c.found, widths[3]),
            if c.ok { "PASS" } else { "FAIL" }
        );
    }
    let passed = checks.iter().filter(|c| c.ok).count();
    println!("{passed}/{} checks passed", checks.len());
}

/// A small HTTP client: answers of any status come back with their body.
struct Http {
    agent: ureq::Agent,
}

impl Http {
    fn new() -> Http {
        Http { agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build() }
    }

    fn call(&self, request: ureq::Request, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        let result = match body {
            Some(body) => request.send_bytes(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => return (0, error.to_string().into_bytes()),
        };
        let status = response.status();
        let mut bytes = Vec::new();
        let _ = response.into_reader().read_to_end(&mut bytes);
        (status, bytes)
    }

    fn get_json(&self, url: &str, token: &str) -> (u16, Value) {
        let request = self.agent.get(url).set("Authorization", &format!("Bearer {token}"));
        let (status, bytes) = self.call(request, None);
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn get_bytes(&self, url: &str, token: &str) -> (u16, Vec<u8>) {
        let request =
            self.agent.get(url).set("Authorization", &format!("Bearer {token}")).set("Accept", "application/xml");
        self.call(request, None)
    }

    fn post_xml(&self, url: &str, token: &str, body: &[u8]) -> (u16, Value) {
        let request = self
            .agent
            .post(url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/xml");
        let (status, bytes) = self.call(request, Some(body));
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}
