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
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

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

/// Decodes a DER `ContentInfo` holding `SignedData`.
fn decode(der: &[u8]) -> Result<SignedData, String> {
    let ci = ContentInfo::from_der(der)
        .map_err(|e| format!("the signature is not a CMS structure ({e})"))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(format!(
            "the CMS content type is {}, not signed-data",
            ci.content_type
        ));
    }
    ci.content
        .decode_as()
        .map_err(|e| format!("the CMS signed-data structure is corrupt ({e})"))
}

/// Reads the facts of a DER `ContentInfo` holding `SignedData`.
pub fn cms_info(der: &[u8]) -> Result<CmsInfo, String> {
    info_of(&decode(der)?)
}

/// Checks a detached signature over `content` (as [`verify_detached`]) and reads its facts
/// (as [`cms_info`]), decoding the CMS structure once for both.
pub fn check_detached(p7s: &[u8], content: &[u8]) -> (Result<CmsInfo, String>, SignatureCheck) {
    let sd = decode(p7s);
    let info = sd.as_ref().map_err(Clone::clone).and_then(info_of);
    (info, check(sd.as_ref().ok(), p7s, content))
}

/// The certificate that the first SignerInfo's issuer and serial number name, if the
/// structure carries it.
///
/// Every use of the signer (the signature check here and in OpenSSL, the Indice lookup by
/// certificate hash, the chain to the anchors, the address check) must see the same
/// certificate. A structure holding two different certificates under that issuer and serial
/// number is therefore refused: OpenSSL would check the signature with the first, and a
/// forger could put a key of their own first and the real provider certificate, which every
/// receipt carries, second (RFC 5652 §5.3: the identifier names one certificate; pec.md §4.4
/// steps 2-3). The same certificate repeated byte for byte is harmless and accepted.
fn signer_certificate(sd: &SignedData) -> Result<Option<&x509_cert::Certificate>, String> {
    let Some(si) = sd.signer_infos.0.iter().next() else {
        return Ok(None);
    };
    let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
        return Ok(None);
    };
    let mut found: Option<&x509_cert::Certificate> = None;
    for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let cms::cert::CertificateChoices::Certificate(cert) = c
            && cert.tbs_certificate.issuer == ias.issuer
            && cert.tbs_certificate.serial_number == ias.serial_number
        {
            match found {
                Some(first) if first != cert => {
                    return Err("the signature carries two different certificates with the \
                                signer's issuer and serial number, so which one signed is \
                                ambiguous (a forgery pattern): refused"
                        .into());
                }
                _ => found = Some(cert),
            }
        }
    }
    Ok(found)
}

fn info_of(sd: &SignedData) -> Result<CmsInfo, String> {
    let mut info = CmsInfo::default();
    let Some(si) = sd.signer_infos.0.iter().next() else {
        return Err("the CMS structure has no signer".into());
    };
    if let Some(cert) = signer_certificate(sd)? {
        info.signer = Some(cert.to_der().map_err(|e| e.to_string())?);
    }
    for c in sd.certificates.iter().flat_map(|s| s.0.iter()) {
        if let cms::cert::CertificateChoices::Certificate(cert) = c {
            info.certificates
                .push(cert.to_der().map_err(|e| e.to_string())?);
        }
    }
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
    Ok(info)
}

pub(super) fn describe(e: &openssl::error::ErrorStack) -> String {
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

/// Confirms a detached signature without OpenSSL when it has the shape every gestore uses
/// (RFC 5652 §5.4: one SignerInfo identified by issuer and serial, signed attributes whose
/// messageDigest matches the content's SHA-1 or SHA-256, RSA PKCS #1 v1.5 of at least 2048
/// bits). `true` only when the signature checks out; anything else, including an unusual
/// but possibly valid structure, returns `false` and OpenSSL decides and explains.
fn verified_natively(sd: &SignedData, content: &[u8]) -> bool {
    use aws_lc_rs::{digest, signature};
    let run = || -> Option<bool> {
        let mut signers = sd.signer_infos.0.iter();
        let si = signers.next()?;
        if signers.next().is_some() {
            return None;
        }
        let cert = signer_certificate(sd).ok()??;
        let (digest_alg, verify_alg): (_, &dyn signature::VerificationAlgorithm) =
            match si.digest_alg.oid {
                rfc5912::ID_SHA_256 => (&digest::SHA256, &signature::RSA_PKCS1_2048_8192_SHA256),
                rfc5912::ID_SHA_1 => (
                    &digest::SHA1_FOR_LEGACY_USE_ONLY,
                    &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                ),
                _ => return None,
            };
        let sig_oid = si.signature_algorithm.oid;
        let rsa_ok = sig_oid == rfc5912::RSA_ENCRYPTION
            || (sig_oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION
                && si.digest_alg.oid == rfc5912::ID_SHA_256)
            || (sig_oid == rfc5912::SHA_1_WITH_RSA_ENCRYPTION
                && si.digest_alg.oid == rfc5912::ID_SHA_1);
        if !rsa_ok {
            return None;
        }
        let attrs = si.signed_attrs.as_ref()?;
        let mut message_digest = None;
        let mut content_type_ok = false;
        for a in attrs.iter() {
            let mut values = a.values.iter();
            let (Some(v), None) = (values.next(), values.next()) else {
                return None;
            };
            if a.oid == rfc5911::ID_MESSAGE_DIGEST {
                message_digest = Some(v.decode_as::<der::asn1::OctetString>().ok()?);
            } else if a.oid == rfc5911::ID_CONTENT_TYPE {
                content_type_ok = v.decode_as::<const_oid::ObjectIdentifier>().ok()?
                    == sd.encap_content_info.econtent_type;
            }
        }
        if !content_type_ok
            || message_digest?.as_bytes() != digest::digest(digest_alg, content).as_ref()
        {
            return Some(false);
        }
        // The signature covers the DER SET OF the signed attributes (RFC 5652 §5.4); when
        // this re-encoding differs from what the signer hashed, the check fails and OpenSSL
        // decides on the original bytes.
        let signed = attrs.to_der().ok()?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .as_bytes()?;
        Some(
            signature::UnparsedPublicKey::new(verify_alg, key)
                .verify(&signed, si.signature.as_bytes())
                .is_ok(),
        )
    };
    run() == Some(true)
}

/// Checks a detached signature over `content`, which must already be the canonical CRLF
/// form of the signed part.
pub fn verify_detached(p7s: &[u8], content: &[u8]) -> SignatureCheck {
    check(decode(p7s).ok().as_ref(), p7s, content)
}

/// The native check when the structure decoded (`sd`) and passes it; OpenSSL otherwise.
fn check(sd: Option<&SignedData>, p7s: &[u8], content: &[u8]) -> SignatureCheck {
    match sd {
        Some(sd) => match signer_certificate(sd) {
            Err(why) => SignatureCheck::Invalid(why),
            Ok(_) if verified_natively(sd, content) => SignatureCheck::Valid,
            Ok(_) => verified_by_openssl(p7s, content),
        },
        None => verified_by_openssl(p7s, content),
    }
}

/// OpenSSL's verdict on a detached signature, with its reason when it fails.
fn verified_by_openssl(p7s: &[u8], content: &[u8]) -> SignatureCheck {
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
    if let Ok(sd) = decode(p7m)
        && let Err(why) = signer_certificate(&sd)
    {
        return (SignatureCheck::Invalid(why), None);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smime::{SoftwareSigner, signed_data};
    use crate::{TimeRef, pki};

    fn signature(content: &[u8]) -> Vec<u8> {
        let ca = pki::make_ca("Test CA", 1_700_000_000, 30).unwrap();
        let cert =
            pki::issue_signing_cert(&ca, "Prova", "pec.test", None, 1_700_000_000, 30).unwrap();
        let signer = SoftwareSigner::from_pkcs8(
            &cert.key_pkcs8_der().unwrap(),
            cert.cert_der().unwrap(),
            vec![],
        )
        .unwrap();
        signed_data(&signer, content, TimeRef::from_unix(1_700_000_100).unwrap()).unwrap()
    }

    /// The native path confirms our own signatures, and refuses altered content or signature
    /// bytes, leaving the verdict to OpenSSL, which agrees.
    #[test]
    fn native_check_agrees_with_openssl() {
        let content = b"Content-Type: text/plain\r\n\r\nciao\r\n";
        let p7s = signature(content);
        let sd = decode(&p7s).unwrap();
        assert!(verified_natively(&sd, content));
        assert_eq!(verify_detached(&p7s, content), SignatureCheck::Valid);

        let altered = b"Content-Type: text/plain\r\n\r\nciaO\r\n";
        assert!(!verified_natively(&sd, altered));
        assert!(matches!(
            verify_detached(&p7s, altered),
            SignatureCheck::Invalid(_)
        ));

        let mut broken = p7s.clone();
        let n = broken.len();
        broken[n - 10] ^= 1; // inside the signature value, the last field
        assert!(!verified_natively(&decode(&broken).unwrap(), content));
        assert!(matches!(
            verify_detached(&broken, content),
            SignatureCheck::Invalid(_)
        ));
    }

    /// A signature whose structure holds a forger's certificate under the issuer and serial
    /// number of the real provider certificate, next to that certificate, is refused by every
    /// check: otherwise the signature could be checked with the forger's key and the chain
    /// and the Indice with the real certificate.
    #[test]
    fn two_certificates_under_the_signer_identifier_are_refused() {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        let content = b"Content-Type: text/plain\r\n\r\nciao\r\n";
        let at = TimeRef::from_unix(1_700_000_100).unwrap();
        let ca = pki::make_ca("Test CA", 1_700_000_000, 30).unwrap();
        let real =
            pki::issue_signing_cert(&ca, "Prova", "pec.test", None, 1_700_000_000, 30).unwrap();
        let real_der = real.cert_der().unwrap();
        let real_x509 = X509::from_der(&real_der).unwrap();

        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(real_x509.serial_number()).unwrap();
        b.set_issuer_name(real_x509.issuer_name()).unwrap();
        b.set_subject_name(real_x509.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(real_x509.not_before()).unwrap();
        b.set_not_after(real_x509.not_after()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let forged = b.build().to_der().unwrap();
        let signer = SoftwareSigner::from_pkcs8(
            &key.private_key_to_pkcs8().unwrap(),
            forged,
            vec![real_der.clone()],
        )
        .unwrap();
        let p7s = signed_data(&signer, content, at).unwrap();

        let SignatureCheck::Invalid(why) = verify_detached(&p7s, content) else {
            panic!("a signature with two certificates under its identifier verified");
        };
        assert!(why.contains("ambiguous"), "{why}");
        assert!(cms_info(&p7s).is_err());
        let (info, check) = check_detached(&p7s, content);
        assert!(info.is_err());
        assert!(matches!(check, SignatureCheck::Invalid(_)));
    }
}
