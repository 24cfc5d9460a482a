//! Placeholder host normalisation (replaced by the full implementation).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host(String);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostError(String);

impl Host {
    pub fn parse(value: &str) -> Result<Host, HostError> {
        let v = value.trim().to_ascii_lowercase();
        let v = v
            .split(':')
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_owned();
        if v.is_empty() {
            return Err(HostError("empty".into()));
        }
        Ok(Host(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_ip(&self) -> bool {
        self.0.parse::<std::net::Ipv4Addr>().is_ok()
    }
    pub fn subdomain_of(&self, base: &Host) -> Option<&str> {
        let rest = self.0.strip_suffix(base.as_str())?.strip_suffix('.')?;
        (!rest.is_empty() && !rest.contains('.')).then_some(rest)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
