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

fn verify(dir: &Path, p: &Provider, store: Option<&[LoggedEvent]>) -> LogReport {
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
            now: T0 + 10 * DAY,
            grace: 60,
        },
    )
}

fn has(r: &LogReport, needle: &str) -> bool {
    r.problems.iter().any(|p| p.contains(needle))
}

#[test]
fn an_intact_log_verifies_against_its_seals_and_the_store() {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let p = provider(&ca, "log.test");
    let dir = tempfile::tempdir().unwrap();
    let all = events();
    write_log(dir.path(), &all, &p);
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
    assert!(later.problems.is_empty(), "{:?}", later.problems);
}

/// A past day without its seal, or with another day's seal, is found.
#[test]
fn seals_must_be_present_and_belong_to_their_day() {
    let ca = pki::make_ca("Log CA", T0 - DAY, 400).unwrap();
    let p = provider(&ca, "log.test");
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &events(), &p);
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
