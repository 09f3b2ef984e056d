//! The delivery point (pec.md §1.3 "Punto di Consegna", §2.12, §2.13): which delivery receipt
//! each recipient of a transport envelope gets, and the non-delivery notice.

use pec_message::build::DeliveryError;
use pec_message::daticert::ReceiptType;

/// The receipt kind for one recipient (pec.md §2.12 table): `requested` is the envelope's
/// `X-TipoRicevuta` (absent or unknown already mapped to completa), `primary` whether the
/// recipient is in `To:` (or in neither To nor Cc).
pub fn receipt_kind(requested: ReceiptType, primary: bool) -> ReceiptType {
    match (requested, primary) {
        (ReceiptType::Sintetica, _) | (_, false) => ReceiptType::Sintetica,
        (ReceiptType::Breve, true) => ReceiptType::Breve,
        (ReceiptType::Completa, true) => ReceiptType::Completa,
    }
}

/// Why a certified envelope could not be put in a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeliverable {
    /// No such mailbox: `no-dest` (pec.md §2.13).
    NoSuchMailbox,
    /// Mailbox over quota: `altro`.
    MailboxFull,
    /// Mailbox disabled: `altro`.
    Disabled,
}

impl Undeliverable {
    /// The daticert error class and the extended text (pec.md §2.13).
    pub fn describe(self, provider_name: &str) -> (DeliveryError, String) {
        match self {
            Undeliverable::NoSuchMailbox => (
                DeliveryError::NoDest,
                format!("5.1.1 - {provider_name} - indirizzo non valido"),
            ),
            Undeliverable::MailboxFull => (
                DeliveryError::Altro,
                format!("5.2.2 - {provider_name} - casella piena"),
            ),
            Undeliverable::Disabled => (
                DeliveryError::Altro,
                format!("5.2.1 - {provider_name} - casella disabilitata"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReceiptType::*;

    #[test]
    fn table_of_section_2_12() {
        assert_eq!(receipt_kind(Completa, true), Completa);
        assert_eq!(receipt_kind(Completa, false), Sintetica);
        assert_eq!(receipt_kind(Breve, true), Breve);
        assert_eq!(receipt_kind(Breve, false), Sintetica);
        assert_eq!(receipt_kind(Sintetica, true), Sintetica);
        assert_eq!(receipt_kind(Sintetica, false), Sintetica);
        // Unknown X-TipoRicevuta values count as completa.
        assert_eq!(
            receipt_kind(ReceiptType::requested(Some("boh")), true),
            Completa
        );
    }

    #[test]
    fn errors_map_to_daticert_classes() {
        assert_eq!(
            Undeliverable::NoSuchMailbox.describe("X").0,
            DeliveryError::NoDest
        );
        assert!(
            Undeliverable::NoSuchMailbox
                .describe("X")
                .1
                .starts_with("5.1.1 - X")
        );
        assert_eq!(
            Undeliverable::MailboxFull.describe("X").0,
            DeliveryError::Altro
        );
    }
}
