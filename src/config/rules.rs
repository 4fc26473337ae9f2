//! The rules that span several values; each value alone was checked when it was parsed.

use std::net::IpAddr;

use super::{
    acme, Certificate, Challenge, Config, ConfigError, Dns, Engine, Hsts, HttpMode, NginxSupport,
    RouteAuth, Satisfy, Server, Timeouts,
};
use crate::validate::{check_names, AcmeServer, DomainName};

impl Config {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        check_hsts(&self.hsts, String::new())?;
        check_dns(self.dns.as_ref(), String::new())?;
        for (i, server) in self.servers.iter().enumerate() {
            let name = server.name.as_str();
            for earlier in &self.servers[..i] {
                if earlier.name == server.name {
                    return Err(ConfigError::DuplicateServer(name.into()));
                }
                if earlier.name.project_slug() == server.name.project_slug() {
                    return Err(ConfigError::ProjectClash {
                        first: earlier.name.to_string(),
                        second: name.into(),
                        slug: server.name.project_slug(),
                    });
                }
            }
            if server.certificates.is_empty() {
                return Err(ConfigError::EmptyServer(name.into()));
            }
            if let Some(hsts) = &server.hsts {
                check_hsts(hsts, format!("server {name:?}: "))?;
            }
            check_dns(server.dns.as_ref(), format!("server {name:?}: "))?;
            check_engine(server)?;
            check_trusted_proxies(server)?;
            let settings = self.settings(server);
            acme::check_acme_servers(name, &settings)?;
            let has_dns01 = server
                .certificates
                .iter()
                .any(|c| c.challenge == Challenge::Dns01);
            if let (true, Some(dns), None) = (has_dns01, &settings.dns, &settings.dns_image) {
                return Err(ConfigError::DnsImageNeeded {
                    server: name.into(),
                    certbot: settings.images.certbot.to_string(),
                    provider: dns.provider.name(),
                });
            }
            if let Some(version) = settings.images.nginx.nginx_version() {
                if version < NginxSupport::OLDEST {
                    return Err(ConfigError::NginxTooOld {
                        server: name.into(),
                        image: settings.images.nginx.to_string(),
                        version,
                    });
                }
            }
            let lets_encrypt = [
                Some(&settings.acme_server),
                settings.fallback_acme_server.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(AcmeServer::is_lets_encrypt);
            let mut seen = Vec::new();
            let mut with_ip: Option<&Certificate> = None;
            for (index, cert) in server.certificates.iter().enumerate() {
                if lets_encrypt {
                    acme::check_public(name, &cert.domains)?;
                    acme::check_lets_encrypt_profile(name, cert, settings.profile_of(cert))?;
                }
                check_challenge(name, cert, settings.dns.is_some())?;
                if server.certificates[..index]
                    .iter()
                    .any(|earlier| earlier.name() == cert.name())
                {
                    return Err(ConfigError::SameFolder {
                        server: name.into(),
                        name: cert.name().into(),
                    });
                }
                if let Some(IpAddr::V6(ip)) = cert.domains[0].ip() {
                    return Err(ConfigError::Ipv6First {
                        server: name.into(),
                        ip: ip.to_string(),
                    });
                }
                if cert.has_ip() {
                    if let Some(first) = with_ip {
                        return Err(ConfigError::IpOnTwoCertificates {
                            server: name.into(),
                            first: first.name().to_string(),
                            second: cert.name().to_string(),
                        });
                    }
                    with_ip = Some(cert);
                }
                let joined = cert
                    .domains
                    .iter()
                    .map(DomainName::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                check_names(&joined, &cert.domains).map_err(|source| ConfigError::Names {
                    server: name.into(),
                    index: index + 1,
                    source,
                })?;
                let which = match (&cert.upstream, &cert.redirect) {
                    (Some(_), Some(_)) => Some("both"),
                    (None, None) => Some("neither"),
                    _ => None,
                };
                if let Some(which) = which {
                    return Err(ConfigError::UpstreamOrRedirect {
                        server: name.into(),
                        name: cert.name().to_string(),
                        which,
                    });
                }
                if cert.redirect.is_some() && !cert.routes.is_empty() {
                    return Err(ConfigError::RedirectForwards {
                        server: name.into(),
                        name: cert.name().to_string(),
                        key: "routes",
                    });
                }
                check_satisfy(name, cert)?;
                if !cert.has_https_upstream() {
                    // verify_upstream: false is a no-op here (notes() says so), not an error.
                    let key = cert.upstream_ca.as_ref().map(|_| "upstream_ca");
                    if let Some(key) = key {
                        return Err(ConfigError::UpstreamTlsWithoutHttps {
                            server: name.into(),
                            name: cert.name().to_string(),
                            key,
                        });
                    }
                }
                if cert.timeouts.connect.seconds() > Timeouts::MAX_CONNECT_SECONDS {
                    return Err(ConfigError::ConnectTimeout {
                        server: name.into(),
                        name: cert.name().to_string(),
                        value: cert.timeouts.connect.to_string(),
                    });
                }
                for n in &cert.domains {
                    if seen.contains(&n) {
                        return Err(ConfigError::NameOnTwoCertificates {
                            server: name.into(),
                            name: n.to_string(),
                        });
                    }
                    seen.push(n);
                }
            }
        }
        Ok(())
    }
}

/// Each trusted proxy alone is less than everything (TrustedProxy), but several can add up to it:
/// `0.0.0.0/1` and `128.0.0.0/1` trust every IPv4 client's X-Forwarded-For.
/// `satisfy: either` needs both an allow list and basic auth where it applies (the site, or a
/// route with either of its own): alone, it would silently mean what `both` means.
fn check_satisfy(server: &str, cert: &Certificate) -> Result<(), ConfigError> {
    let no_use = |key: String| ConfigError::SatisfyWithoutBoth {
        server: server.into(),
        name: cert.name().to_string(),
        key,
    };
    if cert.satisfy == Satisfy::Either && (cert.allow.is_empty() || cert.auth.is_none()) {
        return Err(no_use("satisfy".into()));
    }
    for (prefix, route) in &cert.routes {
        let has_allow = !route.allow.as_ref().unwrap_or(&cert.allow).is_empty();
        let has_auth = match &route.auth {
            Some(auth) => *auth != RouteAuth::Off,
            None => cert.auth.is_some(),
        };
        if route.satisfy == Some(Satisfy::Either) && !(has_allow && has_auth) {
            return Err(no_use(format!("routes.{prefix}.satisfy")));
        }
    }
    Ok(())
}

fn check_trusted_proxies(server: &Server) -> Result<(), ConfigError> {
    let nets: Vec<ipnet::IpNet> = server.trusted_proxies.iter().map(|p| p.net()).collect();
    match ipnet::IpNet::aggregate(&nets)
        .into_iter()
        .find(|net| net.prefix_len() == 0)
    {
        Some(ipnet::IpNet::V4(_)) => Err(ConfigError::TrustAll(server.name.to_string(), "IPv4")),
        Some(ipnet::IpNet::V6(_)) => Err(ConfigError::TrustAll(server.name.to_string(), "IPv6")),
        None => Ok(()),
    }
}

/// A wildcard needs DNS-01, DNS-01 needs a provider, and an IP address cannot use it.
fn check_challenge(server: &str, cert: &Certificate, has_dns: bool) -> Result<(), ConfigError> {
    match cert.challenge {
        Challenge::Http01 => {
            if let Some(wildcard) = cert.domains.iter().find(|d| d.is_wildcard()) {
                return Err(ConfigError::WildcardNeedsDns {
                    server: server.into(),
                    name: cert.name().into(),
                    wildcard: wildcard.to_string(),
                });
            }
        }
        Challenge::Dns01 => {
            if !has_dns {
                return Err(ConfigError::DnsWithoutProvider {
                    server: server.into(),
                    name: cert.name().into(),
                });
            }
            if let Some(ip) = cert.domains.iter().find(|d| d.ip().is_some()) {
                return Err(ConfigError::IpOverDns {
                    server: server.into(),
                    name: cert.name().into(),
                    ip: ip.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn check_dns(dns: Option<&Dns>, place: String) -> Result<(), ConfigError> {
    match dns {
        Some(dns)
            if dns.propagation_seconds.is_some() && !dns.provider.takes_propagation_seconds() =>
        {
            Err(ConfigError::PropagationForRoute53 { place })
        }
        _ => Ok(()),
    }
}

/// The longest server name a swarm stack holds: Docker service names are at most 63 characters,
/// and the longest is `certgen-SLUG_challenge`.
const MAX_SWARM_SLUG: usize = 63 - "certgen-".len() - "_challenge".len();

/// The keys that make sense only with one engine.
fn check_engine(server: &Server) -> Result<(), ConfigError> {
    let name = server.name.to_string();
    match server.engine {
        Engine::Swarm if server.http == Some(HttpMode::OnDemand) => {
            Err(ConfigError::SwarmOnDemand(name))
        }
        Engine::Compose if server.node_label.is_some() => {
            Err(ConfigError::NodeLabelWithoutSwarm(name))
        }
        Engine::Swarm if server.name.project_slug().len() > MAX_SWARM_SLUG => {
            Err(ConfigError::SwarmNameTooLong {
                slug: server.name.project_slug(),
                name,
                max: MAX_SWARM_SLUG,
            })
        }
        _ => Ok(()),
    }
}

fn check_hsts(hsts: &Hsts, place: String) -> Result<(), ConfigError> {
    let preloadable = hsts.include_subdomains && hsts.max_age >= Hsts::PRELOAD_MIN_MAX_AGE;
    if hsts.preload && !preloadable {
        return Err(ConfigError::HstsPreload { place });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::DnsProvider;
    use crate::config::Route;
    use crate::validate::{ImageRef, TrustedProxy};

    #[test]
    fn the_dns_image_follows_the_certbot_image_tag() {
        let dns = Dns {
            provider: DnsProvider::Rfc2136,
            propagation_seconds: None,
            image: None,
        };
        // Only Docker Hub's certbot/certbot names its plugin image; a mirror, a
        // digest or an image of one's own needs dns.image (Config::check says so).
        for (certbot, expected) in [
            ("certbot/certbot:v5.8.0", Some("certbot/dns-rfc2136:v5.8.0")),
            ("docker.io/certbot/certbot:v5.9.1", Some("certbot/dns-rfc2136:v5.9.1")),
            ("registry.example.com:5000/certbot:v5.9.1", None),
            ("registry.internal.example:5000/mirror/certbot:v5.8.0@sha256:0123456789012345678901234567890123456789012345678901234567890123", None),
            ("certbot/certbot@sha256:0123456789012345678901234567890123456789012345678901234567890123", None),
            ("myorg/certbot:local", None),
        ] {
            let image = dns.image(&ImageRef::parse(certbot).unwrap());
            assert_eq!(image.as_ref().map(ImageRef::as_str), expected, "{certbot}");
        }
        let mut c = config(vec![server("a", vec![cert(&["a.example.com"])])]);
        c.servers[0].certificates[0].challenge = Challenge::Dns01;
        c.dns = Some(dns.clone());
        c.images.certbot = ImageRef::parse("myorg/certbot:local").unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("set dns.image") && err.contains("myorg/certbot:local"),
            "{err}"
        );
        c.dns = Some(Dns {
            image: Some(ImageRef::parse("myorg/certbot-rfc2136:local").unwrap()),
            ..dns
        });
        c.check().unwrap();
    }

    // A site forwards or redirects: both, neither, or a redirect with routes is an error that
    // says which.
    #[test]
    fn a_site_has_an_upstream_or_a_redirect() {
        let target = crate::validate::RedirectTarget::parse("https://example.com").unwrap();
        let mut c = config(vec![server("a", vec![cert(&["old.example.com"])])]);
        c.servers[0].certificates[0].redirect = Some(target);
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("an upstream") && err.contains("not both"),
            "{err}"
        );
        c.servers[0].certificates[0].upstream = None;
        c.check().unwrap();
        let api = crate::validate::Upstream::parse("http://api:8080").unwrap();
        let prefix = crate::validate::PathPrefix::parse("/api/").unwrap();
        c.servers[0].certificates[0]
            .routes
            .insert(prefix, Route::to(api));
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("routes has no use there"), "{err}");
        c.servers[0].certificates[0].routes.clear();
        c.servers[0].certificates[0].redirect = None;
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("not neither"), "{err}");
    }

    #[test]
    fn cross_value_rules() {
        assert!(matches!(
            config(vec![]).check(),
            Err(ConfigError::NoServers)
        ));
        let dup = config(vec![
            server("a", vec![cert(&["a.example.com"])]),
            server("a", vec![cert(&["b.example.com"])]),
        ]);
        assert!(matches!(dup.check(), Err(ConfigError::DuplicateServer(_))));
        let clash = config(vec![
            server("a.b", vec![cert(&["a.example.com"])]),
            server("a-b", vec![cert(&["b.example.com"])]),
        ]);
        assert!(matches!(
            clash.check(),
            Err(ConfigError::ProjectClash { .. })
        ));
        assert!(matches!(
            config(vec![server("a", vec![])]).check(),
            Err(ConfigError::EmptyServer(_))
        ));
        let twice = config(vec![server(
            "a",
            vec![
                cert(&["a.example.com"]),
                cert(&["b.example.com", "a.example.com"]),
            ],
        )]);
        assert!(matches!(
            twice.check(),
            Err(ConfigError::NameOnTwoCertificates { .. })
        ));
        // Each trusted proxy less than everything, together every IPv4 address.
        let mut halves = config(vec![server("a", vec![cert(&["a.example.com"])])]);
        halves.servers[0].trusted_proxies = ["0.0.0.0/1", "10.0.0.5", "128.0.0.0/1"]
            .iter()
            .map(|p| TrustedProxy::parse(p).unwrap())
            .collect();
        let err = halves.check().unwrap_err().to_string();
        assert!(err.contains("cover every IPv4 address"), "{err}");
        halves.servers[0].trusted_proxies.remove(0);
        halves.check().unwrap();
    }

    // `satisfy: either` alone would mean what `both` means: an error that names where.
    #[test]
    fn satisfy_either_needs_an_allow_list_and_auth() {
        let yaml = |site: &str, route: &str| {
            format!(
                "renew_schedule: 1 2,14 * * *\nservers:\n- name: a\n  certificates:\n  - domains: [a.example.com]\n    upstream: http://app:80\n{site}    routes:\n      /health/: {{upstream: http://app:80{route}}}\n"
            )
        };
        let check = |site: &str, route: &str| {
            let text = yaml(site, route);
            Config::from_yaml(&text, std::path::Path::new("c.yaml"))
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let both = "    allow: [10.0.0.0/8]\n    auth: {users: staff}\n";
        check(&format!("{both}    satisfy: either\n"), "").unwrap();
        let err = check("    allow: [10.0.0.0/8]\n    satisfy: either\n", "").unwrap_err();
        assert!(err.contains("satisfy: either lets a client in"), "{err}");
        // A route that turns auth off has nothing to be either with.
        let err = check(both, ", auth: off, satisfy: either").unwrap_err();
        assert!(err.contains("routes./health/.satisfy"), "{err}");
        // Its own allow list and the site's auth: either applies.
        check(
            "    auth: {users: staff}\n",
            ", allow: [10.0.0.2], satisfy: either",
        )
        .unwrap();
    }
}
