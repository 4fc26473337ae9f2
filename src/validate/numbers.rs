//! Whole numbers within bounds: days, seconds, requests.

use super::Invalid;

/// A whole number of a config key within bounds: parsed through `u32` (serde's `try_from`), its
/// error naming the key and the rule, its schema an integer with those bounds.
macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, $key:literal, $min:literal..=$max:literal, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

        schema!($name, { "type": "integer", "minimum": $min, "maximum": $max });
    };
}

bounded_u32!(
    /// A number of days, 1 to 3650.
    WarnDays,
    "warn_days",
    1..=3650,
    "a number of days from 1 to 3650 (or leave it unset: a third of each certificate's lifetime)"
);

bounded_u32!(
    /// Requests per second a client may send a site, 1 to 100,000.
    RequestsPerSecond,
    "per_second",
    1..=100_000,
    "a number of requests per second from 1 to 100000"
);

bounded_u32!(
    /// Requests a client may send beyond its rate at once, 0 to 100,000.
    Burst,
    "burst",
    0..=100_000,
    "a number of requests from 0 to 100000"
);

bounded_u32!(
    /// Seconds, 1 to 3600.
    PropagationSeconds,
    "propagation_seconds",
    1..=3600,
    "a number of seconds from 1 to 3600"
);
