//! #4 Busta di trasporto (pec.md §2.6): the original, with its Message-ID swapped for the PEC
//! msgid and `X-Riferimento-Message-ID` added, inside a signed envelope that copies Received,
//! To, Cc, Return-Path and Reply-To unchanged.

use super::text::{Text, subject, when};
use super::{
    FromForm, MessageIdForm, Provider, Spec, Transaction, base_daticert, copy_fields, crlf,
    recipient_lines,
};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};
use crate::mime::Entity;
use crate::original::OriginalHeaders;

pub(super) fn spec(tx: &Transaction, provider: &Provider, time: TimeRef, original: &[u8]) -> Spec {
    let headers = OriginalHeaders::parse(original);
    let receipt = headers.requested_receipt();
    let text = Text::new("Messaggio di posta certificata")
        .line(format!("{} il messaggio", when(time)))
        .line(format!(
            "\"{}\" è stato inviato da \"{}\"",
            subject(&tx.subject),
            tx.sender
        ))
        .line("indirizzato a:")
        .lines(recipient_lines(tx))
        .line("Il messaggio originale è incluso in allegato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::PostaCertificata, Errore::Nessuno);
    d.ricevuta = Some(receipt);
    let mut extra = Vec::new();
    // The original's Reply-To is copied when it names an address; otherwise (absent, empty
    // or an empty group) the sender is added in its place, so there is never a second one.
    let copied_fields: &[&str] = if headers.reply_to.is_some() {
        &["Received", "Return-Path", "To", "Cc", "Reply-To"]
    } else {
        extra.push(("Reply-To", tx.sender.clone()));
        &["Received", "Return-Path", "To", "Cc"]
    };
    extra.push(("X-TipoRicevuta", receipt.as_str().to_string()));
    Spec {
        marker: ("X-Trasporto", "posta-certificata"),
        extra,
        subject_prefix: "POSTA CERTIFICATA: ",
        from: FromForm::OnBehalfOf,
        to: None,
        copied: copy_fields(original, copied_fields),
        riferimento: true,
        message_id: MessageIdForm::Identificativo,
        text,
        daticert: Some(d),
        postacert: Some(envelope_original(original, &tx.identificativo)),
    }
}

/// The original as carried in `postacert.eml` (pec.md §2.6, §5.5): unchanged except that its
/// `Message-ID` becomes `<identificativo>` and the client's value moves to an added
/// `X-Riferimento-Message-ID`. Line endings are CRLF, as over SMTP.
pub fn envelope_original(original: &[u8], identificativo: &str) -> Vec<u8> {
    let original = crlf(original);
    let entity = Entity::parse(&original);
    let new_id = format!("Message-ID: <{identificativo}>\r\n");
    let mut out = Vec::with_capacity(original.len() + 128);
    match entity.header("Message-ID") {
        Some(field) => {
            let start = field.raw.as_ptr() as usize - original.as_ptr() as usize;
            let end = start + field.raw.len();
            let client = field.value();
            out.extend_from_slice(&original[..start]);
            out.extend_from_slice(format!("X-Riferimento-Message-ID: {client}\r\n").as_bytes());
            out.extend_from_slice(new_id.as_bytes());
            out.extend_from_slice(&original[end..]);
        }
        None => {
            // pec.md §5.10: no client msgid, so no X-Riferimento-Message-ID.
            out.extend_from_slice(new_id.as_bytes());
            out.extend_from_slice(&original);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daticert::ReceiptType;

    #[test]
    fn message_id_swapped_and_reference_added_nothing_else() {
        let orig = b"From: a@x.it\r\nMessage-ID:\r\n <c@client>\r\nSubject: s\r\n\r\nbody\r\n";
        let out = envelope_original(orig, "opec1.2@pec.x.it");
        assert_eq!(
            out,
            b"From: a@x.it\r\nX-Riferimento-Message-ID: <c@client>\r\nMessage-ID: <opec1.2@pec.x.it>\r\nSubject: s\r\n\r\nbody\r\n"
        );
        let out = envelope_original(b"From: a@x.it\n\nbody\n", "i@d");
        assert_eq!(out, b"Message-ID: <i@d>\r\nFrom: a@x.it\r\n\r\nbody\r\n");
    }

    #[test]
    fn requested_receipt_defaults_to_completa() {
        assert_eq!(
            ReceiptType::requested(Some("complet")),
            ReceiptType::Completa
        );
    }
}
