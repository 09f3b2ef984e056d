//! Real filter daemons for tests, each in its own temporary directory on 127.0.0.20 and
//! stopped by the PID it was started with (../shared/design/components.md §1-3): clamd with
//! an offline EICAR database, c-icap with virus_scan in front of that clamd, and rspamd.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const IP: &str = "127.0.0.20";
pub const CLAMD_PORT: u16 = 3310;
pub const ICAP_PORT: u16 = 1344;
pub const RSPAMD_PORT: u16 = 11333;

/// The EICAR test file (68 bytes).
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// The GTUBE spam test string.
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// Fails with the Debian package to install when `path` is missing; never skips.
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package} (scripts/test does it)"
    );
}

/// A daemon, stopped with SIGTERM then SIGKILL.
pub struct Daemon {
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn spawn(dir: &Path, cmd: &mut Command, log: &str) -> Daemon {
        let log = dir.join(log);
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Daemon {
            dir: dir.to_path_buf(),
            child: Some(child),
            log,
        }
    }

    fn wait_port(&self, port: u16, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if TcpStream::connect((IP, port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what} did not start:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the daemon now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a signature database that detects EICAR (MD5 and body signatures) into `db`.
pub fn eicar_database(db: &Path) {
    require("/usr/bin/sigtool", "clamav");
    std::fs::create_dir_all(db).unwrap();
    let sample = db.join("eicar.com");
    std::fs::write(&sample, EICAR).unwrap();
    let md5 = Command::new("sigtool")
        .arg("--md5")
        .arg(&sample)
        .output()
        .unwrap();
    assert!(md5.status.success(), "sigtool --md5 failed");
    let line = String::from_utf8(md5.stdout).unwrap();
    let (sig, _) = line.trim().rsplit_once(':').unwrap();
    std::fs::write(
        db.join("eicar.hdb"),
        format!("{sig}:Eicar-Test-Signature-Custom\n"),
    )
    .unwrap();
    std::fs::remove_file(&sample).unwrap();
    let hex: String = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        db.join("eicar.ndb"),
        format!("Eicar-Test-Body-NDB:0:*:{hex}\n"),
    )
    .unwrap();
}

/// clamd on IP:3310 and `dir/clamd.sock`, with the EICAR database in `dir/db`.
pub fn clamd(dir: &Path) -> Daemon {
    require("/usr/sbin/clamd", "clamav-daemon");
    std::fs::create_dir_all(dir).unwrap();
    eicar_database(&dir.join("db"));
    let d = dir.display();
    std::fs::write(
        dir.join("clamd.conf"),
        format!(
            "DatabaseDirectory {d}/db\nLocalSocket {d}/clamd.sock\nTCPSocket {CLAMD_PORT}\n\
             TCPAddr {IP}\nForeground true\nLogFile {d}/clamd.log\nPidFile {d}/clamd.pid\n\
             TemporaryDirectory {d}\nScanMail true\nScanArchive true\nStreamMaxLength 50M\n\
             MaxThreads 4\nSelfCheck 0\n"
        ),
    )
    .unwrap();
    let daemon = Daemon::spawn(
        dir,
        Command::new("/usr/sbin/clamd")
            .arg("-c")
            .arg(dir.join("clamd.conf")),
        "clamd.out",
    );
    daemon.wait_port(CLAMD_PORT, "clamd", Duration::from_secs(60));
    daemon
}

/// c-icap on IP:1344 with the `avscan` service (virus_scan in front of the clamd socket in
/// `clamd_dir`).
pub fn c_icap(dir: &Path, clamd_dir: &Path) -> Daemon {
    require("/usr/bin/c-icap", "c-icap");
    let modules = "/usr/lib/x86_64-linux-gnu/c_icap";
    require(
        &format!("{modules}/virus_scan.so"),
        "libc-icap-mod-virus-scan",
    );
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let sock = clamd_dir.join("clamd.sock");
    std::fs::write(
        dir.join("c-icap.conf"),
        format!(
            "PidFile {d}/c-icap.pid\nCommandsSocket {d}/c-icap.ctl\nTimeout 60\nStartServers 1\n\
             MaxServers 2\nMinSpareThreads 2\nMaxSpareThreads 8\nThreadsPerChild 4\n\
             Port {IP}:{ICAP_PORT}\nTmpDir {d}\nMaxMemObject 131072\nDebugLevel 1\n\
             ModulesDir {modules}\nServicesDir {modules}\n\
             TemplateDir /usr/share/c_icap/templates/\nTemplateDefaultLanguage en\n\
             LoadMagicFile /etc/c-icap/c-icap.magic\nServerLog {d}/server.log\n\
             AccessLog {d}/access.log\nService echo srv_echo.so\nModule common clamd_mod.so\n\
             clamd_mod.ClamdSocket {}\nService antivirus_module virus_scan.so\n\
             ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple\n\
             virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE\n\
             virus_scan.MaxObjectSize 5M\nvirus_scan.DefaultEngine clamd\n\
             virus_scan.Allow204Responces on\n",
            sock.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::spawn(
        dir,
        Command::new("/usr/bin/c-icap")
            .arg("-N")
            .arg("-f")
            .arg(dir.join("c-icap.conf")),
        "c-icap.out",
    );
    daemon.wait_port(ICAP_PORT, "c-icap", Duration::from_secs(30));
    daemon
}

/// rspamd's normal worker on IP:11333 (controller 11334, proxy 11332), offline DNS.
pub fn rspamd(dir: &Path) -> Daemon {
    require("/usr/bin/rspamd", "rspamd");
    let local = dir.join("local.d");
    for sub in ["local.d", "db", "run", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Nothing answers DNS on this port: lookups fail at once instead of waiting, and
    // loopback clients count as local, so the network checks are skipped.
    std::fs::write(
        local.join("options.inc"),
        "local_addrs = [\"127.0.0.0/8\", \"::1\"];\ndns {\n  nameserver = [\"127.0.0.1:5353\"];\n  timeout = 0.5s;\n  retransmits = 1;\n}\n",
    )
    .unwrap();
    std::fs::write(
        local.join("logging.inc"),
        "type = \"console\";\nlevel = \"notice\";\n",
    )
    .unwrap();
    std::fs::write(
        local.join("worker-normal.inc"),
        format!("bind_socket = \"{IP}:{RSPAMD_PORT}\";\n"),
    )
    .unwrap();
    std::fs::write(
        local.join("worker-controller.inc"),
        format!("bind_socket = \"{IP}:11334\";\npassword = \"q1\";\nenable_password = \"q1\";\n"),
    )
    .unwrap();
    std::fs::write(
        local.join("worker-proxy.inc"),
        format!("bind_socket = \"{IP}:11332\";\n"),
    )
    .unwrap();
    let var = |k: &str, sub: &str| format!("--var={k}={}", dir.join(sub).display());
    let daemon = Daemon::spawn(
        dir,
        Command::new("/usr/bin/rspamd")
            .args(["-f", "-i", "-c", "/etc/rspamd/rspamd.conf"])
            .arg(format!("--var=LOCAL_CONFDIR={}", dir.display()))
            .arg(var("DBDIR", "db"))
            .arg(var("RUNDIR", "run"))
            .arg(var("LOGDIR", "log")),
        "rspamd.out",
    );
    // The first start compiles its expressions (about 11 s here).
    daemon.wait_port(RSPAMD_PORT, "rspamd", Duration::from_secs(120));
    daemon
}
