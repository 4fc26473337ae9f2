//! The values of the settings: images, key type, TLS profile, port 80, engine, HSTS, DNS-01.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_CERTBOT_IMAGE, DEFAULT_NGINX_IMAGE};
use crate::validate::{ImageRef, PropagationSeconds};

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
    pub(super) fn is_compose(&self) -> bool {
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

/// A check of the infra repo certgen writes the configuration for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Ci {
    /// GitHub Actions, `.github/workflows/certgen.yml`: `certgen verify` on every push and pull
    /// request (when the infra folder is the repo's root).
    Github,
    /// GitLab CI, `.gitlab-ci.yml`: the same, in a job with a docker-in-docker service.
    Gitlab,
    /// The pre-commit framework, `.pre-commit-config.yaml`: `certgen check` before each commit.
    PreCommit,
}

/// External Account Binding: the key identifier the CA gave with the HMAC key, which stays on
/// the server (`secrets/eab-hmac-key`) and reaches certbot only when it registers the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eab {
    pub kid: crate::validate::EabKid,
}
