//! `[DEFAULT] transport_url` in oslo.messaging's form:
//! `rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost`. Several hosts
//! are tried in turn; a host without credentials takes the first host's.

use crate::BusError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportUrl {
    pub hosts: Vec<BrokerAddress>,
    pub virtual_host: String,
}

impl TransportUrl {
    pub fn parse(url: &str) -> Result<Self, BusError> {
        let bad = |why: &str| BusError::Transport(format!("transport_url: {why}"));
        let (scheme, rest) = url.trim().split_once("://").ok_or_else(|| bad("expected rabbit://…"))?;
        if !matches!(scheme, "rabbit" | "amqp") {
            return Err(bad(&format!("unknown scheme {scheme}://")));
        }
        // Query options (`?ssl=1`…) are not ours to read yet; they are ignored.
        let rest = rest.split('?').next().unwrap_or_default();
        let (authority, vhost) = match rest.split_once('/') {
            Some((a, v)) => (a, v),
            None => (rest, ""),
        };
        let virtual_host = match percent_decode(vhost)? {
            v if v.is_empty() => "/".to_string(),
            v => v,
        };
        let mut hosts: Vec<BrokerAddress> = Vec::new();
        for part in authority.split(',').filter(|p| !p.is_empty()) {
            let (creds, hostport) = match part.rsplit_once('@') {
                Some((c, h)) => (Some(c), h),
                None => (None, part),
            };
            let (username, password) = match creds {
                Some(c) => {
                    let (u, p) = c.split_once(':').unwrap_or((c, ""));
                    (percent_decode(u)?, percent_decode(p)?)
                }
                None => match hosts.first() {
                    Some(h) => (h.username.clone(), h.password.clone()),
                    None => ("guest".into(), "guest".into()),
                },
            };
            let (host, port) = split_host_port(hostport).ok_or_else(|| bad(&format!("bad host {hostport:?}")))?;
            hosts.push(BrokerAddress { host, port, username, password });
        }
        if hosts.is_empty() {
            return Err(bad("no broker host"));
        }
        Ok(TransportUrl { hosts, virtual_host })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; 5672 when no port is given.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 5672,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_string(), 5672)),
        None => None,
    }
}

fn percent_decode(s: &str) -> Result<String, BusError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = hex.ok_or_else(|| BusError::Transport(format!("transport_url: bad escape in {s:?}")))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BusError::Transport(format!("transport_url: {s:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oslo_messaging_urls() {
        let u = TransportUrl::parse("rabbit://nova:s%40cret@10.0.0.1:5673,10.0.0.2/nova%2Fprod").unwrap();
        assert_eq!(u.virtual_host, "nova/prod");
        assert_eq!(u.hosts.len(), 2);
        assert_eq!(
            u.hosts[0],
            BrokerAddress { host: "10.0.0.1".into(), port: 5673, username: "nova".into(), password: "s@cret".into() }
        );
        assert_eq!(
            (u.hosts[1].host.as_str(), u.hosts[1].port, u.hosts[1].username.as_str()),
            ("10.0.0.2", 5672, "nova")
        );
        let u = TransportUrl::parse("rabbit://guest:guest@localhost:5672/").unwrap();
        assert_eq!(u.virtual_host, "/");
        let u = TransportUrl::parse("rabbit://u:p@[::1]:5672").unwrap();
        assert_eq!(u.hosts[0].host, "::1");
        assert!(TransportUrl::parse("kafka://x").is_err());
        assert!(TransportUrl::parse("rabbit:///vhost").is_err());
        assert!(TransportUrl::parse("rabbit://u:p@h:notaport/").is_err());
    }
}
