//! The security filters of a PEC provider (product.md §4): antivirus engines reached over
//! clamd's INSTREAM protocol ([`clamd`]) or ICAP RESPMOD ([`icap`], the interface commercial
//! engines such as Kaspersky and Sophos expose), the rspamd antispam client ([`rspamd`]),
//! and the scan chain that runs the antivirus engines in the configured order ([`chain`]).
//!
//! A filter never decides what happens to a message: it returns a verdict naming the engine
//! and the threat, and the PEC engine turns it into a non-acceptance, a virus detection or a
//! discard (pec.md §2.5, §2.10, §2.11, §8.4). An engine that cannot be reached is an error,
//! never a clean verdict: the caller answers with a temporary SMTP error and nothing passes
//! unscanned.

pub mod chain;
pub mod clamd;
pub mod icap;
mod net;
pub mod rspamd;

pub use chain::{Engine, ScanChain};

/// What an antivirus engine found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A threat was found.
    Infected {
        /// The engine that found it, as configured (`clamd`, `icap`, ...).
        engine: String,
        /// The threat's name as the engine reports it.
        threat: String,
    },
}

/// Why a filter gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The engine could not be reached, or did not answer in time.
    #[error("{engine} is unavailable: {reason}")]
    Unavailable {
        /// The engine.
        engine: String,
        /// What went wrong, for the log.
        reason: String,
    },
    /// The engine answered, but not in its protocol, or with an error of its own.
    #[error("{engine} answered with an error: {reason}")]
    Engine {
        /// The engine.
        engine: String,
        /// Its answer, for the log.
        reason: String,
    },
    /// A configured address or URL cannot be used.
    #[error("bad filter address {address:?}: {reason}")]
    Address {
        /// The value as configured.
        address: String,
        /// Why it is refused.
        reason: String,
    },
}

impl FilterError {
    pub(crate) fn unavailable(engine: &str, reason: impl std::fmt::Display) -> FilterError {
        FilterError::Unavailable {
            engine: engine.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn engine(engine: &str, reason: impl std::fmt::Display) -> FilterError {
        FilterError::Engine {
            engine: engine.to_string(),
            reason: reason.to_string(),
        }
    }
}
