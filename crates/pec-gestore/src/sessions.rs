//! The registry of open client connections, so that locking a mailbox ends every session
//! logged in as it (product.md §4: "password invalidated, all sessions ended").
//!
//! A listener opens a [`Connection`] per accepted client and runs the session inside
//! [`Connection::scope`]; a successful login through [`crate::Gestore::authenticate`] names
//! the connection's user. [`Sessions::end`] then wakes [`Connection::ended`] for every
//! connection of that user, and the listener drops the session. The connection that caused
//! the lock (a submission that turned out to be the eleventh spam) is only marked: it must
//! still give its client the answer for a committed message, and then checks
//! [`ending_here`] and closes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

tokio::task_local! {
    static CURRENT: Arc<Conn>;
}

#[derive(Debug, Default)]
struct Conn {
    id: u64,
    user: Mutex<Option<String>>,
    ending: AtomicBool,
    wake: Notify,
}

/// Every open connection, by number.
#[derive(Debug, Default)]
pub struct Sessions {
    next: AtomicU64,
    open: Arc<Mutex<HashMap<u64, Weak<Conn>>>>,
}

/// One client connection; dropping it takes it out of the registry.
#[derive(Debug)]
pub struct Connection {
    conn: Arc<Conn>,
    open: Arc<Mutex<HashMap<u64, Weak<Conn>>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&self.conn.id);
    }
}

impl Connection {
    /// Runs `session` as this connection's session: a login inside it names the
    /// connection's user.
    pub async fn scope<F: Future>(&self, session: F) -> F::Output {
        CURRENT.scope(self.conn.clone(), session).await
    }

    /// Resolves when the connection's mailbox was locked: the session must end.
    pub async fn ended(&self) {
        self.conn.wake.notified().await;
    }

    /// Runs `session` in [`Connection::scope`] until it finishes (`Some`) or the mailbox
    /// logged in on it is locked (`None`: the session was dropped).
    pub async fn run<F: Future>(&self, session: F) -> Option<F::Output> {
        tokio::select! {
            out = self.scope(session) => Some(out),
            () = self.ended() => None,
        }
    }
}

impl Sessions {
    /// Registers a new connection.
    pub fn open(&self) -> Connection {
        let conn = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            ..Conn::default()
        });
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.insert(conn.id, Arc::downgrade(&conn));
        Connection {
            conn,
            open: self.open.clone(),
        }
    }

    /// Ends every session logged in as `address`; the current task's own connection is
    /// only marked (see [`ending_here`]). Returns how many sessions were told.
    pub fn end(&self, address: &str) -> usize {
        let here = CURRENT.try_with(|c| c.id).ok();
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for conn in open.values().filter_map(Weak::upgrade) {
            let user = conn.user.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if !user.is_some_and(|u| u.eq_ignore_ascii_case(address)) {
                continue;
            }
            n += 1;
            conn.ending.store(true, Ordering::SeqCst);
            if Some(conn.id) != here {
                conn.wake.notify_one();
            }
        }
        n
    }

    /// Logged-in sessions right now.
    pub fn logged_in(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.values()
            .filter_map(Weak::upgrade)
            .filter(|c| c.user.lock().is_ok_and(|u| u.is_some()))
            .count()
    }
}

/// Names the current task's connection's user (called on a successful login).
pub(crate) fn logged_in(address: &str) {
    let _ = CURRENT.try_with(|c| {
        *c.user.lock().unwrap_or_else(|p| p.into_inner()) = Some(address.to_string());
    });
}

/// Whether the current task's connection belongs to a mailbox locked meanwhile: the session
/// answers what it is answering and then closes.
pub fn ending_here() -> bool {
    CURRENT
        .try_with(|c| c.ending.load(Ordering::SeqCst))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ending_a_mailbox_wakes_its_sessions_and_marks_the_current_one() {
        let s = Arc::new(Sessions::default());
        let other = s.open();
        let stranger = s.open();
        other.scope(async { logged_in("anna@b.test") }).await;
        stranger.scope(async { logged_in("carla@b.test") }).await;
        let here = s.open();
        let s2 = s.clone();
        let told = here
            .scope(async move {
                logged_in("Anna@b.test");
                let n = s2.end("anna@b.test");
                assert!(ending_here());
                n
            })
            .await;
        assert_eq!(told, 2);
        // The other session is woken; the stranger's is not.
        tokio::time::timeout(std::time::Duration::from_secs(1), other.ended())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), stranger.ended())
                .await
                .is_err()
        );
        assert_eq!(s.logged_in(), 3);
        drop(other);
        assert_eq!(s.logged_in(), 2);
        assert!(!ending_here(), "outside any connection");
    }
}
