//! End-to-end: a provider certificate revoked by its CA stops being trusted by a peer gestore
//! (pec.md §4.4 step 3), whether the CA says so in its CRL or through its OCSP responder.
//! Real processes on loopback: gestori on 127.0.0.25 / .26, the CA's web server on .27, its
//! OCSP responder (`openssl ocsp`) on port 28082.

#![allow(clippy::unwrap_used)]

mod gestori;

use gestori::*;

fn tools() {
    require("curl");
    require("openssl");
}

/// Gestore A (`a` on `ip_a`, `pec init` with `extra`) and B (`b` on `ip_b`), peers, with A's
/// CA among B's trust anchors, as every gestore trusts AgID CA1: only a trust anchor vouches
/// for a CRL or an OCSP response.
fn pair(
    root: &std::path::Path,
    (a, ip_a): (&str, &str),
    (b, ip_b): (&str, &str),
    extra: &[&str],
) -> (Gestore, Gestore) {
    let ga = Gestore::init_with(
        root,
        a,
        "Gestore A",
        ip_a,
        &[format!("{b}={ip_b}:2525")],
        extra,
    );
    let gb = Gestore::init(root, b, "Gestore B", ip_b, &[format!("{a}={ip_a}:2525")]);
    std::fs::copy(ga.ca(), gb.dir.join("ca-a.pem")).unwrap();
    let toml = gb.dir.join("pec.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "anchors = [\"pki/ca.pem\"]",
        "anchors = [\"pki/ca.pem\", \"ca-a.pem\"]",
    );
    assert!(text.contains("ca-a.pem"));
    std::fs::write(&toml, text).unwrap();
    ga.peer(&gb);
    gb.peer(&ga);
    (ga, gb)
}

/// A plain message from mario at A to anna at B.
fn plain_message(a: &str, b: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: mario@{a}\r\nTo: anna@{b}\r\nSubject: {subject}\r\nMessage-ID: \
         <{subject}@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n\
         Testo.\r\n"
    )
    .into_bytes()
}

/// pec.md §4.4 step 3: B fetches the CRL that A's signing certificate names; while it does
/// not list A's certificate A's mail is PEC, and once it does, A's mail is no longer trusted
/// (an anomaly envelope for the recipient, no presa in carico for A).
#[test]
fn a_revoked_provider_certificate_is_no_longer_trusted() {
    tools();
    require("python3");
    let root = tempfile::tempdir().unwrap();
    let www = root.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let url = "http://127.0.0.27:8080/ra.crl";
    // B keeps the default 4-hour schedule: each new CRL below is fetched at once by
    // `pec admin crl --refresh`.
    let (mut a, mut b) = pair(
        root.path(),
        ("ra.test", "127.0.0.25"),
        ("rb.test", "127.0.0.26"),
        &["--crl-url", url],
    );
    std::fs::copy(a.dir.join("pki/ca.crl"), www.join("ra.crl")).unwrap();
    let _web = CrlServer::start(&www, "127.0.0.27", 8080);
    a.start();
    b.start();
    a.add_mailbox("mario@ra.test", &[]);
    b.add_mailbox("anna@rb.test", &[]);
    wait_log(&b, "CRL fetched");

    let message = |subject: &str| plain_message("ra.test", "rb.test", subject);
    // The CRL does not list A's certificate: certified mail as usual.
    assert!(submit(
        &a,
        "mario@ra.test",
        &["anna@rb.test"],
        &message("prima")
    ));
    let anna = b.wait_for("anna@rb.test", "the envelope", |m| {
        count(m, "posta-certificata") == 1
    });
    let envelope = b.message("anna@rb.test", anna[0]["uid"].as_u64().unwrap());
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "good", "{v:#}");
    assert_eq!(v["revocation"]["crl"], url);
    assert_eq!(v["ok"], true, "{v:#}");
    a.wait_for("mario@ra.test", "the delivery receipt", |m| {
        count(m, "avvenuta-consegna") == 1
    });

    // A's CA revokes A's signing certificate and publishes the new CRL.
    let signing = openssl::x509::X509::from_pem(&pki_file(&a, "signing.pem")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let crl =
        pec_message::pki::make_crl(&dev_ca(&a), &[(&signing, now - 60)], now - 30, now + 86_400)
            .unwrap();
    publish(&www.join("ra.crl"), &crl);
    let points = refresh_crls(&b);
    assert!(
        points[0]["state"] == "current" && points[0]["revoked"] == 1,
        "{points:#}"
    );

    // The envelope B already holds no longer verifies as trusted, and A's next message is
    // not PEC at B: anna receives it inside an anomaly envelope and A gets no receipt.
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "revoked", "{v:#}");
    assert_eq!(v["trusted"], false);
    assert_eq!(v["ok"], false);
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("revoked")),
        "{v:#}"
    );
    assert!(submit(
        &a,
        "mario@ra.test",
        &["anna@rb.test"],
        &message("seconda")
    ));
    b.wait_for("anna@rb.test", "the anomaly envelope", |m| {
        count(m, "anomalia") == 1
    });
    assert_eq!(count(&b.messages("anna@rb.test"), "posta-certificata"), 1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(&a.messages("mario@ra.test"), "avvenuta-consegna"), 1);

    // A newer CRL signed by another CA that B trusts (its own) is not taken at A's point: B
    // keeps A's CA's CRL, and A's certificate stays revoked.
    let now = chrono::Utc::now().timestamp();
    let other = pec_message::pki::make_crl(&dev_ca(&b), &[], now, now + 86_400).unwrap();
    publish(&www.join("ra.crl"), &other);
    // Operators see the point, the CRL still held and the refused fetch.
    let points = refresh_crls(&b);
    assert!(
        points[0]["url"] == url && points[0]["state"] == "current" && points[0]["revoked"] == 1,
        "{points:#}"
    );
    let error = points[0]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("does not verify with a trusted CA"),
        "{points:#}"
    );
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "revoked", "{v:#}");
    let metrics = run_ok(&["admin", "--data", b.data(), "metrics"]);
    assert!(
        metrics.contains("pec_crl_points{state=\"current\"} 1"),
        "{metrics}"
    );
}

/// pec.md §4.4 step 3 with OCSP: A's signing certificate names only an OCSP responder (no
/// distribution point). B asks it about A's certificate; while it answers `good`, A's mail is
/// PEC with revocation `good`, and once it answers `revoked`, A's mail is no longer trusted.
#[test]
fn a_certificate_revoked_through_ocsp_is_no_longer_trusted() {
    tools();
    const PORT: u16 = 28082;
    let root = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.28:{PORT}");
    let (mut a, mut b) = pair(
        root.path(),
        ("oa.test", "127.0.0.28"),
        ("ob.test", "127.0.0.29"),
        &["--ocsp-url", &url],
    );
    // The responder's index: A's signing certificate, valid.
    let signing = openssl::x509::X509::from_pem(&pki_file(&a, "signing.pem")).unwrap();
    let serial = signing
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap();
    let index = root.path().join("index.txt");
    let listed = |status: &str| {
        std::fs::write(
            &index,
            format!("{status}\t391231235959Z\t\t{serial}\tunknown\t/CN=Gestore A\n")
                .replace("R\t391231235959Z\t\t", "R\t391231235959Z\t240101000000Z\t"),
        )
        .unwrap();
    };
    listed("V");
    let pki = a.dir.join("pki");
    let responder = OcspResponder::start(&pki, &index, PORT);
    a.start();
    b.start();
    a.add_mailbox("mario@oa.test", &[]);
    b.add_mailbox("anna@ob.test", &[]);
    wait_log(&b, "OCSP response taken");

    let message = |subject: &str| plain_message("oa.test", "ob.test", subject);
    assert!(submit(
        &a,
        "mario@oa.test",
        &["anna@ob.test"],
        &message("prima")
    ));
    let anna = b.wait_for("anna@ob.test", "the envelope", |m| {
        count(m, "posta-certificata") == 1
    });
    let envelope = b.message("anna@ob.test", anna[0]["uid"].as_u64().unwrap());
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "good", "{v:#}");
    assert_eq!(v["revocation"]["ocsp"], url.as_str(), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    a.wait_for("mario@oa.test", "the delivery receipt", |m| {
        count(m, "avvenuta-consegna") == 1
    });

    // A's CA revokes A's certificate; its responder now says so.
    drop(responder);
    listed("R");
    let _responder = OcspResponder::start(&pki, &index, PORT);
    let status = refresh_crls(&b);
    let entry = status
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "ocsp")
        .unwrap_or_else(|| panic!("no OCSP entry: {status:#}"));
    assert_eq!(entry["url"], url.as_str(), "{entry:#}");
    assert_eq!(entry["state"], "current", "{entry:#}");
    assert_eq!(entry["cert_status"], "revoked", "{entry:#}");
    assert!(
        entry["certificate"].as_str().unwrap().contains("Gestore A"),
        "{entry:#}"
    );

    // The envelope B holds no longer verifies as trusted; A's next message reaches anna in an
    // anomaly envelope, and A gets no receipt for it.
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "revoked", "{v:#}");
    assert_eq!(v["revocation"]["ocsp"], url.as_str(), "{v:#}");
    assert_eq!(v["trusted"], false, "{v:#}");
    assert!(submit(
        &a,
        "mario@oa.test",
        &["anna@ob.test"],
        &message("seconda")
    ));
    b.wait_for("anna@ob.test", "the anomaly envelope", |m| {
        count(m, "anomalia") == 1
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(&a.messages("mario@oa.test"), "avvenuta-consegna"), 1);
    let metrics = run_ok(&["admin", "--data", b.data(), "metrics"]);
    assert!(
        metrics.contains("pec_ocsp_responses{state=\"current\"} 1"),
        "{metrics}"
    );
    // The response is kept: `pec verify --data` still finds A's certificate revoked with
    // both processes stopped.
    a.kill();
    b.kill();
    let v = verify_json(&envelope, &b);
    assert_eq!(v["revocation"]["status"], "revoked", "{v:#}");
}
