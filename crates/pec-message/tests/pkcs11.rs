//! The PKCS#11 signing backend against a real SoftHSM2 token: a receipt signed inside the
//! token verifies with our verifier and with OpenSSL.

use pec_message::TimeRef;
use pec_message::build::{Artefact, Provider, Transaction, build};
use pec_message::daticert::{Destinatario, RecipientType};
use pec_message::pki;
use pec_message::report::{VerifyOptions, verify};
use pec_message::smime::{Pkcs11Signer, Signer};
use std::path::Path;
use std::process::Command;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (install softhsm2; scripts/test does it)")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn receipt_signed_in_softhsm_verifies() {
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} is missing: install the Debian package softhsm2 (scripts/test does it)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("mkdir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens.display()))
        .expect("write conf");
    tool(
        Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                "pec-test",
                "--so-pin",
                "12345678",
                "--pin",
                "1234",
            ]),
    );

    let now = 1_790_000_000;
    let ca = pki::make_ca("AgID CA1 (development)", now - 86_400, 3650).expect("ca");
    let leaf = pki::issue_signing_cert(
        &ca,
        "HSM PEC S.p.A.",
        "pec.hsm.example.it",
        None,
        now - 86_400,
        1095,
    )
    .expect("leaf");
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&key_pem, leaf.key.private_key_to_pem_pkcs8().expect("pem")).expect("write key");
    tool(
        Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--import"])
            .arg(&key_pem)
            .args([
                "--token", "pec-test", "--label", "signkey", "--id", "01", "--pin", "1234",
            ]),
    );
    // The key now lives in the token; drop our copy.
    std::fs::remove_file(&key_pem).expect("rm");
    std::fs::write(dir.path().join("leaf.der"), leaf.cert_der().expect("der")).expect("write");
    std::fs::write(dir.path().join("ca.der"), ca.cert_der().expect("der")).expect("write");
    // The PKCS#11 module reads SOFTHSM2_CONF from the environment of its process: sign in a
    // child process of this test binary that has it set.
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .env("SOFTHSM2_CONF", &conf)
        .env("PEC_HSM_TEST_DIR", dir.path())
        .args(["--exact", "sign_in_token", "--ignored", "--nocapture"])
        .status()
        .expect("run child");
    assert!(
        status.success(),
        "signing inside SoftHSM2 failed (see the child's output above)"
    );
}

/// Run by [`receipt_signed_in_softhsm_verifies`] with the token prepared.
#[test]
#[ignore = "run by receipt_signed_in_softhsm_verifies with SOFTHSM2_CONF set"]
fn sign_in_token() {
    let dir = std::path::PathBuf::from(
        std::env::var("PEC_HSM_TEST_DIR").expect("run through receipt_signed_in_softhsm_verifies"),
    );
    let now = 1_790_000_000;
    let leaf_der = std::fs::read(dir.join("leaf.der")).expect("leaf");
    let ca_der = std::fs::read(dir.join("ca.der")).expect("ca");
    let ca_cert = openssl::x509::X509::from_der(&ca_der).expect("ca");

    // Failures first: a PKCS#11 context finalizes the module for the whole process when dropped.
    let wrong_pin = Pkcs11Signer::open(
        Path::new(MODULE),
        "pec-test",
        "9999",
        "signkey",
        vec![],
        vec![],
    );
    assert!(wrong_pin.is_err());
    drop(wrong_pin);
    assert!(
        Pkcs11Signer::open(
            Path::new(MODULE),
            "no-such-token",
            "1234",
            "signkey",
            vec![],
            vec![]
        )
        .is_err()
    );
    let signer = Pkcs11Signer::open(
        Path::new(MODULE),
        "pec-test",
        "1234",
        "signkey",
        leaf_der.clone(),
        vec![ca_der.clone()],
    )
    .expect("open token");

    let provider = Provider {
        name: "HSM PEC S.p.A.".into(),
        service_domain: "pec.hsm.example.it".into(),
    };
    let tx = Transaction {
        sender: "a@pec.hsm.example.it".into(),
        recipients: vec![Destinatario {
            address: "b@pec.hsm.example.it".into(),
            tipo: RecipientType::Certificato,
        }],
        reply_to: None,
        subject: Some("Prova HSM".into()),
        identificativo: "opec1.20260901000000.1.1@pec.hsm.example.it".into(),
        client_msgid: Some("<x@client>".into()),
    };
    let at = TimeRef::from_unix(now).expect("time");
    let message = build(
        &Artefact::Accettazione,
        &tx,
        &provider,
        at,
        "opec1.20260901000000.1.2@pec.hsm.example.it",
    )
    .sign(&signer)
    .expect("sign in token");
    assert_eq!(signer.certificate(), leaf_der.as_slice());
    let report = verify(
        &message,
        &VerifyOptions {
            anchors: vec![ca_cert.clone()],
            at,
            directory: None,
            crls: None,
        },
    );
    assert!(report.ok, "{report:#?}");

    let file = dir.join("m.eml");
    std::fs::write(&file, &message).expect("write");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.to_pem().expect("pem")).expect("write");
    tool(
        Command::new("openssl")
            .args([
                "smime",
                "-verify",
                "-out",
                "/dev/null",
                "-attime",
                &now.to_string(),
                "-CAfile",
            ])
            .arg(&ca_file)
            .arg("-in")
            .arg(&file),
    );
}
