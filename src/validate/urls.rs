//! URLs and addresses: upstreams, redirects, upstream CAs, trusted proxies and client networks.

use std::net::IpAddr;

use super::{first_outside, invalid, patterns, Invalid, PemBundle};

validated_string! {
    /// Where the proxy forwards a site: `http[s]://host[:port]`, stored without a path so that nginx
    /// passes the request's own URI through.
    pub struct Upstream for "upstream";
    schema: "Where the site forwards: http[s]://HOST[:PORT], no path; not localhost (use host.docker.internal).";
    pattern: patterns::UPSTREAM;
}

impl Upstream {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str =
            "an upstream is http://HOST[:PORT] or https://HOST[:PORT], with no path, \
                            query or user, like http://app:8080";
        // Docker service names may hold underscores.
        let url = bare_url(input, ".:/_-[]", RULE)?;
        if is_loopback(url.host()) {
            return invalid(
                input,
                "inside the proxy's container this is nginx itself, so every request would fail \
                 (502); name the Docker host as host.docker.internal (for a port published there) \
                 or the app's container on a Docker network (`networks`)",
            );
        }
        canonical_url(&url, input, RULE).map(Upstream)
    }

    /// The address nginx connects to, as an upstream block's `server` names it: host and port,
    /// the scheme's default port written out (an upstream block knows no scheme).
    pub fn server_address(&self) -> String {
        let url = url::Url::parse(&self.0).expect("validated");
        let port = url
            .port_or_known_default()
            .expect("http and https have one");
        format!("{}:{port}", self.host())
    }

    /// The host, as the URL writes it (an IPv6 address in brackets): the name an `https://`
    /// upstream's certificate is checked against, and sent with SNI.
    pub fn host(&self) -> &str {
        let rest = &self.0[self.0.find("://").expect("validated") + 3..];
        match rest.rfind(':') {
            Some(colon) if !rest[colon..].contains(']') => &rest[..colon],
            _ => rest,
        }
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

validated_string! {
    /// Where a redirect-only site sends its visitors: `https://HOST[:PORT]` (or `http://`), with
    /// no path: the request's own path and query are kept.
    pub struct RedirectTarget for "redirect";
    schema: "Where the site redirects: https://HOST[:PORT], no path (the request's path and query are kept).";
    pattern: patterns::REDIRECT;
}

impl RedirectTarget {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "a redirect is https://HOST[:PORT] (or http://), with no path, query or \
                            user: the request's own path and query are kept, like https://example.com";
        let url = bare_url(input, ".:/-[]", RULE)?;
        canonical_url(&url, input, RULE).map(RedirectTarget)
    }
}

/// `input` as a URL of the form `http[s]://HOST[:PORT]`, with no path, query, fragment or user,
/// and only letters, digits and the characters in `allowed`; `rule` says what is expected.
fn bare_url(input: &str, allowed: &str, rule: &str) -> Result<url::Url, Invalid> {
    if let Some(c) = first_outside(input, allowed) {
        return invalid(
            input,
            format!("{c:?} is not allowed; {rule} (a Unicode host goes in punycode)"),
        );
    }
    let url = parse_url(input, rule)?;
    if !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return invalid(input, rule);
    }
    Ok(url)
}

/// A [`bare_url`] as certgen writes it: `scheme://host[:port]`, the host in lowercase (an IPv6
/// address in brackets), no trailing `/`, a port only where one was given (not 0).
fn canonical_url(url: &url::Url, input: &str, rule: &str) -> Result<String, Invalid> {
    let host = match url.host() {
        Some(url::Host::Domain(d)) if is_host_name(d) => d.to_string(),
        Some(url::Host::Domain(d)) => {
            return invalid(
                input,
                format!("the host {d:?} is not a valid host name; {rule}"),
            )
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return invalid(input, rule),
    };
    if url.port() == Some(0) {
        return invalid(input, "port 0 is not a port; use 1-65535");
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{host}{port}", url.scheme()))
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

pub(super) fn parse_url(input: &str, rule: &str) -> Result<url::Url, Invalid> {
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
pub(super) fn is_host_name(host: &str) -> bool {
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

validated_string! {
    /// CA certificates that a site's `https://` upstreams chain to: a [`PemBundle`], whose errors
    /// name its own key.
    pub struct UpstreamCa for "upstream_ca";
    schema: "PEM certificates (-----BEGIN CERTIFICATE-----) the site's https:// upstreams chain to.";
}

impl UpstreamCa {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        PemBundle::parse(input).map(|bundle| UpstreamCa(bundle.into()))
    }
}

validated_string! {
    /// An address or network the proxy trusts to name the client in `X-Forwarded-For` (a load
    /// balancer in front of it): `10.0.0.5`, `10.0.0.0/8`, `2001:db8::/32`.
    pub struct TrustedProxy for "trusted_proxies";
    schema: "An IP address or CIDR network in front of the proxy whose X-Forwarded-For is believed.";
}

impl TrustedProxy {
    /// The network it names (an address is a network of one).
    pub fn net(&self) -> ipnet::IpNet {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => self.0.parse().expect("validated when parsed"),
        }
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        network(
            input,
            "a trusted proxy",
            "trusting every address lets any client choose the address your apps see; name the \
             load balancer's addresses",
        )
        .map(TrustedProxy)
    }
}

validated_string! {
    /// A network whose clients a site admits (`allow`): an address or a CIDR network, matched
    /// on the client's address (the connecting one, or the one `trusted_proxies` name).
    pub struct ClientNetwork for "allow";
    schema: "An IP address or CIDR network whose clients the site admits: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32.";
}

impl ClientNetwork {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        network(
            input,
            "an allowed network",
            "that admits every address: leave allow out instead",
        )
        .map(ClientNetwork)
    }
}

/// An IP address or a CIDR network with no host bits set, in the form nginx prints (an address
/// without its /32 or /128); `every` is the rule for a /0.
fn network(input: &str, what: &str, every: &str) -> Result<String, Invalid> {
    let net = match input.parse::<IpAddr>() {
        Ok(ip) => ipnet::IpNet::from(ip),
        Err(_) => input.parse::<ipnet::IpNet>().or_else(|_| {
            invalid(
                input,
                format!("{what} is an IP address or a network in CIDR form, like 10.0.0.5 or 10.0.0.0/8"),
            )
        })?,
    };
    if net.prefix_len() == 0 {
        return invalid(input, every);
    }
    if net.trunc() != net {
        return invalid(
            input,
            format!("the host bits are set; the network is {}", net.trunc()),
        );
    }
    Ok(if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn upstreams_are_bare_http_urls() {
        check::accepted::<Upstream>(&[
            "http://app:8080",
            "https://10.0.0.5",
            "http://[2001:db8::1]:81",
        ]);
        check::canonical::<Upstream>(&[("http://app:8080/", "http://app:8080")]);
        check::refused::<Upstream>(&[
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
        ]);
    }

    #[test]
    fn upstream_blocks_get_host_and_port() {
        for (url, address, host) in [
            ("http://app", "app:80", "app"),
            ("https://app.internal", "app.internal:443", "app.internal"),
            ("http://10.0.0.5:8080", "10.0.0.5:8080", "10.0.0.5"),
            (
                "https://[2001:db8::1]",
                "[2001:db8::1]:443",
                "[2001:db8::1]",
            ),
            (
                "http://[2001:db8::1]:81",
                "[2001:db8::1]:81",
                "[2001:db8::1]",
            ),
        ] {
            let upstream = Upstream::parse(url).unwrap();
            assert_eq!(
                (upstream.server_address().as_str(), upstream.host()),
                (address, host),
                "{url}"
            );
        }
    }

    #[test]
    fn allowed_networks_are_addresses_or_networks() {
        check::accepted::<ClientNetwork>(&["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]);
        check::canonical::<ClientNetwork>(&[("192.0.2.7/32", "192.0.2.7")]);
        check::refused::<ClientNetwork>(&[
            "0.0.0.0/0",
            "::/0",
            "10.0.0.5/8",
            "office",
            "10.0.0.0/8;",
        ]);
        let err = ClientNetwork::parse("0.0.0.0/0").unwrap_err();
        assert!(err.rule.contains("leave allow out"), "{err}");
    }

    #[test]
    fn redirects_are_bare_urls() {
        check::canonical::<RedirectTarget>(&[
            ("https://example.com/", "https://example.com"),
            ("https://Example.COM:8443", "https://example.com:8443"),
        ]);
        check::refused::<RedirectTarget>(&[
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://example.com?x=1",
            "https://u@example.com",
            "https://exa mple.com",
            "https://example.com/$uri",
            "https://example.com;",
            "https://example.com:0",
        ]);
    }

    // Inside the proxy's container, the loopback address is nginx itself.
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
    fn trusted_proxies_are_addresses_or_networks() {
        check::accepted::<TrustedProxy>(&["10.0.0.5", "10.0.0.0/8", "2001:db8::/32"]);
        check::canonical::<TrustedProxy>(&[("10.0.0.5/32", "10.0.0.5")]);
        check::refused::<TrustedProxy>(&[
            "0.0.0.0/0",
            "::/0",
            "10.0.0.5/8",
            "10.0.0.0/33",
            "proxy.example",
            "10.0.0.0/8;",
        ]);
    }
}
