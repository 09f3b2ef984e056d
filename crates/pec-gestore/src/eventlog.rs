//! The message log as files (pec.md §6): committed events are appended, in commit order, to
//! `log/events-YYYY-MM-DD.jsonl` (UTC day), one JSON object a line, each chained to the
//! previous one by SHA-256. Every past day is sealed with the provider's signature over its
//! chain head (`.seal` text plus detached CMS `.seal.p7s`). [`verify_dir`] checks the whole
//! chain and every seal, so any altered, removed or reordered entry is found.
//!
//! Line format: `{"seq":N,"prev":HEX,"hash":HEX,"event":{...}}` where
//! `hash = SHA-256(prev || "\n" || seq || "\n" || event)` and `event` is the canonical JSON of
//! the event (keys sorted, no spaces). The first entry's `prev` is 64 zeros.

use crate::Gestore;
use pec_message::TimeRef;
use pec_message::smime::{SignatureCheck, TrustCheck, check_trust, cms_info, verify_detached};
use pec_store::Store;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// The chain hash of one entry.
pub fn entry_hash(prev: &str, seq: i64, event: &str) -> String {
    sha256_hex(format!("{prev}\n{seq}\n{event}").as_bytes())
}

/// The canonical JSON of an event (sorted keys, compact).
pub fn canonical(json: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

fn day_of(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

fn day_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let day = name
                .strip_prefix("events-")?
                .strip_suffix(".jsonl")?
                .to_string();
            Some((day, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn last_line(path: &Path) -> Option<String> {
    let f = fs::File::open(path).ok()?;
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .last()
}

/// (seq, hash) of the last entry written, from the files.
fn head(dir: &Path) -> (i64, String) {
    for (_, path) in day_files(dir).iter().rev() {
        if let Some(line) = last_line(path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let (Some(seq), Some(hash)) = (v["seq"].as_i64(), v["hash"].as_str())
        {
            return (seq, hash.to_string());
        }
    }
    (0, GENESIS.to_string())
}

fn seal_path(dir: &Path, day: &str) -> PathBuf {
    dir.join(format!("events-{day}.seal"))
}

/// Appends committed events not yet in the files, then seals finished days. Runs forever.
pub(crate) async fn run<S: Store>(g: Arc<Gestore<S>>) {
    let dir = g.settings.data_dir.join("log");
    if let Err(e) = fs::create_dir_all(&dir) {
        tracing::error!("cannot create {}: {e}", dir.display());
        return;
    }
    let (mut seq, mut hash) = head(&dir);
    loop {
        match export(&g, &dir, &mut seq, &mut hash).await {
            Ok(()) => {}
            Err(e) => tracing::error!("event log export failed, will retry: {e}"),
        }
        if let Err(e) = seal_finished_days(&g, &dir) {
            tracing::error!("event log sealing failed, will retry: {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn export<S: Store>(
    g: &Gestore<S>,
    dir: &Path,
    seq: &mut i64,
    hash: &mut String,
) -> Result<(), String> {
    loop {
        let events = g
            .store
            .events(*seq, None, 500)
            .await
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            return Ok(());
        }
        let mut by_file: Vec<(PathBuf, String)> = Vec::new();
        let today = day_of(g.clock.unix());
        let mut sealed: HashMap<String, bool> = HashMap::new();
        for e in &events {
            let event = canonical(&e.json)?;
            let h = entry_hash(hash, e.seq, &event);
            let line = format!(
                "{{\"seq\":{},\"prev\":\"{}\",\"hash\":\"{}\",\"event\":{}}}\n",
                e.seq, hash, h, event
            );
            // Never append to a sealed day: late entries go to today's file.
            let mut day = day_of(e.time);
            let is_sealed = *sealed
                .entry(day.clone())
                .or_insert_with(|| seal_path(dir, &day).exists());
            if is_sealed {
                day = today.clone();
            }
            let path = dir.join(format!("events-{day}.jsonl"));
            match by_file.last_mut() {
                Some((p, text)) if *p == path => text.push_str(&line),
                _ => by_file.push((path, line)),
            }
            *seq = e.seq;
            *hash = h;
        }
        // The appends and their fsync run on the blocking pool, not on a runtime thread.
        tokio::task::spawn_blocking(move || append_all(by_file))
            .await
            .map_err(|e| e.to_string())??;
    }
}

/// Appends each text to its file, and syncs it.
fn append_all(by_file: Vec<(PathBuf, String)>) -> Result<(), String> {
    for (path, text) in by_file {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The text a seal signs.
fn seal_text(day: &str, seq: i64, hash: &str, at: TimeRef) -> String {
    format!(
        "pec-log-seal\nday: {day}\nlast-seq: {seq}\nhead: {hash}\nsealed-at: {}\n",
        at.utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn seal_finished_days<S: Store>(g: &Gestore<S>, dir: &Path) -> Result<(), String> {
    let today = day_of(g.clock.unix());
    for (day, path) in day_files(dir) {
        if day >= today || seal_path(dir, &day).exists() {
            continue;
        }
        let Some(line) = last_line(&path) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        let (Some(seq), Some(hash)) = (v["seq"].as_i64(), v["hash"].as_str()) else {
            return Err(format!("{}: last line has no seq/hash", path.display()));
        };
        g.seal_day(dir, &day, seq, hash)?;
    }
    Ok(())
}

impl<S: Store> Gestore<S> {
    fn seal_day(&self, dir: &Path, day: &str, seq: i64, hash: &str) -> Result<(), String> {
        let now = self.clock.now();
        let text = seal_text(day, seq, hash, now);
        let p7s = pec_message::smime::signed_data(self.signer.as_ref(), text.as_bytes(), now)
            .map_err(|e| e.to_string())?;
        let sig = dir.join(format!("events-{day}.seal.p7s"));
        fs::write(&sig, p7s).map_err(|e| format!("{}: {e}", sig.display()))?;
        // The .seal text last: its presence means the seal is complete.
        let tmp = dir.join(format!("events-{day}.seal.tmp"));
        fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        fs::rename(&tmp, seal_path(dir, day)).map_err(|e| e.to_string())?;
        tracing::info!(day, last_seq = seq, "event log day sealed");
        Ok(())
    }
}

/// The result of [`verify_dir`].
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LogReport {
    /// Entries checked.
    pub entries: u64,
    /// Day files checked.
    pub days: usize,
    /// Days with a valid seal.
    pub sealed_days: usize,
    /// Every problem, one sentence each (empty when the log is intact).
    pub problems: Vec<String>,
}

/// Checks the chain of every entry and every seal in `dir` (the `log` directory); seals are
/// checked against `anchors` when given.
pub fn verify_dir(dir: &Path, anchors: &[openssl::x509::X509]) -> LogReport {
    let mut r = LogReport::default();
    let mut prev = GENESIS.to_string();
    let mut last_seq = 0i64;
    let mut heads: std::collections::HashMap<i64, String> = Default::default();
    let files = day_files(dir);
    if files.is_empty() {
        r.problems
            .push(format!("no event log files in {}", dir.display()));
    }
    for (day, path) in &files {
        r.days += 1;
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                r.problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let at = format!("events-{day}.jsonl line {}", n + 1);
            let v: serde_json::Value = match serde_json::from_slice(line) {
                Ok(v) => v,
                Err(e) => {
                    r.problems.push(format!("{at}: not valid JSON ({e})"));
                    continue;
                }
            };
            let (Some(seq), Some(p), Some(h)) =
                (v["seq"].as_i64(), v["prev"].as_str(), v["hash"].as_str())
            else {
                r.problems.push(format!("{at}: seq, prev or hash missing"));
                continue;
            };
            let event = serde_json::to_string(&v["event"]).unwrap_or_default();
            if seq != last_seq + 1 {
                r.problems.push(format!(
                    "{at}: entry {seq} follows entry {last_seq} (removed or reordered entries)"
                ));
            }
            if p != prev {
                r.problems.push(format!(
                    "{at}: entry {seq} does not chain to the entry before it"
                ));
            }
            let expect = entry_hash(p, seq, &event);
            if expect != h {
                r.problems
                    .push(format!("{at}: entry {seq} was altered (hash mismatch)"));
            }
            r.entries += 1;
            last_seq = seq;
            prev = h.to_string();
            heads.insert(seq, prev.clone());
        }
        let seal = seal_path(dir, day);
        if let Ok(text) = fs::read_to_string(&seal) {
            match check_seal(
                &text,
                &dir.join(format!("events-{day}.seal.p7s")),
                &heads,
                anchors,
            ) {
                Ok(()) => r.sealed_days += 1,
                Err(e) => r.problems.push(format!("seal of {day}: {e}")),
            }
        }
    }
    r
}

fn check_seal(
    text: &str,
    p7s: &Path,
    heads: &std::collections::HashMap<i64, String>,
    anchors: &[openssl::x509::X509],
) -> Result<(), String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| format!("the seal has no {name}"))
    };
    let seq: i64 = field("last-seq:")?
        .parse()
        .map_err(|_| "bad last-seq".to_string())?;
    let head = field("head:")?;
    match heads.get(&seq) {
        Some(h) if h == head => {}
        Some(_) => return Err(format!("entry {seq} differs from the sealed chain head")),
        None => return Err(format!("sealed entry {seq} is missing from the log")),
    }
    let der = fs::read(p7s).map_err(|e| format!("{}: {e}", p7s.display()))?;
    if let SignatureCheck::Invalid(why) = verify_detached(&der, text.as_bytes()) {
        return Err(format!("signature does not verify: {why}"));
    }
    if !anchors.is_empty() {
        let info = cms_info(&der)?;
        let signer = info.signer.ok_or("the seal names no signer certificate")?;
        if let TrustCheck::Untrusted(why) = check_trust(&signer, &info.certificates, anchors, None)
        {
            return Err(why);
        }
    }
    Ok(())
}
