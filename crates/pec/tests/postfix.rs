//! Interoperation with Postfix, the MTA most mail servers run: a private Postfix instance on
//! 127.0.0.40 and a real `pec serve` on 127.0.0.41. Our relay client hands Postfix a PEC
//! envelope (Postfix offers PIPELINING and CHUNKING, so it goes as one `BDAT LAST`) and the
//! copy Postfix delivers still verifies; Postfix's own client (which pipelines) hands our MX
//! ordinary mail, which reaches the mailbox as an anomaly envelope.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const POSTFIX: &str = "/usr/sbin/postfix";

/// A private Postfix instance, stopped on drop.
struct Postfix {
    dir: PathBuf,
}

impl Postfix {
    /// Postfix on `ip`:2525 taking mail for `dest@y.ref` into a maildir and relaying
    /// `relay_domain` to `next_hop`, with STARTTLS offered and used when offered.
    fn start(root: &Path, ip: &str, relay_domain: &str, next_hop: &str) -> Postfix {
        let dir = root.join("postfix");
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, "postfix"]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().expect(
                "the postfix user is missing (scripts/test installs Debian's postfix package)",
            )
        };
        let (uid, gid) = (id("-u"), id("-g"));
        for d in ["etc", "queue", "data", "mail/dest/new"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for d in ["data", "mail", "mail/dest", "mail/dest/new"] {
            std::os::unix::fs::chown(dir.join(d), Some(uid), Some(gid)).unwrap();
        }
        let o = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=y.ref", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl req failed");
        let d = dir.display();
        let (hop_ip, hop_port) = next_hop.split_once(':').unwrap();
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
mail_owner = postfix\nsetgid_group = postdrop\ninet_protocols = ipv4\n\
inet_interfaces = loopback-only\nmyhostname = y.ref\nmydestination =\nmynetworks = 127.0.0.0/8\n\
alias_maps =\nalias_database =\nsmtpd_tls_cert_file = {d}/cert.pem\n\
smtpd_tls_key_file = {d}/key.pem\nsmtpd_tls_security_level = may\nsmtp_tls_security_level = may\n\
smtpd_relay_restrictions = permit_mynetworks, reject\nmaillog_file_prefixes = {d}\n\
maillog_file = {d}/maillog\nvirtual_mailbox_domains = y.ref\nvirtual_mailbox_base = {d}/mail\n\
virtual_mailbox_maps = inline:{{ dest@y.ref=dest/ }}\nvirtual_uid_maps = static:{uid}\n\
virtual_gid_maps = static:{gid}\nrelay_domains = {relay_domain}\n\
transport_maps = inline:{{ {relay_domain}=smtp:[{hop_ip}]:{hop_port} }}\n"
        );
        std::fs::write(dir.join("etc/main.cf"), main_cf).unwrap();
        // Debian's master.cf without chroot, smtpd on our address only.
        let base = std::fs::read_to_string("/etc/postfix/master.cf")
            .or_else(|_| std::fs::read_to_string("/usr/share/postfix/master.cf.dist"))
            .expect("Debian's master.cf of the postfix package");
        let mut master = String::new();
        for line in base.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if line.starts_with('#') || line.starts_with(char::is_whitespace) || f.len() < 8 {
                master.push_str(line);
            } else if f[0] == "smtp" && f[1] == "inet" {
                master.push_str(&format!("{ip}:2525 inet n - n - - smtpd"));
            } else {
                let mut f = f.clone();
                f[4] = "n";
                master.push_str(&f.join(" "));
            }
            master.push('\n');
        }
        std::fs::write(dir.join("etc/master.cf"), master).unwrap();
        let p = Postfix { dir };
        let o = p.ctl("start");
        assert!(o.status.success(), "postfix start failed: {}", p.log());
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((ip, 2525)).is_err() {
            assert!(Instant::now() < deadline, "Postfix is not listening");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn ctl(&self, what: &str) -> std::process::Output {
        Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg(what)
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// Waits for a line of the log holding every one of `words`.
    fn wait_log(&self, words: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| words.iter().all(|w| l.contains(w))) {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no {words:?} in Postfix's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.ctl("stop");
    }
}

#[test]
fn a_pec_gestore_and_postfix_exchange_mail_both_ways() {
    require("openssl");
    require("python3");
    assert!(
        Path::new(POSTFIX).exists(),
        "Postfix is required by this test (scripts/test installs Debian's postfix package)"
    );
    let root = tempfile::tempdir().unwrap();
    let postfix = Postfix::start(root.path(), "127.0.0.40", "i.test", "127.0.0.41:2525");
    let routes = ["y.ref=127.0.0.40:2525".to_string()];
    let mut g = Gestore::init(root.path(), "i.test", "Gestore I", "127.0.0.41", &routes);
    g.start();
    g.add_mailbox("mario@i.test", &[]);

    // A PEC to an address outside the PEC network: the envelope goes to Postfix.
    let msg = b"From: mario@i.test\r\nTo: dest@y.ref\r\nSubject: verso Postfix\r\nMessage-ID: <pf1@client>\r\n\r\n.riga con punto\r\nfine\r\n";
    assert!(submit(&g, "mario@i.test", &["dest@y.ref"], msg));
    postfix.wait_log(&["to=<dest@y.ref>", "status=sent"]);
    let maildir = postfix.dir.join("mail/dest/new");
    let file = std::fs::read_dir(&maildir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = run(&["verify", "--json", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "posta-certificata", "{v:#}");
    assert_eq!(
        v["signature"]["valid"], true,
        "the copy Postfix delivered verifies: {v:#}"
    );

    // Postfix's client, pipelining, hands our MX ordinary mail for a PEC mailbox.
    let o = Command::new("python3")
        .args([
            "-c",
            "import smtplib; s = smtplib.SMTP('127.0.0.40', 2525); \
             s.sendmail('someone@y.ref', ['mario@i.test'], b'From: someone@y.ref\\r\\nTo: mario@i.test\\r\\n\
Subject: ordinaria da Postfix\\r\\nMessage-ID: <ord1@y.ref>\\r\\n\\r\\nciao\\r\\n'); s.quit()",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    postfix.wait_log(&["to=<mario@i.test>", "status=sent", "preso in carico"]);
    g.wait_for("mario@i.test", "the anomaly envelope", |m| {
        with_subject(m, "anomalia", "ANOMALIA MESSAGGIO: ordinaria da Postfix").len() == 1
    });

    // Our relay used BDAT: Postfix counts the commands of a session when it ends.
    g.kill();
    let line = postfix.wait_log(&["disconnect from", "127.0.0.41", "bdat=1"]);
    assert!(line.contains("starttls=1"), "{line}");
}
