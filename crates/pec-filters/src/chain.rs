//! The antivirus scan chain (product.md §4): the engines in the configured order, by
//! default clamd, then ICAP (a commercial engine), then the optional premium stage. The
//! first engine that finds a threat ends the chain with its verdict. An engine that fails
//! fails the whole scan: the caller then answers with a temporary error, so a message is
//! never passed on with a stage skipped.

use crate::clamd::Clamd;
use crate::icap::Icap;
use crate::{FilterError, Verdict};

/// One antivirus engine of the chain.
#[derive(Debug)]
pub enum Engine {
    /// clamd over INSTREAM.
    Clamd(Clamd),
    /// An ICAP RESPMOD service.
    Icap(Icap),
}

impl Engine {
    /// The engine's name in verdicts, errors and metrics.
    pub fn name(&self) -> &str {
        match self {
            Engine::Clamd(c) => &c.name,
            Engine::Icap(i) => &i.name,
        }
    }

    /// Scans one message.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, FilterError> {
        match self {
            Engine::Clamd(c) => c.scan(data).await,
            Engine::Icap(i) => i.scan(data).await,
        }
    }

    /// Whether the engine answers (clamd PING, ICAP OPTIONS).
    pub async fn health(&self) -> Result<(), FilterError> {
        match self {
            Engine::Clamd(c) => c.ping().await,
            Engine::Icap(i) => i.options().await.map(|_| ()),
        }
    }
}

/// The engines, in scanning order.
#[derive(Debug, Default)]
pub struct ScanChain {
    /// Scanning order.
    pub engines: Vec<Engine>,
}

impl ScanChain {
    /// Runs every engine in order until one finds a threat.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, FilterError> {
        for e in &self.engines {
            let v = e.scan(data).await?;
            if v != Verdict::Clean {
                return Ok(v);
            }
        }
        Ok(Verdict::Clean)
    }

    /// Each engine's name and whether it answers.
    pub async fn health(&self) -> Vec<(String, Result<(), FilterError>)> {
        let mut out = Vec::new();
        for e in &self.engines {
            out.push((e.name().to_string(), e.health().await));
        }
        out
    }
}
