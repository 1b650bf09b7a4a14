//! The command-line grammar (clap derive).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// RHIP: a node of the regional health information platform federation.
#[derive(Debug, Parser)]
#[command(name = "rhip", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a standalone node's config, keys and data folder.
    Init(InitArgs),
    /// Run one node (migrates its database on start).
    Serve(ConfigArg),
    /// Apply database migrations.
    Migrate(ConfigArg),
    /// Print a JWT signed by the node, for operators and scripts.
    Token(TokenArgs),
    /// Manage the facility registry.
    #[command(subcommand)]
    Facility(FacilityCommand),
    /// Manage the demographic index.
    #[command(subcommand)]
    Person(PersonCommand),
    /// HL7 v2 tools for operators.
    #[command(subcommand)]
    Hl7(Hl7Command),
    /// Measure this machine: HL7 parsing, MLLP ingest against a running node.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Federation tools: node folders from a topology, parked remote changes.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Reference data: publish versioned value domains (national node).
    #[command(subcommand)]
    Reference(ReferenceCommand),
    /// Residents' accounts: one-time enrolment codes.
    #[command(subcommand)]
    Resident(ResidentCommand),
    /// The tamper-evident audit log: seal the hash chain, verify it, archive
    /// sealed segments to files.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Data keys (encryption at rest): rotate the encryption key and
    /// re-encrypt, see which keys stored values use, retire unused keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// De-identified exports for statistics and research: write one, check one.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Run the demo federation (eight nodes, four tiers) with synthetic hospital
    /// traffic and print where to look; `--once` checks it and exits.
    Demo(DemoArgs),
    /// Generate a synthetic population and its hospital traffic as files:
    /// persons to import, facilities to register, HL7 v2 messages per county
    /// to send, CDA documents to post, and the answer each must get.
    Synth(SynthArgs),
}

impl Command {
    /// Log level when `RUST_LOG` is not set.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Serve(_) => "info",
            _ => "warn,tracing_actix_web=error",
        }
    }
}

/// `--config FILE`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The node's config file (node.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `rhip init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// GB/T 2260 code of the region the node serves.
    #[arg(long, value_name = "R")]
    pub region: String,
    /// Folder to write node.toml, keys/ and data/ into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// PostgreSQL URL; default is an embedded SQLite file in DIR/data.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// API URL of the parent node, for federation.
    #[arg(long, value_name = "URL")]
    pub parent: Option<String>,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip federation …`.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Create a federation CA and, per node of a topology, its config, keys,
    /// certificate and trusted peer keys.
    Init(FederationInitArgs),
    /// List remote changes this node parked (unresolved ones unless --all).
    DeadLetters(FederationDeadLettersArgs),
    /// Apply parked remote changes again (after a fix); exits 0 even if some
    /// stay parked.
    Retry(FederationRetryArgs),
    /// Take a new signing key and announce it, signed by the old one, to the
    /// peers (restart the node to use it).
    RotateKey(FederationRotateKeyArgs),
}

/// `rhip federation rotate-key`.
#[derive(Debug, Args)]
pub struct FederationRotateKeyArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip federation dead-letters`.
#[derive(Debug, Args)]
pub struct FederationDeadLettersArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Resolved (applied by a retry) dead letters too.
    #[arg(long)]
    pub all: bool,
    /// At most this many, oldest first.
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `rhip federation retry`.
#[derive(Debug, Args)]
pub struct FederationRetryArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Retry at most this many unresolved dead letters, oldest first.
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Print `{"applied","parked","items"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rhip federation init`.
#[derive(Debug, Args)]
pub struct FederationInitArgs {
    /// Topology file (see federation/README.md), e.g. federation/demo.toml.
    #[arg(long, value_name = "FILE")]
    pub topology: PathBuf,
    /// New or empty folder to write ca/ and one folder per region into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print a JSON summary instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `rhip token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// resident, clinician, hospital_system, commission, auditor or node_admin.
    #[arg(long)]
    pub role: String,
    /// Region of authority (default: the node's region).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Facility code (clinician, hospital_system).
    #[arg(long, value_name = "F")]
    pub facility: Option<String>,
    /// EMPI id (resident).
    #[arg(long, value_name = "EMPI")]
    pub person: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Subject written into the token and the audit log.
    #[arg(long)]
    pub sub: Option<String>,
}

/// `rhip facility …`.
#[derive(Debug, Subcommand)]
pub enum FacilityCommand {
    /// Register a submitting facility.
    Add(FacilityAddArgs),
    /// List registered facilities.
    List(FacilityListArgs),
}

/// `rhip facility add`.
#[derive(Debug, Args)]
pub struct FacilityAddArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The code it sends in MSH-4 / as CDA custodian.
    #[arg(long)]
    pub code: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Region (default: the node's region); must lie in the node's jurisdiction.
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// hospital, clinic, community_health_centre, township_health_centre,
    /// public_health_centre, maternal_child_health_centre, laboratory, other.
    #[arg(long, default_value = "hospital")]
    pub kind: String,
    /// Print the registered facility as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rhip facility list`.
#[derive(Debug, Args)]
pub struct FacilityListArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `rhip person …`.
#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Load persons from a JSON-lines file into the DID, all or nothing.
    Import(PersonImportArgs),
    /// Undo a person merge (ADT^A40): move back what it moved.
    Unmerge(PersonUnmergeArgs),
}

/// `rhip person unmerge`.
#[derive(Debug, Args)]
pub struct PersonUnmergeArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Merge id (from `GET /api/v1/persons/{empi_id}/merges`).
    #[arg(long, value_name = "ID")]
    pub merge: String,
}

/// `rhip person import`.
#[derive(Debug, Args)]
pub struct PersonImportArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// One JSON object per line: name, sex, birth_date, id_number, phone,
    /// address_region, address_line, ethnicity, home_region, identifiers.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Print the created persons (EMPI id per input line) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rhip hl7 …`.
#[derive(Debug, Subcommand)]
pub enum Hl7Command {
    /// Send HL7 v2 messages over MLLP and print each ACK.
    Send(Hl7SendArgs),
}

/// `rhip hl7 send`.
#[derive(Debug, Args)]
pub struct Hl7SendArgs {
    /// The node's MLLP address, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// Seconds to wait for each ACK.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Files with one message each, or several separated by blank lines.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `rhip bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time the HL7 v2 reader on synthetic admissions, in process.
    Parse(BenchParseArgs),
    /// Send synthetic admissions to a running node over MLLP and time the ACKs.
    Mllp(BenchMllpArgs),
    /// Run the ingest pipeline in process on a fresh database, without the network.
    Ingest(BenchIngestArgs),
    /// Time the CDA reader and validation on synthetic documents, in process.
    CdaParse(BenchCdaParseArgs),
    /// Post synthetic CDA documents to a running node and time the answers.
    Documents(BenchDocumentsArgs),
    /// Push synthetic changes over one federation link and up three hops, in process.
    Federation(BenchFederationArgs),
    /// Load a county node with synthetic residents, start it, and time
    /// residents' EHR queries at a fixed request rate; report its memory.
    Ehr(BenchEhrArgs),
}

/// `rhip bench ehr`.
#[derive(Debug, Args)]
pub struct BenchEhrArgs {
    /// The config of a county node (from `rhip init`) to load and start.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Synthetic residents the node must hold; the shortfall is loaded
    /// before the run (each with one to four visits in the EHR index).
    #[arg(long, default_value_t = 1_000_000)]
    pub persons: u64,
    /// Seed of the synthetic population (a node keeps the seed it was loaded with).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Requests per second, sent on schedule whether or not earlier ones
    /// have been answered (latency counts from the scheduled instant).
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Seconds of load at the same rate before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Distinct residents whose tokens the requests use, spread over the population.
    #[arg(long, default_value_t = 10_000)]
    pub residents: u64,
    /// Client threads (the most requests in flight at once).
    #[arg(long, default_value_t = 64)]
    pub clients: u32,
    /// Load the population and stop (no node is started).
    #[arg(long)]
    pub load_only: bool,
    /// Also write every measured request as a CSV line (milliseconds since
    /// the first was due: due, sent, answered; and whether it succeeded),
    /// to see when slow answers happen.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

/// `rhip bench federation`.
#[derive(Debug, Args)]
pub struct BenchFederationArgs {
    /// How many changes the county node makes (persons, encounters, EHR entries).
    #[arg(long, default_value_t = 100_000)]
    pub changes: u64,
    /// Most changes per batch (the nodes' `federation.batch_size`).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Folder for the nodes' SQLite files (default: a new temporary folder, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print only the JSON summary (no progress lines on stderr).
    #[arg(long)]
    pub json: bool,
    /// Measure the one link only, not the three-hop chain (for repeated
    /// runs while comparing builds).
    #[arg(long)]
    pub link_only: bool,
}

/// `rhip bench cda-parse`.
#[derive(Debug, Args)]
pub struct BenchCdaParseArgs {
    /// How many documents.
    #[arg(long, default_value_t = 5_000)]
    pub documents: u64,
}

/// `rhip bench documents`.
#[derive(Debug, Args)]
pub struct BenchDocumentsArgs {
    /// The node's API, e.g. `http://127.0.0.1:8080`.
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// A `hospital_system` token of `--facility` (from `rhip token`).
    #[arg(long, env = "RHIP_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The facility the token was issued for (author and custodian of the documents).
    #[arg(long)]
    pub facility: String,
    /// How many documents in all.
    #[arg(long, default_value_t = 2_000)]
    pub documents: u64,
    /// How many clients post at once.
    #[arg(long, default_value_t = 1)]
    pub connections: u64,
}

/// `rhip bench ingest`.
#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// How many messages.
    #[arg(long, default_value_t = 10_000)]
    pub messages: u64,
    /// A PostgreSQL URL (an empty database); default is a temporary SQLite file.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

/// `rhip bench parse`.
#[derive(Debug, Args)]
pub struct BenchParseArgs {
    /// How many messages.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Parse the messages of this traffic file instead (as `rhip synth`
    /// writes them: segments on lines, a blank line between messages),
    /// the same input as the comparison scripts in bench/compare.
    #[arg(long, value_name = "FILE", conflicts_with = "messages")]
    pub from: Option<PathBuf>,
}

/// `rhip bench mllp`.
#[derive(Debug, Args)]
pub struct BenchMllpArgs {
    /// The node's MLLP address, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub to: String,
    /// A facility registered at that node (MSH-4 of the messages).
    #[arg(long)]
    pub facility: String,
    /// How many messages in all.
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// How many connections send at once.
    #[arg(long, default_value_t = 1)]
    pub connections: u64,
    /// Run label in control ids and MRNs (default: from the clock), so runs do not collide.
    #[arg(long)]
    pub run: Option<String>,
}

/// `rhip demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo federation's node folders (default: a new
    /// temporary folder); a folder from an earlier run is reused.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Run the scenario to the end, print a summary of its checks and exit
    /// (0 only if all passed).
    #[arg(long)]
    pub once: bool,
    /// A topology with the demo's eight regions on other addresses (default:
    /// the embedded federation/demo.toml, ports 26000-26072).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Not supported: the demo federation runs on embedded SQLite (refused
    /// with a hint; kept so that old scripts get a clear answer).
    #[arg(long, value_name = "URL", hide = true)]
    pub db: Option<String>,
    /// Synthetic residents of Xihu, Binjiang and Tianhe whose hospital
    /// traffic the demo sends (`rhip synth` with the same seed writes the
    /// same population as files).
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub residents: u64,
    /// Seed of the synthetic population: the same seed sends the same traffic.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
}

/// `rhip synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Everything generated follows from the seed: the same seed writes the
    /// same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of residents, 1 to 10000000 (streamed, never held in memory).
    #[arg(long, default_value_t = 1000)]
    pub residents: u64,
    /// Traffic episodes (a visit, a stay, a follow-up, ...; 1 to 6 messages
    /// each); default half the residents, never fewer than 13 per county.
    #[arg(long)]
    pub episodes: Option<u64>,
    /// Topology whose county-tier nodes are where residents live and
    /// facilities are (default: the embedded federation/demo.toml).
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Output folder: created if missing; must be empty or hold an earlier
    /// `rhip synth` output, which is replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rhip audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Chain the pending audit entries and seal the chain head with the
    /// node's key now (the node does both on its schedules); prints the
    /// sealed position.
    Seal(AuditSealArgs),
    /// Check every entry hash, chain link and seal from genesis (archives
    /// first, then the database); exit 1 naming the first broken entry.
    Verify(AuditVerifyArgs),
    /// Write the sealed entries after the last archive to a file, then
    /// remove them from the database.
    Archive(AuditArchiveArgs),
}

/// `rhip audit seal`.
#[derive(Debug, Args)]
pub struct AuditSealArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// An archive file written by `rhip audit archive` (repeat for each; any order).
    #[arg(long = "archive", value_name = "FILE")]
    pub archives: Vec<PathBuf>,
    /// Print the whole report as JSON on stdout (also when broken).
    #[arg(long)]
    pub json: bool,
}

/// `rhip audit archive`.
#[derive(Debug, Args)]
pub struct AuditArchiveArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The archive file to write; it must not exist yet.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Archive up to this chain position (at most the last seal; default the last seal).
    #[arg(long, value_name = "POSITION", value_parser = clap::value_parser!(i64).range(1..))]
    pub through: Option<i64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write a de-identified export of a region's residents (JSON Lines: a
    /// header stating what was done, then one pseudonymous, generalised
    /// record per person of an equivalence class of at least k); audited.
    Deidentified(ExportDeidentifiedArgs),
    /// Recompute an export file's equivalence classes and rules; exit 1
    /// naming a class below k (or another broken rule).
    Check(ExportCheckArgs),
}

/// `rhip export deidentified`.
#[derive(Debug, Args)]
pub struct ExportDeidentifiedArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// GB/T 2260 code whose residents (by home region, the whole subtree) are
    /// exported; must lie within the node's jurisdiction.
    #[arg(long, value_name = "R")]
    pub region: String,
    /// The file to write (replaced atomically if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Smallest equivalence class, 2 to 1000 and at least `export.min_k`
    /// (default: the node's `export.k`, 5).
    #[arg(long, value_name = "N")]
    pub k: Option<String>,
    /// Why the export is taken, for the audit log.
    #[arg(long, default_value = "statistics")]
    pub purpose: String,
    /// Print the header (what was done, the counts) and the file's SHA-256 as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rhip export check`.
#[derive(Debug, Args)]
pub struct ExportCheckArgs {
    /// An export file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Check against this k instead of the one the header states.
    #[arg(long, value_name = "N")]
    pub k: Option<String>,
    /// Print the whole report as JSON (also when it fails).
    #[arg(long)]
    pub json: bool,
}

/// `rhip reference ...`.
#[derive(Debug, Subcommand)]
pub enum ReferenceCommand {
    /// Publish a version of a value domain from the national node; it travels
    /// down to every node, which then validates against it.
    #[command(disable_version_flag = true)]
    Publish(ReferencePublishArgs),
}

/// `rhip reference publish`.
#[derive(Debug, Args)]
pub struct ReferencePublishArgs {
    /// The national node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Domain identifier, e.g. `GB/T 2261.2` or `CV02.01.101`.
    #[arg(long, value_name = "CODE")]
    pub domain: String,
    /// Version label, e.g. `2026.1`.
    #[arg(long, value_name = "LABEL")]
    pub version: String,
    /// CSV of the version's codes (`code,name[,parent]`, header line first);
    /// without it the embedded table of the domain is published.
    #[arg(long, value_name = "CSV")]
    pub file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    /// clap checks the whole command tree (unique names, no clash with the
    /// propagated `--version`) only when a command is parsed; check it here.
    #[test]
    fn the_command_tree_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

/// `rhip resident ...`.
#[derive(Debug, Subcommand)]
pub enum ResidentCommand {
    /// Print a one-time code a resident of this county registers with
    /// (`POST /auth/register`); hand it over in person.
    EnrolCode(EnrolCodeArgs),
}

/// `rhip resident enrol-code`.
#[derive(Debug, Args)]
pub struct EnrolCodeArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// EMPI id of the resident (whose home county is this node).
    #[arg(long, value_name = "EMPI")]
    pub person: String,
    /// Print `{"person":..,"code":..,"expires_at":..}`.
    #[arg(long)]
    pub json: bool,
}

/// `rhip keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new encryption key to the data-key file and make it current
    /// (upgrading a version 1 file), then re-encrypt every encrypted value in
    /// batches; a running node keeps serving and picks the new key up.
    Rotate(KeysRotateArgs),
    /// Count the stored values under each key id and in plaintext.
    Status(KeysStatusArgs),
    /// Remove an old encryption key from the file; refused while any stored
    /// value still uses it.
    Retire(KeysRetireArgs),
}

/// `rhip keys rotate`.
#[derive(Debug, Args)]
pub struct KeysRotateArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Rows per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch: i64,
    /// Do not add a key: finish re-encrypting under the current one (after
    /// an interrupted rotation).
    #[arg(long)]
    pub resume: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip keys status`.
#[derive(Debug, Args)]
pub struct KeysStatusArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rhip keys retire`.
#[derive(Debug, Args)]
pub struct KeysRetireArgs {
    /// The node's config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The key id to remove (repeat for several).
    #[arg(long = "key-id", value_name = "ID", required = true)]
    pub key_ids: Vec<String>,
}
