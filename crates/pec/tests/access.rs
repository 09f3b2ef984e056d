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

#[test]
fn imap_sessions_with_python_imaplib() {
    require("curl");
    require("python3");
    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(root.path(), "q.test", "Gestore Q", "127.0.0.12", &[]);
    g.start();
    g.add_mailbox("mario@q.test", &["--quota", "104857600"]);
    g.add_mailbox("locked@q.test", &[]);
    let msg = b"From: mario@q.test\r\nTo: mario@q.test\r\nSubject: IMAP prova\r\nMessage-ID: <imap@client>\r\n\r\nciao\r\n";
    assert!(submit(&g, "mario@q.test", &["mario@q.test"], msg));
    let inbox = g.wait_for("mario@q.test", "the delivery receipt", |m| {
        count(m, "avvenuta-consegna") == 1 && count(m, "posta-certificata") == 1
    });
    assert_eq!(inbox.len(), 3, "{inbox:#?}");
    let stored: Vec<(String, String)> = inbox
        .iter()
        .map(|m| {
            let uid = m["uid"].as_u64().unwrap();
            (uid.to_string(), sha256(&g.message("mario@q.test", uid)))
        })
        .collect();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/imap_session.py");
    let o = Command::new("python3")
        .args([
            script,
            &g.ip,
            g.ca().to_str().unwrap(),
            "mario@q.test",
            PASSWORD,
            "locked@q.test",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "imaplib session failed:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stderr),
        g.server_log()
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = |k: &str| r[k].to_string();

    // Security: nothing but STARTTLS before TLS; refusals are tagged NO with a code.
    let plain = s("plain_capability");
    assert!(
        plain.contains("LOGINDISABLED") && plain.contains("STARTTLS"),
        "{plain}"
    );
    assert!(!plain.contains("AUTH=PLAIN"), "{plain}");
    assert!(s("login_before_tls").contains("PRIVACYREQUIRED"), "{r}");
    assert!(s("tls_capability").contains("AUTH=PLAIN"));
    assert!(!s("tls_capability").contains("LOGINDISABLED"));
    assert_eq!(r["starttls_select"], "3");
    assert!(s("select_before_login").contains("s0 BAD"), "{r}");
    assert!(s("wrong_password").contains("AUTHENTICATIONFAILED"), "{r}");
    assert!(s("locked").contains("too many failed logins"), "{r}");

    // Folders and SPECIAL-USE.
    let list = s("list");
    for f in [
        "\\\\Sent) \\\"/\\\" Sent",
        "\\\\Junk",
        "\\\\Trash",
        "\\\\Drafts",
        "INBOX",
    ] {
        assert!(list.contains(f), "{f} missing from {list}");
    }
    assert_eq!(r["select"], "3");
    let codes = s("select_codes");
    for c in [
        "UIDVALIDITY",
        "UIDNEXT",
        "HIGHESTMODSEQ",
        "PERMANENTFLAGS",
        "READ-WRITE",
    ] {
        assert!(codes.contains(c), "{c} missing from {codes}");
    }
    assert!(s("unknown_folder").contains("NO [NONEXISTENT]"), "{r}");

    // Bytes are the stored ones; PEEK leaves \Seen alone; BODY[...] sets it.
    for (uid, hash) in &stored {
        assert_eq!(
            &r["bodies"][uid], hash,
            "UID {uid} differs from the stored bytes"
        );
    }
    assert!(!s("flags_after_peek").contains("Seen"), "{r}");
    assert!(s("seen_after_body").contains("FLAGS (\\\\Seen)"), "{r}");
    assert!(s("envelope").contains("posta-certificata"), "{r}");
    assert!(s("bodystructure").contains("\\\"signed\\\""), "{r}");
    assert_eq!(r["uid_search_all"], "1 2 3");
    assert!(s("search_subject").len() > 2, "{r}");
    assert!(
        s("quota").contains("(STORAGE ") && s("quota").contains(" 102400)"),
        "{r}"
    );
    assert!(s("status").contains("MESSAGES 3"), "{r}");

    // The submitted original is in Sent, read.
    assert_eq!(r["sent"], "1");
    assert!(s("sent_fetch").contains("Subject: IMAP prova"), "{r}");
    assert!(s("sent_fetch").contains("\\\\Seen"), "{r}");

    // Folder management with UIDPLUS codes and clear refusals.
    assert!(s("copy").contains("OK [COPYUID "), "{r}");
    assert!(s("copy_missing").contains("NO [TRYCREATE]"), "{r}");
    assert!(s("delete_inbox").contains("NO [CANNOT]"), "{r}");
    assert!(s("rename").contains("OK"), "{r}");
    assert!(s("list_after_rename").contains("Archivio/Rossi"), "{r}");
    assert!(s("append_literal_plus").contains("OK [APPENDUID "), "{r}");
    assert_eq!(
        r["sync_literal_continuation"]
            .as_str()
            .unwrap()
            .chars()
            .next(),
        Some('+')
    );
    assert!(s("sync_literal_done").contains("OK [APPENDUID "), "{r}");
    assert!(s("literal_too_large").contains("c7 BAD"), "{r}");
    assert!(s("garbage").contains("c8 BAD"), "{r}");
    assert!(s("bad_sequence").contains("c9 BAD"), "{r}");
    assert!(s("fragmented").contains("c10 OK"), "{r}");
    // STATUS (HIGHESTMODSEQ) above has enabled CONDSTORE already (RFC 7162 §3.1).
    assert!(s("enable").contains("c11 OK"), "{r}");
    assert!(s("id").contains("\\\"name\\\" \\\"pec\\\""), "{r}");
    assert!(s("unchangedsince").contains("OK [MODIFIED 1]"), "{r}");
    assert!(
        s("delete_archivio").matches("OK DELETE completed").count() == 2,
        "{r}"
    );

    // Two sessions; IDLE.
    assert!(s("b_sees_flag").contains("\\\\Flagged"), "{r}");
    assert!(s("b_sees_exists").contains("EXISTS"), "{r}");
    assert!(s("b_sees_expunge").contains("EXPUNGE"), "{r}");
    assert!(s("idle_continuation").contains('+'), "{r}");
    let flood = r["pre_login_flood"].to_string();
    assert!(flood.contains("BYE"), "{flood}");
    assert!(
        r["noop_after_fetch"]
            .as_str()
            .unwrap_or("")
            .starts_with("n1 OK"),
        "{r}"
    );
    let idle = r["idle_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(idle < 1.0, "IDLE reported the new PEC after {idle} s: {r}");
    assert!(s("idle_done").contains("OK"), "{r}");
}

/// The SHA-256 of a message as mbsync keeps it in a Maildir: LF line ends, and its own
/// `X-TUID` tracking header removed.
fn lf_sha256(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).replace("\r\n", "\n");
    let s: String = s
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("X-TUID: "))
        .collect();
    sha256(s.as_bytes())
}

/// Reads one element of the autoconfig document of `kind` (`imap`, `pop3`, `smtp`).
fn autoconfig_server(doc: &str, kind: &str, element: &str) -> String {
    let start = doc
        .find(&format!("type=\"{kind}\""))
        .unwrap_or_else(|| panic!("no {kind} server in {doc}"));
    let rest = &doc[start..];
    let open = format!("<{element}>");
    let a = rest.find(&open).unwrap() + open.len();
    let b = rest[a..].find('<').unwrap() + a;
    rest[a..b].to_string()
}

#[test]
fn mbsync_and_fetchmail_configured_from_autoconfig() {
    require("curl");
    require("python3");
    require("mbsync");
    require("fetchmail");

    let root = tempfile::tempdir().unwrap();
    let mut g = Gestore::init(root.path(), "r.test", "Gestore R", "127.0.0.13", &[]);
    g.start();
    g.add_mailbox("anna@r.test", &[]);
    let msg = b"From: anna@r.test\r\nTo: anna@r.test\r\nSubject: PEC per mbsync\r\nMessage-ID: <mbsync@client>\r\n\r\nciao\r\n";
    assert!(submit(&g, "anna@r.test", &["anna@r.test"], msg));
    g.wait_for("anna@r.test", "the delivery receipt", |m| {
        count(m, "avvenuta-consegna") == 1
    });

    // The client learns everything from the autoconfig document over HTTPS.
    let doc = Command::new("curl")
        .args(["-sf", "--cacert", g.ca().to_str().unwrap()])
        .arg(format!(
            "https://{}:8443/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=anna@r.test",
            g.ip
        ))
        .output()
        .unwrap();
    assert!(
        doc.status.success(),
        "autoconfig: {}",
        String::from_utf8_lossy(&doc.stderr)
    );
    let doc = String::from_utf8(doc.stdout).unwrap();
    let host = autoconfig_server(&doc, "imap", "hostname");
    let imap_port = autoconfig_server(&doc, "imap", "port");
    let pop_port = autoconfig_server(&doc, "pop3", "port");
    assert_eq!(autoconfig_server(&doc, "imap", "socketType"), "SSL");
    assert_eq!(autoconfig_server(&doc, "smtp", "port"), "4650");
    assert_eq!(
        autoconfig_server(&doc, "imap", "username"),
        "%EMAILADDRESS%"
    );
    let discover = Command::new("curl")
        .args(["-sf", "--cacert", g.ca().to_str().unwrap(), "--data"])
        .arg("<Autodiscover><Request><EMailAddress>anna@r.test</EMailAddress></Request></Autodiscover>")
        .arg(format!("https://{}:8443/autodiscover/autodiscover.xml", g.ip))
        .output()
        .unwrap();
    let discover = String::from_utf8_lossy(&discover.stdout);
    assert!(
        discover.contains("<LoginName>anna@r.test</LoginName>"),
        "{discover}"
    );

    // A mailbox of 1,000 messages besides the PEC ones.
    let fill = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/imap_fill.py");
    let o = Command::new("python3")
        .args([
            fill,
            &host,
            &imap_port,
            g.ca().to_str().unwrap(),
            "anna@r.test",
            PASSWORD,
            "INBOX",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fill: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let inbox = g.messages("anna@r.test");
    assert_eq!(inbox.len(), 1003);

    // mbsync pulls every folder into a Maildir. isync checks host names against DNS names
    // only, so the development gestore's own certificate is pinned next to its CA (isync
    // accepts a server certificate listed in CertificateFile as it is).
    let pinned = root.path().join("pinned.pem");
    let mut pem = std::fs::read(g.ca()).unwrap();
    pem.extend(std::fs::read(g.ca().with_file_name("tls.pem")).unwrap());
    std::fs::write(&pinned, pem).unwrap();
    let maildir = root.path().join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = root.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount pec\nHost {host}\nPort {imap_port}\nUser anna@r.test\nPass {PASSWORD}\nSSLType IMAPS\nCertificateFile {ca}\n\n\
             IMAPStore remote\nAccount pec\n\n\
             MaildirStore local\nPath {md}/\nInbox {md}/INBOX\nSubFolders Verbatim\n\n\
             Channel pec\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSyncState *\n",
            ca = pinned.display(),
            md = maildir.display()
        ),
    )
    .unwrap();
    let o = Command::new("mbsync")
        .args(["-c", rc.to_str().unwrap(), "-a"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mbsync failed:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        g.server_log()
    );
    let files = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        ["cur", "new"]
            .iter()
            .flat_map(|d| std::fs::read_dir(dir.join(d)).into_iter().flatten())
            .map(|e| e.unwrap().path())
            .collect()
    };
    let got = files(&maildir.join("INBOX"));
    assert_eq!(got.len(), 1003, "mbsync copied every INBOX message");
    let stored: std::collections::BTreeSet<String> = inbox
        .iter()
        .filter(|m| m["kind"] != "ordinaria")
        .map(|m| lf_sha256(&g.message("anna@r.test", m["uid"].as_u64().unwrap())))
        .collect();
    let local: std::collections::BTreeSet<String> = got
        .iter()
        .map(|p| lf_sha256(&std::fs::read(p).unwrap()))
        .collect();
    if !stored.is_subset(&local) {
        let keep = root.keep();
        panic!(
            "the PEC messages do not arrive byte for byte; see {}",
            keep.display()
        );
    }

    assert_eq!(
        files(&maildir.join("Sent")).len(),
        1,
        "Sent holds the original"
    );
    // A second run finds nothing new.
    let o = Command::new("mbsync")
        .args(["-c", rc.to_str().unwrap(), "-a"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(files(&maildir.join("INBOX")).len(), 1003);

    // fetchmail takes the INBOX over POP3S and deletes it from the server. It too checks
    // only DNS names, so the certificate is pinned by fingerprint.
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-md5", "-in"])
        .arg(g.ca().with_file_name("tls.pem"))
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    let fp = fp.trim().rsplit('=').next().unwrap().to_string();
    let mbox = root.path().join("fetched.mbox");
    let ca = g.ca();
    let frc = root.path().join("fetchmailrc");
    std::fs::write(
        &frc,
        format!(
            "set no syslog\npoll {host} service {pop_port} protocol pop3 user \"anna@r.test\" password \"{PASSWORD}\" ssl sslcertfile \"{ca}\" no sslcertck sslfingerprint \"{fp}\" fetchall mda \"/bin/sh -c 'cat >> {mbox}'\"\n",
            mbox = mbox.display(),
            ca = ca.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&frc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new("fetchmail")
        .args(["-f", frc.to_str().unwrap(), "--nodetach", "--pidfile"])
        .arg(root.path().join("fetchmail.pid"))
        .env("HOME", root.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fetchmail failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let fetched = std::fs::read_to_string(&mbox).unwrap();
    assert_eq!(fetched.matches("Subject: messaggio ").count(), 1000);
    assert!(fetched.contains("X-Ricevuta: avvenuta-consegna") || fetched.contains("X-Ricevuta:"));
    assert_eq!(
        g.messages("anna@r.test").len(),
        0,
        "fetchmail deleted what it took"
    );
}
