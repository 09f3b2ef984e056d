//! #2 and #3 Avviso di non accettazione, for a formal exception or for a virus (pec.md §2.4,
//! §2.5). The original must not be included.

use super::text::Text;
use super::{Provider, Spec, Transaction, base_daticert, recipient_lines};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};

pub(super) fn formal(tx: &Transaction, provider: &Provider, time: TimeRef, reason: &str) -> Spec {
    let text = Text::new("Errore nell'accettazione del messaggio")
        .about_message(time, tx)
        .line("ed indirizzato a:")
        .lines(recipient_lines(tx))
        .line("è stato rilevato un problema che ne impedisce l'accettazione")
        .line(format!("a causa di - {reason}"))
        .line("Il messaggio non è stato accettato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::NonAccettazione, Errore::Altro);
    d.errore_esteso = Some(reason.to_string());
    notice(tx, text, d, "AVVISO DI NON ACCETTAZIONE: ", Vec::new())
}

pub(super) fn virus(tx: &Transaction, provider: &Provider, time: TimeRef, virus: &str) -> Spec {
    let text = Text::new("Errore nell'accettazione del messaggio per presenza di virus")
        .about_message(time, tx)
        .line("ed indirizzato a:")
        .lines(recipient_lines(tx))
        .line(format!(
            "è stato rilevato un problema di sicurezza ({virus})."
        ))
        .line("Il messaggio non è stato accettato.")
        .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(tx, provider, time, Tipo::NonAccettazione, Errore::Virus);
    d.errore_esteso = Some(virus.to_string());
    notice(
        tx,
        text,
        d,
        "AVVISO DI NON ACCETTAZIONE PER VIRUS: ",
        vec![("X-VerificaSicurezza", "errore".to_string())],
    )
}

fn notice(
    tx: &Transaction,
    text: Text,
    d: crate::daticert::Daticert,
    prefix: &'static str,
    extra: Vec<(&'static str, String)>,
) -> Spec {
    Spec::notice(
        "non-accettazione",
        extra,
        prefix,
        tx.sender.clone(),
        text,
        d,
        None,
    )
}
