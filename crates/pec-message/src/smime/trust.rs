//! The signer chain (pec.md §4.4 step 3): whether a signer certificate chains to given trust
//! anchors, valid at a given time and fit for S/MIME signing, with process-wide caches of
//! parsed certificates and of positive verdicts (every message from a provider carries the
//! same certificates, and building an OpenSSL store per message cost a measurable share of
//! a receiving gestore's CPU).

use super::verify::describe;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId, X509Ref, X509StoreContext};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// The outcome of checking the signer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustCheck {
    /// The chain reaches a trust anchor and every certificate is valid at the time given.
    Trusted,
    /// It does not; the sentence says why.
    Untrusted(String),
}

/// Entries kept by each cache before it starts over.
const CACHE_MAX: usize = 512;

/// `der` parsed, from a small process-wide cache: the same few provider certificates sign
/// every message, and OpenSSL 3 decodes a certificate (its public key above all) slowly
/// enough to matter per message. Certificates are immutable, so sharing them is safe.
pub fn parse_certificate(der: &[u8]) -> Result<X509, openssl::error::ErrorStack> {
    static CACHE: LazyLock<Mutex<HashMap<Vec<u8>, X509>>> = LazyLock::new(Mutex::default);
    if let Some(c) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(der) {
        return Ok(c.clone());
    }
    let cert = X509::from_der(der)?;
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(der.to_vec(), cert.clone());
    Ok(cert)
}

/// A chain found trusted, and the times (Unix seconds, inclusive) at which that same chain
/// is valid: from the latest `notBefore` to the earliest `notAfter` of its certificates.
/// Whether a chain verifies depends on the time only through those dates (no revocation
/// lists are consulted here), so the verdict holds for any time in the window.
struct Verdict {
    /// The anchors the chain was built against. Held, so that while the entry lives no
    /// other certificate can take their addresses: equal addresses (an `&X509Ref` is the
    /// OpenSSL object's address) mean the same anchors.
    anchors: Vec<X509>,
    from: i64,
    until: i64,
}

impl Verdict {
    fn holds(&self, anchors: &[X509], at: i64) -> bool {
        self.from <= at
            && at <= self.until
            && self.anchors.len() == anchors.len()
            && self
                .anchors
                .iter()
                .zip(anchors)
                .all(|(a, b)| std::ptr::eq::<X509Ref>(&**a, &**b))
    }
}

/// Positive verdicts by the SHA-256 of the signer and intermediate certificates.
static VERDICTS: LazyLock<Mutex<HashMap<[u8; 32], Verdict>>> = LazyLock::new(Mutex::default);

/// The cache key of a signer with its intermediates (each length-prefixed, so no two lists
/// hash the same bytes).
fn chain_key(signer: &[u8], intermediates: &[Vec<u8>]) -> [u8; 32] {
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for der in std::iter::once(signer).chain(intermediates.iter().map(Vec::as_slice)) {
        h.update(&(der.len() as u64).to_be_bytes());
        h.update(der);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(h.finish().as_ref());
    key
}

/// Unix seconds of an ASN.1 time (`None` when OpenSSL cannot compare it).
pub(super) fn unix(t: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// Checks that `signer` chains to one of `anchors` through `intermediates`, with every
/// certificate valid at `at` (Unix seconds; now when `None`) and fit for S/MIME signing.
/// A chain already found trusted for these anchors answers from the cache while `at`
/// stays inside its validity window; an untrusted one is checked again every time.
pub fn check_trust(
    signer: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[X509],
    at: Option<i64>,
) -> TrustCheck {
    let time = at.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let key = chain_key(signer, intermediates);
    let lock = || VERDICTS.lock().unwrap_or_else(|p| p.into_inner());
    if lock().get(&key).is_some_and(|v| v.holds(anchors, time)) {
        return TrustCheck::Trusted;
    }
    let (check, window) = verify_chain(signer, intermediates, anchors, time);
    if let (TrustCheck::Trusted, Some((from, until))) = (&check, window) {
        let mut cache = lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            key,
            Verdict {
                anchors: anchors.to_vec(),
                from,
                until,
            },
        );
    }
    check
}

/// OpenSSL's verdict at `time`, and for a trusted chain its validity window.
fn verify_chain(
    signer: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[X509],
    time: i64,
) -> (TrustCheck, Option<(i64, i64)>) {
    let run = || -> Result<(TrustCheck, Option<(i64, i64)>), openssl::error::ErrorStack> {
        let cert = parse_certificate(signer)?;
        let mut builder = X509StoreBuilder::new()?;
        for a in anchors {
            builder.add_cert(a.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_purpose(X509PurposeId::SMIME_SIGN)?;
        // A provider certificate pinned by the Indice copy may be given as an anchor itself
        // (pec.md §7.3: the local copy is authoritative), so a chain may end below a root.
        param.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
        param.set_time(time as _);
        builder.set_param(&param)?;
        let store = builder.build();
        let mut chain = Stack::new()?;
        for i in intermediates {
            if let Ok(c) = parse_certificate(i) {
                chain.push(c)?;
            }
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, &cert, &chain, |c| {
            if !c.verify_cert()? {
                return Ok((
                    TrustCheck::Untrusted(format!(
                        "the signer certificate is not trusted: {}",
                        c.error().error_string()
                    )),
                    None,
                ));
            }
            let window = c.chain().and_then(|built| {
                built
                    .iter()
                    .try_fold((i64::MIN, i64::MAX), |(from, until), x| {
                        Some((
                            from.max(unix(x.not_before())?),
                            until.min(unix(x.not_after())?),
                        ))
                    })
            });
            Ok((TrustCheck::Trusted, window))
        })
    };
    run().unwrap_or_else(|e| {
        (
            TrustCheck::Untrusted(format!("the chain could not be checked ({})", describe(&e))),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki;

    const T0: i64 = 1_700_000_000;

    /// A verdict from the cache is the verdict OpenSSL gives: inside the chain's validity
    /// window, outside it (before the signer's notBefore, after its notAfter), and
    /// against other anchors.
    #[test]
    fn cached_verdicts_follow_the_validity_window_and_the_anchors() {
        let ca = pki::make_ca("Trust CA", T0, 30).unwrap();
        let cert =
            pki::issue_signing_cert(&ca, "Gestore", "pec.test", None, T0 + 86_400, 10).unwrap();
        let der = cert.cert_der().unwrap();
        let anchors = vec![X509::from_der(&ca.cert_der().unwrap()).unwrap()];
        let inside = T0 + 2 * 86_400;
        assert_eq!(
            check_trust(&der, &[], &anchors, Some(inside)),
            TrustCheck::Trusted
        );
        assert!(VERDICTS.lock().unwrap().contains_key(&chain_key(&der, &[])));
        // From the cache, the same answer; at the edges and outside, OpenSSL's.
        assert_eq!(
            check_trust(&der, &[], &anchors, Some(inside + 3_600)),
            TrustCheck::Trusted
        );
        assert!(matches!(
            check_trust(&der, &[], &anchors, Some(T0 + 3_600)),
            TrustCheck::Untrusted(_)
        ));
        assert!(matches!(
            check_trust(&der, &[], &anchors, Some(T0 + 400 * 86_400)),
            TrustCheck::Untrusted(_)
        ));
        // Other anchors (a different CA) never reuse the verdict.
        let other = pki::make_ca("Other CA", T0, 30).unwrap();
        let others = vec![X509::from_der(&other.cert_der().unwrap()).unwrap()];
        assert!(matches!(
            check_trust(&der, &[], &others, Some(inside)),
            TrustCheck::Untrusted(_)
        ));
        // An untrusted chain is not cached: with the right anchors it is trusted again.
        assert_eq!(
            check_trust(&der, &[], &anchors, Some(inside)),
            TrustCheck::Trusted
        );
    }
}
