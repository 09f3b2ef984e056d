//! #9 Avviso di mancata consegna per virus and #13 Avviso di mancata consegna (pec.md §2.11,
//! §2.13): to the sender, one per recipient, `<consegna>` and `<errore-esteso>` filled.

use super::text::Text;
use super::{DeliveryError, Provider, Spec, Transaction, base_daticert};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};

pub(super) fn delivery(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    recipient: &str,
    error: DeliveryError,
    detail: &str,
) -> Spec {
    let text = Text::new("Avviso di mancata consegna")
        .about_message(time, tx)
        .line(format!("e destinato all'utente \"{recipient}\""))
        .line("è stato rilevato un errore:")
        .line(detail.to_string())
        .line("Il messaggio è stato rifiutato dal sistema.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::ErroreConsegna, error.errore());
    d.consegna = Some(recipient.to_string());
    d.errore_esteso = Some(detail.to_string());
    spec(tx, text, d, "AVVISO DI MANCATA CONSEGNA: ", Vec::new())
}

pub(super) fn virus(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    recipient: &str,
    virus: &str,
) -> Spec {
    let text = Text::new("Avviso di mancata consegna per virus")
        .about_message(time, tx)
        .line(format!("e destinato all'utente \"{recipient}\""))
        .line(format!(
            "è stato rilevato un problema di sicurezza ({virus})."
        ))
        .line("Il messaggio non è stato consegnato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::ErroreConsegna, Errore::Virus);
    d.consegna = Some(recipient.to_string());
    d.errore_esteso = Some(virus.to_string());
    spec(
        tx,
        text,
        d,
        "AVVISO DI MANCATA CONSEGNA PER VIRUS: ",
        vec![("X-VerificaSicurezza", "errore".to_string())],
    )
}

fn spec(
    tx: &Transaction,
    text: Text,
    d: crate::daticert::Daticert,
    prefix: &'static str,
    extra: Vec<(&'static str, String)>,
) -> Spec {
    Spec::notice(
        "errore-consegna",
        extra,
        prefix,
        tx.sender.clone(),
        text,
        d,
        None,
    )
}
