//! HTTPS-side services of a PEC gestore. For now: the admin API, bound to loopback and
//! authenticated with a bearer token kept in the data directory, which the `pec admin`
//! commands use (they never open the database themselves), and the mail client
//! autoconfiguration documents and the password-reset page on the HTTPS listener. Webmail
//! and the REST API for integrators come later in this crate.

pub mod admin;
pub mod autoconfig;
pub mod reset;
