//! SQLite connections of the embedded backend: how one is opened (WAL, `synchronous =
//! FULL`, a busy timeout) and the pool of read-only connections that readers borrow.
//!
//! Reads run where they are asked for: short ones (a row by key, one page of a folder) on
//! the caller's thread, long ones (a whole folder, many message bodies) on the blocking
//! pool, so an async worker is never held for long. In WAL mode a reader never waits for
//! the writer and sees only committed transactions.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, Row};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One SQLite connection.
pub(super) type Conn = Connection;

/// Prepared statements kept per connection: every statement of the store fits.
const STATEMENT_CACHE: usize = 128;

/// Idle read connections kept open.
const IDLE_READERS: usize = 16;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(e.to_string())
    }
}

/// Opens the database at `path`: read-write (creating it, in WAL mode with `synchronous =
/// FULL`: a committed transaction survives a power loss) or read-only.
pub(super) fn open(path: &Path, read_only: bool) -> Result<Conn> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        // `journal_mode` answers with the mode now in force.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "{} cannot use WAL journaling (got {mode})",
                path.display()
            )));
        }
        // Savepoint journals stay in memory (the writer runs every job in a savepoint), so
        // the write path creates no files beyond the WAL. The page cache keeps SQLite's
        // default size: at every COMMIT SQLite walks the cache's hash table to drop pages
        // past the end of the file, and with a 64 MiB cache that walk alone took 3% of a
        // gestore's CPU at saturation, more than the reads it saved (BENCHMARKS.md).
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000",
        )?;
    }
    Ok(conn)
}

/// Every row of `sql` with `args`, mapped by `f`.
pub(super) fn all<T, P: rusqlite::Params>(
    c: &Conn,
    sql: &str,
    args: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    Ok(c.prepare_cached(sql)?
        .query_map(args, f)?
        .collect::<rusqlite::Result<_>>()?)
}

/// Read-only connections, opened on demand and kept for reuse.
pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Result<Conn> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(c) => Ok(c),
            None => open(&self.path, true),
        }
    }

    fn give_back(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(c);
        }
    }

    /// Runs a short read on this thread. `f` may open a read transaction
    /// (`unchecked_transaction`) to see several statements at one moment.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let c = self.take()?;
        let out = f(&c);
        // A transaction `f` left open (an early `?`) would pin an old snapshot.
        if c.is_autocommit() {
            self.give_back(c);
        }
        out
    }

    /// Runs a long read on the blocking pool.
    pub(super) async fn read_long<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read(f))
            .await
            .map_err(|e| StoreError::Database(format!("a read stopped: {e}")))?
    }
}
