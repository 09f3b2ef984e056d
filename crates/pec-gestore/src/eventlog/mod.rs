//! The message log as files (pec.md §6): committed events are appended, in commit order, to
//! `log/events-YYYY-MM-DD.jsonl` (UTC day), one JSON object a line, each chained to the
//! previous one by SHA-256. Every past day, quiet days included, is sealed with the
//! provider's signature over its chain head (`.seal` text plus detached CMS `.seal.p7s`).
//! [`verify_dir`] checks the whole chain and every seal, and wants a seal for every past day
//! from the first, so any altered, removed or reordered entry is found, the latest days
//! included.
//!
//! Line format: `{"seq":N,"prev":HEX,"hash":HEX,"event":{...}}` where
//! `hash = SHA-256(prev || "\n" || seq || "\n" || event)` and `event` is the canonical JSON of
//! the event (keys sorted, no spaces). The first entry's `prev` is 64 zeros.

use crate::Gestore;
use pec_message::TimeRef;
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

/// (seq, hash) of the last entry written, and the day of its file: the highest entry over the
/// files' last lines (each file holds its entries in order; the days' files follow each other).
fn head(dir: &Path) -> (i64, String, Option<String>) {
    let mut best = (0, GENESIS.to_string(), None);
    for (day, path) in day_files(dir) {
        if let Some(line) = last_line(&path)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let (Some(seq), Some(hash)) = (v["seq"].as_i64(), v["hash"].as_str())
            && seq > best.0
        {
            best = (seq, hash.to_string(), Some(day));
        }
    }
    best
}

/// Cuts each unsealed day file back to its last complete entry: after a power loss an
/// append may have reached the disk only in part (a line without its newline, or a block of
/// zeros). Only a tail of lines that are not whole entries is removed, never a line before a
/// valid one; what it held is still in the store and is written again by the exporter.
/// Sealed days are never appended to, so they are never touched. Returns each file cut and
/// the bytes removed; a file that cannot be read or cut is left as it is (`pec log verify`
/// reports it).
pub(crate) fn repair_torn_tails(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut cut = Vec::new();
    for (day, path) in day_files(dir) {
        if seal_path(dir, &day).exists() {
            continue;
        }
        let Ok(text) = fs::read(&path) else { continue };
        let mut keep = text.len();
        loop {
            // The tail after the last newline is unfinished; so is a last line that is not an
            // entry.
            let end = if text[..keep].ends_with(b"\n") {
                let start = text[..keep - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if whole_entry(&text[start..keep - 1]) {
                    break;
                }
                start
            } else {
                text[..keep]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            keep = end;
            if keep == 0 {
                break;
            }
        }
        if keep < text.len() {
            let done = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(keep as u64).and_then(|_| f.sync_all()));
            match done {
                Ok(()) => cut.push((path, (text.len() - keep) as u64)),
                Err(e) => tracing::error!("cannot repair {}: {e}", path.display()),
            }
        }
    }
    cut
}

/// Removes the day files of the days before the one holding `cutoff` (Unix seconds) whose
/// entries the store no longer holds: their last entry comes before `first_kept`, the oldest
/// event the store kept (`None`: it keeps none). Only sealed days go, and their seals stay:
/// they stand for the day in [`verify_dir`], which resumes the chain at their head (pec.md
/// §6: the log is kept 30 months, [`pec_store::EVENT_LOG_KEEP_DAYS`]). Returns the files
/// removed; one that cannot be read or removed stays for the next round.
pub(crate) fn purge_files(dir: &Path, cutoff: i64, first_kept: Option<i64>) -> Vec<PathBuf> {
    let before = day_of(cutoff);
    let mut gone = Vec::new();
    for (day, path) in day_files(dir) {
        if day >= before || !seal_path(dir, &day).exists() {
            continue;
        }
        let Ok((last, _)) = last_entry(&path) else {
            continue;
        };
        if first_kept.is_some_and(|f| last >= f) {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => gone.push(path),
            Err(e) => tracing::error!("cannot remove {}: {e}", path.display()),
        }
    }
    gone
}

/// Whether `line` is an entry as the exporter writes it: its seq, prev, hash and event.
fn whole_entry(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| {
        v["seq"].is_i64()
            && v["prev"].is_string()
            && v["hash"].is_string()
            && v["event"].is_object()
    })
}

/// The line the exporter writes for an entry (without its newline). [`verify_dir`] requires
/// each line to be exactly this, so that what a reader of the raw file sees is what the
/// chain covers (no duplicate keys, no fields outside the hash).
fn entry_line(seq: i64, prev: &str, hash: &str, event: &str) -> String {
    format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"event\":{event}}}")
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
    for (path, cut) in repair_torn_tails(&dir) {
        tracing::warn!(
            file = %path.display(),
            bytes = cut,
            "event log: an unfinished last line (a write cut by a crash) was removed; the \
             store's events are written again from the entry before it"
        );
    }
    let (seq, hash, day) = head(&dir);
    let mut at = Head { seq, hash, day };
    let mut sealed_until = None;
    loop {
        if let Err(e) = export(&g, &dir, &mut at).await {
            tracing::error!("event log export failed, will retry: {e}");
            // What reached the files is the truth: a batch that failed half-way is not
            // written twice nor skipped.
            let (seq, hash, day) = head(&dir);
            at = Head { seq, hash, day };
        }
        if let Err(e) = seal_finished_days(&g, &dir, &mut sealed_until) {
            tracing::error!("event log sealing failed, will retry: {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The last entry written to the files.
struct Head {
    seq: i64,
    hash: String,
    /// The day of the file it went to: later entries never go to an earlier day's file, so
    /// the files, in day order, hold the entries in commit order even when an event's time
    /// (taken before its commit) is a little before midnight and the entry before it after.
    day: Option<String>,
}

async fn export<S: Store>(g: &Gestore<S>, dir: &Path, at: &mut Head) -> Result<(), String> {
    loop {
        let events = g
            .store
            .events(at.seq, None, 500)
            .await
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            return Ok(());
        }
        let mut by_file: Vec<(PathBuf, String)> = Vec::new();
        let today = day_of(g.clock.unix());
        let mut sealed: HashMap<String, bool> = HashMap::new();
        // The head moves only once the batch is on disk.
        let (mut seq, mut hash, mut last_day) = (at.seq, at.hash.clone(), at.day.clone());
        for e in &events {
            let event = canonical(&e.json)?;
            let h = entry_hash(&hash, e.seq, &event);
            let mut line = entry_line(e.seq, &hash, &h, &event);
            line.push('\n');
            let mut day = day_of(e.time);
            if let Some(d) = &last_day
                && *d > day
            {
                day = d.clone();
            }
            // Never append to a sealed day: late entries go to today's file.
            let is_sealed = *sealed
                .entry(day.clone())
                .or_insert_with(|| seal_path(dir, &day).exists());
            if is_sealed {
                day = today.clone().max(day);
            }
            let path = dir.join(format!("events-{day}.jsonl"));
            match by_file.last_mut() {
                Some((p, text)) if *p == path => text.push_str(&line),
                _ => by_file.push((path, line)),
            }
            seq = e.seq;
            hash = h;
            last_day = Some(day);
        }
        // The appends and their fsync run on the blocking pool, not on a runtime thread.
        tokio::task::spawn_blocking(move || append_all(by_file))
            .await
            .map_err(|e| e.to_string())??;
        *at = Head {
            seq,
            hash,
            day: last_day,
        };
    }
}

/// Appends each text to its file, and syncs it. A file whose append fails is cut back to its
/// length before, so no half line stays behind to break the chain.
fn append_all(by_file: Vec<(PathBuf, String)>) -> Result<(), String> {
    for (path, text) in by_file {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let before = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|_| f.sync_data()) {
            let _ = f.set_len(before).and_then(|_| f.sync_data());
            return Err(format!("{}: {e}", path.display()));
        }
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

/// The day after `day` (`YYYY-MM-DD`), or `None` for a name that is not a date.
fn next_day(day: &str) -> Option<String> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()?
        .succ_opt()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// (seq, hash) of the last entry of a day file.
fn last_entry(path: &Path) -> Result<(i64, String), String> {
    let line = last_line(path).ok_or_else(|| format!("{}: no entry", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("{}: last line: {e}", path.display()))?;
    match (v["seq"].as_i64(), v["hash"].as_str()) {
        (Some(seq), Some(hash)) => Ok((seq, hash.to_string())),
        _ => Err(format!("{}: last line has no seq/hash", path.display())),
    }
}

/// Seals every finished day, from the first day of the log to yesterday: a day with entries
/// at its last entry, a day without any at the chain head it ended with (the last entry of
/// the days before). Sealing the quiet days too leaves no past day without a seal, so a
/// removed day, even the latest ones, shows as a missing seal ([`verify_dir`]).
/// `sealed_until` remembers the day up to which everything is sealed, so each round looks
/// only at the days after it. A day whose last entry cannot be read stops the round there:
/// the days after it would be sealed at a wrong head.
fn seal_finished_days<S: Store>(
    g: &Gestore<S>,
    dir: &Path,
    sealed_until: &mut Option<String>,
) -> Result<(), String> {
    let today = day_of(g.clock.unix());
    seal_days_before(dir, &today, sealed_until, &mut |day, seq, hash| {
        g.seal_day(dir, day, seq, hash)
    })
}

/// [`seal_finished_days`] with the day and the sealing given: `seal(day, seq, hash)` for
/// each day before `today` that has no seal yet.
fn seal_days_before(
    dir: &Path,
    today: &str,
    sealed_until: &mut Option<String>,
    seal: &mut dyn FnMut(&str, i64, &str) -> Result<(), String>,
) -> Result<(), String> {
    let files: HashMap<String, PathBuf> = day_files(dir).into_iter().collect();
    let Some(first) = files.keys().min().cloned() else {
        return Ok(());
    };
    // The chain head at the end of the day before `day`, read only when needed.
    let mut head: Option<(i64, String)> = None;
    let mut last_file: Option<PathBuf> = None;
    let mut day = match sealed_until.as_deref().and_then(next_day) {
        Some(d) if d > first => {
            // Look back for the newest file before the resume point, for a quiet day's head.
            last_file = files
                .iter()
                .filter(|(f, _)| **f < d)
                .max_by(|a, b| a.0.cmp(b.0))
                .map(|(_, p)| p.clone());
            d
        }
        _ => first,
    };
    while day.as_str() < today {
        let file = files.get(&day);
        if !seal_path(dir, &day).exists() {
            let at = match (file, &head, &last_file) {
                (Some(path), _, _) => last_entry(path)?,
                (None, Some(h), _) => h.clone(),
                (None, None, Some(path)) => last_entry(path)?,
                (None, None, None) => return Ok(()),
            };
            seal(&day, at.0, &at.1)?;
            head = Some(at);
        } else if file.is_some() {
            head = None;
        }
        if let Some(path) = file {
            last_file = Some(path.clone());
        }
        *sealed_until = Some(day.clone());
        let Some(next) = next_day(&day) else { break };
        day = next;
    }
    Ok(())
}

impl<S: Store> Gestore<S> {
    fn seal_day(&self, dir: &Path, day: &str, seq: i64, hash: &str) -> Result<(), String> {
        write_seal(self.signer.as_ref(), dir, day, seq, hash, self.clock.now())?;
        tracing::info!(day, last_seq = seq, "event log day sealed");
        Ok(())
    }
}

/// Seals `day` at entry `seq` whose chain hash is `hash`: the seal text, signed by `signer`.
fn write_seal(
    signer: &dyn pec_message::smime::Signer,
    dir: &Path,
    day: &str,
    seq: i64,
    hash: &str,
    now: TimeRef,
) -> Result<(), String> {
    let text = seal_text(day, seq, hash, now);
    let p7s =
        pec_message::smime::signed_data(signer, text.as_bytes(), now).map_err(|e| e.to_string())?;
    let sig = dir.join(format!("events-{day}.seal.p7s"));
    write_synced(&sig, &p7s)?;
    // The .seal text last, once the signature is on disk: its presence means the seal is
    // complete, so a crash before the rename leaves the day to be sealed again.
    let tmp = dir.join(format!("events-{day}.seal.tmp"));
    write_synced(&tmp, text.as_bytes())?;
    fs::rename(&tmp, seal_path(dir, day)).map_err(|e| e.to_string())?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Writes `bytes` to `path` and syncs them to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

mod verify;
pub use verify::{LogReport, StoreEvents, Verify, verify_dir};

#[cfg(test)]
mod tests;
