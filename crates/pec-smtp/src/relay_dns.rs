//! Where the relay sends a domain's mail: a static route, or the MX hosts found in the DNS
//! (RFC 5321 §5.1), with a null MX (RFC 7505) and a domain that does not exist failing for
//! good.

use super::{Relay, temp};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use pec_gestore::TransportError;
use std::net::SocketAddr;

/// A permanent failure: `domain` does not exist in the DNS.
fn no_such_domain(domain: &str) -> TransportError {
    TransportError {
        temporary: false,
        text: format!("5.1.2 {domain}: no such domain (NXDOMAIN)"),
    }
}

impl Relay {
    async fn resolver(&self) -> Result<&TokioResolver, TransportError> {
        let r = self
            .resolver
            .get_or_init(|| async {
                match self.cfg.resolver {
                    Some(addr) => {
                        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                        for c in &mut ns.connections {
                            c.port = addr.port();
                        }
                        TokioResolver::builder_with_config(
                            ResolverConfig::from_name_servers(vec![ns]),
                            TokioRuntimeProvider::default(),
                        )
                        .build()
                        .map_err(|e| e.to_string())
                    }
                    None => TokioResolver::builder_tokio()
                        .and_then(|b| b.build())
                        .map_err(|e| e.to_string()),
                }
            })
            .await;
        r.as_ref()
            .map_err(|e| temp(format!("no DNS resolver: {e}")))
    }

    /// The hosts to try for `domain`, best first: (host name for TLS, address).
    pub(super) async fn targets(
        &self,
        domain: &str,
    ) -> Result<Vec<(String, String)>, TransportError> {
        if let Some(hp) = self
            .cfg
            .routes
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map(|(_, hp)| hp.clone())
        {
            let host = hp
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&hp)
                .to_string();
            return Ok(vec![(host, hp)]);
        }
        let resolver = self.resolver().await?;
        let mut mx: Vec<(u16, String)> = match resolver.mx_lookup(format!("{domain}.")).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(m) => Some((
                        m.preference,
                        m.exchange.to_ascii().trim_end_matches('.').to_string(),
                    )),
                    _ => None,
                })
                .collect(),
            // A domain that does not exist will not come to exist within the queue's day.
            Err(e) if e.is_nx_domain() => return Err(no_such_domain(domain)),
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => return Err(temp(format!("MX lookup for {domain} failed: {e}"))),
        };
        // RFC 7505 §3: one MX record naming the root, "this domain takes no mail".
        if mx.len() == 1 && mx[0].1.is_empty() {
            return Err(TransportError {
                temporary: false,
                text: format!("5.1.10 {domain} accepts no mail (null MX, RFC 7505)"),
            });
        }
        if mx.is_empty() {
            // RFC 5321 §5.1: no MX, the domain itself is the host.
            mx.push((0, domain.to_string()));
        }
        mx.sort();
        let mut out = Vec::new();
        for (_, host) in mx {
            match resolver.lookup_ip(format!("{host}.")).await {
                Ok(ips) => {
                    for ip in ips.iter() {
                        out.push((
                            host.clone(),
                            SocketAddr::new(ip, self.cfg.mx_port).to_string(),
                        ));
                    }
                }
                Err(e) if e.is_nx_domain() && host == domain => {
                    return Err(no_such_domain(domain));
                }
                Err(e) => tracing::debug!("{host}: no address ({e})"),
            }
        }
        if out.is_empty() {
            return Err(temp(format!("no mail server address found for {domain}")));
        }
        Ok(out)
    }
}
