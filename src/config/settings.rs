//! The settings a server can override: each declared once, in [`Config`]'s `settings!` block,
//! which gives it its global key, its per-server key and its resolved value in [`Settings`].

use std::ops::Deref;

use serde::Serialize;

use super::{Certificate, Config, Engine, HttpMode, ImageOverrides, Images, KeyType, Server};
use super::{Hsts, TlsProfile};
use crate::validate::{AcmeServer, CronSchedule, ImageRef, NginxVersion, NodeLabel, ProfileName};

/// Declares `Config` from its settings (then, after `;`, its keys no server overrides) and
/// `Server` from its own keys, and gives every setting
/// its per-server key (`<T as Setting>::Override`, absent by default) and its place in
/// [`Chosen`]. A setting is one entry: its doc and serde attributes (the global key's), its
/// name and type, and optionally `| "doc"` for the per-server key's help in the schema.
macro_rules! settings {
    (
        $(#[$config_attr:meta])*
        pub struct Config {
            $(
                $(#[$attr:meta])*
                $setting:ident: $ty:ty $(| $server_doc:literal)?,
            )*
            ;
            $( $(#[$config_field_attr:meta])* pub $config_field:ident: $config_field_ty:ty, )*
        }
        $(#[$server_attr:meta])*
        pub struct Server {
            $( $(#[$field_attr:meta])* pub $field:ident: $field_ty:ty, )*
        }
    ) => {
        $(#[$config_attr])*
        pub struct Config {
            $( $(#[$attr])* pub $setting: $ty, )*
            $( $(#[$config_field_attr])* pub $config_field: $config_field_ty, )*
            pub servers: Vec<Server>,
        }

        $(#[$server_attr])*
        pub struct Server {
            $( $(#[$field_attr])* pub $field: $field_ty, )*
            $(
                $(#[doc = $server_doc])?
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $setting: <$ty as $crate::config::settings::Setting>::Override,
            )*
        }

        /// Every setting's value for one server: its own where it has one, else the global one.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Chosen {
            $( pub $setting: $ty, )*
        }

        impl Config {
            fn chosen(&self, server: &Server) -> Chosen {
                use $crate::config::settings::Setting;
                Chosen {
                    $( $setting: self.$setting.resolve(&server.$setting), )*
                }
            }
        }
    };
}

/// How a server's key for a setting combines with the global one.
pub trait Setting: Clone {
    /// What a server writes to override the global value; `None` keeps it.
    type Override;
    fn resolve(&self, server: &Self::Override) -> Self;
}

/// An optional setting: the server's value if it has one, else the global one (which may be
/// unset too).
impl<T: Clone> Setting for Option<T> {
    type Override = Option<T>;
    fn resolve(&self, server: &Option<T>) -> Self {
        server.clone().or_else(|| self.clone())
    }
}

/// Settings a server replaces whole.
macro_rules! replaced_whole {
    ($($ty:ty),*) => {$(
        impl Setting for $ty {
            type Override = Option<$ty>;
            fn resolve(&self, server: &Option<$ty>) -> Self {
                server.clone().unwrap_or_else(|| self.clone())
            }
        }
    )*};
}

replaced_whole!(
    bool,
    AcmeServer,
    KeyType,
    TlsProfile,
    HttpMode,
    Hsts,
    CronSchedule
);

/// A server overrides each image on its own (a registry mirror for one of them).
impl Setting for Images {
    type Override = Option<ImageOverrides>;
    fn resolve(&self, server: &Option<ImageOverrides>) -> Self {
        let own = server.clone().unwrap_or_default();
        Images {
            nginx: own.nginx.unwrap_or_else(|| self.nginx.clone()),
            certbot: own.certbot.unwrap_or_else(|| self.certbot.clone()),
        }
    }
}

/// The settings in force for one server (the templates read them as `settings.KEY`): the chosen
/// values, and what follows from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    #[serde(flatten)]
    pub chosen: super::Chosen,
    /// The `Strict-Transport-Security` header value, or None when HSTS is off.
    pub hsts_header: Option<String>,
    /// The image of `dns`'s plugin, when there is a `dns`.
    pub dns_image: Option<ImageRef>,
    /// What the proxy's nginx image accepts, from the version its tag names.
    pub nginx: NginxSupport,
    /// The node label of a swarm server's proxies; None on compose.
    pub node_label: Option<NodeLabel>,
}

impl Deref for Settings {
    type Target = super::Chosen;
    fn deref(&self) -> &super::Chosen {
        &self.chosen
    }
}

impl Settings {
    /// The ACME profile `cert` is ordered with: its own, else the server's (or the global) one.
    pub fn profile_of<'a>(&'a self, cert: &'a Certificate) -> Option<&'a ProfileName> {
        cert.profile.as_ref().or(self.profile.as_ref())
    }

    /// Whether `cert`'s site serves HTTP/3: its own choice, else the server's (or the global) one.
    pub fn http3_of(&self, cert: &Certificate) -> bool {
        cert.http3.unwrap_or(self.http3)
    }
}

impl Config {
    /// The settings in force for `server`.
    pub fn settings(&self, server: &Server) -> Settings {
        let mut chosen = self.chosen(server);
        // A CA bundle, an EAB and a fallback belong to an ACME server: a server with its own ACME
        // server does not inherit the global ones (the bundle would replace the system's trust for
        // that server, the EAB is another CA's account, the fallback was chosen for another CA).
        if server.acme_server.is_some() {
            chosen.acme_ca_bundle = server.acme_ca_bundle.clone();
            chosen.eab = server.eab.clone();
            chosen.fallback_acme_server = server.fallback_acme_server.clone();
        }
        if server.fallback_acme_server.is_some() || server.acme_server.is_some() {
            chosen.fallback_eab = server.fallback_eab.clone();
        }
        // On a swarm the proxies hold port 80: check refuses an explicit on-demand there.
        if server.engine == Engine::Swarm {
            chosen.http = HttpMode::Redirect;
        }
        Settings {
            hsts_header: chosen.hsts.header(),
            dns_image: chosen
                .dns
                .as_ref()
                .and_then(|d| d.image(&chosen.images.certbot)),
            nginx: NginxSupport::of(&chosen.images.nginx),
            node_label: match server.engine {
                Engine::Swarm => Some(
                    server
                        .node_label
                        .clone()
                        .unwrap_or_else(NodeLabel::default_label),
                ),
                Engine::Compose => None,
            },
            chosen,
        }
    }
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
    /// `server NAME resolve;` in an upstream block (nginx 1.27.3): an upstream name re-resolved
    /// while nginx runs, so its connections can be kept alive. Before it, a name goes through a
    /// variable, resolved per request, with a new connection each time.
    pub resolve: bool,
}

impl NginxSupport {
    /// The oldest nginx the templates work with at all: `http2 on;` needs 1.25.1.
    pub const OLDEST: NginxVersion = NginxVersion(1, 25, 1);

    fn of(image: &ImageRef) -> NginxSupport {
        let at_least = |v| image.nginx_version().map_or(true, |have| have >= v);
        NginxSupport {
            post_quantum: at_least(NginxVersion(1, 30, 0)),
            header_inherit: at_least(NginxVersion(1, 29, 3)),
            resolve: at_least(NginxVersion(1, 27, 3)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::DEFAULT_CERTBOT_IMAGE;
    use crate::validate::PemBundle;

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
}
