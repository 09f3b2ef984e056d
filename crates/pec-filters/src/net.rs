//! Where a filter listens (TCP `host:port` or a Unix socket path) and connecting to it
//! within a time limit.

use crate::FilterError;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to an engine.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A TCP address or a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl Endpoint {
    /// `unix:/path`, `/path` or `host:port`.
    pub fn parse(s: &str) -> Result<Endpoint, FilterError> {
        let bad = |reason: &str| FilterError::Address {
            address: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(p.into()));
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(s.into()));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port, unix:/path or /path"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("expected host:port with a port number"));
        }
        Ok(Endpoint::Tcp(s.to_string()))
    }

    /// Connects within `limit`.
    pub(crate) async fn connect(
        &self,
        engine: &str,
        limit: Duration,
    ) -> Result<Box<dyn Io>, FilterError> {
        let connect = async {
            Ok::<Box<dyn Io>, std::io::Error>(match self {
                Endpoint::Tcp(a) => {
                    let s = tokio::net::TcpStream::connect(a.as_str()).await?;
                    s.set_nodelay(true)?;
                    Box::new(s)
                }
                Endpoint::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
            })
        };
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(FilterError::unavailable(engine, format!("{self}: {e}"))),
            Err(_) => Err(FilterError::unavailable(
                engine,
                format!("{self}: no connection within {} s", limit.as_secs()),
            )),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Runs `f` within `limit`, as an unavailable engine when it takes longer.
pub(crate) async fn within<T>(
    engine: &str,
    limit: Duration,
    f: impl Future<Output = Result<T, FilterError>>,
) -> Result<T, FilterError> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(FilterError::unavailable(
            engine,
            format!("no answer within {} s", limit.as_secs()),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:3310").unwrap(),
            Endpoint::Tcp("127.0.0.1:3310".into())
        );
        assert_eq!(
            Endpoint::parse("unix:/run/clamd.sock").unwrap(),
            Endpoint::Unix("/run/clamd.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/run/clamd.sock").unwrap(),
            Endpoint::Unix("/run/clamd.sock".into())
        );
        assert!(Endpoint::parse("localhost").is_err());
        assert!(Endpoint::parse("localhost:port").is_err());
    }
}
