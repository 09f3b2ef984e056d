//! #7 Busta di anomalia (pec.md §2.9): the whole received message, unchanged, as
//! `postacert.eml`; Received, To, Cc, Return-Path and Message-ID copied; no `daticert.xml`.

use super::text::{Text, subject, when};
use super::{FromForm, MessageIdForm, Spec, Transaction, copy_fields, crlf, recipient_lines};
use crate::TimeRef;
use crate::original::OriginalHeaders;

pub(super) fn spec(tx: &Transaction, time: TimeRef, received: &[u8], error: &str) -> Spec {
    let text = Text::new("Anomalia nel messaggio")
        .line(format!("{} è stato ricevuto", when(time)))
        .line(format!(
            "il messaggio \"{}\" proveniente da \"{}\"",
            subject(&tx.subject),
            tx.sender
        ))
        .line("ed indirizzato a:")
        .lines(recipient_lines(tx))
        .line("Tali dati non sono stati certificati per il seguente errore:")
        .line(error.to_string())
        .line("Il messaggio originale è incluso in allegato.");
    let mut extra = Vec::new();
    // As in the transport envelope: one Reply-To, the original's when it names an address.
    let copied_fields: &[&str] = if OriginalHeaders::parse(received).reply_to.is_some() {
        &[
            "Received",
            "Return-Path",
            "To",
            "Cc",
            "Reply-To",
            "Message-ID",
        ]
    } else {
        extra.push(("Reply-To", tx.sender.clone()));
        &["Received", "Return-Path", "To", "Cc", "Message-ID"]
    };
    let copied = copy_fields(received, copied_fields);
    let has_message_id = crate::mime::Entity::parse(received)
        .header("Message-ID")
        .is_some();
    Spec {
        marker: ("X-Trasporto", "errore"),
        extra,
        subject_prefix: "ANOMALIA MESSAGGIO: ",
        from: FromForm::OnBehalfOf,
        to: None,
        copied,
        riferimento: false,
        message_id: if has_message_id {
            MessageIdForm::Copied
        } else {
            MessageIdForm::Fresh
        },
        text,
        daticert: None,
        postacert: Some(crlf(received)),
    }
}
