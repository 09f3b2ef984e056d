//! A development PKI: a private CA that plays AgID CA1 and provider signing certificates with
//! the profile of pec.md §4.2, plus a checker for that profile. Real deployments get their
//! certificate from AgID (pec.md §4.3); this is for labs, tests and `pec samples`.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage,
    SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{
    X509, X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509NameBuilder, X509NameRef,
    X509Ref, X509RevokedBuilder,
};

/// A PKI failure (OpenSSL error text).
#[derive(Debug, thiserror::Error)]
#[error("development PKI: {0}")]
pub struct PkiError(String);

impl From<openssl::error::ErrorStack> for PkiError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        PkiError(e.to_string())
    }
}

/// A certificate with its private key.
pub struct Issued {
    /// The certificate.
    pub cert: X509,
    /// The private key.
    pub key: PKey<Private>,
}

impl Issued {
    /// The private key as PKCS#8 DER (for [`crate::smime::SoftwareSigner`]).
    pub fn key_pkcs8_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.key.private_key_to_pkcs8()?)
    }

    /// The certificate as DER.
    pub fn cert_der(&self) -> Result<Vec<u8>, PkiError> {
        Ok(self.cert.to_der()?)
    }
}

fn serial() -> Result<Asn1Integer, PkiError> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

fn rsa_key() -> Result<PKey<Private>, PkiError> {
    Ok(PKey::from_rsa(Rsa::generate(2048)?)?)
}

/// Validity window: from `not_before` (Unix seconds) for `days` days.
fn validity(b: &mut X509Builder, not_before: i64, days: u32) -> Result<(), PkiError> {
    b.set_not_before(&*Asn1Time::from_unix(not_before as _)?)?;
    b.set_not_after(&*Asn1Time::from_unix(
        (not_before + i64::from(days) * 86_400) as _,
    )?)?;
    Ok(())
}

/// A version-3 certificate builder with a fresh serial, the names, the key and the validity set.
fn builder<T: openssl::pkey::HasPublic>(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &openssl::pkey::PKeyRef<T>,
    not_before: i64,
    days: u32,
) -> Result<X509Builder, PkiError> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(&*serial()?)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    validity(&mut b, not_before, days)?;
    Ok(b)
}

/// Makes a self-signed CA (RSA-2048, SHA-256, CA:TRUE pathlen 0, keyCertSign and cRLSign),
/// named like AgID CA1 with a development marker.
pub fn make_ca(common_name: &str, not_before: i64, days: u32) -> Result<Issued, PkiError> {
    let key = rsa_key()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, "IT")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "PEC development PKI")?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut b = builder(&name, &name, &key, not_before, days)?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok(Issued {
        cert: b.build(),
        key,
    })
}

/// Issues a provider signing certificate with the pec.md §4.2 profile: subject with the
/// provider name in O and CN, keyUsage critical digitalSignature, SAN rfc822Name
/// `posta-certificata@<service domain>`, AKI, SKI, EKU emailProtection, no basicConstraints.
/// A fresh RSA-2048 key is made unless `key` is given (e.g. the public half of an HSM key).
pub fn issue_signing_cert(
    ca: &Issued,
    provider_name: &str,
    service_domain: &str,
    key: Option<PKey<Private>>,
    not_before: i64,
    days: u32,
) -> Result<Issued, PkiError> {
    issue_signing_cert_with_points(
        ca,
        provider_name,
        service_domain,
        key,
        not_before,
        days,
        RevocationPoints::default(),
    )
}

/// Where peers learn whether a certificate is revoked (pec.md §4.3, §4.4 step 3).
#[derive(Debug, Clone, Copy, Default)]
pub struct RevocationPoints<'a> {
    /// The URL of the CA's CRL, named in a cRLDistributionPoints extension.
    pub crl: Option<&'a str>,
    /// The URL of the CA's OCSP responder, named in an authorityInfoAccess extension.
    pub ocsp: Option<&'a str>,
}

/// [`issue_signing_cert`] naming the CA's CRL and OCSP responder of `points`, where peers
/// check this certificate (pec.md §4.4 step 3).
pub fn issue_signing_cert_with_points(
    ca: &Issued,
    provider_name: &str,
    service_domain: &str,
    key: Option<PKey<Private>>,
    not_before: i64,
    days: u32,
    points: RevocationPoints<'_>,
) -> Result<Issued, PkiError> {
    let key = match key {
        Some(k) => k,
        None => rsa_key()?,
    };
    let cert = signing_cert(
        ca,
        provider_name,
        service_domain,
        &key,
        (not_before, days),
        points,
    )?;
    Ok(Issued { cert, key })
}

/// Issues a signing certificate for a public key held elsewhere (an HSM).
pub fn issue_for_public_key<T: openssl::pkey::HasPublic>(
    ca: &Issued,
    provider_name: &str,
    service_domain: &str,
    public: &openssl::pkey::PKeyRef<T>,
    not_before: i64,
    days: u32,
) -> Result<X509, PkiError> {
    signing_cert(
        ca,
        provider_name,
        service_domain,
        public,
        (not_before, days),
        RevocationPoints::default(),
    )
}

/// The signing certificate of pec.md §4.2 for `public`, valid from `.0` for `.1` days.
fn signing_cert<T: openssl::pkey::HasPublic>(
    ca: &Issued,
    provider_name: &str,
    service_domain: &str,
    public: &openssl::pkey::PKeyRef<T>,
    (not_before, days): (i64, u32),
    points: RevocationPoints<'_>,
) -> Result<X509, PkiError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, "IT")?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, provider_name)?;
    name.append_entry_by_nid(
        Nid::COMMONNAME,
        &format!("Posta Certificata {provider_name}"),
    )?;
    let name = name.build();
    let mut b = builder(&name, ca.cert.subject_name(), public, not_before, days)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
    let ctx = b.x509v3_context(Some(&ca.cert), None);
    let ski = SubjectKeyIdentifier::new().build(&ctx)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?;
    let san = SubjectAlternativeName::new()
        .email(&format!(
            "posta-certificata@{}",
            service_domain.to_ascii_lowercase()
        ))
        .build(&ctx)?;
    b.append_extension(ski)?;
    b.append_extension(aki)?;
    b.append_extension(san)?;
    if let Some(url) = points.crl {
        b.append_extension(crl_distribution_point(url)?)?;
    }
    if let Some(url) = points.ocsp {
        b.append_extension(ocsp_access(url)?)?;
    }
    b.sign(&ca.key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn extension(oid: &str, der: &[u8]) -> Result<X509Extension, PkiError> {
    Ok(X509Extension::new_from_der(
        &*Asn1Object::from_str(oid)?,
        false,
        &*Asn1OctetString::new_from_bytes(der)?,
    )?)
}

/// The cRLDistributionPoints extension with one distribution point whose fullName is the
/// URI `url` (RFC 5280 §4.2.1.13).
fn crl_distribution_point(url: &str) -> Result<X509Extension, PkiError> {
    let full_name = tlv(0xA0, &tlv(0x86, url.as_bytes()));
    let point = tlv(0x30, &tlv(0xA0, &full_name));
    extension("2.5.29.31", &tlv(0x30, &point))
}

/// The authorityInfoAccess extension naming the OCSP responder `url` (RFC 5280 §4.2.2.1).
fn ocsp_access(url: &str) -> Result<X509Extension, PkiError> {
    // id-ad-ocsp, 1.3.6.1.5.5.7.48.1.
    let method = tlv(0x06, &[0x2b, 6, 1, 5, 5, 7, 0x30, 1]);
    let access = tlv(0x30, &[method, tlv(0x86, url.as_bytes())].concat());
    extension("1.3.6.1.5.5.7.1.1", &tlv(0x30, &access))
}

/// A version-2 CRL of `ca` (SHA-256), issued at `this_update` and due again at
/// `next_update` (Unix seconds), listing each certificate of `revoked` with its revocation
/// time; its CRL number is `this_update`, so later lists have larger numbers (RFC 5280 §5.2.3).
pub fn make_crl(
    ca: &Issued,
    revoked: &[(&X509Ref, i64)],
    this_update: i64,
    next_update: i64,
) -> Result<X509Crl, PkiError> {
    let mut b = X509CrlBuilder::new()?;
    b.set_issuer_name(ca.cert.subject_name())?;
    b.set_last_update(&*Asn1Time::from_unix(this_update as _)?)?;
    b.set_next_update(&*Asn1Time::from_unix(next_update as _)?)?;
    for (cert, when) in revoked {
        let mut entry = X509RevokedBuilder::new()?;
        entry.set_serial_number(cert.serial_number())?;
        entry.set_revocation_date(&*Asn1Time::from_unix(*when as _)?)?;
        b.add_revoked(entry.build())?;
    }
    let key_id = ca
        .cert
        .subject_key_id()
        .ok_or_else(|| PkiError("the CA certificate has no subjectKeyIdentifier".into()))?;
    b.append_extension(extension(
        "2.5.29.35",
        &tlv(0x30, &tlv(0x80, key_id.as_slice())),
    )?)?;
    let number = BigNum::from_dec_str(&this_update.max(0).to_string())?;
    b.append_extension(CrlNumber::new(number)?.build()?)?;
    b.sort()?;
    b.sign(&ca.key, MessageDigest::sha256())?;
    Ok(b.build()?)
}

/// Issues a TLS server certificate (serverAuth) for the DNS names and IP addresses given, for
/// the SMTP, IMAP, POP3 and HTTPS listeners of a development gestore (architecture §5).
pub fn issue_tls_cert(
    ca: &Issued,
    common_name: &str,
    dns_names: &[&str],
    ips: &[&str],
    not_before: i64,
    days: u32,
) -> Result<Issued, PkiError> {
    let key = rsa_key()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut b = builder(&name, ca.cert.subject_name(), &key, not_before, days)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let ctx = b.x509v3_context(Some(&ca.cert), None);
    let mut san = SubjectAlternativeName::new();
    for d in dns_names {
        san.dns(d);
    }
    for ip in ips {
        san.ip(ip);
    }
    let san = san.build(&ctx)?;
    let ski = SubjectKeyIdentifier::new().build(&ctx)?;
    let aki = AuthorityKeyIdentifier::new().keyid(true).build(&ctx)?;
    b.append_extension(san)?;
    b.append_extension(ski)?;
    b.append_extension(aki)?;
    b.sign(&ca.key, MessageDigest::sha256())?;
    Ok(Issued {
        cert: b.build(),
        key,
    })
}

/// Lists every way `cert` departs from the signing-certificate profile of pec.md §4.2 for
/// `service_domain` (empty when it conforms).
pub fn check_signing_profile(cert: &X509, service_domain: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let der = match cert.to_der() {
        Ok(d) => d,
        Err(e) => return vec![format!("cannot encode the certificate: {e}")],
    };
    let parsed = match <x509_cert::Certificate as der::Decode>::from_der(&der) {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot parse the certificate: {e}")],
    };
    let exts = parsed.tbs_certificate.extensions.unwrap_or_default();
    let find = |oid: const_oid::ObjectIdentifier| exts.iter().find(|e| e.extn_id == oid);
    use const_oid::db::rfc5280::*;
    match find(ID_CE_KEY_USAGE) {
        Some(e) if e.critical => {
            let ku =
                <x509_cert::ext::pkix::KeyUsage as der::Decode>::from_der(e.extn_value.as_bytes());
            if !ku.map(|k| k.digital_signature()).unwrap_or(false) {
                problems.push("keyUsage lacks digitalSignature".into());
            }
        }
        Some(_) => problems.push("keyUsage is not critical".into()),
        None => problems.push("keyUsage is missing".into()),
    }
    if find(ID_CE_BASIC_CONSTRAINTS).is_some() {
        problems.push("basicConstraints must not be present".into());
    }
    for (oid, label) in [
        (ID_CE_AUTHORITY_KEY_IDENTIFIER, "authorityKeyIdentifier"),
        (ID_CE_SUBJECT_KEY_IDENTIFIER, "subjectKeyIdentifier"),
        (ID_CE_SUBJECT_ALT_NAME, "subjectAltName"),
    ] {
        match find(oid) {
            Some(e) if e.critical => problems.push(format!("{label} must not be critical")),
            Some(_) => {}
            None => problems.push(format!("{label} is missing")),
        }
    }
    for e in exts.iter() {
        let known = [
            ID_CE_KEY_USAGE,
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            ID_CE_SUBJECT_KEY_IDENTIFIER,
            ID_CE_SUBJECT_ALT_NAME,
        ];
        if e.critical && !known.contains(&e.extn_id) {
            problems.push(format!("extension {} must not be critical", e.extn_id));
        }
    }
    let wanted = format!("posta-certificata@{}", service_domain.to_ascii_lowercase());
    let emails = certificate_emails(cert);
    if !emails.iter().any(|e| e.eq_ignore_ascii_case(&wanted)) {
        problems.push(format!(
            "subjectAltName does not hold rfc822Name {wanted} (found {emails:?})"
        ));
    }
    problems
}

/// The rfc822Name entries of the subjectAltName.
pub fn certificate_emails(cert: &X509) -> Vec<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The subject DN as `C=IT, O=..., CN=...`.
pub fn subject_string(cert: &X509) -> String {
    name_string(cert.subject_name())
}

/// A distinguished name as `C=IT, O=..., CN=...` (OpenSSL short names, in DN order).
pub fn name_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SHA-1 of the DER certificate in lower-case hex: the `providerCertificateHash` key of
/// the Indice (pec.md §4.4 step 2, §7.2).
pub fn certificate_sha1(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        der,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificate_has_the_pec_profile() {
        let ca = make_ca("AgID CA1 (development)", 1_700_000_000, 3650).expect("ca");
        let leaf = issue_signing_cert(
            &ca,
            "Example PEC S.p.A.",
            "pec.example.it",
            None,
            1_700_000_000,
            1095,
        )
        .expect("leaf");
        assert_eq!(
            check_signing_profile(&leaf.cert, "pec.example.it"),
            Vec::<String>::new()
        );
        assert_eq!(
            certificate_emails(&leaf.cert),
            vec!["posta-certificata@pec.example.it".to_string()]
        );
        assert!(subject_string(&leaf.cert).contains("O=Example PEC S.p.A."));
        // The CA itself fails the profile (it has basicConstraints, no SAN).
        let problems = check_signing_profile(&ca.cert, "pec.example.it");
        assert!(
            problems.iter().any(|p| p.contains("basicConstraints")),
            "{problems:?}"
        );
        assert_eq!(
            certificate_sha1(b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
