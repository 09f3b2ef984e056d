//! Verification (pec.md §4.4): the CMS signature over the exact signed bytes (canonicalised to
//! CRLF when stored with bare LF), the digest and signer facts for the report, and the chain
//! to given trust anchors at a given time, with the S/MIME signing purpose. SHA-1 and SHA-256,
//! detached (`multipart/signed`) and opaque (`application/pkcs7-mime`) forms.

use chrono::{DateTime, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use const_oid::db::{rfc5911, rfc5912};
use der::{Decode, Encode};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId, X509StoreContext};

/// Facts read from a CMS `SignedData` structure.
#[derive(Debug, Clone, Default)]
pub struct CmsInfo {
    /// Digest algorithm of the first SignerInfo (`sha1`, `sha256`, ... or the OID).
    pub digest: String,
    /// The `signingTime` attribute.
    pub signing_time: Option<DateTime<Utc>>,
    /// The `messageDigest` attribute.
    pub message_digest: Option<Vec<u8>>,
    /// Every certificate in the structure (DER), in order.
    pub certificates: Vec<Vec<u8>>,
    /// The signer certificate (DER), matched by the signer identifier.
    pub signer: Option<Vec<u8>>,
}

/// The outcome of checking a signature over its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The signature and the message digest check out.
    Valid,
    /// They do not; the sentence says why.
    Invalid(String),
}

/// The outcome of checking the signer chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustCheck {
    /// The chain reaches a trust anchor and every certificate is valid at the time given.
    Trusted,
    /// It does not; the sentence says why.
    Untrusted(String),
}

fn digest_name(oid: &const_oid::ObjectIdentifier) -> String {
    match *oid {
        rfc5912::ID_SHA_1 => "sha1".into(),
        rfc5912::ID_SHA_256 => "sha256".into(),
        rfc5912::ID_SHA_384 => "sha384".into(),
        rfc5912::ID_SHA_512 => "sha512".into(),
        rfc5912::ID_MD_5 => "md5".into(),
        other => other.to_string(),
    }
}

/// Reads the facts of a DER `ContentInfo` holding `SignedData`.
pub fn cms_info(der: &[u8]) -> Result<CmsInfo, String> {
    let ci = ContentInfo::from_der(der)
        .map_err(|e| format!("the signature is not a CMS structure ({e})"))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(format!(
            "the CMS content type is {}, not signed-data",
            ci.content_type
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("the CMS signed-data structure is corrupt ({e})"))?;
    let mut info = CmsInfo::default();
    if let Some(set) = &sd.certificates {
        for c in set.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(cert) = c {
                info.certificates
                    .push(cert.to_der().map_err(|e| e.to_string())?);
            }
        }
    }
    let Some(si) = sd.signer_infos.0.iter().next() else {
        return Err("the CMS structure has no signer".into());
    };
    info.digest = digest_name(&si.digest_alg.oid);
    if let Some(attrs) = &si.signed_attrs {
        for a in attrs.iter() {
            let Some(v) = a.values.iter().next() else {
                continue;
            };
            if a.oid == rfc5911::ID_MESSAGE_DIGEST {
                info.message_digest = v
                    .decode_as::<der::asn1::OctetString>()
                    .ok()
                    .map(|o| o.as_bytes().to_vec());
            } else if a.oid == rfc5911::ID_SIGNING_TIME {
                let t = v
                    .to_der()
                    .ok()
                    .and_then(|d| x509_cert::time::Time::from_der(&d).ok())
                    .map(|t| t.to_unix_duration().as_secs());
                info.signing_time =
                    t.and_then(|s| DateTime::from_timestamp(i64::try_from(s).ok()?, 0));
            }
        }
    }
    if let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid {
        for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
            if let cms::cert::CertificateChoices::Certificate(cert) = c
                && cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
            {
                info.signer = cert.to_der().ok();
            }
        }
    }
    Ok(info)
}

fn describe(e: &openssl::error::ErrorStack) -> String {
    let reasons: Vec<String> = e
        .errors()
        .iter()
        .map(|e| e.reason().unwrap_or("unknown error").to_string())
        .collect();
    if reasons.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        reasons.join("; ")
    }
}

/// Checks a detached signature over `content`, which must already be the canonical CRLF
/// form of the signed part.
pub fn verify_detached(p7s: &[u8], content: &[u8]) -> SignatureCheck {
    let p7 = match Pkcs7::from_der(p7s) {
        Ok(p) => p,
        Err(e) => {
            return SignatureCheck::Invalid(format!(
                "the signature cannot be parsed ({})",
                describe(&e)
            ));
        }
    };
    let store = X509StoreBuilder::new().map(|b| b.build());
    let (Ok(store), Ok(certs)) = (store, Stack::<X509>::new()) else {
        return SignatureCheck::Invalid("OpenSSL could not allocate a certificate store".into());
    };
    match p7.verify(
        &certs,
        &store,
        Some(content),
        None,
        Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
    ) {
        Ok(()) => SignatureCheck::Valid,
        Err(e) => SignatureCheck::Invalid(explain_failure(&describe(&e))),
    }
}

/// Checks an opaque signature (`application/pkcs7-mime`, content inside) and returns the
/// content on success.
pub fn verify_opaque(p7m: &[u8]) -> (SignatureCheck, Option<Vec<u8>>) {
    let p7 = match Pkcs7::from_der(p7m) {
        Ok(p) => p,
        Err(e) => {
            return (
                SignatureCheck::Invalid(format!(
                    "the signature cannot be parsed ({})",
                    describe(&e)
                )),
                None,
            );
        }
    };
    let store = X509StoreBuilder::new().map(|b| b.build());
    let (Ok(store), Ok(certs)) = (store, Stack::<X509>::new()) else {
        return (
            SignatureCheck::Invalid("OpenSSL could not allocate a certificate store".into()),
            None,
        );
    };
    let mut out = Vec::new();
    match p7.verify(
        &certs,
        &store,
        None,
        Some(&mut out),
        Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
    ) {
        Ok(()) => (SignatureCheck::Valid, Some(out)),
        Err(e) => (
            SignatureCheck::Invalid(explain_failure(&describe(&e))),
            None,
        ),
    }
}

fn explain_failure(reason: &str) -> String {
    if reason.contains("digest failure") {
        "the signed content was changed after signing (messageDigest does not match)".into()
    } else if reason.contains("wrong content type") {
        "the PKCS#7 structure is corrupt (wrong content type)".into()
    } else {
        format!("the signature does not verify ({reason})")
    }
}

/// Checks that `signer` chains to one of `anchors` through `intermediates`, with every
/// certificate valid at `at` (Unix seconds; now when `None`) and fit for S/MIME signing.
pub fn check_trust(
    signer: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &[X509],
    at: Option<i64>,
) -> TrustCheck {
    let run = || -> Result<TrustCheck, openssl::error::ErrorStack> {
        let cert = X509::from_der(signer)?;
        let mut builder = X509StoreBuilder::new()?;
        for a in anchors {
            builder.add_cert(a.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_purpose(X509PurposeId::SMIME_SIGN)?;
        // A provider certificate pinned by the Indice copy may be given as an anchor itself
        // (pec.md §7.3: the local copy is authoritative), so a chain may end below a root.
        param.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)?;
        if let Some(t) = at {
            param.set_time(t as _);
        }
        builder.set_param(&param)?;
        let store = builder.build();
        let mut chain = Stack::new()?;
        for i in intermediates {
            if let Ok(c) = X509::from_der(i) {
                chain.push(c)?;
            }
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, &cert, &chain, |c| {
            Ok(if c.verify_cert()? {
                TrustCheck::Trusted
            } else {
                TrustCheck::Untrusted(format!(
                    "the signer certificate is not trusted: {}",
                    c.error().error_string()
                ))
            })
        })
    };
    run().unwrap_or_else(|e| {
        TrustCheck::Untrusted(format!("the chain could not be checked ({})", describe(&e)))
    })
}
