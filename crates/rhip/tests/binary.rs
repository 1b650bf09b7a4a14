//! The built binary answers `--help` and `--version` as the contract says.
//! (Having an integration test here also makes `cargo test --workspace`
//! build `target/debug/rhip`, which the end-to-end suite in `tests/` runs.)

use std::process::Command;

#[test]
fn help_lists_the_contract_subcommands() {
    let output = Command::new(env!("CARGO_BIN_EXE_rhip")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for command in ["init", "serve", "migrate", "token", "facility", "demo"] {
        assert!(text.contains(command), "--help lacks {command}: {text}");
    }
}

#[test]
fn unknown_subcommands_are_usage_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_rhip")).arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}
