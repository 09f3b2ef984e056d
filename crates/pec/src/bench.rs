//! `pec bench`: messages per second for building and signing an acceptance receipt and a
//! transport envelope around a 100 KB original, next to `openssl speed rsa2048` sign/s
//! measured in the same run (one core each).

use crate::samples::{SampleProvider, sample_original, transaction};
use anyhow::{Context, Result};
use pec_message::TimeRef;
use pec_message::build::{Artefact, build};
use pec_message::ident::IdGenerator;
use std::path::Path;
use std::time::{Duration, Instant};

fn rate(seconds: u64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    // Warm up, then count whole operations until the time is up.
    for _ in 0..5 {
        f()?;
    }
    let limit = Duration::from_secs(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < limit {
        f()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Whether this process runs as root (the references that start system daemons need it).
pub(crate) fn running_as_root() -> bool {
    // "Uid:" is followed by the real, effective, saved and filesystem user ids.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

pub fn openssl_rsa2048(seconds: u64) -> Result<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .output()
        .context("cannot run openssl speed (is the openssl command installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "rsa 2048 bits 0.000652s 0.000019s   1533.6  52143.9"
    text.lines()
        .find(|l| l.trim_start().starts_with("rsa 2048 bits"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|v| v.parse().ok())
        .context("cannot read the RSA-2048 sign/s figure from openssl speed")
}

pub fn run(seconds: u64, write: Option<&Path>) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let sp = SampleProvider::new("pec.example.it", now)?;
    let t = TimeRef::from_unix(now).context("clock out of range")?;
    let small = sample_original("pec.example.it", 2048);
    let big = sample_original("pec.example.it", 100 * 1024 * 3 / 4);
    let mut ids = IdGenerator::new("1", 1, "pec.example.it", 0);
    let tx_small = transaction(&small, &sp.index, &ids.next_id(t))?;
    let tx_big = transaction(&big, &sp.index, &ids.next_id(t))?;
    let envelope = Artefact::PostaCertificata {
        original: big.clone(),
    };

    eprintln!("measuring openssl speed rsa2048 ({seconds} s)...");
    let openssl = openssl_rsa2048(seconds)?;
    eprintln!("measuring acceptance receipts ({seconds} s)...");
    let receipts = rate(seconds, || {
        let id = ids.next_id(t);
        build(&Artefact::Accettazione, &tx_small, &sp.provider, t, &id).sign(&sp.signer)?;
        Ok(())
    })?;
    let mut ids2 = IdGenerator::new("2", 1, "pec.example.it", 0);
    eprintln!("measuring 100 KB transport envelopes ({seconds} s)...");
    let envelopes = rate(seconds, || {
        let id = ids2.next_id(t);
        build(&envelope, &tx_big, &sp.provider, t, &id).sign(&sp.signer)?;
        Ok(())
    })?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let report = format!(
        "## Signing throughput ({date})\n\nMachine: {cpu}, {cores} cores. Command: `pec bench --seconds {seconds}` (release build, one thread).\n\n\
| measurement | per second | vs OpenSSL RSA-2048 sign |\n|---|---:|---:|\n\
| `openssl speed -seconds {seconds} rsa2048`, sign/s | {openssl:.0} | 100% |\n\
| acceptance receipt, built and signed (RSA-2048, SHA-256) | {receipts:.0} | {r1:.0}% |\n\
| transport envelope around a 100 KB original, built and signed | {envelopes:.0} | {r2:.0}% |\n\n\
Goal: small receipts at >= 80% of OpenSSL's raw RSA-2048 signing rate per core: {verdict}.\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        r1 = receipts / openssl * 100.0,
        r2 = envelopes / openssl * 100.0,
        verdict = if receipts >= 0.8 * openssl {
            "met"
        } else {
            "NOT met"
        },
    );
    print!("{report}");
    if let Some(path) = write {
        append_section(path, &format!("\n{report}"))?;
    }
    Ok(())
}

/// Appends a results section to a Markdown file (created with a title when missing).
pub fn append_section(path: &Path, section: &str) -> Result<()> {
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    text.push_str(section);
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
