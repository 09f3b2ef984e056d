//! HTTPS-side services of a PEC gestore: the webmail ([`webmail`]) and the REST API for
//! integrators with its webhooks ([`api`], [`poster`]) on the gestore's HTTPS listener,
//! together with the mail client autoconfiguration documents and the password-reset page;
//! and the admin API, bound to loopback and authenticated with a bearer token kept in the
//! data directory, which the `pec admin` commands use (they never open the database
//! themselves).

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]

pub mod admin;
pub mod api;
pub mod autoconfig;
pub mod poster;
pub mod reset;
pub mod timeline;
pub mod view;
pub mod webmail;
