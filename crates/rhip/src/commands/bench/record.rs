//! What every benchmark run records beside its figures, so a number in
//! BENCHMARKS.md can be traced to the machine, the build, the data and the
//! backend that produced it.

use serde_json::{json, Value};

/// The commit the binary was built from (`git rev-parse` at build time;
/// `unknown` outside a git checkout).
const COMMIT: &str = env!("RHIP_BUILD_COMMIT");

/// The run's record: machine, build, dataset and backend (`None` where the
/// benchmark touches no database, or talks to a node whose backend is its own).
pub fn run(backend: Option<&str>, dataset: Value) -> Value {
    json!({
        "machine": machine(),
        "commit": COMMIT,
        "version": env!("CARGO_PKG_VERSION"),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "backend": backend,
        "dataset": dataset,
    })
}

/// CPU model, cores, memory and OS, read from /proc and /etc on Linux.
fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split(':').nth(1)))
        .map(str::trim);
    let meminfo = read("/proc/meminfo");
    let memory_kib: Option<u64> = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok());
    let os = read("/etc/os-release")
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        .map(|name| name.trim_matches('"').to_string());
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(usize::from).ok(),
        "memory_gib": memory_kib.map(|kib| (kib as f64 / 1_048_576.0 * 10.0).round() / 10.0),
        "os": os,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "arch": std::env::consts::ARCH,
    })
}
