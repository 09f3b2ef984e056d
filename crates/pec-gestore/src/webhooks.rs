//! Webhooks of the REST API: every receipt stored in a mailbox that has a webhook is
//! POSTed to it as JSON, signed with HMAC-SHA256, and retried with backoff until the
//! receiver answers 2xx or a day has passed. The events are recorded by the store in the
//! same commit as the receipt ([`pec_store::Store::lease_webhooks`]), so none is lost to a
//! crash; a receiver may see one twice and should deduplicate on `X-PEC-Delivery`.
//!
//! The signature header is `X-PEC-Signature: t=<unix>,v1=<hex>`, where `<hex>` is
//! HMAC-SHA256 with the webhook's secret over `<unix>.<body>`: the receiver recomputes it and
//! refuses a stale `t`, so a captured request cannot be replayed later.

use crate::Gestore;
use aws_lc_rs::hmac;
use pec_store::{Store, WebhookDelivery};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The answer to one POST: the HTTP status, or why there was none.
pub type PostFuture<'a> = Pin<Box<dyn Future<Output = Result<u16, String>> + Send + 'a>>;

/// Makes HTTP POST requests (the web crate implements it over HTTP/1.1 and TLS).
pub trait Poster: Send + Sync {
    /// POSTs `body` as `application/json` with extra `headers`.
    fn post<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> PostFuture<'a>;
}

/// Delay before attempt n+1 after n failures: quick at first, then hourly.
const BACKOFF: [i64; 8] = [10, 30, 60, 300, 900, 1800, 3600, 3600];
/// Attempts stop once the event is older than this.
pub const GIVE_UP_SECS: i64 = 24 * 3600;

/// The signature header value for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// When to try again after `attempts` failed attempts (counting this one), or `None` to
/// give up.
pub fn next_attempt(now: i64, created: i64, attempts: u32) -> Option<i64> {
    let delay = BACKOFF[(attempts as usize).saturating_sub(1).min(BACKOFF.len() - 1)];
    (now + delay - created <= GIVE_UP_SECS).then_some(now + delay)
}

async fn deliver<S: Store>(g: &Gestore<S>, poster: &dyn Poster, d: WebhookDelivery) {
    let now = g.clock.unix();
    let headers = vec![
        ("X-PEC-Event".to_string(), "receipt".to_string()),
        ("X-PEC-Delivery".to_string(), d.id.to_string()),
        (
            "X-PEC-Signature".to_string(),
            signature(&d.secret, now, d.body.as_bytes()),
        ),
    ];
    let outcome = tokio::time::timeout(
        Duration::from_secs(15),
        poster.post(&d.url, &headers, d.body.as_bytes()),
    )
    .await
    .unwrap_or_else(|_| Err("no answer within 15 s".into()));
    let (retry, error) = match outcome {
        Ok(status) if (200..300).contains(&status) => (None, String::new()),
        Ok(status) => (
            next_attempt(now, d.created, d.attempts + 1),
            format!("HTTP {status}"),
        ),
        Err(e) => (next_attempt(now, d.created, d.attempts + 1), e),
    };
    if !error.is_empty() {
        match retry {
            Some(t) => tracing::info!(
                "webhook {} of {}: {error}; next attempt in {} s",
                d.id,
                d.mailbox,
                t - now
            ),
            None => tracing::warn!(
                "webhook {} of {}: {error}; given up after {} attempts",
                d.id,
                d.mailbox,
                d.attempts + 1
            ),
        }
    }
    if let Err(e) = g.store.finish_webhook(d.id, retry, &error).await {
        // The lease runs out and the delivery comes back: at worst sent twice.
        tracing::error!("webhook {}: {e}", d.id);
    }
}

/// The worker: wakes when a commit recorded a delivery, or every few seconds for retries,
/// and sends what is due, several receivers at once.
pub(crate) async fn run<S: Store>(g: Arc<Gestore<S>>, poster: Arc<dyn Poster>) {
    loop {
        match g.store.lease_webhooks(g.clock.unix(), 60, 32).await {
            Ok(due) if !due.is_empty() => {
                let sends = due.into_iter().map(|d| deliver(&g, poster.as_ref(), d));
                futures::future::join_all(sends).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!("webhooks: {e}"),
        }
        tokio::select! {
            _ = g.webhooks_due.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

impl<S: Store> Gestore<S> {
    /// Starts the webhook worker.
    pub fn spawn_webhooks(self: &Arc<Self>, poster: Arc<dyn Poster>) {
        tokio::spawn(run(self.clone(), poster));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_time_and_body() {
        // HMAC-SHA256("key", "1700000000.{}") computed independently with openssl dgst.
        let s = signature("key", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        let expected = openssl::sign::Signer::new(
            openssl::hash::MessageDigest::sha256(),
            &openssl::pkey::PKey::hmac(b"key").unwrap(),
        )
        .and_then(|mut s| {
            s.update(b"1700000000.{}")?;
            s.sign_to_vec()
        })
        .unwrap();
        assert_eq!(&s[16..], hex::encode(expected));
    }

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        assert_eq!(next_attempt(1_000, 1_000, 1), Some(1_010));
        assert_eq!(next_attempt(1_000, 1_000, 4), Some(1_300));
        assert_eq!(next_attempt(1_000, 1_000, 40), Some(4_600));
        assert_eq!(next_attempt(90_000, 1_000, 40), None);
    }
}
