//! Retention: the virus store keeps an infected message for 30 months and no longer (pec.md
//! §8.4), the message log its events for 30 months and a few days
//! ([`pec_store::EVENT_LOG_KEEP_DAYS`], pec.md §6; the day files go with them, their seals
//! stay), and the records of transactions taken without a copy (pec.md §5.9) last
//! [`TAKEN_DAYS`]; a worker purges older entries once an hour.

use crate::Gestore;
use pec_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How long the virus store keeps a message, in months (pec.md §8.4).
pub const VIRUS_STORE_MONTHS: u32 = 30;

/// The oldest time (Unix seconds) the virus store keeps at `now`.
pub fn virus_store_cutoff(now: chrono::DateTime<chrono::Utc>) -> i64 {
    now.checked_sub_months(chrono::Months::new(VIRUS_STORE_MONTHS))
        .unwrap_or(now)
        .timestamp()
}

/// How long a transaction taken without a copy is remembered, in days: a sender retries for
/// 24 hours at most (pec.md §5.7), so a replay comes well within it.
pub const TAKEN_DAYS: i64 = 30;

pub(crate) async fn run<S: Store>(g: Arc<Gestore<S>>) {
    loop {
        let cutoff = virus_store_cutoff(g.clock.now().utc());
        match g.store.purge_quarantine(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("virus store: {n} entries older than 30 months removed"),
            Err(e) => tracing::error!("virus store purge failed, will retry: {e}"),
        }
        if let Err(e) = g
            .store
            .purge_taken(g.clock.unix() - TAKEN_DAYS * 86_400)
            .await
        {
            tracing::error!("purge of the taken-without-copy records failed, will retry: {e}");
        }
        // The store refuses to let a younger event go by its own clock: never ahead of it.
        let now = g.clock.unix().min(chrono::Utc::now().timestamp());
        let cutoff = now - pec_store::EVENT_LOG_KEEP_DAYS * 86_400;
        match g.store.purge_events(cutoff).await {
            Ok((n, first_kept)) => {
                if n > 0 {
                    tracing::info!("message log: {n} events older than 30 months removed");
                }
                let files = crate::eventlog::purge_files(
                    &g.settings.data_dir.join("log"),
                    cutoff,
                    first_kept,
                );
                if !files.is_empty() {
                    tracing::info!(
                        "message log: {} day files older than 30 months removed, their seals kept",
                        files.len()
                    );
                }
            }
            Err(e) => tracing::error!("message log purge failed, will retry: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_thirty_calendar_months_back() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .to_utc();
        let cutoff = chrono::DateTime::from_timestamp(virus_store_cutoff(now), 0).unwrap();
        assert_eq!(cutoff.to_rfc3339(), "2024-05-24T10:00:00+00:00");
    }
}
