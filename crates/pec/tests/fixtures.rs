//! Every real message in shared/fixtures/real/ classified and verified as its README says.

mod support;

use support::*;

struct Case {
    file: &'static str,
    kind: &'static str,
    present: bool,
    valid: bool,
    /// Chain to the Actalis root in November 2018: the Aruba and Sogei certificates (the Sogei
    /// signatures fail on their content, not on their chain).
    trusted: bool,
    treat_as: &'static str,
    /// A problem sentence that must be reported.
    problem: Option<&'static str>,
    dtd_valid: Option<bool>,
}

const CASES: &[Case] = &[
    Case {
        file: "aruba-2018-accettazione.eml",
        kind: "accettazione",
        present: true,
        valid: true,
        trusted: true,
        treat_as: "pec",
        problem: None,
        dtd_valid: Some(true),
    },
    Case {
        file: "aruba-style-avvenuta-consegna-sha256.eml",
        kind: "avvenuta-consegna",
        present: true,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: Some("not valid base64"),
        dtd_valid: Some(true),
    },
    Case {
        file: "dsn-failure.eml",
        kind: "ordinaria",
        present: false,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: None,
        dtd_valid: None,
    },
    Case {
        file: "fakepec-accettazione.eml",
        kind: "accettazione",
        present: false,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: Some("signature part is missing"),
        dtd_valid: Some(true),
    },
    Case {
        file: "fakepec-errore-consegna-no-dest.eml",
        kind: "errore-consegna",
        present: false,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: Some("not valid against daticert.dtd"),
        dtd_valid: Some(false),
    },
    Case {
        file: "ordinary-mail.eml",
        kind: "posta-certificata",
        present: true,
        valid: false,
        trusted: true,
        treat_as: "ordinaria",
        problem: Some("changed after signing"),
        dtd_valid: Some(true),
    },
    Case {
        file: "plain-mail.eml",
        kind: "ordinaria",
        present: false,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: None,
        dtd_valid: None,
    },
    Case {
        file: "sdi-posta-certificata-broken-xml.eml",
        kind: "posta-certificata",
        present: true,
        valid: false,
        trusted: true,
        treat_as: "ordinaria",
        problem: Some("changed after signing"),
        dtd_valid: Some(true),
    },
    Case {
        file: "smime-good.eml",
        kind: "ordinaria",
        present: true,
        valid: true,
        trusted: false,
        treat_as: "ordinaria",
        problem: None,
        dtd_valid: None,
    },
    Case {
        file: "smime-corrupted-char.eml",
        kind: "ordinaria",
        present: true,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: Some("cannot be parsed"),
        dtd_valid: None,
    },
    Case {
        file: "smime-corrupted-structure.eml",
        kind: "ordinaria",
        present: true,
        valid: false,
        trusted: false,
        treat_as: "ordinaria",
        problem: Some("not signed-data"),
        dtd_valid: None,
    },
];

fn verify_json(args: &[&str], file: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let out = run(pec().arg("verify").arg("--json").args(args).arg(file));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

#[test]
fn every_real_fixture_is_reported_as_its_readme_says() {
    let dir = shared().join("fixtures/real");
    let root = dir.join("trust/actalis-authentication-root-ca-2011.pem");
    let root = root.to_str().expect("utf8 path");
    for c in CASES {
        let file = dir.join(c.file);
        // The Aruba chain is checked at its signing time (2018-11-13T15:39:26Z).
        let (code, v) = verify_json(&["--ca", root, "--at", "2018-11-13T15:39:27Z"], &file);
        let ctx = format!("{}: {v:#}", c.file);
        assert_eq!(v["kind"], c.kind, "{ctx}");
        assert_eq!(v["signature"]["present"], c.present, "{ctx}");
        assert_eq!(v["signature"]["valid"], c.valid, "{ctx}");
        assert_eq!(v["trusted"], c.trusted, "{ctx}");
        assert_eq!(v["treat_as"], c.treat_as, "{ctx}");
        assert_eq!(v["ok"], c.file == "aruba-2018-accettazione.eml", "{ctx}");
        assert_eq!(
            code,
            Some(if c.file == "aruba-2018-accettazione.eml" {
                0
            } else {
                1
            }),
            "{ctx}"
        );
        if let Some(p) = c.problem {
            let problems = v["problems"].as_array().expect("problems");
            assert!(
                problems
                    .iter()
                    .any(|x| x.as_str().unwrap_or("").contains(p)),
                "{ctx}"
            );
        }
        match c.dtd_valid {
            Some(valid) => assert_eq!(v["daticert"]["dtd_valid"], valid, "{ctx}"),
            None => assert!(v["daticert"].is_null(), "{ctx}"),
        }
    }
}

#[test]
fn aruba_receipt_details() {
    let dir = shared().join("fixtures/real");
    let file = dir.join("aruba-2018-accettazione.eml");
    let (_, v) = verify_json(&[], &file);
    assert_eq!(v["signature"]["digest"], "sha1");
    assert_eq!(
        v["signature"]["signer_sha1"],
        "b9444ba4d52880fbbe4c3c0c55bf81e323addf8b"
    );
    assert!(
        v["signature"]["signer_subject"]
            .as_str()
            .unwrap_or("")
            .contains("CN=Posta Certificata ARUBA PEC")
    );
    assert_eq!(v["signature"]["signing_time"], "2018-11-13T15:39:26+00:00");
    assert_eq!(v["daticert"]["tipo"], "accettazione");
    // Today the certificate has expired: trusted must be false without --at.
    let root = dir.join("trust/actalis-authentication-root-ca-2011.pem");
    let (code, v) = verify_json(&["--ca", root.to_str().expect("utf8")], &file);
    assert_eq!(v["trusted"], false);
    assert_eq!(code, Some(1));
    assert!(v["problems"].to_string().contains("expired"), "{v}");
}

#[test]
fn aruba_receipt_in_an_indice_built_from_its_certificate() {
    let dir = shared().join("fixtures/real");
    let pem = std::fs::read(dir.join("trust/aruba-pec-2017.pem")).expect("read");
    let der = openssl::x509::X509::from_pem(&pem)
        .expect("pem")
        .to_der()
        .expect("der");
    let index = pec_index::Index {
        records: vec![pec_index::ProviderRecord::new(
            "ARUBA PEC S.p.A.",
            der,
            "posta-certificata@pec.aruba.it",
            &["pec.aruba.it", "pec.it"],
        )],
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let ldif = tmp.path().join("index.ldif");
    std::fs::write(&ldif, index.to_ldif()).expect("write");
    let root = dir.join("trust/actalis-authentication-root-ca-2011.pem");
    let (code, v) = verify_json(
        &[
            "--ca",
            root.to_str().expect("utf8"),
            "--index",
            ldif.to_str().expect("utf8"),
            "--at",
            "2018-11-13T15:39:26Z",
        ],
        &dir.join("aruba-2018-accettazione.eml"),
    );
    assert_eq!(v["in_index"], true, "{v:#}");
    assert_eq!(v["provider"], "ARUBA PEC S.p.A.");
    assert_eq!(code, Some(0), "{v:#}");
    // The Sogei envelope is signed by a certificate that is not in this Indice.
    let (_, v) = verify_json(
        &["--index", ldif.to_str().expect("utf8")],
        &dir.join("sdi-posta-certificata-broken-xml.eml"),
    );
    assert_eq!(v["in_index"], false);
}
