//! Builders for every message a gestore generates (pec.md §2), one file per kind with the
//! same shape: what the kind says (headers, subject prefix, readable text, daticert, attached
//! original), then [`Unsigned::sign`] makes the signed `multipart/signed` message.
//!
//! Layout (pec.md §2.1, "Real layout"): `multipart/mixed` holding a `multipart/alternative`
//! (ISO-8859-1 text/plain and text/html, quoted-printable), then `daticert.xml` (base64,
//! UTF-8), then `postacert.eml` (`message/rfc822`) where the kind carries it.

mod accettazione;
mod anomalia;
mod avvenuta_consegna;
mod errore_consegna;
mod non_accettazione;
mod posta_certificata;
mod preavviso;
mod presa_in_carico;
mod rilevazione_virus;
mod text;

pub use posta_certificata::envelope_original;

use crate::TimeRef;
use crate::daticert::{self, Daticert, Destinatario, Errore, ReceiptType, Tipo};
use crate::mime::{base64_lines, canonical_crlf, encode_word};
use crate::smime::{SignError, Signer, sign_entity};

/// The provider that makes a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Descriptive name, written in `gestore-emittente` (e.g. `ARUBA PEC S.p.A.`).
    pub name: String,
    /// The service domain of `posta-certificata@<domain>` (pec.md §2.1).
    pub service_domain: String,
}

impl Provider {
    /// `posta-certificata@<service domain>`: the From of every generated message and the
    /// rfc822Name of the signing certificate.
    pub fn service_address(&self) -> String {
        format!("posta-certificata@{}", self.service_domain)
    }
}

/// What every message of one transaction states about the original (pec.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The original sender (SMTP reverse-path, equal to `From:`).
    pub sender: String,
    /// Every To and Cc recipient, classified.
    pub recipients: Vec<Destinatario>,
    /// The original `Reply-To`, if any.
    pub reply_to: Option<String>,
    /// The decoded original subject.
    pub subject: Option<String>,
    /// The PEC msgid of the transport envelope (pec.md §5.10).
    pub identificativo: String,
    /// The client Message-ID, with angle brackets.
    pub client_msgid: Option<String>,
}

/// Why the delivery of a transport envelope failed (pec.md §2.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryError {
    /// No such mailbox (`no-dest`).
    NoDest,
    /// No such domain (`no-dominio`).
    NoDominio,
    /// Anything else, e.g. mailbox full (`altro`).
    Altro,
}

impl DeliveryError {
    fn errore(self) -> Errore {
        match self {
            DeliveryError::NoDest => Errore::NoDest,
            DeliveryError::NoDominio => Errore::NoDominio,
            DeliveryError::Altro => Errore::Altro,
        }
    }
}

/// Which timeout notice (pec.md §2.7, §5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No presa in carico nor delivery within 12 hours.
    Hours12,
    /// No delivery within 24 hours: the transaction ends with a negative outcome.
    Hours24,
}

/// Every artefact a gestore generates (pec.md §2.2), with what each needs beyond the
/// [`Transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artefact {
    /// #1 Ricevuta di accettazione.
    Accettazione,
    /// #2 Avviso di non accettazione for a formal exception.
    NonAccettazione {
        /// The reason, for `errore-esteso` and the text.
        reason: String,
    },
    /// #3 Avviso di non accettazione per virus.
    NonAccettazioneVirus {
        /// The virus name reported by the antivirus.
        virus: String,
    },
    /// #4 Busta di trasporto. `original` is the message as submitted.
    PostaCertificata {
        /// The submitted message bytes.
        original: Vec<u8>,
    },
    /// #5 Avviso di mancata consegna per superamento dei tempi massimi.
    PreavvisoErroreConsegna {
        /// The recipient still waiting.
        recipient: String,
        /// 12h or 24h.
        timeout: Timeout,
    },
    /// #6 Ricevuta di presa in carico.
    PresaInCarico {
        /// The sending provider's `mailReceipt`.
        service_mailbox: String,
        /// The recipients covered by this notice.
        covered: Vec<String>,
    },
    /// #7 Busta di anomalia. `received` is the whole received message.
    Anomalia {
        /// The received message bytes.
        received: Vec<u8>,
        /// Why the data could not be certified.
        error: String,
    },
    /// #8 Avviso di rilevazione virus.
    RilevazioneVirus {
        /// The sending provider's `mailReceipt`.
        service_mailbox: String,
        /// The recipient the infected envelope was for.
        recipient: String,
        /// The virus name.
        virus: String,
    },
    /// #9 Avviso di mancata consegna per virus.
    ErroreConsegnaVirus {
        /// The recipient.
        recipient: String,
        /// The virus name.
        virus: String,
    },
    /// #10-#12 Ricevuta di avvenuta consegna.
    AvvenutaConsegna {
        /// The recipient the envelope was delivered to.
        recipient: String,
        /// Completa, breve or sintetica (see [`ReceiptType`] and pec.md §2.12).
        kind: ReceiptType,
        /// The original as carried in the envelope's `postacert.eml`.
        original: Vec<u8>,
    },
    /// #13 Avviso di mancata consegna.
    ErroreConsegna {
        /// The recipient.
        recipient: String,
        /// The error class.
        error: DeliveryError,
        /// The description, e.g. `5.1.1 - Example PEC - indirizzo non valido`.
        detail: String,
    },
}

/// How the `From:` of a generated message reads (pec.md Appendix A, "From forms").
enum FromForm {
    Service,
    OnBehalfOf,
}

/// What one kind contributes; the shared code turns it into a message.
struct Spec {
    /// (`X-Ricevuta` | `X-Trasporto`, value).
    marker: (&'static str, &'static str),
    /// Further X- headers, in order.
    extra: Vec<(&'static str, String)>,
    subject_prefix: &'static str,
    from: FromForm,
    /// `To:` value, unless the kind copies the original's header fields.
    to: Option<String>,
    /// Raw header fields copied from the original (envelope and anomaly), CRLF-terminated.
    copied: Vec<u8>,
    /// Whether `X-Riferimento-Message-ID` is written (not on the anomaly).
    riferimento: bool,
    /// `Message-ID:` override (the envelope uses the PEC msgid; the anomaly has none of its own).
    message_id: MessageIdForm,
    text: text::Text,
    daticert: Option<Daticert>,
    postacert: Option<Vec<u8>>,
}

impl Spec {
    /// A receipt or notice (`X-Ricevuta`): From the service address, a fresh Message-ID,
    /// `X-Riferimento-Message-ID`, nothing copied from the original (pec.md §2.1).
    fn notice(
        ricevuta: &'static str,
        extra: Vec<(&'static str, String)>,
        subject_prefix: &'static str,
        to: String,
        text: text::Text,
        daticert: Daticert,
        postacert: Option<Vec<u8>>,
    ) -> Spec {
        Spec {
            marker: ("X-Ricevuta", ricevuta),
            extra,
            subject_prefix,
            from: FromForm::Service,
            to: Some(to),
            copied: Vec::new(),
            riferimento: true,
            message_id: MessageIdForm::Fresh,
            text,
            daticert: Some(daticert),
            postacert,
        }
    }
}

enum MessageIdForm {
    Fresh,
    Identificativo,
    Copied,
}

/// A generated message before signing.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// The outer header block (CRLF-terminated fields, without MIME-Version / Content-Type).
    pub header_block: Vec<u8>,
    /// The `multipart/mixed` entity that gets signed.
    pub entity: Vec<u8>,
    /// Outer boundary to use.
    boundary: String,
    /// The signing time (= the message time).
    time: TimeRef,
}

impl Unsigned {
    /// Signs the message and returns its bytes (CRLF throughout).
    pub fn sign(&self, signer: &dyn Signer) -> Result<Vec<u8>, SignError> {
        sign_entity(
            &self.header_block,
            &self.entity,
            &self.boundary,
            signer,
            self.time,
        )
    }
}

/// The base `daticert.xml` of a transaction: intestazione and the dati every kind shares.
fn base_daticert(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    tipo: Tipo,
    errore: Errore,
) -> Daticert {
    Daticert {
        tipo,
        errore,
        mittente: tx.sender.clone(),
        destinatari: tx.recipients.clone(),
        risposte: tx.reply_to.clone().unwrap_or_else(|| tx.sender.clone()),
        oggetto: tx.subject.clone(),
        gestore_emittente: provider.name.clone(),
        data: time.into(),
        identificativo: tx.identificativo.clone(),
        msgid: tx.client_msgid.clone(),
        ricevuta: None,
        consegna: None,
        ricezione: Vec::new(),
        errore_esteso: None,
    }
}

/// Builds an artefact. `message_id` is the fresh `Message-ID` of this message (pec.md §5.10,
/// without brackets); the envelope ignores it and uses the transaction's identificativo.
pub fn build(
    artefact: &Artefact,
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    message_id: &str,
) -> Unsigned {
    let spec = match artefact {
        Artefact::Accettazione => accettazione::spec(tx, provider, time),
        Artefact::NonAccettazione { reason } => {
            non_accettazione::formal(tx, provider, time, reason)
        }
        Artefact::NonAccettazioneVirus { virus } => {
            non_accettazione::virus(tx, provider, time, virus)
        }
        Artefact::PostaCertificata { original } => {
            posta_certificata::spec(tx, provider, time, original)
        }
        Artefact::PreavvisoErroreConsegna { recipient, timeout } => {
            preavviso::spec(tx, provider, time, recipient, *timeout)
        }
        Artefact::PresaInCarico {
            service_mailbox,
            covered,
        } => presa_in_carico::spec(tx, provider, time, service_mailbox, covered),
        Artefact::Anomalia { received, error } => anomalia::spec(tx, time, received, error),
        Artefact::RilevazioneVirus {
            service_mailbox,
            recipient,
            virus,
        } => rilevazione_virus::spec(tx, provider, time, service_mailbox, recipient, virus),
        Artefact::ErroreConsegnaVirus { recipient, virus } => {
            errore_consegna::virus(tx, provider, time, recipient, virus)
        }
        Artefact::AvvenutaConsegna {
            recipient,
            kind,
            original,
        } => avvenuta_consegna::spec(tx, provider, time, recipient, *kind, original),
        Artefact::ErroreConsegna {
            recipient,
            error,
            detail,
        } => errore_consegna::delivery(tx, provider, time, recipient, *error, detail),
    };
    assemble(spec, tx, provider, time, message_id)
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Quotes a display name (RFC 5322 §3.2.4).
fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        if !c.is_control() {
            q.push(c);
        }
    }
    q.push('"');
    q
}

/// A boundary derived from the content, so that it cannot occur in it (SHA-256 preimage).
fn boundary(tag: &str, seed: &[u8], content: &[&[u8]]) -> String {
    let mut counter = 0u32;
    loop {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(tag.as_bytes());
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        let h = ctx.finish();
        let b = format!("{tag}{}", hex::encode(&h.as_ref()[..16]));
        if !content.iter().any(|c| contains(c, b.as_bytes())) {
            return b;
        }
        counter += 1;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assemble(
    spec: Spec,
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    message_id: &str,
) -> Unsigned {
    let mut h = Vec::with_capacity(512 + spec.copied.len());
    h.extend_from_slice(&spec.copied);
    push_field(&mut h, spec.marker.0, spec.marker.1);
    for (name, value) in &spec.extra {
        push_field(&mut h, name, value);
    }
    push_field(&mut h, "Date", &time.rfc5322());
    let subject = format!(
        "{}{}",
        spec.subject_prefix,
        tx.subject.as_deref().unwrap_or("")
    );
    push_field(
        &mut h,
        "Subject",
        &encode_word(subject.trim_end_matches(' ')),
    );
    match spec.from {
        FromForm::Service => push_field(&mut h, "From", &provider.service_address()),
        FromForm::OnBehalfOf => push_field(
            &mut h,
            "From",
            &format!(
                "{} <{}>",
                quoted(&format!("Per conto di: {}", tx.sender)),
                provider.service_address()
            ),
        ),
    }
    if let Some(to) = &spec.to {
        push_field(&mut h, "To", to);
    }
    if spec.riferimento
        && let Some(m) = &tx.client_msgid
    {
        push_field(&mut h, "X-Riferimento-Message-ID", m);
    }
    match spec.message_id {
        MessageIdForm::Fresh => push_field(&mut h, "Message-ID", &format!("<{message_id}>")),
        MessageIdForm::Identificativo => {
            push_field(&mut h, "Message-ID", &format!("<{}>", tx.identificativo))
        }
        MessageIdForm::Copied => {}
    }

    let xml = spec.daticert.as_ref().map(daticert::write);
    let seed = [
        message_id.as_bytes(),
        tx.identificativo.as_bytes(),
        &time.utc().timestamp().to_be_bytes(),
    ]
    .concat();
    let postacert = spec.postacert.as_deref().unwrap_or(b"");
    let plain = spec.text.plain();
    let html = spec.text.html();
    let content: [&[u8]; 4] = [
        postacert,
        xml.as_deref().unwrap_or("").as_bytes(),
        &plain,
        &html,
    ];
    let mixed_b = boundary("----------=_", &seed, &content);
    let alt_b = boundary("----------=_alt", &seed, &content);
    let outer_b = boundary("----", &seed, &content);

    let mut e = Vec::with_capacity(postacert.len() + plain.len() * 3 + 4096);
    e.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary=\"{mixed_b}\"\r\n\r\n").as_bytes(),
    );
    e.extend_from_slice(format!("--{mixed_b}\r\n").as_bytes());
    e.extend_from_slice(
        format!("Content-Type: multipart/alternative; boundary=\"{alt_b}\"\r\n\r\n").as_bytes(),
    );
    e.extend_from_slice(format!("--{alt_b}\r\n").as_bytes());
    e.extend_from_slice(b"Content-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    e.extend_from_slice(&plain);
    e.extend_from_slice(format!("\r\n--{alt_b}\r\n").as_bytes());
    e.extend_from_slice(b"Content-Type: text/html; charset=\"iso-8859-1\"\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    e.extend_from_slice(&html);
    e.extend_from_slice(format!("\r\n--{alt_b}--\r\n").as_bytes());
    if let Some(xml) = &xml {
        e.extend_from_slice(format!("\r\n--{mixed_b}\r\n").as_bytes());
        e.extend_from_slice(b"Content-Type: application/xml; name=\"daticert.xml\"\r\nContent-Disposition: inline; filename=\"daticert.xml\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        e.extend_from_slice(&base64_lines(xml.as_bytes()));
    }
    if let Some(original) = &spec.postacert {
        let cte = if original.iter().any(|&b| b >= 0x80) {
            "8bit"
        } else {
            "7bit"
        };
        e.extend_from_slice(format!("\r\n--{mixed_b}\r\n").as_bytes());
        e.extend_from_slice(
            format!("Content-Type: message/rfc822; name=\"postacert.eml\"\r\nContent-Disposition: inline; filename=\"postacert.eml\"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").as_bytes(),
        );
        e.extend_from_slice(original);
    }
    e.extend_from_slice(format!("\r\n--{mixed_b}--").as_bytes());
    Unsigned {
        header_block: h,
        entity: e,
        boundary: outer_b,
        time,
    }
}

/// The original in CRLF form, as it travels over SMTP (pec.md §5.5: no other change).
fn crlf(original: &[u8]) -> Vec<u8> {
    canonical_crlf(original).into_owned()
}

/// The raw header fields named `names` of a message, in their original order, CRLF-terminated.
fn copy_fields(original: &[u8], names: &[&str]) -> Vec<u8> {
    let entity = crate::mime::Entity::parse(original);
    let mut out = Vec::new();
    for f in &entity.headers {
        if names.iter().any(|n| f.is(n)) {
            let raw = canonical_crlf(f.raw);
            out.extend_from_slice(&raw);
            if !raw.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// The recipients list of the readable texts.
fn recipient_lines(tx: &Transaction) -> Vec<String> {
    tx.recipients.iter().map(|r| r.address.clone()).collect()
}
