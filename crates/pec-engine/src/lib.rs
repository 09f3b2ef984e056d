//! The PEC rules as pure logic (pec.md §1.3, §5): the access point, the receiving point, the
//! delivery point, the sender side and the 12h / 24h deadlines.
//!
//! Nothing here does I/O, reads the clock or draws random numbers. Each entry point takes its
//! input plus a [`Context`] (the time reference, the identifier source, the signer, the
//! directory) and returns a list of [`Effect`]s that the runtime commits in one transaction.
//! Every rule is a unit test in the module that implements it.

pub mod access;
pub mod bounce;
pub mod deadline;
pub mod delivery;
mod effect;
pub mod receiving;

pub use effect::{
    Effect, Event, EventKind, Folder, Progress, StoredKind, TimeoutKind, TrackedTransaction,
};

use pec_message::TimeRef;
use pec_message::build::{Artefact, Provider, Transaction, build};
use pec_message::daticert::{Destinatario, RecipientType};
use pec_message::original::OriginalHeaders;
use pec_message::report::ProviderDirectory;
use pec_message::smime::{SignError, Signer};

/// The lookups the rules need, answered from the local copy of the Indice (pec.md §7.3) and
/// this gestore's own configuration.
pub trait Directory: ProviderDirectory {
    /// Whether `domain` is listed in some provider's `managedDomains` (case-insensitive, exact).
    fn is_certified_domain(&self, domain: &str) -> bool;
    /// Whether `domain` is one of the domains this gestore serves.
    fn is_local_domain(&self, domain: &str) -> bool;
}

/// A source of fresh message identifiers (pec.md §5.10).
pub trait Ids {
    /// A new identifier, without angle brackets, made at `at`.
    fn next_id(&mut self, at: TimeRef) -> String;
}

impl Ids for pec_message::ident::IdGenerator {
    fn next_id(&mut self, at: TimeRef) -> String {
        pec_message::ident::IdGenerator::next_id(self, at)
    }
}

/// A threat an antivirus engine found in a message. The runtime scans; the rules decide
/// what follows (pec.md §2.5, §2.10, §2.11, §8.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threat {
    /// The engine that found it.
    pub engine: String,
    /// The threat's name, as the engine reports it.
    pub name: String,
}

/// What the antispam engine concluded about a message it classed as spam (product.md §4).
/// Spam is still handed to the rules: only ordinary mail is moved or dropped for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spam {
    /// The engine that classed it.
    pub engine: String,
    /// The engine's score and action, for the log.
    pub detail: String,
}

/// Everything a rule may consult besides its input.
pub struct Context<'a> {
    /// The single time reference of this step (pec.md §8.5).
    pub now: TimeRef,
    /// This gestore.
    pub provider: &'a Provider,
    /// Signs every generated message (pec.md §4.1).
    pub signer: &'a dyn Signer,
    /// Fresh identifiers.
    pub ids: &'a mut dyn Ids,
    /// The Indice and the local domains.
    pub directory: &'a dyn Directory,
    /// Trust anchors for signature checks at the receiving point (pec.md §4.4).
    pub anchors: &'a [openssl::x509::X509],
    /// CRLs for the revocation check of the receiving point (pec.md §4.4 step 3); `None`
    /// skips it.
    pub crls: Option<&'a pec_message::smime::Crls>,
}

/// Why a rule could not produce its effects. Every variant is an internal error: the input
/// was acceptable but a generated message could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The provider key could not sign.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
}

impl Context<'_> {
    /// Builds and signs `artefact` for `tx` at the context time; returns (Message-ID, bytes).
    pub(crate) fn make(
        &mut self,
        artefact: &Artefact,
        tx: &Transaction,
    ) -> Result<(String, Vec<u8>), EngineError> {
        let id = self.ids.next_id(self.now);
        let unsigned = build(artefact, tx, self.provider, self.now, &id);
        let bytes = unsigned.sign(self.signer)?;
        // The Message-ID the message carries: the envelope's is its identificativo, and an
        // anomaly keeps the received message's own when it has one (pec.md §2.6, §2.9).
        let id = match artefact {
            Artefact::PostaCertificata { .. } => tx.identificativo.clone(),
            Artefact::Anomalia { received, .. } => pec_message::mime::Entity::parse(received)
                .header_value("Message-ID")
                .map(|v| {
                    v.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
                .filter(|v| !v.is_empty())
                .unwrap_or(id),
            _ => id,
        };
        Ok((id, bytes))
    }

    /// Classifies one address as certified or external by its domain (pec.md §5.2).
    pub fn classify_recipient(&self, address: &str) -> RecipientType {
        if self.directory.is_certified_domain(domain_of(address)) {
            RecipientType::Certificato
        } else {
            RecipientType::Esterno
        }
    }
}

/// The domain part of an address (after the last `@`), or the empty string.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// The transaction facts of a message as its headers state them (pec.md §3.3), with the
/// recipients classified through the directory.
pub fn transaction_of(
    headers: &OriginalHeaders,
    sender: &str,
    identificativo: &str,
    ctx: &Context<'_>,
) -> Transaction {
    Transaction {
        sender: sender.to_string(),
        recipients: headers
            .recipients()
            .into_iter()
            .map(|a| Destinatario {
                tipo: ctx.classify_recipient(&a),
                address: a,
            })
            .collect(),
        reply_to: headers.reply_to.clone(),
        subject: headers.subject.clone(),
        identificativo: identificativo.to_string(),
        client_msgid: headers.message_id.clone(),
    }
}

#[cfg(test)]
pub(crate) mod testing;
