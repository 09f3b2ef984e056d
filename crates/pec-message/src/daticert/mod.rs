//! `daticert.xml`, the certification data (pec.md §3, daticert.dtd): the typed model, the
//! writer (DTD element order, escaping, UTF-8) and a tolerant parser that also reports every
//! departure from the DTD.

mod parse;
mod write;

pub use parse::{DaticertError, parse};
pub use write::write;

use std::fmt;
use std::str::FromStr;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in DTD order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s.trim() {
                    $($wire => Ok($name::$variant),)+
                    other => Err(UnknownValue { what: stringify!($name), value: other.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A value that is not one of the enumerated wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} value {value:?}")]
pub struct UnknownValue {
    /// Which enumeration.
    pub what: &'static str,
    /// The value found.
    pub value: String,
}

wire_enum! {
    /// `postacert/@tipo`: the kind of PEC message (pec.md §3.3). Also the `X-Ricevuta` values,
    /// except `posta-certificata`, which travels as `X-Trasporto`.
    Tipo {
        /// Ricevuta di accettazione.
        Accettazione => "accettazione",
        /// Avviso di non accettazione (formal or virus).
        NonAccettazione => "non-accettazione",
        /// Ricevuta di presa in carico.
        PresaInCarico => "presa-in-carico",
        /// Ricevuta di avvenuta consegna.
        AvvenutaConsegna => "avvenuta-consegna",
        /// Busta di trasporto.
        PostaCertificata => "posta-certificata",
        /// Avviso di mancata consegna (including for virus).
        ErroreConsegna => "errore-consegna",
        /// Avviso di mancata consegna per superamento dei tempi massimi.
        PreavvisoErroreConsegna => "preavviso-errore-consegna",
        /// Avviso di rilevazione virus.
        RilevazioneVirus => "rilevazione-virus",
    }
}

wire_enum! {
    /// `postacert/@errore` (daticert.dtd).
    Errore {
        /// No error.
        Nessuno => "nessuno",
        /// Wrong recipient (with errore-consegna).
        NoDest => "no-dest",
        /// Wrong domain (with errore-consegna).
        NoDominio => "no-dominio",
        /// Virus (with errore-consegna or non-accettazione).
        Virus => "virus",
        /// Other error.
        Altro => "altro",
    }
}

wire_enum! {
    /// `destinatari/@tipo`: certified (domain in the Indice) or external recipient.
    RecipientType {
        /// A PEC address (domain in `managedDomains`).
        Certificato => "certificato",
        /// An ordinary address.
        Esterno => "esterno",
    }
}

wire_enum! {
    /// `ricevuta/@tipo`, also `X-TipoRicevuta`: the delivery receipt kind (pec.md §2.12).
    ReceiptType {
        /// Full receipt with the whole original.
        Completa => "completa",
        /// Short receipt: attachments replaced by their SHA-1.
        Breve => "breve",
        /// Synthetic receipt: no original.
        Sintetica => "sintetica",
    }
}

impl ReceiptType {
    /// The kind requested by an `X-TipoRicevuta` value: absent or unknown means `completa`
    /// (pec.md §9, "Which receipt kind").
    pub fn requested(header: Option<&str>) -> ReceiptType {
        header
            .and_then(|v| v.trim().to_ascii_lowercase().parse().ok())
            .unwrap_or(ReceiptType::Completa)
    }
}

/// One `<destinatari>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinatario {
    /// Bare address.
    pub address: String,
    /// Certified or external.
    pub tipo: RecipientType,
}

/// `<data zona="..."><giorno/><ora/></data>`, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// `+hhmm`.
    pub zona: String,
    /// `dd/mm/yyyy`.
    pub giorno: String,
    /// `hh:mm:ss`.
    pub ora: String,
}

impl From<crate::TimeRef> for Data {
    fn from(t: crate::TimeRef) -> Self {
        Data {
            zona: t.zona(),
            giorno: t.giorno(),
            ora: t.ora(),
        }
    }
}

/// The whole `daticert.xml` content (pec.md §3.3, presence matrix §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daticert {
    /// Kind of message.
    pub tipo: Tipo,
    /// Error class.
    pub errore: Errore,
    /// Original sender (bare address).
    pub mittente: String,
    /// Every To and Cc recipient of the original.
    pub destinatari: Vec<Destinatario>,
    /// The original `Reply-To`, or the sender.
    pub risposte: String,
    /// The decoded original subject, if any.
    pub oggetto: Option<String>,
    /// Name of the provider that produced the message.
    pub gestore_emittente: String,
    /// The transaction time.
    pub data: Data,
    /// The PEC msgid of the transport envelope, without angle brackets.
    pub identificativo: String,
    /// The client's original Message-ID, with angle brackets.
    pub msgid: Option<String>,
    /// Requested (envelope) or issued (delivery receipt) receipt kind.
    pub ricevuta: Option<ReceiptType>,
    /// The recipient the notice is about.
    pub consegna: Option<String>,
    /// Recipients covered by a presa in carico.
    pub ricezione: Vec<String>,
    /// Error description.
    pub errore_esteso: Option<String>,
}
