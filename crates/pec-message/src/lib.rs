//! PEC message formats (pec.md §2-§5): a typed model and a builder for every certified-email
//! artefact, `daticert.xml`, S/MIME signing and verification, the breve transformation, the
//! classifier and identifiers.
//!
//! This crate is pure: no async runtime, no storage, no clock, no randomness in decisions.
//! Time, identifiers and directory lookups come in as arguments.

pub mod daticert;
pub mod ident;
pub mod mime;
pub mod time;

pub use time::TimeRef;
pub mod breve;
pub mod build;
pub mod classify;
pub mod compose;
pub mod original;
pub mod pki;
pub mod report;
pub mod smime;
