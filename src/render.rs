//! Renders the whole output tree in memory from a [`Config`].
//!
//! `templates/` mirrors the output one to one: `{server}` in a path stands for each server's
//! name and `{certificate}` for each certificate's name; a `.j2` suffix marks a template (it is
//! stripped), anything else is copied as it is. A template that renders to nothing but white
//! space produces no file (that is how optional files, like the CA bundle, are left out).
//! `templates/_partials/` holds pieces that several templates include.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use include_dir::{include_dir, Dir, DirEntry};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{context, Environment, UndefinedBehavior, Value};

use crate::config::{Challenge, Config};
use crate::names::{LIB_SH, SCHEMA_FILE};
use crate::validate::{DomainName, Upstream};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Templates under this folder are included by others and produce no file of their own.
const PARTIALS: &str = "_partials/";

/// One file of the output, relative to OUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub contents: String,
    pub executable: bool,
}

/// The whole output, relative to OUT, in a stable order.
pub type Tree = BTreeMap<PathBuf, GeneratedFile>;

/// The one template environment: strict about undefined values, no auto-escaping (it would
/// JSON-escape the `.yml` templates), trailing newlines kept, and quoting filters for each
/// language a value can land in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_global("certgen_version", env!("CARGO_PKG_VERSION"));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A template error shows the template, its line and the values around it (also in release
    // builds, where minijinja leaves this off).
    env.set_debug(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.add_filter("sh", |s: String| sh_quote(&s));
    env.add_filter("yaml", |s: String| yaml_quote(&s));
    env.add_filter("cron", |s: String| cron_quote(&s));
    // A YAML double-quoted scalar is also a valid Python string literal (the same escapes).
    env.add_filter("py", |s: String| yaml_quote(&s));
    // A certificate's names, as DomainName writes them: for nginx (IPv6 in brackets), and as the
    // certificate's folder (a wildcard without its `*.`).
    let name = |n: &str| DomainName::parse(n).expect("names in the context were validated");
    env.add_filter("host", move |n: String| name(&n).host());
    env.add_filter("lineage", move |n: String| name(&n).lineage().to_string());
    env.add_test("ip", move |n: String| name(&n).ip().is_some());
    let upstream = |u: &str| Upstream::parse(u).expect("upstreams in the context were validated");
    env.add_test("fixed_address", move |u: String| {
        upstream(&u).is_fixed_address()
    });
    env.add_filter("server_address", move |u: String| {
        upstream(&u).server_address()
    });
    env.add_filter("upstream_host", move |u: String| {
        upstream(&u).host().to_string()
    });
    for file in template_files(&TEMPLATES) {
        let name = file.path().to_string_lossy().into_owned();
        if name.ends_with(".j2") {
            let source = file
                .contents_utf8()
                .expect("templates are UTF-8")
                .to_string();
            env.add_template_owned(name, source)
                .expect("templates parse (checked by tests)");
        }
    }
    env
}

fn template_files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut files = Vec::new();
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => files.extend(template_files(d)),
            DirEntry::File(f) => files.push(f),
        }
    }
    files
}

/// What wrote a tree: certgen's version and a revision of its templates (the first 12 hex digits
/// of a SHA-256 over every template's path and content), as the manifest records it. Worked out
/// once: a plan and its messages ask for it several times.
pub fn generator() -> &'static str {
    static GENERATOR: std::sync::LazyLock<String> = std::sync::LazyLock::new(hash_templates);
    &GENERATOR
}

fn hash_templates() -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let mut files = template_files(&TEMPLATES);
    files.sort_by_key(|f| f.path());
    for file in files {
        hash.update(file.path().to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(file.contents());
        hash.update([0]);
    }
    let revision = format!("{:x}", hash.finalize());
    format!(
        "certgen {}, templates {}",
        env!("CARGO_PKG_VERSION"),
        &revision[..12]
    )
}

/// Renders every generated file of the tree, and the config's JSON Schema. `certgen.yaml` is not
/// one of them: it is the user's source (`init` writes the first one).
pub fn render(config: &Config) -> Result<Tree, minijinja::Error> {
    let env = environment();
    let mut tree = Tree::new();
    tree.insert(
        PathBuf::from(SCHEMA_FILE),
        GeneratedFile {
            contents: Config::json_schema(),
            executable: false,
        },
    );
    let cfg = Value::from(Serde(config));
    for file in template_files(&TEMPLATES) {
        let template_path = file.path().to_string_lossy().into_owned();
        if template_path.starts_with(PARTIALS) {
            continue;
        }
        for (path, ctx) in expand(&template_path, config, &cfg) {
            let contents = match template_path.strip_suffix(".j2") {
                Some(_) => env.get_template(&template_path)?.render(ctx)?,
                None => file
                    .contents_utf8()
                    .expect("templates are UTF-8")
                    .to_string(),
            };
            if template_path.ends_with(".j2") && contents.trim().is_empty() {
                continue;
            }
            let path = PathBuf::from(path.strip_suffix(".j2").unwrap_or(&path));
            // Scripts are executable; lib.sh is sourced by them, not run.
            let executable = path.extension().is_some_and(|e| e == "sh")
                && path.file_name().is_some_and(|n| n != LIB_SH);
            tree.insert(
                path,
                GeneratedFile {
                    contents,
                    executable,
                },
            );
        }
    }
    Ok(tree)
}

/// The output paths a template path stands for, each with its rendering context: `cfg` (the
/// whole config) always; `server`, `slug` (its compose project name part), `settings` (the
/// global settings with the server's overrides), `profiles` (each certificate's ACME profile
/// or none), `has_http` and `has_dns` (whether any certificate uses http-01, dns-01),
/// `server_path` (the server folder's path on the machine, from `deploy_path`, or none)
/// and `ip_site` (the certificate with IP addresses, the default site, or none) under
/// `{server}`, `has_http3` (whether any site serves HTTP/3) and `users_files` (the password files
/// of basic auth, each once); `cert`, `https_upstream` (whether its site forwards anything to an
/// `https://` upstream), `http3` (whether it serves HTTP/3) and `locations` (`/`, then the routes:
/// each a prefix and a route) under `{certificate}`.
fn expand(template_path: &str, config: &Config, cfg: &Value) -> Vec<(String, Value)> {
    if !template_path.contains("{server}") {
        return vec![(template_path.to_string(), context! { cfg })];
    }
    let mut out = Vec::new();
    for server in &config.servers {
        let path = template_path.replace("{server}", server.name.as_str());
        let settings = config.settings(server);
        // Each certificate's ACME profile: its own, else the server's (or the global) one.
        let profiles: BTreeMap<String, Option<String>> = server
            .certificates
            .iter()
            .map(|c| {
                let profile = settings.profile_of(c).map(ToString::to_string);
                (c.name().to_string(), profile)
            })
            .collect();
        let ip_site = server
            .certificates
            .iter()
            .find(|c| c.has_ip())
            .map(|c| c.name().to_string());
        // Where the server's folder lives on the machine, when certgen.yaml says (deploy_path).
        let server_path = server.deploy_path.as_ref().map(|p| match p.as_str() {
            "/" => format!("/{}", server.name),
            p => format!("{p}/{}", server.name),
        });
        // Which challenges the server's certificates use: the temporary nginx is there for
        // http-01 only, the DNS plugin's container for dns-01 only.
        let has_http = server
            .certificates
            .iter()
            .any(|c| c.challenge == Challenge::Http01);
        let has_dns = server
            .certificates
            .iter()
            .any(|c| c.challenge == Challenge::Dns01);
        let swarm = settings.node_label.is_some();
        // HTTP/3 on any site: the proxy listens on UDP 443.
        let has_http3 = server.certificates.iter().any(|c| settings.http3_of(c));
        // Basic auth's password files, which the proxy alone is given.
        let users_files: BTreeSet<String> = server
            .certificates
            .iter()
            .flat_map(|c| c.users_files())
            .map(ToString::to_string)
            .collect();
        let server_ctx = context! {
            cfg,
            swarm,
            server_path,
            has_http,
            has_dns,
            has_http3,
            users_files,
            server => Value::from(Serde(server)),
            slug => server.name.project_slug(),
            settings => Value::from(Serde(&settings)),
            profiles,
            ip_site,
        };
        if !path.contains("{certificate}") {
            out.push((path, server_ctx));
            continue;
        }
        for cert in &server.certificates {
            let cert_path = path.replace("{certificate}", cert.name());
            let ctx = context! {
                cert => Value::from(Serde(cert)),
                https_upstream => cert.has_https_upstream(),
                http3 => settings.http3_of(cert),
                locations => Value::from(Serde(cert.locations())),
                ..server_ctx.clone()
            };
            out.push((cert_path, ctx));
        }
    }
    out
}

/// Quotes a value as one shell word.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quotes a value as a YAML double-quoted scalar.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quotes a value as one shell word in a crontab line, where cron turns `%` into a newline.
pub fn cron_quote(s: &str) -> String {
    sh_quote(s).replace('%', r"\%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(yaml_quote("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
        assert_eq!(cron_quote("/srv/50%"), r"'/srv/50\%'");
    }

    #[test]
    fn every_template_parses() {
        let env = environment();
        for file in template_files(&TEMPLATES) {
            let name = file.path().to_string_lossy();
            if name.ends_with(".j2") {
                env.get_template(&name).unwrap();
            }
        }
    }
}
