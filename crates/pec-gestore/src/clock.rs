//! The runtime clock: system time plus an offset. The offset moves only through
//! [`Clock::advance`], which the admin API exposes when `dev.clock_control` is on, so tests can
//! reach the 12h / 24h deadlines without waiting (pec.md §5.7).

use pec_message::TimeRef;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock shared by every worker.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as a time reference.
    pub fn now(&self) -> TimeRef {
        TimeRef::new(chrono::Utc::now() + chrono::Duration::seconds(self.offset()))
    }

    /// Now, in Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().utc().timestamp()
    }

    /// The offset from system time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock forward by `secs` (never backward: deadlines must not fire twice).
    pub fn advance(&self, secs: i64) {
        if secs > 0 {
            self.offset.fetch_add(secs, Ordering::SeqCst);
        }
    }
}
