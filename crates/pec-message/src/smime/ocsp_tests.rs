//! Unit tests of OCSP: responses made by OpenSSL's own responder (`openssl ocsp`, offline
//! from a request file), taken, refused, and weighed beside the CRL.

use super::*;
use crate::pki::{self, Issued, RevocationPoints};
use crate::smime::{Crls, RevocationStatus, check_revocation};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const RESPONDER: &str = "http://ocsp.test/ca";
const CRL_URL: &str = "http://crl.test/ca.crl";
const DAY: i64 = 86_400;

struct World {
    dir: tempfile::TempDir,
    ca: Issued,
    cert: X509,
}

fn world(crl: bool) -> World {
    let t0 = chrono::Utc::now().timestamp() - DAY;
    let ca = pki::make_ca("OCSP CA", t0, 30).unwrap();
    let points = RevocationPoints {
        crl: crl.then_some(CRL_URL),
        ocsp: Some(RESPONDER),
    };
    let cert = pki::issue_signing_cert_with_points(&ca, "Gestore", "g.test", None, t0, 10, points)
        .unwrap()
        .cert;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("ca.key"),
        ca.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.to_pem().unwrap()).unwrap();
    World { dir, ca, cert }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command is needed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How the responder's index (OpenSSL's format) lists the certificate.
enum Listed<'a> {
    Valid,
    /// Revoked at this UTCTime.
    Revoked(&'a str),
    /// Not at all: the index holds another serial.
    Absent,
}

/// The CA's answer about `w.cert`, signed with `signer` (a directory holding `ca.pem` and
/// `ca.key`), with the certificate listed as `listed`.
fn response(w: &World, listed: Listed, signer: &Path) -> Vec<u8> {
    let serial = w
        .cert
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap();
    let subject = "/C=IT/O=Gestore/CN=Posta Certificata Gestore";
    let line = match listed {
        Listed::Valid => format!("V\t391231235959Z\t\t{serial}\tunknown\t{subject}\n"),
        Listed::Revoked(when) => {
            format!("R\t391231235959Z\t{when}\t{serial}\tunknown\t{subject}\n")
        }
        Listed::Absent => "V\t391231235959Z\t\t01\tunknown\t/CN=other\n".to_string(),
    };
    let d = w.dir.path();
    std::fs::write(d.join("index.txt"), line).unwrap();
    openssl(
        d,
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "cert.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    let rsigner = signer.join("ca.pem");
    let rkey = signer.join("ca.key");
    openssl(
        d,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            "ca.pem",
            "-rsigner",
            rsigner.to_str().unwrap(),
            "-rkey",
            rkey.to_str().unwrap(),
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
            "-ndays",
            "1",
        ],
    );
    std::fs::read(d.join("resp.der")).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn held(w: &World, f: FetchedOcsp) -> Crls {
    let mut c = Crls::new(false);
    c.insert_ocsp(w.cert.to_der().unwrap(), Arc::new(f));
    c
}

#[test]
fn the_responder_is_read_from_the_certificate_and_asked_with_a_get() {
    let w = world(false);
    assert_eq!(responder(&w.cert).as_deref(), Some(RESPONDER));
    assert_eq!(responder(&w.ca.cert), None);
    let url = request_url(RESPONDER, &w.cert, &w.ca.cert).unwrap();
    let encoded = url.strip_prefix("http://ocsp.test/ca/").unwrap();
    assert!(!encoded.contains(['/', '+', '=']), "{url}");
    let b64 = encoded
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    openssl::ocsp::OcspRequest::from_der(&der).unwrap();
}

#[test]
fn a_good_answer_of_the_ca_decides_when_no_crl_does() {
    let w = world(false);
    let bytes = response(&w, Listed::Valid, w.dir.path());
    let f = FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now()).unwrap();
    assert_eq!(f.state, OcspState::Good);
    assert!(f.next_update.unwrap() > now() + DAY - 600);
    let der = w.cert.to_der().unwrap();
    let r = check_revocation(&w.cert, &der, &held(&w, f), now());
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    assert_eq!(r.ocsp.as_deref(), Some(RESPONDER));
    assert_eq!(r.crl, None);
    // Without the response, a certificate naming no distribution point has nothing to check.
    let r = check_revocation(&w.cert, &der, &Crls::default(), now());
    assert_eq!(r.status, RevocationStatus::NotPublished);
    // Past its nextUpdate the response decides nothing.
    let f = FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now()).unwrap();
    let r = check_revocation(&w.cert, &der, &held(&w, f), now() + 2 * DAY);
    assert_eq!(r.status, RevocationStatus::NotPublished, "{r:?}");
}

#[test]
fn a_revocation_the_responder_reports_is_final_beside_a_good_crl() {
    let w = world(true);
    let bytes = response(&w, Listed::Revoked("240101000000Z"), w.dir.path());
    let f = FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now()).unwrap();
    assert_eq!(f.state, OcspState::Revoked(1_704_067_200));
    let crl = pki::make_crl(&w.ca, &[], now() - 60, now() + DAY).unwrap();
    let mut set = held(&w, f);
    set.insert(
        CRL_URL,
        Arc::new(
            crate::smime::FetchedCrl::check(
                &crl.to_der().unwrap(),
                CRL_URL,
                now(),
                std::slice::from_ref(&w.ca.cert),
            )
            .unwrap(),
        ),
    );
    let der = w.cert.to_der().unwrap();
    let r = check_revocation(&w.cert, &der, &set, now());
    assert_eq!(r.status, RevocationStatus::Revoked, "{r:?}");
    assert!(r.detail.unwrap().contains("revoked on 2024-01-01"));
    // Checked at a time before the revocation, the CRL's good stands.
    let r = check_revocation(&w.cert, &der, &set, 1_704_067_100);
    assert_eq!(r.status, RevocationStatus::Good, "{r:?}");
    assert_eq!(r.crl.as_deref(), Some(CRL_URL));
}

#[test]
fn answers_not_signed_for_the_ca_or_not_current_are_refused() {
    let w = world(false);
    let other = world(false);
    // Signed by another CA's key.
    let bytes = response(&w, Listed::Valid, other.dir.path());
    let e = FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now()).unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    // Checked against the wrong issuer.
    let bytes = response(&w, Listed::Valid, w.dir.path());
    assert!(FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &other.ca.cert, now()).is_err());
    // Past nextUpdate, or made a day ahead of the clock.
    let e =
        FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now() + 2 * DAY).unwrap_err();
    assert!(e.to_string().contains("out of date"), "{e}");
    let e = FetchedOcsp::check(&bytes, RESPONDER, &w.cert, &w.ca.cert, now() - DAY).unwrap_err();
    assert!(e.to_string().contains("in the future"), "{e}");
    // Not a response at all.
    let e = FetchedOcsp::check(b"<html>", RESPONDER, &w.cert, &w.ca.cert, now()).unwrap_err();
    assert!(e.to_string().contains("not an OCSP response"), "{e}");
}

#[test]
fn a_certificate_the_responder_does_not_know_stays_undecided() {
    let w = world(true);
    // The responder is asked about the certificate, but its index lists another serial.
    let unknown = response(&w, Listed::Absent, w.dir.path());
    let f = FetchedOcsp::check(&unknown, RESPONDER, &w.cert, &w.ca.cert, now()).unwrap();
    assert_eq!(f.state, OcspState::Unknown);
    let der = w.cert.to_der().unwrap();
    let r = check_revocation(&w.cert, &der, &held(&w, f), now());
    assert_eq!(r.status, RevocationStatus::Unknown, "{r:?}");
}
