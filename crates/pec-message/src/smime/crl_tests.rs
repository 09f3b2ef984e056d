//! Unit tests of the revocation check: every way a CRL is taken, refused, and decides.

use super::*;
use crate::pki::{self, Issued};
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::hash::MessageDigest;
use openssl::x509::{X509CrlBuilder, X509Extension};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
const URL: &str = "http://crl.test/ca.crl";

struct World {
    ca: Issued,
    listed: X509,
    der: Vec<u8>,
}

fn world() -> World {
    let ca = pki::make_ca("CRL CA", T0, 30).unwrap();
    let listed = pki::issue_signing_cert_with_points(
        &ca,
        "Gestore",
        "g.test",
        None,
        T0,
        10,
        pki::RevocationPoints {
            crl: Some(URL),
            ocsp: None,
        },
    )
    .unwrap()
    .cert;
    let der = listed.to_der().unwrap();
    World { ca, listed, der }
}

fn taken(w: &World, crl: &X509Crl, now: i64) -> Crls {
    let f = FetchedCrl::check(
        &crl.to_der().unwrap(),
        URL,
        now,
        std::slice::from_ref(&w.ca.cert),
    )
    .unwrap();
    let mut c = Crls::new(false);
    c.insert(URL, Arc::new(f));
    c
}

#[test]
fn the_distribution_point_is_read_from_the_certificate() {
    let w = world();
    assert_eq!(distribution_points(&w.der), vec![URL.to_string()]);
    assert_eq!(
        distribution_points(&w.ca.cert.to_der().unwrap()),
        Vec::<String>::new()
    );
}

#[test]
fn a_certificate_without_a_distribution_point_has_nothing_to_check() {
    let w = world();
    let plain = pki::issue_signing_cert(&w.ca, "Other", "o.test", None, T0, 10)
        .unwrap()
        .cert;
    let der = plain.to_der().unwrap();
    let r = check_revocation(&plain, &der, &Crls::default(), T0 + DAY);
    assert_eq!(r.status, RevocationStatus::NotPublished);
}

#[test]
fn a_current_crl_that_does_not_list_the_certificate_says_good() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[], T0, T0 + 2 * DAY).unwrap();
    let r = check_revocation(&w.listed, &w.der, &taken(&w, &crl, T0), T0 + DAY);
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    assert_eq!(r.crl.as_deref(), Some(URL));
}

#[test]
fn a_listed_certificate_is_revoked_from_its_revocation_date() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[(&w.listed, T0 + DAY)], T0 + DAY, T0 + 3 * DAY).unwrap();
    let set = taken(&w, &crl, T0 + DAY);
    let r = check_revocation(&w.listed, &w.der, &set, T0 + 2 * DAY);
    assert_eq!(r.status, RevocationStatus::Revoked, "{r:?}");
    assert!(r.detail.unwrap().contains("revoked on 2023-11-15"));
    // A message checked at a time before the revocation (pec verify --at) was good then.
    let r = check_revocation(&w.listed, &w.der, &set, T0 + 3_600);
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    // A listed revocation stays final after the CRL's nextUpdate.
    let r = check_revocation(&w.listed, &w.der, &set, T0 + 9 * DAY);
    assert_eq!(r.status, RevocationStatus::Revoked);
}

#[test]
fn an_out_of_date_or_missing_crl_leaves_the_status_unknown() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[], T0, T0 + DAY).unwrap();
    let r = check_revocation(&w.listed, &w.der, &taken(&w, &crl, T0), T0 + 2 * DAY);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("out of date"));
    let r = check_revocation(&w.listed, &w.der, &Crls::default(), T0);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("no CRL is held"));
}

/// A CRL made with another key under the same CA name is not taken, nor one whose issuer
/// is not known at all.
#[test]
fn a_forged_or_unverifiable_crl_is_not_taken() {
    let w = world();
    let forger = pki::make_ca("CRL CA", T0, 30).unwrap();
    assert!(same_name(
        forger.cert.subject_name(),
        w.ca.cert.subject_name()
    ));
    let forged = pki::make_crl(&forger, &[], T0, T0 + 2 * DAY).unwrap();
    let der = forged.to_der().unwrap();
    let e = FetchedCrl::check(&der, URL, T0, std::slice::from_ref(&w.ca.cert)).err();
    assert!(e.unwrap().to_string().contains("does not verify"));
    let genuine = pki::make_crl(&w.ca, &[], T0, T0 + 2 * DAY).unwrap();
    assert!(FetchedCrl::check(&genuine.to_der().unwrap(), URL, T0, &[]).is_err());
}

/// A CRL taken for the URL but signed by another CA never decides for this certificate.
#[test]
fn a_crl_of_another_issuer_is_not_used() {
    let w = world();
    let other = pki::make_ca("Other CA", T0, 30).unwrap();
    let crl = pki::make_crl(&other, &[], T0, T0 + 2 * DAY).unwrap();
    let f = FetchedCrl::check(
        &crl.to_der().unwrap(),
        URL,
        T0,
        std::slice::from_ref(&other.cert),
    )
    .unwrap();
    let mut set = Crls::new(false);
    set.insert(URL, Arc::new(f));
    let r = check_revocation(&w.listed, &w.der, &set, T0 + DAY);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("not signed by the key"));
}

/// Only a CA certificate with cRLSign vouches for a CRL: a provider's own certificate (an
/// Indice leaf, pinned as an anchor) never does.
#[test]
fn only_a_ca_may_vouch_for_a_crl() {
    let w = world();
    assert!(can_sign_crls(&w.ca.cert));
    assert!(!can_sign_crls(&w.listed));
    let leaf = pki::issue_signing_cert(&w.ca, "Leaf", "l.test", None, T0, 10).unwrap();
    let by_leaf = pki::make_crl(&leaf, &[], T0, T0 + DAY).unwrap();
    let e = FetchedCrl::check(
        &by_leaf.to_der().unwrap(),
        URL,
        T0,
        std::slice::from_ref(&leaf.cert),
    );
    assert!(e.err().unwrap().to_string().contains("does not verify"));
}

/// `make_crl` with extra CRL extensions.
fn crl_with(ca: &Issued, ext: &[(&str, bool, &[u8])], this: i64, next: i64) -> X509Crl {
    crl_listing(ca, ext, &[], this, next)
}

/// `make_crl` with extra CRL extensions and the revoked entries given in DER.
fn crl_listing(
    ca: &Issued,
    ext: &[(&str, bool, &[u8])],
    entries: &[Vec<u8>],
    this: i64,
    next: i64,
) -> X509Crl {
    let mut b = X509CrlBuilder::new().unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_last_update(&Asn1Time::from_unix(this as _).unwrap())
        .unwrap();
    b.set_next_update(&Asn1Time::from_unix(next as _).unwrap())
        .unwrap();
    // AKI and CRL number copied from a regular CRL, so the builder accepts it.
    let plain = pki::make_crl(ca, &[], this, next)
        .unwrap()
        .to_der()
        .unwrap();
    let parsed = x509_cert::crl::CertificateList::from_der(&plain).unwrap();
    for e in parsed.tbs_cert_list.crl_extensions.iter().flatten() {
        b.append_extension(
            X509Extension::new_from_der(
                &Asn1Object::from_str(&e.extn_id.to_string()).unwrap(),
                false,
                &Asn1OctetString::new_from_bytes(e.extn_value.as_bytes()).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    }
    for (oid, critical, der) in ext {
        b.append_extension(
            X509Extension::new_from_der(
                &Asn1Object::from_str(oid).unwrap(),
                *critical,
                &Asn1OctetString::new_from_bytes(der).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    }
    for e in entries {
        b.add_revoked(openssl::x509::X509Revoked::from_der(e).unwrap())
            .unwrap();
    }
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    b.build().unwrap()
}

#[test]
fn partial_delta_and_future_crls_are_refused() {
    let w = world();
    let check = |crl: &X509Crl, now: i64| {
        FetchedCrl::check(
            &crl.to_der().unwrap(),
            URL,
            now,
            std::slice::from_ref(&w.ca.cert),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    // deltaCRLIndicator (RFC 5280 §5.2.4).
    let delta = crl_with(&w.ca, &[("2.5.29.27", true, &[2, 1, 1])], T0, T0 + DAY);
    assert!(check(&delta, T0).contains("delta"));
    // issuingDistributionPoint with onlyContainsCACerts.
    let ca_only = crl_with(
        &w.ca,
        &[("2.5.29.28", true, &[0x30, 3, 0x82, 1, 0xff])],
        T0,
        T0 + DAY,
    );
    assert!(check(&ca_only, T0).contains("only part"));
    // An unknown critical extension.
    let odd = crl_with(&w.ca, &[("1.2.3.4", true, &[5, 0])], T0, T0 + DAY);
    assert!(check(&odd, T0).contains("unsupported critical extension"));
    // The control: the same shape with nothing extra is taken.
    let fine = crl_with(&w.ca, &[], T0, T0 + DAY);
    assert_eq!(check(&fine, T0), "");
    // A thisUpdate a day ahead of the clock.
    assert!(check(&fine, T0 - DAY).contains("in the future"));
}

#[test]
fn crls_are_read_in_der_and_pem_and_anything_else_is_refused() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[(&w.listed, T0)], T0, T0 + DAY).unwrap();
    let anchors = [w.ca.cert.clone()];
    let der = FetchedCrl::check(&crl.to_der().unwrap(), URL, T0, &anchors).unwrap();
    let pem = FetchedCrl::check(&crl.to_pem().unwrap(), URL, T0, &anchors).unwrap();
    for f in [&der, &pem] {
        assert_eq!(f.this_update(), T0);
        assert_eq!(f.next_update(), T0 + DAY);
        assert_eq!(f.revoked_count(), 1);
        assert_eq!(f.issuer(), "C=IT, O=PEC development PKI, CN=CRL CA");
    }
    assert!(FetchedCrl::check(b"<html>not found</html>", URL, T0, &anchors).is_err());
}

/// A revoked entry for `cert` on `when` (UTCTime text) carrying one extension, in DER.
fn entry_with(cert: &X509, when: &str, oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128);
        [&[tag, body.len() as u8][..], body].concat()
    }
    let mut serial = cert.serial_number().to_bn().unwrap().to_vec();
    if serial[0] & 0x80 != 0 {
        serial.insert(0, 0);
    }
    let mut ext = tlv(0x06, oid);
    if critical {
        ext.extend(tlv(0x01, &[0xff]));
    }
    ext.extend(tlv(0x04, value));
    let body = [
        tlv(0x02, &serial),
        tlv(0x17, when.as_bytes()),
        tlv(0x30, &tlv(0x30, &ext)),
    ]
    .concat();
    tlv(0x30, &body)
}

#[test]
fn a_crl_with_an_unknown_critical_entry_extension_is_not_used() {
    let w = world();
    let crl_listing = |entry: Vec<u8>| {
        crl_listing(&w.ca, &[], &[entry], T0, T0 + DAY)
            .to_der()
            .unwrap()
    };
    let anchors = std::slice::from_ref(&w.ca.cert);
    // RFC 5280 §5.3: an entry extension we cannot process, marked critical, makes the
    // whole CRL unusable.
    let odd = crl_listing(entry_with(
        &w.listed,
        "231114221320Z",
        &[0x2a, 3, 4],
        true,
        &[5, 0],
    ));
    let e = FetchedCrl::check(&odd, URL, T0, anchors).err().unwrap();
    assert!(e.to_string().contains("entry"), "{e}");
    assert!(e.to_string().contains("1.2.3.4"), "{e}");
    // The same extension not marked critical is ignored, and so is a critical reasonCode
    // (keyCompromise): the CRL is taken and the certificate is revoked.
    for (oid, critical, value) in [
        (&[0x2a, 3, 4][..], false, &[5, 0][..]),
        (&[0x55, 0x1d, 0x15][..], true, &[0x0a, 1, 1][..]),
    ] {
        let der = crl_listing(entry_with(&w.listed, "231114221320Z", oid, critical, value));
        let f = FetchedCrl::check(&der, URL, T0, anchors).unwrap();
        let mut set = Crls::new(false);
        set.insert(URL, Arc::new(f));
        let r = check_revocation(&w.listed, &w.der, &set, T0 + 1);
        assert_eq!(r.status, RevocationStatus::Revoked, "{r:?}");
    }
}
