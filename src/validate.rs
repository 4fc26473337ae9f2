//! Every value a user types, checked once at the boundary.
//!
//! Each type here can only hold a value that is safe to place in a shell script, an nginx config,
//! a compose file and a crontab: everything after parsing trusts them. A rejected value becomes an
//! [`Invalid`], which names the value and the rule; the caller adds which flag or key it came from.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Let's Encrypt's limit of names on one certificate.
pub const MAX_NAMES_PER_CERTIFICATE: usize = 100;

/// A value that breaks a rule: which key it was for (when known), what it was, what is allowed.
/// The value is printed escaped, so control characters and quotes are visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{value:?} is not valid: {rule}", if what.is_empty() { String::new() } else { format!("{what} ") })]
pub struct Invalid {
    pub what: &'static str,
    pub value: String,
    pub rule: String,
}

fn invalid<T>(value: &str, rule: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        what: "",
        value: value.to_string(),
        rule: rule.into(),
    })
}

/// Implements `FromStr`, `TryFrom<String>` (for serde: its errors name the config key `$key`)
/// and `Display` for a validated string type.
macro_rules! validated_string {
    ($name:ident, $key:literal) => {
        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Invalid> {
                Self::parse(&s).map_err(|e| Invalid { what: $key, ..e })
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

/// The JSON Schema of each validated string (`certgen schema`): a string and its rule, which an
/// editor shows as the key's help. The rules themselves are enforced when certgen reads the file.
macro_rules! string_schema {
    ($($name:ident: $description:literal,)*) => {$(
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $description })
            }
        }
    )*};
}

string_schema! {
    DomainName: "A DNS name (lowercase ASCII, punycode for non-ASCII names) or an IP address (Let's Encrypt: with profile shortlived only).",
    Email: "A contact address for the ACME account: local@domain.tld, no spaces, commas or quotes.",
    ServerName: "The server's folder name and part of its compose project names: letters, digits, . _ -",
    Upstream: "Where the site forwards: http[s]://HOST[:PORT], no path; not localhost (use host.docker.internal).",
    AcmeServer: "An ACME directory URL (https), or letsencrypt / letsencrypt-staging.",
    ProfileName: "An ACME profile the CA lists: classic, tlsserver, shortlived (Let's Encrypt).",
    ImageRef: "A container image, pinned by tag or digest: [registry[:port]/]path:tag[@digest].",
    DeployPath: "The absolute path of the infra folder (the one holding certgen.yaml) on the server.",
    CronSchedule: "A five-field cron schedule that runs every day, like 17 4,16 * * *.",
    PemBundle: "PEM certificates (-----BEGIN CERTIFICATE-----) the certbot containers trust for a private ACME server.",
    UpstreamCa: "PEM certificates (-----BEGIN CERTIFICATE-----) the site's https:// upstreams chain to.",
    NginxSize: "A size in nginx's syntax: bytes, or a number of k, m or g; 0 for no limit.",
    NginxTime: "A duration in nginx's syntax: seconds, or a number of ms, s, m, h or d.",
    PathPrefix: "A path prefix starting and ending with /, like /api/.",
    NetworkName: "An existing Docker network the proxy joins.",
    NodeLabel: "engine: swarm: the node label that puts a proxy on a node (docker node update --label-add LABEL=true NODE).",
    TrustedProxy: "An IP address or CIDR network in front of the proxy whose X-Forwarded-For is believed.",
}

/// A name on a certificate: a DNS name a public ACME CA will issue for, in lowercase ASCII
/// (Unicode names are converted to punycode), a wildcard `*.NAME` (DNS-01 only, which
/// [`Config::check`](crate::config::Config::check) enforces), or an IP address (RFC 8738,
/// HTTP-01 only; Let's Encrypt issues those only with its `shortlived` profile), in its
/// canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);
validated_string!(DomainName, "domain");

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

/// A contact address for the ACME account: what certbot accepts, without the characters that
/// certbot splits on or a shell would read (commas, spaces, quotes, backticks, control characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
validated_string!(Email, "email");

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

/// A short name for one server; it becomes a folder name and part of compose project names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerName(String);
validated_string!(ServerName, "name");

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

/// Where the proxy forwards a site: `http[s]://host[:port]`, stored without a path so that nginx
/// passes the request's own URI through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upstream(String);
validated_string!(Upstream, "upstream");

impl Upstream {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str =
            "an upstream is http://HOST[:PORT] or https://HOST[:PORT], with no path, \
                            query or user, like http://app:8080";
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".:/_-[]".contains(*c)))
        {
            return invalid(
                input,
                format!("{c:?} is not allowed; {RULE} (a Unicode host goes in punycode)"),
            );
        }
        let url = parse_url(input, RULE)?;
        let scheme_ok = matches!(url.scheme(), "http" | "https");
        if !scheme_ok
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return invalid(input, RULE);
        }
        if is_loopback(url.host()) {
            return invalid(
                input,
                "inside the proxy's container this is nginx itself, so every request would fail \
                 (502); name the Docker host as host.docker.internal (for a port published there) \
                 or the app's container on a Docker network (`networks`)",
            );
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => {
                let ok = d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
                if !ok {
                    return invalid(
                        input,
                        format!("the host {d:?} is not a valid host name; {RULE}"),
                    );
                }
                d.to_string()
            }
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return invalid(input, RULE),
        };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        if url.port() == Some(0) {
            return invalid(input, "port 0 is not a port; use 1-65535");
        }
        Ok(Upstream(format!("{}://{host}{port}", url.scheme())))
    }

    /// The name every proxy container knows from its /etc/hosts (compose `extra_hosts`).
    pub const DOCKER_HOST: &'static str = "host.docker.internal";

    /// Does the host need no DNS? An IP address, or the Docker host, which nginx finds in
    /// /etc/hosts at start. Any other name is resolved per request through Docker's DNS, which
    /// does not serve /etc/hosts.
    pub fn is_fixed_address(&self) -> bool {
        let url = url::Url::parse(&self.0).expect("validated");
        match url.host() {
            Some(url::Host::Domain(d)) => d == Self::DOCKER_HOST,
            _ => true,
        }
    }
}

/// localhost, 127.0.0.0/8, ::1 and the unspecified addresses: inside a container, itself.
fn is_loopback(host: Option<url::Host<&str>>) -> bool {
    match host {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

fn parse_url(input: &str, rule: &str) -> Result<url::Url, Invalid> {
    // The url crate's own words ("relative URL without a base") are for programmers.
    url::Url::parse(input).or_else(|e| {
        let why = match e {
            url::ParseError::RelativeUrlWithoutBase => "not a URL (no scheme:// in front)".into(),
            url::ParseError::EmptyHost => "it has no host".into(),
            url::ParseError::InvalidPort => "its port is not a number from 1 to 65535".into(),
            other => format!("not a URL ({other})"),
        };
        invalid(input, format!("{why}; {rule}"))
    })
}

/// A host name for a connection (not for a certificate): one or more labels of letters, digits,
/// hyphens and underscores (Docker service names may have them), 253 characters at most.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// An ACME directory URL: https only, and only characters that need no quoting anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AcmeServer(String);
validated_string!(AcmeServer, "acme_server");

impl AcmeServer {
    pub const LETS_ENCRYPT: &'static str = "https://acme-v02.api.letsencrypt.org/directory";
    pub const LETS_ENCRYPT_STAGING: &'static str =
        "https://acme-staging-v02.api.letsencrypt.org/directory";

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "an ACME server is an https:// directory URL, like \
                            https://acme-v02.api.letsencrypt.org/directory, or letsencrypt or \
                            letsencrypt-staging";
        match input {
            "letsencrypt" => return Ok(Self::lets_encrypt()),
            "letsencrypt-staging" => return Ok(Self::lets_encrypt_staging()),
            _ => {}
        }
        let safe = input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?=&+@[]".contains(&b));
        if !safe {
            return invalid(
                input,
                format!("{RULE}, with no spaces, quotes or shell characters"),
            );
        }
        let url = parse_url(input, RULE)?;
        if url.scheme() != "https" || !url.username().is_empty() || url.fragment().is_some() {
            return invalid(input, RULE);
        }
        if let Some(url::Host::Domain(d)) = url.host() {
            if !is_host_name(d) {
                return invalid(
                    input,
                    format!("the host {d:?} is not a valid host name; {RULE}"),
                );
            }
        }
        if url.as_str() != input {
            return invalid(
                input,
                format!("write it in its plain form: {}", url.as_str()),
            );
        }
        Ok(AcmeServer(input.to_string()))
    }

    pub fn lets_encrypt() -> Self {
        AcmeServer(Self::LETS_ENCRYPT.to_string())
    }

    pub fn lets_encrypt_staging() -> Self {
        AcmeServer(Self::LETS_ENCRYPT_STAGING.to_string())
    }
}

/// An ACME profile name, as the CA's directory lists them (Let's Encrypt: `classic`,
/// `tlsserver`, `shortlived`). Passed to certbot as `--preferred-profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileName(String);
validated_string!(ProfileName, "profile");

impl ProfileName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        static NAME: LazyLock<Regex> =
            LazyLock::new(|| Regex::new("^[a-z0-9][a-z0-9._-]{0,63}$").expect("valid regex"));
        if !NAME.is_match(input) {
            return invalid(
                input,
                "a profile is a name the ACME server lists in its directory: lowercase letters, \
                 digits and . _ -, like classic, tlsserver or shortlived",
            );
        }
        Ok(ProfileName(input.to_string()))
    }
}

/// CA certificates that a site's `https://` upstreams chain to: a [`PemBundle`], whose errors
/// name its own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UpstreamCa(String);
validated_string!(UpstreamCa, "upstream_ca");

impl UpstreamCa {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        PemBundle::parse(input).map(|bundle| UpstreamCa(bundle.0))
    }
}

/// A container image reference in Docker's grammar: `[registry[:port]/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(String);
validated_string!(ImageRef, "image");

/// Docker's reference grammar (distribution/reference), anchored.
static IMAGE_REF: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
    let host = format!("(?:{domain_component}(?:\\.{domain_component})*|{ipv6})");
    let domain = format!("{host}(?::[0-9]+)?");
    let path = format!("{component}(?:/{component})*");
    let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!("^(?:{domain}/)?{path}(?::{tag})?(?:@{digest})?$")).expect("valid regex")
});

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.len() > 255 || !IMAGE_REF.is_match(input) {
            return invalid(
                input,
                "an image reference is [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] in Docker's grammar, \
                 with a lowercase name, like nginx:1.30 or registry.example.com/certbot/certbot:v5.8.0",
            );
        }
        if input.ends_with(":latest") || !has_tag_or_digest(input) {
            return invalid(input, "pin a version: give a tag other than latest, or a digest (latest changes under you)");
        }
        Ok(ImageRef(input.to_string()))
    }

    /// The nginx version an image's tag names: `nginx:1.28`, `mirror.example/nginx:1.29.3-alpine`
    /// (an image named nginx, a tag that starts with the version). None for anything else (a
    /// digest alone, `stable`, another image's name): what it runs is known only by running it.
    /// A series tag (`1.28`) counts as its first release, the oldest it may be.
    pub fn nginx_version(&self) -> Option<NginxVersion> {
        static TAG: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-[a-z0-9.-]+)?$").expect("valid regex")
        });
        let name = self.0.split('@').next()?;
        let (path, tag) = name.rsplit_once(':')?;
        if path.rsplit('/').next()? != "nginx" {
            return None;
        }
        let caps = TAG.captures(tag)?;
        let number = |i| caps.get(i).map_or(Some(0), |m| m.as_str().parse().ok());
        Some(NginxVersion(number(1)?, number(2)?, number(3)?))
    }
}

/// An nginx release, as (major, minor, patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NginxVersion(pub u32, pub u32, pub u32);

impl fmt::Display for NginxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn has_tag_or_digest(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':') || last.contains('@')
}

/// Where the infra folder lives on the server: an absolute path, used in the crontab line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeployPath(String);
validated_string!(DeployPath, "deploy_path");

impl DeployPath {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if !input.starts_with('/') {
            return invalid(input, "the deploy path must be absolute, like /srv/infra");
        }
        if let Some(c) = input.chars().find(|c| c.is_control()) {
            return invalid(
                input,
                format!("{c:?}: a deploy path cannot hold control characters"),
            );
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/._+@-".contains(*c)))
        {
            return invalid(
                input,
                format!("{c:?}: a deploy path holds letters, digits and / . _ + @ - only"),
            );
        }
        let components: Vec<&str> = input.trim_end_matches('/').split('/').skip(1).collect();
        if components
            .iter()
            .any(|c| *c == "." || *c == ".." || c.is_empty() && input != "/")
        {
            return invalid(
                input,
                "a deploy path cannot contain . or .. components or //",
            );
        }
        if components.iter().any(|c| c.len() > 255) {
            return invalid(input, "a folder name in a path has at most 255 characters");
        }
        let trimmed = input.trim_end_matches('/');
        Ok(DeployPath(if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        }))
    }
}

/// A cron schedule (five fields, as in a crontab line) that runs `renew/run.sh` at least once
/// every day: a schedule that never runs, or skips days, lets certificates expire quietly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule(String);
validated_string!(CronSchedule, "renew_schedule");

/// The five fields of a crontab schedule: name and allowed range.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

impl CronSchedule {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let fields: Vec<&str> = input.split(' ').collect();
        if fields.len() != 5 || fields.iter().any(|f| f.is_empty()) {
            return invalid(input, "a schedule is five cron fields separated by single spaces (minute hour day-of-month month day-of-week), like \"17 4,16 * * *\"");
        }
        let mut sets = Vec::new();
        for (field, (name, low, high)) in fields.iter().zip(CRON_FIELDS) {
            let set = cron_field(field, low, high).map_err(|why| Invalid {
                what: "",
                value: input.to_string(),
                rule: format!("the {name} field {field:?} {why}"),
            })?;
            sets.push(set);
        }
        let (dom, month, dow) = (&sets[2], &sets[3], &sets[4]);
        let every = |set: &Vec<u32>, low: u32, high: u32| (low..=high).all(|v| set.contains(&v));
        let every_month = every(month, 1, 12);
        // Vixie cron: when both day fields are restricted, either one matching is enough;
        // when one is `*`, the other decides alone.
        let every_dom = every(dom, 1, 31);
        let every_dow = every(dow, 0, 6) || (every(dow, 1, 6) && dow.contains(&7));
        let dom_star = fields[2].starts_with('*');
        let dow_star = fields[4].starts_with('*');
        let every_day = match (dom_star, dow_star) {
            (true, true) => true,
            (true, false) => every_dow,
            (false, true) => every_dom,
            (false, false) => every_dom || every_dow,
        };
        if !every_month || !every_day {
            return invalid(
                input,
                "renewal must run at least once every day (a failed run is then retried within a \
                 day); keep the day-of-month, month and day-of-week fields *, like \"17 4,16 * * *\"",
            );
        }
        Ok(CronSchedule(input.to_string()))
    }

    /// Twice a day, 12 hours apart, at a minute and hour derived from `seed`: the same config
    /// always gets the same schedule, and different users spread over the day.
    pub fn twice_daily(seed: &str) -> Self {
        let h = fnv1a(seed.as_bytes());
        let minute = h % 60;
        let hour = (h / 60) % 12;
        CronSchedule(format!("{minute} {hour},{} * * *", hour + 12))
    }
}

/// The values one cron field selects: a comma-separated list of `*`, `N`, `N-M`, each
/// optionally `/STEP`. No names (`mon`) or macros (`@daily`): digits only.
fn cron_field(field: &str, low: u32, high: u32) -> Result<Vec<u32>, String> {
    let number = |s: &str| -> Result<u32, String> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "has {s:?} where a number from {low} to {high} goes"
            ));
        }
        let n: u32 = s.parse().expect("digits");
        if n < low || n > high {
            return Err(format!("has {n}, outside {low}-{high}"));
        }
        Ok(n)
    };
    let mut values = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = match step.parse() {
                    Ok(n)
                        if (1..=high).contains(&n) && step.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        n
                    }
                    _ => {
                        return Err(format!(
                            "has the step {step:?}; a step is a number from 1 to {high}"
                        ))
                    }
                };
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("has the range {a}-{b}, which runs backwards"));
            }
            (a, b)
        } else {
            let n = number(range)?;
            (n, if step > 1 { high } else { n })
        };
        values.extend((first..=last).step_by(step as usize));
    }
    Ok(values)
}

/// FNV-1a, 64 bits: tiny, and stable across Rust versions (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// PEM certificates that the certbot containers trust for a private ACME server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PemBundle(String);
validated_string!(PemBundle, "acme_ca_bundle");

impl PemBundle {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let text = input.replace("\r\n", "\n");
        let mut blocks = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(BEGIN) {
            let after = &rest[start + BEGIN.len()..];
            let Some(end) = after.find(END) else {
                return invalid(
                    &abbreviate(input),
                    "a PEM certificate is missing its END line",
                );
            };
            let body = &after[..end];
            if !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=\n ".contains(&b))
            {
                return invalid(&abbreviate(input), "a PEM certificate's body is base64");
            }
            let lines: Vec<&str> = body.split_whitespace().collect();
            blocks.push(format!("{BEGIN}\n{}\n{END}\n", lines.join("\n")));
            rest = &after[end + END.len()..];
        }
        if blocks.is_empty() {
            return invalid(
                &abbreviate(input),
                format!("a CA bundle holds one or more PEM certificates ({BEGIN} ...)"),
            );
        }
        // Only the certificates are kept: text around them has no business in the tree.
        Ok(PemBundle(blocks.concat()))
    }

    pub fn from_file(path: &str) -> Result<Self, Invalid> {
        let text = std::fs::read(path).map_err(|e| Invalid {
            what: "",
            value: path.to_string(),
            rule: format!("cannot read the CA bundle: {e}"),
        })?;
        let text = String::from_utf8(text).map_err(|_| Invalid {
            what: "",
            value: path.to_string(),
            rule: "a CA bundle is a PEM text file; this one is binary".into(),
        })?;
        Self::parse(&text).map_err(|e| Invalid {
            what: "",
            value: path.to_string(),
            rule: e.rule,
        })
    }
}

/// A size in nginx's syntax: a number of bytes, or of `k`, `m` or `g` (kibi-, mebi-,
/// gibibytes). `0` means no limit where nginx allows it (`client_max_body_size`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NginxSize(String);
validated_string!(NginxSize, "max_body_size");

impl NginxSize {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        static SIZE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new("^[0-9]{1,6}[kmg]?$").expect("valid regex"));
        let lower = input.to_ascii_lowercase();
        if !SIZE.is_match(&lower) {
            return invalid(
                input,
                "a size is a number with an optional unit k, m or g, like 100m or 2g (0 = no limit)",
            );
        }
        Ok(NginxSize(lower))
    }
}

/// A duration in nginx's syntax: a number of seconds, or of `ms`, `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NginxTime(String);
validated_string!(NginxTime, "timeout");

impl NginxTime {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        static TIME: LazyLock<Regex> =
            LazyLock::new(|| Regex::new("^([0-9]{1,6})(ms|s|m|h|d)?$").expect("valid regex"));
        let Some(caps) = TIME.captures(input) else {
            return invalid(
                input,
                "a timeout is a number with an optional unit ms, s, m, h or d, like 60s or 1h",
            );
        };
        if &caps[1] == "0" || caps[1].bytes().all(|b| b == b'0') {
            return invalid(
                input,
                "a timeout of 0 would fail every request; give at least 1s",
            );
        }
        Ok(NginxTime(input.to_string()))
    }

    pub fn seconds(&self) -> f64 {
        let digits = self.0.trim_end_matches(char::is_alphabetic);
        let n: f64 = digits.parse().expect("validated");
        n * match &self.0[digits.len()..] {
            "ms" => 0.001,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => 1.0,
        }
    }
}

/// A path prefix that a route sends to its own upstream: `/api/`. nginx matches it as a prefix
/// of the request path (the longest matching prefix wins), and passes the whole path on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathPrefix(String);
validated_string!(PathPrefix, "routes");

impl PathPrefix {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "a route is a path prefix like /api/: it starts with /, and holds \
                            letters, digits and / . _ ~ - only";
        if input == "/" {
            return invalid(
                input,
                "/ is the certificate's own `upstream`; routes are for other prefixes, like /api/",
            );
        }
        let ok = input.starts_with('/')
            && input.len() <= 200
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b));
        if !ok {
            return invalid(input, RULE);
        }
        if input.contains("//") || input.split('/').any(|c| c == "." || c == "..") {
            return invalid(input, "a route cannot contain //, . or .. components");
        }
        Ok(PathPrefix(input.to_string()))
    }
}

/// A Docker network the proxy joins, created outside certgen (`docker network create`, or an
/// app's compose project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkName(String);
validated_string!(NetworkName, "networks");

impl NetworkName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        static NAME: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$").expect("valid regex")
        });
        if !NAME.is_match(input) {
            return invalid(
                input,
                "a Docker network name is 1-128 letters, digits and _ . -, starting with a letter or digit",
            );
        }
        match input {
            "host" | "none" => invalid(
                input,
                "the proxy publishes its ports on its own network; join the network your apps are on instead",
            ),
            "bridge" => invalid(
                input,
                "Docker's default bridge network does not resolve container names; create a network \
                 (docker network create NAME) and attach the apps to it",
            ),
            "default" => invalid(input, "`default` is the proxy's own network already; name the apps' network"),
            _ => Ok(NetworkName(input.to_string())),
        }
    }
}

/// `engine: swarm`: the label of the nodes that run a proxy, set on each with
/// `docker node update --label-add LABEL=true NODE`. Docker's convention for label keys:
/// lowercase letters, digits, `.` and `-`, reverse-DNS style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeLabel(String);
validated_string!(NodeLabel, "node_label");

impl NodeLabel {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        static LABEL: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new("^[a-z0-9]([a-z0-9.-]{0,98}[a-z0-9])?$").expect("valid regex")
        });
        if !LABEL.is_match(input) || input.contains("..") {
            return invalid(
                input,
                "a node label is 1-100 lowercase letters, digits, . and -, starting and ending \
                 with a letter or digit, like certgen.proxy",
            );
        }
        Ok(NodeLabel(input.to_string()))
    }

    /// The label when certgen.yaml names none.
    pub fn default_label() -> NodeLabel {
        NodeLabel("certgen.proxy".into())
    }
}

/// An address or network the proxy trusts to name the client in `X-Forwarded-For` (a load
/// balancer in front of it): `10.0.0.5`, `10.0.0.0/8`, `2001:db8::/32`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedProxy(String);
validated_string!(TrustedProxy, "trusted_proxies");

impl TrustedProxy {
    /// The network it names (an address is a network of one).
    pub fn net(&self) -> ipnet::IpNet {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => self.0.parse().expect("validated when parsed"),
        }
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let net = match input.parse::<IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => input.parse::<ipnet::IpNet>().or_else(|_| {
                invalid(
                    input,
                    "a trusted proxy is an IP address or a network in CIDR form, like 10.0.0.5 or 10.0.0.0/8",
                )
            })?,
        };
        if net.prefix_len() == 0 {
            return invalid(
                input,
                "trusting every address lets any client choose the address your apps see; name the \
                 load balancer's addresses",
            );
        }
        if net.trunc() != net {
            return invalid(
                input,
                format!("the host bits are set; the network is {}", net.trunc()),
            );
        }
        // A single address is written without its /32 or /128, as nginx prints it.
        let text = if net.prefix_len() == net.max_prefix_len() {
            net.addr().to_string()
        } else {
            net.to_string()
        };
        Ok(TrustedProxy(text))
    }
}

fn abbreviate(s: &str) -> String {
    let head: String = s.chars().take(40).collect();
    if head.len() < s.len() {
        format!("{head}...")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_follow_lets_encrypt_rules() {
        assert_eq!(
            DomainName::parse("Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert!(DomainName::parse("xn--bcher-kva.example").is_ok());
        for bad in [
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
        ] {
            assert!(
                DomainName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long_label).is_err());
        let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
        assert!(DomainName::parse(&long_name)
            .unwrap_err()
            .rule
            .contains("253"));
    }

    // Issue 5: Unicode names are refused with the punycode to use, so a lookalike shows.
    #[test]
    fn unicode_names_are_refused_with_their_punycode() {
        let err = DomainName::parse("bücher.example").unwrap_err();
        assert!(err.rule.ends_with("xn--bcher-kva.example"), "{err}");
        let lookalike = DomainName::parse("\u{0435}xample.com").unwrap_err(); // Cyrillic "е"
        assert!(lookalike.rule.contains("xn--"), "{lookalike}");
        let fullwidth = DomainName::parse("ｅｘａｍｐｌｅ.com").unwrap_err();
        assert!(fullwidth.rule.ends_with("example.com"), "{fullwidth}");
    }

    // Issue 12: the common slips get the fix in the error.
    #[test]
    fn common_slips_get_the_fix() {
        let rule = |s: &str| DomainName::parse(s).unwrap_err().rule;
        assert!(rule("https://example.com/").ends_with("use example.com"));
        assert!(rule("example.com/app").ends_with("use example.com"));
        assert!(rule("a.example.com b.example.com").contains("separated by commas"));
        assert_eq!(
            AcmeServer::parse("letsencrypt-staging").unwrap(),
            AcmeServer::lets_encrypt_staging()
        );
        assert_eq!(
            AcmeServer::parse("letsencrypt").unwrap(),
            AcmeServer::lets_encrypt()
        );
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
        for bad in [
            "",
            "ops",
            "a,b@example.com",
            "a b@example.com",
            "a'b@example.com",
            "a@b",
            "a`x`@example.com",
            ".a@example.com",
            "a@example.com\n",
            // Issue 13: certbot would take it for an option.
            "--help@example.com",
            "-x@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn server_names_are_one_safe_path_component() {
        assert!(ServerName::parse("prod-1").is_ok());
        assert!(ServerName::parse("example.com").is_ok());
        // Issue 13: certgen.yaml would be both the config and a server folder.
        for bad in [
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
        ] {
            assert!(
                ServerName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn upstreams_are_bare_http_urls() {
        assert_eq!(
            Upstream::parse("http://app:8080").unwrap().as_str(),
            "http://app:8080"
        );
        assert_eq!(
            Upstream::parse("http://app:8080/").unwrap().as_str(),
            "http://app:8080"
        );
        assert_eq!(
            Upstream::parse("https://10.0.0.5").unwrap().as_str(),
            "https://10.0.0.5"
        );
        assert_eq!(
            Upstream::parse("http://[2001:db8::1]:81").unwrap().as_str(),
            "http://[2001:db8::1]:81"
        );
        for bad in [
            "app:8080",
            "ftp://app",
            "http://app:99999",
            "http://app:0",
            "http://app/x",
            "http://u:p@app",
            "http://app?x",
            "http://app;",
            "http://a{b}",
            "http://app:8080 ; evil",
            "http://$host",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    // Issue 13: inside the proxy's container, the loopback address is nginx itself.
    #[test]
    fn loopback_upstreams_are_refused_with_a_hint() {
        for bad in [
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://app.localhost",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:81",
            "http://0.0.0.0:80",
            "http://[::ffff:127.0.0.1]",
        ] {
            let err = Upstream::parse(bad).unwrap_err();
            assert!(err.rule.contains("host.docker.internal"), "{bad}: {err}");
        }
        assert!(Upstream::parse("http://10.0.0.1").is_ok());
    }

    #[test]
    fn only_names_other_than_the_docker_host_need_dns() {
        assert!(Upstream::parse("http://10.0.0.5:80")
            .unwrap()
            .is_fixed_address());
        assert!(Upstream::parse("http://[2001:db8::1]")
            .unwrap()
            .is_fixed_address());
        assert!(Upstream::parse("http://host.docker.internal:8080")
            .unwrap()
            .is_fixed_address());
        assert!(!Upstream::parse("http://app:8080")
            .unwrap()
            .is_fixed_address());
    }

    #[test]
    fn acme_servers_are_https() {
        assert!(AcmeServer::parse(AcmeServer::LETS_ENCRYPT).is_ok());
        assert!(AcmeServer::parse("https://10.0.0.1:14000/dir").is_ok());
        for bad in [
            "http://example.com/dir",
            "https://ex ample.com",
            "https://a.com/'x",
            "https://a.com/$(id)",
            "ftp://a",
        ] {
            assert!(
                AcmeServer::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn image_refs_follow_dockers_grammar_and_are_pinned() {
        for good in [
            "nginx:1.30",
            "certbot/certbot:v5.8.0",
            "registry.example.com:5000/team/nginx:1.30-alpine",
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "nginx",
            "nginx:latest",
            "Nginx:1",
            "nginx:1 ; rm",
            "nginx:$(id)",
            "",
            "nginx:",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn deploy_paths_are_absolute() {
        assert_eq!(
            DeployPath::parse("/srv/infra/").unwrap().as_str(),
            "/srv/infra"
        );
        assert!(DeployPath::parse("/").is_ok());
        let long = format!("/{}", "a".repeat(256));
        for bad in [
            "srv",
            "",
            "/srv/../etc",
            "/srv/\nx",
            "/a/./b",
            "/a//b",
            "/srv/$(reboot)",
            "/srv/a b",
            "/srv/50%",
            long.as_str(),
        ] {
            assert!(
                DeployPath::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn schedules_are_stable_and_twice_daily() {
        let a = CronSchedule::twice_daily("example.com");
        assert_eq!(a, CronSchedule::twice_daily("example.com"));
        let fields: Vec<&str> = a.as_str().split(' ').collect();
        let hours: Vec<u64> = fields[1].split(',').map(|h| h.parse().unwrap()).collect();
        assert_eq!(hours[1], hours[0] + 12);
        assert!(CronSchedule::parse(a.as_str()).is_ok());
        assert!(CronSchedule::parse("* * * *").is_err());
        assert!(CronSchedule::parse("@daily").is_err());
    }

    // Issue 13: a schedule that never runs, or skips days, is refused naming the field.
    #[test]
    fn schedules_must_run_every_day() {
        for good in [
            "17 4,16 * * *",
            "0 */6 * * *",
            "*/30 0-23/2 * * *",
            "5 3 * * 0-6",
            "5 3 * * 1-7",
            "5 3 1-31 * 1",
            "0 0 * 1-12 *",
        ] {
            assert!(
                CronSchedule::parse(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
        for (bad, says) in [
            ("0 0 31 2 *", "at least once every day"),
            ("0 0 * * 1-5", "at least once every day"),
            ("0 0 1 * *", "at least once every day"),
            ("0 0 * 6 *", "at least once every day"),
            (
                "99 99 99 99 99",
                "the minute field \"99\" has 99, outside 0-59",
            ),
            ("0 24 * * *", "the hour field \"24\" has 24, outside 0-23"),
            ("0 0 0 * *", "the day of month field"),
            ("0 0 * 13 *", "the month field"),
            ("0 0 * * 8", "the day of week field"),
            ("0 5-3 * * *", "runs backwards"),
            ("*/0 * * * *", "a step is a number"),
            ("0 0 * * mon", "the day of week field"),
            ("0  0 * * *", "five cron fields"),
        ] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert!(err.rule.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert_eq!(
            TrustedProxy::parse("10.0.0.5").unwrap().as_str(),
            "10.0.0.5"
        );
        assert_eq!(
            TrustedProxy::parse("10.0.0.0/8").unwrap().as_str(),
            "10.0.0.0/8"
        );
        assert_eq!(
            TrustedProxy::parse("2001:db8::/32").unwrap().as_str(),
            "2001:db8::/32"
        );
        assert_eq!(
            TrustedProxy::parse("10.0.0.5/32").unwrap().as_str(),
            "10.0.0.5"
        );
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.5/8",
            "10.0.0.0/33",
            "proxy.example",
            "10.0.0.0/8;",
        ] {
            assert!(
                TrustedProxy::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    // Issue 20: the nginx an image's tag names, and only where the tag says it.
    #[test]
    fn nginx_versions_come_from_nginx_tags_only() {
        let version = |s: &str| ImageRef::parse(s).unwrap().nginx_version();
        assert_eq!(version("nginx:1.30"), Some(NginxVersion(1, 30, 0)));
        assert_eq!(version("nginx:1.29.3-alpine"), Some(NginxVersion(1, 29, 3)));
        assert_eq!(
            version("registry.example.com:5000/mirror/nginx:1.28.1@sha256:0123456789012345678901234567890123456789012345678901234567890123"),
            Some(NginxVersion(1, 28, 1))
        );
        for unknown in [
            "nginx:stable",
            "nginx:mainline-alpine",
            "nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "myorg/proxy:1.26",
            "registry.example.com:5000/nginx-custom:1.30",
        ] {
            assert_eq!(version(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn pem_bundles_hold_certificates() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(PemBundle::parse(pem).is_ok());
        assert!(PemBundle::parse("hello").is_err());
        assert!(PemBundle::parse("-----BEGIN CERTIFICATE-----\nMIIB").is_err());
        let padded = format!("subject=CN x\n{pem}\nrm -rf /\n");
        assert_eq!(PemBundle::parse(&padded).unwrap().as_str(), pem);
    }
}
