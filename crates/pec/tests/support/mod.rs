//! Shared helpers for the binary's integration tests: locating external tools (which must be
//! present: scripts/test installs them) and the shared specs and fixtures.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Fails with a clear sentence when an external tool is missing; never skips silently.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: install the Debian package {package} (scripts/test does it)"
    );
}

/// The `shared/` folder beside the checkout.
pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        p.join("spec/daticert.dtd").exists(),
        "shared/ is not beside the checkout at {}",
        p.display()
    );
    p
}

/// The `pec` binary under test.
pub fn pec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pec"))
}

/// Runs a command to completion, failing the test if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
