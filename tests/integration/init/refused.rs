//! What `init` refuses before writing anything: bad values, colliding names, names a CA will not
//! issue for, rules of profiles, DNS-01 and nginx versions; each error says the fix.

use super::*;
use crate::fixture::init_refused;

// Every value a user types is checked before anything is written; the message names the flag,
// the value and the rule.
#[test]
fn bad_values_are_rejected_before_anything_is_written() {
    // The flags after `--domain example.com` (instead of it, where they give --domain), and
    // what the error names.
    let cases: &[(&[&str], &str)] = &[
        (&["--domain", "exa mple.com"], "--domain"),
        (&["--domain", "*.example.com"], "DNS-01"),
        (&["--domain", "8.8.8.8"], "set `profile: shortlived`"),
        (
            &["--domain", "app.example.com,192.0.2.7"],
            "not a public address",
        ),
        (&["--domain", "example.com;reboot"], "--domain"),
        (&["--email", "a b@example.com"], "--email"),
        (&["--email", "a,b@example.com"], "--email"),
        (&["--server", "../etc"], "--server"),
        (&["--upstream", "http://app:8080/;evil"], "--upstream"),
        (&["--upstream", "http://app:70000"], "--upstream"),
        (
            &["--acme-server", "http://insecure.example/dir"],
            "--acme-server",
        ),
        (&["--deploy-path", "relative/path"], "--deploy-path"),
        (&["--nginx-image", "nginx:latest"], "--nginx-image"),
        (&["--certbot-image", "certbot; rm -rf /"], "--certbot-image"),
        (
            &["--acme-ca-bundle", "/nonexistent/ca.pem"],
            "--acme-ca-bundle",
        ),
        (
            &["--staging", "--acme-server", "https://a.example/dir"],
            "--staging",
        ),
        (
            &[
                "--domain",
                "a.example.com",
                "--domain",
                "b.example.com,a.example.com",
            ],
            "two certificates",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = if flags.contains(&"--domain") {
            vec![]
        } else {
            vec!["--domain", "example.com"]
        };
        args.extend_from_slice(flags);
        let err = init_refused(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

// A Unicode name is refused with the punycode to use, so a lookalike cannot slip in.
#[test]
fn unicode_names_are_refused_with_their_punycode() {
    let tmp = TempDir::new().unwrap();
    let err = init_refused(&["--domain", "bücher.example.com"]);
    assert!(err.contains("xn--bcher-kva.example.com"), "{err}");
    certgen()
        .args(["init", "--domain", "xn--bcher-kva.example.com", "--out"])
        .args([tmp.path()])
        .succeeds();
}

#[test]
fn a_bad_upstream_after_the_equals_sign_names_the_flag() {
    let err = init_refused(&["--domain", "example.com=ftp://app"]);
    assert!(
        err.contains("--domain") && err.contains("the upstream after '='"),
        "{err}"
    );
}

// The smaller holes are refused before anything is written.
#[test]
fn colliding_server_names_option_like_emails_and_loopback_upstreams_are_refused() {
    for (flag, value, says) in [
        (
            "--server",
            "certgen.yaml",
            "certgen writes a file of that name",
        ),
        ("--email", "--help@example.com", "cannot start with '-'"),
        (
            "--upstream",
            "http://localhost:3000",
            "host.docker.internal",
        ),
        (
            "--upstream",
            "http://127.0.0.1:3000",
            "host.docker.internal",
        ),
        ("--upstream", "http://[::1]:3000", "host.docker.internal"),
    ] {
        let tmp = TempDir::new().unwrap();
        let err = certgen()
            .args(["init", "--domain", "example.com", "--out"])
            .args([tmp.path()])
            .args([format!("{flag}={value}")])
            .fails_with(2);
        assert!(
            err.contains(flag) && err.contains(says),
            "{flag} {value}: {err}"
        );
        assert!(
            files_under(tmp.path()).is_empty(),
            "{flag} {value}: files written"
        );
    }
}

// The common slips say the fix; short names for Let's Encrypt's servers.
#[test]
fn common_slips_say_the_fix() {
    let tmp = TempDir::new().unwrap();
    let err = init_refused(&["--domain", "example.com", "www.example.com"]);
    assert!(
        err.contains("hint: to put several names on one certificate, separate them with commas: --domain example.com,www.example.com"),
        "{err}"
    );
    let err = certgen()
        .args(["init", "--domain", "https://example.com/", "--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(err.contains("without https://: use example.com"), "{err}");
    assert!(files_under(tmp.path()).is_empty());

    init(tmp.path(), &["--acme-server", "letsencrypt-staging"]);
    let yaml = fs::read_to_string(tmp.path().join("certgen.yaml")).unwrap();
    assert!(
        yaml.contains("acme_server: https://acme-staging-v02.api.letsencrypt.org/directory"),
        "{yaml}"
    );
}

// Let's Encrypt issues only under a public suffix; a private ACME server may.
#[test]
fn names_without_a_public_suffix_need_a_private_acme_server() {
    for name in ["example.local", "app.internal", "printer.lan"] {
        let tmp = TempDir::new().unwrap();
        let err = init_refused(&["--domain", name]);
        assert!(
            err.contains("not under a public suffix") && err.contains("private ACME server"),
            "{err}"
        );
        certgen()
            .args([
                "init",
                "--domain",
                name,
                "--acme-server",
                "https://ca.internal.example/dir",
                "--out",
            ])
            .args([tmp.path()])
            .succeeds();
    }
}

// What Let's Encrypt documents per profile (names per certificate, IP addresses only
// with shortlived and only public ones) is checked before anything is written; a private ACME
// server decides for itself.
#[test]
fn lets_encrypt_profile_limits_are_checked_before_writing() {
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("n{i}.example.com"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["--domain", &names(26), "--profile", "shortlived"], Some("shortlived profile allows at most 25")),
        (&["--domain", &names(26), "--profile", "tlsserver"], Some("tlsserver profile allows at most 25")),
        (&["--domain", &names(26)], None),
        (&["--domain", &names(25), "--profile", "tlsserver"], None),
        (&["--domain", "example.com,8.8.8.8", "--profile", "tlsserver"], Some("only with its shortlived profile (6-day certificates): set `profile: shortlived` on this certificate (it has tlsserver), or give init --profile shortlived")),
        (&["--domain", "example.com,8.8.8.8,2606:4700::1111", "--profile", "shortlived"], None),
        (&["--domain", "example.com,10.0.0.5", "--profile", "shortlived"], Some("10.0.0.5 is not a public address")),
        (&["--domain", "2606:4700::1111,example.com", "--profile", "shortlived"], Some("cannot come first on its certificate")),
        (&["--domain", "a.example.com,8.8.8.8", "--domain", "b.example.com,8.8.4.4", "--profile", "shortlived"], Some("certificates a.example.com and b.example.com both hold IP addresses")),
    ];
    for (args, expected) in cases {
        let tmp = TempDir::new().unwrap();
        let cmd = certgen()
            .args(["init", "--out"])
            .args([tmp.path()])
            .args(*args);
        match expected {
            Some(expected) => {
                let err = cmd.fails_with(2);
                assert!(err.contains(expected), "{args:?}: {err}");
                assert!(files_under(tmp.path()).is_empty(), "{args:?} wrote files");
            }
            None => {
                cmd.succeeds();
            }
        }
    }
    // A private ACME server issues what it likes: a private address, no profile.
    let tmp = TempDir::new().unwrap();
    certgen()
        .args(["init", "--domain", "nas.internal.example,10.0.0.5"])
        .args(["--acme-server", "https://ca.internal.example/dir", "--out"])
        .args([tmp.path()])
        .succeeds();
    let site = fs::read_to_string(
        tmp.path()
            .join("nas.internal.example/nginx-ssl/nginx/sites/nas.internal.example.conf"),
    )
    .unwrap();
    assert!(site.contains("listen 443 ssl default_server;"), "{site}");
    assert!(
        site.contains("server_name nas.internal.example 10.0.0.5;"),
        "{site}"
    );
}

// DNS-01 and wildcards: init --dns, and the rules between keys, checked before
// anything is written, each error saying the fix.
#[test]
fn dns_01_and_wildcards_follow_their_rules() {
    let repo = Repo::initialized(&[
        "--domain",
        "example.com,*.example.com",
        "--dns",
        "cloudflare",
    ]);
    let yaml = fs::read_to_string(repo.path().join("certgen.yaml")).unwrap();
    assert!(
        yaml.contains("dns:\n  provider: cloudflare\n") && yaml.contains("challenge: dns-01"),
        "{yaml}"
    );
    let compose = fs::read_to_string(
        repo.path()
            .join("example.com/nginx-for-cert/docker-compose.yml"),
    )
    .unwrap();
    assert!(
        compose.contains("certbot/dns-cloudflare:v5.8.0") && !compose.contains("nginx_for_cert:"),
        "an all-DNS server has no temporary nginx: {compose}"
    );
    let readme = fs::read_to_string(repo.path().join("example.com/README.md")).unwrap();
    assert!(
        readme.contains("secrets/dns-cloudflare.ini")
            && readme.contains("install -d -m 700 secrets")
    );

    // A wildcard first: the server's folder and the certificate's are the name without `*.`,
    // and its profile reaches the order.
    let tmp = TempDir::new().unwrap();
    certgen()
        .args([
            "init",
            "--domain",
            "*.example.com,example.com",
            "--dns",
            "rfc2136",
        ])
        .args(["--profile", "tlsserver", "--out"])
        .args([tmp.path()])
        .succeeds();
    let issue = fs::read_to_string(tmp.path().join("example.com/nginx-for-cert/run.sh")).unwrap();
    assert!(
        issue.contains("profile='tlsserver' obtain dns example.com '*.example.com' 'example.com'"),
        "{issue}"
    );
    assert!(tmp
        .path()
        .join("example.com/nginx-ssl/nginx/sites/example.com.conf")
        .exists());

    let cases: &[(&[&str], &str)] = &[
        (
            &["--domain", "*.example.com"],
            "set `challenge: dns-01` on this certificate",
        ),
        (
            &["--domain", "a.*.example.com"],
            "only the whole leftmost label",
        ),
        (
            &[
                "--domain",
                "example.com,*.example.com",
                "--domain",
                "*.example.com",
                "--dns",
                "rfc2136",
            ],
            "both be filed as example.com",
        ),
        (
            &[
                "--domain",
                "example.com,8.8.8.8",
                "--dns",
                "rfc2136",
                "--profile",
                "shortlived",
            ],
            "ACME proves over HTTP only",
        ),
        (
            &["--domain", "example.com", "--dns", "bind"],
            "invalid value 'bind' for '--dns",
        ),
        // It wrote 16 paths, then failed with "Is a directory".
        (
            &["--domain", "example.com", "--server", "certgen.schema.json"],
            "certgen writes a file of that name beside the server folders",
        ),
    ];
    for (args, expected) in cases {
        let tmp = TempDir::new().unwrap();
        let err = certgen()
            .args(["init", "--out"])
            .args([tmp.path()])
            .args(*args)
            .fails_with(2);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(files_under(tmp.path()).is_empty(), "{args:?} wrote files");
    }

    let base = "renew_schedule: \"1 2,14 * * *\"\nservers:\n- name: edge\n  certificates:\n  - domains: [example.com]\n    upstream: http://app:80\n    challenge: dns-01\n";
    for (yaml, expected) in [
        (base.to_string(), "challenge: dns-01 needs a DNS provider"),
        (
            format!("dns:\n  provider: route53\n  propagation_seconds: 30\n{base}"),
            "route53 plugin has no propagation_seconds",
        ),
    ] {
        let err = Repo::new(&yaml).refused();
        assert!(err.contains(expected), "{yaml}: {err}");
    }
}

// Catches: an nginx image whose tag names a version too old for the configuration
// (every site down at the next start) accepted; a version that can run it rendered with
// directives it refuses.
#[test]
fn the_nginx_image_tag_decides_what_is_rendered_or_is_refused() {
    let err = init_refused(&[
        "--domain",
        "example.com",
        "--nginx-image",
        "nginx:1.24.0-alpine",
    ]);
    assert!(
        err.contains("nginx:1.24.0-alpine is nginx 1.24.0, older than 1.25.1")
            && err.contains("http2 on;"),
        "{err}"
    );

    for (image, post_quantum, inherit) in [
        ("nginx:1.28", false, false),
        ("nginx:1.29.3", false, true),
        ("nginx:1.30", true, true),
        ("registry.example.com/mirror/nginx:stable", true, true),
    ] {
        let tmp = TempDir::new().unwrap();
        init(tmp.path(), &["--nginx-image", image]);
        let conf = fs::read_to_string(
            tmp.path()
                .join("example.com/nginx-ssl/nginx/conf.d/00-certgen.conf"),
        )
        .unwrap();
        assert_eq!(
            conf.contains("X25519MLKEM768:"),
            post_quantum,
            "{image}: {conf}"
        );
        assert_eq!(
            conf.contains("add_header_inherit merge;"),
            inherit,
            "{image}: {conf}"
        );
        assert!(conf.contains("ssl_ecdh_curve X25519"), "{image}: {conf}");
    }
}
