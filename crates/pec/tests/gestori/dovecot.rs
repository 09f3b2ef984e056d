//! Dovecot (Debian dovecot-imapd / dovecot-pop3d) as the reference IMAP and POP3 server: a
//! private instance in a temporary directory, configured from `src/dovecot.conf.in` with the
//! gestore's TLS certificate, stopped by the PID it was started with.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("../../src/dovecot.conf.in");
/// Dovecot's mail processes run as nobody:nogroup (Debian's 65534).
const NOBODY: u32 = 65534;

pub const IMAP_PORT: u16 = 10143;
pub const IMAPS_PORT: u16 = 10993;
pub const POP3_PORT: u16 = 10110;

pub struct Dovecot {
    pub dir: PathBuf,
    child: Child,
}

impl Dovecot {
    /// Starts Dovecot on `ip` with `users` (address, password) and a quota in KiB. `dir`
    /// and its parents must be traversable by nobody.
    pub fn start(
        dir: &Path,
        ip: &str,
        cert: &Path,
        key: &Path,
        quota_kib: u64,
        users: &[(&str, &str)],
    ) -> Dovecot {
        let binary = Path::new("/usr/sbin/dovecot");
        assert!(
            binary.exists(),
            "dovecot is not installed: install the Debian packages dovecot-imapd and dovecot-pop3d (scripts/test does it)"
        );
        assert!(
            Path::new("/usr/lib/dovecot/pop3").exists(),
            "dovecot-pop3d is not installed (scripts/test installs it)"
        );
        // Dovecot switches its processes to nobody, which only root may do.
        let uid = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the Dovecot reference runs as root (it switches its mail processes to nobody)"
        );
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::create_dir_all(dir.join("mail")).unwrap();
        let mut users_file = String::new();
        for (user, password) in users {
            let home = dir.join("mail").join(user);
            std::fs::create_dir_all(&home).unwrap();
            std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
            users_file.push_str(&format!(
                "{user}:{{PLAIN}}{password}:{NOBODY}:{NOBODY}::{}\n",
                home.display()
            ));
        }
        std::fs::write(dir.join("users"), users_file).unwrap();
        let conf = TEMPLATE
            .replace("@DIR@", dir.to_str().unwrap())
            .replace("@IP@", ip)
            .replace("@CERT@", cert.to_str().unwrap())
            .replace("@KEY@", key.to_str().unwrap())
            .replace("@QUOTA_KB@", &quota_kib.to_string());
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Dovecot {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect((ip, IMAP_PORT)).is_ok()
                && TcpStream::connect((ip, POP3_PORT)).is_ok()
            {
                return d;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Dovecot did not start:\n{}", d.log());
    }

    pub fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default());
        s
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login and mail processes too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
