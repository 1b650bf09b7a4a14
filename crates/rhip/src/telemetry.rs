//! Logging setup: human-readable lines on stderr by default, JSON with
//! `RHIP_LOG_FORMAT=json`; the level comes from `RUST_LOG` or the command's
//! default (info for `serve` and `demo`, warn otherwise).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("RHIP_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
