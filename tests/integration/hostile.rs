//! The hostile-input corpus: for every flag and every config key, values carrying shell,
//! nginx, YAML and crontab syntax, newlines, NUL, `../`, Unicode lookalikes, 300-character names
//! and empty values. Each is rejected with exit 2, a message naming the flag or key, and no file
//! created.

use std::fs;
use std::path::PathBuf;

use assert_fs::TempDir;

use crate::fixture::Repo;
use crate::helpers::{certgen, files_under};

/// The fragments spliced into otherwise valid values.
const FRAGMENTS: &[&str] = &[
    ";",
    "{",
    "}",
    "$",
    "'",
    "\"",
    "\\",
    "%",
    "#",
    "`",
    "\n",
    "$(reboot)",
    " ",
];

/// Hostile variants of a valid value: each fragment spliced in the middle and at the end, `../`
/// in front, the same value with a Cyrillic lookalike letter, a 300-character name and the
/// empty value.
fn variants(valid: &str, long: String) -> Vec<String> {
    let middle = valid.len() / 2;
    let mut out: Vec<String> = FRAGMENTS
        .iter()
        .flat_map(|f| {
            [
                format!("{}{f}{}", &valid[..middle], &valid[middle..]),
                format!("{valid}{f}"),
            ]
        })
        .collect();
    out.push(format!("../{valid}"));
    out.push(
        valid
            .replacen('a', "\u{0430}", 1)
            .replacen('o', "\u{043e}", 1),
    );
    out.push(long);
    out.push(String::new());
    out.retain(|v| v != valid);
    out
}

fn long_label() -> String {
    "a".repeat(300)
}

/// Each flag with a valid value, and a 300-character form of it (the template's `{}` a long label).
fn flags() -> Vec<(&'static str, &'static str, String)> {
    [
        ("--domain", "example.com", "{}.com"),
        ("--email", "ops@example.com", "{}@example.com"),
        ("--server", "prod-app", "{}"),
        ("--upstream", "http://app:8080", "http://{}:8080"),
        (
            "--acme-server",
            "https://ca.example.com/acme/dir",
            "https://{}.example.com/dir",
        ),
        ("--http", "redirect", "{}"),
        ("--eab-kid", "kid_1", "{};"),
        (
            "--domain",
            "example.com=http://app:3000",
            "example.com=http://{}:3000",
        ),
        ("--deploy-path", "/srv/infra", "/srv/{}"),
        ("--nginx-image", "nginx:1.30", "nginx:{}"),
        ("--certbot-image", "certbot/certbot:v5.8.0", "{}/certbot:v5"),
        ("--dns", "rfc2136", "{}"),
        ("--profile", "shortlived", "{}"),
        ("--engine", "swarm", "{}"),
    ]
    .into_iter()
    .map(|(flag, valid, long)| (flag, valid, long.replace("{}", &long_label())))
    .collect()
}

#[test]
fn every_flag_rejects_hostile_values_and_writes_nothing() {
    let mut failures = Vec::new();
    for (flag, valid, long) in flags() {
        for value in variants(valid, long) {
            let tmp = TempDir::new().unwrap();
            let mut args = vec![
                "init".to_string(),
                "--out".into(),
                tmp.path().display().to_string(),
            ];
            if flag != "--domain" {
                args.extend(["--domain".into(), "example.com".into()]);
            }
            if flag == "--http" && value == "on-demand" {
                continue;
            }
            args.extend([flag.to_string(), value.clone()]);
            let out = certgen().args(&args).run();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let named = stderr.contains(flag);
            let written = files_under(tmp.path());
            if out.status.code() != Some(2) || !named || !written.is_empty() {
                failures.push(format!(
                    "{flag} {value:?}: exit {:?}, flag named: {named}, files: {written:?}\n{stderr}",
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_hostile_ca_bundle_is_rejected() {
    let pem = |body: &str| {
        format!("-----BEGIN CERTIFICATE-----\nMII{body}B\n-----END CERTIFICATE-----\n")
    };
    let mut bodies: Vec<String> = FRAGMENTS
        .iter()
        .filter(|f| **f != "\n" && **f != " ")
        .map(|f| f.to_string())
        .collect();
    bodies.extend(["../".to_string(), "\u{0430}".to_string(), "\0".to_string()]);
    let mut contents: Vec<String> = bodies.iter().map(|b| pem(b)).collect();
    contents.extend([
        "".to_string(),
        "not a certificate".to_string(),
        "-----BEGIN CERTIFICATE-----\nMIIB".to_string(),
    ]);
    for content in contents {
        let tmp = TempDir::new().unwrap();
        let bundle = tmp.path().join("ca.pem");
        fs::write(&bundle, &content).unwrap();
        let out = tmp.path().join("out");
        let err = certgen()
            .args([
                "init",
                "--domain",
                "example.com",
                "--acme-ca-bundle",
                bundle.to_str().unwrap(),
                "--out",
            ])
            .args([&out])
            .fails_with(2);
        assert!(err.contains("--acme-ca-bundle"), "{content:?}: {err}");
        assert!(!out.exists(), "{content:?}: files were written");
    }
}

/// A valid config, with `{KEY}` where the hostile value goes.
const TEMPLATE: &str = "\
email: {email}
acme_server: {acme_server}
fallback_acme_server: {fallback}
caa_resolver: {caa_resolver}
key_type: {key_type}
tls: {tls}
http: {http}
hsts:
  max_age: {hsts_max_age}
warn_days: {warn_days}
notify: true
metrics_dir: {metrics_dir}
http3: true
profile: {profile}
dns:
  provider: {dns_provider}
  propagation_seconds: {propagation}
  image: {dns_image}
eab:
  kid: {eab_kid}
fallback_eab:
  kid: {fallback_kid}
images:
  nginx: {nginx}
  certbot: {certbot}
renew_schedule: {schedule}
servers:
- name: {name}
  deploy_path: {deploy_path}
  email: {server_email}
  acme_server: {server_acme}
  images:
    nginx: {server_nginx}
  renew_schedule: {server_schedule}
  http: {server_http}
  networks: [{network}]
  trusted_proxies: [{trusted_proxy}]
  certificates:
  - domains: [{domain}]
    upstream: {upstream}
    upstream_ca: {upstream_ca}
    routes:
      {route}: {route_upstream}
      /health/: {upstream: http://app:8080, auth: {route_auth}, allow: [{route_allow}]}
    max_body_size: {max_body_size}
    headers:
      {header_name}: {header_value}
    rate_limit:
      per_second: {per_second}
      burst: {burst}
    timeouts:
      connect: {connect}
      read: {read}
    challenge: {challenge}
  - domains: [old.example.com]
    redirect: {redirect}
    allow: [{allow}]
    auth: {realm: {realm}, users: {users}}
    satisfy: {satisfy}
- name: swarm-edge
  engine: swarm
  node_label: {node_label}
  dns:
    provider: {server_dns_provider}
    image: {server_dns_image}
  certificates:
  - domains: [swarm.example.com]
    upstream: http://app:8080
    challenge: dns-01
";

/// Each key, the name it shows in errors, its valid value, and a 300-character value.
fn keys() -> Vec<(&'static str, &'static str, &'static str, String)> {
    let l = long_label();
    vec![
        (
            "{email}",
            "email",
            "ops@example.com",
            format!("{l}@example.com"),
        ),
        (
            "{acme_server}",
            "acme_server",
            "https://ca.example.com/dir",
            format!("https://{l}.example/dir"),
        ),
        (
            "{fallback}",
            "fallback_acme_server",
            "https://ca3.example.com/dir",
            format!("https://{l}.example/dir"),
        ),
        (
            "{caa_resolver}",
            "caa_resolver",
            "192.0.2.53:5353",
            format!("{l}:53"),
        ),
        ("{key_type}", "key_type", "ecdsa", l.clone()),
        ("{tls}", "tls", "modern", l.clone()),
        ("{http}", "http", "redirect", l.clone()),
        ("{server_http}", "http", "on-demand", l.clone()),
        ("{hsts_max_age}", "max_age", "63072000", "9".repeat(300)),
        ("{warn_days}", "warn_days", "14", "99999".to_string()),
        (
            "{metrics_dir}",
            "metrics_dir",
            "/var/lib/node_exporter/textfile",
            format!("/var/{l} x"),
        ),
        ("{profile}", "profile", "shortlived", l.clone()),
        ("{dns_provider}", "provider", "rfc2136", l.clone()),
        (
            "{propagation}",
            "propagation_seconds",
            "30",
            "99999".to_string(),
        ),
        (
            "{dns_image}",
            "image",
            "certbot/dns-rfc2136:v5.8.0",
            format!("{l}:v5"),
        ),
        ("{challenge}", "challenge", "dns-01", l.clone()),
        (
            "{allow}",
            "allow",
            "203.0.113.0/24",
            format!("203.0.113.0/{l}"),
        ),
        (
            "{redirect}",
            "redirect",
            "https://example.com",
            format!("https://{l}.example"),
        ),
        ("{network}", "networks", "apps_default", l.clone()),
        (
            "{trusted_proxy}",
            "trusted_proxies",
            "10.0.0.0/8",
            format!("10.0.0.0/{l}"),
        ),
        ("{route}", "routes", "/api/", format!("/{l}/")),
        (
            "{route_upstream}",
            "upstream",
            "http://api:8080",
            format!("http://{l}:8080"),
        ),
        ("{route_auth}", "auth", "off", l.clone()),
        ("{route_allow}", "allow", "10.0.0.2", format!("10.0.0.{l}")),
        ("{realm}", "auth.realm", "Staff", format!("{l}$x")),
        ("{eab_kid}", "eab.kid", "kid_1", format!("{l};")),
        (
            "{fallback_kid}",
            "fallback_eab.kid",
            "kid_2",
            format!("{l};"),
        ),
        ("{users}", "auth.users", "staff", format!("../{l}")),
        ("{satisfy}", "satisfy", "either", l.clone()),
        ("{max_body_size}", "max_body_size", "20m", format!("{l}m")),
        (
            "{header_name}",
            "headers",
            "X-Frame-Options",
            format!("X-{l}"),
        ),
        (
            "{per_second}",
            "per_second",
            "10",
            "99999999999".to_string(),
        ),
        ("{burst}", "burst", "20", "99999999999".to_string()),
        ("{header_value}", "headers", "DENY", format!("{l}$x")),
        ("{connect}", "timeout", "5s", format!("{l}s")),
        ("{read}", "timeout", "1h", format!("1{l}")),
        ("{nginx}", "image", "nginx:1.30", format!("nginx:{l}")),
        (
            "{certbot}",
            "image",
            "certbot/certbot:v5.8.0",
            format!("{l}:v5"),
        ),
        (
            "{schedule}",
            "renew_schedule",
            "1 2,14 * * *",
            format!("1 2,14 * * {l}"),
        ),
        ("{name}", "name", "prod-app", l.clone()),
        (
            "{deploy_path}",
            "deploy_path",
            "/srv/infra",
            format!("/srv/{l}"),
        ),
        (
            "{server_email}",
            "email",
            "it@example.com",
            format!("{l}@example.com"),
        ),
        (
            "{server_acme}",
            "acme_server",
            "https://ca2.example.com/dir",
            format!("https://{l}.example/dir"),
        ),
        (
            "{server_nginx}",
            "image",
            "mirror.example.com/nginx:1.30",
            format!("{l}/nginx:1.30"),
        ),
        (
            "{server_schedule}",
            "renew_schedule",
            "3 4,16 * * *",
            format!("{l} 4,16 * * *"),
        ),
        ("{domain}", "domain", "example.com", format!("{l}.com")),
        (
            "{upstream}",
            "upstream",
            "https://app:8443",
            format!("https://{l}:8443"),
        ),
        ("{upstream_ca}", "upstream_ca", PEM, format!("{PEM}{l}")),
        ("{node_label}", "node_label", "certgen.proxy", l.clone()),
        ("{server_dns_provider}", "provider", "cloudflare", l.clone()),
        (
            "{server_dns_image}",
            "image",
            "certbot/dns-cloudflare:v5.8.0",
            format!("{l}:v5"),
        ),
    ]
}

/// A CA certificate in PEM form (its content is not parsed, only its shape).
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/// Whether a variant is in fact valid: PEM allows whitespace in its base64, and text around the
/// blocks (openssl prints a subject line) is dropped. What is kept must be PEM alone.
fn still_valid(key: &str, value: &str) -> bool {
    // Inside nginx's double quotes, `;`, braces, quotes and spaces are text, and a header value
    // (a Content-Security-Policy) or a realm may hold them; `"`, `\` and `$` are refused.
    if key == "{header_value}" {
        return certgen::validate::HeaderValue::parse(value).is_ok();
    }
    if key == "{realm}" {
        return certgen::validate::AuthRealm::parse(value).is_ok();
    }
    key == "{upstream_ca}"
        && certgen::validate::UpstreamCa::parse(value).is_ok_and(|ca| {
            let pem = ca.as_str();
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            pem.starts_with("-----BEGIN CERTIFICATE-----")
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/= ".contains(&b))
        })
}

fn config_with(hostile_key: &str, value: &str) -> String {
    let mut text = TEMPLATE.to_string();
    for (key, _, valid, _) in keys() {
        let v = if key == hostile_key { value } else { valid };
        // A number stays a YAML number; anything else is a quoted string.
        let numeric = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let quoted = if numeric {
            v.to_string()
        } else {
            certgen::render::yaml_quote(v)
        };
        text = text.replace(key, &quoted);
    }
    text
}

/// Does the error name the file, the line of `key`'s value and a column, and the key by name?
/// A value certgen cannot find in the text as it is (empty, or with characters YAML escapes) is
/// placed where the YAML reader says, at the key before it or the mapping's start: then any line
/// up to the value's passes.
fn names_the_place(stderr: &str, key: &str, shown: &str, value: &str) -> bool {
    let line = TEMPLATE
        .lines()
        .position(|l| l.contains(key))
        .expect("the key is in the template")
        + 1;
    let Some(rest) = stderr.strip_prefix("error: certgen.yaml:") else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(l), Some(c), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(l), Ok(_)) = (l.parse::<usize>(), c.parse::<usize>()) else {
        return false;
    };
    // `KEY "value" is not valid: ...` (a value of a validated type) or `...KEY: ...` (serde's
    // own: an unknown variant, a wrong type).
    let keyed =
        message.contains(&format!(" {shown} \"")) || message.contains(&format!("{shown}: "));
    let unfindable = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\');
    // serde's own errors (a wrong type, an unknown variant) carry the value's position already.
    let by_serde = message.contains(&format!("{shown}: "));
    let placed = if unfindable && !by_serde {
        l <= line
    } else {
        l == line
    };
    placed && keyed
}

#[test]
fn every_config_key_rejects_hostile_values_and_writes_nothing() {
    // The template itself is valid.
    Repo::rendered(&config_with("", ""));

    let mut failures = Vec::new();
    for (key, shown, valid, long) in keys() {
        let mut values = variants(valid, long);
        values.push(format!("{valid}\0"));
        values.retain(|v| !still_valid(key, v));
        for value in values {
            let repo = Repo::new(&config_with(key, &value));
            let out = repo.render_output();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let named = names_the_place(&stderr, key, shown, &value);
            let written = files_under(repo.path());
            if out.status.code() != Some(2) || !named || written != [PathBuf::from("certgen.yaml")]
            {
                failures.push(format!(
                    "{key} {value:?}: exit {:?}, named: {named}, files: {}\n{stderr}",
                    out.status.code(),
                    written.len()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// Catches: a monitor's ping URL (a bearer token) accepted into certgen.yaml, and so into
// git and the generated files; the error repeating it; anything written.
#[test]
fn a_ping_url_in_the_config_is_refused_without_repeating_it() {
    let url = "https://hc-ping.com/0f3a1b2c-aaaa-bbbb-cccc-123456789abc";
    let valid = config_with("", "");
    let server_line = valid
        .lines()
        .position(|l| l.starts_with("- name:"))
        .unwrap()
        + 2;
    for (text, line) in [
        (format!("notify_url: {url}\n{valid}"), 1),
        (
            valid.replacen("- name:", &format!("- notify_url: '{url}'\n  name:"), 1),
            server_line - 1,
        ),
    ] {
        let stderr = Repo::new(&text).refused();
        assert!(
            stderr.starts_with(&format!("error: certgen.yaml:{line}:"))
                && stderr.contains("notify: true")
                && stderr.contains("secrets/notify-url"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("hc-ping"),
            "the error repeats the URL: {stderr}"
        );
    }
}
