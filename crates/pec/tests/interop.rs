//! Every sample kind from `pec samples` checked for its headers, subject, From, parts and
//! daticert (DTD-valid with xmllint), then verified by OpenSSL (`smime` and `cms` text mode),
//! NSS `cmsutil` and our own verifier; one changed byte in the signed part is rejected by all.

mod support;

use pec_message::classify::{Kind, classify};
use pec_message::daticert::{Errore, ReceiptType, Tipo};
use pec_message::mime::Entity;
use pec_message::original::OriginalHeaders;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use support::*;

const KINDS: [&str; 14] = [
    "accettazione",
    "non-accettazione",
    "non-accettazione-virus",
    "posta-certificata",
    "preavviso-errore-consegna-12h",
    "preavviso-errore-consegna-24h",
    "presa-in-carico",
    "anomalia",
    "rilevazione-virus",
    "errore-consegna-virus",
    "avvenuta-consegna-completa",
    "avvenuta-consegna-breve",
    "avvenuta-consegna-sintetica",
    "errore-consegna",
];

fn samples() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = run(pec()
            .args(["samples", "--out"])
            .arg(dir.path())
            .args(["--domain", "pec.esempio.it"]));
        assert!(
            out.status.success(),
            "pec samples failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples().join(format!("{name}.eml"))).expect("sample exists")
}

/// (marker header, value, extra header, subject prefix, tipo, errore, postacert, From "Per conto di")
struct Expect {
    marker: (&'static str, &'static str),
    extra: Option<(&'static str, &'static str)>,
    prefix: &'static str,
    tipo: Option<Tipo>,
    errore: Errore,
    postacert: bool,
    on_behalf: bool,
}

fn expect(name: &str) -> Expect {
    let e = |marker, extra, prefix, tipo, errore, postacert, on_behalf| Expect {
        marker,
        extra,
        prefix,
        tipo,
        errore,
        postacert,
        on_behalf,
    };
    let r = "X-Ricevuta";
    let virus = Some(("X-VerificaSicurezza", "errore"));
    match name {
        "accettazione" => e(
            (r, "accettazione"),
            None,
            "ACCETTAZIONE: ",
            Some(Tipo::Accettazione),
            Errore::Nessuno,
            false,
            false,
        ),
        "non-accettazione" => e(
            (r, "non-accettazione"),
            None,
            "AVVISO DI NON ACCETTAZIONE: ",
            Some(Tipo::NonAccettazione),
            Errore::Altro,
            false,
            false,
        ),
        "non-accettazione-virus" => e(
            (r, "non-accettazione"),
            virus,
            "AVVISO DI NON ACCETTAZIONE PER VIRUS: ",
            Some(Tipo::NonAccettazione),
            Errore::Virus,
            false,
            false,
        ),
        "posta-certificata" => e(
            ("X-Trasporto", "posta-certificata"),
            Some(("X-TipoRicevuta", "completa")),
            "POSTA CERTIFICATA: ",
            Some(Tipo::PostaCertificata),
            Errore::Nessuno,
            true,
            true,
        ),
        "preavviso-errore-consegna-12h" | "preavviso-errore-consegna-24h" => e(
            (r, "preavviso-errore-consegna"),
            None,
            "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ",
            Some(Tipo::PreavvisoErroreConsegna),
            Errore::Nessuno,
            false,
            false,
        ),
        "presa-in-carico" => e(
            (r, "presa-in-carico"),
            None,
            "PRESA IN CARICO: ",
            Some(Tipo::PresaInCarico),
            Errore::Nessuno,
            false,
            false,
        ),
        "anomalia" => e(
            ("X-Trasporto", "errore"),
            None,
            "ANOMALIA MESSAGGIO: ",
            None,
            Errore::Nessuno,
            true,
            true,
        ),
        "rilevazione-virus" => e(
            (r, "rilevazione-virus"),
            Some(("X-Mittente", "mario.rossi@pec.esempio.it")),
            "PROBLEMA DI SICUREZZA: ",
            Some(Tipo::RilevazioneVirus),
            Errore::Virus,
            false,
            false,
        ),
        "errore-consegna-virus" => e(
            (r, "errore-consegna"),
            virus,
            "AVVISO DI MANCATA CONSEGNA PER VIRUS: ",
            Some(Tipo::ErroreConsegna),
            Errore::Virus,
            false,
            false,
        ),
        "avvenuta-consegna-completa" | "avvenuta-consegna-breve" => e(
            (r, "avvenuta-consegna"),
            None,
            "CONSEGNA: ",
            Some(Tipo::AvvenutaConsegna),
            Errore::Nessuno,
            true,
            false,
        ),
        "avvenuta-consegna-sintetica" => e(
            (r, "avvenuta-consegna"),
            None,
            "CONSEGNA: ",
            Some(Tipo::AvvenutaConsegna),
            Errore::Nessuno,
            false,
            false,
        ),
        "errore-consegna" => e(
            (r, "errore-consegna"),
            None,
            "AVVISO DI MANCATA CONSEGNA: ",
            Some(Tipo::ErroreConsegna),
            Errore::NoDest,
            false,
            false,
        ),
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_kind_has_its_headers_subject_from_and_parts() {
    const SUBJECT: &str = "Convocazione assemblea n° 12 – perché sì";
    for name in KINDS {
        let raw = sample(name);
        let x = expect(name);
        let e = Entity::parse(&raw);
        assert!(
            !raw.windows(2)
                .enumerate()
                .any(|(i, w)| w[1] == b'\n' && w[0] != b'\r' && i > 0),
            "{name}: bare LF"
        );
        assert_eq!(
            e.header_value(x.marker.0).as_deref(),
            Some(x.marker.1),
            "{name}: {}",
            x.marker.0
        );
        if let Some((h, v)) = x.extra {
            assert_eq!(e.header_value(h).as_deref(), Some(v), "{name}: {h}");
        }
        if name != "non-accettazione-virus" && name != "errore-consegna-virus" {
            assert!(e.header("X-VerificaSicurezza").is_none(), "{name}");
        }
        let h = OriginalHeaders::parse(&raw);
        let subject = h.subject.clone().unwrap_or_default();
        assert_eq!(
            subject,
            format!("{}{SUBJECT}", x.prefix).replace(
                "ANOMALIA MESSAGGIO: Convocazione assemblea n° 12 – perché sì",
                "ANOMALIA MESSAGGIO: Offerta speciale"
            ),
            "{name}: subject"
        );
        assert_eq!(
            h.from,
            vec!["posta-certificata@pec.esempio.it".to_string()],
            "{name}: From"
        );
        let from_raw = e.header_value("From").unwrap_or_default();
        assert_eq!(
            from_raw.starts_with("\"Per conto di: "),
            x.on_behalf,
            "{name}: From form {from_raw}"
        );
        let ct = e.content_type();
        assert_eq!(ct.mime_type, "multipart/signed", "{name}");
        assert_eq!(
            ct.param("protocol"),
            Some("application/pkcs7-signature"),
            "{name}"
        );
        assert_eq!(ct.param("micalg"), Some("sha-256"), "{name}");
        let c = classify(&raw);
        match x.tipo {
            Some(t) => assert_eq!(c.kind, Kind::Pec(t), "{name}"),
            None => assert_eq!(c.kind, Kind::Anomalia, "{name}"),
        }
        assert!(c.has_text, "{name}: text part");
        assert_eq!(c.postacert.is_some(), x.postacert, "{name}: postacert.eml");
        // The signed part: multipart/mixed with a multipart/alternative of ISO-8859-1 texts.
        let signed = c.signed.as_ref().expect("signed");
        let mixed = Entity::parse(signed.signed);
        assert_eq!(mixed.content_type().mime_type, "multipart/mixed", "{name}");
        let (parts, closed) = mixed.parts();
        assert!(closed);
        let alt = Entity::parse(parts[0].raw);
        assert_eq!(
            alt.content_type().mime_type,
            "multipart/alternative",
            "{name}"
        );
        let types: Vec<(String, Option<String>)> = alt
            .parts()
            .0
            .iter()
            .map(|p| {
                let ct = Entity::parse(p.raw).content_type();
                (
                    ct.mime_type.clone(),
                    ct.param("charset").map(str::to_string),
                )
            })
            .collect();
        assert_eq!(
            types,
            vec![
                ("text/plain".into(), Some("iso-8859-1".into())),
                ("text/html".into(), Some("iso-8859-1".into()))
            ],
            "{name}"
        );
        let expected_parts = 1 + usize::from(x.tipo.is_some()) + usize::from(x.postacert);
        assert_eq!(parts.len(), expected_parts, "{name}: parts");
        match (x.tipo, &c.daticert) {
            (None, d) => assert!(d.is_none(), "{name}: anomaly without daticert"),
            (Some(t), Some(Ok((d, dtd)))) => {
                assert!(dtd.is_empty(), "{name}: {dtd:?}");
                assert_eq!(d.tipo, t, "{name}");
                assert_eq!(d.errore, x.errore, "{name}");
                assert_eq!(d.oggetto.as_deref(), Some(SUBJECT), "{name}");
                assert_eq!(
                    d.msgid.as_deref(),
                    Some("<20261124100000.4711@client.example.org>")
                );
                assert_eq!(
                    e.header_value("X-Riferimento-Message-ID").as_deref(),
                    d.msgid.as_deref(),
                    "{name}"
                );
                assert_eq!(d.destinatari.len(), 4, "{name}");
                let ricevuta = match name {
                    "posta-certificata" | "avvenuta-consegna-completa" => {
                        Some(ReceiptType::Completa)
                    }
                    "avvenuta-consegna-breve" => Some(ReceiptType::Breve),
                    "avvenuta-consegna-sintetica" => Some(ReceiptType::Sintetica),
                    _ => None,
                };
                assert_eq!(d.ricevuta, ricevuta, "{name}: ricevuta");
                let consegna = matches!(
                    t,
                    Tipo::AvvenutaConsegna
                        | Tipo::ErroreConsegna
                        | Tipo::PreavvisoErroreConsegna
                        | Tipo::RilevazioneVirus
                );
                assert_eq!(d.consegna.is_some(), consegna, "{name}: consegna");
                assert_eq!(
                    d.ricezione.len(),
                    if t == Tipo::PresaInCarico { 2 } else { 0 },
                    "{name}: ricezione"
                );
                if t == Tipo::PostaCertificata {
                    assert_eq!(
                        e.header_value("Message-ID").unwrap_or_default(),
                        format!("<{}>", d.identificativo)
                    );
                }
            }
            (Some(_), other) => panic!("{name}: daticert {other:?}"),
        }
    }
}

#[test]
fn envelope_carries_the_original_with_only_the_message_id_changed() {
    let raw = sample("posta-certificata");
    let c = classify(&raw);
    let inner = Entity::parse(c.postacert.expect("postacert"));
    assert_eq!(
        inner.header_value("X-Riferimento-Message-ID").as_deref(),
        Some("<20261124100000.4711@client.example.org>")
    );
    let id = inner.header_value("Message-ID").unwrap_or_default();
    assert!(
        id.starts_with("<opec") && id.ends_with("@pec.esempio.it>"),
        "{id}"
    );
    // Copied header fields (pec.md §2.6).
    let e = Entity::parse(&raw);
    assert!(
        e.header_value("To")
            .unwrap_or_default()
            .contains("protocollo@pec.esempio.it")
    );
    assert!(
        e.header_value("Cc")
            .unwrap_or_default()
            .contains("studio.bianchi@example.net")
    );
    assert!(e.header("Received").is_some());
    assert_eq!(
        e.header_value("Reply-To").as_deref(),
        Some("mario.rossi@pec.esempio.it")
    );
    // The breve receipt replaced the attachment by its hash.
    let breve = sample("avvenuta-consegna-breve");
    let b = classify(&breve);
    let text = String::from_utf8_lossy(b.postacert.expect("postacert"));
    assert!(text.contains("convocazione.pdf.hash"), "{text}");
}

fn daticert_file(name: &str, dir: &Path) -> Option<PathBuf> {
    let raw = sample(name);
    let c = classify(&raw);
    let signed = Entity::parse(c.signed.as_ref()?.signed);
    for p in signed.parts().0 {
        let part = Entity::parse(p.raw);
        if part.file_name().as_deref() == Some("daticert.xml") {
            let path = dir.join(format!("{name}.xml"));
            std::fs::write(&path, part.decoded_body()).expect("write");
            return Some(path);
        }
    }
    None
}

#[test]
fn every_daticert_is_valid_against_the_dtd() {
    require("xmllint", "libxml2-utils");
    let dtd = shared().join("spec/daticert.dtd");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for name in KINDS {
        let Some(xml) = daticert_file(name, dir.path()) else {
            assert_eq!(name, "anomalia");
            continue;
        };
        let out = run(std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--dtdvalid")
            .arg(&dtd)
            .arg(&xml));
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(checked, 13);
}

/// Writes the signed part and the signature of a message to files, for NSS cmsutil.
fn detached(raw: &[u8], dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let e = Entity::parse(raw);
    let s = pec_message::smime::split_signed(&e).expect("signed");
    let content = dir.join(format!("{name}.content"));
    let sig = dir.join(format!("{name}.p7s"));
    std::fs::write(&content, s.signed).expect("write");
    std::fs::write(&sig, s.signature.expect("sig").expect("decodes")).expect("write");
    (content, sig)
}

fn nss_db(dir: &Path) -> String {
    let db = format!("sql:{}", dir.join("nss").display());
    std::fs::create_dir_all(dir.join("nss")).expect("mkdir");
    let out =
        run(std::process::Command::new("certutil").args(["-N", "--empty-password", "-d", &db]));
    assert!(
        out.status.success(),
        "certutil -N: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(std::process::Command::new("certutil")
        .args(["-A", "-d", &db, "-n", "ca", "-t", "C,C,C", "-i"])
        .arg(samples().join("ca.pem")));
    assert!(
        out.status.success(),
        "certutil -A: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

/// Each verifier's verdict on a file: (openssl smime, openssl cms, NSS cmsutil, pec verify).
fn verdicts(file: &Path, dir: &Path, db: &str, name: &str) -> [bool; 4] {
    let ca = samples().join("ca.pem");
    let ok = |c: &mut std::process::Command| run(c).status.success();
    let smime = ok(std::process::Command::new("openssl")
        .args([
            "smime",
            "-verify",
            "-purpose",
            "smimesign",
            "-out",
            "/dev/null",
            "-CAfile",
        ])
        .arg(&ca)
        .arg("-in")
        .arg(file));
    // Text mode: OpenSSL 3.0's -binary mode mis-reads the CRLF before the closing boundary.
    let cms = ok(std::process::Command::new("openssl")
        .args(["cms", "-verify", "-out", "/dev/null", "-CAfile"])
        .arg(&ca)
        .arg("-in")
        .arg(file));
    let raw = std::fs::read(file).expect("read");
    let (content, sig) = detached(&raw, dir, name);
    let nss = ok(std::process::Command::new("cmsutil")
        .args(["-D", "-u", "4", "-o", "/dev/null", "-d", db, "-i"])
        .arg(&sig)
        .arg("-c")
        .arg(&content));
    let ours = ok(pec()
        .args(["verify", "--ca"])
        .arg(&ca)
        .arg("--index")
        .arg(samples().join("index.ldif"))
        .arg(file));
    [smime, cms, nss, ours]
}

#[test]
fn every_sample_verifies_everywhere_and_one_changed_byte_fails_everywhere() {
    require("openssl", "openssl");
    require("cmsutil", "libnss3-tools");
    require("certutil", "libnss3-tools");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = nss_db(dir.path());
    for name in KINDS {
        let file = samples().join(format!("{name}.eml"));
        assert_eq!(
            verdicts(&file, dir.path(), &db, name),
            [true; 4],
            "{name}: [smime, cms, cmsutil, pec verify]"
        );
        // Change one byte inside the readable text of the signed part.
        let mut raw = sample(name);
        let at = find(&raw, b"Il giorno").expect("text present");
        raw[at] = b'J';
        let bad = dir.path().join(format!("{name}-bad.eml"));
        std::fs::write(&bad, &raw).expect("write");
        assert_eq!(
            verdicts(&bad, dir.path(), &db, &format!("{name}-bad")),
            [false; 4],
            "{name} tampered"
        );
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn lf_stored_copy_still_verifies() {
    let raw = sample("accettazione");
    let lf: Vec<u8> = String::from_utf8_lossy(&raw)
        .replace("\r\n", "\n")
        .into_bytes();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lf.eml");
    std::fs::write(&file, lf).expect("write");
    let out = run(pec()
        .args(["verify", "--ca"])
        .arg(samples().join("ca.pem"))
        .arg(&file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn json_report_has_the_documented_fields() {
    let out = run(pec()
        .args(["verify", "--json", "--ca"])
        .arg(samples().join("ca.pem"))
        .arg("--index")
        .arg(samples().join("index.ldif"))
        .arg(samples().join("avvenuta-consegna-breve.eml")));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["kind"], "avvenuta-consegna");
    assert_eq!(v["receipt_type"], "breve");
    assert_eq!(v["daticert"]["tipo"], "avvenuta-consegna");
    assert_eq!(v["signature"]["present"], true);
    assert_eq!(v["signature"]["valid"], true);
    assert_eq!(v["signature"]["digest"], "sha256");
    assert!(
        v["signature"]["signer_subject"]
            .as_str()
            .unwrap_or("")
            .contains("CN=Posta Certificata")
    );
    assert_eq!(
        v["signature"]["signer_sha1"].as_str().map(str::len),
        Some(40)
    );
    assert_eq!(v["trusted"], true);
    assert_eq!(v["in_index"], true);
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0));
}

#[test]
fn usage_errors_exit_2_with_a_sentence() {
    let out = run(pec().args(["verify", "/nonexistent/file.eml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/file.eml"));
    let out = run(pec().args(["verify", "--at", "yesterday", "-"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    let out = run(pec().args(["verify"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(pec().args(["samples", "--out", "/tmp/x", "--domain", "not a domain"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_is_read_with_dash() {
    use std::io::Write as _;
    let mut child = pec()
        .args(["verify", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&sample("presa-in-carico"))
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "presa-in-carico");
    assert_eq!(v["ok"], true);
}

#[test]
fn provider_signed_message_without_pec_headers_is_an_anomaly() {
    // The outer headers are not signed: dropping X-Ricevuta keeps the signature valid.
    let raw = String::from_utf8(sample("accettazione")).expect("ascii");
    let stripped = raw.replacen("X-Ricevuta: accettazione\r\n", "", 1);
    assert_ne!(raw, stripped);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("stripped.eml");
    std::fs::write(&file, stripped).expect("write");
    let out = run(pec()
        .args(["verify", "--json", "--ca"])
        .arg(samples().join("ca.pem"))
        .arg("--index")
        .arg(samples().join("index.ldif"))
        .arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "ordinaria");
    assert_eq!(v["signature"]["valid"], true);
    assert_eq!(v["treat_as"], "anomalia", "{v:#}");
}
