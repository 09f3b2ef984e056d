//! `pec log verify` (pec.md §6): what the files alone show, what the seals bind, and what
//! only the store's copy of the events reveals.

use super::*;
use pec_message::pki;
use pec_message::smime::SoftwareSigner;
use pec_store::LoggedEvent;

/// 2026-01-01T12:00:00Z.
const T0: i64 = 1_767_268_800;
const DAY: i64 = 86_400;

struct Provider {
    ca: openssl::x509::X509,
    signer: SoftwareSigner,
}

fn provider(ca: &pki::Issued, domain: &str) -> Provider {
    let leaf = pki::issue_signing_cert(ca, "Log", domain, None, T0 - DAY, 400).unwrap();
    Provider {
        ca: ca.cert.clone(),
        signer: SoftwareSigner::from_pkcs8(
            &leaf.key_pkcs8_der().unwrap(),
            leaf.cert_der().unwrap(),
            vec![ca.cert_der().unwrap()],
        )
        .unwrap(),
    }
}

/// Events of three days (two a day), as the store holds them.
fn events() -> Vec<LoggedEvent> {
    (1..=6)
        .map(|seq| LoggedEvent {
            seq,
            time: T0 + (seq - 1) / 2 * DAY,
            identificativo: format!("id{seq}"),
            json: format!("{{\"tipo\":\"accettazione\",\"n\":{seq}}}"),
        })
        .collect()
}

/// Writes `events` as the exporter does, sealing every day but the last.
fn write_log(dir: &Path, events: &[LoggedEvent], p: &Provider) {
    let mut prev = GENESIS.to_string();
    let mut by_day: Vec<(String, String, i64, String)> = Vec::new();
    for e in events {
        let event = canonical(&e.json).unwrap();
        let h = entry_hash(&prev, e.seq, &event);
        let line = format!(
            "{{\"seq\":{},\"prev\":\"{prev}\",\"hash\":\"{h}\",\"event\":{event}}}\n",
            e.seq
        );
        let day = day_of(e.time);
        match by_day.last_mut() {
            Some((d, text, seq, hash)) if *d == day => {
                text.push_str(&line);
                *seq = e.seq;
                *hash = h.clone();
            }
            _ => by_day.push((day, line, e.seq, h.clone())),
        }
        prev = h;
    }
    let last = by_day.len() - 1;
    for (i, (day, text, seq, hash)) in by_day.iter().enumerate() {
        fs::write(dir.join(format!("events-{day}.jsonl")), text).unwrap();
        if i < last {
            let at = TimeRef::new(chrono::DateTime::from_timestamp(T0 + 3 * DAY, 0).unwrap());
            write_seal(&p.signer, dir, day, *seq, hash, at).unwrap();
        }
    }
}

/// A provider of log.test and a directory holding [`events`] as the exporter writes them.
fn written_log() -> (Provider, tempfile::TempDir) {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let p = provider(&ca, "log.test");
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events(), &p);
    (p, dir)
}

/// Verifies an hour after the last events, on their day.
fn verify(dir: &Path, p: &Provider, store: Option<&[LoggedEvent]>) -> LogReport {
    verify_at(dir, p, store, T0 + 2 * DAY + 3600)
}

fn verify_at(dir: &Path, p: &Provider, store: Option<&[LoggedEvent]>, now: i64) -> LogReport {
    let read = |after: i64, limit: usize| -> Result<Vec<LoggedEvent>, String> {
        Ok(store
            .unwrap_or_default()
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    };
    verify_dir(
        dir,
        &Verify {
            anchors: std::slice::from_ref(&p.ca),
            own_address: Some("posta-certificata@log.test"),
            store: store.map(|_| &read as StoreEvents<'_>),
            now,
            grace: 60,
        },
    )
}

fn has(r: &LogReport, needle: &str) -> bool {
    r.problems.iter().any(|p| p.contains(needle))
}

#[test]
fn an_intact_log_verifies_against_its_seals_and_the_store() {
    let (p, dir) = written_log();
    let all = events();
    let r = verify(dir.path(), &p, Some(&all));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.entries, r.days, r.sealed_days), (6, 3, 2));
    assert_eq!(r.store_entries, Some(6));
    // Checked at the sealing: still valid once the certificate has expired.
    let later = verify_dir(
        dir.path(),
        &Verify {
            anchors: std::slice::from_ref(&p.ca),
            own_address: None,
            store: None,
            now: T0 + 2000 * DAY,
            grace: 60,
        },
    );
    assert!(
        later.problems.iter().all(|p| !p.starts_with("seal of")),
        "{:?}",
        later.problems
    );
    // Seen so long after, the days since the last one hold no seal: the gestore was
    // stopped, or the latest days were removed.
    assert!(
        has(&later, "2026-01-03 has no seal (it has entries)"),
        "{:?}",
        later.problems
    );
    assert!(
        has(&later, "more unsealed days not listed"),
        "{:?}",
        later.problems
    );
}

/// Quiet days are sealed too, at the head they ended with; then removing the latest days,
/// entries, seals and store records together, still leaves a past day without its seal.
#[test]
fn quiet_days_are_sealed_and_removed_latest_days_are_found() {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let p = provider(&ca, "log.test");
    let dir = tempfile::tempdir().unwrap();
    // Entries on days 1 and 3 only.
    let mut all = events();
    all.retain(|e| e.seq <= 2 || e.seq >= 5);
    for (i, e) in all.iter_mut().enumerate() {
        e.seq = i as i64 + 1;
    }
    write_log(dir.path(), &all, &p);
    let at = TimeRef::new(chrono::DateTime::from_timestamp(T0 + 5 * DAY, 0).unwrap());
    let mut sealed = Vec::new();
    let mut until = None;
    seal_days_before(
        dir.path(),
        &day_of(T0 + 5 * DAY),
        &mut until,
        &mut |day, seq, hash| {
            sealed.push((day.to_string(), seq));
            write_seal(&p.signer, dir.path(), day, seq, hash, at)
        },
    )
    .unwrap();
    // Day 0 was sealed by write_log. Day 1 (quiet) is sealed at entry 2, day 2 at its last
    // entry 4, and days 3 and 4 (quiet) at 4.
    let days: Vec<String> = (0..5).map(|n| day_of(T0 + n * DAY)).collect();
    assert_eq!(
        sealed,
        vec![
            (days[1].clone(), 2),
            (days[2].clone(), 4),
            (days[3].clone(), 4),
            (days[4].clone(), 4)
        ]
    );
    assert_eq!(until.as_deref(), Some(days[4].as_str()));
    // The next round starts after the days already sealed, and finds the head in day 2.
    let mut later = Vec::new();
    seal_days_before(
        dir.path(),
        &day_of(T0 + 6 * DAY),
        &mut until,
        &mut |day, seq, _| {
            later.push((day.to_string(), seq));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(later, vec![(day_of(T0 + 5 * DAY), 4)]);
    let now = T0 + 5 * DAY + 3600;
    let check = |store: Option<&[LoggedEvent]>| verify_at(dir.path(), &p, store, now);
    let r = check(Some(&all));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.sealed_days, 5);

    // The latest days removed with their seals and their store records: the chain that is
    // left is whole, but days 2 to 4 have no seal any more.
    for d in &days[2..] {
        for ext in ["jsonl", "seal", "seal.p7s"] {
            let _ = fs::remove_file(dir.path().join(format!("events-{d}.{ext}")));
        }
    }
    let r = check(Some(&all[..2]));
    for d in &days[2..] {
        assert!(has(&r, &format!("{d} has no seal")), "{:?}", r.problems);
    }
}

/// A past day without its seal, or with another day's seal, is found.
#[test]
fn seals_must_be_present_and_belong_to_their_day() {
    let (p, dir) = written_log();
    let (d1, d2) = (day_of(T0), day_of(T0 + DAY));
    fs::remove_file(seal_path(dir.path(), &d1)).unwrap();
    let r = verify(dir.path(), &p, None);
    assert!(has(&r, "has no seal"), "{:?}", r.problems);
    // Day 2's seal copied over day 1's.
    for ext in ["seal", "seal.p7s"] {
        fs::copy(
            dir.path().join(format!("events-{d2}.{ext}")),
            dir.path().join(format!("events-{d1}.{ext}")),
        )
        .unwrap();
    }
    let r = verify(dir.path(), &p, None);
    assert!(has(&r, "the seal is for"), "{:?}", r.problems);
}

/// A seal signed by another provider the same CA vouches for is not this provider's.
#[test]
fn a_seal_by_another_provider_is_refused() {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let other = provider(&ca, "other.test");
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events(), &other);
    let r = verify(dir.path(), &other, None);
    assert!(has(&r, "not for this provider"), "{:?}", r.problems);
}

/// A cut tail and a rewritten history with a recomputed chain leave the files consistent;
/// the store's copy shows both.
#[test]
fn the_store_reveals_a_cut_tail_and_a_rewritten_chain() {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let p = provider(&ca, "log.test");
    let all = events();

    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &all[..5], &p);
    assert!(verify(dir.path(), &p, None).problems.is_empty());
    let r = verify(dir.path(), &p, Some(&all));
    assert!(
        has(&r, "entry 6, committed on"),
        "a removed last entry: {:?}",
        r.problems
    );

    let dir = tempfile::tempdir().unwrap();
    let mut forged = all.clone();
    forged[5].json = "{\"tipo\":\"accettazione\",\"n\":99}".into();
    write_log(dir.path(), &forged, &p);
    assert!(verify(dir.path(), &p, None).problems.is_empty());
    let r = verify(dir.path(), &p, Some(&all));
    assert!(has(&r, "entry 6 of the files differs"), "{:?}", r.problems);

    // Entries the store never committed.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &all, &p);
    let r = verify(dir.path(), &p, Some(&all[..4]));
    assert!(has(&r, "2 entries of the files"), "{:?}", r.problems);
}

/// A line the chain would accept but written otherwise (a repeated key whose last value a
/// reader takes, an added field) is reported: the raw line must be what the chain covers.
#[test]
fn a_line_not_written_as_the_exporter_writes_it_is_reported() {
    let (p, dir) = written_log();
    let path = dir
        .path()
        .join(format!("events-{}.jsonl", day_of(T0 + 2 * DAY)));
    let text = fs::read_to_string(&path).unwrap();
    // A duplicate key before the real one: serde keeps the last, a first-wins reader the
    // forged value.
    let edited = text.replacen("\"event\":{", "\"event\":{\"n\":0,", 1);
    assert_ne!(edited, text);
    fs::write(&path, &edited).unwrap();
    let r = verify(dir.path(), &p, None);
    assert!(has(&r, "not written as the exporter"), "{:?}", r.problems);
    let extra = text.replacen("{\"seq\"", "{\"note\":\"x\",\"seq\"", 1);
    fs::write(&path, &extra).unwrap();
    let r = verify(dir.path(), &p, None);
    assert!(has(&r, "not written as the exporter"), "{:?}", r.problems);
}

/// After a power loss the unsealed newest file may end in a cut line or zeros: the repair
/// at start cuts back to the last whole entry, and leaves sealed days alone.
#[test]
fn a_torn_tail_is_cut_back_to_the_last_whole_entry() {
    let (p, dir) = written_log();
    let all = events();
    let newest = dir
        .path()
        .join(format!("events-{}.jsonl", day_of(T0 + 2 * DAY)));
    let sealed = dir.path().join(format!("events-{}.jsonl", day_of(T0)));
    let good = fs::read(&newest).unwrap();
    let sealed_before = fs::read(&sealed).unwrap();
    assert!(
        repair_torn_tails(dir.path()).is_empty(),
        "an intact log is left alone"
    );

    // Half a line, then zeros after a whole (but unfinished) line.
    let half = b"{\"seq\":7,\"prev\":\"ab";
    let mut torn = good.clone();
    torn.extend_from_slice(half);
    fs::write(&newest, &torn).unwrap();
    fs::write(&sealed, [&sealed_before[..], b"{\"seq\":"].concat()).unwrap();
    let cut = repair_torn_tails(dir.path());
    assert_eq!(cut, vec![(newest.clone(), half.len() as u64)]);
    assert_eq!(fs::read(&newest).unwrap(), good);
    assert_ne!(
        fs::read(&sealed).unwrap(),
        sealed_before,
        "a sealed day is not touched"
    );
    fs::write(&sealed, &sealed_before).unwrap();

    let mut zeros = good.clone();
    zeros.extend_from_slice(&[0u8; 4096]);
    zeros.push(b'\n');
    fs::write(&newest, &zeros).unwrap();
    repair_torn_tails(dir.path());
    assert_eq!(fs::read(&newest).unwrap(), good);
    let r = verify(dir.path(), &p, Some(&all));
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    // A file holding nothing whole is emptied.
    fs::write(&newest, b"{\"seq\":5,").unwrap();
    repair_torn_tails(dir.path());
    assert_eq!(fs::read(&newest).unwrap(), b"");
}

/// pec.md §6: after 30 months the oldest day files go with the store's events; their seals
/// stay and stand for them, so the rest still verifies, chain and store alike. A day purged
/// before its 30 months is reported.
#[test]
fn purged_days_are_stood_for_by_their_seals() {
    let (p, dir) = written_log();
    let all = events();
    let now = T0 + (pec_store::EVENT_LOG_KEEP_DAYS + 5) * DAY;
    // Sealed at a time the test certificate (400 days) is valid.
    let at = TimeRef::new(chrono::DateTime::from_timestamp(T0 + 3 * DAY, 0).unwrap());
    seal_days_before(
        dir.path(),
        &day_of(now),
        &mut None,
        &mut |day, seq, hash| write_seal(&p.signer, dir.path(), day, seq, hash, at),
    )
    .unwrap();
    let check = |store: &[LoggedEvent], now: i64| verify_at(dir.path(), &p, Some(store), now);
    let r = check(&all, now);
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    // The store kept entries 5 and 6: days 0 and 1 go, day 2 (entries 5, 6) stays.
    let cutoff = now - pec_store::EVENT_LOG_KEEP_DAYS * DAY;
    let gone = purge_files(dir.path(), cutoff, Some(5));
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(seal_path(dir.path(), &day_of(T0)).exists(), "seals stay");
    let r = check(&all[4..], now);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.entries, 2);

    // Seen as if the purge had come early, the days are reported.
    let r = check(&all[4..], T0 + 2 * DAY + 3600);
    assert!(
        has(&r, &format!("the entries of {} are gone", day_of(T0))),
        "{:?}",
        r.problems
    );
    // A purged day's seal must still be the provider's.
    let stray = provider(
        &pki::make_ca("Other CA", T0 - DAY, 400).unwrap(),
        "log.test",
    );
    write_seal(&stray.signer, dir.path(), &day_of(T0), 2, GENESIS, at).unwrap();
    let r = check(&all[4..], now);
    assert!(
        has(&r, &format!("seal of {}", day_of(T0))),
        "{:?}",
        r.problems
    );
}
