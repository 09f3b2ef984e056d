//! #6 Ricevuta di presa in carico (pec.md §2.8): provider to provider, to the sending
//! provider's `mailReceipt`, one `<ricezione>` per covered recipient.

use super::text::{Text, subject, when};
use super::{Provider, Spec, Transaction, base_daticert};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};

pub(super) fn spec(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    service_mailbox: &str,
    covered: &[String],
) -> Spec {
    let text = Text::new("Ricevuta di presa in carico")
        .line(format!("{} il messaggio", when(time)))
        .line(format!(
            "\"{}\" proveniente da \"{}\"",
            subject(&tx.subject),
            tx.sender
        ))
        .line("ed indirizzato a:")
        .lines(covered.iter().cloned())
        .line("è stato accettato dal sistema.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::PresaInCarico, Errore::Nessuno);
    d.ricezione = covered.to_vec();
    Spec::notice(
        "presa-in-carico",
        Vec::new(),
        "PRESA IN CARICO: ",
        service_mailbox.to_string(),
        text,
        d,
        None,
    )
}
