//! SMTP for a PEC gestore: the server sessions (MX on 25 with STARTTLS, submission on 587 with
//! STARTTLS and on 465 with implicit TLS, AUTH only after TLS) and the relay client that
//! delivers the outbound queue by static route or MX lookup, with TLS required toward PEC
//! domains and opportunistic elsewhere (pec.md §8.1, §8.2).

pub mod relay;
pub mod server;
pub mod tls;
