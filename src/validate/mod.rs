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

/// Declares a validated string type: a `String` that only `parse` makes (serde goes through it
/// too: its errors name the config key `$key`), with `FromStr`, `Display`, `as_str` and its JSON
/// Schema (the rule an editor shows, and the pattern from [`patterns`] where one can say it).
macro_rules! validated_string {
    (
        $(#[$meta:meta])* pub struct $name:ident for $key:literal;
        schema: $description:literal; $(pattern: $pattern:expr;)?
    ) => {
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
        // The schema (`certgen schema`): a string, the rule as its description, and where a
        // pattern can say it, the pattern, so an editor or check-jsonschema flags a bad value
        // before certgen reads it.
        schema!($name, { "type": "string", "description": $description $(, "pattern": $pattern)? });
    };
}

/// The patterns of the schema. Where a type's rule is more than a pattern (a name's public
/// suffix, a schedule that runs every day), the pattern is the part that a pattern can say,
/// never stricter than the type.
pub mod patterns {
    /// A DNS name (any case; certgen lowercases it), a wildcard, or an IP address.
    pub const DOMAIN: &str = r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}$|^[0-9.]+$|^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$";
    pub const EMAIL: &str = r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}$";
    pub const SERVER_NAME: &str = "^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$";
    pub const UPSTREAM: &str = r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?/?$";
    pub const ACME_SERVER: &str = r"^(https://[A-Za-z0-9\-._~:/?=&+@\[\]]+|letsencrypt|letsencrypt-staging|zerossl|google|google-staging|sslcom)$";
    pub const PROFILE: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
    pub const SIZE: &str = "^[0-9]{1,6}[kmgKMG]?$";
    /// Not zero (certgen also counts at most six digits).
    pub const TIME: &str = "^0{0,5}[1-9][0-9]{0,5}(ms|s|m|h|d)?$";
    pub const PATH_PREFIX: &str = "^/[A-Za-z0-9._~/-]+$";
    pub const REDIRECT: &str = UPSTREAM;
    pub const HEADER_NAME: &str = "^[A-Za-z0-9][A-Za-z0-9-]{0,63}$";
    pub const HEADER_VALUE: &str = "^[ !#%-\\[\\]-~]{1,1024}$";
    pub const AUTH_REALM: &str = "^[ !#%-\\[\\]-~]{1,64}$";
    pub const USERS_FILE: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";
    pub const EAB_KID: &str = "^[A-Za-z0-9_-]{1,256}$";
    pub const CAA_RESOLVER: &str = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5})?$";
    pub const NETWORK: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$";
    pub const NODE_LABEL: &str = "^[a-z0-9]([a-z0-9.-]{0,98}[a-z0-9])?$";
    /// Minute and hour as cron has them; day of month, month and day of week `*`: a schedule
    /// that runs every day (certgen works out other forms that do; this pattern takes the usual one).
    pub const SCHEDULE: &str = r"^[0-9*,/-]+ [0-9*,/-]+ \*(/1)? \*(/1)? \*(/1)?$";
}

mod acme;
mod cron;
mod docker;
mod names;
mod nginx;
mod numbers;
mod pem;
mod urls;

pub use acme::{AcmeServer, CaaResolver, EabKid, KnownCa, ProfileName, KNOWN_CAS};
pub use cron::{CronSchedule, DeployPath, MetricsDir};
pub use docker::{ImageRef, NetworkName, NginxVersion, NodeLabel};
pub use names::{
    check_names, is_public_ip, CertificateNames, DomainName, Email, ServerName,
    MAX_NAMES_PER_CERTIFICATE,
};
pub use nginx::{AuthRealm, HeaderName, HeaderValue, NginxSize, NginxTime, PathPrefix, UsersFile};
pub use numbers::{Burst, PropagationSeconds, RequestsPerSecond, WarnDays};
pub use pem::PemBundle;
pub use urls::{ClientNetwork, RedirectTarget, TrustedProxy, Upstream, UpstreamCa};

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
