//! The config model: what `certgen.yaml` holds, and the context every template renders from.
//!
//! Every field is a validated type from [`crate::validate`], so a `Config` that exists is safe
//! to render. Global settings apply to every server; a server may override the ones that differ
//! between machines (ACME server, contact, images, schedule, TLS profile). [`Config::settings`]
//! resolves them, once, for the templates.

//!
//! The files: the model here ([`Config`], [`Server`], [`Certificate`]), the settings a server can
//! override and their resolution ([`settings`]), the values they take ([`values`]), the rules
//! across values ([`rules`]), and reading and writing the file ([`load`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::validate::{
    AcmeServer, CaaResolver, ClientNetwork, CronSchedule, DeployPath, DomainName, Email,
    HeaderName, HeaderValue, MetricsDir, NetworkName, NginxSize, NginxTime, NodeLabel, PathPrefix,
    PemBundle, ProfileName, RedirectTarget, ServerName, TrustedProxy, Upstream, UpstreamCa,
    UsersFile,
};

#[macro_use]
mod settings;
mod acme;
mod error;
mod load;
mod rules;
mod site;
mod values;

pub use crate::validate::{PropagationSeconds, WarnDays};
pub use error::ConfigError;
pub use settings::{NginxSupport, Setting, Settings};
pub use site::{Auth, RateLimit, RedirectCode, Route, RouteAuth, Satisfy};
pub use values::{
    Ci, Dns, DnsProvider, Eab, Engine, Hsts, HttpMode, ImageOverrides, Images, KeyType, TlsProfile,
};

/// The nginx image certgen pins: the 1.30 stable series is the oldest that accepts everything the
/// templates emit (`http2 on;` needs 1.25.1, `X25519MLKEM768` needs OpenSSL 3.5, which the
/// official 1.30 images carry). `.ci/setup` builds a stand-in of the same series.
pub const DEFAULT_NGINX_IMAGE: &str = "nginx:1.30";
/// The certbot image certgen pins: 5.x has ACME renewal information (ARI) and profiles.
pub const DEFAULT_CERTBOT_IMAGE: &str = "certbot/certbot:v5.8.0";
/// Where sites forward when no upstream is given: a port published on the Docker host.
pub const DEFAULT_UPSTREAM: &str = "http://host.docker.internal:8080";

settings! {
    /// All of `certgen.yaml`. Unknown keys are errors, so a typo cannot be silently ignored.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        /// Contact address for the ACME account (the CA's policy and incident mail; Let's Encrypt no
        /// longer sends expiry notices). None registers without one.
        #[serde(default)]
        email: Option<Email> | "Overrides the global `email`.",
        /// The ACME directory URL.
        #[serde(default = "AcmeServer::lets_encrypt")]
        acme_server: AcmeServer
            | "Overrides the global `acme_server`. The global CA bundle then does not apply: give \
               this\nserver's own `acme_ca_bundle` if its ACME server needs one.",
        /// PEM certificates the certbot containers trust for `acme_server` (private CAs).
        #[serde(default)]
        acme_ca_bundle: Option<PemBundle>,
        /// External Account Binding, for a CA that requires it (ZeroSSL, Google, SSL.com): the key
        /// identifier here, the HMAC key on the server in `secrets/eab-hmac-key`.
        #[serde(default)]
        eab: Option<Eab>,
        /// A second ACME server, used only when `acme_server` fails for a reason of its own
        /// (unreachable, a server error, a rate limit): the certificate is ordered from it, and its
        /// next renewal tries `acme_server` again. `acme_ca_bundle` is trusted for both.
        #[serde(default)]
        fallback_acme_server: Option<AcmeServer>
            | "Overrides the global `fallback_acme_server`. A server with its own `acme_server` \
               does not inherit\nthe global one.",
        /// External Account Binding at `fallback_acme_server`: the key identifier here, the HMAC key
        /// on the server in `secrets/fallback-eab-hmac-key`.
        #[serde(default)]
        fallback_eab: Option<Eab>,
        /// The DNS server the CAA checks ask (`status.sh --caa`, and `nginx-for-cert/run.sh` before
        /// a first order): one that sees your public zone, when the server's own resolver does not
        /// (split-horizon DNS). Unset, the certbot container's resolver.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caa_resolver: Option<CaaResolver>,
        #[serde(default)]
        key_type: KeyType,
        #[serde(default)]
        tls: TlsProfile,
        /// Who holds port 80: certbot's temporary nginx while it orders, or the proxy, always.
        #[serde(default)]
        http: HttpMode,
        #[serde(default)]
        hsts: Hsts,
        /// status.sh warns when a certificate has fewer days left; unset, when less than a third of
        /// its lifetime is left (right for 90-, 64-, 45- and 6-day certificates alike).
        #[serde(default)]
        warn_days: Option<WarnDays>,
        /// Ping a monitor after every renewal run (success at the URL, failure at URL/fail). The URL
        /// is a secret: it lives on each server, in `secrets/notify-url`, never here.
        #[serde(default)]
        notify: bool,
        /// The ACME profile certificates are ordered with; unset, the CA's default.
        #[serde(default)]
        profile: Option<ProfileName>,
        /// Serve HTTP/3 (QUIC, UDP port 443) beside HTTP/2, announced with `Alt-Svc`. The firewall,
        /// and any load balancer in front, must pass UDP 443.
        #[serde(default)]
        http3: bool,
        /// How `challenge: dns-01` certificates prove their names: the DNS provider's certbot
        /// plugin, and its credentials file on the server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dns: Option<Dns>,
        #[serde(default)]
        images: Images,
        /// A folder on the server that node_exporter's textfile collector reads: after every run,
        /// `renew/run.sh` writes the certificates' metrics there (`certgen-SERVER.prom`).
        #[serde(default)]
        metrics_dir: Option<MetricsDir>,
        /// When `renew/run.sh` runs, as a cron schedule.
        renew_schedule: CronSchedule,
        ;
        /// Checks of the infra repo, each a file certgen writes: `github`, `gitlab` (CI that runs
        /// `certgen verify` on every push), `pre-commit` (`certgen check` before each commit).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ci: Vec<Ci>,
    }

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
        /// Existing Docker networks the proxy joins, so upstreams can be named by container.
        #[serde(default)]
        pub networks: Vec<NetworkName>,
        /// Addresses in front of the proxy (a load balancer) whose `X-Forwarded-For` names the
        /// client. Empty: the proxy is the edge, and the connecting address is the client.
        #[serde(default)]
        pub trusted_proxies: Vec<TrustedProxy>,
        pub certificates: Vec<Certificate>,
    }
}

impl Config {
    /// A config with `servers` and every other key at its default: what a certgen.yaml that
    /// gives only `renew_schedule` reads as (so the defaults are said once, in the model).
    pub fn new(renew_schedule: CronSchedule, servers: Vec<Server>) -> Config {
        let mut keys = serde_yaml::Mapping::new();
        keys.insert("renew_schedule".into(), renew_schedule.as_str().into());
        keys.insert("servers".into(), serde_yaml::Value::Sequence(Vec::new()));
        let mut config: Config =
            serde_yaml::from_value(keys.into()).expect("every other key has a default");
        config.servers = servers;
        config
    }
}

impl Server {
    /// A server with the global settings (no overrides) and its other keys at their defaults.
    pub fn new(
        name: ServerName,
        deploy_path: Option<DeployPath>,
        certificates: Vec<Certificate>,
    ) -> Server {
        let mut keys = serde_yaml::Mapping::new();
        keys.insert("name".into(), "x".into());
        keys.insert(
            "certificates".into(),
            serde_yaml::Value::Sequence(Vec::new()),
        );
        let mut server: Server =
            serde_yaml::from_value(keys.into()).expect("every other key has a default");
        (server.name, server.deploy_path, server.certificates) = (name, deploy_path, certificates);
        server
    }
}

/// One certificate, and the site the proxy serves with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The names on the certificate; the first is the certificate's name (its `live/` folder).
    pub domains: Vec<DomainName>,
    /// Where the site forwards `/`; required unless the site only redirects (`redirect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// A site that only redirects, keeping the path and query: `https://example.com`.
    #[serde(default)]
    pub redirect: Option<RedirectTarget>,
    /// The redirect's status: 301 (the default) or 308 (which also keeps a POST a POST).
    #[serde(default)]
    pub redirect_code: RedirectCode,
    /// Path prefixes forwarded elsewhere: `/api/: http://api:8080`, or with access rules of
    /// their own: `/health/: {upstream: http://app:8080, auth: off}`.
    #[serde(default, deserialize_with = "site::routes")]
    #[schemars(with = "BTreeMap<PathPrefix, site::UrlOrRoute>")]
    #[schemars(extend("propertyNames" = { "pattern": crate::validate::patterns::PATH_PREFIX }))]
    pub routes: BTreeMap<PathPrefix, Route>,
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
    /// This site's HTTP/3, instead of the server's `http3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http3: Option<bool>,
    /// The client addresses the site admits (the connecting one, or the one `trusted_proxies`
    /// name); anyone else gets 403. Empty: everyone.
    #[serde(default)]
    pub allow: Vec<ClientNetwork>,
    /// Requests per client address beyond which the site answers 429.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Basic auth: a user and password from the server's `secrets/auth/` folder.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// With both `allow` and `auth`: a client passes `both` (the default) or `either`.
    #[serde(default)]
    pub satisfy: Satisfy,
    /// Response headers the site adds to every answer, errors too: `{X-Frame-Options: DENY}`.
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": crate::validate::patterns::HEADER_NAME }))]
    pub headers: BTreeMap<HeaderName, HeaderValue>,
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

impl Certificate {
    /// The default body size: generous for uploads, still a limit.
    pub const DEFAULT_MAX_BODY_SIZE: &'static str = "100m";

    /// A certificate with the default site options.
    pub fn new(domains: Vec<DomainName>, upstream: Upstream) -> Certificate {
        Certificate {
            domains,
            upstream: Some(upstream),
            redirect: None,
            redirect_code: RedirectCode::default(),
            routes: BTreeMap::new(),
            max_body_size: Self::default_max_body_size(),
            timeouts: Timeouts::default(),
            verify_upstream: true,
            upstream_ca: None,
            profile: None,
            challenge: Challenge::Http01,
            http3: None,
            rate_limit: None,
            auth: None,
            satisfy: Satisfy::default(),
            allow: Vec::new(),
            headers: BTreeMap::new(),
        }
    }

    fn default_verify_upstream() -> bool {
        true
    }

    /// Does the site forward anything to an `https://` upstream?
    pub fn has_https_upstream(&self) -> bool {
        self.upstream
            .iter()
            .chain(self.routes.values().map(|r| &r.upstream))
            .any(|u| u.as_str().starts_with("https://"))
    }

    /// The site's locations: `/` to its upstream (the site's access rules), then its routes.
    /// None for a site that only redirects.
    pub fn locations(&self) -> Vec<(&str, Route)> {
        let Some(upstream) = &self.upstream else {
            return Vec::new();
        };
        std::iter::once(("/", Route::to(upstream.clone())))
            .chain(self.routes.iter().map(|(p, r)| (p.as_str(), r.clone())))
            .collect()
    }

    /// The password files its basic auth reads, the routes' too.
    pub fn users_files(&self) -> impl Iterator<Item = &UsersFile> {
        let routes = self.routes.values().filter_map(|r| match &r.auth {
            Some(RouteAuth::On(auth)) => Some(&auth.users),
            _ => None,
        });
        self.auth.iter().map(|a| &a.users).chain(routes)
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

#[cfg(test)]
mod test_support {
    use super::*;

    pub fn cert(names: &[&str]) -> Certificate {
        Certificate::new(
            names
                .iter()
                .map(|n| DomainName::parse(n).unwrap())
                .collect(),
            Upstream::parse(DEFAULT_UPSTREAM).unwrap(),
        )
    }

    pub fn config(servers: Vec<Server>) -> Config {
        Config::new(CronSchedule::twice_daily("x"), servers)
    }

    pub fn server(name: &str, certificates: Vec<Certificate>) -> Server {
        Server::new(
            ServerName::parse(name).unwrap(),
            Some(DeployPath::parse("/srv/infra").unwrap()),
            certificates,
        )
    }

    #[test]
    fn new_gives_the_defaults_a_file_gets() {
        let c = config(vec![server("prod", vec![cert(&["example.com"])])]);
        assert_eq!(c.acme_server, AcmeServer::lets_encrypt());
        assert_eq!(
            (c.key_type, c.tls, c.http),
            (KeyType::Ecdsa, TlsProfile::Intermediate, HttpMode::OnDemand)
        );
        assert_eq!(c.hsts, Hsts::default());
        assert_eq!(c.images, Images::default());
        assert_eq!((c.email.as_ref(), c.notify), (None, false));
        assert_eq!(c.servers[0].engine, Engine::Compose);
        assert_eq!(c.servers[0].tls, None);
    }
}
