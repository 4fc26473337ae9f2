//! Names: the names on a certificate (DNS names, wildcards, IP addresses), contact emails, server
//! names.

use std::net::IpAddr;
use std::str::FromStr;

use super::{invalid, patterns, Invalid, Upstream};

/// Let's Encrypt's limit of names on one certificate.
pub const MAX_NAMES_PER_CERTIFICATE: usize = 100;

validated_string! {
    /// A name on a certificate: a DNS name a public ACME CA will issue for, in lowercase ASCII
    /// (Unicode names are converted to punycode), a wildcard `*.NAME` (DNS-01 only, which
    /// [`Config::check`](crate::config::Config::check) enforces), or an IP address (RFC 8738,
    /// HTTP-01 only; Let's Encrypt issues those only with its `shortlived` profile), in its
    /// canonical form.
    #[derive(PartialOrd, Ord, Hash)]
    pub struct DomainName for "domain";
    schema: "A DNS name (lowercase ASCII, punycode for non-ASCII names) or an IP address (Let's Encrypt: with profile shortlived only).";
    pattern: patterns::DOMAIN;
}

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.is_empty() {
            return invalid(input, "a domain name cannot be empty");
        }
        // A wildcard is `*.` and a name of at least two labels: the whole leftmost label only.
        // Config::check allows it on dns-01 certificates only (Let's Encrypt's rule).
        if let Some(rest) = input.strip_prefix("*.") {
            if rest.contains('*') {
                return invalid(
                    input,
                    "a wildcard is only the whole leftmost label, like *.example.com",
                );
            }
            let base = DomainName::parse(rest).map_err(|e| Invalid {
                value: input.to_string(),
                ..e
            })?;
            if base.ip().is_some() {
                return invalid(
                    input,
                    "a wildcard covers the names under a domain, not an address",
                );
            }
            return Ok(DomainName(format!("*.{base}")));
        }
        if input.contains('*') {
            return invalid(
                input,
                "a wildcard is only the whole leftmost label, like *.example.com (and needs \
                 challenge: dns-01)",
            );
        }
        let bare = input.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
        if let Ok(ip) = bare.unwrap_or(input).parse::<IpAddr>() {
            return Ok(DomainName(ip.to_string()));
        }
        if input.ends_with('.') {
            return invalid(input, "remove the trailing dot");
        }
        if let Some((scheme, rest)) = input.split_once("://") {
            return invalid(
                input,
                format!(
                    "a domain is a name, without {scheme}://: use {}",
                    rest.split('/').next().unwrap_or(rest)
                ),
            );
        }
        if let Some((name, _)) = input.split_once('/') {
            return invalid(
                input,
                format!("a domain is a name, without a path: use {name}"),
            );
        }
        if input.contains(char::is_whitespace) {
            return invalid(
                input,
                "one certificate's names are separated by commas, not spaces: a.example.com,b.example.com",
            );
        }
        if !input.is_ascii() {
            // Not converted silently: a lookalike (a Cyrillic "а" for a Latin "a") would pass as
            // another name. Showing the punycode makes the difference visible.
            return match idna::domain_to_ascii(input) {
                Ok(a) if !a.is_empty() && check_dns_name(input, &a).is_ok() => invalid(
                    input,
                    format!("a name with non-ASCII characters must be given in its ASCII (punycode) form: {a}"),
                ),
                _ => invalid(input, "this name has no valid IDNA (punycode) form"),
            };
        }
        let ascii = input.to_ascii_lowercase();
        check_dns_name(input, &ascii)?;
        Ok(DomainName(ascii))
    }
}

impl DomainName {
    /// Whether this is a wildcard, `*.example.com`.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name certbot files the certificate under when this name comes first: a wildcard
    /// without its `*.` (certbot's own rule for the lineage name).
    pub fn lineage(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }

    /// The IP address, when this is one rather than a DNS name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// How nginx's `server_name` and a `Host` header write it: IPv6 in brackets.
    pub fn host(&self) -> String {
        match self.ip() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.0.clone(),
        }
    }
}

/// Whether a CA that validates from the internet can reach `ip`: not private, loopback,
/// link-local, shared (carrier-grade NAT), documentation, multicast or unspecified.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || v6.to_ipv4_mapped().is_some())
        }
    }
}

fn check_dns_name(input: &str, ascii: &str) -> Result<(), Invalid> {
    const ALLOWED: &str = "letters a-z, digits, hyphens and dots";
    if ascii.len() > 253 {
        return invalid(
            input,
            format!(
                "a domain name has at most 253 characters, this has {}",
                ascii.len()
            ),
        );
    }
    if let Some(c) = ascii
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return invalid(
            input,
            format!("{c:?} is not allowed; a domain name holds {ALLOWED}"),
        );
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return invalid(
            input,
            "a domain name needs at least two labels, like example.com",
        );
    }
    for label in &labels {
        if label.is_empty() {
            return invalid(
                input,
                "a domain name cannot have an empty label (\"..\" or a leading dot)",
            );
        }
        if label.len() > 63 {
            return invalid(
                input,
                format!("the label {label:?} is longer than 63 characters"),
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid(
                input,
                format!("the label {label:?} starts or ends with a hyphen"),
            );
        }
        if label.get(2..4) == Some("--") {
            // Only punycode ("xn--") may have hyphens in positions 3 and 4, and it must decode.
            let ok = label.starts_with("xn--") && idna::domain_to_unicode(label).1.is_ok();
            if !ok {
                return invalid(input, format!("the label {label:?} has \"--\" in positions 3-4, allowed only in valid punycode (xn--)"));
            }
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid(input, "the last label cannot be all digits");
    }
    Ok(())
}

/// One certificate as typed on the command line: `example.com,www.example.com`, optionally
/// followed by `=UPSTREAM` (where its site forwards). The first name is the certificate's name
/// (its folder under `live/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    pub names: Vec<DomainName>,
    pub upstream: Option<Upstream>,
}

impl FromStr for CertificateNames {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let (list, upstream) = match s.split_once('=') {
            Some((list, upstream)) => {
                let upstream = Upstream::parse(upstream).map_err(|e| Invalid {
                    what: "",
                    value: s.to_string(),
                    rule: format!("the upstream after '=': {}", e.rule),
                })?;
                (list, Some(upstream))
            }
            None => (s, None),
        };
        let mut names = Vec::new();
        for part in list.split(',') {
            let name = DomainName::parse(part).map_err(|e| Invalid {
                what: "",
                value: s.to_string(),
                rule: format!("{:?}: {}", e.value, e.rule),
            })?;
            names.push(name);
        }
        check_names(s, &names)?;
        Ok(CertificateNames { names, upstream })
    }
}

/// Rules for the set of names on one certificate.
pub fn check_names(value: &str, names: &[DomainName]) -> Result<(), Invalid> {
    if names.is_empty() {
        return invalid(value, "a certificate needs at least one name");
    }
    if names.len() > MAX_NAMES_PER_CERTIFICATE {
        return invalid(
            value,
            format!("{} names; Let's Encrypt allows at most {MAX_NAMES_PER_CERTIFICATE} on one certificate", names.len()),
        );
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return invalid(value, format!("{name} is listed twice"));
        }
    }
    Ok(())
}

validated_string! {
    /// A contact address for the ACME account: what certbot accepts, without the characters that
    /// certbot splits on or a shell would read (commas, spaces, quotes, backticks, control characters).
    pub struct Email for "email";
    schema: "A contact address for the ACME account: local@domain.tld, no spaces, commas or quotes.";
    pattern: patterns::EMAIL;
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "an email address is local@domain.tld; the local part holds letters, \
                            digits and . _ + - (no spaces, commas or quotes)";
        let Some((local, domain)) = input.split_once('@') else {
            return invalid(input, RULE);
        };
        if local.starts_with('-') {
            // certbot would read `--help@example.com` as an option.
            return invalid(input, "an email address cannot start with '-'");
        }
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok || !domain.is_ascii() {
            return invalid(input, RULE);
        }
        let domain = DomainName::parse(domain).map_err(|e| Invalid {
            what: "",
            value: input.to_string(),
            rule: format!("the domain after @ is not valid: {}", e.rule),
        })?;
        Ok(Email(format!("{local}@{domain}")))
    }
}

validated_string! {
    /// A short name for one server; it becomes a folder name and part of compose project names.
    #[derive(PartialOrd, Ord, Hash)]
    pub struct ServerName for "name";
    schema: "The server's folder name and part of its compose project names: letters, digits, . _ -";
    pattern: patterns::SERVER_NAME;
}

impl ServerName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "a server name is 1-63 lowercase letters, digits, hyphens and dots, \
                            starting and ending with a letter or digit (it becomes a folder name)";
        let ok = (1..=63).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && input
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && input
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && !input.contains("..");
        if !ok {
            return invalid(input, RULE);
        }
        if crate::names::TOP_LEVEL.contains(&input) {
            return invalid(
                input,
                "certgen writes a file of that name beside the server folders; choose another name",
            );
        }
        Ok(ServerName(input.to_string()))
    }

    /// Docker compose project names allow no dots.
    pub fn project_slug(&self) -> String {
        self.0.replace('.', "-")
    }
}

impl From<&DomainName> for ServerName {
    fn from(d: &DomainName) -> Self {
        // A wildcard's folder is its name without `*.`, as its certificate's is.
        let s = d.lineage();
        if s.len() <= 63 {
            ServerName(s.to_string())
        } else {
            // A long domain still makes a valid folder name: its first label is at most 63.
            ServerName(s.split('.').next().unwrap_or("server").to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn domain_names_follow_lets_encrypt_rules() {
        assert_eq!(
            DomainName::parse("Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert!(DomainName::parse("xn--bcher-kva.example").is_ok());
        check::refused::<DomainName>(&[
            "",
            "com",
            "example.com.",
            "-a.example.com",
            "a-.example.com",
            "a..example.com",
            "ab--c.example.com",
            "xn--zz.example",
            "a_b.example.com",
            "example.123",
            "a b.example.com",
            "a;b.example.com",
        ]);
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long_label).is_err());
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(DomainName::parse(&long_name)
            .unwrap_err()
            .rule
            .contains("253"));
    }

    // Unicode names are refused with the punycode to use, so a lookalike shows.
    #[test]
    fn unicode_names_are_refused_with_their_punycode() {
        let err = DomainName::parse("bücher.example").unwrap_err();
        assert!(err.rule.ends_with("xn--bcher-kva.example"), "{err}");
        let lookalike = DomainName::parse("\u{0435}xample.com").unwrap_err(); // Cyrillic "е"
        assert!(lookalike.rule.contains("xn--"), "{lookalike}");
        let fullwidth = DomainName::parse("ｅｘａｍｐｌｅ.com").unwrap_err();
        assert!(fullwidth.rule.ends_with("example.com"), "{fullwidth}");
    }

    // The common slips get the fix in the error.
    #[test]
    fn common_slips_get_the_fix() {
        let rule = |s: &str| DomainName::parse(s).unwrap_err().rule;
        assert!(rule("https://example.com/").ends_with("use example.com"));
        assert!(rule("example.com/app").ends_with("use example.com"));
        assert!(rule("a.example.com b.example.com").contains("separated by commas"));
    }

    #[test]
    fn wildcards_are_the_whole_leftmost_label() {
        let w = DomainName::parse("*.Example.com").unwrap();
        assert_eq!(
            (w.as_str(), w.lineage(), w.is_wildcard()),
            ("*.example.com", "example.com", true)
        );
        for bad in [
            "*example.com",
            "a.*.example.com",
            "*.*.example.com",
            "*.com",
            "*",
            "*.10.0.0.1",
            "w*.example.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
        assert!(DomainName::parse("a.*.example.com")
            .unwrap_err()
            .rule
            .contains("leftmost"));
    }

    #[test]
    fn ip_addresses_are_names_in_canonical_form() {
        for (input, name, host) in [
            ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
            ("[2001:DB8:0::1]", "2001:db8::1", "[2001:db8::1]"),
            ("2001:db8::1", "2001:db8::1", "[2001:db8::1]"),
        ] {
            let n = DomainName::parse(input).unwrap();
            assert_eq!((n.as_str(), n.host().as_str()), (name, host), "{input}");
            assert!(n.ip().is_some());
        }
        assert!(DomainName::parse("example.com").unwrap().ip().is_none());
        for bad in ["192.0.2", "1.2.3.4.5", "[example.com]", "2001:db8::1::2"] {
            assert!(DomainName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_addresses_are_the_ones_a_ca_can_reach() {
        for public in ["8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.2.1",
            "203.0.113.5",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn certificate_names_split_on_commas() {
        let c: CertificateNames = "example.com,www.example.com".parse().unwrap();
        assert_eq!(c.names.len(), 2);
        assert_eq!(c.upstream, None);
        assert!("example.com,example.com"
            .parse::<CertificateNames>()
            .is_err());
        assert!("example.com,".parse::<CertificateNames>().is_err());
        let many = (0..101)
            .map(|i| format!("n{i}.example.com"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(many
            .parse::<CertificateNames>()
            .unwrap_err()
            .rule
            .contains("at most 100"));
    }

    #[test]
    fn emails_have_no_shell_or_certbot_separators() {
        assert!(Email::parse("ops+certs@example.com").is_ok());
        check::refused::<Email>(&[
            "",
            "ops",
            "a,b@example.com",
            "a b@example.com",
            "a'b@example.com",
            "a@b",
            "a`x`@example.com",
            ".a@example.com",
            "a@example.com\n",
            // Certbot would take it for an option.
            "--help@example.com",
            "-x@example.com",
        ]);
    }

    #[test]
    fn server_names_are_one_safe_path_component() {
        assert!(ServerName::parse("prod-1").is_ok());
        assert!(ServerName::parse("example.com").is_ok());
        // Certgen.yaml would be both the config and a server folder.
        check::refused::<ServerName>(&[
            "",
            "..",
            ".",
            "a/b",
            "Prod",
            "-a",
            "a-",
            "a..b",
            "a b",
            "certgen.yaml",
            "certgen.schema.json",
        ]);
    }
}
