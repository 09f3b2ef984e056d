//! End-to-end verification of a received message (pec.md §4.4, §5.4): classification, the
//! S/MIME signature over the exact bytes, the chain to trust anchors at a given time, the
//! Indice lookup by certificate hash, and consistency between headers and `daticert.xml`.
//! Every problem is a plain sentence; the outcome follows §4.4: PEC, anomaly or ordinary mail.

use crate::TimeRef;
use crate::classify::{Classified, Kind, classify};
use crate::daticert::{Daticert, Errore, ReceiptType, Tipo};
use crate::ident::strip_brackets;
use crate::mime::{Entity, canonical_crlf};
use crate::original::OriginalHeaders;
use crate::pki::{certificate_emails, certificate_sha1, subject_string};
use crate::smime::{
    Crls, Revocation, RevocationStatus, SignatureCheck, TrustCheck, check_detached,
    check_revocation, check_trust, cms_info, verify_opaque,
};
use openssl::x509::X509;
use serde::Serialize;

/// A provider record as the verifier needs it (pec.md §7.3, "PR, checking origin").
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    /// `providerName`.
    pub provider_name: String,
    /// `providerCertificate` values (DER).
    pub certificates: Vec<Vec<u8>>,
    /// `managedDomains`.
    pub managed_domains: Vec<String>,
    /// `mailReceipt`.
    pub mail_receipt: String,
}

/// Looks providers up by the SHA-1 of their signing certificate (case-insensitive hex).
pub trait ProviderDirectory {
    /// The record whose `providerCertificateHash` equals `sha1_hex`.
    fn by_certificate_hash(&self, sha1_hex: &str) -> Option<DirectoryEntry>;
}

/// What to check against.
pub struct VerifyOptions<'a> {
    /// Trust anchors; when empty, the chain is not checked and `trusted` is not reported.
    pub anchors: Vec<X509>,
    /// The time at which certificates must be valid (e.g. the signing time of an old message).
    pub at: TimeRef,
    /// The Indice; when absent, `in_index` is not reported.
    pub directory: Option<&'a dyn ProviderDirectory>,
    /// CRLs fetched from the distribution points of provider certificates (pec.md §4.4
    /// step 3); when absent, `revocation` is not reported.
    pub crls: Option<&'a Crls>,
}

/// The signature facts of a report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignatureReport {
    /// A signature structure exists.
    pub present: bool,
    /// It verifies over the content.
    pub valid: bool,
    /// Digest algorithm (`sha1`, `sha256`).
    pub digest: Option<String>,
    /// Signer certificate subject.
    pub signer_subject: Option<String>,
    /// SHA-1 of the signer certificate (the Indice key).
    pub signer_sha1: Option<String>,
    /// The CMS signingTime, RFC 3339.
    pub signing_time: Option<String>,
}

/// `daticert.xml` as reported (wire spellings).
#[derive(Debug, Clone, Serialize)]
pub struct DaticertReport {
    /// `postacert/@tipo`.
    pub tipo: String,
    /// `postacert/@errore`.
    pub errore: String,
    /// `mittente`.
    pub mittente: String,
    /// `destinatari` with their `tipo`.
    pub destinatari: Vec<RecipientReport>,
    /// `risposte`.
    pub risposte: String,
    /// `oggetto`.
    pub oggetto: Option<String>,
    /// `gestore-emittente`.
    pub gestore_emittente: String,
    /// `data/giorno`.
    pub giorno: String,
    /// `data/ora`.
    pub ora: String,
    /// `data/@zona`.
    pub zona: String,
    /// `identificativo`.
    pub identificativo: String,
    /// `msgid`.
    pub msgid: Option<String>,
    /// `ricevuta/@tipo`.
    pub ricevuta: Option<String>,
    /// `consegna`.
    pub consegna: Option<String>,
    /// `ricezione`.
    pub ricezione: Vec<String>,
    /// `errore-esteso`.
    pub errore_esteso: Option<String>,
    /// Whether the document is valid against daticert.dtd.
    pub dtd_valid: bool,
}

/// One `destinatari`.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientReport {
    /// Address.
    pub address: String,
    /// `certificato` or `esterno`.
    pub tipo: String,
}

impl DaticertReport {
    fn new(d: &Daticert, dtd_valid: bool) -> Self {
        DaticertReport {
            tipo: d.tipo.to_string(),
            errore: d.errore.to_string(),
            mittente: d.mittente.clone(),
            destinatari: d
                .destinatari
                .iter()
                .map(|r| RecipientReport {
                    address: r.address.clone(),
                    tipo: r.tipo.to_string(),
                })
                .collect(),
            risposte: d.risposte.clone(),
            oggetto: d.oggetto.clone(),
            gestore_emittente: d.gestore_emittente.clone(),
            giorno: d.data.giorno.clone(),
            ora: d.data.ora.clone(),
            zona: d.data.zona.clone(),
            identificativo: d.identificativo.clone(),
            msgid: d.msgid.clone(),
            ricevuta: d.ricevuta.map(|r| r.to_string()),
            consegna: d.consegna.clone(),
            ricezione: d.ricezione.clone(),
            errore_esteso: d.errore_esteso.clone(),
            dtd_valid,
        }
    }
}

/// The verdict on one message (the `pec verify --json` object; docs/verify-json.md).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// A well-formed PEC message with a valid signature (trusted and listed when checked).
    pub ok: bool,
    /// The kind the headers claim.
    pub kind: String,
    /// Requested (envelope) or issued (delivery receipt) kind.
    pub receipt_type: Option<String>,
    /// `X-VerificaSicurezza: errore` is present.
    pub virus: bool,
    /// `daticert.xml`, when readable.
    pub daticert: Option<DaticertReport>,
    /// Signature facts.
    pub signature: SignatureReport,
    /// Chain to the trust anchors at the time given (null when no anchors were given).
    pub trusted: Option<bool>,
    /// Signer certificate found in the Indice (null when no Indice was given).
    pub in_index: Option<bool>,
    /// The provider the Indice names for the signer certificate.
    pub provider: Option<String>,
    /// The signer certificate's revocation status (null when no CRLs were given or there is
    /// no signer certificate).
    pub revocation: Option<Revocation>,
    /// How a receiving point must treat it (pec.md §4.4): `pec`, `anomalia` or `ordinaria`.
    pub treat_as: String,
    /// Every problem found, one sentence each.
    pub problems: Vec<String>,
}

/// Verifies a message given as the exact bytes received or stored.
pub fn verify(raw: &[u8], opts: &VerifyOptions<'_>) -> Report {
    verify_classified(raw, &classify(raw), opts)
}

/// [`verify`] for a message the caller has already classified (`c` must be `classify(raw)`),
/// so a receiving point that also needs the classification parses the message once.
pub fn verify_classified(raw: &[u8], c: &Classified<'_>, opts: &VerifyOptions<'_>) -> Report {
    let mut problems = Vec::new();
    let mut sig = SignatureReport::default();
    let mut trusted = None;
    let mut in_index = None;
    let mut provider = None;
    let mut signer_cert: Option<Vec<u8>> = None;
    let mut origin_failed = false;

    // Signature (pec.md §4.4 steps 1 and 3).
    let ct = c.entity.content_type();
    let opaque = matches!(
        ct.mime_type.as_str(),
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    );
    let mut chain: Vec<Vec<u8>> = Vec::new();
    if let Some(s) = &c.signed {
        match s
            .protocol
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("application/pkcs7-signature" | "application/x-pkcs7-signature") => {}
            other => problems.push(format!(
                "multipart/signed has protocol {other:?}, not application/pkcs7-signature"
            )),
        }
        if !s.closed {
            problems.push(
                "the multipart/signed body has no closing boundary (the message was cut)".into(),
            );
        }
        match &s.signature {
            None => problems.push("the signature part is missing".into()),
            Some(Err(e)) => {
                sig.present = true;
                problems.push(e.clone());
            }
            Some(Ok(der)) => {
                sig.present = true;
                let content = canonical_crlf(s.signed);
                let (info, check) = check_detached(der, &content);
                match info {
                    Ok(info) => {
                        sig.digest = Some(info.digest.clone());
                        sig.signing_time = info.signing_time.map(|t| t.to_rfc3339());
                        if let (Some(m), Some(micalg)) = (&info.message_digest, &s.micalg) {
                            let _ = m;
                            let micalg = micalg.to_ascii_lowercase().replace('-', "");
                            if micalg != info.digest {
                                problems.push(format!(
                                    "micalg {micalg} does not match the CMS digest {}",
                                    info.digest
                                ));
                            }
                        }
                        signer_cert = info.signer.clone();
                        chain = info.certificates.clone();
                    }
                    Err(e) => problems.push(e),
                }
                match check {
                    SignatureCheck::Valid => sig.valid = true,
                    SignatureCheck::Invalid(why) => problems.push(why),
                }
            }
        }
    } else if opaque {
        let der = c.entity.decoded_body();
        sig.present = true;
        match cms_info(&der) {
            Ok(info) => {
                sig.digest = Some(info.digest.clone());
                sig.signing_time = info.signing_time.map(|t| t.to_rfc3339());
                signer_cert = info.signer.clone();
                chain = info.certificates.clone();
            }
            Err(e) => problems.push(e),
        }
        match verify_opaque(&der).0 {
            SignatureCheck::Valid => sig.valid = true,
            SignatureCheck::Invalid(why) => problems.push(why),
        }
    } else if c.kind != Kind::Ordinaria {
        problems.push("the message claims to be PEC but carries no S/MIME signature".into());
    }

    let signer_x509 = signer_cert
        .as_deref()
        .and_then(|d| crate::smime::parse_certificate(d).ok());
    if let (Some(der), Some(x)) = (&signer_cert, &signer_x509) {
        sig.signer_subject = Some(subject_string(x));
        sig.signer_sha1 = Some(certificate_sha1(der));
    } else if sig.present && sig.valid {
        problems.push(
            "the signer certificate is not in the CMS structure (pec.md §4.1 requires it)".into(),
        );
    }

    // Chain to the anchors (pec.md §4.4 step 3).
    if !opts.anchors.is_empty() {
        let ok = match &signer_cert {
            Some(der) => {
                match check_trust(der, &chain, &opts.anchors, Some(opts.at.utc().timestamp())) {
                    TrustCheck::Trusted => true,
                    TrustCheck::Untrusted(why) => {
                        problems.push(why);
                        false
                    }
                }
            }
            None => false,
        };
        trusted = Some(ok);
    }

    // Revocation (pec.md §4.4 step 3: "check the CRL").
    let mut revoked = false;
    let revocation = match (opts.crls, &signer_x509, &signer_cert) {
        (Some(crls), Some(x), Some(der)) => {
            let r = check_revocation(x, der, crls, opts.at.utc().timestamp());
            let detail = r.detail.as_deref().unwrap_or("");
            match r.status {
                RevocationStatus::Revoked => {
                    problems.push(format!("the signer certificate is revoked: {detail}"));
                    revoked = true;
                }
                RevocationStatus::Unknown if crls.required => {
                    problems.push(format!(
                        "the revocation status of the signer certificate is unknown and a CRL \
                         is required: {detail}"
                    ));
                    revoked = true;
                }
                _ => {}
            }
            Some(r)
        }
        _ => None,
    };
    if revoked && trusted.is_some() {
        trusted = Some(false);
    }

    let headers = OriginalHeaders::parse(raw);
    let from = headers.from.first().cloned().unwrap_or_default();

    // Origin (pec.md §4.4 steps 2 and 5).
    if let Some(dir) = opts.directory {
        let found = sig
            .signer_sha1
            .as_deref()
            .and_then(|h| dir.by_certificate_hash(h));
        match (&found, &signer_cert) {
            (Some(entry), Some(der)) => {
                provider = Some(entry.provider_name.clone());
                if !entry.certificates.iter().any(|c| c == der) {
                    problems.push(
                        "the Indice lists the certificate hash but not the same certificate".into(),
                    );
                    origin_failed = true;
                }
                let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                if c.kind != Kind::Ordinaria
                    && !entry
                        .managed_domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(domain))
                {
                    problems.push(format!(
                        "the From domain {domain} is not among the managed domains of {}",
                        entry.provider_name
                    ));
                }
                in_index = Some(true);
            }
            _ => {
                if c.kind != Kind::Ordinaria || sig.present {
                    problems.push("the signer certificate is not in the Indice dei gestori".into());
                }
                in_index = Some(false);
            }
        }
    }

    // Format and consistency (pec.md §5.4).
    let mut format_problems = Vec::new();
    if c.kind != Kind::Ordinaria {
        if let Some(x) = &signer_x509 {
            let emails = certificate_emails(x);
            if !emails.iter().any(|e| e.eq_ignore_ascii_case(&from)) {
                format_problems.push(format!(
                    "the From address {from} is not the certificate's e-mail address {emails:?}"
                ));
            }
        }
        format_checks(c, &mut format_problems);
        subject_check(c, &mut problems);
    }
    let daticert = match &c.daticert {
        Some(Ok((d, dtd))) => Some(DaticertReport::new(d, dtd.is_empty())),
        _ => None,
    };
    let signature_ok = sig.valid
        && trusted != Some(false)
        && !revoked
        && in_index != Some(false)
        && !origin_failed;
    // pec.md §4.4, §5.4: signed by a listed provider but not in a PEC format is an anomaly.
    let listed_signer = signature_ok && in_index == Some(true);
    if c.kind == Kind::Ordinaria && listed_signer {
        format_problems.push(
            "signed by a listed provider but carries no X-Ricevuta or X-Trasporto header".into(),
        );
    }
    let treat_as = match c.kind {
        Kind::Ordinaria if listed_signer => "anomalia",
        Kind::Ordinaria => "ordinaria",
        _ if !signature_ok => "ordinaria",
        _ if !format_problems.is_empty() => "anomalia",
        _ => "pec",
    };
    problems.extend(format_problems);
    Report {
        ok: c.kind != Kind::Ordinaria && signature_ok && problems.is_empty(),
        kind: c.kind.as_str().to_string(),
        receipt_type: c.receipt_type().map(|r| r.to_string()),
        virus: c.security_error,
        daticert,
        signature: sig,
        trusted,
        in_index,
        provider,
        revocation,
        treat_as: treat_as.to_string(),
        problems,
    }
}

/// The subject prefix each kind carries (pec.md Appendix A).
fn subject_prefix(kind: Kind, virus: bool) -> Option<&'static str> {
    Some(match kind {
        Kind::Ordinaria => return None,
        Kind::Anomalia => "ANOMALIA MESSAGGIO:",
        Kind::Pec(t) => match (t, virus) {
            (Tipo::Accettazione, _) => "ACCETTAZIONE:",
            (Tipo::NonAccettazione, false) => "AVVISO DI NON ACCETTAZIONE:",
            (Tipo::NonAccettazione, true) => "AVVISO DI NON ACCETTAZIONE PER VIRUS:",
            (Tipo::PresaInCarico, _) => "PRESA IN CARICO:",
            (Tipo::AvvenutaConsegna, _) => "CONSEGNA:",
            (Tipo::PostaCertificata, _) => "POSTA CERTIFICATA:",
            (Tipo::ErroreConsegna, false) => "AVVISO DI MANCATA CONSEGNA:",
            (Tipo::ErroreConsegna, true) => "AVVISO DI MANCATA CONSEGNA PER VIRUS:",
            (Tipo::PreavvisoErroreConsegna, _) => {
                "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO:"
            }
            (Tipo::RilevazioneVirus, _) => "PROBLEMA DI SICUREZZA:",
        },
    })
}

/// The subject's prefix (pec.md Appendix A). Reported, but it does not make the message an
/// anomaly: a message is classified by its headers, never by its subject (Appendix A), and
/// real traffic varies ("SUP.  TEMPO" with two spaces, pec.md §0.2; a missing subject).
fn subject_check(c: &Classified<'_>, p: &mut Vec<String>) {
    let subject = OriginalHeaders::parse(c.entity.raw)
        .subject
        .unwrap_or_default();
    if let Some(prefix) = subject_prefix(c.kind, c.security_error)
        && !subject.starts_with(prefix)
    {
        p.push(format!("the subject does not start with \"{prefix}\""));
    }
}

fn format_checks(c: &Classified<'_>, p: &mut Vec<String>) {
    if !c.has_text {
        p.push("there is no readable text part".into());
    }
    if c.kind == Kind::Anomalia {
        if c.daticert_parts > 0 {
            p.push("an anomaly envelope must not carry daticert.xml".into());
        }
        if c.postacert.is_none() {
            p.push("the anomaly envelope does not carry the received message".into());
        }
        return;
    }
    let Kind::Pec(tipo) = c.kind else { return };
    let d = match &c.daticert {
        None => {
            p.push("there is no daticert.xml part".into());
            return;
        }
        Some(Err(e)) => {
            p.push(e.to_string());
            return;
        }
        Some(Ok((d, dtd))) => {
            for problem in dtd {
                p.push(format!(
                    "daticert.xml is not valid against daticert.dtd: {problem}"
                ));
            }
            d
        }
    };
    if c.daticert_parts > 1 {
        p.push(format!(
            "there are {} daticert.xml parts, expected one",
            c.daticert_parts
        ));
    }
    if d.tipo != tipo {
        p.push(format!(
            "the headers say {tipo} but daticert.xml says tipo=\"{}\"",
            d.tipo
        ));
    }
    let virus_xml = d.errore == Errore::Virus;
    if matches!(tipo, Tipo::NonAccettazione | Tipo::ErroreConsegna) && virus_xml != c.security_error
    {
        p.push("X-VerificaSicurezza and daticert errore=\"virus\" disagree".into());
    }
    let riferimento = c.entity.header_value("X-Riferimento-Message-ID");
    match (&riferimento, &d.msgid) {
        (Some(r), Some(m)) if strip_brackets(r) != strip_brackets(m) => {
            p.push(format!(
                "X-Riferimento-Message-ID {r} differs from daticert msgid {m}"
            ));
        }
        (None, Some(_)) => {
            p.push("X-Riferimento-Message-ID is missing although daticert has a msgid".into())
        }
        _ => {}
    }
    let needs_consegna = matches!(
        tipo,
        Tipo::AvvenutaConsegna
            | Tipo::ErroreConsegna
            | Tipo::PreavvisoErroreConsegna
            | Tipo::RilevazioneVirus
    );
    if needs_consegna && d.consegna.is_none() {
        p.push(format!("daticert.xml of a {tipo} lacks <consegna>"));
    }
    if tipo == Tipo::PresaInCarico && d.ricezione.is_empty() {
        p.push("daticert.xml of a presa-in-carico lacks <ricezione>".into());
    }
    match tipo {
        Tipo::PostaCertificata => {
            let mid = c.entity.header_value("Message-ID").unwrap_or_default();
            if strip_brackets(&mid) != d.identificativo {
                p.push(format!(
                    "the envelope Message-ID {mid} differs from daticert identificativo {}",
                    d.identificativo
                ));
            }
            if d.ricevuta.is_none() {
                p.push("daticert.xml of an envelope lacks <ricevuta>".into());
            }
            match c.postacert {
                None => p.push("the envelope does not carry postacert.eml".into()),
                Some(inner) => {
                    let inner_id = Entity::parse(inner)
                        .header_value("Message-ID")
                        .unwrap_or_default();
                    if strip_brackets(&inner_id) != d.identificativo {
                        p.push(
                            "the Message-ID inside postacert.eml is not the PEC identificativo"
                                .into(),
                        );
                    }
                }
            }
        }
        Tipo::AvvenutaConsegna => match (d.ricevuta, c.postacert.is_some()) {
            (None, _) => p.push("daticert.xml of a delivery receipt lacks <ricevuta>".into()),
            (Some(ReceiptType::Sintetica), true) => {
                p.push("a sintetica receipt must not carry the original".into())
            }
            (Some(ReceiptType::Completa | ReceiptType::Breve), false) => {
                p.push(
                    "a completa or breve receipt must carry the original (postacert.eml)".into(),
                );
            }
            _ => {}
        },
        Tipo::NonAccettazione | Tipo::PreavvisoErroreConsegna | Tipo::RilevazioneVirus
            if c.postacert.is_some() =>
        {
            p.push(format!("a {tipo} notice must not include the original"));
        }
        _ => {}
    }
}
