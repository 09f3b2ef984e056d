//! `pec samples`: a sample provider (development CA playing AgID CA1, signing certificate,
//! Indice entry) and one signed message of every kind (pec.md §2.2) for a sample transaction
//! with certified and external recipients in To and Cc.

use anyhow::{Context, Result};
use pec_index::{Index, ProviderRecord};
use pec_message::TimeRef;
use pec_message::build::{
    Artefact, DeliveryError, Provider, Timeout, Transaction, build, envelope_original,
};
use pec_message::daticert::{Destinatario, ReceiptType, RecipientType};
use pec_message::ident::IdGenerator;
use pec_message::original::OriginalHeaders;
use pec_message::pki::{self, Issued};
use pec_message::smime::SoftwareSigner;
use std::path::Path;

/// A provider with its development PKI and signer.
pub struct SampleProvider {
    pub provider: Provider,
    pub ca: Issued,
    pub signer: SoftwareSigner,
    pub index: Index,
}

impl SampleProvider {
    pub fn new(domain: &str, now: i64) -> Result<Self> {
        let domain = domain.trim().to_ascii_lowercase();
        anyhow::ensure!(
            !domain.is_empty()
                && domain
                    .split('.')
                    .all(|l| !l.is_empty()
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
            "--domain {domain:?} is not a domain name"
        );
        let provider = Provider {
            name: "PEC Esempio S.p.A.".into(),
            service_domain: domain.clone(),
        };
        let ca = pki::make_ca("AgID CA1 (development)", now - 86_400, 3650)?;
        let leaf = pki::issue_signing_cert(&ca, &provider.name, &domain, None, now - 86_400, 1095)?;
        let signer = SoftwareSigner::from_pkcs8(
            &leaf.key_pkcs8_der()?,
            leaf.cert_der()?,
            vec![ca.cert_der()?],
        )?;
        let mut record = ProviderRecord::new(
            &provider.name,
            leaf.cert_der()?,
            &provider.service_address(),
            &[&domain],
        );
        record.description = Some("Gestore PEC di esempio (ambiente di sviluppo)".into());
        Ok(SampleProvider {
            provider,
            ca,
            signer,
            index: Index {
                records: vec![record],
            },
        })
    }
}

/// The sample original: non-ASCII subject, an attachment, a Message-ID, certified and external
/// recipients in To and Cc.
pub fn sample_original(domain: &str, attachment_len: usize) -> Vec<u8> {
    use base64::Engine as _;
    let payload: Vec<u8> = (0..attachment_len).map(|i| (i * 31 % 251) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
    let mut lines = String::new();
    for chunk in b64.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        lines.push_str("\r\n");
    }
    format!(
        "Received: from [192.0.2.10] by smtp.{domain} with ESMTPSA; Tue, 24 Nov 2026 10:00:00 +0100\r\n\
From: \"Mario Rossi\" <mario.rossi@{domain}>\r\n\
To: \"Ufficio Protocollo\" <protocollo@{domain}>, cliente@example.org\r\n\
Cc: archivio@{domain}, \"Studio Bianchi\" <studio.bianchi@example.net>\r\n\
Subject: =?UTF-8?Q?Convocazione_assemblea_n=C2=B0_12_=E2=80=93_perch=C3=A9_s=C3=AC?=\r\n\
Date: Tue, 24 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <20261124100000.4711@client.example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"=_sample_boundary\"\r\n\
\r\n\
--=_sample_boundary\r\n\
Content-Type: text/plain; charset=\"utf-8\"\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Buongiorno,\r\n\
si trasmette la convocazione dell'assemblea. Città, società, però.\r\n\
\r\n\
--=_sample_boundary\r\n\
Content-Type: application/pdf; name=\"convocazione.pdf\"\r\n\
Content-Disposition: attachment; filename=\"convocazione.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{lines}--=_sample_boundary--\r\n"
    )
    .into_bytes()
}

/// The transaction facts of an original, classifying recipients with the Indice.
pub fn transaction(original: &[u8], index: &Index, identificativo: &str) -> Result<Transaction> {
    let h = OriginalHeaders::parse(original);
    let sender = h
        .from
        .first()
        .cloned()
        .context("the original has no From address")?;
    Ok(Transaction {
        sender,
        recipients: h
            .recipients()
            .into_iter()
            .map(|a| {
                let tipo = if index.is_certified_address(&a) {
                    RecipientType::Certificato
                } else {
                    RecipientType::Esterno
                };
                Destinatario { address: a, tipo }
            })
            .collect(),
        reply_to: h.reply_to.clone(),
        subject: h.subject.clone(),
        identificativo: identificativo.to_string(),
        client_msgid: h.message_id.clone(),
    })
}

pub fn run(out: &Path, domain: &str) -> Result<()> {
    let now = chrono::Utc::now().timestamp();
    let sp = SampleProvider::new(domain, now)?;
    let t0 = TimeRef::from_unix(now).context("clock out of range")?;
    let domain = &sp.provider.service_domain;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let original = sample_original(domain, 2048);
    let mut ids = IdGenerator::new("1", std::process::id(), domain, 0);
    let identificativo = ids.next_id(t0);
    let tx = transaction(&original, &sp.index, &identificativo)?;
    let inner = envelope_original(&original, &identificativo);
    let to = format!("protocollo@{domain}");
    let cc = format!("archivio@{domain}");
    let later = |secs: i64| TimeRef::from_unix(now + secs).context("clock out of range");
    let kinds: Vec<(&str, Artefact, TimeRef)> = vec![
        ("accettazione", Artefact::Accettazione, t0),
        (
            "non-accettazione",
            Artefact::NonAccettazione {
                reason: "Il campo Bcc non deve essere valorizzato".into(),
            },
            t0,
        ),
        (
            "non-accettazione-virus",
            Artefact::NonAccettazioneVirus {
                virus: "Eicar-Test-Signature".into(),
            },
            t0,
        ),
        (
            "posta-certificata",
            Artefact::PostaCertificata {
                original: original.clone(),
            },
            t0,
        ),
        (
            "preavviso-errore-consegna-12h",
            Artefact::PreavvisoErroreConsegna {
                recipient: to.clone(),
                timeout: Timeout::Hours12,
            },
            later(12 * 3600)?,
        ),
        (
            "preavviso-errore-consegna-24h",
            Artefact::PreavvisoErroreConsegna {
                recipient: to.clone(),
                timeout: Timeout::Hours24,
            },
            later(23 * 3600)?,
        ),
        (
            "presa-in-carico",
            Artefact::PresaInCarico {
                service_mailbox: sp.provider.service_address(),
                covered: vec![to.clone(), cc.clone()],
            },
            later(2)?,
        ),
        (
            "anomalia",
            Artefact::Anomalia {
                received: plain_mail(domain),
                error: "mittente non di posta certificata".into(),
            },
            later(3)?,
        ),
        (
            "rilevazione-virus",
            Artefact::RilevazioneVirus {
                service_mailbox: sp.provider.service_address(),
                recipient: to.clone(),
                virus: "Eicar-Test-Signature".into(),
            },
            later(3)?,
        ),
        (
            "errore-consegna-virus",
            Artefact::ErroreConsegnaVirus {
                recipient: to.clone(),
                virus: "Eicar-Test-Signature".into(),
            },
            later(4)?,
        ),
        (
            "avvenuta-consegna-completa",
            Artefact::AvvenutaConsegna {
                recipient: to.clone(),
                kind: ReceiptType::Completa,
                original: inner.clone(),
            },
            later(5)?,
        ),
        (
            "avvenuta-consegna-breve",
            Artefact::AvvenutaConsegna {
                recipient: to.clone(),
                kind: ReceiptType::Breve,
                original: inner.clone(),
            },
            later(5)?,
        ),
        (
            "avvenuta-consegna-sintetica",
            Artefact::AvvenutaConsegna {
                recipient: cc.clone(),
                kind: ReceiptType::Sintetica,
                original: inner.clone(),
            },
            later(5)?,
        ),
        (
            "errore-consegna",
            Artefact::ErroreConsegna {
                recipient: format!("nessuno@{domain}"),
                error: DeliveryError::NoDest,
                detail: format!("5.1.1 - {} - indirizzo non valido", sp.provider.name),
            },
            later(5)?,
        ),
    ];
    for (name, artefact, at) in kinds {
        let anomaly_tx;
        let tx = if let Artefact::Anomalia { received, .. } = &artefact {
            anomaly_tx = transaction(received, &sp.index, "")?;
            &anomaly_tx
        } else {
            &tx
        };
        let message_id = ids.next_id(at);
        let bytes = build(&artefact, tx, &sp.provider, at, &message_id).sign(&sp.signer)?;
        let path = out.join(format!("{name}.eml"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::write(out.join("ca.pem"), sp.ca.cert.to_pem()?).context("cannot write ca.pem")?;
    std::fs::write(out.join("index.ldif"), sp.index.to_ldif())
        .context("cannot write index.ldif")?;
    println!(
        "Wrote 14 signed PEC messages, ca.pem and index.ldif to {}",
        out.display()
    );
    println!(
        "Check one with: pec verify --ca {0}/ca.pem --index {0}/index.ldif {0}/accettazione.eml",
        out.display()
    );
    Ok(())
}

/// An ordinary message from outside PEC, for the anomaly sample.
fn plain_mail(domain: &str) -> Vec<u8> {
    format!(
        "Received: from mx.example.com by mx.{domain}; Tue, 24 Nov 2026 10:05:00 +0100\r\n\
From: newsletter@example.com\r\nTo: protocollo@{domain}\r\nSubject: Offerta speciale\r\n\
Message-ID: <offerta-1@example.com>\r\nDate: Tue, 24 Nov 2026 10:05:00 +0100\r\n\r\nMessaggio ordinario, non certificato.\r\n"
    )
    .into_bytes()
}
