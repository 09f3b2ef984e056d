//! #5 Avviso di mancata consegna per superamento dei tempi massimi, 12h and 24h texts
//! (pec.md §2.7, §5.7). Same headers for both; the original is not included.

use super::text::Text;
use super::{Provider, Spec, Timeout, Transaction, base_daticert};
use crate::TimeRef;
use crate::daticert::{Errore, Tipo};

pub(super) fn spec(
    tx: &Transaction,
    provider: &Provider,
    time: TimeRef,
    recipient: &str,
    timeout: Timeout,
) -> Spec {
    let base = Text::new("Avviso di mancata consegna per superamento dei tempi massimi")
        .about_message(time, tx)
        .line(format!("e destinato all'utente \"{recipient}\""));
    let text = match timeout {
        Timeout::Hours12 => base
            .line("non è stata ricevuta conferma di consegna entro le prime 12 ore dall'invio.")
            .line("Il messaggio potrebbe ancora essere consegnato, ma si consideri che la consegna potrebbe non avvenire.")
            .line("Se non perverrà conferma di consegna nelle successive 12 ore sarà inviato un ulteriore avviso."),
        Timeout::Hours24 => base
            .line("non è stato consegnato entro 24 ore dall'invio.")
            .line("La transazione è da considerarsi conclusa con esito negativo."),
    }
    .line(format!("Identificativo messaggio: {}", tx.identificativo));
    let mut d = base_daticert(
        tx,
        provider,
        time,
        Tipo::PreavvisoErroreConsegna,
        Errore::Nessuno,
    );
    d.consegna = Some(recipient.to_string());
    Spec::notice(
        "preavviso-errore-consegna",
        Vec::new(),
        "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ",
        tx.sender.clone(),
        text,
        d,
        None,
    )
}
