//! IMAP4rev1 access to PEC mailboxes (RFC 3501) with IDLE (RFC 2177), UIDPLUS (RFC 4315),
//! MOVE (RFC 6851), SPECIAL-USE (RFC 6154), LITERAL+ (RFC 7888), ENABLE (RFC 5161),
//! NAMESPACE (RFC 2342), ID (RFC 2971), QUOTA (RFC 9208), UNSELECT (RFC 3691) and CONDSTORE
//! (RFC 7162).
//!
//! Parsing and framing (literals, continuation requests, IDLE, AUTHENTICATE) are the sans-I/O
//! state machine of `imap-next` over `imap-codec`; [`session`] drives it over any stream and
//! keeps the protocol state; [`command`] holds one file per command. Mail lives in
//! `pec-store`: a session never writes a file of its own, and a change made by one session
//! reaches the others through [`pec_store::Store::changes`].
//!
//! Security (issue rules and RFC 3501 §6.2): no authentication before TLS (`LOGINDISABLED`
//! on the plain port until STARTTLS), failed logins counted per client address and per
//! account by the gestore's throttle, and a user sees only their own mailbox.

pub mod command;
mod fetch;
pub mod index_cache;
pub mod listener;
mod reply;
mod search;
mod selected;
mod sequence;
pub mod session;
