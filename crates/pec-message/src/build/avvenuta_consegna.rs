//! #10-#12 Ricevuta di avvenuta consegna, completa / breve / sintetica (pec.md §2.12): one per
//! recipient, to the sender; completa carries the original, breve the original with hashed
//! attachments, sintetica no original.

use super::text::{Text, subject, when};
use super::{Provider, Spec, Transaction, base_daticert};
use crate::TimeRef;
use crate::breve::breve;
use crate::daticert::{Errore, ReceiptType, Tipo};

pub(super) fn spec(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    recipient: &str,
    kind: ReceiptType,
    original: &[u8],
) -> Spec {
    let title = match kind {
        ReceiptType::Completa => "Ricevuta di avvenuta consegna",
        ReceiptType::Breve => "Ricevuta breve di avvenuta consegna",
        ReceiptType::Sintetica => "Ricevuta sintetica di avvenuta consegna",
    };
    let mut text = Text::new(title)
        .line(format!("{} il messaggio", when(time)))
        .line(format!(
            "\"{}\" proveniente da \"{}\"",
            subject(&tx.subject),
            tx.sender
        ))
        .line(format!("ed indirizzato a \"{recipient}\""))
        .line("è stato consegnato nella casella di destinazione.");
    text = match kind {
        ReceiptType::Completa => text.line("Il messaggio originale è incluso in allegato."),
        ReceiptType::Breve => text.line(
            "Il messaggio originale è incluso in allegato; gli allegati sono sostituiti dalla loro impronta SHA-1 (file .hash).",
        ),
        ReceiptType::Sintetica => text,
    };
    text = text.line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::AvvenutaConsegna, Errore::Nessuno);
    d.ricevuta = Some(kind);
    d.consegna = Some(recipient.to_string());
    let postacert = match kind {
        ReceiptType::Completa => Some(super::crlf(original)),
        ReceiptType::Breve => Some(breve(&super::crlf(original))),
        ReceiptType::Sintetica => None,
    };
    Spec::notice(
        "avvenuta-consegna",
        Vec::new(),
        "CONSEGNA: ",
        tx.sender.clone(),
        text,
        d,
        postacert,
    )
}
