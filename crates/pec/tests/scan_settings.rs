//! The scanner settings (issue "Security filters", point 1): `pec init --clamd --icap
//! --rspamd` writes them to `[scan]`, refuses an address the clients cannot use, and
//! `pec serve` reports at start-up whether each one answers.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn init_writes_scanners_and_serve_reports_them() {
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("bad");
    let o = run(&[
        "init",
        "--data",
        bad.to_str().unwrap(),
        "--domain",
        "s.test",
        "--name",
        "S",
        "--icap",
        "http://127.0.0.1/avscan",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--icap: bad filter address"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!bad.exists(), "a refused init leaves nothing behind");

    let dir = root.path().join("s");
    // Nothing listens on port 1 of this address: serve must say so, not fail.
    run_ok(&[
        "init",
        "--data",
        dir.to_str().unwrap(),
        "--domain",
        "s.test",
        "--name",
        "S",
        "--listen-ip",
        "127.0.0.15",
        "--clamd",
        "127.0.0.15:1",
        "--icap",
        "icap://127.0.0.15:1/avscan",
        "--rspamd",
        "http://127.0.0.15:1",
    ]);
    let toml = std::fs::read_to_string(dir.join("pec.toml")).unwrap();
    for line in [
        "clamd = \"127.0.0.15:1\"",
        "icap = \"icap://127.0.0.15:1/avscan\"",
        "rspamd = \"http://127.0.0.15:1\"",
    ] {
        assert!(toml.contains(line), "{toml}");
    }
    let mut child = Command::new(pec())
        .args(["serve", "--data", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Add mailboxes with");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    for what in ["antivirus: clamd", "antivirus: ICAP", "antispam: rspamd"] {
        assert!(
            text.lines()
                .any(|l| l.contains(what) && l.contains("NOT answering")),
            "{what} not reported:\n{text}"
        );
    }
}
