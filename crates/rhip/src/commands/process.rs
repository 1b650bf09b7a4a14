//! Node processes started by this executable (`rhip demo`, `rhip bench ehr`):
//! `rhip serve` of the same binary, ready once it prints the line with its
//! API and MLLP addresses, stopped with SIGTERM as an operator would.

use crate::Failure;
use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A `rhip serve` that has been started and may not be ready yet.
pub(crate) struct Starting {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

/// Where a started node listens.
pub(crate) struct Addresses {
    /// `http://HOST:PORT` of the API.
    pub api: String,
    /// `HOST:PORT` of the MLLP listener.
    pub mllp: String,
}

/// Starts `rhip serve --config CONFIG` of this executable, its log (stderr)
/// written to `log`.
pub(crate) fn spawn_serve(config: &Path, log: &Path) -> Result<Starting, Failure> {
    let exe = std::env::current_exe().context("find the rhip executable")?;
    let log_file = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut child = Command::new(&exe)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("start rhip serve --config {}", config.display()))?;
    let stdout = child.stdout.take().context("node stdout")?;
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    Ok(Starting { child, lines })
}

impl Starting {
    /// Waits (a minute at most) for the line that names the node's addresses.
    pub fn ready(&self) -> Option<Addresses> {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).ok()?;
        Some(Addresses { api: word_after(&line, "api ")?, mllp: word_after(&line, "mllp ")? })
    }
}

/// SIGTERM to every child still running, then waits (15 s at most) and
/// kills what is left.
pub(crate) fn stop_all<'a>(children: impl IntoIterator<Item = &'a mut Child>) {
    let mut children: Vec<&mut Child> = children.into_iter().collect();
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for child in children {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

fn word_after(line: &str, marker: &str) -> Option<String> {
    line.split(marker).nth(1).and_then(|rest| rest.split_whitespace().next()).map(str::to_string)
}
