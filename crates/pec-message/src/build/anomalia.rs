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
    let mut copied_fields = vec!["Received", "Return-Path", "To", "Cc"];
    if OriginalHeaders::parse(received).reply_to.is_some() {
        copied_fields.push("Reply-To");
    } else {
        extra.push(("Reply-To", tx.sender.clone()));
    }
    // The received Message-ID is kept when it has a value; otherwise a fresh one is made,
    // so the anomaly never carries two or an empty one.
    let has_message_id = crate::mime::Entity::parse(received)
        .header_value("Message-ID")
        .is_some_and(|v| !v.trim().is_empty());
    if has_message_id {
        copied_fields.push("Message-ID");
    }
    let copied = copy_fields(received, &copied_fields);
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
