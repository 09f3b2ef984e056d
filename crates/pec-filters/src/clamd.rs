//! A clamd client: INSTREAM scans, PING and RELOAD (clamd(8), "z"-prefixed commands ending
//! in NUL), over TCP or a Unix socket, one connection per command.

use crate::net::{Endpoint, within};
use crate::{FilterError, Verdict};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes sent per INSTREAM chunk.
const CHUNK: usize = 64 * 1024;
/// Longest reply read.
const MAX_REPLY: usize = 4096;

/// One clamd.
#[derive(Debug, Clone)]
pub struct Clamd {
    /// The address as configured.
    pub address: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// Longest wait for one command, connection included.
    pub timeout: Duration,
    /// The engine's name in verdicts and errors.
    pub name: String,
}

impl Clamd {
    /// A client for `endpoint` (`host:port`, `unix:/path` or `/path`).
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Clamd, FilterError> {
        Ok(Clamd {
            address: endpoint.to_string(),
            endpoint: Endpoint::parse(endpoint)?,
            timeout,
            name: "clamd".into(),
        })
    }

    /// Sends `command` (and for INSTREAM, `data` in chunks); returns the reply up to NUL.
    async fn exchange(&self, command: &[u8], data: Option<&[u8]>) -> Result<String, FilterError> {
        within(&self.name, self.timeout, async {
            let mut s = self.endpoint.connect(&self.name, self.timeout).await?;
            let io = |e: std::io::Error| FilterError::unavailable(&self.name, e);
            s.write_all(command).await.map_err(io)?;
            if let Some(data) = data {
                for chunk in data.chunks(CHUNK) {
                    let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
                    s.write_all(&len.to_be_bytes()).await.map_err(io)?;
                    s.write_all(chunk).await.map_err(io)?;
                }
                s.write_all(&0u32.to_be_bytes()).await.map_err(io)?;
            }
            s.flush().await.map_err(io)?;
            let mut reply = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                let n = s.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&buf[..n]);
                if reply.contains(&0) || reply.len() > MAX_REPLY {
                    break;
                }
            }
            let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
            Ok(String::from_utf8_lossy(&reply[..end]).trim().to_string())
        })
        .await
    }

    /// Scans `data` (INSTREAM).
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, FilterError> {
        let reply = self.exchange(b"zINSTREAM\0", Some(data)).await?;
        parse_scan_reply(&self.name, &reply)
    }

    /// PING: whether clamd answers.
    pub async fn ping(&self) -> Result<(), FilterError> {
        match self.exchange(b"zPING\0", None).await?.as_str() {
            "PONG" => Ok(()),
            other => Err(FilterError::engine(
                &self.name,
                format!("PING answered {other:?}"),
            )),
        }
    }

    /// RELOAD: clamd reads its signature databases again (after freshclam or a new
    /// database file); it goes on scanning with the old ones meanwhile.
    pub async fn reload(&self) -> Result<(), FilterError> {
        match self.exchange(b"zRELOAD\0", None).await?.as_str() {
            "RELOADING" => Ok(()),
            other => Err(FilterError::engine(
                &self.name,
                format!("RELOAD answered {other:?}"),
            )),
        }
    }
}

/// `stream: OK`, `stream: <name> FOUND`, or an error such as
/// `INSTREAM size limit exceeded. ERROR`.
fn parse_scan_reply(engine: &str, reply: &str) -> Result<Verdict, FilterError> {
    let body = reply
        .strip_prefix("stream:")
        .map(str::trim)
        .unwrap_or(reply);
    if body == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(threat) = body.strip_suffix(" FOUND") {
        return Ok(Verdict::Infected {
            engine: engine.to_string(),
            threat: threat.trim().to_string(),
        });
    }
    Err(FilterError::engine(engine, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read() {
        assert_eq!(
            parse_scan_reply("clamd", "stream: OK").unwrap(),
            Verdict::Clean
        );
        assert_eq!(
            parse_scan_reply("clamd", "stream: Eicar-Test-Signature FOUND").unwrap(),
            Verdict::Infected {
                engine: "clamd".into(),
                threat: "Eicar-Test-Signature".into()
            }
        );
        let e = parse_scan_reply("clamd", "INSTREAM size limit exceeded. ERROR").unwrap_err();
        assert!(e.to_string().contains("size limit"), "{e}");
    }
}
