//! `pec bench --gestori`: two real gestori on loopback (A on 127.0.0.8, B on 127.0.0.9), N
//! concurrent submitters on A for T seconds; certified transactions per second measured from
//! submission to the delivery receipt stored in the sender's mailbox, p50 / p99 latency, and
//! OpenSSL's RSA-2048 sign/s in the same run. Ceiling: cores × sign/s ÷ 4 signatures per
//! transaction (acceptance, envelope, presa in carico, delivery receipt). Machine CPU per
//! transaction is set beside the CPU Postfix spends to relay one plain message between two
//! instances in the same run (`bench_postfix`), when Postfix is installed.

use crate::admin::{Client, segment};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start(dir: &Path) -> Result<Proc> {
    let exe = std::env::current_exe()?;
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let child = Command::new(exe)
        .args(["serve", "--data"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let p = Proc(child);
    let c = Client::new(dir)?;
    for _ in 0..300 {
        if c.json("GET", "/v1/status", None).is_ok() {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the gestore in {} did not start", dir.display())
}

async fn expect(r: &mut (impl AsyncBufReadExt + Unpin), code: &str) -> Result<()> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            bail!("connection closed, expected {code}");
        }
        if !line.starts_with(code) {
            bail!("expected {code}, got {}", line.trim());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// Where a submitter sends: an implicit-TLS submission port, with or without AUTH PLAIN.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    pub addr: &'static str,
    pub server_name: &'static str,
    pub auth: bool,
}

/// Gestore A's submissions port.
const GESTORE_A: Target = Target {
    addr: "127.0.0.8:4650",
    server_name: "mx.a.bench",
    auth: true,
};

/// Sends one small message after another on one connection until `until`; records each
/// subject's send time in `sent` when given. Returns how many were answered 250.
pub(crate) async fn submitter(
    target: Target,
    user: String,
    rcpt: String,
    until: Instant,
    sent: Option<Sent>,
) -> Result<u64> {
    let tls = pec_smtp::tls::client_config(false, &[]).map_err(anyhow::Error::msg)?;
    let tcp = tokio::net::TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from(target.server_name)?;
    let s = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    let mut io = BufReader::new(s);
    expect(&mut io, "220").await?;
    io.get_mut().write_all(b"EHLO bench\r\n").await?;
    expect(&mut io, "250").await?;
    if target.auth {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0bench-password"));
        io.get_mut()
            .write_all(format!("AUTH PLAIN {auth}\r\n").as_bytes())
            .await?;
        expect(&mut io, "235").await?;
    }
    let mut n = 0u64;
    while Instant::now() < until {
        let subject = format!("bench {user} {n}");
        let msg = format!(
            "From: {user}\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <{n}.{user}>\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nBuongiorno,\r\nin allegato la documentazione richiesta per la pratica {n}.\r\nCordiali saluti\r\n.\r\n",
            date = chrono::Utc::now().to_rfc2822()
        );
        io.get_mut()
            .write_all(format!("MAIL FROM:<{user}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes())
            .await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "250").await?;
        expect(&mut io, "354").await?;
        if let Some(sent) = &sent {
            sent.lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .insert(format!("CONSEGNA: {subject}"), Instant::now());
        }
        io.get_mut().write_all(msg.as_bytes()).await?;
        expect(&mut io, "250").await?;
        n += 1;
    }
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    Ok(n)
}

/// CPU time used on the whole machine and by this process, in clock ticks (`/proc/stat` and
/// `/proc/self/stat` both count in USER_HZ).
pub(crate) struct CpuTicks {
    system: u64,
    own: u64,
}

impl CpuTicks {
    pub(crate) fn now() -> Result<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        // cpu  user nice system idle iowait irq softirq steal guest guest_nice: busy is
        // everything but idle and iowait (guest time is already inside user).
        let v: Vec<u64> = stat
            .lines()
            .next()
            .context("empty /proc/stat")?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let system = v.iter().sum::<u64>() - v.get(3).unwrap_or(&0) - v.get(4).unwrap_or(&0);
        let me = std::fs::read_to_string("/proc/self/stat")?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let after = me.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        let f: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        Ok(CpuTicks {
            system,
            own: f.iter().sum(),
        })
    }

    /// Seconds of CPU the rest of the machine used since `self` (this process excluded).
    pub(crate) fn others_since(&self) -> Result<f64> {
        let now = CpuTicks::now()?;
        let ticks = (now.system - self.system).saturating_sub(now.own - self.own);
        Ok(ticks as f64 / 100.0)
    }
}

/// Read and write system calls (`/proc/PID/io`: syscr + syscw) and context switches (every
/// thread's voluntary and involuntary ones) of a process so far. Unlike CPU time, these
/// counts do not move with the machine's speed from one run to the next.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts {
    pub syscalls: u64,
    pub switches: u64,
}

impl Counts {
    pub(crate) fn of(pid: u32) -> Counts {
        let field = |text: &str, names: &[&str]| -> u64 {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(k, _)| names.contains(&k.trim()))
                .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
                .sum()
        };
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let mut switches = 0;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
                switches += field(
                    &status,
                    &["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"],
                );
            }
        }
        Counts {
            syscalls: field(&io, &["syscr", "syscw"]),
            switches,
        }
    }

    fn since(self, before: Counts) -> Counts {
        Counts {
            syscalls: self.syscalls.saturating_sub(before.syscalls),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}

/// What one run of the two gestori measured.
pub(crate) struct Figures {
    /// Submissions answered 250.
    pub total: u64,
    /// Transactions whose delivery receipt was stored.
    pub done: usize,
    /// Certified transactions per second.
    pub tps: f64,
    /// Latency percentiles, in milliseconds.
    pub p50: f64,
    pub p99: f64,
    /// CPU used by everything but the load generator (both gestori), in milliseconds per
    /// completed transaction.
    pub cpu_ms: f64,
    /// System calls and context switches of gestore A and of B, per completed transaction.
    pub per_tx: [(f64, f64); 2],
}

pub fn run(seconds: u64, clients: usize, write: Option<&Path>) -> Result<()> {
    let f = measure(seconds, clients, &Default::default())?;
    let reference = match crate::bench_postfix::unavailable() {
        None => Some(crate::bench_postfix::measure(seconds, clients)?),
        Some(why) => {
            eprintln!("Postfix reference skipped: {why}");
            None
        }
    };
    eprintln!("measuring openssl speed rsa2048...");
    let sign = crate::bench::openssl_rsa2048(3)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let ceiling = cores * sign / 4.0;
    let date = chrono::Utc::now().format("%Y-%m-%d");
    let postfix = match &reference {
        Some(r) => format!(
            "| Postfix {v} reference: plain messages relayed X → Y and delivered | {n} |\n\
| Postfix messages per second | {rate:.1} |\n\
| Postfix CPU per message (machine, load generator excluded) | {cpu:.2} ms |\n\
| one certified transaction costs, in Postfix relayed messages | {ratio:.2} |\n",
            v = r.version,
            n = r.delivered,
            rate = r.rate,
            cpu = r.cpu_ms,
            ratio = f.cpu_ms / r.cpu_ms,
        ),
        None => String::new(),
    };
    let section = format!(
        "\n## Two gestori on loopback ({date})\n\n\
Machine: {cores:.0} cores. Command: `pec bench --gestori --seconds {seconds} --clients {clients}` (release build). \
Gestore A on 127.0.0.8 and B on 127.0.0.9, each a `pec serve` process with the embedded store (SQLite, \
synchronous=FULL); {clients} submitters on one TLS connection each; a transaction counts when its delivery \
receipt is stored in the sender's mailbox at A (acceptance, envelope, presa in carico and delivery receipt \
signed: 4 signatures). CPU is the whole machine's busy time from the first submission to the last receipt, \
less the load generator's own.{reference}\n\n\
| measurement | value |\n|---|---:|\n\
| submissions accepted | {total} |\n\
| transactions completed (delivery receipt stored) | {done} |\n\
| certified transactions per second | {tps:.1} |\n\
| latency p50 (submission → receipt stored) | {p50:.0} ms |\n\
| latency p99 | {p99:.0} ms |\n\
| CPU per certified transaction (both gestori) | {cpu:.2} ms |\n\
| read/write system calls per transaction, A / B | {sa:.0} / {sb:.0} |\n\
| context switches per transaction, A / B | {wa:.1} / {wb:.1} |\n\
{postfix}\
| `openssl speed rsa2048` sign/s (one core) | {sign:.0} |\n\
| ceiling: cores × sign/s ÷ 4 | {ceiling:.0} |\n\
| share of the ceiling | {share:.1}% |\n\n\
Goal: at least 60% of the ceiling: {verdict}.\n",
        reference = if reference.is_some() {
            " Postfix reference, same run and same submitters: two Postfix instances (X on \
127.0.0.17, Y on 127.0.0.18, Debian's master.cf without chroot, durable queue), each message \
submitted to X over implicit TLS, relayed to Y over STARTTLS and delivered into a maildir; \
CPU measured the same way until Y has delivered every message."
        } else {
            ""
        },
        total = f.total,
        done = f.done,
        tps = f.tps,
        p50 = f.p50,
        p99 = f.p99,
        cpu = f.cpu_ms,
        sa = f.per_tx[0].0,
        sb = f.per_tx[1].0,
        wa = f.per_tx[0].1,
        wb = f.per_tx[1].1,
        share = f.tps / ceiling * 100.0,
        verdict = if f.tps >= 0.6 * ceiling {
            "met"
        } else {
            "not met"
        },
    );
    print!("{section}");
    if let Some(w) = write {
        crate::bench::append_section(w, &section)?;
    }
    Ok(())
}

/// Runs two gestori (both with `scanners`) under load for `seconds`.
pub(crate) fn measure(
    seconds: u64,
    clients: usize,
    scanners: &crate::init::Scanners,
) -> Result<Figures> {
    let root = tempfile::tempdir()?;
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let init = |dir: &Path, domain: &str, name: &str, ip: &str, route: String| {
        crate::init::run(&crate::init::InitOptions {
            data: dir,
            domain,
            name,
            listen_ip: ip,
            standard_ports: false,
            routes: &[route],
            revocation: Default::default(),
            scanners: scanners.clone(),
        })
    };
    init(
        &a,
        "a.bench",
        "Bench A",
        "127.0.0.8",
        "b.bench=127.0.0.9:2525".into(),
    )?;
    init(
        &b,
        "b.bench",
        "Bench B",
        "127.0.0.9",
        "a.bench=127.0.0.8:2525".into(),
    )?;
    // The default per-address rate limit (6000 messages a minute) is below what one
    // loopback client sends here; lift it so the benchmark measures the gestori.
    for dir in [&a, &b] {
        let toml = dir.join("pec.toml");
        let mut text = std::fs::read_to_string(&toml)?;
        text.push_str("\n[limits]\nmessages_per_minute_per_ip = 10000000\n");
        std::fs::write(&toml, text)?;
    }
    for (x, y) in [(&a, &b), (&b, &a)] {
        let f = x.join("peer.ldif");
        std::fs::write(&f, crate::index::own_ldif(y)?)?;
        crate::index::import(x, &f)?;
    }
    let pa = start(&a)?;
    let pb = start(&b)?;
    let ca = Client::new(&a)?;
    let cb = Client::new(&b)?;
    cb.json(
        "POST",
        "/v1/mailboxes",
        Some(&serde_json::json!({"address": "dest@b.bench", "password": "bench-password"})),
    )?;
    let users: Vec<String> = (0..clients).map(|i| format!("s{i}@a.bench")).collect();
    for u in &users {
        ca.json(
            "POST",
            "/v1/mailboxes",
            Some(&serde_json::json!({"address": u, "password": "bench-password"})),
        )?;
    }
    eprintln!("two gestori up; {clients} submitters for {seconds} s...");
    let sent: Sent = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pids = [pa.0.id(), pb.0.id()];
    let counts = pids.map(Counts::of);
    let cpu = CpuTicks::now()?;
    let start_t = Instant::now();
    let until = start_t + Duration::from_secs(seconds);
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            rt.spawn(submitter(
                GESTORE_A,
                u.clone(),
                "dest@b.bench".into(),
                until,
                Some(sent.clone()),
            ))
        })
        .collect();
    // Poll the senders' mailboxes for delivery receipts while the load runs and after.
    let mut latencies: Vec<f64> = Vec::new();
    let mut last_receipt = start_t;
    let mut seen: HashMap<String, u32> = users.iter().map(|u| (u.clone(), 0)).collect();
    let drain = until + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for u in &users {
            let since = seen[u];
            let list = ca.json(
                "GET",
                &format!("/v1/mailboxes/{}/messages?after_uid={since}", segment(u)),
                None,
            )?;
            for m in list.as_array().into_iter().flatten() {
                let uid = m["uid"].as_u64().unwrap_or(0) as u32;
                if uid <= since || m["kind"] != "avvenuta-consegna" {
                    continue;
                }
                seen.insert(u.clone(), uid.max(seen[u]));
                let subject = m["subject"].as_str().unwrap_or("");
                if let Some(t0) = sent
                    .lock()
                    .map_err(|_| anyhow::anyhow!("lock"))?
                    .get(subject)
                {
                    latencies.push(t0.elapsed().as_secs_f64());
                    last_receipt = Instant::now();
                }
            }
        }
        let submitted = sent.lock().map_err(|_| anyhow::anyhow!("lock"))?.len();
        if Instant::now() > until && latencies.len() >= submitted {
            break;
        }
        if Instant::now() > drain {
            eprintln!(
                "warning: {} receipts missing after the drain",
                submitted - latencies.len()
            );
            break;
        }
    }
    let cpu_s = cpu.others_since()?;
    let done = latencies.len().max(1) as f64;
    let per_tx = [0, 1].map(|i| {
        let c = Counts::of(pids[i]).since(counts[i]);
        (c.syscalls as f64 / done, c.switches as f64 / done)
    });
    let mut total = 0;
    for t in tasks {
        total += rt.block_on(t).context("submitter panicked")??;
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    let elapsed = (last_receipt - start_t).as_secs_f64();
    let tps = latencies.len() as f64 / elapsed;
    Ok(Figures {
        total,
        done: latencies.len(),
        tps,
        p50: pct(0.5),
        p99: pct(0.99),
        cpu_ms: cpu_s * 1000.0 / latencies.len().max(1) as f64,
        per_tx,
    })
}
