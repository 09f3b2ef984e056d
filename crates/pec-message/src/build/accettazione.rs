//! #1 Ricevuta di accettazione (pec.md §2.3): to the sender, no original attached; the text
//! marks each recipient as "posta certificata" or "posta ordinaria".

use super::text::{Text, subject, when};
use super::{Provider, Spec, Transaction, base_daticert};
use crate::TimeRef;
use crate::daticert::{Errore, RecipientType, Tipo};

pub(super) fn spec(tx: &Transaction, provider: &Provider, time: TimeRef) -> Spec {
    let text = Text::new("Ricevuta di accettazione")
        .line(format!("{} il messaggio", when(time)))
        .line(format!(
            "\"{}\" proveniente da \"{}\"",
            subject(&tx.subject),
            tx.sender
        ))
        .line("ed indirizzato a:")
        .lines(tx.recipients.iter().map(|r| {
            let label = match r.tipo {
                RecipientType::Certificato => "posta certificata",
                RecipientType::Esterno => "posta ordinaria",
            };
            format!("{} (\"{label}\")", r.address)
        }))
        .line("Il messaggio è stato accettato dal sistema ed inoltrato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    Spec::notice(
        "accettazione",
        Vec::new(),
        "ACCETTAZIONE: ",
        tx.sender.clone(),
        text,
        base_daticert(tx, provider, time, Tipo::Accettazione, Errore::Nessuno),
        None,
    )
}
