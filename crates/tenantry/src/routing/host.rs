//! `Host`: an HTTP host as it arrives in a `Host` header or from an operator, validated and
//! normalised, so that two spellings of one name compare equal.
//!
//! Normal form: trimmed, lowercase, without the `:port`, without one trailing dot, Unicode
//! labels converted to punycode A-labels (UTS 46, e.g. `Bücher.Example` becomes
//! `xn--bcher-kva.example`); at most 253 octets, labels of 1 to 63 letters, digits and
//! hyphens, none starting or ending with a hyphen.
//!
//! IP literals: an IPv4 dotted quad (`10.0.0.7`, `10.0.0.7:8080`) and a bracketed IPv6 address
//! (`[::1]`, `[::1]:8080`) are accepted, written in their canonical form, so that a request
//! addressed to a bare IP (a health check, an internal caller) is not refused at the door:
//! another identifier (a header, a token) may still name its tenant. They are never a tenant's
//! domain: [`Host::parse_domain`] refuses them and [`Host::subdomain_of`] never matches them.
//! A host whose last label is all digits must be a valid dotted quad (browsers read `1.2.3`
//! or `example.123` as IPv4 too), and an unbracketed IPv6 address is refused.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Serialize};

/// The longest host name, in octets, after conversion to A-labels.
pub const MAX_HOST_LEN: usize = 253;
/// The longest label, in octets, after conversion to A-labels.
pub const MAX_LABEL_LEN: usize = 63;
/// How much of a refused input an error keeps.
const SHOWN_INPUT_LEN: usize = 80;

/// A validated, normalised HTTP host; see the module documentation for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Host {
    name: String,
    ip: bool,
}

/// Why a host was refused. Each variant names the input (cut to 80 characters and escaped when
/// printed) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("host is empty")]
    Empty,
    #[error("host {input:?} contains whitespace")]
    Whitespace { input: String },
    #[error("host {input:?} contains user information ('@'); give the host alone")]
    Userinfo { input: String },
    #[error("host {input:?} contains a path, query or fragment; give the host alone")]
    Path { input: String },
    #[error("host {input:?} has a bad port: {reason}")]
    BadPort { input: String, reason: &'static str },
    #[error("host {input:?} is not a valid internationalised domain name (UTS 46)")]
    Idna { input: String },
    #[error("host {input:?} has an empty label")]
    EmptyLabel { input: String },
    #[error("host {input:?} has a label longer than 63 octets: {label:?}")]
    LabelTooLong { input: String, label: String },
    #[error("host {input:?} is {octets} octets long; the limit is 253")]
    TooLong { input: String, octets: usize },
    #[error("host {input:?} contains {character:?}; only letters, digits, '-' and '.' are allowed")]
    InvalidCharacter { input: String, character: char },
    #[error("host {input:?} has a label starting or ending with '-': {label:?}")]
    Hyphen { input: String, label: String },
    #[error("host {input:?} is not a valid IP address: {reason}")]
    BadIpLiteral { input: String, reason: &'static str },
    #[error("host {input:?} is an IP address, which cannot be a tenant's domain")]
    IpLiteral { input: String },
}

impl Host {
    /// Validates and normalises a host; see the module documentation.
    pub fn parse(input: &str) -> Result<Host, HostError> {
        let shown = || shown(input);
        let text = input.trim();
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(HostError::Whitespace { input: shown() });
        }
        if text.contains('@') {
            return Err(HostError::Userinfo { input: shown() });
        }
        if text.contains(['/', '\\', '?', '#']) {
            return Err(HostError::Path { input: shown() });
        }
        if let Some(rest) = text.strip_prefix('[') {
            return parse_ipv6(rest, input);
        }
        let name = match text.split_once(':') {
            None => text,
            Some((_, port)) if port.contains(':') => {
                return Err(HostError::BadIpLiteral {
                    input: shown(),
                    reason: "an IPv6 address must be written in brackets, as in [::1]",
                });
            }
            Some((name, port)) => {
                check_port(port, input)?;
                name
            }
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(HostError::Empty);
        }
        let ascii = to_ascii(name, input)?;
        check_labels(&ascii, input)?;
        if ascii
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            let ip = Ipv4Addr::from_str(&ascii).map_err(|_| HostError::BadIpLiteral {
                input: shown(),
                reason: "a name ending in a numeric label must be an IPv4 dotted quad",
            })?;
            return Ok(Host {
                name: ip.to_string(),
                ip: true,
            });
        }
        Ok(Host {
            name: ascii,
            ip: false,
        })
    }

    /// Like [`Host::parse`], and refuses IP literals: for a name that identifies a tenant.
    pub fn parse_domain(input: &str) -> Result<Host, HostError> {
        let host = Host::parse(input)?;
        if host.ip {
            return Err(HostError::IpLiteral {
                input: shown(input),
            });
        }
        Ok(host)
    }

    /// The normal form: A-labels joined by dots, or an IP literal (`[…]` for IPv6).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether this host is an IP literal rather than a name.
    pub fn is_ip(&self) -> bool {
        self.ip
    }

    /// The single label directly under `base`: `acme` for `acme.app.example` under
    /// `app.example`; `None` for `base` itself, for deeper names and for IP literals.
    pub fn subdomain_of(&self, base: &Host) -> Option<&str> {
        if self.ip || base.ip {
            return None;
        }
        let label = self
            .name
            .strip_suffix(base.name.as_str())?
            .strip_suffix('.')?;
        (!label.is_empty() && !label.contains('.')).then_some(label)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Host {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Host, HostError> {
        Host::parse(s)
    }
}

impl TryFrom<String> for Host {
    type Error = HostError;

    fn try_from(value: String) -> Result<Host, HostError> {
        Host::parse(&value)
    }
}

impl From<Host> for String {
    fn from(host: Host) -> String {
        host.name
    }
}

fn shown(input: &str) -> String {
    match input.char_indices().nth(SHOWN_INPUT_LEN) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

fn check_port(port: &str, input: &str) -> Result<(), HostError> {
    let bad = |reason| {
        Err(HostError::BadPort {
            input: shown(input),
            reason,
        })
    };
    if port.is_empty() {
        return bad("it is empty");
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return bad("it must be decimal digits");
    }
    match port.parse::<u32>() {
        Ok(n) if n <= u32::from(u16::MAX) && port.len() <= 5 => Ok(()),
        _ => bad("it must be a number from 0 to 65535, at most 5 digits"),
    }
}

/// `rest` is what follows `[`: an IPv6 address, `]`, and an optional `:port`.
fn parse_ipv6(rest: &str, input: &str) -> Result<Host, HostError> {
    let bad = |reason| HostError::BadIpLiteral {
        input: shown(input),
        reason,
    };
    let (address, after) = rest.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
    if !after.is_empty() {
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("only ':port' may follow ']'"))?;
        check_port(port, input)?;
    }
    let ip = Ipv6Addr::from_str(address).map_err(|_| bad("not an IPv6 address"))?;
    Ok(Host {
        name: format!("[{ip}]"),
        ip: true,
    })
}

/// UTS 46 ToASCII without the deny list, hyphen and length checks: those are made afterwards
/// by [`check_labels`], which says precisely what is wrong.
fn to_ascii(name: &str, input: &str) -> Result<String, HostError> {
    Uts46::new()
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::EMPTY,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map(|ascii| ascii.to_ascii_lowercase())
        .map_err(|_| HostError::Idna {
            input: shown(input),
        })
}

fn check_labels(ascii: &str, input: &str) -> Result<(), HostError> {
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel {
                input: shown(input),
            });
        }
        if let Some(character) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(HostError::InvalidCharacter {
                input: shown(input),
                character,
            });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(HostError::LabelTooLong {
                input: shown(input),
                label: shown(label),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::Hyphen {
                input: shown(input),
                label: label.to_owned(),
            });
        }
    }
    if ascii.len() > MAX_HOST_LEN {
        return Err(HostError::TooLong {
            input: shown(input),
            octets: ascii.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(normal form)`, or `Err(a fragment of the error message)`.
    fn check(input: &str, expected: Result<&str, &str>) {
        match (Host::parse(input), expected) {
            (Ok(host), Ok(want)) => assert_eq!(host.as_str(), want, "input {input:?}"),
            (Err(e), Err(fragment)) => {
                let message = e.to_string();
                assert!(
                    message.contains(fragment),
                    "input {input:?}: {message:?} does not mention {fragment:?}"
                );
            }
            (got, want) => panic!("input {input:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn names_are_normalised() {
        check("example.com", Ok("example.com"));
        check("  Example.COM \t", Ok("example.com"));
        check("ACME.app.example:8080", Ok("acme.app.example"));
        check("acme.app.example:0", Ok("acme.app.example"));
        check("acme.app.example:65535", Ok("acme.app.example"));
        check("example.com.", Ok("example.com"));
        check("example.com.:443", Ok("example.com"));
        check("localhost", Ok("localhost"));
        check("Bücher.Example", Ok("xn--bcher-kva.example"));
        check("xn--bcher-kva.example", Ok("xn--bcher-kva.example"));
        check("BÜCHER.example:80", Ok("xn--bcher-kva.example"));
        check("例え.テスト", Ok("xn--r8jz45g.xn--zckzah"));
        check("a-b.c--d.example", Ok("a-b.c--d.example"));
        check("3com.example", Ok("3com.example"));
        check(
            &format!("{}.example", "a".repeat(63)),
            Ok(&format!("{}.example", "a".repeat(63))),
        );
    }

    #[test]
    fn bad_names_are_refused() {
        check("", Err("empty"));
        check("   ", Err("empty"));
        check(".", Err("empty"));
        check(":80", Err("empty"));
        check("a..b", Err("empty label"));
        check(".example.com", Err("empty label"));
        check("example.com..", Err("empty label"));
        check("a b.example", Err("whitespace"));
        check("a\u{a0}b.example", Err("whitespace"));
        check("user@example.com", Err("user information"));
        check("user:pw@example.com", Err("user information"));
        check("example.com/path", Err("path"));
        check("example.com?q=1", Err("path"));
        check("http://example.com", Err("path"));
        check("exa_mple.com", Err("'_'"));
        check("exa*mple.com", Err("'*'"));
        check("exa%41mple.com", Err("'%'"));
        check("-acme.example", Err("starting or ending with '-'"));
        check("acme-.example", Err("starting or ending with '-'"));
        check("xn--zz.example", Err("internationalised"));
        check(
            &format!("{}.example", "a".repeat(64)),
            Err("longer than 63"),
        );
        let long = vec!["a".repeat(63); 4].join(".");
        check(&long, Err("255 octets"));
        let fits = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "a".repeat(61));
        check(&fits, Ok(&fits));
        // The limit applies after conversion to A-labels.
        // ("ü" + 55 × "a" is 57 octets, and 63 as "xn--…-oxf"; with 58 × "a", 66.)
        let wide = format!("{}.ü{}", vec!["a".repeat(63); 3].join("."), "a".repeat(55));
        assert!(wide.len() <= MAX_HOST_LEN);
        check(&wide, Err("255 octets"));
        check(
            &format!("ü{}.example", "a".repeat(58)),
            Err("longer than 63"),
        );
    }

    #[test]
    fn bad_ports_are_refused() {
        check("example.com:", Err("port: it is empty"));
        check("example.com:http", Err("decimal digits"));
        check("example.com:-1", Err("decimal digits"));
        check("example.com:+80", Err("decimal digits"));
        check("example.com:65536", Err("0 to 65535"));
        check("example.com:99999999999999999999", Err("0 to 65535"));
        check("example.com:000080", Err("0 to 65535"));
        check("example.com:80:80", Err("brackets"));
    }

    #[test]
    fn ip_literals_are_canonical_hosts_but_never_domains() {
        check("10.0.0.7", Ok("10.0.0.7"));
        check("10.0.0.7:8080", Ok("10.0.0.7"));
        check("1.2.3", Err("IPv4 dotted quad"));
        check("256.1.1.1", Err("IPv4 dotted quad"));
        check("example.123", Err("IPv4 dotted quad"));
        check("[::1]", Ok("[::1]"));
        check("[0:0:0:0:0:0:0:1]:8080", Ok("[::1]"));
        check("[2001:DB8::1]", Ok("[2001:db8::1]"));
        check("[::1]x", Err("only ':port'"));
        check("[::1]:99999", Err("0 to 65535"));
        check("[::1", Err("no closing"));
        check("[example.com]", Err("not an IPv6 address"));
        check("::1", Err("brackets"));
        assert!(Host::parse("10.0.0.7").is_ok_and(|h| h.is_ip()));
        assert!(matches!(
            Host::parse_domain("10.0.0.7"),
            Err(HostError::IpLiteral { .. })
        ));
        assert!(matches!(
            Host::parse_domain("[::1]"),
            Err(HostError::IpLiteral { .. })
        ));
        assert!(Host::parse_domain("acme.example").is_ok());
    }

    #[test]
    fn errors_cut_long_inputs() {
        let input = format!("{}_", "a".repeat(5000));
        let message = Host::parse(&input).map_err(|e| e.to_string());
        assert!(message.is_err_and(|m| m.len() < 300));
    }

    fn host(s: &str) -> Host {
        Host::parse(s).expect("valid host in test")
    }

    #[test]
    fn subdomains_are_one_label_under_the_base() {
        let base = host("app.example");
        assert_eq!(host("acme.app.example").subdomain_of(&base), Some("acme"));
        assert_eq!(
            host("ACME.App.Example.:443").subdomain_of(&base),
            Some("acme")
        );
        assert_eq!(host("a.b.app.example").subdomain_of(&base), None);
        assert_eq!(host("app.example").subdomain_of(&base), None);
        assert_eq!(host("acmeapp.example").subdomain_of(&base), None);
        assert_eq!(host("acme.other.example").subdomain_of(&base), None);
        assert_eq!(host("10.0.0.7").subdomain_of(&base), None);
        assert_eq!(base.subdomain_of(&host("10.0.0.7")), None);
    }

    #[test]
    fn serialises_as_its_normal_form() {
        let json = serde_json::to_string(&host("Bücher.Example:80"));
        assert_eq!(json.ok().as_deref(), Some("\"xn--bcher-kva.example\""));
        let back: Result<Host, _> = serde_json::from_str("\"ACME.example.\"");
        assert_eq!(back.ok(), Some(host("acme.example")));
        assert!(serde_json::from_str::<Host>("\"a..b\"").is_err());
    }
}
