//! Who may reach a site, and how: basic auth, the allow list's combination with it, rate limits,
//! redirect-only sites, and routes with access rules of their own.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::validate::{
    AuthRealm, Burst, ClientNetwork, Invalid, PathPrefix, RequestsPerSecond, Upstream, UsersFile,
};

/// Basic auth: a user and password from a file on the server, in its `secrets/auth/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// What the browser's password prompt names; unset, the certificate's name.
    #[serde(default)]
    pub realm: Option<AuthRealm>,
    /// The password file's name in `SERVER/secrets/auth/`: lines `user:$6$...` (SHA-512 crypt).
    pub users: UsersFile,
}

/// A route's basic auth: its own, or `off` (a health check on a site behind a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    Off,
    On(Auth),
}

impl Serialize for RouteAuth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RouteAuth::Off => serializer.serialize_str("off"),
            RouteAuth::On(auth) => auth.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RouteAuth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OffOrAuth;
        impl<'de> Visitor<'de> for OffOrAuth {
            type Value = RouteAuth;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`off`, or {realm, users} of the route's own")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RouteAuth, E> {
                match v {
                    "off" => Ok(RouteAuth::Off),
                    _ => Err(E::custom(Invalid {
                        what: "auth",
                        value: v.to_string(),
                        rule: "a route's auth is `off` or {realm, users}".into(),
                    })),
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RouteAuth, E> {
                match v {
                    false => Ok(RouteAuth::Off),
                    true => self.visit_str("true"),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RouteAuth, A::Error> {
                Auth::deserialize(de::value::MapAccessDeserializer::new(map)).map(RouteAuth::On)
            }
        }
        deserializer.deserialize_any(OffOrAuth)
    }
}

impl JsonSchema for RouteAuth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RouteAuth".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`off` (no password on this route), or basic auth of its own.",
            "anyOf": [{ "enum": ["off", false] }, generator.subschema_for::<Auth>()]
        })
    }
}

/// With both an allow list and basic auth: a client must pass `both`, or `either` one (an
/// office network without a password, anyone else with one). nginx's `satisfy all|any`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Satisfy {
    #[default]
    Both,
    Either,
}

/// A route: where a path prefix goes, and the access rules it has instead of the site's
/// (unset, the site's). Written as the upstream's URL alone when it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub upstream: Upstream,
    /// `off`, or basic auth of its own.
    #[serde(default)]
    pub auth: Option<RouteAuth>,
    /// Its own allow list; `[]` admits everyone.
    #[serde(default)]
    pub allow: Option<Vec<ClientNetwork>>,
    /// Its own rate limit, counted apart from the site's.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Its own combination of the allow list and basic auth.
    #[serde(default)]
    pub satisfy: Option<Satisfy>,
}

impl Route {
    /// A route with the site's access rules.
    pub fn to(upstream: Upstream) -> Route {
        Route {
            upstream,
            auth: None,
            allow: None,
            rate_limit: None,
            satisfy: None,
        }
    }
}

/// The routes of a site: each value an upstream's URL, or a [`Route`] with rules of its own.
pub(super) fn routes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<PathPrefix, Route>, D::Error> {
    let routes = BTreeMap::<PathPrefix, UrlOrRoute>::deserialize(deserializer)?;
    Ok(routes.into_iter().map(|(p, r)| (p, r.0)).collect())
}

/// A route as `routes` takes it: the upstream's URL alone, or the mapping.
pub(super) struct UrlOrRoute(Route);

impl<'de> Deserialize<'de> for UrlOrRoute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UrlOrMap;
        impl<'de> Visitor<'de> for UrlOrMap {
            type Value = UrlOrRoute;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an upstream URL, or {upstream, auth, allow, rate_limit, satisfy}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UrlOrRoute, E> {
                Upstream::try_from(v.to_string())
                    .map(|u| UrlOrRoute(Route::to(u)))
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UrlOrRoute, A::Error> {
                Route::deserialize(de::value::MapAccessDeserializer::new(map)).map(UrlOrRoute)
            }
        }
        deserializer.deserialize_any(UrlOrMap)
    }
}

impl JsonSchema for UrlOrRoute {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UrlOrRoute".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [generator.subschema_for::<Upstream>(), generator.subschema_for::<Route>()]
        })
    }
}

/// A site's rate limit, per client address (the connecting one, or the one `trusted_proxies`
/// name): `per_second` on average, and `burst` more at once, served without delay; beyond them,
/// 429.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: RequestsPerSecond,
    #[serde(default = "RateLimit::default_burst")]
    pub burst: Burst,
}

impl RateLimit {
    fn default_burst() -> Burst {
        0.try_into().expect("valid default")
    }
}

/// The status of a redirect-only site's answers: 301, or 308 (a POST stays a POST).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum RedirectCode {
    #[default]
    MovedPermanently,
    PermanentRedirect,
}

impl TryFrom<u16> for RedirectCode {
    type Error = Invalid;
    fn try_from(code: u16) -> Result<Self, Self::Error> {
        match code {
            301 => Ok(RedirectCode::MovedPermanently),
            308 => Ok(RedirectCode::PermanentRedirect),
            other => Err(Invalid {
                what: "redirect_code",
                value: other.to_string(),
                rule: "a redirect's code is 301 or 308".into(),
            }),
        }
    }
}

impl From<RedirectCode> for u16 {
    fn from(code: RedirectCode) -> u16 {
        match code {
            RedirectCode::MovedPermanently => 301,
            RedirectCode::PermanentRedirect => 308,
        }
    }
}

impl JsonSchema for RedirectCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RedirectCode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "enum": [301, 308], "description": "301 or 308." })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes_of(yaml: &str) -> Result<BTreeMap<PathPrefix, Route>, String> {
        routes(serde_yaml::Deserializer::from_str(yaml)).map_err(|e| e.to_string())
    }

    // A route is a URL, as it always was, or a mapping with rules of its own.
    #[test]
    fn a_route_is_a_url_or_a_mapping() {
        let routes = routes_of(
            "/api/: http://api:8080\n/health/: {upstream: http://app:80, auth: off}\n/ops/: {upstream: http://ops:80, auth: {users: ops}, allow: []}\n/x/: {upstream: http://x:80, auth: false}\n",
        )
        .unwrap();
        let route = |p: &str| &routes[&PathPrefix::parse(p).unwrap()];
        assert_eq!(route("/api/").auth, None);
        assert_eq!(route("/health/").auth, Some(RouteAuth::Off));
        assert_eq!(route("/x/").auth, Some(RouteAuth::Off));
        assert!(
            matches!(&route("/ops/").auth, Some(RouteAuth::On(a)) if a.users.as_str() == "ops")
        );
        assert_eq!(route("/ops/").allow, Some(Vec::new()));
        for (bad, says) in [
            (
                "/a/: {upstream: http://a:80, auth: on}",
                "auth \"on\" is not valid",
            ),
            (
                "/a/: {upstream: http://a:80, auth: true}",
                "auth \"true\" is not valid",
            ),
            (
                "/a/: {upstream: http://a:80, allowed: []}",
                "unknown field `allowed`",
            ),
            ("/a/: {auth: off}", "missing field `upstream`"),
            ("/a/: ftp://a", "upstream \"ftp://a\" is not valid"),
            ("/a/: [http://a:80]", "an upstream URL, or {upstream"),
        ] {
            let err = routes_of(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
