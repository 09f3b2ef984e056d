//! #8 Avviso di rilevazione virus (pec.md §2.10): one per recipient, to the sending provider's
//! `mailReceipt`, with `X-Mittente`; the recipient in `<consegna>` as the DTD comment says.

use super::text::Text;
use super::{Provider, Spec, Transaction, base_daticert};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};

pub(super) fn spec(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    service_mailbox: &str,
    recipient: &str,
    virus: &str,
) -> Spec {
    let text = Text::new("Problema di sicurezza")
        .about_message(time, tx)
        .line(format!("e destinato all'utente \"{recipient}\""))
        .line(format!("è stato rilevato un virus ({virus})."))
        .line("Il messaggio non è stato consegnato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::RilevazioneVirus, Errore::Virus);
    d.consegna = Some(recipient.to_string());
    d.errore_esteso = Some(virus.to_string());
    Spec::notice(
        "rilevazione-virus",
        vec![("X-Mittente", tx.sender.clone())],
        "PROBLEMA DI SICUREZZA: ",
        service_mailbox.to_string(),
        text,
        d,
        None,
    )
}
