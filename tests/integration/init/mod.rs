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

mod refused;

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

// Catches: a config that restates certgen's defaults (37 lines for one domain), freezing each
// default certgen improves later into every tree; the short config must render the same tree
// as the one with every key spelled out.
#[test]
fn the_config_holds_the_choices_and_renders_the_same_tree_as_every_key() {
    let repo = Repo::initialized(&["--domain", "example.com", "--email", "ops@example.com"]);
    let short = fs::read_to_string(repo.path().join("certgen.yaml")).unwrap();
    assert!(short.lines().count() <= 12, "{short}");
    let full = certgen()
        .current_dir(repo.path())
        .args(["render", "--explain"])
        .succeeds();
    assert!(
        full.contains("key_type: ecdsa") && full.contains("max_body_size: 100m"),
        "{full}"
    );
    let path = repo.path().join("full.yaml");
    fs::write(&path, &full).unwrap();
    let tree = certgen::render::render(&Config::from_yaml(&full, &path).unwrap()).unwrap();
    let differences = tree_differences(
        repo.path(),
        &tree,
        &["certgen.yaml", ".certgen-manifest", "full.yaml"],
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn defaults_are_pinned_and_named_after_the_first_domain() {
    let tmp = TempDir::new().unwrap();
    init(tmp.path(), &[]);
    let yaml = fs::read_to_string(tmp.path().join("certgen.yaml")).unwrap();
    assert!(yaml.contains("nginx: nginx:1.30"), "{yaml}");
    assert!(yaml.contains("certbot: certbot/certbot:v5.8.0"), "{yaml}");
    assert!(
        !yaml.contains("key_type"),
        "a default is not a choice: {yaml}"
    );
    assert!(
        yaml.contains("upstream: http://host.docker.internal:8080"),
        "{yaml}"
    );
    assert!(tmp
        .path()
        .join("example.com/nginx-for-cert/run.sh")
        .is_file());
    for compose in ["nginx-for-cert", "nginx-ssl"] {
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
    let compose = fs::read_to_string(
        out.path()
            .join("example.com/nginx-for-cert/docker-compose.yml"),
    )
    .unwrap();
    assert!(
        compose.contains("{type: bind, source: ../acme-ca.pem, target: /etc/certgen/acme-ca.pem, read_only: true}"),
        "{compose}"
    );
    assert!(
        compose.contains("REQUESTS_CA_BUNDLE: /etc/certgen/acme-ca.pem"),
        "{compose}"
    );
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
        ("dev.example.com", "server 10.0.0.21:3000;"),
        ("img-dev.example.com", "server app:8080 resolve;"),
        ("example.com", "server 10.0.0.11:3000;"),
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
