//! The SMTP server with a client that pipelines (RFC 2920) and sends chunks (RFC 3030), over
//! implicit TLS against a real `pec serve`: answers to a pipelined group leave in one write,
//! BDAT messages are stored byte for byte, and BDAT out of place gets a clear answer.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;
use serde_json::Value;
use std::process::Command;

#[test]
fn pipelined_and_chunked_submissions() {
    require("python3");
    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(root.path(), "s.test", "Gestore S", "127.0.0.31", &[]);
    g.start();
    g.add_mailbox("mario@s.test", &[]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/smtp_session.py");
    let o = Command::new("python3")
        .args([
            script,
            &g.ip,
            g.ca().to_str().unwrap(),
            "mario@s.test",
            PASSWORD,
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "SMTP session failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        g.server_log()
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap_or_else(|| panic!("{k} missing: {r}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };

    let caps = r["caps"].to_string();
    assert!(
        caps.contains("PIPELINING") && caps.contains("CHUNKING"),
        "{r}"
    );
    assert_eq!(r["auth"], "235");
    assert_eq!(
        r["pipelined_answers_in_one_record"], 3,
        "the answers to MAIL, RCPT and DATA leave in one write: {r}"
    );
    assert_eq!(codes("pipelined_codes"), ["250", "250", "354"]);
    assert_eq!(r["data_final"], "250");
    assert_eq!(codes("bdat_last_codes"), ["250", "250", "250", "250"]);
    assert_eq!(codes("bdat_first_codes"), ["250", "250", "250"]);
    assert_eq!(codes("bdat_second_code"), ["250"]);
    assert_eq!(codes("mixed_codes"), ["250", "250", "250"]);
    assert_eq!(codes("rcpt_after_bdat"), ["503"]);
    assert_eq!(codes("data_after_bdat"), ["503"]);
    assert_eq!(codes("rset"), ["250"]);
    assert_eq!(codes("vrfy_help_expn"), ["252", "214", "502"]);
    assert_eq!(codes("bdat_without_mail"), ["503", "250"]);
    assert_eq!(codes("bad_bdat"), ["501"]);
    assert_eq!(r["closed_after_bad_bdat"], true);
    assert_eq!(codes("bdat_after_helo"), ["503", "250"]);
    assert_eq!(codes("huge_bdat"), ["552"]);
    assert_eq!(r["closed_after_huge_bdat"], true);

    // Three certified messages, each with its acceptance and delivery receipt; the line
    // that starts with a dot arrived intact by DATA (stuffed) and by BDAT (as is).
    let inbox = g.wait_for("mario@s.test", "three messages delivered", |m| {
        count(m, "posta-certificata") == 3 && count(m, "avvenuta-consegna") == 3
    });
    let subjects: Vec<String> = inbox
        .iter()
        .filter(|m| m["kind"] == "posta-certificata")
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    // The recipient named twice got one copy and one receipt (pec.md §2.12).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let inbox = g.messages("mario@s.test");
    assert_eq!(count(&inbox, "posta-certificata"), 3, "{inbox:?}");
    assert_eq!(count(&inbox, "avvenuta-consegna"), 3, "{inbox:?}");
    for s in ["pipelined data", "chunked one", "chunked two"] {
        assert!(subjects.iter().any(|x| x.ends_with(s)), "{s}: {subjects:?}");
    }
    for m in inbox.iter().filter(|m| m["kind"] == "posta-certificata") {
        let raw = g.message("mario@s.test", m["uid"].as_u64().unwrap());
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("\r\n.riga che inizia con un punto\r\nfine\r\n"),
            "{text}"
        );
    }
}
