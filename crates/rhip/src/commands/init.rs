//! `rhip init`: a standalone node's config, signing key and data folder,
//! with free loopback ports.

use crate::cli::InitArgs;
use crate::Failure;
use anyhow::Context;
use rhip_core::RegionCode;
use rhip_server::settings::{
    ApiSettings, AuthSettings, DatabaseSettings, FederationSettings, KeySettings, MllpSettings, NodeSettings,
    ScheduleSettings,
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
    let spec = NodeSpec {
        region,
        name: None,
        db,
        parent,
        api: free_port()?,
        mllp: free_port()?,
        federation: None,
        written_by: "rhip init",
    };
    Ok(write_node(dir, &spec)?.0)
}

/// Everything that goes into one node's folder besides generated keys.
pub struct NodeSpec<'a> {
    /// Region the node serves.
    pub region: RegionCode,
    /// Display name (default: from the region).
    pub name: Option<String>,
    /// PostgreSQL URL; none means SQLite in `data/`.
    pub db: Option<&'a str>,
    /// API URL of the parent node.
    pub parent: Option<&'a str>,
    /// API listen address.
    pub api: SocketAddr,
    /// MLLP listen address.
    pub mllp: SocketAddr,
    /// Federation link settings, if the node belongs to a federation.
    pub federation: Option<FederationSettings>,
    /// Command named in the config's header comment.
    pub written_by: &'a str,
}

/// Writes node.toml, keys/signing.pem, keys/data-keys.json and data/ into `dir`; refuses to
/// overwrite an existing config. Returns the summary and the signing key.
pub fn write_node(dir: &Path, spec: &NodeSpec<'_>) -> Result<(Initialised, rhip_auth::NodeKey), Failure> {
    let config = dir.join("node.toml");
    if config.exists() {
        return Err(Failure::usage(format!("{} already exists; choose another --dir", config.display())));
    }
    let region = spec.region;
    std::fs::create_dir_all(dir.join("keys")).with_context(|| format!("create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("data")).with_context(|| format!("create {}/data", dir.display()))?;
    let (key, pem) = rhip_auth::NodeKey::generate().context("generate signing key")?;
    write_private(&dir.join("keys/signing.pem"), &pem)?;
    let (_, data_keys) = rhip_auth::DataKeys::generate().context("generate data keys")?;
    write_private(&dir.join("keys/data-keys.json"), &data_keys)?;
    let settings = Settings {
        node: NodeSettings { region, name: spec.name.clone(), parent: spec.parent.map(str::to_string) },
        database: DatabaseSettings {
            url: spec.db.map_or_else(|| "sqlite://data/rhip.db".to_string(), str::to_string),
            pool_size: 8,
        },
        api: ApiSettings::on(spec.api),
        mllp: Some(MllpSettings::on(spec.mllp)),
        keys: KeySettings {
            signing_key: PathBuf::from("keys/signing.pem"),
            data_keys: PathBuf::from("keys/data-keys.json"),
        },
        auth: AuthSettings::default(),
        schedules: ScheduleSettings::default(),
        federation: spec.federation.clone(),
        export: Default::default(),
    };
    let text = settings.to_toml().map_err(|e| Failure::Runtime(anyhow::anyhow!("render config: {e}")))?;
    let header = format!(
        "# RHIP node {} ({}, {}) written by `{}`.\n# Start with: rhip serve --config {}\n\n",
        region,
        region.tier(),
        region.name().unwrap_or(""),
        spec.written_by,
        config.display()
    );
    std::fs::write(&config, header + &text).with_context(|| format!("write {}", config.display()))?;
    let made = Initialised {
        region: region.as_str().to_string(),
        tier: region.tier().as_str().to_string(),
        config,
        api: format!("http://{}", spec.api),
        mllp: spec.mllp.to_string(),
    };
    Ok((made, key))
}

fn free_port() -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(listener.local_addr().context("read port")?)
}

/// Creates `path` with `text`, readable by the owner only (unix), never overwriting.
pub fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
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
