//! One module per subcommand.

mod audit;
mod bench;
mod dead_letters;
mod demo;
mod export;
mod facility;
mod federation;
mod hl7;
mod init;
mod keys;
mod person;
mod process;
mod reference;
mod resident;
mod rotate;
mod serve;
mod synth;
mod token;

use crate::cli::{
    AuditCommand, BenchCommand, Command, ExportCommand, FacilityCommand, FederationCommand, Hl7Command, KeysCommand,
    PersonCommand, ReferenceCommand, ResidentCommand,
};
use crate::Failure;
use rhip_server::Settings;
use std::path::Path;

/// Runs one parsed command.
pub fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(args) => init::run(&args),
        Command::Serve(args) => serve::serve(&args.config),
        Command::Migrate(args) => serve::migrate(&args.config),
        Command::Token(args) => token::run(&args),
        Command::Reference(ReferenceCommand::Publish(args)) => reference::publish(&args),
        Command::Resident(ResidentCommand::EnrolCode(args)) => resident::enrol_code(&args),
        Command::Facility(FacilityCommand::Add(args)) => facility::add(&args),
        Command::Facility(FacilityCommand::List(args)) => facility::list(&args),
        Command::Person(PersonCommand::Import(args)) => person::import(&args),
        Command::Person(PersonCommand::Unmerge(args)) => person::unmerge(&args),
        Command::Hl7(Hl7Command::Send(args)) => hl7::send(&args),
        Command::Bench(BenchCommand::Parse(args)) => bench::parse(&args),
        Command::Bench(BenchCommand::Mllp(args)) => bench::mllp(&args),
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(&args),
        Command::Bench(BenchCommand::CdaParse(args)) => bench::cda_parse(&args),
        Command::Bench(BenchCommand::Documents(args)) => bench::documents(&args),
        Command::Bench(BenchCommand::Federation(args)) => bench::federation(&args),
        Command::Bench(BenchCommand::Ehr(args)) => bench::ehr(&args),
        Command::Federation(FederationCommand::Init(args)) => federation::init(&args),
        Command::Federation(FederationCommand::DeadLetters(args)) => dead_letters::list(&args),
        Command::Federation(FederationCommand::Retry(args)) => dead_letters::retry(&args),
        Command::Federation(FederationCommand::RotateKey(args)) => rotate::rotate(&args),
        Command::Audit(AuditCommand::Seal(args)) => audit::seal(&args),
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(&args),
        Command::Audit(AuditCommand::Archive(args)) => audit::archive(&args),
        Command::Keys(KeysCommand::Rotate(args)) => keys::rotate(&args),
        Command::Keys(KeysCommand::Status(args)) => keys::status(&args),
        Command::Keys(KeysCommand::Retire(args)) => keys::retire(&args),
        Command::Export(ExportCommand::Deidentified(args)) => export::deidentified(&args),
        Command::Export(ExportCommand::Check(args)) => export::check(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Synth(args) => synth::run(&args),
    }
}

/// Loads a config file; any problem is a usage failure.
fn load_settings(path: &Path) -> Result<Settings, Failure> {
    Ok(Settings::load(path)?)
}

/// Opens a node's store without migrating (for `migrate` itself), with the
/// node's data keys.
fn open_store_unmigrated(settings: &Settings) -> Result<rhip_store::Store, Failure> {
    let keys = rhip_server::load_data_keys(settings)?;
    Ok(rhip_server::open_store_unchecked(settings, keys, 2)?)
}

/// Opens and migrates a node's store (commands that read or write data).
fn open_store(settings: &Settings) -> Result<rhip_store::Store, Failure> {
    Ok(rhip_server::open_store(settings)?)
}
