//! The embedded store's single writer: one thread owns the write connection and applies the
//! write jobs queued by every caller in groups: one `BEGIN IMMEDIATE … COMMIT` (one WAL
//! fsync) per group, each job inside its own savepoint so a failing job rolls back alone.
//! A caller hears back only once its group's `COMMIT` has returned, so the crate contract
//! ("after `Ok`, all of it survives a crash") holds job by job while concurrent steps share
//! the cost of a durable commit (group commit).
//!
//! Jobs are plain synchronous closures run on the writer thread: a job's statements never
//! cross threads, only the job itself does (once in, once out).

use super::db::{self, Conn};
use crate::{Result, StoreError};
use std::any::Any;
use std::path::PathBuf;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Output = Box<dyn Any + Send>;
type Job = Box<dyn FnOnce(&Conn) -> Result<Output> + Send>;

struct Pending {
    job: Job,
    reply: oneshot::Sender<Result<Output>>,
}

/// Most jobs in one group: bounds the time a group holds the database.
const MAX_GROUP: usize = 128;

/// Handle to the writer thread; dropping the last handle ends the thread after the jobs
/// already queued.
pub(super) struct Writer {
    jobs: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Opens the write connection on a new thread, runs `init` on it (migrations), and
    /// returns once that is done.
    pub(super) async fn start(
        path: PathBuf,
        init: impl FnOnce(&mut Conn) -> Result<()> + Send + 'static,
    ) -> Result<Writer> {
        let (jobs, rx) = mpsc::channel();
        let (ready_tx, ready) = oneshot::channel::<Result<()>>();
        std::thread::Builder::new()
            .name("pec-sqlite-writer".into())
            .spawn(move || {
                let mut conn = match db::open(&path, false) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = init(&mut conn) {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                serve(&conn, &rx);
            })
            .map_err(|e| StoreError::Write(format!("cannot start the store writer: {e}")))?;
        ready
            .await
            .map_err(|_| StoreError::Write("the store writer stopped while opening".into()))??;
        Ok(Writer { jobs })
    }

    /// Runs `f` inside a write transaction shared with other concurrent jobs; returns its
    /// result once the transaction is committed. An `Err` from `f` rolls back `f`'s writes
    /// only. `f` must not begin or end transactions itself.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| f(conn).map(|v| Box::new(v) as Output));
        self.jobs
            .send(Pending { job, reply })
            .map_err(|_| StoreError::Write("the store writer has stopped".into()))?;
        let out = answer
            .await
            .map_err(|_| StoreError::Write("the store writer stopped during a commit".into()))??;
        // The job above boxed a `T`; nothing else reaches this channel.
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Corrupt("store writer returned a foreign value".into()))
    }
}

fn serve(conn: &Conn, rx: &mpsc::Receiver<Pending>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        run_group(conn, group);
    }
}

fn exec(conn: &Conn, sql: &'static str) -> Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_group(conn: &Conn, group: Vec<Pending>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let text = e.to_string();
        for p in group {
            let _ = p.reply.send(Err(StoreError::Write(text.clone())));
        }
        return;
    }
    let mut done: Vec<(oneshot::Sender<Result<Output>>, Result<Output>)> =
        Vec::with_capacity(group.len());
    let mut broken: Option<String> = None;
    for p in group {
        if let Some(text) = &broken {
            let _ = p.reply.send(Err(StoreError::Write(text.clone())));
            continue;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            broken = Some(e.to_string());
            let _ = p.reply.send(Err(e));
            continue;
        }
        // A job that panics fails alone, like a job that returns an error: the writer
        // thread, which every later write needs, lives on.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (p.job)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Write("a store write failed (panic)".into())));
        let end = if out.is_ok() {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        if let Err(e) = end {
            broken = Some(e.to_string());
        }
        done.push((p.reply, out));
    }
    let committed = match broken {
        Some(text) => Err(text),
        None => exec(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    match committed {
        Ok(()) => {
            for (reply, out) in done {
                let _ = reply.send(out);
            }
        }
        Err(text) => {
            let _ = exec(conn, "ROLLBACK");
            for (reply, out) in done {
                let _ = reply.send(match out {
                    Ok(_) => Err(StoreError::Write(format!(
                        "the commit failed and nothing was written: {text}"
                    ))),
                    Err(e) => Err(e),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Jobs queued together share a transaction, yet a failing job rolls back alone and the
    /// others are committed and answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let w = Arc::new(
            Writer::start(path.clone(), |c| {
                c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
                Ok(())
            })
            .await
            .unwrap(),
        );
        let mut tasks = Vec::new();
        for n in 0..50i64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.run(move |c| {
                    c.execute("INSERT INTO t (n) VALUES (?)", [n])?;
                    if n % 7 == 0 {
                        // Fails after a write: that write must disappear.
                        c.execute("INSERT INTO nowhere VALUES (1)", [])?;
                    }
                    Ok(n)
                })
                .await
            }));
        }
        let mut ok = 0;
        for (n, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => {
                    assert_eq!(v, n as i64);
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(n % 7, 0, "{e}");
                    assert!(e.to_string().contains("nowhere"), "{e}");
                }
            }
        }
        assert_eq!(ok, 50 - 8);
        let conn = db::open(&path, true).unwrap();
        let rows: Vec<i64> = conn
            .prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, (0..50).filter(|n| n % 7 != 0).collect::<Vec<_>>());
    }

    /// A job that panics is answered with an error and rolled back; the writer goes on.
    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(dir.path().join("t.sqlite"), |c| {
            c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
            Ok(())
        })
        .await
        .unwrap();
        let e = w
            .run(|c| -> Result<()> {
                c.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("bug in a job")
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("panic"), "{e}");
        let n = w
            .run(|c| {
                c.execute("INSERT INTO t (n) VALUES (2)", [])?;
                Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?)
            })
            .await
            .unwrap();
        assert_eq!(n, 1, "the panicking job's insert was rolled back");
    }
}
