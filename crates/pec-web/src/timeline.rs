//! The per-recipient timeline of a sent PEC (product.md: "tie receipts to the sent
//! message"): the acceptance, the presa in carico, delivery with its receipt kind, failure
//! with its reason, and the 12h / 24h notices, gathered from the receipts in the sender's
//! mailbox that carry the transaction's identificativo (pec.md §2) and from the gestore's
//! tracked state of the transaction.

use pec_gestore::{Gestore, GestoreError};
use pec_message::classify::classify;
use pec_message::daticert::Daticert;
use pec_message::original::OriginalHeaders;
use pec_store::{ListedMessage, Store};
use serde::Serialize;

/// One event of a recipient.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `accettazione`, `non-accettazione`, `presa-in-carico`, `avvenuta-consegna`,
    /// `errore-consegna`, `preavviso-errore-consegna` (with `detail` 12h or 24h).
    pub kind: String,
    /// When, as the certifying gestore wrote it (`daticert.xml` data), RFC 3339 when known.
    pub time: Option<String>,
    /// The delivery receipt kind, or the failure reason, or the notice's hour mark.
    pub detail: Option<String>,
    /// The receipt's location in the mailbox, for a link.
    pub receipt: Option<ReceiptRef>,
}

/// Where a receipt is stored.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptRef {
    /// Folder.
    pub folder: String,
    /// UID.
    pub uid: u32,
}

/// One recipient's line.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientLine {
    /// Address.
    pub address: String,
    /// `certificato` (a PEC address), `esterno`, or `sconosciuto` before the acceptance.
    pub tipo: String,
    /// `in-corso`, `consegnato`, `non-consegnato`, or `esterno` (an ordinary address gets no
    /// delivery receipt, pec.md §2.8).
    pub status: String,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// The whole transaction as its sender sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The PEC msgid.
    pub identificativo: String,
    /// Subject of the original.
    pub subject: Option<String>,
    /// `accettato`, `non-accettato` or `in-attesa` (no acceptance stored yet).
    pub acceptance: String,
    /// Why it was not accepted.
    pub refusal: Option<String>,
    /// The sent original in the Sent folder.
    pub original: Option<ReceiptRef>,
    /// Every recipient.
    pub recipients: Vec<RecipientLine>,
    /// Every message of the transaction in the mailbox (receipts and notices).
    pub receipts: Vec<ListedMessage>,
}

fn when(d: &Daticert) -> Option<String> {
    // giorno dd/mm/yyyy, ora hh:mm:ss, zona +hhmm (pec.md §3).
    let (dd, rest) = d.data.giorno.split_once('/')?;
    let (mm, yyyy) = rest.split_once('/')?;
    let z = &d.data.zona;
    let zone = if z.len() == 5 {
        format!("{}:{}", &z[..3], &z[3..])
    } else {
        "Z".into()
    };
    Some(format!("{yyyy}-{mm}-{dd}T{}{zone}", d.data.ora))
}

/// Builds the timeline of `identificativo` for `mailbox`; `None` when the mailbox holds no
/// message of that transaction (another user's transaction is not found either).
pub async fn build<S: Store>(
    g: &Gestore<S>,
    mailbox: &str,
    identificativo: &str,
) -> Result<Option<Timeline>, GestoreError> {
    let messages = g
        .store
        .transaction_messages(mailbox, identificativo)
        .await?;
    let Some(sent) = messages
        .iter()
        .find(|m| m.meta.kind == "ordinaria" && m.meta.folder == "Sent")
        .or_else(|| messages.iter().find(|m| m.meta.kind == "accettazione"))
        .or_else(|| messages.iter().find(|m| m.meta.kind == "non-accettazione"))
    else {
        return Ok(None);
    };
    let mut t = Timeline {
        identificativo: identificativo.to_string(),
        subject: sent.meta.subject.clone(),
        acceptance: "in-attesa".into(),
        refusal: None,
        original: (sent.meta.folder == "Sent").then(|| ReceiptRef {
            folder: sent.meta.folder.clone(),
            uid: sent.meta.uid,
        }),
        recipients: Vec::new(),
        receipts: Vec::new(),
    };
    let add = |t: &mut Timeline, address: &str, tipo: Option<&str>| -> usize {
        if let Some(i) = t
            .recipients
            .iter()
            .position(|r| r.address.eq_ignore_ascii_case(address))
        {
            if let Some(tipo) = tipo {
                t.recipients[i].tipo = tipo.to_string();
            }
            return i;
        }
        t.recipients.push(RecipientLine {
            address: address.to_string(),
            tipo: tipo.unwrap_or("sconosciuto").to_string(),
            status: "in-corso".into(),
            steps: Vec::new(),
        });
        t.recipients.len() - 1
    };
    if let Some(original) = &t.original
        && let Some(raw) = g
            .store
            .message_bytes(mailbox, &original.folder, original.uid)
            .await?
    {
        let h = OriginalHeaders::parse(&raw);
        for a in h.to.iter().chain(&h.cc) {
            add(&mut t, a, None);
        }
    }
    for m in &messages {
        if m.meta.folder == "Sent" && m.meta.kind == "ordinaria" {
            continue;
        }
        let Some(raw) = g
            .store
            .message_bytes(mailbox, &m.meta.folder, m.meta.uid)
            .await?
        else {
            continue;
        };
        let c = classify(&raw);
        let Some(Ok((d, _))) = &c.daticert else {
            continue;
        };
        let at = ReceiptRef {
            folder: m.meta.folder.clone(),
            uid: m.meta.uid,
        };
        let step = |detail: Option<String>| Step {
            kind: m.meta.kind.clone(),
            time: when(d),
            detail,
            receipt: Some(at.clone()),
        };
        match m.meta.kind.as_str() {
            "accettazione" | "non-accettazione" => {
                let accepted = m.meta.kind == "accettazione";
                t.acceptance = if accepted {
                    "accettato"
                } else {
                    "non-accettato"
                }
                .into();
                if !accepted {
                    t.refusal = d.errore_esteso.clone();
                }
                for r in &d.destinatari {
                    let tipo = r.tipo.to_string();
                    let i = add(&mut t, &r.address, Some(&tipo));
                    t.recipients[i].steps.push(step(d.errore_esteso.clone()));
                    if !accepted {
                        t.recipients[i].status = "non-consegnato".into();
                    } else if tipo == "esterno" {
                        t.recipients[i].status = "esterno".into();
                    }
                }
            }
            kind => {
                let Some(who) = d.consegna.clone() else {
                    continue;
                };
                let detail = match kind {
                    "avvenuta-consegna" => d.ricevuta.map(|r| r.to_string()),
                    // The same XML serves both notices; the text says which (pec.md §2.7).
                    "preavviso-errore-consegna" => Some(
                        if String::from_utf8_lossy(&raw).contains("entro 24 ore") {
                            "24h"
                        } else {
                            "12h"
                        }
                        .to_string(),
                    ),
                    _ => d
                        .errore_esteso
                        .clone()
                        .or_else(|| Some(d.errore.to_string())),
                };
                let i = add(&mut t, &who, Some("certificato"));
                t.recipients[i].steps.push(step(detail));
                match kind {
                    "avvenuta-consegna" => t.recipients[i].status = "consegnato".into(),
                    "errore-consegna" => t.recipients[i].status = "non-consegnato".into(),
                    _ => {}
                }
            }
        }
    }
    // The presa in carico goes to the sender's provider, not to the sender: it comes from
    // the gestore's tracked state (pec.md §2.4).
    if let Some(tracked) = g.store.tracked(identificativo).await? {
        for (address, steps) in tracked.recipients {
            if steps.iter().any(|s| s == "presa-in-carico") {
                let i = add(&mut t, &address, Some("certificato"));
                let line = &mut t.recipients[i];
                let at = line
                    .steps
                    .iter()
                    .position(|s| s.kind != "accettazione")
                    .unwrap_or(line.steps.len());
                line.steps.insert(
                    at,
                    Step {
                        kind: "presa-in-carico".into(),
                        time: None,
                        detail: None,
                        receipt: None,
                    },
                );
            }
        }
    }
    t.receipts = messages
        .into_iter()
        .filter(|m| !(m.meta.folder == "Sent" && m.meta.kind == "ordinaria"))
        .collect();
    Ok(Some(t))
}
