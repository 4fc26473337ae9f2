//! `certgen init` as a user runs it, in temporary folders.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_fs::prelude::*;
use assert_fs::TempDir;

use certgen::config::Config;

use crate::fixture::Repo;
use crate::helpers::{certgen, files_under, repo, run};
use crate::snapshots::tree_differences;

fn init(out: &Path, extra: &[&str]) -> String {
    certgen()
        .args([
            "init",
            "--domain",
            "example.com,www.example.com",
            "--domain",
            "img.example.com",
        ])
        .args(["--email", "ops@example.com", "--out"])
        .args([out])
        .args(extra)
        .succeeds()
}

#[test]
fn init_writes_the_documented_tree() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.child("infra");
    init(out.path(), &["--server", "prod"]);
    for file in [
        "certgen.yaml",
        ".gitignore",
        "prod/README.md",
        "prod/nginx-for-cert/docker-compose.yml",
        "prod/nginx-for-cert/nginx/conf.d/challenge.conf",
        "prod/nginx-for-cert/certbot-webroot/.gitkeep",
        "prod/nginx-for-cert/run.sh",
        "prod/nginx-ssl/docker-compose.yml",
        "prod/nginx-ssl/nginx/conf.d/00-certgen.conf",
        "prod/nginx-ssl/nginx/sites/example.com.conf",
        "prod/nginx-ssl/nginx/sites/img.example.com.conf",
        "prod/nginx-ssl/nginx/proxy.sh",
        "prod/nginx-ssl/nginx/custom/README.md",
        "prod/nginx-ssl/nginx/custom/http/.gitkeep",
        "prod/nginx-ssl/nginx/custom/example.com/.gitkeep",
        "prod/renew/docker-compose.yml",
        "prod/renew/run.sh",
        "prod/renew/crontab",
        "prod/certifications/.gitkeep",
    ] {
        out.child(file).assert(predicates::path::is_file());
    }
    for script in [
        "prod/nginx-for-cert/run.sh",
        "prod/renew/run.sh",
        "prod/nginx-ssl/nginx/proxy.sh",
    ] {
        let mode = fs::metadata(out.child(script).path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{script}");
    }
    // No CA bundle was given, so no acme-ca.pem.
    out.child("prod/acme-ca.pem")
        .assert(predicates::path::missing());
}

// certgen.yaml holds every choice: rendering it again gives exactly the tree init wrote.
#[test]
fn certgen_yaml_renders_back_to_the_same_tree() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &["--upstream", "http://app:3000", "--staging"]);
    let path = tmp.path().join("certgen.yaml");
    let config = Config::from_yaml(&fs::read_to_string(&path).unwrap(), &path).unwrap();
    let tree = certgen::render::render(&config).unwrap();
    let differences = tree_differences(tmp.path(), &tree, &["certgen.yaml", ".certgen-manifest"]);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(config.acme_server.as_str().contains("acme-staging-v02"));
}

#[test]
fn defaults_are_pinned_and_named_after_the_first_domain() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &[]);
    let yaml = fs::read_to_string(tmp.path().join("certgen.yaml")).unwrap();
    assert!(yaml.contains("nginx: nginx:1.30"), "{yaml}");
    assert!(yaml.contains("certbot: certbot/certbot:v5.8.0"), "{yaml}");
    assert!(yaml.contains("key_type: ecdsa"), "{yaml}");
    assert!(
        yaml.contains("upstream: http://host.docker.internal:8080"),
        "{yaml}"
    );
    assert!(tmp
        .path()
        .join("example.com/nginx-for-cert/run.sh")
        .is_file());
    for compose in ["nginx-for-cert", "nginx-ssl", "renew"] {
        let text = fs::read_to_string(
            tmp.path()
                .join(format!("example.com/{compose}/docker-compose.yml")),
        )
        .unwrap();
        assert!(
            !text.contains("version:"),
            "{compose}: compose files carry no version key"
        );
        assert!(!text.contains(":latest"), "{compose}: images are pinned");
        assert!(
            text.contains("name: certgen-example-com-"),
            "{compose}: a project name of its own"
        );
    }
}

// The cron line: absolute path from --deploy-path, twice a day, logged, and the same minute for
// the same flags (stable output).
#[test]
fn the_crontab_line_runs_renew_by_absolute_path_at_a_stable_time() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    init(
        a.path(),
        &["--deploy-path", "/srv/infra", "--server", "prod"],
    );
    init(
        b.path(),
        &["--deploy-path", "/srv/infra", "--server", "prod"],
    );
    let line_of = |dir: &Path| {
        let text = fs::read_to_string(dir.join("prod/renew/crontab")).unwrap();
        text.lines()
            .find(|l| !l.starts_with('#'))
            .unwrap()
            .to_string()
    };
    let line = line_of(a.path());
    assert_eq!(line, line_of(b.path()));
    let fields: Vec<&str> = line.split(' ').collect();
    assert!(fields[0].parse::<u32>().unwrap() < 60, "{line}");
    assert_eq!(fields[1].split(',').count(), 2, "twice a day: {line}");
    assert!(
        line.contains("'/srv/infra/prod/renew/run.sh' >> '/srv/infra/prod/renew/renew.log' 2>&1"),
        "{line}"
    );
}

// Without --deploy-path the tree names no path of the machine that generated it (a
// laptop's /home/alice/infra); it works wherever it is cloned.
#[test]
fn without_a_deploy_path_no_path_of_this_machine_is_written() {
    let tmp = TempDir::new().unwrap();
    certgen()
        .current_dir(tmp.path())
        .args(["init", "--domain", "example.com", "--out", "infra"])
        .succeeds();
    let here = tmp.path().canonicalize().unwrap();
    for path in files_under(&tmp.path().join("infra")) {
        let text = fs::read_to_string(tmp.path().join("infra").join(&path)).unwrap();
        for machine in [
            here.to_str().unwrap(),
            tmp.path().to_str().unwrap(),
            "/tmp/",
        ] {
            assert!(
                !text.contains(machine),
                "{}: names {machine}",
                path.display()
            );
        }
    }
    let yaml = fs::read_to_string(tmp.path().join("infra/certgen.yaml")).unwrap();
    assert!(!yaml.contains("deploy_path"), "{yaml}");
    let crontab = fs::read_to_string(tmp.path().join("infra/example.com/renew/crontab")).unwrap();
    assert!(
        crontab.contains("#   renew/run.sh --install-cron")
            && crontab.lines().all(|l| l.starts_with('#')),
        "nothing a naive install would run: {crontab}"
    );
}

#[test]
fn a_ca_bundle_is_copied_into_the_tree_and_mounted_read_only() {
    let tmp = TempDir::new().unwrap();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBoDCCAUWgAwIBAgIU\n-----END CERTIFICATE-----\n";
    tmp.child("ca.pem").write_str(pem).unwrap();
    let out = tmp.child("infra");
    init(
        out.path(),
        &[
            "--acme-server",
            "https://ca.internal.example/acme/dir",
            "--acme-ca-bundle",
            tmp.child("ca.pem").path().to_str().unwrap(),
        ],
    );
    out.child("example.com/acme-ca.pem").assert(pem);
    for compose in ["nginx-for-cert", "renew"] {
        let text = fs::read_to_string(
            out.path()
                .join(format!("example.com/{compose}/docker-compose.yml")),
        )
        .unwrap();
        assert!(
            text.contains("{type: bind, source: ../acme-ca.pem, target: /etc/certgen/acme-ca.pem, read_only: true}"),
            "{compose}"
        );
        assert!(
            text.contains("REQUESTS_CA_BUNDLE: /etc/certgen/acme-ca.pem"),
            "{compose}"
        );
    }
}

#[test]
fn an_existing_tree_is_refused_without_force_and_left_unchanged() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &[]);
    let before = snapshot(tmp.path());
    let err = certgen()
        .args(["init", "--domain", "other.example.com", "--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(err.contains("already has a certgen.yaml"), "{err}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_user_file_in_the_way_is_refused_without_force() {
    let tmp = TempDir::new().unwrap();
    tmp.child("example.com/README.md")
        .write_str("my own notes\n")
        .unwrap();
    let err = certgen()
        .args(["init", "--domain", "example.com", "--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(err.contains("example.com/README.md"), "{err}");
    assert!(
        !tmp.path().join("certgen.yaml").exists(),
        "nothing is written"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("example.com/README.md")).unwrap(),
        "my own notes\n"
    );
}

#[test]
fn force_replaces_generated_files_only() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &["--server", "prod"]);
    let certs = tmp.child("prod/certifications");
    certs
        .child("live/example.com/privkey.pem")
        .write_str("KEY")
        .unwrap();
    certs
        .child("accounts/acme/account.json")
        .write_str("ACCOUNT")
        .unwrap();
    certs
        .child(".gitkeep")
        .write_str("touched by the user")
        .unwrap();
    tmp.child("prod/nginx-ssl/nginx/conf.d/custom.conf")
        .write_str("# mine")
        .unwrap();
    tmp.child("prod/renew/run.sh").write_str("edited").unwrap();

    init(tmp.path(), &["--server", "prod", "--force"]);

    certs.child("live/example.com/privkey.pem").assert("KEY");
    certs.child("accounts/acme/account.json").assert("ACCOUNT");
    certs.child(".gitkeep").assert("touched by the user");
    tmp.child("prod/nginx-ssl/nginx/conf.d/custom.conf")
        .assert("# mine");
    let script = fs::read_to_string(tmp.path().join("prod/renew/run.sh")).unwrap();
    assert!(
        script.starts_with("#!/usr/bin/env bash"),
        "the generated script is back"
    );
}

// After an issuance, git stages nothing of certifications/ but .gitkeep.
#[test]
fn git_never_stages_keys_certificates_accounts_or_renewal_state() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &["--server", "prod"]);
    let certs = tmp.child("prod/certifications");
    for file in [
        "live/example.com/privkey.pem",
        "live/example.com/fullchain.pem",
        "archive/example.com/privkey1.pem",
        "accounts/acme-v02.api.letsencrypt.org/directory/abc/private_key.json",
        "renewal/example.com.conf",
        "renewal-hooks/deploy/.keep",
        ".certgen-reload-proxy",
    ] {
        certs.child(file).write_str("secret").unwrap();
    }
    tmp.child("prod/nginx-for-cert/certbot-webroot/.well-known/acme-challenge/token")
        .write_str("t")
        .unwrap();
    tmp.child("prod/renew/renew.log").write_str("log").unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert!(run("git", &["-C", dir, "init", "-q"]).status.success());
    assert!(run("git", &["-C", dir, "add", "-A"]).status.success());
    let staged =
        String::from_utf8(run("git", &["-C", dir, "diff", "--cached", "--name-only"]).stdout)
            .unwrap();
    let staged: Vec<&str> = staged.lines().collect();
    assert!(
        staged.contains(&"prod/certifications/.gitkeep"),
        "{staged:?}"
    );
    assert!(
        staged.contains(&"prod/nginx-for-cert/certbot-webroot/.gitkeep"),
        "{staged:?}"
    );
    for path in &staged {
        let under_store =
            path.starts_with("prod/certifications/") || path.contains("certbot-webroot/");
        assert!(
            !under_store || path.ends_with(".gitkeep"),
            "{path} would be committed"
        );
        assert!(!path.ends_with(".log"), "{path} would be committed");
    }
}

#[test]
fn a_link_leading_out_of_the_tree_is_refused() {
    let tmp = TempDir::new().unwrap();
    let outside = TempDir::new().unwrap();
    let out = tmp.child("infra");
    out.create_dir_all().unwrap();
    std::os::unix::fs::symlink(outside.path(), out.path().join("prod")).unwrap();
    let err = certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "--server",
            "prod",
            "--out",
        ])
        .args([out.path()])
        .fails_with(2);
    assert!(err.contains("leads out of"), "{err}");
    assert!(
        files_under(outside.path()).is_empty(),
        "nothing written outside"
    );
    assert!(
        !out.path().join("certgen.yaml").exists(),
        "nothing written inside"
    );
}

// Every value a user types is checked before anything is written; the message names the flag,
// the value and the rule.
#[test]
fn bad_values_are_rejected_before_anything_is_written() {
    let cases: &[(&[&str], &str)] = &[
        (&["--domain", "exa mple.com"], "--domain"),
        (&["--domain", "*.example.com"], "DNS-01"),
        (&["--domain", "8.8.8.8"], "set `profile: shortlived`"),
        (
            &["--domain", "app.example.com,192.0.2.7"],
            "not a public address",
        ),
        (&["--domain", "example.com;reboot"], "--domain"),
        (
            &["--domain", "example.com", "--email", "a b@example.com"],
            "--email",
        ),
        (
            &["--domain", "example.com", "--email", "a,b@example.com"],
            "--email",
        ),
        (
            &["--domain", "example.com", "--server", "../etc"],
            "--server",
        ),
        (
            &[
                "--domain",
                "example.com",
                "--upstream",
                "http://app:8080/;evil",
            ],
            "--upstream",
        ),
        (
            &["--domain", "example.com", "--upstream", "http://app:70000"],
            "--upstream",
        ),
        (
            &[
                "--domain",
                "example.com",
                "--acme-server",
                "http://insecure.example/dir",
            ],
            "--acme-server",
        ),
        (
            &["--domain", "example.com", "--deploy-path", "relative/path"],
            "--deploy-path",
        ),
        (
            &["--domain", "example.com", "--nginx-image", "nginx:latest"],
            "--nginx-image",
        ),
        (
            &[
                "--domain",
                "example.com",
                "--certbot-image",
                "certbot; rm -rf /",
            ],
            "--certbot-image",
        ),
        (
            &[
                "--domain",
                "example.com",
                "--acme-ca-bundle",
                "/nonexistent/ca.pem",
            ],
            "--acme-ca-bundle",
        ),
        (
            &[
                "--domain",
                "example.com",
                "--staging",
                "--acme-server",
                "https://a.example/dir",
            ],
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
}

// A Unicode name is refused with the punycode to use, so a lookalike cannot slip in.
#[test]
fn unicode_names_are_refused_with_their_punycode() {
    let tmp = TempDir::new().unwrap();
    let err = certgen()
        .args(["init", "--domain", "bücher.example.com", "--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(err.contains("xn--bcher-kva.example.com"), "{err}");
    assert!(files_under(tmp.path()).is_empty());
    certgen()
        .args(["init", "--domain", "xn--bcher-kva.example.com", "--out"])
        .args([tmp.path()])
        .succeeds();
}

#[test]
fn the_readme_commands_match_the_binary() {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme
        .contains("cargo run -- init --domain example.com --email you@example.com --out infra"));
    assert!(readme.contains("cargo test"));
}

fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| (p.clone(), fs::read(dir.join(p)).unwrap()))
        .collect()
}

// Each certificate can forward elsewhere (`--domain NAMES=UPSTREAM`), the others take
// --upstream; --http redirect gives the proxy port 80.
#[test]
fn domain_upstreams_and_the_port_80_mode_land_in_the_tree() {
    let tmp = TempDir::new().unwrap();
    certgen()
        .args(["init", "--server", "edge", "--out"])
        .args([tmp.path()])
        .args(["--domain", "dev.example.com=http://10.0.0.21:3000"])
        .args([
            "--domain",
            "img-dev.example.com,www.img-dev.example.com=http://app:8080",
        ])
        .args([
            "--domain",
            "example.com",
            "--upstream",
            "http://10.0.0.11:3000",
        ])
        .args(["--http", "redirect"])
        .succeeds();
    let sites = tmp.path().join("edge/nginx-ssl/nginx/sites");
    for (site, upstream) in [
        ("dev.example.com", "proxy_pass http://10.0.0.21:3000;"),
        ("img-dev.example.com", "set $upstream http://app:8080;"),
        ("example.com", "proxy_pass http://10.0.0.11:3000;"),
    ] {
        let text = fs::read_to_string(sites.join(format!("{site}.conf"))).unwrap();
        assert!(text.contains(upstream), "{site}: {text}");
    }
    let yaml = fs::read_to_string(tmp.path().join("certgen.yaml")).unwrap();
    assert!(yaml.contains("http: redirect"), "{yaml}");
    let compose = fs::read_to_string(tmp.path().join("edge/nginx-ssl/docker-compose.yml")).unwrap();
    assert!(compose.contains("- \"80:80\""), "{compose}");
    tmp.child("edge/nginx-ssl/nginx/conf.d/port80.conf")
        .assert(predicates::str::contains(
            "return 301 https://$host$request_uri;",
        ));

    // The default mode: the proxy does not publish port 80 and has no port-80 server.
    let default = TempDir::new().unwrap();
    init(default.path(), &["--server", "prod"]);
    let compose =
        fs::read_to_string(default.path().join("prod/nginx-ssl/docker-compose.yml")).unwrap();
    assert!(!compose.contains("80:80"), "{compose}");
    default
        .child("prod/nginx-ssl/nginx/conf.d/port80.conf")
        .assert(predicates::path::missing());
}

#[test]
fn a_bad_upstream_after_the_equals_sign_names_the_flag() {
    let tmp = TempDir::new().unwrap();
    let err = certgen()
        .args(["init", "--domain", "example.com=ftp://app", "--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(
        err.contains("--domain") && err.contains("the upstream after '='"),
        "{err}"
    );
    assert!(files_under(tmp.path()).is_empty());
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

// A key or certificate copied anywhere in the tree is ignored by git; the CA bundle
// certgen writes is not.
#[test]
fn git_ignores_keys_and_certificates_anywhere_but_the_ca_bundle() {
    let tmp = TempDir::new().unwrap();
    let bundle = tmp.child("ca.pem");
    bundle
        .write_str("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .unwrap();
    let out = tmp.child("infra");
    init(
        out.path(),
        &[
            "--server",
            "prod",
            "--acme-ca-bundle",
            bundle.path().to_str().unwrap(),
        ],
    );
    for stray in [
        "prod/nginx-ssl/server.key",
        "backup/fullchain.pem",
        "prod/renew/renew.log.1",
    ] {
        out.child(stray).write_str("secret").unwrap();
    }
    assert!(
        run("git", &["-C", out.path().to_str().unwrap(), "init", "-q"])
            .status
            .success()
    );
    let status = run(
        "git",
        &[
            "-C",
            out.path().to_str().unwrap(),
            "status",
            "--porcelain",
            "--untracked-files=all",
        ],
    );
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(listed.contains("prod/acme-ca.pem"), "{listed}");
    for stray in ["server.key", "fullchain.pem", "renew.log.1"] {
        assert!(!listed.contains(stray), "git would add {stray}:\n{listed}");
    }
}

// The scripts run as root from cron, so they refuse a tree that others can change.
// The check comes before anything needs Docker.
#[test]
fn the_scripts_refuse_a_tree_others_can_write() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &["--server", "prod"]);
    let script = tmp.path().join("prod/renew/run.sh");
    let site = tmp
        .path()
        .join("prod/nginx-ssl/nginx/sites/example.com.conf");
    fs::set_permissions(&site, fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} can be changed by users other than",
            site.display()
        )) && stderr.contains("chmod -R go-w"),
        "{stderr}"
    );
    fs::set_permissions(&site, fs::Permissions::from_mode(0o644)).unwrap();

    let infra = tmp.path();
    fs::set_permissions(infra, fs::Permissions::from_mode(0o777)).unwrap();
    let out = std::process::Command::new(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could replace this tree"),
        "a writable folder above the server's: {stderr}"
    );
    fs::set_permissions(infra, fs::Permissions::from_mode(0o755)).unwrap();
}

// A repo's own .gitignore keeps its lines; certgen adds and maintains its marked block.
#[test]
fn an_existing_gitignore_gets_a_block_and_keeps_its_lines() {
    let tmp = TempDir::new().unwrap();
    tmp.child(".gitignore")
        .write_str("node_modules\n.env\n")
        .unwrap();
    init(tmp.path(), &["--server", "prod"]);
    let text = fs::read_to_string(tmp.path().join(".gitignore")).unwrap();
    assert!(
        text.starts_with("node_modules\n.env\n\n# >>> certgen"),
        "{text}"
    );
    assert!(
        text.ends_with("# <<< certgen\n") && text.contains("/*/certifications/*"),
        "{text}"
    );
    // The user's own lines after the block stay too, and check calls them no drift.
    fs::write(tmp.path().join(".gitignore"), format!("{text}dist/\n")).unwrap();
    let config = tmp.path().join("certgen.yaml");
    certgen()
        .args(["check", "--config"])
        .args([&config])
        .succeeds();
    certgen()
        .args(["render", "--config"])
        .args([&config])
        .succeeds();
    assert_eq!(
        fs::read_to_string(tmp.path().join(".gitignore")).unwrap(),
        format!("{text}dist/\n")
    );
}

// The common slips say the fix; short names for Let's Encrypt's servers.
#[test]
fn common_slips_say_the_fix() {
    let tmp = TempDir::new().unwrap();
    let err = certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "www.example.com",
            "--out",
        ])
        .args([tmp.path()])
        .fails_with(2);
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
        let err = certgen()
            .args(["init", "--domain", name, "--out"])
            .args([tmp.path()])
            .fails_with(2);
        assert!(
            err.contains("not under a public suffix") && err.contains("private ACME server"),
            "{err}"
        );
        assert!(files_under(tmp.path()).is_empty());
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
    let tmp = TempDir::new().unwrap();
    certgen()
        .args([
            "init",
            "--domain",
            "example.com,*.example.com",
            "--dns",
            "cloudflare",
            "--out",
        ])
        .args([tmp.path()])
        .succeeds();
    let yaml = fs::read_to_string(tmp.path().join("certgen.yaml")).unwrap();
    assert!(
        yaml.contains("dns:\n  provider: cloudflare\n") && yaml.contains("challenge: dns-01"),
        "{yaml}"
    );
    let compose = fs::read_to_string(
        tmp.path()
            .join("example.com/nginx-for-cert/docker-compose.yml"),
    )
    .unwrap();
    assert!(
        compose.contains("certbot/dns-cloudflare:v5.8.0") && !compose.contains("nginx_for_cert:"),
        "an all-DNS server has no temporary nginx: {compose}"
    );
    let readme = fs::read_to_string(tmp.path().join("example.com/README.md")).unwrap();
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
    let tmp = TempDir::new().unwrap();
    let err = certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "--nginx-image",
            "nginx:1.24.0-alpine",
            "--out",
        ])
        .args([tmp.path()])
        .fails_with(2);
    assert!(
        err.contains("nginx:1.24.0-alpine is nginx 1.24.0, older than 1.25.1")
            && err.contains("http2 on;"),
        "{err}"
    );
    assert!(files_under(tmp.path()).is_empty());

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
