//! Property tests: for arbitrary strings, each input is either rejected, or renders a
//! tree where the value appears only in safe form: every script parses with `bash -n`, the
//! crontab line's command parses with `sh -n`, every YAML file parses and certgen.yaml reads back
//! to the same config, and the value carries none of the characters nginx reads as syntax.

use std::path::Path;

use proptest::prelude::*;

use certgen::config::{Certificate, Config, Engine, HttpMode, Route, Server};
use certgen::render::{render, Tree};
use certgen::validate::{
    AcmeServer, CronSchedule, DeployPath, DomainName, Email, ImageRef, NetworkName, NginxSize,
    NginxTime, NodeLabel, PathPrefix, ServerName, TrustedProxy, Upstream,
};

fn base() -> Config {
    let mut config = Config::new(
        CronSchedule::twice_daily("p"),
        vec![Server::new(
            ServerName::parse("prod").unwrap(),
            Some(DeployPath::parse("/srv/infra").unwrap()),
            vec![Certificate::new(
                vec![DomainName::parse("example.com").unwrap()],
                Upstream::parse("http://app:8080").unwrap(),
            )],
        )],
    );
    // A private ACME server: the generated names need not be under a public suffix.
    config.acme_server = AcmeServer::parse("https://ca.internal.example/acme/directory").unwrap();
    config
}

/// Values of each kind's shape (`shape`, mostly valid), the same with the characters that matter
/// mixed in, and anything at all.
fn near(shape: &str) -> impl Strategy<Value = String> {
    let hostile = r#";{}$'"\\%#` \n\t\r\u{0}*&|<>()\u{430}\u{ff45}"#;
    let spliced = (
        proptest::string::string_regex(shape).unwrap(),
        proptest::string::string_regex(&format!("[{}]{{1,3}}", regex_escape(hostile))).unwrap(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(valid, bad, at)| {
            let mut chars: Vec<char> = valid.chars().collect();
            let i = at.index(chars.len() + 1);
            chars.splice(i..i, bad.chars());
            chars.into_iter().collect::<String>()
        });
    prop_oneof![
        2 => proptest::string::string_regex(shape).unwrap(),
        2 => spliced,
        1 => any::<String>(),
    ]
}

fn regex_escape(chars: &str) -> String {
    chars
        .chars()
        .map(|c| {
            if "\\[]^-".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The safety properties of a rendered tree, given the value that went in.
fn assert_safe(config: &Config, tree: &Tree, value: &str) {
    let yaml = config.to_yaml();
    let back =
        Config::from_yaml(&yaml, Path::new("certgen.yaml")).expect("certgen.yaml reads back");
    assert_eq!(&back, config, "certgen.yaml reads back to the same config");
    for (path, file) in tree {
        let name = path.to_string_lossy();
        if name.ends_with(".sh") {
            assert!(
                parses("bash", &["-n"], &file.contents),
                "{name} does not parse with bash -n for {value:?}"
            );
        } else if name.ends_with(".yml") {
            let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&file.contents);
            assert!(parsed.is_ok(), "{name} is not YAML for {value:?}");
        } else if name.ends_with("crontab") {
            let line = file.contents.lines().find(|l| !l.starts_with('#')).unwrap();
            let command = line.splitn(6, ' ').nth(5).unwrap().replace("\\%", "%");
            assert!(!line.contains('\n'));
            assert!(
                parses("sh", &["-n"], &command),
                "the cron command does not parse for {value:?}"
            );
        } else if name.ends_with(".conf") && file.contents.contains(value) {
            assert!(
                !value
                    .chars()
                    .any(|c| c.is_whitespace() || ";{}#'\"$\\`".contains(c)),
                "{name} holds {value:?}, which nginx would read as syntax"
            );
        }
    }
}

fn parses(shell: &str, args: &[&str], script: &str) -> bool {
    crate::helpers::run_with_input(shell, args, script)
        .unwrap()
        .status
        .success()
}

/// Applies the value if it parses and checks the rendered tree; returns whether it was accepted.
fn check_value(value: &str, apply: impl FnOnce(&mut Config) -> bool) -> bool {
    let mut config = base();
    if !apply(&mut config) || config.check().is_err() {
        return false;
    }
    let tree = render(&config).expect("a valid config renders");
    assert_safe(&config, &tree, value);
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn domains(s in near("[a-z0-9]{1,10}(\\.[a-z0-9-]{1,8}){0,2}\\.[a-z]{2,6}")) {
        check_value(&s, |c| DomainName::parse(&s).map(|d| c.servers[0].certificates[0].domains = vec![d]).is_ok());
    }

    #[test]
    fn emails(s in near("[a-z0-9._+-]{1,10}@[a-z0-9]{1,10}\\.[a-z]{2,6}")) {
        check_value(&s, |c| Email::parse(&s).map(|e| c.email = Some(e)).is_ok());
    }

    #[test]
    fn server_names(s in near("[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?")) {
        check_value(&s, |c| ServerName::parse(&s).map(|n| c.servers[0].name = n).is_ok());
    }

    #[test]
    fn upstreams(s in near("[a-z0-9_]{1,12}(\\.[a-z0-9]{1,8}){0,2}(:[0-9]{1,5})?").prop_map(|s| format!("http://{s}"))) {
        check_value(&s, |c| Upstream::parse(&s).map(|u| c.servers[0].certificates[0].upstream = Some(u)).is_ok());
    }

    #[test]
    fn acme_servers(s in near("[a-z0-9]{1,10}\\.[a-z]{2,6}(:[0-9]{2,5})?/[a-z0-9/._-]{0,20}").prop_map(|s| format!("https://{s}"))) {
        check_value(&s, |c| AcmeServer::parse(&s).map(|a| c.acme_server = a).is_ok());
    }

    #[test]
    fn images(s in near("([a-z0-9.-]{1,12}(:[0-9]{2,5})?/)?[a-z0-9]{1,10}(/[a-z0-9_.-]{1,10})?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}")) {
        check_value(&s, |c| ImageRef::parse(&s).map(|i| c.images.nginx = i).is_ok());
    }

    #[test]
    fn deploy_paths(s in near("[a-zA-Z0-9_+@-]{1,12}(/[a-zA-Z0-9._+@-]{1,12}){0,3}").prop_map(|s| format!("/{s}"))) {
        check_value(&s, |c| DeployPath::parse(&s).map(|p| c.servers[0].deploy_path = Some(p)).is_ok());
    }

    #[test]
    fn routes(s in near("(/[a-zA-Z0-9._~-]{1,8}){1,3}/?")) {
        check_value(&s, |c| PathPrefix::parse(&s).map(|p| {
            let upstream = c.servers[0].certificates[0].upstream.clone().unwrap();
            c.servers[0].certificates[0].routes.insert(p, Route::to(upstream));
        }).is_ok());
    }

    #[test]
    fn body_sizes(s in near("[0-9]{1,4}[kmgKMG]?")) {
        check_value(&s, |c| NginxSize::parse(&s).map(|v| c.servers[0].certificates[0].max_body_size = v).is_ok());
    }

    #[test]
    fn timeouts(s in near("[0-9]{1,4}(ms|s|m|h|d)?")) {
        check_value(&s, |c| NginxTime::parse(&s).map(|v| c.servers[0].certificates[0].timeouts.read = v).is_ok());
    }

    #[test]
    fn networks(s in near("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}")) {
        check_value(&s, |c| NetworkName::parse(&s).map(|n| c.servers[0].networks = vec![n]).is_ok());
    }

    #[test]
    fn schedules(s in near("[0-9]{1,2} [0-9]{1,2},[0-9]{1,2} \\* \\* \\*")) {
        check_value(&s, |c| CronSchedule::parse(&s).map(|r| c.renew_schedule = r).is_ok());
    }

    #[test]
    fn trusted_proxies(s in near("([0-9]{1,3}\\.){3}[0-9]{1,3}(/[0-9]{1,2})?|[0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,3}::(/[0-9]{1,3})?")) {
        check_value(&s, |c| TrustedProxy::parse(&s).map(|p| c.servers[0].trusted_proxies = vec![p]).is_ok());
    }

    #[test]
    fn node_labels(s in near("[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?")) {
        check_value(&s, |c| NodeLabel::parse(&s).map(|l| {
            c.servers[0].engine = Engine::Swarm;
            c.servers[0].node_label = Some(l);
        }).is_ok());
    }

    // Whatever a notify_url holds, certgen.yaml with it is refused, and the error
    // does not repeat it (it is a secret).
    #[test]
    fn notify_urls_are_refused_unrepeated(s in near("https://[a-z]{3,10}\\.example/[a-z0-9]{12,20}")) {
        let text = format!("notify_url: {}\n{}", certgen::render::yaml_quote(&s), base().to_yaml());
        let err = Config::from_yaml(&text, Path::new("certgen.yaml")).unwrap_err().to_string();
        prop_assert!(err.contains("notify_url") && err.contains("secrets/notify-url"), "{}", err);
        prop_assert!(s.chars().count() < 12 || !err.contains(&s), "{}", err);
    }
}

/// The generators reach the accepting side too: most values of each kind's shape are accepted,
/// so the properties above are about rendered trees, not only about rejections.
#[test]
fn the_generators_produce_accepted_values() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    type Apply = fn(&str, &mut Config) -> bool;
    let kinds: Vec<(&str, &str, Apply)> = vec![
        ("domain", r"[a-z0-9]{1,10}\.[a-z]{2,6}", |s, c| {
            DomainName::parse(s)
                .map(|d| c.servers[0].certificates[0].domains = vec![d])
                .is_ok()
        }),
        (
            "email",
            r"[a-z0-9]{1,10}@[a-z0-9]{1,10}\.[a-z]{2,6}",
            |s, c| Email::parse(s).map(|e| c.email = Some(e)).is_ok(),
        ),
        (
            "upstream",
            r"http://[a-z0-9]{1,12}:[1-9][0-9]{1,3}",
            |s, c| {
                Upstream::parse(s)
                    .map(|u| c.servers[0].certificates[0].upstream = Some(u))
                    .is_ok()
            },
        ),
        ("image", r"[a-z0-9]{1,10}:[a-z0-9][a-z0-9.]{0,5}", |s, c| {
            ImageRef::parse(s).map(|i| c.images.nginx = i).is_ok()
        }),
        ("deploy path", r"/[a-z0-9]{1,10}/[a-z0-9]{1,10}", |s, c| {
            DeployPath::parse(s)
                .map(|p| c.servers[0].deploy_path = Some(p))
                .is_ok()
        }),
    ];
    for (kind, shape, apply) in kinds {
        let strategy = proptest::string::string_regex(shape).unwrap();
        let accepted = (0..50)
            .filter(|_| {
                let value = strategy.new_tree(&mut runner).unwrap().current();
                check_value(&value, |c| apply(&value, c))
            })
            .count();
        assert!(
            accepted >= 45,
            "{kind}: only {accepted} of 50 values of shape {shape} were accepted"
        );
    }
}

/// Under `CERTGEN_REAL_TOOLS=1`: random accepted names and upstreams, all on one server, render
/// nginx configs that the pinned nginx parses (`nginx -t`, one run for all of them).
#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn accepted_names_and_upstreams_render_configs_nginx_parses() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    if !crate::helpers::opted_in("CERTGEN_REAL_TOOLS", "nginx -t on randomly generated sites") {
        return;
    }
    let mut runner = TestRunner::deterministic();
    let names = proptest::string::string_regex(
        r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]{1,8}){0,2}\.[a-z]{2,6}",
    )
    .unwrap();
    let upstreams = proptest::string::string_regex(
        r"https?://([a-z0-9_]{1,10}(\.[a-z0-9]{1,6}){0,2}|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\]|host\.docker\.internal)(:[1-9][0-9]{0,4})?",
    )
    .unwrap();
    let mut config = base();
    let mut seen = std::collections::HashSet::new();
    while config.servers[0].certificates.len() < 40 {
        let name = names.new_tree(&mut runner).unwrap().current();
        let upstream = upstreams.new_tree(&mut runner).unwrap().current();
        let (Ok(name), Ok(upstream)) = (DomainName::parse(&name), Upstream::parse(&upstream))
        else {
            continue;
        };
        if seen.insert(name.clone()) {
            let mut cert = Certificate::new(vec![name], upstream.clone());
            // Every third site also routes a prefix, so route locations are parsed too.
            if seen.len() % 3 == 0 {
                cert.routes
                    .insert(PathPrefix::parse("/api/").unwrap(), Route::to(upstream));
            }
            config.servers[0].certificates.push(cert);
        }
    }
    config.check().unwrap();
    config.http = HttpMode::Redirect;
    let tree = render(&config).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    for (path, file) in &tree {
        let target = scratch.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, &file.contents).unwrap();
    }
    let out = crate::real_tools::nginx_t(
        &scratch.path().join("prod/nginx-ssl/nginx"),
        &scratch.path().join("live"),
        true,
    );
    assert!(
        out.status.success(),
        "nginx -t failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
