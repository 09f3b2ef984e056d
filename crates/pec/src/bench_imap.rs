//! `pec bench --imap`: pec's IMAP server next to Dovecot (Debian dovecot-imapd) on the same
//! machine and the same mailbox of N messages (default 10,000), both over implicit TLS with
//! the same certificate: SELECT, FETCH of all headers, FETCH of all bodies and UID SEARCH,
//! each the median of several runs after a warm-up; then the memory an idle connection costs
//! each server (proportional set size of its processes, before and after opening them).

use crate::admin::Client;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub(crate) const IP: &str = "127.0.0.16";
pub(crate) const PEC_IMAPS: u16 = 9930;
const DOVECOT_IMAPS: u16 = 10993;
pub(crate) const USER: &str = "bench@imap.bench";
pub(crate) const PASSWORD: &str = "bench-password";
const TEMPLATE: &str = include_str!("dovecot.conf.in");
/// Timed runs per operation (after one warm-up run); the median is reported.
const RUNS: usize = 5;
/// Idle connections opened for the memory figure.
const IDLE_CONNECTIONS: usize = 200;

/// A daemon stopped with SIGTERM (Dovecot then stops its own processes).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// A minimal IMAP client: one command at a time, literals read and counted, not kept.
pub(crate) struct Imap {
    io: BufReader<TlsStream<TcpStream>>,
    tag: u32,
}

impl Imap {
    pub(crate) async fn connect(port: u16) -> Result<Imap> {
        let tls = pec_smtp::tls::client_config(false, &[]).map_err(anyhow::Error::msg)?;
        let tcp = TcpStream::connect((IP, port)).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from(IP.to_string())?;
        let s = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        let mut imap = Imap {
            io: BufReader::with_capacity(64 * 1024, s),
            tag: 0,
        };
        let mut greeting = Vec::new();
        imap.io.read_until(b'\n', &mut greeting).await?;
        if !greeting.starts_with(b"* OK") {
            bail!("unexpected greeting {}", String::from_utf8_lossy(&greeting));
        }
        imap.run(&format!("LOGIN {USER} {PASSWORD}")).await?;
        Ok(imap)
    }

    /// Reads responses up to the tagged one for `tag`; returns the bytes read.
    async fn answer(&mut self, tag: &str) -> Result<u64> {
        let mut total = 0u64;
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            let n = self.io.read_until(b'\n', &mut line).await?;
            if n == 0 {
                bail!("connection closed while waiting for {tag}");
            }
            total += n as u64;
            // A literal: `{n}` at the end of the line, then n bytes, then the line goes on.
            if line.ends_with(b"}\r\n")
                && let Some(open) = line.iter().rposition(|&b| b == b'{')
            {
                let len: u64 = std::str::from_utf8(&line[open + 1..line.len() - 3])?
                    .trim_end_matches('+')
                    .parse()?;
                let copied =
                    tokio::io::copy(&mut (&mut self.io).take(len), &mut tokio::io::sink()).await?;
                total += copied;
                continue;
            }
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                if !line[tag.len() + 1..].starts_with(b"OK") {
                    bail!("{}", String::from_utf8_lossy(&line).trim());
                }
                return Ok(total);
            }
        }
    }

    /// Runs one command; returns the bytes of its answer.
    pub(crate) async fn run(&mut self, command: &str) -> Result<u64> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.io
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.answer(&tag).await
    }

    /// APPENDs `messages` to INBOX, pipelined with LITERAL+ in batches.
    pub(crate) async fn fill(&mut self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        for batch in messages.chunks(100) {
            let mut out = Vec::new();
            let mut tags = Vec::new();
            for (flags, m) in batch {
                self.tag += 1;
                let tag = format!("b{}", self.tag);
                out.extend_from_slice(
                    format!("{tag} APPEND INBOX ({flags}) {{{}+}}\r\n", m.len()).as_bytes(),
                );
                out.extend_from_slice(m);
                out.extend_from_slice(b"\r\n");
                tags.push(tag);
            }
            self.io.get_mut().write_all(&out).await?;
            for tag in tags {
                self.answer(&tag).await?;
            }
        }
        Ok(())
    }

    /// Starts IDLE and waits for the continuation.
    async fn idle(&mut self) -> Result<()> {
        self.tag += 1;
        self.io
            .get_mut()
            .write_all(format!("b{} IDLE\r\n", self.tag).as_bytes())
            .await?;
        let mut line = Vec::new();
        self.io.read_until(b'\n', &mut line).await?;
        if !line.starts_with(b"+") {
            bail!("IDLE refused: {}", String::from_utf8_lossy(&line).trim());
        }
        Ok(())
    }
}

/// The test mailbox: PEC-like messages (a text part and a base64 attachment of 1-40 KiB),
/// every third one \Seen.
pub(crate) fn messages(n: usize) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    (0..n)
        .map(|i| {
            let size = 1024 + (i * 7919) % (39 * 1024);
            let payload: Vec<u8> = (0..size).map(|j| (i + j * 31) as u8).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
            let mut body = String::new();
            for chunk in b64.as_bytes().chunks(76) {
                body.push_str(std::str::from_utf8(chunk).unwrap_or(""));
                body.push_str("\r\n");
            }
            let msg = format!(
                "From: \"Per conto di: mittente{s}@pec.example.it\" <posta-certificata@pec.example.it>\r\n\
                 To: {USER}\r\nSubject: POSTA CERTIFICATA: pratica {i}\r\n\
                 Date: Mon, 2 Nov 2026 10:{m:02}:{sec:02} +0100\r\n\
                 Message-ID: <{i}.bench@pec.example.it>\r\nX-Trasporto: posta-certificata\r\n\
                 MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n\
                 --b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 Messaggio di posta certificata numero {i}.\r\n\
                 --b{i}\r\nContent-Type: application/octet-stream; name=\"allegato{i}.bin\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{body}--b{i}--\r\n",
                s = i % 50,
                m = (i / 60) % 60,
                sec = i % 60,
            );
            let flags = if i % 3 == 0 { "\\Seen" } else { "" };
            (flags.to_string(), msg.into_bytes())
        })
        .collect()
}

/// Proportional set size, in KiB, of `pid` and all its descendants.
fn pss_tree(pid: u32) -> u64 {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                // Field 4 (ppid) follows the parenthesised command name.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u32>().ok());
                if ppid == Some(parent) && !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        i += 1;
    }
    all.iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
                .unwrap_or_default()
                .lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn time_op(port: u16, select: bool, command: &str) -> Result<(f64, u64)> {
    let mut c = Imap::connect(port).await?;
    if select {
        c.run("SELECT INBOX").await?;
    }
    let bytes = c.run(command).await?; // warm-up
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        c.run(command).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = c.run("LOGOUT").await;
    Ok((median(times), bytes))
}

/// SELECT right after another connection changed a flag, so that no cached state of the
/// folder is current: the median in ms.
async fn time_select_after_change(port: u16) -> Result<f64> {
    let mut a = Imap::connect(port).await?;
    let mut b = Imap::connect(port).await?;
    b.run("SELECT INBOX").await?;
    a.run("SELECT INBOX").await?;
    let mut times = Vec::new();
    for i in 0..RUNS {
        let op = if i % 2 == 0 { '+' } else { '-' };
        b.run(&format!("STORE 1 {op}FLAGS.SILENT (\\Flagged)"))
            .await?;
        let t = Instant::now();
        a.run("SELECT INBOX").await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = a.run("LOGOUT").await;
    let _ = b.run("LOGOUT").await;
    Ok(median(times))
}

/// Memory per connection, in KiB: (logged in, nothing selected; INBOX selected and in IDLE).
async fn idle_cost(port: u16, pid: u32) -> Result<(f64, f64)> {
    // Warm-up: logins leave memory the allocator keeps for the next ones (password
    // hashing, TLS); the baseline is taken after it, so that it is not counted per connection.
    for _ in 0..20 {
        let mut c = Imap::connect(port).await?;
        c.run("SELECT INBOX").await?;
        c.run("LOGOUT").await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = pss_tree(pid);
    let mut conns = Vec::new();
    for _ in 0..IDLE_CONNECTIONS {
        conns.push(Imap::connect(port).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged_in = pss_tree(pid);
    for c in &mut conns {
        c.run("SELECT INBOX").await?;
        c.idle().await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idling = pss_tree(pid);
    drop(conns);
    let n = IDLE_CONNECTIONS as f64;
    Ok((
        logged_in.saturating_sub(before) as f64 / n,
        idling.saturating_sub(before) as f64 / n,
    ))
}

pub fn run(count: usize, write: Option<&Path>) -> Result<()> {
    if !crate::bench::running_as_root() {
        bail!("pec bench --imap starts Dovecot, which must run as root (it switches to nobody)");
    }
    if !Path::new("/usr/sbin/dovecot").exists() {
        bail!("Dovecot is not installed: apt-get install dovecot-imapd (scripts/test does it)");
    }
    let root = tempfile::tempdir()?;
    // Dovecot's processes run as nobody and must reach their files.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let data = root.path().join("pec");
    crate::init::run(&crate::init::InitOptions {
        data: &data,
        domain: "imap.bench",
        name: "Bench IMAP",
        listen_ip: IP,
        standard_ports: false,
        routes: &[],
        revocation: Default::default(),
        scanners: Default::default(),
    })?;
    let mut pec = crate::bench_gestori::start(&data)?;
    Client::new(&data)?.json(
        "POST",
        "/v1/mailboxes",
        Some(&serde_json::json!({
            "address": USER, "password": PASSWORD, "quota_bytes": 10u64 << 30
        })),
    )?;

    let dv = root.path().join("dovecot");
    let home = dv.join("mail").join(USER);
    std::fs::create_dir_all(dv.join("run"))?;
    std::fs::create_dir_all(&home)?;
    std::os::unix::fs::chown(&home, Some(65534), Some(65534))?;
    std::fs::write(
        dv.join("users"),
        format!(
            "{USER}:{{PLAIN}}{PASSWORD}:65534:65534::{}\n",
            home.display()
        ),
    )?;
    let conf = TEMPLATE
        .replace("@DIR@", &dv.display().to_string())
        .replace("@IP@", IP)
        .replace("@CERT@", &data.join("pki/tls.pem").display().to_string())
        .replace("@KEY@", &data.join("pki/tls.key").display().to_string())
        .replace("@QUOTA_KB@", &(10u64 << 20).to_string());
    std::fs::write(dv.join("dovecot.conf"), conf)?;
    let dovecot = Daemon(
        Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dv.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dv.join("stderr.log"))?)
            .spawn()
            .context("cannot start dovecot")?,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mail = messages(count);
    let total: usize = mail.iter().map(|m| m.1.len()).sum();
    rt.block_on(async {
        for _ in 0..100 {
            if TcpStream::connect((IP, DOVECOT_IMAPS)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "appending {count} messages ({:.1} MB) to each server...",
            total as f64 / 1e6
        );
        for (name, port) in [("Dovecot", DOVECOT_IMAPS), ("pec", PEC_IMAPS)] {
            let t = Instant::now();
            let mut c = Imap::connect(port).await?;
            c.fill(&mail).await?;
            c.run("LOGOUT").await.ok();
            eprintln!("  {name}: {:.1} s", t.elapsed().as_secs_f64());
        }
        anyhow::Ok(())
    })?;
    drop(mail);
    // A fresh pec process, so that memory freed by the fill does not hide what connections
    // cost; Dovecot gives every connection its own process anyway.
    drop(pec);
    pec = crate::bench_gestori::start(&data)?;
    rt.block_on(async {
        eprintln!("opening {IDLE_CONNECTIONS} idle connections to each server...");
        let (dl, di) = idle_cost(DOVECOT_IMAPS, dovecot.0.id()).await?;
        let (pl, pi) = idle_cost(PEC_IMAPS, pec.0.id()).await?;
        eprintln!("  logged in: Dovecot {dl:.0} KiB, pec {pl:.0} KiB per connection");
        eprintln!("  INBOX selected, IDLE: Dovecot {di:.0} KiB, pec {pi:.0} KiB per connection");
        let subject = format!("UID SEARCH SUBJECT \"pratica {}\"", count * 3 / 4);
        let ops: [(&str, bool, &str); 5] = [
            ("SELECT INBOX again (folder unchanged)", false, "SELECT INBOX"),
            (
                "FETCH 1:* all headers",
                true,
                "FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])",
            ),
            ("FETCH 1:* full bodies", true, "FETCH 1:* (BODY.PEEK[])"),
            (
                "UID SEARCH a header (SUBJECT)",
                true,
                &subject,
            ),
            ("UID SEARCH flags (UNSEEN)", true, "UID SEARCH UNSEEN"),
        ];
        let mut rows = Vec::new();
        let d = time_select_after_change(DOVECOT_IMAPS).await?;
        let p = time_select_after_change(PEC_IMAPS).await?;
        eprintln!("  SELECT after a change: Dovecot {d:.1} ms, pec {p:.1} ms, {:.2}×", d / p);
        rows.push(("SELECT INBOX after another client changed a flag", d, p, 0, 0));
        for (label, select, command) in ops {
            let (d, db) = time_op(DOVECOT_IMAPS, select, command).await?;
            let (p, pb) = time_op(PEC_IMAPS, select, command).await?;
            eprintln!(
                "  {label}: Dovecot {d:.1} ms ({db} B), pec {p:.1} ms ({pb} B), {:.2}×",
                d / p
            );
            rows.push((label, d, p, db, pb));
        }
        let mut md = format!(
            "\n## IMAP against Dovecot ({})\n\n\
             Machine: {} cores. Command: `pec bench --imap --messages {count}` (release build). \
             Dovecot {} (Debian dovecot-imapd) and `pec serve` (embedded store) on {IP}, both \
             over implicit TLS with the same certificate; the same {count} messages \
             ({:.1} MB, multipart with a 1-40 KiB attachment, a third \\Seen) appended to each \
             over IMAP. Each figure is the median of {RUNS} runs on one connection after a \
             warm-up run; ratio = Dovecot's time ÷ pec's (≥ 1.0 means pec is as fast or faster).\n\n\
             | operation | Dovecot ms | pec ms | ratio |\n|---|---:|---:|---:|\n",
            chrono::Utc::now().format("%Y-%m-%d"),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            dovecot_version(),
            total as f64 / 1e6,
        );
        for (label, d, p, _, _) in &rows {
            md.push_str(&format!("| {label} | {d:.1} | {p:.1} | {:.2}× |\n", d / p));
        }
        md.push_str(&format!(
            "\nMemory per connection ({IDLE_CONNECTIONS} connections; proportional set size of \
             the server's processes before and after, so shared libraries count once):\n\n\
             | state | Dovecot KiB | pec KiB |\n|---|---:|---:|\n\
             | logged in | {dl:.0} | {pl:.0} |\n\
             | INBOX ({count} messages) selected, in IDLE | {di:.0} | {pi:.0} |\n\n\
             Goal: ≥ 1.0× Dovecot on each operation and ≤ 200 KB per idle connection.\n"
        ));
        println!("{md}");
        if let Some(path) = write {
            let mut text = std::fs::read_to_string(path).unwrap_or_default();
            text.push_str(&md);
            std::fs::write(path, text)?;
        }
        anyhow::Ok(())
    })?;
    drop(dovecot);
    drop(pec);
    Ok(())
}

fn dovecot_version() -> String {
    Command::new("/usr/sbin/dovecot")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
