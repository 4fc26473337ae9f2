//! Reading and writing `certgen.yaml`: errors with file, line and column; the JSON Schema.

use super::{Certificate, Config, Server, DEFAULT_UPSTREAM};
use crate::validate::Upstream;
use crate::BadInput;
use std::path::Path;

impl Config {
    /// The JSON Schema of `certgen.yaml`, from these types: keys, types, defaults, and each
    /// value's rule as its description.
    pub fn json_schema() -> String {
        let schema = schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Config>();
        let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
        text.push('\n');
        text
    }

    /// `certgen.yaml` as `init` writes it: the schema line editors read (yaml-language-server), a
    /// header, then the team's choices: every key whose value differs from certgen's default,
    /// and the pins that make the tree reproducible (images, schedule). A default certgen
    /// improves later reaches every tree at its next render; `render --explain` shows them all.
    pub fn to_yaml(&self) -> String {
        let mut value = serde_yaml::to_value(self).expect("a Config always serializes");
        let defaults = Config::new(self.renew_schedule.clone(), Vec::new());
        prune(
            &mut value,
            &defaults,
            &["images", "renew_schedule", "servers"],
        );
        let servers = value.get_mut("servers").and_then(|s| s.as_sequence_mut());
        let default_upstream = Upstream::parse(DEFAULT_UPSTREAM).expect("valid default");
        for (server, value) in self.servers.iter().zip(servers.into_iter().flatten()) {
            let bare = Server::new(server.name.clone(), None, Vec::new());
            prune(value, &bare, &["name", "certificates"]);
            let certs = value
                .get_mut("certificates")
                .and_then(|c| c.as_sequence_mut());
            for (cert, value) in server.certificates.iter().zip(certs.into_iter().flatten()) {
                // Every key at its default but the names and where the site forwards.
                let bare = Certificate {
                    upstream: cert.upstream.clone(),
                    ..Certificate::new(cert.domains.clone(), default_upstream.clone())
                };
                prune(value, &bare, &["domains", "upstream"]);
            }
        }
        let body = serde_yaml::to_string(&value).expect("a Config always serializes");
        format!(
            "# yaml-language-server: $schema=./certgen.schema.json\n\
             # Your choices; every other key is certgen's default (certgen render --explain).\n{}",
            flow_domains(&body)
        )
    }

    /// Every key with the value in force, defaults included: what `render --explain` prints.
    pub fn to_yaml_explained(&self) -> String {
        let body = serde_yaml::to_string(self).expect("a Config always serializes");
        format!(
            "# Every key of this certgen.yaml with the value certgen uses: yours where you gave one,\n\
             # certgen {}'s default for the others.\n{body}",
            env!("CARGO_PKG_VERSION")
        )
    }

    /// Reads a config; every error names the file, line and column, and a mistyped key comes
    /// with the key that was probably meant.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, BadInput> {
        refuse_secrets(text, path)?;
        // serde_path_to_error: the keys that lead to a bad value, for a type that serves several.
        let yaml = serde_yaml::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(yaml).map_err(|e| {
            let keys: Vec<String> = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .collect();
            let e = e.into_inner();
            let message = name_the_key(&describe_yaml_error(&e.to_string()), &keys);
            let place = e
                .location()
                .map(|l| locate_value(text, &message, l.line()).unwrap_or((l.line(), l.column())));
            BadInput(match place {
                Some((line, column)) => format!("{}:{line}:{column}: {message}", path.display()),
                None => format!("{}: {message}", path.display()),
            })
        })?;
        config
            .check()
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        Ok(config)
    }
}

impl Config {
    /// Values that change nothing, said once as a note: never errors, since a value that does
    /// what the default does is harmless.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for server in &self.servers {
            for cert in &server.certificates {
                if !cert.verify_upstream && !cert.has_https_upstream() {
                    notes.push(format!(
                        "note: server {:?}, certificate {}: verify_upstream: false has no effect: \
                         this site forwards to no https:// upstream",
                        server.name.as_str(),
                        cert.name()
                    ));
                }
            }
        }
        notes
    }
}

/// Removes from the mapping `value` each key, but `keep`, whose value is the one `defaults` has.
fn prune(value: &mut serde_yaml::Value, defaults: &impl serde::Serialize, keep: &[&str]) {
    let defaults = serde_yaml::to_value(defaults).expect("defaults serialize");
    let (Some(map), Some(defaults)) = (value.as_mapping_mut(), defaults.as_mapping()) else {
        return;
    };
    map.retain(|key, v| {
        key.as_str().is_some_and(|k| keep.contains(&k)) || defaults.get(key) != Some(v)
    });
    // Within a setting given (dns), its own unset keys say nothing either.
    for v in map.values_mut() {
        if let Some(inner) = v.as_mapping_mut() {
            inner.retain(|_, v| !v.is_null());
        }
    }
}

/// A certificate's names on one line, `domains: [a.example.com, b.example.com]`, as a reader
/// writes them; a name YAML would read otherwise (a wildcard's `*`) is quoted.
fn flow_domains(yaml: &str) -> String {
    let mut out = String::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(indent) = line
            .strip_suffix("domains:")
            .filter(|i| i.trim().trim_start_matches('-').is_empty())
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let item = format!("{}- ", " ".repeat(indent.len()));
        let mut names = Vec::new();
        while let Some(name) = lines.peek().and_then(|l| l.strip_prefix(&item)) {
            names.push(if name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                name.to_string()
            } else {
                crate::render::yaml_quote(name.trim_matches('\''))
            });
            lines.next();
        }
        out.push_str(&format!("{indent}domains: [{}]\n", names.join(", ")));
    }
    out
}

/// A monitor's ping URL is a bearer token: whoever has it can report success and silence the
/// alert. `notify_url` (certgen 0.1 had it) is refused wherever it is, naming its line, never its
/// value, and saying where the URL goes instead.
fn refuse_secrets(text: &str, path: &Path) -> Result<(), BadInput> {
    let key = regex!(r"^[ \t-]*(notify_url)[ \t]*:");
    let Some((line, column)) = text.lines().enumerate().find_map(|(i, line)| {
        let key = key.captures(line)?.get(1)?;
        Some((i + 1, key.start() + 1))
    }) else {
        return Ok(());
    };
    Err(BadInput(format!(
        "{}:{line}:{column}: notify_url: a ping URL is a secret (whoever has it can report success \
         and silence the alert), so it never goes in certgen.yaml or git. Write `notify: true` \
         here instead, put the URL on each server in SERVER/{}/{} (mode 600, in a folder of \
         mode 700), and if this file was committed with it, make a new check URL on the monitor",
        path.display(),
        crate::names::SECRETS_DIR,
        crate::names::NOTIFY_URL_FILE
    )))
}

/// Where the value a validation error names stands, from `from_line` on. The YAML reader
/// places errors of a value's own type at the event before it (the previous key, or the start
/// of the mapping), so this finds the value itself: its first occurrence as a whole scalar.
fn locate_value(text: &str, message: &str, from_line: usize) -> Option<(usize, usize)> {
    let invalid = regex!(r#"(?:^|: )[a-z_.]+ "([^"\\]+)" is not valid: "#);
    let value = invalid.captures(message)?.get(1)?.as_str();
    let bounded = |b: Option<char>| b.map_or(true, |c| " \"'[],{}:".contains(c));
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find_map(|(i, line)| {
            let at = line.match_indices(value).map(|(at, _)| at).find(|&at| {
                bounded(line[..at].chars().next_back())
                    && bounded(line[at + value.len()..].chars().next())
            })?;
            Some((i + 1, at + 1))
        })
}

/// The message with the key as the file writes it, where one type serves several keys: a
/// `fallback_acme_server` is checked as an `acme_server`, a `fallback_eab.kid` as an `eab.kid`.
/// `keys` lead to the value.
fn name_the_key(message: &str, keys: &[String]) -> String {
    let Some(key) = regex!(r#"([a-z_][a-z_.]*) ""#)
        .captures(message)
        .and_then(|c| c.get(1))
    else {
        return message.to_string();
    };
    let depth = key.as_str().matches('.').count() + 1;
    let written = keys[keys.len().saturating_sub(depth)..].join(".");
    if written != key.as_str() && written.ends_with(&format!("_{}", key.as_str())) {
        // (serde_yaml's own prefix, `fallback_eab: `, is then said by the key.)
        format!("{written}{}", &message[key.end()..])
    } else {
        message.to_string()
    }
}

/// serde's message without the position (it is printed in front) and with a suggestion for an
/// unknown key.
fn describe_yaml_error(message: &str) -> String {
    let position = regex!(r" at line \d+ column \d+");
    let unknown = regex!(r"unknown (?:field|variant) `([^`]*)`, expected (.*)");
    let message = position.replace(message, "").into_owned();
    let Some(caps) = unknown.captures(&message) else {
        return message;
    };
    let typed = &caps[1];
    let suggestion = caps[2]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (strsim::levenshtein(typed, known), known))
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 3))
        .min();
    match suggestion {
        Some((_, known)) => format!("{message}; did you mean `{known}`?"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    // Errors say what the user wrote and the rule, never a library's words: "expected u32",
    // "relative URL without a base", "its domain a domain name cannot be empty".
    #[test]
    fn errors_are_in_the_users_words() {
        let base = "renew_schedule: \"1 2 * * *\"\nservers:\n- name: a\n  certificates:\n  \
                    - domains: [a.example.com]\n    upstream: http://app:1\n";
        for (extra, expected) in [
            (
                "warn_days: -3\n",
                "warn_days \"-3\" is not valid: a number of days",
            ),
            ("warn_days: 14 days\n", "warn_days \"14 days\" is not valid"),
            (
                "email: ops@\n",
                "the domain after @ is not valid: a domain name cannot be empty",
            ),
            ("acme_server: x\n", "not a URL (no scheme:// in front)"),
        ] {
            let err = error_of(&format!("{extra}{base}"));
            assert!(err.contains(expected), "{extra}: {err}");
            for internal in ["u32", "relative URL", "its domain a"] {
                assert!(!err.contains(internal), "{extra}: {err}");
            }
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

    /// The error reading `text` as c.yaml.
    fn error_of(text: &str) -> String {
        Config::from_yaml(text, Path::new("c.yaml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_their_place() {
        let text = "renew_schedule: \"1 2,14 * * *\"\nservers:\n  - name: prod\n    deploy_path: /srv\n    certificates:\n      - domains: [\"bad;name.example\"]\n        upstream: http://app:80\n";
        let err = error_of(text);
        assert!(err.starts_with("c.yaml:6:"), "{err}");
        assert!(err.contains("bad;name.example"), "{err}");
        assert!(
            !err.contains(" at line "),
            "the position is printed once: {err}"
        );
    }

    // The YAML reader places a value's own error at the key before it; the error
    // points at the value.
    #[test]
    fn errors_name_the_key_written() {
        let text = "fallback_acme_server: ftp://x\nrenew_schedule: \"1 2,14 * * *\"\nservers: []\n";
        assert!(
            error_of(text).contains(":1:23: fallback_acme_server \"ftp://x\" is not valid"),
            "{}",
            error_of(text)
        );
    }

    #[test]
    fn errors_point_at_the_value_not_the_key_before() {
        let text = "email: ops@example.com\nacme_server: http://ca.example/dir\nrenew_schedule: \"1 2,14 * * *\"\nservers: []\n";
        let err = error_of(text);
        assert!(err.starts_with("c.yaml:2:14: "), "{err}");
    }

    // A mistyped key suggests the key meant.
    #[test]
    fn typos_suggest_the_key_meant() {
        let text = "renew_schedule: \"1 2,14 * * *\"\nservers:\n  - name: prod\n    deploy_path: /srv\n    certificates:\n      - domainz: [a.example]\n        upstream: http://app:80\n";
        let err = error_of(text);
        assert!(err.contains("unknown field `domainz`"), "{err}");
        assert!(err.ends_with("did you mean `domains`?"), "{err}");
        let far = "renew_schedule: \"1 2,14 * * *\"\nsomething_else: 1\nservers: []\n";
        let err = error_of(far);
        assert!(!err.contains("did you mean"), "{err}");
        let variant = "renew_schedule: \"1 2,14 * * *\"\ntls: moden\nservers: []\n";
        let err = error_of(variant);
        assert!(err.ends_with("did you mean `modern`?"), "{err}");
    }
}
