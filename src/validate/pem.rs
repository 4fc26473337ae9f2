//! PEM certificate bundles (a private ACME server's CA, an https:// upstream's CA).

use super::{invalid, Invalid};

validated_string! {
    /// PEM certificates that the certbot containers trust for a private ACME server.
    pub struct PemBundle for "acme_ca_bundle";
    schema: "PEM certificates (-----BEGIN CERTIFICATE-----) the certbot containers trust for a private ACME server.";
}

impl PemBundle {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let text = input.replace("\r\n", "\n");
        let mut blocks = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(BEGIN) {
            let after = &rest[start + BEGIN.len()..];
            let Some(end) = after.find(END) else {
                return invalid(
                    &abbreviate(input),
                    "a PEM certificate is missing its END line",
                );
            };
            let body = &after[..end];
            if !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=\n ".contains(&b))
            {
                return invalid(&abbreviate(input), "a PEM certificate's body is base64");
            }
            let lines: Vec<&str> = body.split_whitespace().collect();
            blocks.push(format!("{BEGIN}\n{}\n{END}\n", lines.join("\n")));
            rest = &after[end + END.len()..];
        }
        if blocks.is_empty() {
            return invalid(
                &abbreviate(input),
                format!("a CA bundle holds one or more PEM certificates ({BEGIN} ...)"),
            );
        }
        // Only the certificates are kept: text around them has no business in the tree.
        Ok(PemBundle(blocks.concat()))
    }

    pub fn from_file(path: &str) -> Result<Self, Invalid> {
        let text = std::fs::read(path).map_err(|e| Invalid {
            what: "",
            value: path.to_string(),
            rule: format!("cannot read the CA bundle: {e}"),
        })?;
        let text = String::from_utf8(text).map_err(|_| Invalid {
            what: "",
            value: path.to_string(),
            rule: "a CA bundle is a PEM text file; this one is binary".into(),
        })?;
        Self::parse(&text).map_err(|e| Invalid {
            what: "",
            value: path.to_string(),
            rule: e.rule,
        })
    }
}

fn abbreviate(s: &str) -> String {
    let head: String = s.chars().take(40).collect();
    if head.len() < s.len() {
        format!("{head}...")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_hold_certificates() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(PemBundle::parse(pem).is_ok());
        assert!(PemBundle::parse("hello").is_err());
        assert!(PemBundle::parse("-----BEGIN CERTIFICATE-----\nMIIB").is_err());
        let padded = format!("subject=CN x\n{pem}\nrm -rf /\n");
        assert_eq!(PemBundle::parse(&padded).unwrap().as_str(), pem);
    }
}
