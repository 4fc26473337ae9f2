//! What a config that breaks a rule across values is told: one variant a rule, its message naming
//! the key, the value and what is allowed.

use super::{Hsts, NginxSupport, DEFAULT_NGINX_IMAGE};
use crate::validate::{Invalid, NginxVersion};

/// The rules that span several values (each value alone was checked when it was parsed).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no servers: certgen.yaml needs at least one server under `servers`")]
    NoServers,
    #[error(
        "server {server:?}: images.nginx {image} is nginx {version}, older than {oldest}, the \
         oldest that accepts the generated configuration (`http2 on;`): use {pinned} (the series \
         certgen pins) or any nginx from {oldest} on",
        oldest = NginxSupport::OLDEST,
        pinned = DEFAULT_NGINX_IMAGE
    )]
    NginxTooOld {
        server: String,
        image: String,
        version: NginxVersion,
    },
    #[error(
        "server {0:?}: trusted_proxies together cover every {1} address, so any client could \
         choose the address your apps see (X-Forwarded-For); name the load balancer's addresses"
    )]
    TrustAll(String, &'static str),
    #[error(
        "server {server:?}, certificate {name}: give its site an upstream (where it forwards) or a \
         redirect (where it sends visitors), not {which}"
    )]
    UpstreamOrRedirect {
        server: String,
        name: String,
        which: &'static str,
    },
    #[error(
        "server {server:?}, certificate {name}: a redirect site forwards nothing, so {key} has no \
         use there; remove it, or give the site an upstream instead of the redirect"
    )]
    RedirectForwards {
        server: String,
        name: String,
        key: &'static str,
    },
    #[error(
        "server {server:?}, certificate {name}: {key}: either lets a client in that passes the \
         allow list or basic auth, so it needs both there; give it allow and auth, or remove {key}"
    )]
    SatisfyWithoutBoth {
        server: String,
        name: String,
        key: String,
    },
    #[error(
        "server {server:?}: the ACME server {ca} ({setting}) registers no account without \
         External Account Binding: set `{key}: {{kid: KID}}` (on the server or globally{init}) \
         and put the HMAC key in {server}/secrets/{file} on the server. Both come from {from}"
    )]
    EabNeeded {
        server: String,
        ca: &'static str,
        /// `acme_server` or `fallback_acme_server`, and its EAB key and file.
        setting: &'static str,
        key: &'static str,
        file: &'static str,
        init: &'static str,
        from: &'static str,
    },
    #[error(
        "server {server:?}: fallback_acme_server is {url}, the same as acme_server: a fallback \
         must be another CA (or remove it)"
    )]
    FallbackIsPrimary { server: String, url: String },
    #[error(
        "server {server:?}: fallback_eab is set without a fallback_acme_server it would register \
         at: set fallback_acme_server, or remove fallback_eab"
    )]
    FallbackEabAlone { server: String },
    #[error("server {0:?} is listed twice under `servers`; server names must be unique")]
    DuplicateServer(String),
    #[error("server {0:?} has no certificates; give it at least one under `certificates`")]
    EmptyServer(String),
    #[error("server {server:?}, certificate {index}: {source}")]
    Names {
        server: String,
        index: usize,
        source: Invalid,
    },
    #[error(
        "server {server:?}: {name} is on two certificates; a name belongs to one certificate per server"
    )]
    NameOnTwoCertificates { server: String, name: String },
    #[error(
        "{place}hsts: preload needs include_subdomains: true and a max_age of at least \
         {min} (one year): the HSTS preload list refuses anything less. Turn preload off, or \
         read what preloading commits every subdomain to first (README, HSTS)",
        min = Hsts::PRELOAD_MIN_MAX_AGE
    )]
    HstsPreload { place: String },
    #[error(
        "server {server:?}, certificate {name}: timeouts.connect {value} is longer than nginx \
         waits to connect (75s at most)"
    )]
    ConnectTimeout {
        server: String,
        name: String,
        value: String,
    },
    #[error(
        "server {server:?}: {name} is not under a public suffix (.{suffix} is none), and Let's \
         Encrypt issues only for public names; use a private ACME server (acme_server, \
         acme_ca_bundle) for internal names"
    )]
    NotPublic {
        server: String,
        name: String,
        suffix: String,
    },
    #[error(
        "server {server:?}, certificate {name}: {count} names, and Let's Encrypt's {profile} \
         profile allows at most {max} on one certificate; split it, or use the classic profile \
         (100)"
    )]
    TooManyNamesForProfile {
        server: String,
        name: String,
        count: usize,
        profile: String,
        max: usize,
    },
    #[error(
        "server {server:?}, certificate {name}: {ip} is an IP address, which Let's Encrypt \
         issues only with its shortlived profile (6-day certificates): set `profile: shortlived` \
         on this certificate{current}, or give init --profile shortlived"
    )]
    IpNeedsShortlived {
        server: String,
        name: String,
        ip: String,
        current: String,
    },
    #[error(
        "server {server:?}: {ip} is not a public address (private, loopback, link-local, \
         shared or documentation), and Let's Encrypt validates from the internet; use a private \
         ACME server (acme_server) for it"
    )]
    IpNotPublic { server: String, ip: String },
    #[error(
        "server {server:?}: certificates {first} and {second} both hold IP addresses; a client \
         that connects to an IP address sends no name (no SNI), so the proxy can serve one such \
         certificate only: put the addresses on one certificate"
    )]
    IpOnTwoCertificates {
        server: String,
        first: String,
        second: String,
    },
    #[error(
        "server {server:?}: {ip} cannot come first on its certificate: the first name is the \
         certificate's folder, and an IPv6 address does not make one; put a DNS name or an IPv4 \
         address first"
    )]
    Ipv6First { server: String, ip: String },
    #[error(
        "server {server:?}, certificate {name}: {wildcard} is a wildcard, which Let's Encrypt \
         and certbot prove only with DNS-01: set `challenge: dns-01` on this certificate (and a \
         `dns:` provider), or give init --dns PROVIDER"
    )]
    WildcardNeedsDns {
        server: String,
        name: String,
        wildcard: String,
    },
    #[error(
        "server {server:?}, certificate {name}: challenge: dns-01 needs a DNS provider: add \
         `dns: {{provider: rfc2136}}` (or cloudflare, route53, ...) to the server or at the top"
    )]
    DnsWithoutProvider { server: String, name: String },
    #[error(
        "server {server:?}: images.certbot {certbot} is not Docker Hub's certbot/certbot, so \
         certgen cannot tell which image holds the {provider} plugin: set dns.image (a mirror of \
         certbot/dns-{provider} at the same certbot version, pinned like the certbot image)"
    )]
    DnsImageNeeded {
        server: String,
        certbot: String,
        provider: String,
    },
    #[error(
        "server {server:?}, certificate {name}: {ip} is an IP address, which ACME proves over \
         HTTP only (RFC 8738 has no DNS-01 for addresses): put it on an http-01 certificate"
    )]
    IpOverDns {
        server: String,
        name: String,
        ip: String,
    },
    #[error(
        "{place}dns: the route53 plugin has no propagation_seconds (it asks Route 53 when the \
         change is live); remove it"
    )]
    PropagationForRoute53 { place: String },
    #[error(
        "server {server:?}: two certificates would both be filed as {name} (a wildcard's folder \
         is its name without `*.`, as certbot does): put their names on one certificate, or \
         another name first"
    )]
    SameFolder { server: String, name: String },
    #[error(
        "server {server:?}, certificate {name}: {key} applies to https:// upstreams, and this \
         site has none; remove it"
    )]
    UpstreamTlsWithoutHttps {
        server: String,
        name: String,
        key: &'static str,
    },
    #[error(
        "server {0:?}: http: on-demand starts a temporary nginx on port 80 of the machine that \
         orders, but on a swarm (engine: swarm) Let's Encrypt may reach any proxy node: the \
         proxies hold port 80 and forward the challenge to the manager. Remove `http` from this \
         server (or --http on-demand from init): swarm servers always use redirect"
    )]
    SwarmOnDemand(String),
    #[error(
        "server {0:?}: node_label chooses the nodes of a swarm that run the proxy, and this \
         server has no `engine: swarm`; remove node_label, or add engine: swarm"
    )]
    NodeLabelWithoutSwarm(String),
    #[error(
        "server {name:?}: with engine: swarm its services are named certgen-{slug}_challenge, \
         and Docker allows 63 characters: shorten the server name to {max} characters or fewer"
    )]
    SwarmNameTooLong {
        name: String,
        slug: String,
        max: usize,
    },
    #[error(
        "servers {first:?} and {second:?} would share the compose project names certgen-{slug}-*; \
         rename one"
    )]
    ProjectClash {
        first: String,
        second: String,
        slug: String,
    },
}
