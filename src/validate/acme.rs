//! What names an ACME server and this server's account there: the directory URL (or a known CA's
//! short name), External Account Binding's key id, the profile, and the DNS server the CAA checks
//! ask.

use super::urls::{is_host_name, parse_url};
use super::{invalid, matching, patterns, Invalid};

validated_string! {
    /// An ACME directory URL: https only, and only characters that need no quoting anywhere.
    pub struct AcmeServer for "acme_server";
    schema: "An ACME directory URL (https), or a known CA's short name: letsencrypt, letsencrypt-staging, zerossl, google, google-staging, sslcom.";
    pattern: patterns::ACME_SERVER;
}

/// A CA certgen knows by a short name: its ACME directory, and where a team gets the External
/// Account Binding credentials it requires (None: it requires none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownCa {
    pub name: &'static str,
    pub directory: &'static str,
    pub eab_from: Option<&'static str>,
}

/// The CAs certgen knows by name (their directories as acme.sh lists them).
pub const KNOWN_CAS: &[KnownCa] = &[
    KnownCa {
        name: "letsencrypt",
        directory: AcmeServer::LETS_ENCRYPT,
        eab_from: None,
    },
    KnownCa {
        name: "letsencrypt-staging",
        directory: AcmeServer::LETS_ENCRYPT_STAGING,
        eab_from: None,
    },
    KnownCa {
        name: "zerossl",
        directory: "https://acme.zerossl.com/v2/DV90",
        eab_from: Some(
            "ZeroSSL's dashboard (Developer, EAB Credentials for ACME Clients), or \
             `curl -s https://api.zerossl.com/acme/eab-credentials-email --data email=YOU`",
        ),
    },
    KnownCa {
        name: "google",
        directory: "https://dv.acme-v02.api.pki.goog/directory",
        eab_from: Some(
            "Google Cloud: `gcloud publicca external-account-keys create` (Public CA API \
             enabled in a project)",
        ),
    },
    KnownCa {
        name: "google-staging",
        directory: "https://dv.acme-v02.test-api.pki.goog/directory",
        eab_from: Some(
            "Google Cloud: `gcloud publicca external-account-keys create \
             --universe-domain=staging` (Public CA API enabled in a project)",
        ),
    },
    KnownCa {
        name: "sslcom",
        directory: "https://acme.ssl.com/sslcom-dv-ecc",
        eab_from: Some(
            "your SSL.com account: Dashboard, api credentials (Account Key and HMAC Key)",
        ),
    },
];

impl AcmeServer {
    pub const LETS_ENCRYPT: &'static str = "https://acme-v02.api.letsencrypt.org/directory";
    pub const LETS_ENCRYPT_STAGING: &'static str =
        "https://acme-staging-v02.api.letsencrypt.org/directory";

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "an ACME server is an https:// directory URL, like \
                            https://acme-v02.api.letsencrypt.org/directory, or a short name: \
                            letsencrypt, letsencrypt-staging, zerossl, google, google-staging, \
                            sslcom";
        if let Some(ca) = KNOWN_CAS.iter().find(|ca| ca.name == input) {
            return Ok(AcmeServer(ca.directory.to_string()));
        }
        let safe = input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?=&+@[]".contains(&b));
        if !safe {
            return invalid(
                input,
                format!("{RULE}, with no spaces, quotes or shell characters"),
            );
        }
        let url = parse_url(input, RULE)?;
        if url.scheme() != "https" || !url.username().is_empty() || url.fragment().is_some() {
            return invalid(input, RULE);
        }
        if let Some(url::Host::Domain(d)) = url.host() {
            if !is_host_name(d) {
                return invalid(
                    input,
                    format!("the host {d:?} is not a valid host name; {RULE}"),
                );
            }
        }
        if url.as_str() != input {
            return invalid(
                input,
                format!("write it in its plain form: {}", url.as_str()),
            );
        }
        Ok(AcmeServer(input.to_string()))
    }

    pub fn lets_encrypt() -> Self {
        AcmeServer(Self::LETS_ENCRYPT.to_string())
    }

    pub fn lets_encrypt_staging() -> Self {
        AcmeServer(Self::LETS_ENCRYPT_STAGING.to_string())
    }

    /// Let's Encrypt, production or staging: certgen checks what it documents.
    pub fn is_lets_encrypt(&self) -> bool {
        [Self::LETS_ENCRYPT, Self::LETS_ENCRYPT_STAGING].contains(&self.as_str())
    }

    /// The CA of this directory, when certgen knows it by name.
    pub fn known(&self) -> Option<&'static KnownCa> {
        KNOWN_CAS.iter().find(|ca| ca.directory == self.0)
    }
}

validated_string! {
    /// The key identifier of an ACME account's External Account Binding (`eab.kid`), which the
    /// CA gives with its HMAC key.
    pub struct EabKid for "eab.kid";
    schema: "The EAB key identifier the CA gave: letters, digits, - and _, at most 256.";
    pattern: patterns::EAB_KID;
}

impl EabKid {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let rule =
            "an EAB key identifier is 1 to 256 letters, digits, - and _, as the CA gives it \
                    (the HMAC key is not written here: it goes in the server's secrets/ folder)";
        matching(input, regex!(patterns::EAB_KID), rule).map(EabKid)
    }
}

validated_string! {
    /// The DNS server the CAA checks ask (`caa_resolver`): an IPv4 address, and a port when it is
    /// not 53.
    pub struct CaaResolver for "caa_resolver";
    schema: "The DNS server the CAA checks ask, IPv4[:PORT], like 1.1.1.1.";
    pattern: patterns::CAA_RESOLVER;
}

impl CaaResolver {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let rule = "a resolver is an IPv4 address, with a port when it is not 53: 1.1.1.1, \
                    192.0.2.53:5353";
        let (address, port) = input.split_once(':').unwrap_or((input, "53"));
        match (address.parse::<std::net::Ipv4Addr>(), port.parse::<u16>()) {
            (Ok(_), Ok(1..)) => {
                matching(input, regex!(patterns::CAA_RESOLVER), rule).map(CaaResolver)
            }
            _ => invalid(input, rule),
        }
    }
}

validated_string! {
    /// An ACME profile name, as the CA's directory lists them (Let's Encrypt: `classic`,
    /// `tlsserver`, `shortlived`). Passed to certbot as `--preferred-profile`.
    pub struct ProfileName for "profile";
    schema: "An ACME profile the CA lists: classic, tlsserver, shortlived (Let's Encrypt).";
    pattern: patterns::PROFILE;
}

impl ProfileName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let rule = "a profile is a name the ACME server lists in its directory: lowercase \
                    letters, digits and . _ -, like classic, tlsserver or shortlived";
        matching(input, regex!(super::patterns::PROFILE), rule).map(ProfileName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn acme_servers_are_https() {
        assert!(AcmeServer::parse(AcmeServer::LETS_ENCRYPT).is_ok());
        assert!(AcmeServer::parse("https://10.0.0.1:14000/dir").is_ok());
        check::refused::<AcmeServer>(&[
            "http://example.com/dir",
            "https://ex ample.com",
            "https://a.com/'x",
            "https://a.com/$(id)",
            "ftp://a",
        ]);
    }

    #[test]
    fn caa_resolvers_are_ipv4_with_a_port() {
        for good in ["1.1.1.1", "192.0.2.53:5353", "172.17.0.1:8054"] {
            assert!(CaaResolver::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1.1.1",
            "1.1.1.1:0",
            "1.1.1.1:70000",
            "300.1.1.1",
            "::1",
            "dns.example",
            "1.1.1.1; x",
        ] {
            assert!(CaaResolver::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_cas_have_short_names_and_say_where_eab_comes_from() {
        let zerossl = AcmeServer::parse("zerossl").unwrap();
        assert_eq!(zerossl.as_str(), "https://acme.zerossl.com/v2/DV90");
        assert!(zerossl.known().unwrap().eab_from.is_some());
        assert!(AcmeServer::lets_encrypt()
            .known()
            .unwrap()
            .eab_from
            .is_none());
        assert!(AcmeServer::parse("https://ca.example/dir")
            .unwrap()
            .known()
            .is_none());
        for ca in KNOWN_CAS {
            assert_eq!(AcmeServer::parse(ca.directory).unwrap().known(), Some(ca));
        }
        check::accepted::<EabKid>(&["kid-1", "f_8UIjv2xNU2Le7tl0dVBw"]);
        check::refused::<EabKid>(&["", "a b", "kid;", "k=y"]);
    }

    #[test]
    fn lets_encrypt_has_short_names() {
        assert_eq!(
            AcmeServer::parse("letsencrypt-staging").unwrap(),
            AcmeServer::lets_encrypt_staging()
        );
        assert_eq!(
            AcmeServer::parse("letsencrypt").unwrap(),
            AcmeServer::lets_encrypt()
        );
    }
}
