//! The Postfix reference of `pec bench --gestori`: two Postfix instances on loopback (X on
//! 127.0.0.17, Y on 127.0.0.18) moving plain mail the way two gestori move a PEC message,
//! without the PEC work. A submitter hands a message to X over implicit TLS, X queues it
//! (fsync) and relays it over STARTTLS to Y, Y queues it and delivers it into a maildir.
//! Messages per second and machine CPU per message, measured in the same run as the gestori.

use crate::bench_gestori::{CpuTicks, Target, submitter};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const POSTFIX: &str = "/usr/sbin/postfix";

/// X's submissions port (implicit TLS, loopback clients may relay without AUTH).
const X: Target = Target {
    addr: "127.0.0.17:4650",
    server_name: "x.ref",
    auth: false,
};

/// What the reference measured.
pub(crate) struct Reference {
    /// Postfix's `mail_version`.
    pub version: String,
    /// Messages delivered into Y's maildir.
    pub delivered: usize,
    /// Delivered messages per second.
    pub rate: f64,
    /// Machine CPU (the load generator excluded) per delivered message, in milliseconds.
    pub cpu_ms: f64,
}

/// Why the reference cannot run here, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    if !Path::new(POSTFIX).exists() {
        return Some("Postfix is not installed (apt-get install postfix)".into());
    }
    if !crate::bench::running_as_root() {
        return Some("Postfix instances must be started as root".into());
    }
    None
}

/// One Postfix instance, stopped (through its own configuration) when dropped.
struct Instance {
    config: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .output();
    }
}

fn id(flag: &str) -> Result<u32> {
    let out = Command::new("id").args([flag, "postfix"]).output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the postfix user does not exist (is the postfix package installed?)")
}

/// main.cf for instance `name` listening on `ip`: durable queue, TLS offered with a
/// self-signed certificate, loopback clients trusted, logging to a file in its directory.
fn main_cf(dir: &Path, root: &Path, name: &str) -> String {
    let d = dir.display();
    let r = root.display();
    format!(
        "compatibility_level = 3.6\n\
queue_directory = {d}/queue\n\
data_directory = {d}/data\n\
mail_owner = postfix\n\
setgid_group = postdrop\n\
inet_protocols = ipv4\n\
inet_interfaces = loopback-only\n\
myhostname = {name}.ref\n\
mydestination =\n\
mynetworks = 127.0.0.0/8\n\
alias_maps =\n\
alias_database =\n\
smtpd_tls_cert_file = {r}/cert.pem\n\
smtpd_tls_key_file = {r}/key.pem\n\
smtpd_tls_security_level = may\n\
smtp_tls_security_level = encrypt\n\
smtpd_relay_restrictions = permit_mynetworks, reject\n\
maillog_file_prefixes = {r}\n\
maillog_file = {d}/maillog\n"
    )
}

/// Debian's master.cf (`base`) without chroot, with `smtpd` on `ip`:2525 (and implicit-TLS
/// submissions on `ip`:4650 when `submissions`).
fn master_cf(base: &str, ip: &str, submissions: bool) -> String {
    let mut out = String::new();
    for line in base.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('#') || line.starts_with(char::is_whitespace) || fields.len() < 8 {
            out.push_str(line);
        } else if fields[0] == "smtp" && fields[1] == "inet" {
            out.push_str(&format!("{ip}:2525 inet n - n - - smtpd"));
            if submissions {
                out.push_str(&format!(
                    "\n{ip}:4650 inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
                ));
            }
        } else {
            let mut f = fields.clone();
            f[4] = "n";
            out.push_str(&f.join(" "));
        }
        out.push('\n');
    }
    out
}

fn start(config: &Path) -> Result<Instance> {
    let out = Command::new(POSTFIX)
        .arg("-c")
        .arg(config)
        .arg("start")
        .output()
        .context("cannot run postfix")?;
    let instance = Instance {
        config: config.to_path_buf(),
    };
    if !out.status.success() {
        let log = config.parent().map(|d| d.join("maillog"));
        let tail = log
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default();
        bail!(
            "postfix -c {} start failed ({}): {}",
            config.display(),
            out.status,
            tail.lines().last().unwrap_or("no log written")
        );
    }
    Ok(instance)
}

async fn wait_listening(addr: &str) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("Postfix is not listening on {addr}")
}

/// Runs the reference with `clients` submitters for `seconds`, then waits until Y has
/// delivered every accepted message.
pub(crate) fn measure(seconds: u64, clients: usize) -> Result<Reference> {
    let root = tempfile::tempdir()?;
    let r = root.path();
    let openssl = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=ref", "-keyout"])
        .arg(r.join("key.pem"))
        .arg("-out")
        .arg(r.join("cert.pem"))
        .output()
        .context("cannot run openssl req")?;
    if !openssl.status.success() {
        bail!("openssl req could not make the reference's certificate");
    }
    let (uid, gid) = (id("-u")?, id("-g")?);
    let (x, y) = (r.join("x"), r.join("y"));
    for dir in [&x, &y] {
        std::fs::create_dir_all(dir.join("etc"))?;
        std::fs::create_dir_all(dir.join("queue"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        std::os::unix::fs::chown(dir.join("data"), Some(uid), Some(gid))?;
    }
    let mail = y.join("mail");
    std::fs::create_dir_all(mail.join("dest/new"))?;
    for d in [&mail, &mail.join("dest"), &mail.join("dest/new")] {
        std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
    }
    let x_cf = main_cf(&x, r, "x")
        + "relay_domains = y.ref\ntransport_maps = inline:{ y.ref=smtp:[127.0.0.18]:2525 }\n";
    let y_cf = main_cf(&y, r, "y")
        + &format!(
            "virtual_mailbox_domains = y.ref\nvirtual_mailbox_base = {}\n\
virtual_mailbox_maps = inline:{{ dest@y.ref=dest/ }}\n\
virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\n",
            mail.display()
        );
    std::fs::write(x.join("etc/main.cf"), x_cf)?;
    std::fs::write(y.join("etc/main.cf"), y_cf)?;
    let base = std::fs::read_to_string("/etc/postfix/master.cf")
        .context("cannot read /etc/postfix/master.cf")?;
    std::fs::write(
        x.join("etc/master.cf"),
        master_cf(&base, "127.0.0.17", true),
    )?;
    std::fs::write(
        y.join("etc/master.cf"),
        master_cf(&base, "127.0.0.18", false),
    )?;
    let _y = start(&y.join("etc"))?;
    let _x = start(&x.join("etc"))?;
    let version = Command::new("postconf")
        .args(["-h", "mail_version"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(wait_listening(X.addr))?;
    rt.block_on(wait_listening("127.0.0.18:2525"))?;
    eprintln!("Postfix reference up; {clients} submitters for {seconds} s...");
    let cpu = CpuTicks::now()?;
    let start_t = Instant::now();
    let until = start_t + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            rt.spawn(submitter(
                X,
                format!("s{i}@x.ref"),
                "dest@y.ref".into(),
                until,
                None,
            ))
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        accepted += rt.block_on(t).context("submitter panicked")?? as usize;
    }
    let inbox = mail.join("dest/new");
    let drain = Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let n = std::fs::read_dir(&inbox)?.count();
        if n >= accepted || Instant::now() > drain {
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start_t.elapsed().as_secs_f64();
    let cpu_s = cpu.others_since()?;
    if delivered < accepted {
        eprintln!(
            "warning: Postfix delivered {delivered} of {accepted} messages within the drain; see {}",
            y.join("maillog").display()
        );
    }
    Ok(Reference {
        version,
        delivered,
        rate: delivered as f64 / elapsed,
        cpu_ms: cpu_s * 1000.0 / delivered.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::master_cf;

    #[test]
    fn master_cf_binds_smtpd_to_the_instance_and_drops_chroot() {
        let base = "# comment\n\
smtp      inet  n       -       y       -       -       smtpd\n\
#submission inet n       -       y       -       -       smtpd\n\
cleanup   unix  n       -       y       -       0       cleanup\n\
pipe      unix  -       n       n       -       -       pipe\n  flags=F user=x argv=/bin/true\n";
        let out = master_cf(base, "127.0.0.17", true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# comment");
        assert_eq!(lines[1], "127.0.0.17:2525 inet n - n - - smtpd");
        assert_eq!(
            lines[2],
            "127.0.0.17:4650 inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
        );
        assert!(lines[3].starts_with("#submission"));
        assert_eq!(lines[4], "cleanup unix n - n - 0 cleanup");
        assert_eq!(lines[6], "  flags=F user=x argv=/bin/true");
        assert!(!master_cf(base, "127.0.0.18", false).contains("4650"));
    }
}
