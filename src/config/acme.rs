//! The rules of the ACME servers a server orders from: the External Account Binding each needs,
//! a fallback that is another CA, and what Let's Encrypt documents (public names, profiles).

use super::{Certificate, ConfigError, Settings};
use crate::validate::{
    is_public_ip, AcmeServer, DomainName, ProfileName, MAX_NAMES_PER_CERTIFICATE,
};

/// The ACME servers a server orders from: a fallback that is another CA, and the External Account
/// Binding of each that requires one.
pub(super) fn check_acme_servers(server: &str, settings: &Settings) -> Result<(), ConfigError> {
    use crate::names::{EAB_KEY_FILE, FALLBACK_EAB_KEY_FILE};
    let fallback = settings.fallback_acme_server.as_ref();
    if fallback == Some(&settings.acme_server) {
        return Err(ConfigError::FallbackIsPrimary {
            server: server.into(),
            url: settings.acme_server.to_string(),
        });
    }
    if fallback.is_none() && settings.fallback_eab.is_some() {
        return Err(ConfigError::FallbackEabAlone {
            server: server.into(),
        });
    }
    let servers = [
        (
            Some(&settings.acme_server),
            &settings.eab,
            "acme_server",
            "eab",
            EAB_KEY_FILE,
            "; `--eab-kid KID` with init",
        ),
        (
            fallback,
            &settings.fallback_eab,
            "fallback_acme_server",
            "fallback_eab",
            FALLBACK_EAB_KEY_FILE,
            "",
        ),
    ];
    for (url, eab, setting, key, file, init) in servers {
        let Some(ca) = url.and_then(AcmeServer::known) else {
            continue;
        };
        if let (Some(from), None) = (ca.eab_from, eab) {
            return Err(ConfigError::EabNeeded {
                server: server.into(),
                ca: ca.name,
                setting,
                key,
                file,
                init,
                from,
            });
        }
    }
    Ok(())
}

/// Let's Encrypt issues only for names under a public suffix (the public suffix list, through the
/// maintained `psl` crate): `example.local` or `app.internal` would fail only on the server. It
/// validates IP addresses from the internet, so they must be public ones.
pub(super) fn check_public(server: &str, names: &[DomainName]) -> Result<(), ConfigError> {
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
pub(super) fn check_lets_encrypt_profile(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::Config;

    #[test]
    fn each_acme_server_brings_its_eab_and_a_fallback_is_another_ca() {
        use crate::config::Eab;
        use crate::validate::{AcmeServer, EabKid};
        let eab = || {
            Some(Eab {
                kid: EabKid::parse("kid_1").unwrap(),
            })
        };
        let mut c = config(vec![server("a", vec![cert(&["a.example.com"])])]);
        c.acme_server = AcmeServer::parse("zerossl").unwrap();
        let says = |c: &Config, said: [&str; 3]| {
            let err = c.check().unwrap_err().to_string();
            assert!(said.iter().all(|s| err.contains(s)), "{err}");
        };
        says(
            &c,
            [
                "zerossl (acme_server)",
                "`eab: {kid: KID}`",
                "a/secrets/eab-hmac-key",
            ],
        );
        c.eab = eab();
        c.fallback_acme_server = Some(AcmeServer::parse("google").unwrap());
        says(
            &c,
            [
                "google (fallback_acme_server)",
                "`fallback_eab: {kid: KID}`",
                "a/secrets/fallback-eab-hmac-key",
            ],
        );
        c.fallback_eab = eab();
        assert!(c.check().is_ok());
        c.fallback_acme_server = Some(AcmeServer::parse("zerossl").unwrap());
        assert!(matches!(
            c.check(),
            Err(ConfigError::FallbackIsPrimary { .. })
        ));
        c.fallback_acme_server = None;
        assert!(matches!(
            c.check(),
            Err(ConfigError::FallbackEabAlone { .. })
        ));
        // A server with its own ACME server keeps none of the global ones' fallback.
        c.fallback_acme_server = Some(AcmeServer::parse("google").unwrap());
        c.servers[0].acme_server = Some(AcmeServer::lets_encrypt());
        let own = c.settings(&c.servers[0]);
        assert!(own.fallback_acme_server.is_none() && own.fallback_eab.is_none());
    }
}
