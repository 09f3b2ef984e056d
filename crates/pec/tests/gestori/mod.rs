//! End-to-end harness: real `pec` processes on loopback addresses, driven with curl (a real,
//! independent SMTP client), checked with the admin CLI and OpenSSL, plus an SMTP sink that
//! plays an ordinary mail server outside the PEC network.

#![allow(dead_code, clippy::unwrap_used)]

pub mod dovecot;
pub mod web;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "password-123";

pub fn pec() -> &'static str {
    env!("CARGO_BIN_EXE_pec")
}

/// Fails with a clear sentence when a tool the suite needs is missing.
pub fn require(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is required by the end-to-end suite (scripts/test installs it)"
    );
}

pub fn run(args: &[&str]) -> std::process::Output {
    Command::new(pec()).args(args).output().expect("run pec")
}

pub fn run_ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "pec {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// One gestore: its data directory and its process.
pub struct Gestore {
    pub dir: PathBuf,
    pub ip: String,
    pub domain: String,
    child: Option<Child>,
}

impl Gestore {
    /// `pec init` for `domain` on `ip`, with static routes.
    pub fn init(root: &Path, domain: &str, name: &str, ip: &str, routes: &[String]) -> Gestore {
        Gestore::init_with(root, domain, name, ip, routes, &[])
    }

    /// The same, with more `pec init` arguments.
    pub fn init_with(
        root: &Path,
        domain: &str,
        name: &str,
        ip: &str,
        routes: &[String],
        extra: &[&str],
    ) -> Gestore {
        let dir = root.join(domain);
        let mut args = vec![
            "init".to_string(),
            "--data".into(),
            dir.display().to_string(),
            "--domain".into(),
            domain.into(),
            "--name".into(),
            name.into(),
            "--listen-ip".into(),
            ip.into(),
        ];
        for r in routes {
            args.push("--route".into());
            args.push(r.clone());
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&a);
        let mut cfg = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("pec.toml"))
            .unwrap();
        writeln!(cfg, "\n[dev]\nclock_control = true").unwrap();
        Gestore {
            dir,
            ip: ip.into(),
            domain: domain.into(),
            child: None,
        }
    }

    /// A handle on a gestore started elsewhere (for clients in other threads).
    pub fn shadow(dir: &Path, ip: &str, domain: &str) -> Gestore {
        Gestore {
            dir: dir.to_path_buf(),
            ip: ip.into(),
            domain: domain.into(),
            child: None,
        }
    }

    pub fn data(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Exchanges Indice entries with `other`.
    pub fn peer(&self, other: &Gestore) {
        let ldif = run_ok(&["index", "export", "--data", other.data()]);
        let f = self.dir.join(format!("peer-{}.ldif", other.domain));
        std::fs::write(&f, ldif).unwrap();
        run_ok(&[
            "index",
            "import",
            "--data",
            self.data(),
            f.to_str().unwrap(),
        ]);
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("serve.log")).unwrap();
        let child = Command::new(pec())
            .args(["serve", "--data", self.data()])
            .env("PEC_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if run(&["admin", "--data", self.data(), "status"])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "gestore {} did not start: {}",
            self.domain,
            self.server_log()
        );
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    pub fn add_mailbox(&self, address: &str, extra: &[&str]) {
        let pw = self.dir.join("pw.txt");
        std::fs::write(&pw, PASSWORD).unwrap();
        let mut args = vec![
            "admin",
            "--data",
            self.data(),
            "mailbox",
            "add",
            address,
            "--password-file",
            pw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
    }

    /// The INBOX of a mailbox, as `pec admin messages --json` lists it.
    pub fn messages(&self, address: &str) -> Vec<Value> {
        self.all_messages(address)
            .into_iter()
            .filter(|m| m["folder"] == "INBOX")
            .collect()
    }

    /// Every message of a mailbox, all folders.
    pub fn all_messages(&self, address: &str) -> Vec<Value> {
        let out = run_ok(&[
            "admin",
            "--data",
            self.data(),
            "messages",
            address,
            "--json",
        ]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn message(&self, address: &str, uid: u64) -> Vec<u8> {
        let o = run(&[
            "admin",
            "--data",
            self.data(),
            "message",
            address,
            &uid.to_string(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    /// Waits until `address` holds messages satisfying `pred`.
    pub fn wait_for(
        &self,
        address: &str,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let m = self.messages(address);
            if pred(&m) {
                return m;
            }
            if Instant::now() > deadline {
                panic!(
                    "{address}: timed out waiting for {what}; it holds {m:#?}\nserver log:\n{}",
                    self.server_log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self, id: Option<&str>) -> Vec<Value> {
        let mut args = vec!["admin", "--data", self.data(), "log", "--json"];
        if let Some(i) = id {
            args.extend(["--id", i]);
        }
        let out = run_ok(&args);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn advance(&self, what: &str) {
        run_ok(&["admin", "--data", self.data(), "clock", what]);
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("pki/ca.pem")
    }
}

impl Drop for Gestore {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn count(m: &[Value], kind: &str) -> usize {
    m.iter().filter(|x| x["kind"] == kind).count()
}

pub fn with_subject<'a>(m: &'a [Value], kind: &str, subject: &str) -> Vec<&'a Value> {
    m.iter()
        .filter(|x| x["kind"] == kind && x["subject"].as_str() == Some(subject))
        .collect()
}

/// Submits `message` with curl over STARTTLS + AUTH; true when the server answered 250.
pub fn submit(g: &Gestore, user: &str, rcpts: &[&str], message: &[u8]) -> bool {
    submit_as(g, user, PASSWORD, rcpts, message).0
}

/// The same with a password, returning curl's success and its transcript (`-v`).
pub fn submit_as(
    g: &Gestore,
    user: &str,
    password: &str,
    rcpts: &[&str],
    message: &[u8],
) -> (bool, String) {
    let file = g.dir.join(format!(
        "submit-{}.eml",
        std::process::id() as u64 * 1000 + rand_suffix()
    ));
    std::fs::write(&file, message).unwrap();
    let mut c = Command::new("curl");
    c.args([
        "-sSv",
        "--ssl-reqd",
        "--cacert",
        g.ca().to_str().unwrap(),
        "--connect-to",
        &format!("mx.{}:5870:{}:5870", g.domain, g.ip),
        &format!("smtp://mx.{}:5870", g.domain),
        "--mail-from",
        user,
        "--user",
        &format!("{user}:{password}"),
        "--upload-file",
        file.to_str().unwrap(),
        "--max-time",
        "60",
    ]);
    for r in rcpts {
        c.args(["--mail-rcpt", r]);
    }
    let out = c.output().unwrap();
    let _ = std::fs::remove_file(&file);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Sends `message` to an MX without TLS or AUTH, as an ordinary mail server would; returns
/// curl's exit status and stderr.
pub fn send_plain(
    ip: &str,
    port: u16,
    from: &str,
    rcpts: &[&str],
    message: &[u8],
    dir: &Path,
) -> (bool, String) {
    let file = dir.join(format!("plain-{}.eml", rand_suffix()));
    std::fs::write(&file, message).unwrap();
    let mut c = Command::new("curl");
    c.args([
        "-sSv",
        &format!("smtp://{ip}:{port}"),
        "--mail-from",
        from,
        "--upload-file",
        file.to_str().unwrap(),
        "--max-time",
        "60",
    ]);
    for r in rcpts {
        c.args(["--mail-rcpt", r]);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs `openssl smime -verify` on a message with the given CA files; true when it verifies.
pub fn openssl_verifies(message: &[u8], cas: &[PathBuf], dir: &Path) -> bool {
    let n = rand_suffix();
    let file = dir.join(format!("verify-{n}.eml"));
    let bundle = dir.join(format!("cas-{n}.pem"));
    std::fs::write(&file, message).unwrap();
    let mut all = Vec::new();
    for c in cas {
        all.extend(std::fs::read(c).unwrap());
    }
    std::fs::write(&bundle, all).unwrap();
    let o = Command::new("openssl")
        .args(["smime", "-verify", "-purpose", "smimesign", "-in"])
        .arg(&file)
        .arg("-CAfile")
        .arg(&bundle)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    o.status.success()
}

/// What the sink received: (RCPT TO list, message bytes) per transaction.
pub type Received = Arc<Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

/// An ordinary SMTP server outside the PEC network that keeps what it receives.
pub struct Sink {
    pub port: u16,
    pub received: Received,
}

impl Sink {
    pub fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let received: Received = Arc::default();
        let r = received.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || {
                    let mut w = s.try_clone().unwrap();
                    let mut rd = BufReader::new(s);
                    let _ = w.write_all(b"220 sink ESMTP\r\n");
                    let mut rcpts = Vec::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if rd.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let up = line.to_ascii_uppercase();
                        if up.starts_with("EHLO") || up.starts_with("HELO") {
                            let _ = w.write_all(b"250-sink\r\n250 8BITMIME\r\n");
                        } else if up.starts_with("RCPT TO:") {
                            rcpts.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                            let _ = w.write_all(b"250 ok\r\n");
                        } else if up.starts_with("DATA") {
                            let _ = w.write_all(b"354 go\r\n");
                            let mut data = Vec::new();
                            loop {
                                let mut l = Vec::new();
                                if rd.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == b".\r\n" {
                                    break;
                                }
                                let l = l.strip_prefix(b".").map(<[u8]>::to_vec).unwrap_or(l);
                                data.extend_from_slice(&l);
                            }
                            r.lock().unwrap().push((std::mem::take(&mut rcpts), data));
                            let _ = w.write_all(b"250 queued\r\n");
                        } else if up.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n");
                            return;
                        } else {
                            let _ = w.write_all(b"250 ok\r\n");
                        }
                    }
                });
            }
        });
        Sink { port, received }
    }
}

/// The header value `name` of a raw message (first occurrence, unfolded).
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = &mut out {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim());
                continue;
            }
            return out;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            out = Some(v.trim().to_string());
        }
    }
    out
}

/// A web server for CRLs: Python's http.server over a directory, stopped on drop.
pub struct CrlServer(std::process::Child);

impl CrlServer {
    pub fn start(dir: &std::path::Path, ip: &str, port: u16) -> CrlServer {
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", ip])
            .arg("--directory")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the CRL web server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        CrlServer(child)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pec verify --json --data` of `g` on `raw`.
pub fn verify_json(raw: &[u8], g: &Gestore) -> Value {
    use std::io::Write as _;
    let mut c = std::process::Command::new(pec())
        .args(["verify", "--json", "--data", g.data(), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(raw).unwrap();
    let o = c.wait_with_output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A file of `g`'s development PKI.
pub fn pki_file(g: &Gestore, name: &str) -> Vec<u8> {
    std::fs::read(g.dir.join("pki").join(name)).unwrap()
}

/// The development CA `pec init` made for `g`, with its key.
pub fn dev_ca(g: &Gestore) -> pec_message::pki::Issued {
    pec_message::pki::Issued {
        cert: openssl::x509::X509::from_pem(&pki_file(g, "ca.pem")).unwrap(),
        key: openssl::pkey::PKey::private_key_from_pem(&pki_file(g, "ca.key")).unwrap(),
    }
}

/// Replaces the CRL the web server offers at `path` in one step.
pub fn publish(path: &std::path::Path, crl: &openssl::x509::X509Crl) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, crl.to_der().unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `g`'s server log without terminal colours.
pub fn plain_log(g: &Gestore) -> String {
    let log = g.server_log();
    let mut out = String::with_capacity(log.len());
    let mut rest = log.as_str();
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = rest.find('m').map_or("", |m| &rest[m + 1..]);
    }
    out.push_str(rest);
    out
}

/// `pec admin crl --refresh --json`: every point fetched again now, then their state.
pub fn refresh_crls(g: &Gestore) -> Value {
    let out = run_ok(&["admin", "--data", g.data(), "crl", "--refresh", "--json"]);
    serde_json::from_str(&out).unwrap()
}

/// Waits until `g`'s server log holds `needle`.
pub fn wait_log(g: &Gestore, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !plain_log(g).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}: no {needle:?} in the server log:\n{}",
            g.domain,
            g.server_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// OpenSSL's OCSP responder (`openssl ocsp -port`) for the CA whose `ca.pem` and `ca.key`
/// are in `pki`, answering from the OpenSSL index file `index` (signed by the CA itself,
/// responses valid an hour); it listens on every address. Stopped on drop.
pub struct OcspResponder(Child, std::process::ChildStdout);

impl OcspResponder {
    pub fn start(pki: &Path, index: &Path, port: u16) -> OcspResponder {
        let mut child = Command::new("openssl")
            .args(["ocsp", "-port", &port.to_string(), "-index"])
            .arg(index)
            .arg("-CA")
            .arg(pki.join("ca.pem"))
            .arg("-rsigner")
            .arg(pki.join("ca.pem"))
            .arg("-rkey")
            .arg(pki.join("ca.key"))
            .args(["-nmin", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Ready once it prints "ACCEPT [::]:PORT PID=...". Not probed with a connection:
        // OpenSSL 3.0's responder stops answering after a connection closed without a
        // request.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("ACCEPT"),
            "the OCSP responder did not start: {line}"
        );
        OcspResponder(child, out.into_inner())
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
