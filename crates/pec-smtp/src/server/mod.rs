//! The SMTP server side: command parsing, the session state machine, limits and listeners.

pub mod command;
mod input;
pub mod limits;
pub mod listener;
pub mod session;
