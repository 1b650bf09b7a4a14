//! `rhip synth`: writes a synthetic population and its hospital traffic as
//! files that the other commands and any hospital-side tool take as they are:
//!
//! - `persons.jsonl`: every resident, one `rhip person import` line each
//!   (with `home_region`, so a county imports its own with a filter);
//! - `households.jsonl`: households with their members' GB/T 4761 relations;
//! - `facilities.jsonl`: `{code, name, kind, region}`, the arguments of
//!   `rhip facility add` and the body of `POST /api/v1/facilities`;
//! - `traffic/<county>.hl7`: that county's HL7 v2 messages in sending order,
//!   segments on lines of their own, a blank line between messages (what
//!   `rhip hl7 send` reads; it turns the lines back into `\r` segments);
//! - `documents/<county>/<id>.xml`: CDA documents to post after the traffic;
//! - `expected.jsonl`: per message or document, its file, position, control
//!   id and the answer the node must give (`AA`, `AE`, `AR`, `201`);
//! - `summary.json`: counts per county and kind (printed with `--json`).
//!
//! Everything is streamed from `rhip_synth`, so ten million residents take
//! disk, not memory. The same seed writes the same bytes.

use crate::cli::SynthArgs;
use crate::topology::Topology;
use crate::Failure;
use anyhow::Context;
use rhip_core::{RegionCode, Tier};
use rhip_synth::{Channel, Config, Synth};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The demo federation's topology, the default.
const DEMO_TOPOLOGY: &str = include_str!("../../../../federation/demo.toml");
/// What `rhip synth` writes in its folder; an earlier output is recognised by
/// `summary.json` and replaced.
const OUTPUTS: [&str; 7] =
    ["persons.jsonl", "households.jsonl", "facilities.jsonl", "expected.jsonl", "summary.json", "traffic", "documents"];

/// Counts of one county.
#[derive(Default)]
struct CountyCounts {
    residents: u64,
    households: u64,
    facilities: u64,
    messages: u64,
    documents: u64,
    outside_home_province: u64,
    by_kind: BTreeMap<String, u64>,
    by_expected: BTreeMap<&'static str, u64>,
}

/// Runs `rhip synth`.
pub fn run(args: &SynthArgs) -> Result<(), Failure> {
    let topology = match &args.topology {
        Some(path) => Topology::load(path).map_err(Failure::usage)?,
        None => Topology::parse(DEMO_TOPOLOGY).map_err(|e| Failure::Runtime(anyhow::anyhow!("demo topology: {e}")))?,
    };
    let counties: Vec<RegionCode> =
        topology.nodes.iter().map(|node| node.region).filter(|region| region.tier() == Tier::County).collect();
    if counties.is_empty() {
        let source = args.topology.as_ref().map_or("the demo topology".to_owned(), |p| p.display().to_string());
        return Err(Failure::usage(format!("--topology {source} has no county-tier node for residents to live in")));
    }
    let mut config = Config::new(args.seed, args.residents, &counties);
    config.episodes = args.episodes;
    if args.episodes == Some(0) {
        return Err(Failure::usage("--episodes must be at least 1"));
    }
    let synth = Synth::new(config).map_err(|e| Failure::usage(format!("--residents/--topology: {e}")))?;
    prepare_out(&args.out)?;

    let mut counts: BTreeMap<RegionCode, CountyCounts> =
        counties.iter().map(|county| (*county, CountyCounts::default())).collect();
    write_population(&synth, &args.out, &mut counts)?;
    write_traffic(&synth, &args.out, &mut counts)?;

    let summary = summary(&synth, &counts);
    let mut file = create(&args.out.join("summary.json"))?;
    writeln!(file, "{}", serde_json::to_string_pretty(&summary).context("encode the summary")?)
        .context("write summary.json")?;
    file.flush().context("write summary.json")?;
    if args.json {
        println!("{}", serde_json::to_string(&summary).context("encode the summary")?);
    } else {
        print_summary(&synth, &counts, &args.out);
    }
    Ok(())
}

/// Creates the output folder, or empties an earlier output; refuses a folder
/// holding anything else.
fn prepare_out(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::usage(format!("--out {}: cannot create it: {e}", out.display())))?;
    let entries: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| Failure::usage(format!("--out {}: cannot read it: {e}", out.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    if !entries.is_empty() {
        let ours = entries.iter().all(|name| OUTPUTS.contains(&name.as_str()));
        if !ours || !entries.iter().any(|name| name == "summary.json") {
            return Err(Failure::usage(format!(
                "--out {} is neither empty nor an earlier rhip synth output; choose a new folder",
                out.display()
            )));
        }
        for name in entries {
            let path = out.join(&name);
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(|e| Failure::usage(format!("--out {}: cannot replace {name}: {e}", out.display())))?;
        }
    }
    // Probe now, so an unwritable folder is a usage error before any work.
    let probe = out.join("summary.json");
    File::create(&probe).map_err(|e| Failure::usage(format!("--out {}: cannot write in it: {e}", out.display())))?;
    Ok(())
}

/// A buffered file; failing to create it is the caller's folder's fault.
fn create(path: &Path) -> Result<BufWriter<File>, Failure> {
    let file = File::create(path).map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn json_line(writer: &mut impl Write, value: &impl serde::Serialize, what: &Path) -> Result<(), Failure> {
    serde_json::to_writer(&mut *writer, value).with_context(|| format!("write {}", what.display()))?;
    writer.write_all(b"\n").with_context(|| format!("write {}", what.display()))?;
    Ok(())
}

/// `persons.jsonl`, `households.jsonl`, `facilities.jsonl`.
fn write_population(synth: &Synth, out: &Path, counts: &mut BTreeMap<RegionCode, CountyCounts>) -> Result<(), Failure> {
    let persons_path = out.join("persons.jsonl");
    let households_path = out.join("households.jsonl");
    let facilities_path = out.join("facilities.jsonl");
    let mut persons = create(&persons_path)?;
    let mut households = create(&households_path)?;
    for household in synth.households() {
        if let Some(county) = counts.get_mut(&household.region) {
            county.households += 1;
            county.residents += household.members.len() as u64;
        }
        json_line(&mut households, &household.record(), &households_path)?;
        for member in &household.members {
            json_line(&mut persons, &member.import_record(), &persons_path)?;
        }
    }
    let mut facilities = create(&facilities_path)?;
    for facility in synth.facilities() {
        if let Some(county) = counts.get_mut(&facility.region) {
            county.facilities += 1;
        }
        json_line(&mut facilities, &facility.record(), &facilities_path)?;
    }
    for (writer, path) in
        [(&mut persons, &persons_path), (&mut households, &households_path), (&mut facilities, &facilities_path)]
    {
        writer.flush().with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// `traffic/<county>.hl7`, `documents/<county>/<id>.xml`, `expected.jsonl`.
fn write_traffic(synth: &Synth, out: &Path, counts: &mut BTreeMap<RegionCode, CountyCounts>) -> Result<(), Failure> {
    let traffic_dir = out.join("traffic");
    std::fs::create_dir_all(&traffic_dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", traffic_dir.display())))?;
    let expected_path = out.join("expected.jsonl");
    let mut expected = create(&expected_path)?;
    // One open file per county (a topology has a handful of counties).
    let mut files: BTreeMap<RegionCode, (BufWriter<File>, PathBuf, u64)> = BTreeMap::new();
    for county in synth.counties() {
        let path = traffic_dir.join(format!("{}.hl7", county.as_str()));
        files.insert(*county, (create(&path)?, path, 0));
    }
    for submission in synth.traffic() {
        let county = submission.county;
        let tally = counts.entry(county).or_default();
        *tally.by_kind.entry(submission.kind.clone()).or_insert(0) += 1;
        *tally.by_expected.entry(submission.expected_code()).or_insert(0) += 1;
        tally.outside_home_province += u64::from(submission.outside_home_province);
        let record = match submission.channel {
            Channel::Mllp => {
                tally.messages += 1;
                let Some((writer, path, written)) = files.get_mut(&county) else { continue };
                if *written > 0 {
                    writer.write_all(b"\r\n").with_context(|| format!("write {}", path.display()))?;
                }
                // Segments on lines of their own (CRLF); `rhip hl7 send` turns them back into `\r`.
                let text = String::from_utf8_lossy(&submission.bytes).replace('\r', "\r\n");
                writer.write_all(text.as_bytes()).with_context(|| format!("write {}", path.display()))?;
                let record = submission.expected_record(&format!("traffic/{}.hl7", county.as_str()), *written);
                *written += 1;
                record
            }
            Channel::Http => {
                tally.documents += 1;
                let folder = out.join("documents").join(county.as_str());
                std::fs::create_dir_all(&folder)
                    .map_err(|e| Failure::usage(format!("cannot create {}: {e}", folder.display())))?;
                let name = format!("{}.xml", submission.control_id);
                std::fs::write(folder.join(&name), &submission.bytes)
                    .with_context(|| format!("write {}", folder.join(&name).display()))?;
                submission.expected_record(&format!("documents/{}/{name}", county.as_str()), 0)
            }
        };
        json_line(&mut expected, &record, &expected_path)?;
    }
    for (_, (mut writer, path, _)) in files {
        writer.flush().with_context(|| format!("write {}", path.display()))?;
    }
    expected.flush().with_context(|| format!("write {}", expected_path.display()))?;
    Ok(())
}

fn summary(synth: &Synth, counts: &BTreeMap<RegionCode, CountyCounts>) -> Value {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_expected: BTreeMap<&str, u64> = BTreeMap::new();
    let regions: BTreeMap<String, Value> = counts
        .iter()
        .map(|(county, c)| {
            for (key, value) in [
                ("residents", c.residents),
                ("households", c.households),
                ("facilities", c.facilities),
                ("messages", c.messages),
                ("documents", c.documents),
                ("outside_home_province", c.outside_home_province),
            ] {
                *totals.entry(key).or_insert(0) += value;
            }
            for (code, n) in &c.by_expected {
                *by_expected.entry(code).or_insert(0) += n;
            }
            let value = json!({
                "name": county.name(),
                "residents": c.residents,
                "households": c.households,
                "facilities": c.facilities,
                "messages": c.messages,
                "documents": c.documents,
                "outside_home_province": c.outside_home_province,
                "by_kind": c.by_kind,
                "by_expected": c.by_expected,
            });
            (county.as_str().to_owned(), value)
        })
        .collect();
    json!({
        "seed": synth.seed(),
        "as_of": synth.as_of().to_string(),
        "residents": synth.residents(),
        "households": totals.get("households"),
        "facilities": totals.get("facilities"),
        "episodes": synth.episodes(),
        "messages": totals.get("messages"),
        "documents": totals.get("documents"),
        "outside_home_province": totals.get("outside_home_province"),
        "by_expected": by_expected,
        "regions": regions,
    })
}

fn print_summary(synth: &Synth, counts: &BTreeMap<RegionCode, CountyCounts>, out: &Path) {
    let households: u64 = counts.values().map(|c| c.households).sum();
    println!(
        "synthetic population, seed {}: {} residents in {households} households, {} facilities, {} traffic episodes",
        synth.seed(),
        synth.residents(),
        synth.facilities().len(),
        synth.episodes()
    );
    for (county, c) in counts {
        let answers: Vec<String> = c.by_expected.iter().map(|(code, n)| format!("{code} {n}")).collect();
        println!(
            "  {} {}: {} residents, {} facilities, {} messages and {} documents ({}), {} from another province",
            county.as_str(),
            county.name().unwrap_or(""),
            c.residents,
            c.facilities,
            c.messages,
            c.documents,
            answers.join(", "),
            c.outside_home_province
        );
    }
    println!("written to {}: persons.jsonl, households.jsonl, facilities.jsonl, traffic/, documents/, expected.jsonl, summary.json", out.display());
}
