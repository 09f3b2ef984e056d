//! POP3 access to PEC mailboxes: RFC 1939 with CAPA (RFC 2449), UIDL, TOP, USER/PASS and SASL
//! PLAIN (RFC 5034), STLS (RFC 2595) on the plain port and implicit TLS on POP3S. The
//! command parser is sans-I/O ([`command`]); the session is generic over the stream
//! ([`session`]); [`listener`] accepts connections and upgrades them.

pub mod command;
pub mod listener;
pub mod session;
