//! Reading and writing `certgen.yaml`: errors with file, line and column; the JSON Schema.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::Config;
use crate::BadInput;

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
    /// short header, then every setting.
    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).expect("a Config always serializes");
        format!(
            "# yaml-language-server: $schema=./certgen.schema.json\n\
             # certgen.yaml: every choice behind the generated tree. Edit it, then run `certgen render`;\n\
             # do not edit the generated files by hand (`certgen check` finds such edits).\n{body}"
        )
    }

    /// Reads a config; every error names the file, line and column, and a mistyped key comes
    /// with the key that was probably meant.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config, BadInput> {
        refuse_secrets(text, path)?;
        let config: Config = serde_yaml::from_str(text).map_err(|e| {
            let message = describe_yaml_error(&e.to_string());
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

/// A monitor's ping URL is a bearer token: whoever has it can report success and silence the
/// alert. `notify_url` (certgen 0.1 had it) is refused wherever it is, naming its line, never its
/// value, and saying where the URL goes instead.
fn refuse_secrets(text: &str, path: &Path) -> Result<(), BadInput> {
    static KEY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[ \t-]*(notify_url)[ \t]*:").expect("valid regex"));
    let Some((line, column)) = text.lines().enumerate().find_map(|(i, line)| {
        let key = KEY.captures(line)?.get(1)?;
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
    static INVALID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?:^|: )[a-z_]+ "([^"\\]+)" is not valid: "#).expect("valid regex")
    });
    let value = INVALID.captures(message)?.get(1)?.as_str();
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

/// serde's message without the position (it is printed in front) and with a suggestion for an
/// unknown key.
fn describe_yaml_error(message: &str) -> String {
    static POSITION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r" at line \d+ column \d+").expect("valid regex"));
    static UNKNOWN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"unknown (?:field|variant) `([^`]*)`, expected (.*)").expect("valid regex")
    });
    let message = POSITION.replace(message, "").into_owned();
    let Some(caps) = UNKNOWN.captures(&message) else {
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
