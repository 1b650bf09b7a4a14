//! `rhip init`: a standalone node's config, signing key and data folder,
//! with free loopback ports.

use crate::cli::InitArgs;
use crate::Failure;
use anyhow::Context;
use rhip_core::RegionCode;
use rhip_server::settings::{
    ApiSettings, AuthSettings, DatabaseSettings, KeySettings, MllpSettings, NodeSettings, ScheduleSettings,
};
use rhip_server::Settings;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// What `init` made, for the caller (and `--json`).
#[derive(Debug, serde::Serialize)]
pub struct Initialised {
    /// Region code.
    pub region: String,
    /// Tier name.
    pub tier: String,
    /// Path of node.toml.
    pub config: PathBuf,
    /// API base URL.
    pub api: String,
    /// MLLP address.
    pub mllp: String,
}

/// Runs `rhip init`.
pub fn run(args: &InitArgs) -> Result<(), Failure> {
    let region = RegionCode::parse(&args.region).map_err(|e| Failure::usage(format!("--region: {e}")))?;
    let made = initialise(region, &args.dir, args.db.as_deref(), args.parent.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string(&made).context("encode summary")?);
    } else {
        println!("wrote {} for node {} ({})", made.config.display(), made.region, made.tier);
        println!("api  {}", made.api);
        println!("mllp {}", made.mllp);
        println!("start it with: rhip serve --config {}", made.config.display());
    }
    Ok(())
}

/// Writes a node's folder; refuses to overwrite an existing config.
pub fn initialise(
    region: RegionCode,
    dir: &Path,
    db: Option<&str>,
    parent: Option<&str>,
) -> Result<Initialised, Failure> {
    let config = dir.join("node.toml");
    if config.exists() {
        return Err(Failure::usage(format!("{} already exists; choose another --dir", config.display())));
    }
    if let Some(url) = db {
        let parsed = rhip_store::DatabaseUrl::parse(url).map_err(|e| Failure::usage(format!("--db: {e}")))?;
        if parsed.backend() != rhip_store::Backend::Postgres {
            return Err(Failure::usage("--db: expected a postgres:// URL (the default is the embedded SQLite)"));
        }
    }
    if let Some(url) = parent {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::usage(format!("--parent: {url:?} is not an http(s) URL")));
        }
    }
    std::fs::create_dir_all(dir.join("keys")).with_context(|| format!("create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("data")).with_context(|| format!("create {}/data", dir.display()))?;
    let (_, pem) = rhip_auth::NodeKey::generate().context("generate signing key")?;
    write_private(&dir.join("keys/signing.pem"), &pem)?;
    let api = free_port()?;
    let mllp = free_port()?;
    let settings = Settings {
        node: NodeSettings { region, name: None, parent: parent.map(str::to_string) },
        database: DatabaseSettings {
            url: db.map_or_else(|| "sqlite://data/rhip.db".to_string(), str::to_string),
            pool_size: 8,
        },
        api: ApiSettings { listen: api, workers: None, shutdown_timeout_secs: 30, tls_cert: None, tls_key: None },
        mllp: Some(MllpSettings::on(mllp)),
        keys: KeySettings { signing_key: PathBuf::from("keys/signing.pem") },
        auth: AuthSettings::default(),
        schedules: ScheduleSettings::default(),
    };
    let text = settings.to_toml().map_err(|e| Failure::Runtime(anyhow::anyhow!("render config: {e}")))?;
    let header = format!(
        "# RHIP node {} ({}, {}) written by `rhip init`.\n# Start with: rhip serve --config {}\n\n",
        region,
        region.tier(),
        region.name().unwrap_or(""),
        config.display()
    );
    std::fs::write(&config, header + &text).with_context(|| format!("write {}", config.display()))?;
    Ok(Initialised {
        region: region.as_str().to_string(),
        tier: region.tier().as_str().to_string(),
        config,
        api: format!("http://{api}"),
        mllp: mllp.to_string(),
    })
}

fn free_port() -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(listener.local_addr().context("read port")?)
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("create {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
