//! The config model: what `certgen.yaml` holds, and the context every template renders from.
//!
//! Every field is a validated type from [`crate::validate`], so a `Config` that exists is safe
//! to render. `init` builds one from flags and writes it out; later runs read it back.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::validate::{
    check_names, AcmeServer, CronSchedule, DeployPath, DomainName, Email, ImageRef, Invalid,
    PemBundle, ServerName, Upstream,
};

/// The nginx image certgen pins: the 1.30 stable series is the oldest that accepts everything the
/// templates emit (`http2 on;` needs 1.25.1, `X25519MLKEM768` needs OpenSSL 3.5, which the
/// official 1.30 images carry). `.ci/setup` builds a stand-in of the same series.
pub const DEFAULT_NGINX_IMAGE: &str = "nginx:1.30";
/// The certbot image certgen pins: 5.x has ACME renewal information (ARI) and profiles.
pub const DEFAULT_CERTBOT_IMAGE: &str = "certbot/certbot:v5.8.0";
/// Where sites forward when no upstream is given: a port published on the Docker host.
pub const DEFAULT_UPSTREAM: &str = "http://host.docker.internal:8080";

/// All of `certgen.yaml`. Unknown keys are errors, so a typo cannot be silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Contact address for the ACME account (expiry and policy mail). None registers without one.
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
    pub images: Images,
    /// When `renew/run.sh` runs, as a cron schedule.
    pub renew_schedule: CronSchedule,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub nginx: ImageRef,
    pub certbot: ImageRef,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            nginx: ImageRef::parse(DEFAULT_NGINX_IMAGE).expect("valid default"),
            certbot: ImageRef::parse(DEFAULT_CERTBOT_IMAGE).expect("valid default"),
        }
    }
}

/// The private key type of every certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    #[default]
    Ecdsa,
    Rsa,
}

/// One machine: its tree is written to `OUT/<name>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: ServerName,
    /// The absolute path of the infra folder (the one holding certgen.yaml) on this server.
    pub deploy_path: DeployPath,
    pub certificates: Vec<Certificate>,
}

/// One certificate, and the site the proxy serves with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The names on the certificate; the first is the certificate's name (its `live/` folder).
    pub names: Vec<DomainName>,
    pub upstream: Upstream,
}

impl Certificate {
    pub fn name(&self) -> &DomainName {
        &self.names[0]
    }
}

/// The rules that span several values (each value alone was checked when it was parsed).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no servers: certgen.yaml needs at least one server under `servers`")]
    NoServers,
    #[error("server {0:?} is listed twice under `servers`")]
    DuplicateServer(String),
    #[error("server {0:?} has no certificates")]
    EmptyServer(String),
    #[error("server {server:?}, certificate {index}: {source}")]
    Names {
        server: String,
        index: usize,
        source: Invalid,
    },
    #[error("server {server:?}: {name} is on two certificates; a name belongs to one certificate per server")]
    NameOnTwoCertificates { server: String, name: String },
}

impl Config {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        for (i, server) in self.servers.iter().enumerate() {
            let name = server.name.as_str();
            if self.servers[..i].iter().any(|s| s.name == server.name) {
                return Err(ConfigError::DuplicateServer(name.into()));
            }
            if server.certificates.is_empty() {
                return Err(ConfigError::EmptyServer(name.into()));
            }
            let mut seen = Vec::new();
            for (index, cert) in server.certificates.iter().enumerate() {
                let joined = cert
                    .names
                    .iter()
                    .map(DomainName::as_str)
                    .collect::<Vec<_>>()
                    .join(",");
                check_names(&joined, &cert.names).map_err(|source| ConfigError::Names {
                    server: name.into(),
                    index: index + 1,
                    source,
                })?;
                for n in &cert.names {
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

    /// `certgen.yaml` as certgen writes it: a short header, then every setting.
    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).expect("a Config always serializes");
        format!(
            "# certgen.yaml: every choice behind the generated tree. Edit it and render the tree again;\n\
             # do not edit the generated files by hand.\n{body}"
        )
    }

    pub fn from_yaml(text: &str, path: &Path) -> anyhow::Result<Config> {
        let config: Config = serde_yaml::from_str(text).map_err(|e| match e.location() {
            Some(l) => anyhow::anyhow!("{}:{}:{}: {e}", path.display(), l.line(), l.column()),
            None => anyhow::anyhow!("{}: {e}", path.display()),
        })?;
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> Certificate {
        Certificate {
            names: names
                .iter()
                .map(|n| DomainName::parse(n).unwrap())
                .collect(),
            upstream: Upstream::parse(DEFAULT_UPSTREAM).unwrap(),
        }
    }

    fn config(servers: Vec<Server>) -> Config {
        Config {
            email: None,
            acme_server: AcmeServer::lets_encrypt(),
            acme_ca_bundle: None,
            key_type: KeyType::Ecdsa,
            images: Images::default(),
            renew_schedule: CronSchedule::twice_daily("x"),
            servers,
        }
    }

    fn server(name: &str, certificates: Vec<Certificate>) -> Server {
        Server {
            name: ServerName::parse(name).unwrap(),
            deploy_path: DeployPath::parse("/srv/infra").unwrap(),
            certificates,
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
            server("a", vec![cert(&["a.example"])]),
            server("a", vec![cert(&["b.example"])]),
        ]);
        assert!(matches!(dup.check(), Err(ConfigError::DuplicateServer(_))));
        assert!(matches!(
            config(vec![server("a", vec![])]).check(),
            Err(ConfigError::EmptyServer(_))
        ));
        let twice = config(vec![server(
            "a",
            vec![cert(&["a.example"]), cert(&["b.example", "a.example"])],
        )]);
        assert!(matches!(
            twice.check(),
            Err(ConfigError::NameOnTwoCertificates { .. })
        ));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_place() {
        let text = "renew_schedule: \"1 2,14 * * *\"\nservers:\n  - name: prod\n    deploy_path: /srv\n    certificates:\n      - names: [\"bad;name.example\"]\n        upstream: http://app:80\n";
        let err = Config::from_yaml(text, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.yaml:6:"), "{err}");
        assert!(err.contains("bad;name.example"), "{err}");
        let typo = "renew_schedulez: x\n";
        let err = Config::from_yaml(typo, Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `renew_schedulez`"), "{err}");
    }
}
