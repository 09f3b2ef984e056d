//! `pec log verify` (pec.md §6): the chain of every entry in the day files, every seal, a
//! seal for every past day, and the files against the store's copy of the events.

use super::{GENESIS, canonical, day_files, day_of, entry_hash, entry_line, next_day, seal_path};
use pec_message::smime::{SignatureCheck, TrustCheck, check_trust, cms_info, verify_detached};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The result of [`verify_dir`].
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LogReport {
    /// Entries checked.
    pub entries: u64,
    /// Day files checked.
    pub days: usize,
    /// Days with a valid seal.
    pub sealed_days: usize,
    /// Entries of the store compared with the files (`None`: no store was given).
    pub store_entries: Option<u64>,
    /// Every problem, one sentence each (empty when the log is intact).
    pub problems: Vec<String>,
}

/// Reads the store's log events with `seq > after`, oldest first, at most `limit`.
pub type StoreEvents<'a> = &'a dyn Fn(i64, usize) -> Result<Vec<pec_store::LoggedEvent>, String>;

/// What [`verify_dir`] checks the files against.
pub struct Verify<'a> {
    /// The trust anchors a seal's signer must chain to, at the time it was sealed.
    pub anchors: &'a [openssl::x509::X509],
    /// The provider's service address (`posta-certificata@DOMAIN`): a seal must be signed by a
    /// certificate for it, not by any certificate the anchors vouch for.
    pub own_address: Option<&'a str>,
    /// The store's copy of the events: every entry of the files must match it, and every
    /// event it committed more than `grace` seconds before `now` must be in the files, so a
    /// cut tail or a removed last day is found.
    pub store: Option<StoreEvents<'a>>,
    /// Now, Unix seconds.
    pub now: i64,
    /// How long a committed event may take to reach the files: a running gestore writes
    /// them within a second; a stopped one has written all it will until it starts again.
    pub grace: i64,
}

/// Problems of one kind beyond this many are counted, not listed.
const MAX_LISTED: usize = 20;

/// Checks the chain of every entry and every seal in `dir` (the `log` directory), and the
/// files against the store when given: every day but the newest must be sealed, each seal
/// must name its day and that day's last entry and be signed by the provider, and any
/// altered, removed, inserted or reordered entry is reported.
pub fn verify_dir(dir: &Path, with: &Verify<'_>) -> LogReport {
    let mut r = LogReport::default();
    let mut prev = GENESIS.to_string();
    let mut last_seq = 0i64;
    let mut heads: HashMap<i64, String> = HashMap::new();
    let files: HashMap<String, PathBuf> = day_files(dir).into_iter().collect();
    if files.is_empty() {
        r.problems
            .push(format!("no event log files in {}", dir.display()));
    }
    // Every calendar day from the first with entries to the last with entries or a seal
    // (quiet days are sealed too, with the head they ended at).
    let sealed_days = sealed_days(dir);
    let (Some(first_file), Some(last)) = (
        files.keys().min().cloned(),
        files.keys().chain(&sealed_days).max().cloned(),
    ) else {
        return r;
    };
    // Days sealed before the first file are days whose entries were purged after 30
    // months: their seals stand for them, and the chain resumes at the last one's head.
    let first = sealed_days
        .iter()
        .filter(|d| **d < first_file)
        .min()
        .cloned()
        .unwrap_or_else(|| first_file.clone());
    let keep_from = day_of(with.now - pec_store::EVENT_LOG_KEEP_DAYS * 86_400);
    let today = day_of(with.now);
    let mut unsealed = 0usize;
    let mut day = first;
    loop {
        if day < first_file {
            if let Ok(text) = fs::read_to_string(seal_path(dir, &day)) {
                match purged_day(&text, dir, &day, last_seq, &mut heads, with) {
                    Ok((seq, head)) => {
                        r.sealed_days += 1;
                        last_seq = seq;
                        prev = head;
                    }
                    Err(e) => r.problems.push(format!("seal of {day}: {e}")),
                }
                if day >= keep_from {
                    r.problems.push(format!(
                        "the entries of {day} are gone, but the log keeps every entry for 30 \
                         months (pec.md §6): removed early"
                    ));
                }
            }
            match next_day(&day) {
                Some(next) => day = next,
                None => break,
            }
            continue;
        }
        let text = match files.get(&day).map(|path| (path, fs::read(path))) {
            Some((_, Ok(t))) => {
                r.days += 1;
                t
            }
            Some((path, Err(e))) => {
                r.problems.push(format!("{}: {e}", path.display()));
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut file_last = None;
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
            if line != entry_line(seq, p, h, &event).as_bytes() {
                r.problems.push(format!(
                    "{at}: entry {seq} is not written as the exporter writes it (edited: a \
                     repeated or added field, or changed spacing, is not covered by the chain)"
                ));
            }
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
            file_last = Some(seq);
            prev = h.to_string();
            heads.insert(seq, prev.clone());
        }
        // A quiet day's seal names the last entry of the days before it.
        let closes_at = match files.contains_key(&day) {
            true => file_last,
            false => (last_seq > 0).then_some(last_seq),
        };
        match fs::read_to_string(seal_path(dir, &day)) {
            Ok(text) => match check_seal(&text, dir, &day, closes_at, &heads, with) {
                Ok(()) => r.sealed_days += 1,
                Err(e) => r.problems.push(format!("seal of {day}: {e}")),
            },
            // Today, or a later day of a gestore whose clock runs ahead, is not sealed yet.
            Err(_) if day >= today => {}
            Err(_) => {
                unsealed += 1;
                if unsealed <= MAX_LISTED {
                    r.problems.push(format!(
                        "{day} has no seal ({}): its seal or the day itself was removed, or \
                         the gestore was stopped since and seals it when it starts again",
                        if files.contains_key(&day) {
                            "it has entries"
                        } else {
                            "a day without entries"
                        }
                    ));
                }
            }
        }
        // Up to the last day present, and at least to yesterday: the latest days removed
        // leave their seals missing.
        if day >= last && day >= day_of(with.now - 86_400) {
            break;
        }
        match next_day(&day) {
            Some(next) => day = next,
            None => break,
        }
    }
    if unsealed > MAX_LISTED {
        r.problems.push(format!(
            "{} more unsealed days not listed",
            unsealed - MAX_LISTED
        ));
    }
    if let Some(store) = with.store {
        compare_with_store(&mut r, &heads, store, with.now - with.grace);
    }
    r
}

/// Checks the seal of a day whose entries were purged, and returns the entry and head it
/// closes the day at, which the chain goes on from: signed by the provider like any seal,
/// and not behind the seal before it (`last_seq`).
fn purged_day(
    text: &str,
    dir: &Path,
    day: &str,
    last_seq: i64,
    heads: &mut HashMap<i64, String>,
    with: &Verify<'_>,
) -> Result<(i64, String), String> {
    let field = |name: &str| seal_field(text, name);
    let seq: i64 = field("last-seq:")?
        .parse()
        .map_err(|_| "bad last-seq".to_string())?;
    let head = field("head:")?.to_string();
    if seq < last_seq {
        return Err(format!(
            "the seal closes the day at entry {seq}, before the day before it ({last_seq})"
        ));
    }
    heads.insert(seq, head.clone());
    check_seal(text, dir, day, None, heads, with)?;
    Ok((seq, head))
}

/// The value of a seal text's line starting with `name` (e.g. `last-seq:`).
fn seal_field<'a>(text: &'a str, name: &str) -> Result<&'a str, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .ok_or_else(|| format!("the seal has no {name}"))
}

/// The days that have a `.seal` file.
fn sealed_days(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            Some(
                name.strip_prefix("events-")?
                    .strip_suffix(".seal")?
                    .to_string(),
            )
        })
        .collect()
}

/// Recomputes the chain from the store's events and compares it, entry by entry, with the
/// files' chain (`heads`, seq → hash).
fn compare_with_store(
    r: &mut LogReport,
    heads: &HashMap<i64, String>,
    store: StoreEvents<'_>,
    before: i64,
) {
    let (mut prev, mut after, mut checked) = (GENESIS.to_string(), 0i64, 0u64);
    let (mut differ, mut missing) = (0usize, 0usize);
    loop {
        let page = match store(after, 10_000) {
            Ok(p) => p,
            Err(e) => {
                r.problems
                    .push(format!("the store's events cannot be read: {e}"));
                return;
            }
        };
        let Some(last) = page.last() else { break };
        // After a purge the store's events begin later: the chain resumes at the head the
        // files or a purged day's seal give for the entry before its first.
        if after == 0
            && let Some(first) = page.first()
            && first.seq > 1
        {
            match heads.get(&(first.seq - 1)) {
                Some(h) => prev = h.clone(),
                None => r.problems.push(format!(
                    "the store's events begin at entry {}, and entry {} is neither in the log \
                     files nor closed by a seal",
                    first.seq,
                    first.seq - 1
                )),
            }
        }
        after = last.seq;
        for e in &page {
            checked += 1;
            let Ok(event) = canonical(&e.json) else {
                r.problems
                    .push(format!("the store's event {} is not valid JSON", e.seq));
                continue;
            };
            let h = entry_hash(&prev, e.seq, &event);
            match heads.get(&e.seq) {
                Some(x) if *x == h => {}
                Some(_) => {
                    differ += 1;
                    if differ <= MAX_LISTED {
                        r.problems.push(format!(
                            "entry {} of the files differs from the store's record of it",
                            e.seq
                        ));
                    }
                }
                None if e.time > before => {}
                None => {
                    missing += 1;
                    if missing <= MAX_LISTED {
                        r.problems.push(format!(
                            "entry {}, committed on {}, is not in the log files (removed, or \
                             not written yet: a gestore stopped right after a commit writes \
                             it when it starts again)",
                            e.seq,
                            day_of(e.time)
                        ));
                    }
                }
            }
            prev = h;
        }
    }
    for (n, what) in [(differ, "differing"), (missing, "missing")] {
        if n > MAX_LISTED {
            r.problems
                .push(format!("{} more {what} entries not listed", n - MAX_LISTED));
        }
    }
    let extra = heads.keys().filter(|&&k| k > after).count();
    if extra > 0 {
        r.problems.push(format!(
            "{extra} entr{} of the files (after entry {after}) are not in the store",
            if extra == 1 { "y" } else { "ies" }
        ));
    }
    r.store_entries = Some(checked);
}

fn check_seal(
    text: &str,
    dir: &Path,
    day: &str,
    file_last: Option<i64>,
    heads: &HashMap<i64, String>,
    with: &Verify<'_>,
) -> Result<(), String> {
    let field = |name: &str| seal_field(text, name);
    let sealed_day = field("day:")?;
    if sealed_day != day {
        return Err(format!("the seal is for {sealed_day}, not for this day"));
    }
    let seq: i64 = field("last-seq:")?
        .parse()
        .map_err(|_| "bad last-seq".to_string())?;
    if file_last.is_some_and(|l| l != seq) {
        return Err(format!(
            "the seal closes the day at entry {seq}, but its file ends at entry {}",
            file_last.unwrap_or_default()
        ));
    }
    let head = field("head:")?;
    match heads.get(&seq) {
        Some(h) if h == head => {}
        Some(_) => return Err(format!("entry {seq} differs from the sealed chain head")),
        None => return Err(format!("sealed entry {seq} is missing from the log")),
    }
    let sealed_at = chrono::DateTime::parse_from_rfc3339(field("sealed-at:")?)
        .map_err(|_| "bad sealed-at".to_string())?
        .timestamp();
    let p7s = dir.join(format!("events-{day}.seal.p7s"));
    let der = fs::read(&p7s).map_err(|e| format!("{}: {e}", p7s.display()))?;
    if let SignatureCheck::Invalid(why) = verify_detached(&der, text.as_bytes()) {
        return Err(format!("signature does not verify: {why}"));
    }
    let info = cms_info(&der)?;
    let signer = info.signer.ok_or("the seal names no signer certificate")?;
    if let Some(own) = with.own_address {
        let cert = pec_message::smime::parse_certificate(&signer)
            .map_err(|_| "the seal's signer certificate cannot be read".to_string())?;
        let emails = pec_message::pki::certificate_emails(&cert);
        if !emails.iter().any(|e| e.eq_ignore_ascii_case(own)) {
            return Err(format!(
                "the seal is signed by a certificate for {}, not for this provider ({own})",
                emails.join(", ")
            ));
        }
    }
    if !with.anchors.is_empty() {
        // Checked as of the sealing: a seal stays valid after its certificate expires.
        if let TrustCheck::Untrusted(why) =
            check_trust(&signer, &info.certificates, with.anchors, Some(sealed_at))
        {
            return Err(why);
        }
    }
    Ok(())
}
