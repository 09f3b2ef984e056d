//! Mailbox access with real clients against a real `pec serve` (issue "Mailbox access"):
//! POP3 and POP3S driven by Python's poplib.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;
use serde_json::Value;
use std::process::Command;

fn sha256(b: &[u8]) -> String {
    let o = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn pop3_sessions_with_python_poplib() {
    require("curl");
    require("python3");
    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(root.path(), "p.test", "Gestore P", "127.0.0.10", &[]);
    g.start();
    g.add_mailbox("mario@p.test", &[]);
    g.add_mailbox("locked@p.test", &[]);
    let msg = b"From: mario@p.test\r\nTo: mario@p.test\r\nSubject: POP3 prova\r\nMessage-ID: <pop3@client>\r\n\r\nriga uno\r\n.riga con punto\r\n";
    assert!(submit(&g, "mario@p.test", &["mario@p.test"], msg));
    let inbox = g.wait_for("mario@p.test", "the delivery receipt", |m| {
        count(m, "avvenuta-consegna") == 1 && count(m, "posta-certificata") == 1
    });
    assert_eq!(inbox.len(), 3, "{inbox:#?}");
    let first = g.message("mario@p.test", inbox[0]["uid"].as_u64().unwrap());
    let total: u64 = inbox.iter().map(|m| m["size"].as_u64().unwrap()).sum();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/pop3_session.py");
    let o = Command::new("python3")
        .args([
            script,
            &g.ip,
            g.ca().to_str().unwrap(),
            "mario@p.test",
            PASSWORD,
            "locked@p.test",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "poplib session failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        g.server_log()
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();

    assert!(s("plain_greeting").starts_with("+OK"));
    let plain_capa: Vec<&str> = r["plain_capa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(plain_capa.contains(&"STLS"), "{plain_capa:?}");
    assert!(!plain_capa.contains(&"USER") && !plain_capa.contains(&"SASL"));
    assert!(s("user_before_tls").starts_with("-ERR [AUTH]"), "{r}");
    let tls_capa = r["tls_capa"].to_string();
    assert!(tls_capa.contains("USER") && tls_capa.contains("SASL") && !tls_capa.contains("STLS"));
    assert_eq!(r["stls_stat"], serde_json::json!([3, total]));

    assert!(s("wrong_password").starts_with("-ERR [AUTH]"), "{r}");
    assert_eq!(r["stat"], serde_json::json!([3, total]));
    assert_eq!(r["list"].as_array().unwrap().len(), 3);
    let uidl: Vec<String> = r["uidl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(uidl.len(), 3);
    assert_eq!(
        s("retr1_sha256"),
        sha256(&first),
        "RETR returns the stored bytes"
    );
    assert_eq!(r["top1_last_line_empty"], true);
    assert!(s("retr_missing").starts_with("-ERR no such message"), "{r}");
    assert!(s("unknown").starts_with("-ERR unknown command"), "{r}");
    assert!(s("bad_args").starts_with("-ERR syntax: RETR msg"), "{r}");
    assert!(
        s("retr_deleted").starts_with("-ERR message already deleted"),
        "{r}"
    );
    assert!(s("quit").contains("1 messages deleted"), "{r}");

    assert!(s("auth_plain").starts_with("+OK"), "{r}");
    assert_eq!(r["stat_after"][0], 2);
    let after: Vec<String> = r["uidl_after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(after, uidl[1..].to_vec(), "UIDs are stable across sessions");
    assert_eq!(
        g.messages("mario@p.test").len(),
        2,
        "DELE took effect at QUIT"
    );

    assert!(s("throttled").contains("too many failed logins"), "{r}");
}
