//! Unit tests of the revocation check: every way a CRL decides or fails to decide.

use super::*;
use crate::pki::{self, Issued};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
const URL: &str = "http://crl.test/ca.crl";

struct World {
    ca: Issued,
    listed: X509,
    anchors: Vec<X509>,
}

fn world() -> World {
    let ca = pki::make_ca("CRL CA", T0, 30).unwrap();
    let listed =
        pki::issue_signing_cert_with_crl(&ca, "Gestore", "g.test", None, T0, 10, Some(URL))
            .unwrap()
            .cert;
    let anchors = vec![ca.cert.clone()];
    World {
        ca,
        listed,
        anchors,
    }
}

fn crls(crl: &X509Crl, fetched: i64) -> Crls {
    let mut c = Crls::new(false);
    let f = FetchedCrl::parse(&crl.to_der().unwrap(), fetched).unwrap();
    c.insert(URL, Arc::new(f));
    c
}

#[test]
fn the_distribution_point_is_read_from_the_certificate() {
    let w = world();
    assert_eq!(distribution_points(&w.listed), vec![URL.to_string()]);
    assert_eq!(distribution_points(&w.ca.cert), Vec::<String>::new());
}

#[test]
fn a_certificate_without_a_distribution_point_has_nothing_to_check() {
    let w = world();
    let plain = pki::issue_signing_cert(&w.ca, "Other", "o.test", None, T0, 10)
        .unwrap()
        .cert;
    let r = check_revocation(&plain, &w.anchors, &[], &Crls::default(), T0 + DAY);
    assert_eq!(r.status, RevocationStatus::NotPublished);
}

#[test]
fn a_current_crl_that_does_not_list_the_certificate_says_good() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[], T0, T0 + 2 * DAY).unwrap();
    let r = check_revocation(&w.listed, &w.anchors, &[], &crls(&crl, T0), T0 + DAY);
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    assert_eq!(r.crl.as_deref(), Some(URL));
}

#[test]
fn a_listed_certificate_is_revoked_from_its_revocation_date() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[(&w.listed, T0 + DAY)], T0 + DAY, T0 + 3 * DAY).unwrap();
    let set = crls(&crl, T0 + DAY);
    let r = check_revocation(&w.listed, &w.anchors, &[], &set, T0 + 2 * DAY);
    assert_eq!(r.status, RevocationStatus::Revoked, "{r:?}");
    assert!(r.detail.unwrap().contains("revoked on 2023-11-15"));
    // A message checked at a time before the revocation (pec verify --at) was good then.
    let r = check_revocation(&w.listed, &w.anchors, &[], &set, T0 + 3_600);
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    // A listed revocation stays final after the CRL's nextUpdate.
    let r = check_revocation(&w.listed, &w.anchors, &[], &set, T0 + 9 * DAY);
    assert_eq!(r.status, RevocationStatus::Revoked);
}

#[test]
fn an_out_of_date_or_missing_crl_leaves_the_status_unknown() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[], T0, T0 + DAY).unwrap();
    let r = check_revocation(&w.listed, &w.anchors, &[], &crls(&crl, T0), T0 + 2 * DAY);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("out of date"));
    let r = check_revocation(&w.listed, &w.anchors, &[], &Crls::default(), T0);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("no CRL has been fetched"));
}

/// A CRL made with another key under the same CA name is not believed, and neither is a
/// forged issuer certificate offered in the message to make it verify.
#[test]
fn a_forged_crl_or_issuer_is_not_believed() {
    let w = world();
    let forger = pki::make_ca("CRL CA", T0, 30).unwrap();
    assert_eq!(
        forger.cert.subject_name().to_der().unwrap(),
        w.ca.cert.subject_name().to_der().unwrap()
    );
    let forged = pki::make_crl(&forger, &[], T0, T0 + 2 * DAY).unwrap();
    let set = crls(&forged, T0);
    let r = check_revocation(&w.listed, &w.anchors, &[], &set, T0 + DAY);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("does not verify"));
    // The forger's certificate in the CMS does not verify the signer: no issuer is found.
    let r = check_revocation(
        &w.listed,
        &[],
        &[forger.cert.to_der().unwrap()],
        &set,
        T0 + DAY,
    );
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(r.detail.unwrap().contains("neither in the message"));
}

/// With no anchors, the issuer certificate carried in the message checks the CRL.
#[test]
fn the_issuer_may_come_from_the_message() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[(&w.listed, T0)], T0, T0 + 2 * DAY).unwrap();
    let r = check_revocation(
        &w.listed,
        &[],
        &[w.ca.cert.to_der().unwrap()],
        &crls(&crl, T0),
        T0 + DAY,
    );
    assert_eq!(r.status, RevocationStatus::Revoked);
}

#[test]
fn a_crl_of_another_issuer_is_not_used() {
    let w = world();
    let other = pki::make_ca("Other CA", T0, 30).unwrap();
    let crl = pki::make_crl(&other, &[], T0, T0 + 2 * DAY).unwrap();
    let r = check_revocation(&w.listed, &w.anchors, &[], &crls(&crl, T0), T0 + DAY);
    assert_eq!(r.status, RevocationStatus::Unknown);
    assert!(
        r.detail
            .unwrap()
            .contains("not by the certificate's issuer")
    );
}

#[test]
fn crls_are_read_in_der_and_pem_and_anything_else_is_refused() {
    let w = world();
    let crl = pki::make_crl(&w.ca, &[(&w.listed, T0)], T0, T0 + DAY).unwrap();
    let der = FetchedCrl::parse(&crl.to_der().unwrap(), T0).unwrap();
    let pem = FetchedCrl::parse(&crl.to_pem().unwrap(), T0).unwrap();
    for f in [&der, &pem] {
        assert_eq!(f.this_update(), T0);
        assert_eq!(f.next_update(), Some(T0 + DAY));
        assert_eq!(f.revoked_count(), 1);
        assert_eq!(f.issuer(), "C=IT, O=PEC development PKI, CN=CRL CA");
    }
    assert!(FetchedCrl::parse(b"<html>not found</html>", T0).is_err());
}
