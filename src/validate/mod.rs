//! Every value a user types, checked once at the boundary.
//!
//! Each type here can only hold a value that is safe to place in a shell script, an nginx config,
//! a compose file and a crontab: everything after parsing trusts them. A rejected value becomes an
//! [`Invalid`], which names the value and the rule; the caller adds which flag or key it came from.

/// A value that breaks a rule: which key it was for (when known), what it was, what is allowed.
/// The value is printed escaped, so control characters and quotes are visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{value:?} is not valid: {rule}", if what.is_empty() { String::new() } else { format!("{what} ") })]
pub struct Invalid {
    pub what: &'static str,
    pub value: String,
    pub rule: String,
}

/// The first character of `input` that is neither an ASCII letter or digit nor in `allowed`.
fn first_outside(input: &str, allowed: &str) -> Option<char> {
    input
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || allowed.contains(*c)))
}

/// `input`, if `pattern` matches it; else the rule.
fn matching(input: &str, pattern: &regex::Regex, rule: &str) -> Result<String, Invalid> {
    if pattern.is_match(input) {
        Ok(input.to_string())
    } else {
        invalid(input, rule)
    }
}

pub(crate) fn invalid<T>(value: &str, rule: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        what: "",
        value: value.to_string(),
        rule: rule.into(),
    })
}

/// Declares a validated string type: a `String` that only `parse` makes (serde goes through it
/// too: its errors name the config key `$key`), with `FromStr`, `Display` and `as_str`.
macro_rules! validated_string {
    ($(#[$meta:meta])* pub struct $name:ident for $key:literal;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl std::str::FromStr for $name {
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
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// A regex compiled once, where it is used.
macro_rules! regex {
    ($re:literal) => {{
        static RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($re).expect("valid regex"));
        &*RE
    }};
}

/// A type's JSON Schema (`certgen schema`), as an editor shows it for the key: its type and
/// rule. The rules themselves are enforced when certgen reads the file.
macro_rules! schema {
    ($name:ident, $($json:tt)+) => {
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($($json)+)
            }
        }
    };
}

/// Each validated string's schema: a string, and its rule as the description.
macro_rules! string_schema {
    ($($name:ident: $description:literal,)*) => {$(
        schema!($name, { "type": "string", "description": $description });
    )*};
}

mod cron;
mod docker;
mod names;
mod nginx;
mod numbers;
mod pem;
mod urls;

pub use cron::{CronSchedule, DeployPath};
pub use docker::{ImageRef, NetworkName, NginxVersion, NodeLabel};
pub use names::{
    check_names, is_public_ip, CertificateNames, DomainName, Email, ServerName,
    MAX_NAMES_PER_CERTIFICATE,
};
pub use nginx::{NginxSize, NginxTime, PathPrefix};
pub use numbers::{PropagationSeconds, WarnDays};
pub use pem::PemBundle;
pub use urls::{AcmeServer, ProfileName, TrustedProxy, Upstream, UpstreamCa};

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

/// Test helpers of the value types.
#[cfg(test)]
pub(crate) mod check {
    use super::Invalid;

    /// Each input is refused.
    #[track_caller]
    pub fn refused<T: std::str::FromStr<Err = Invalid>>(inputs: &[&str]) {
        for input in inputs {
            assert!(T::from_str(input).is_err(), "{input:?} should be refused");
        }
    }

    /// Each input is accepted as it is.
    #[track_caller]
    pub fn accepted<T>(inputs: &[&str])
    where
        T: std::str::FromStr<Err = Invalid> + std::fmt::Display,
    {
        let same: Vec<(&str, &str)> = inputs.iter().map(|i| (*i, *i)).collect();
        canonical::<T>(&same);
    }

    /// Each input is accepted, as the canonical form beside it.
    #[track_caller]
    pub fn canonical<T>(pairs: &[(&str, &str)])
    where
        T: std::str::FromStr<Err = Invalid> + std::fmt::Display,
    {
        for (input, expected) in pairs {
            let value = T::from_str(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(value.to_string(), *expected, "{input:?}");
        }
    }
}
