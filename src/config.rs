//! The config model: what `certgen.yaml` holds, and the context every template renders from.
//!
//! Every field is a validated type from [`crate::validate`], so a `Config` that exists is safe
//! to render. Global settings apply to every server; a server may override the ones that differ
//! between machines (ACME server, contact, images, schedule, TLS profile). [`Config::settings`]
//! resolves them, once, for the templates.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{
    check_names, is_public_ip, AcmeServer, CronSchedule, DeployPath, DomainName, Email, ImageRef,
    Invalid, NetworkName, NginxSize, NginxTime, NginxVersion, NodeLabel, PathPrefix, PemBundle,
    ProfileName, ServerName, TrustedProxy, Upstream, UpstreamCa, MAX_NAMES_PER_CERTIFICATE,
};
use crate::BadInput;

/// The nginx image certgen pins: the 1.30 stable series is the oldest that accepts everything the
/// templates emit (`http2 on;` needs 1.25.1, `X25519MLKEM768` needs OpenSSL 3.5, which the
/// official 1.30 images carry). `.ci/setup` builds a stand-in of the same series.
pub const DEFAULT_NGINX_IMAGE: &str = "nginx:1.30";
/// The certbot image certgen pins: 5.x has ACME renewal information (ARI) and profiles.
pub const DEFAULT_CERTBOT_IMAGE: &str = "certbot/certbot:v5.8.0";
/// Where sites forward when no upstream is given: a port published on the Docker host.
pub const DEFAULT_UPSTREAM: &str = "http://host.docker.internal:8080";

/// All of `certgen.yaml`. Unknown keys are errors, so a typo cannot be silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Contact address for the ACME account (the CA's policy and incident mail; Let's Encrypt no
    /// longer sends expiry notices). None registers without one.
    #[serde(default)]
    pub email: Option<Email>,
    /// The ACME directory URL.
    #[serde(default = "AcmeServer::lets_encrypt")]
    pub acme_server: AcmeServer,
    /// PEM certificates the certbot containers trust for `acme_server` (private CAs).
    #[serde(default)]
    pub acme_ca_bundle: Option<PemBundle>,
    #[serde(default)]
    pub key_type: KeyType,
    #[serde(default)]
    pub tls: TlsProfile,
    /// Who holds port 80: certbot's temporary nginx while it orders, or the proxy, always.
    #[serde(default)]
    pub http: HttpMode,
    #[serde(default)]
    pub hsts: Hsts,
    /// status.sh warns when a certificate has fewer days left; unset, when less than a third of
    /// its lifetime is left (right for 90-, 64-, 45- and 6-day certificates alike).
    #[serde(default)]
    pub warn_days: Option<WarnDays>,
    /// Ping a monitor after every renewal run (success at the URL, failure at URL/fail). The URL
    /// is a secret: it lives on each server, in `secrets/notify-url`, never here.
    #[serde(default)]
    pub notify: bool,
    /// The ACME profile certificates are ordered with; unset, the CA's default.
    #[serde(default)]
    pub profile: Option<ProfileName>,
    /// How `challenge: dns-01` certificates prove their names: the DNS provider's certbot
    /// plugin, and its credentials file on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default)]
    pub images: Images,
    /// When `renew/run.sh` runs, as a cron schedule.
    pub renew_schedule: CronSchedule,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Images {
    #[serde(default = "default_nginx")]
    pub nginx: ImageRef,
    #[serde(default = "default_certbot")]
    pub certbot: ImageRef,
}

fn default_nginx() -> ImageRef {
    ImageRef::parse(DEFAULT_NGINX_IMAGE).expect("valid default")
}

fn default_certbot() -> ImageRef {
    ImageRef::parse(DEFAULT_CERTBOT_IMAGE).expect("valid default")
}

impl Default for Images {
    fn default() -> Self {
        Images {
            nginx: default_nginx(),
            certbot: default_certbot(),
        }
    }
}

/// A server's own images, where they differ from the global ones (a registry mirror).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certbot: Option<ImageRef>,
}

/// The private key type of every certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    #[default]
    Ecdsa,
    Rsa,
}

/// Mozilla's server-side TLS profiles: `intermediate` (TLS 1.2 and 1.3, for general-purpose
/// servers) or `modern` (TLS 1.3 only, for clients of the last few years).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsProfile {
    #[default]
    Intermediate,
    Modern,
}

/// Who answers on port 80.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum HttpMode {
    /// Port 80 is open only while certbot orders a certificate (the blog's choice: nothing
    /// answers plain HTTP the rest of the time).
    #[default]
    OnDemand,
    /// The proxy holds port 80: it answers the ACME challenge and redirects everything else to
    /// HTTPS (Let's Encrypt's recommendation for public sites).
    Redirect,
}

/// What runs a server's proxy.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Docker Compose on one machine.
    #[default]
    Compose,
    /// Docker Swarm: a proxy on every node with `node_label`, deployed with `docker stack
    /// deploy` from the manager that holds the tree; certificates reach the nodes as Swarm
    /// secrets, the nginx configuration as Swarm configs, rolled out one node at a time.
    Swarm,
}

impl Engine {
    fn is_compose(&self) -> bool {
        *self == Engine::Compose
    }
}

/// HTTP Strict Transport Security: browsers that saw the header use only HTTPS for the site
/// for `max_age` seconds, so a man in the middle cannot strip TLS. `max_age: 0` sends none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    #[serde(default = "Hsts::default_max_age")]
    pub max_age: u64,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
}

impl Hsts {
    /// Two years: what the HSTS preload list and Mozilla recommend.
    pub const DEFAULT_MAX_AGE: u64 = 63_072_000;
    /// The preload list's minimum: one year.
    pub const PRELOAD_MIN_MAX_AGE: u64 = 31_536_000;

    fn default_max_age() -> u64 {
        Self::DEFAULT_MAX_AGE
    }

    /// The `Strict-Transport-Security` value, or None when HSTS is off.
    pub fn header(&self) -> Option<String> {
        if self.max_age == 0 {
            return None;
        }
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        Some(value)
    }
}

impl Default for Hsts {
    fn default() -> Self {
        Hsts {
            max_age: Self::DEFAULT_MAX_AGE,
            include_subdomains: false,
            preload: false,
        }
    }
}

/// A whole number of a config key within bounds: parsed through `u32` (serde's `try_from`), its
/// error naming the key and the rule, its schema an integer with those bounds.
macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, $key:literal, $min:literal..=$max:literal, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "serde_yaml::Value", into = "u32")]
        pub struct $name(u32);

        // From YAML: a negative number, a fraction or text gets the rule too, not serde's
        // "expected u32".
        impl TryFrom<serde_yaml::Value> for $name {
            type Error = Invalid;
            fn try_from(value: serde_yaml::Value) -> Result<Self, Invalid> {
                let number = value.as_u64().and_then(|n| u32::try_from(n).ok());
                number.map_or_else(
                    || {
                        let shown = match value.as_str() {
                            Some(text) => text.to_string(),
                            None => serde_yaml::to_string(&value).unwrap_or_default().trim().to_string(),
                        };
                        Err(Invalid {
                            what: $key,
                            value: shown,
                            rule: $rule.into(),
                        })
                    },
                    $name::try_from,
                )
            }
        }

        impl TryFrom<u32> for $name {
            type Error = Invalid;
            fn try_from(value: u32) -> Result<Self, Invalid> {
                if ($min..=$max).contains(&value) {
                    Ok($name(value))
                } else {
                    Err(Invalid {
                        what: $key,
                        value: value.to_string(),
                        rule: $rule.into(),
                    })
                }
            }
        }

        impl From<$name> for u32 {
            fn from(value: $name) -> u32 {
                value.0
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "integer", "minimum": $min, "maximum": $max })
            }
        }
    };
}

bounded_u32!(
    /// A number of days, 1 to 3650.
    WarnDays,
    "warn_days",
    1..=3650,
    "a number of days from 1 to 3650 (or leave it unset: a third of each certificate's lifetime)"
);

/// One machine: its tree is written to `OUT/<name>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: ServerName,
    /// The absolute path of the infra folder (the one holding certgen.yaml) on this server, for
    /// the crontab file and the README. Unset, the tree works wherever it is cloned, and
    /// `renew/run.sh --install-cron` writes the cron line with the path it has there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_path: Option<DeployPath>,
    /// `compose` (one machine) or `swarm` (a proxy on every labelled node of a Docker Swarm).
    #[serde(default, skip_serializing_if = "Engine::is_compose")]
    pub engine: Engine,
    /// `engine: swarm`: the proxies run on the nodes with this label set to `true`; unset,
    /// `certgen.proxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_label: Option<NodeLabel>,
    /// Overrides the global `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// Overrides the global `acme_server`. The global CA bundle then does not apply: give this
    /// server's own `acme_ca_bundle` if its ACME server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_server: Option<AcmeServer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_ca_bundle: Option<PemBundle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageOverrides>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_schedule: Option<CronSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<Hsts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<WarnDays>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Existing Docker networks the proxy joins, so upstreams can be named by container.
    #[serde(default)]
    pub networks: Vec<NetworkName>,
    /// Addresses in front of the proxy (a load balancer) whose `X-Forwarded-For` names the
    /// client. Empty: the proxy is the edge, and the connecting address is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<TrustedProxy>,
    pub certificates: Vec<Certificate>,
}

/// One certificate, and the site the proxy serves with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The names on the certificate; the first is the certificate's name (its `live/` folder).
    pub domains: Vec<DomainName>,
    /// Where the site forwards `/`.
    pub upstream: Upstream,
    /// Path prefixes forwarded elsewhere: `/api/: http://api:8080`.
    #[serde(default)]
    pub routes: BTreeMap<PathPrefix, Upstream>,
    /// The largest request body the site accepts (nginx's own default, 1 MB, fails uploads).
    #[serde(default = "Certificate::default_max_body_size")]
    pub max_body_size: NginxSize,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Whether the certificates of `https://` upstreams are verified (their chain and name).
    #[serde(default = "Certificate::default_verify_upstream")]
    pub verify_upstream: bool,
    /// CA certificates that `https://` upstreams chain to, instead of the system's (a private CA).
    #[serde(default)]
    pub upstream_ca: Option<UpstreamCa>,
    /// This certificate's ACME profile, instead of the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileName>,
    /// How its names are proven: `http-01` (certbot's webroot, port 80) or `dns-01` (a TXT record
    /// through the server's `dns` provider: wildcards, and no port 80 at all).
    #[serde(default)]
    pub challenge: Challenge,
}

/// How a certificate's names are proven to the ACME server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Challenge {
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "dns-01")]
    Dns01,
}

/// A DNS provider, as certbot's DNS plugins name them: each has an official `certbot/dns-NAME`
/// image. `rfc2136` speaks dynamic updates (BIND, PowerDNS, Knot, many hosted services).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DnsProvider {
    Cloudflare,
    Digitalocean,
    Dnsimple,
    Dnsmadeeasy,
    Gehirn,
    Google,
    Linode,
    Luadns,
    Nsone,
    Ovh,
    Rfc2136,
    Route53,
    Sakuracloud,
}

impl DnsProvider {
    /// The plugin's name, as in `--dns-NAME` and `certbot/dns-NAME`.
    pub fn name(&self) -> String {
        serde_yaml::to_string(self)
            .expect("a provider serializes")
            .trim()
            .to_string()
    }

    /// Whether the plugin waits a fixed time for the record to propagate
    /// (`--dns-NAME-propagation-seconds`); route53 asks Route 53 when the change is live.
    pub fn takes_propagation_seconds(&self) -> bool {
        *self != DnsProvider::Route53
    }
}

/// The DNS-01 settings: the provider, how long to wait for its records to reach every
/// authoritative server, and the image with its certbot plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    pub provider: DnsProvider,
    /// Seconds certbot waits after creating the TXT records (the plugin's default when unset).
    #[serde(default)]
    pub propagation_seconds: Option<PropagationSeconds>,
    /// The certbot image with the provider's plugin [default: certbot/dns-PROVIDER at the tag
    /// of the certbot image, when that is Docker Hub's certbot/certbot; needed otherwise].
    #[serde(default)]
    pub image: Option<ImageRef>,
}

impl Dns {
    /// The image certbot runs in for this provider: `image`, or, when the certbot image is the
    /// official `certbot/certbot` at a tag, the official `certbot/dns-PROVIDER` at that tag, so
    /// both run one certbot. None otherwise: a mirror, a digest or an image of your own names no
    /// plugin image certgen could guess, and a guess would pull an unpinned image from Docker Hub.
    pub fn image(&self, certbot: &ImageRef) -> Option<ImageRef> {
        if let Some(image) = &self.image {
            return Some(image.clone());
        }
        let name = certbot
            .as_str()
            .strip_prefix("docker.io/")
            .unwrap_or(certbot.as_str());
        let tag = name.strip_prefix("certbot/certbot:")?;
        ImageRef::parse(&format!("certbot/dns-{}:{tag}", self.provider.name())).ok()
    }
}

bounded_u32!(
    /// Seconds, 1 to 3600.
    PropagationSeconds,
    "propagation_seconds",
    1..=3600,
    "a number of seconds from 1 to 3600"
);

/// How long the proxy waits for an upstream: to connect, between two reads of its answer (a
/// WebSocket or a long poll is idle that long at most), between two writes of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default = "Timeouts::default_connect")]
    pub connect: NginxTime,
    #[serde(default = "Timeouts::default_read")]
    pub read: NginxTime,
    #[serde(default = "Timeouts::default_send")]
    pub send: NginxTime,
}

impl Timeouts {
    /// nginx does not wait longer than 75 s to connect, whatever the setting.
    pub const MAX_CONNECT_SECONDS: f64 = 75.0;

    fn default_connect() -> NginxTime {
        NginxTime::parse("10s").expect("valid default")
    }

    fn default_read() -> NginxTime {
        NginxTime::parse("60s").expect("valid default")
    }

    fn default_send() -> NginxTime {
        NginxTime::parse("60s").expect("valid default")
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Self::default_connect(),
            read: Self::default_read(),
            send: Self::default_send(),
        }
    }
}

impl Server {
    /// A server with the global settings, no overrides.
    pub fn new(
        name: ServerName,
        deploy_path: Option<DeployPath>,
        certificates: Vec<Certificate>,
    ) -> Server {
        Server {
            name,
            deploy_path,
            engine: Engine::Compose,
            node_label: None,
            email: None,
            acme_server: None,
            acme_ca_bundle: None,
            key_type: None,
            tls: None,
            images: None,
            renew_schedule: None,
            http: None,
            hsts: None,
            warn_days: None,
            notify: None,
            profile: None,
            dns: None,
            networks: Vec::new(),
            trusted_proxies: Vec::new(),
            certificates,
        }
    }
}

impl Certificate {
    /// The default body size: generous for uploads, still a limit.
    pub const DEFAULT_MAX_BODY_SIZE: &'static str = "100m";

    /// A certificate with the default site options.
    pub fn new(domains: Vec<DomainName>, upstream: Upstream) -> Certificate {
        Certificate {
            domains,
            upstream,
            routes: BTreeMap::new(),
            max_body_size: Self::default_max_body_size(),
            timeouts: Timeouts::default(),
            verify_upstream: true,
            upstream_ca: None,
            profile: None,
            challenge: Challenge::Http01,
        }
    }

    fn default_verify_upstream() -> bool {
        true
    }

    /// Does the site forward anything to an `https://` upstream?
    pub fn has_https_upstream(&self) -> bool {
        std::iter::once(&self.upstream)
            .chain(self.routes.values())
            .any(|u| u.as_str().starts_with("https://"))
    }

    fn default_max_body_size() -> NginxSize {
        NginxSize::parse(Self::DEFAULT_MAX_BODY_SIZE).expect("valid default")
    }

    /// The certificate's name: its folder under `live/`, the first name (a wildcard without
    /// its `*.`, as certbot names it).
    pub fn name(&self) -> &str {
        self.domains[0].lineage()
    }

    /// Whether an IP address is among its names.
    pub fn has_ip(&self) -> bool {
        self.domains.iter().any(|d| d.ip().is_some())
    }
}

impl Settings {
    /// The ACME profile `cert` is ordered with: its own, else the server's (or the global) one.
    pub fn profile_of<'a>(&'a self, cert: &'a Certificate) -> Option<&'a ProfileName> {
        cert.profile.as_ref().or(self.profile.as_ref())
    }
}

/// The settings in force for one server: the global ones with the server's overrides applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub email: Option<Email>,
    pub acme_server: AcmeServer,
    pub acme_ca_bundle: Option<PemBundle>,
    pub key_type: KeyType,
    pub tls: TlsProfile,
    pub http: HttpMode,
    pub hsts: Hsts,
    /// The `Strict-Transport-Security` header value, or None when HSTS is off.
    pub hsts_header: Option<String>,
    pub warn_days: Option<WarnDays>,
    /// Whether renew/run.sh pings the monitor whose URL is in the server's secrets/notify-url.
    pub notify: bool,
    pub profile: Option<ProfileName>,
    pub dns: Option<Dns>,
    /// The image of `dns`'s plugin, when there is a `dns`.
    pub dns_image: Option<ImageRef>,
    pub images: Images,
    /// What the proxy's nginx image accepts, from the version its tag names.
    pub nginx: NginxSupport,
    pub renew_schedule: CronSchedule,
    /// The node label of a swarm server's proxies; None on compose.
    pub node_label: Option<NodeLabel>,
}

/// What a server's nginx image accepts of what the templates can emit, from the version its tag
/// names. An image whose tag names none (a digest, a mirror's own tag) is taken to be of the
/// pinned series: apply.sh and the swarm rollout run `nginx -t` in it before it replaces the
/// running proxy, so an image that refuses the configuration never takes the proxy down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NginxSupport {
    /// The post-quantum hybrid group X25519MLKEM768: OpenSSL 3.5, which the official images
    /// carry from nginx 1.30 on (1.28's are on OpenSSL 3.0).
    pub post_quantum: bool,
    /// `add_header_inherit merge;` (nginx 1.29.3).
    pub header_inherit: bool,
}

impl NginxSupport {
    /// The oldest nginx the templates work with at all: `http2 on;` needs 1.25.1.
    pub const OLDEST: NginxVersion = NginxVersion(1, 25, 1);

    fn of(image: &ImageRef) -> NginxSupport {
        let at_least = |v| image.nginx_version().map_or(true, |have| have >= v);
        NginxSupport {
            post_quantum: at_least(NginxVersion(1, 30, 0)),
            header_inherit: at_least(NginxVersion(1, 29, 3)),
        }
    }
}

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
                AcmeServer::lets_encrypt(),
                AcmeServer::lets_encrypt_staging(),
            ]
            .contains(&settings.acme_server);
            let mut seen = Vec::new();
            let mut with_ip: Option<&Certificate> = None;
            for (index, cert) in server.certificates.iter().enumerate() {
                if lets_encrypt {
                    check_public(name, &cert.domains)?;
                    check_lets_encrypt_profile(name, cert, settings.profile_of(cert))?;
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
                if !cert.has_https_upstream() {
                    let key = match (&cert.upstream_ca, cert.verify_upstream) {
                        (Some(_), _) => Some("upstream_ca"),
                        (None, false) => Some("verify_upstream: false"),
                        (None, true) => None,
                    };
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

    /// The settings in force for `server`.
    pub fn settings(&self, server: &Server) -> Settings {
        let overrides = server.images.clone().unwrap_or_default();
        // A CA bundle belongs to an ACME server: a server with its own ACME server does not
        // inherit the global bundle (it would replace the system's trust for that server).
        let acme_ca_bundle = match &server.acme_server {
            Some(_) => server.acme_ca_bundle.clone(),
            None => server
                .acme_ca_bundle
                .clone()
                .or_else(|| self.acme_ca_bundle.clone()),
        };
        let hsts = server.hsts.unwrap_or(self.hsts);
        let nginx = overrides
            .nginx
            .clone()
            .unwrap_or_else(|| self.images.nginx.clone());
        let dns = server.dns.clone().or_else(|| self.dns.clone());
        let certbot = overrides
            .certbot
            .clone()
            .unwrap_or_else(|| self.images.certbot.clone());
        Settings {
            email: server.email.clone().or_else(|| self.email.clone()),
            acme_server: server
                .acme_server
                .clone()
                .unwrap_or_else(|| self.acme_server.clone()),
            acme_ca_bundle,
            key_type: server.key_type.unwrap_or(self.key_type),
            tls: server.tls.unwrap_or(self.tls),
            // On a swarm the proxies hold port 80: check refuses an explicit on-demand there.
            http: match server.engine {
                Engine::Swarm => HttpMode::Redirect,
                Engine::Compose => server.http.unwrap_or(self.http),
            },
            hsts,
            hsts_header: hsts.header(),
            warn_days: server.warn_days.or(self.warn_days),
            notify: server.notify.unwrap_or(self.notify),
            profile: server.profile.clone().or_else(|| self.profile.clone()),
            dns: dns.clone(),
            dns_image: dns.as_ref().and_then(|d| d.image(&certbot)),
            nginx: NginxSupport::of(&nginx),
            images: Images { nginx, certbot },
            renew_schedule: server
                .renew_schedule
                .clone()
                .unwrap_or_else(|| self.renew_schedule.clone()),
            node_label: match server.engine {
                Engine::Swarm => Some(
                    server
                        .node_label
                        .clone()
                        .unwrap_or_else(NodeLabel::default_label),
                ),
                Engine::Compose => None,
            },
        }
    }

    /// The JSON Schema of `certgen.yaml`, from these types: keys, types, defaults, and each
    /// value's rule as its description.
    pub fn json_schema() -> String {
        let schema = schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Config>();
        let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
        text.push('\n');
        text
    }

    /// `certgen.yaml` as `init` writes it: the schema line editors read (yaml-language-server), a
    /// short header, then every setting.
    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).expect("a Config always serializes");
        format!(
            "# yaml-language-server: $schema=./certgen.schema.json\n\
             # certgen.yaml: every choice behind the generated tree. Edit it, then run `certgen render`;\n\
             # do not edit the generated files by hand (`certgen check` finds such edits).\n{body}"
        )
    }

    /// Reads a config; every error names the file, line and column, and a mistyped key comes
    /// with the key that was probably meant.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, BadInput> {
        refuse_secrets(text, path)?;
        let config: Config = serde_yaml::from_str(text).map_err(|e| {
            let message = describe_yaml_error(&e.to_string());
            let place = e
                .location()
                .map(|l| locate_value(text, &message, l.line()).unwrap_or((l.line(), l.column())));
            BadInput(match place {
                Some((line, column)) => format!("{}:{line}:{column}: {message}", path.display()),
                None => format!("{}: {message}", path.display()),
            })
        })?;
        config
            .check()
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        Ok(config)
    }
}

/// Each trusted proxy alone is less than everything (TrustedProxy), but several can add up to it:
/// `0.0.0.0/1` and `128.0.0.0/1` trust every IPv4 client's X-Forwarded-For.
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

/// A monitor's ping URL is a bearer token: whoever has it can report success and silence the
/// alert. `notify_url` (certgen 0.1 had it) is refused wherever it is, naming its line, never its
/// value, and saying where the URL goes instead.
fn refuse_secrets(text: &str, path: &Path) -> Result<(), BadInput> {
    static KEY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[ \t-]*(notify_url)[ \t]*:").expect("valid regex"));
    let Some((line, column)) = text.lines().enumerate().find_map(|(i, line)| {
        let key = KEY.captures(line)?.get(1)?;
        Some((i + 1, key.start() + 1))
    }) else {
        return Ok(());
    };
    Err(BadInput(format!(
        "{}:{line}:{column}: notify_url: a ping URL is a secret (whoever has it can report success \
         and silence the alert), so it never goes in certgen.yaml or git. Write `notify: true` \
         here instead, put the URL on each server in SERVER/{}/{} (mode 600, in a folder of \
         mode 700), and if this file was committed with it, make a new check URL on the monitor",
        path.display(),
        crate::names::SECRETS_DIR,
        crate::names::NOTIFY_URL_FILE
    )))
}

/// Let's Encrypt issues only for names under a public suffix (the public suffix list, through the
/// maintained `psl` crate): `example.local` or `app.internal` would fail only on the server. It
/// validates IP addresses from the internet, so they must be public ones.
fn check_public(server: &str, names: &[DomainName]) -> Result<(), ConfigError> {
    for name in names {
        if let Some(ip) = name.ip() {
            if !is_public_ip(ip) {
                return Err(ConfigError::IpNotPublic {
                    server: server.into(),
                    ip: ip.to_string(),
                });
            }
            continue;
        }
        let known = psl::suffix(name.lineage().as_bytes()).is_some_and(|s| s.is_known());
        if !known {
            let suffix = name.as_str().rsplit('.').next().unwrap_or_default();
            return Err(ConfigError::NotPublic {
                server: server.into(),
                name: name.to_string(),
                suffix: suffix.into(),
            });
        }
    }
    Ok(())
}

/// What Let's Encrypt documents per profile (letsencrypt.org/docs/profiles): `classic` (the
/// default) allows 100 names and DNS names only; `tlsserver` 25 names, DNS only; `shortlived` 25
/// names, DNS names and IP addresses. A profile it does not document is left to the CA.
fn check_lets_encrypt_profile(
    server: &str,
    cert: &Certificate,
    profile: Option<&ProfileName>,
) -> Result<(), ConfigError> {
    let profile = profile.map(ProfileName::as_str);
    let max = match profile {
        Some("tlsserver" | "shortlived") => 25,
        _ => MAX_NAMES_PER_CERTIFICATE,
    };
    if cert.domains.len() > max {
        return Err(ConfigError::TooManyNamesForProfile {
            server: server.into(),
            name: cert.name().to_string(),
            count: cert.domains.len(),
            profile: profile.unwrap_or("classic").into(),
            max,
        });
    }
    if profile != Some("shortlived") {
        if let Some(ip) = cert.domains.iter().find(|d| d.ip().is_some()) {
            return Err(ConfigError::IpNeedsShortlived {
                server: server.into(),
                name: cert.name().to_string(),
                ip: ip.to_string(),
                current: profile
                    .map(|p| format!(" (it has {p})"))
                    .unwrap_or_default(),
            });
        }
    }
    Ok(())
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

/// Where the value a validation error names stands, from `from_line` on. The YAML reader
/// places errors of a value's own type at the event before it (the previous key, or the start
/// of the mapping), so this finds the value itself: its first occurrence as a whole scalar.
fn locate_value(text: &str, message: &str, from_line: usize) -> Option<(usize, usize)> {
    static INVALID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?:^|: )[a-z_]+ "([^"\\]+)" is not valid: "#).expect("valid regex")
    });
    let value = INVALID.captures(message)?.get(1)?.as_str();
    let bounded = |b: Option<char>| b.map_or(true, |c| " \"'[],{}:".contains(c));
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find_map(|(i, line)| {
            let at = line.match_indices(value).map(|(at, _)| at).find(|&at| {
                bounded(line[..at].chars().next_back())
                    && bounded(line[at + value.len()..].chars().next())
            })?;
            Some((i + 1, at + 1))
        })
}

/// serde's message without the position (it is printed in front) and with a suggestion for an
/// unknown key.
fn describe_yaml_error(message: &str) -> String {
    static POSITION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r" at line \d+ column \d+").expect("valid regex"));
    static UNKNOWN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"unknown (?:field|variant) `([^`]*)`, expected (.*)").expect("valid regex")
    });
    let message = POSITION.replace(message, "").into_owned();
    let Some(caps) = UNKNOWN.captures(&message) else {
        return message;
    };
    let typed = &caps[1];
    let suggestion = caps[2]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::levenshtein(typed, known), known))
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 3))
        .min();
    match suggestion {
        Some((_, known)) => format!("{message}; did you mean `{known}`?"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> Certificate {
        Certificate::new(
            names
                .iter()
                .map(|n| DomainName::parse(n).unwrap())
                .collect(),
            Upstream::parse(DEFAULT_UPSTREAM).unwrap(),
        )
    }

    fn config(servers: Vec<Server>) -> Config {
        Config {
            email: None,
            acme_server: AcmeServer::lets_encrypt(),
            acme_ca_bundle: None,
            key_type: KeyType::Ecdsa,
            tls: TlsProfile::Intermediate,
            http: HttpMode::OnDemand,
            hsts: Hsts::default(),
            warn_days: None,
            notify: false,
            profile: None,
            dns: None,
            images: Images::default(),
            renew_schedule: CronSchedule::twice_daily("x"),
            servers,
        }
    }

    fn server(name: &str, certificates: Vec<Certificate>) -> Server {
        Server::new(
            ServerName::parse(name).unwrap(),
            Some(DeployPath::parse("/srv/infra").unwrap()),
            certificates,
        )
    }

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

    // Errors say what the user wrote and the rule, never a library's words: "expected u32",
    // "relative URL without a base", "its domain a domain name cannot be empty".
    #[test]
    fn errors_are_in_the_users_words() {
        let base = "renew_schedule: \"1 2 * * *\"\nservers:\n- name: a\n  certificates:\n  \
                    - domains: [a.example.com]\n    upstream: http://app:1\n";
        for (extra, expected) in [
            (
                "warn_days: -3\n",
                "warn_days \"-3\" is not valid: a number of days",
            ),
            ("warn_days: 14 days\n", "warn_days \"14 days\" is not valid"),
            (
                "email: ops@\n",
                "the domain after @ is not valid: a domain name cannot be empty",
            ),
            ("acme_server: x\n", "not a URL (no scheme:// in front)"),
        ] {
            let err = Config::from_yaml(&format!("{extra}{base}"), Path::new("c.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{extra}: {err}");
            for internal in ["u32", "relative URL", "its domain a"] {
                assert!(!err.contains(internal), "{extra}: {err}");
            }
        }
    }

    #[test]
    fn yaml_round_trips() {
        let c = config(vec![server(
            "prod",
            vec![cert(&["example.com", "www.example.com"])],
        )]);
        let back = Config::from_yaml(&c.to_yaml(), Path::new("certgen.yaml")).unwrap();
        assert_eq!(back, c);
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

    #[test]
    fn servers_override_global_settings() {
        let mut c = config(vec![server("dev", vec![cert(&["dev.example.com"])])]);
        c.acme_ca_bundle = Some(
            PemBundle::parse("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
                .unwrap(),
        );
        let global = c.settings(&c.servers[0]);
        assert_eq!(global.acme_server, AcmeServer::lets_encrypt());
        assert!(global.acme_ca_bundle.is_some());

        c.servers[0].acme_server = Some(AcmeServer::lets_encrypt_staging());
        c.servers[0].images = Some(ImageOverrides {
            nginx: Some(ImageRef::parse("mirror.example/nginx:1.30").unwrap()),
            certbot: None,
        });
        c.servers[0].tls = Some(TlsProfile::Modern);
        let own = c.settings(&c.servers[0]);
        assert_eq!(own.acme_server, AcmeServer::lets_encrypt_staging());
        // The global bundle is for the global ACME server only.
        assert_eq!(own.acme_ca_bundle, None);
        assert_eq!(own.images.nginx.as_str(), "mirror.example/nginx:1.30");
        assert_eq!(own.images.certbot.as_str(), DEFAULT_CERTBOT_IMAGE);
        assert_eq!(own.tls, TlsProfile::Modern);
    }

    #[test]
    fn errors_name_their_place() {
        let text = "renew_schedule: \"1 2,14 * * *\"\nservers:\n  - name: prod\n    deploy_path: /srv\n    certificates:\n      - domains: [\"bad;name.example\"]\n        upstream: http://app:80\n";
        let err = Config::from_yaml(text, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.yaml:6:"), "{err}");
        assert!(err.contains("bad;name.example"), "{err}");
        assert!(
            !err.contains(" at line "),
            "the position is printed once: {err}"
        );
    }

    // The YAML reader places a value's own error at the key before it; the error
    // points at the value.
    #[test]
    fn errors_point_at_the_value_not_the_key_before() {
        let text = "email: ops@example.com\nacme_server: http://ca.example/dir\nrenew_schedule: \"1 2,14 * * *\"\nservers: []\n";
        let err = Config::from_yaml(text, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.yaml:2:14: "), "{err}");
    }

    // A mistyped key suggests the key meant.
    #[test]
    fn typos_suggest_the_key_meant() {
        let text = "renew_schedule: \"1 2,14 * * *\"\nservers:\n  - name: prod\n    deploy_path: /srv\n    certificates:\n      - domainz: [a.example]\n        upstream: http://app:80\n";
        let err = Config::from_yaml(text, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `domainz`"), "{err}");
        assert!(err.ends_with("did you mean `domains`?"), "{err}");
        let far = "renew_schedule: \"1 2,14 * * *\"\nsomething_else: 1\nservers: []\n";
        let err = Config::from_yaml(far, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
        let variant = "renew_schedule: \"1 2,14 * * *\"\ntls: moden\nservers: []\n";
        let err = Config::from_yaml(variant, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("did you mean `modern`?"), "{err}");
    }
}
