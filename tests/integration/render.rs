//! `certgen render` and `certgen check`: certgen.yaml as the source of truth of a tree that lives
//! in a repo for years.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use assert_fs::prelude::*;
use assert_fs::TempDir;

use crate::fixture::init_refused;
use crate::fixture::{Repo, TWO_SERVERS};
use crate::helpers::{certgen, files_under};

/// Every file with its bytes, mode and modification time.
fn state(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32, SystemTime)> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let meta = fs::metadata(&path).unwrap();
            (
                rel,
                fs::read(&path).unwrap(),
                meta.permissions().mode(),
                meta.modified().unwrap(),
            )
        })
        .collect()
}

#[test]
fn render_writes_every_server_and_a_manifest() {
    let repo = Repo::rendered(TWO_SERVERS);
    for server in ["dev", "prod"] {
        repo.child(format!("{server}/nginx-for-cert/run.sh"))
            .assert(predicates::path::is_file());
        repo.child(format!("{server}/renew/crontab"))
            .assert(predicates::path::is_file());
    }
    let manifest = fs::read_to_string(repo.path().join(".certgen-manifest")).unwrap();
    assert!(manifest.contains("  dev/renew/run.sh\n"), "{manifest}");
    assert!(
        !manifest.contains("certgen.yaml"),
        "the config is the user's, not generated"
    );
    assert!(
        !manifest.contains("certifications/"),
        "certificate stores are never managed"
    );
}

// When nothing changed, no file's bytes or times change.
#[test]
fn render_is_idempotent_byte_for_byte() {
    let repo = Repo::rendered(TWO_SERVERS);
    let before = state(repo.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = repo.render();
    assert!(out.contains("0 created, 0 changed, 0 removed"), "{out}");
    assert_eq!(state(repo.path()), before);
    let (code, text) = repo.check();
    assert_eq!(code, 0, "{text}");
}

#[test]
fn check_reports_a_hand_edit_with_its_diff() {
    let repo = Repo::rendered(TWO_SERVERS);
    repo.hand_edit(
        "prod/nginx-ssl/nginx/sites/example.com.conf",
        "http2 on;",
        "http2 off;",
    );
    let (code, out) = repo.check();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("changed: prod/nginx-ssl/nginx/sites/example.com.conf"),
        "{out}"
    );
    assert!(
        out.contains("-    http2 off;") && out.contains("+    http2 on;"),
        "{out}"
    );
}

#[test]
fn check_reports_missing_extra_and_mode_drift() {
    let repo = Repo::rendered(TWO_SERVERS);
    fs::remove_file(repo.path().join("dev/renew/crontab")).unwrap();
    let script = repo.path().join("dev/nginx-ssl/nginx/proxy.sh");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    // The config drops a certificate, but the tree was not rendered again.
    repo.edit(
        "  - domains:\n    - img-dev.example.com\n    upstream: http://192.168.10.22:8080\n",
        "",
    );
    let (code, out) = repo.check();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing: dev/renew/crontab"), "{out}");
    assert!(
        out.contains("changed: dev/nginx-ssl/nginx/proxy.sh")
            && out.contains("only the mode changes"),
        "{out}"
    );
    assert!(out.contains("extra (generated earlier, no longer in the config): dev/nginx-ssl/nginx/sites/img-dev.example.com.conf"), "{out}");
    // The certificate left the challenge config too: a content change.
    assert!(
        out.contains("changed: dev/nginx-for-cert/nginx/conf.d/challenge.conf"),
        "{out}"
    );
}

// Catches: `check` reporting drift in a clone made with umask 077 (a CI runner, a hardened
// laptop), where every file is 0600 and every script 0700: git keeps only the executable bit.
#[test]
fn check_compares_what_git_keeps() {
    let repo = Repo::rendered(TWO_SERVERS);
    for file in files_under(repo.path()) {
        let path = repo.path().join(&file);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        let private = if mode & 0o100 != 0 { 0o700 } else { 0o600 };
        fs::set_permissions(&path, fs::Permissions::from_mode(private)).unwrap();
    }
    let (code, out) = repo.check();
    assert_eq!(code, 0, "{out}");
    assert!(repo.render().contains("0 created, 0 changed, 0 removed"));
}

#[test]
fn a_hand_edited_file_stops_render_with_the_diff_until_force() {
    let repo = Repo::rendered(TWO_SERVERS);
    let site = repo.hand_edit(
        "prod/nginx-ssl/nginx/sites/example.com.conf",
        "http2 on;",
        "http2 on;\n    # mine",
    );
    let edited = fs::read_to_string(&site).unwrap();
    repo.edit("http://192.168.10.11:3000", "http://192.168.10.11:3001");
    let err = repo.render_fails(2);
    assert!(
        err.contains("prod/nginx-ssl/nginx/sites/example.com.conf: edited by hand"),
        "{err}"
    );
    assert!(
        err.contains("-    # mine"),
        "the diff shows what would be lost: {err}"
    );
    assert_eq!(
        fs::read_to_string(&site).unwrap(),
        edited,
        "nothing was written"
    );

    repo.render_with(&["--force"]);
    let text = fs::read_to_string(&site).unwrap();
    assert!(
        !text.contains("# mine") && text.contains("192.168.10.11:3001"),
        "{text}"
    );
}

// Add a domain, remove a domain, add a server, remove a server: the tree moves to exactly
// the new render, and nothing else is lost.
#[test]
fn config_changes_move_the_tree_to_exactly_the_new_render() {
    let repo = Repo::rendered(TWO_SERVERS);
    let certs = repo.child("prod/certifications");
    certs
        .child("live/img.example.com/privkey.pem")
        .write_str("KEY")
        .unwrap();
    repo.child("prod/nginx-ssl/nginx/custom/example.com/my-extra.conf")
        .write_str("# mine\n")
        .unwrap();
    repo.child("notes.txt").write_str("mine\n").unwrap();

    // Add a domain (a certificate) and a server; remove a domain.
    repo.edit(
        "  - domains:\n    - img.example.com\n    upstream: http://192.168.10.12:8080\n",
        "  - domains:\n    - shop.example.com\n    upstream: http://192.168.10.13:8080\n",
    );
    let added = "- name: lab\n  deploy_path: /srv/infra\n  certificates:\n  - domains:\n    - lab.example.com\n    upstream: http://lab:80\n";
    repo.set_config(&format!("{}{added}", repo.config()));
    let out = repo.render();
    assert!(
        out.contains("remove  ") && out.contains("img.example.com.conf"),
        "{out}"
    );
    repo.child("prod/nginx-ssl/nginx/sites/img.example.com.conf")
        .assert(predicates::path::missing());
    repo.child("prod/nginx-ssl/nginx/sites/shop.example.com.conf")
        .assert(predicates::path::is_file());
    repo.child("lab/renew/run.sh")
        .assert(predicates::path::is_file());
    assert_eq!(repo.check().0, 0);

    // Remove a server: its generated files go, its certificates stay.
    let yaml = repo.config();
    let start = yaml.find("- name: prod").unwrap();
    let end = yaml.find("- name: lab").unwrap();
    repo.set_config(&format!("{}{}", &yaml[..start], &yaml[end..]));
    let out = repo.render();
    assert!(
        out.contains("prod/certifications: it holds that server's keys"),
        "{out}"
    );
    // Render says how to stop what the removed server still runs.
    assert!(
        out.contains("server prod left certgen.yaml")
            && out
                .contains("for p in ssl for-cert; do docker compose -p certgen-prod-$p down; done")
            && out.contains("crontab -l | grep -vF '/prod/renew/run.sh' | crontab -"),
        "{out}"
    );
    repo.child("prod/nginx-for-cert")
        .assert(predicates::path::missing());
    repo.child("prod/renew").assert(predicates::path::missing());
    certs
        .child("live/img.example.com/privkey.pem")
        .assert("KEY");
    certs.child(".gitkeep").assert(predicates::path::is_file());
    repo.child("prod/nginx-ssl/nginx/custom/example.com/my-extra.conf")
        .assert("# mine\n");
    repo.child("notes.txt").assert("mine\n");
    assert_eq!(repo.check().0, 0);

    // A swarm server that leaves is stopped with `docker stack rm`, not compose (its proxies are
    // a stack).
    repo.edit("- name: lab\n", "- name: lab\n  engine: swarm\n");
    repo.render();
    let yaml = repo.config();
    repo.set_config(&yaml[..yaml.find("- name: lab").unwrap()]);
    let out = repo.render();
    assert!(
        out.contains("docker stack rm certgen-lab;") && !out.contains("for p in ssl"),
        "{out}"
    );
}

#[test]
fn a_file_certgen_did_not_write_is_not_replaced_without_force() {
    let repo = Repo::rendered(TWO_SERVERS);
    repo.edit("- name: dev", "- name: dev2");
    repo.child("dev2/README.md")
        .write_str("my notes\n")
        .unwrap();
    let err = repo.render_fails(2);
    assert!(
        err.contains("dev2/README.md: exists and was not generated by certgen"),
        "{err}"
    );
    repo.child("dev2/README.md").assert("my notes\n");
    repo.child("dev2/renew/run.sh")
        .assert(predicates::path::missing());
}

#[test]
fn dry_run_shows_the_changes_and_writes_nothing() {
    let repo = Repo::rendered(TWO_SERVERS);
    repo.edit("http://192.168.10.11:3000", "http://192.168.10.11:3001");
    let before = state(repo.path());
    let out = repo.render_with(&["--dry-run"]);
    assert!(
        out.contains("change ") && out.contains("prod/nginx-ssl/nginx/sites/example.com.conf"),
        "{out}"
    );
    assert!(out.contains("+    server 192.168.10.11:3001;"), "{out}");
    assert!(out.contains("dry run, nothing was written"), "{out}");
    assert_eq!(state(repo.path()), before);

    let fresh = TempDir::new().unwrap();
    let out = certgen()
        .args(["init", "--domain", "example.com", "--dry-run", "--out"])
        .args([fresh.path()])
        .succeeds();
    assert!(
        out.contains("create ") && out.contains("example.com/renew/run.sh"),
        "{out}"
    );
    assert!(files_under(fresh.path()).is_empty(), "dry run wrote files");
}

#[test]
fn init_can_start_from_a_config_file() {
    let tmp = TempDir::new().unwrap();
    let example = crate::helpers::repo().join("examples/three-servers.yaml");
    let out = tmp.child("infra");
    certgen()
        .args(["init", "--config", example.to_str().unwrap(), "--out"])
        .args([out.path()])
        .succeeds();
    // Copied as it is, comments and all.
    assert_eq!(
        fs::read_to_string(out.path().join("certgen.yaml")).unwrap(),
        fs::read_to_string(&example).unwrap()
    );
    for server in ["staging", "internal", "prod"] {
        out.child(format!("{server}/renew/run.sh"))
            .assert(predicates::path::is_file());
    }
    let checked = certgen()
        .args(["check", "--config"])
        .args([out.path().join("certgen.yaml")])
        .run();
    assert!(checked.status.success(), "{checked:?}");
    let both = certgen()
        .args([
            "init",
            "--config",
            example.to_str().unwrap(),
            "--domain",
            "a.example.com",
        ])
        .fails_with(2);
    assert!(both.contains("cannot be used with"), "{both}");
}

// Every config error names the file, line and column where it can, exits 2, and
// writes nothing.
#[test]
fn config_errors_are_clear_and_write_nothing() {
    let base = "renew_schedule: 1 2,14 * * *\nservers:\n";
    let server = |name: &str, path: &str, certs: &str| {
        format!("- name: {name}\n  deploy_path: {path}\n  certificates:\n{certs}")
    };
    let cert = |names: &str| format!("  - domains: [{names}]\n    upstream: http://app:80\n");
    let cases = [
        (
            format!(
                "{base}{}",
                server(
                    "a",
                    "/srv",
                    &cert("a.example.com").replace("domains", "domainz")
                )
            ),
            "certgen.yaml:6:5: servers[0].certificates[0]: unknown field `domainz`",
        ),
        (
            format!(
                "{base}{}{}",
                server("a", "/srv", &cert("a.example.com")),
                server("a", "/srv", &cert("b.example.com"))
            ),
            "server \"a\" is listed twice",
        ),
        (
            format!("{base}{}", server("a", "/srv", "    []\n")),
            "server \"a\" has no certificates",
        ),
        (
            format!(
                "{base}{}",
                server(
                    "a",
                    "/srv",
                    &format!("{}{}", cert("a.example.com"), cert("b.example.com, a.example.com"))
                )
            ),
            "a.example.com is on two certificates",
        ),
        (
            format!("{base}{}", server("a", "srv", &cert("a.example.com"))),
            "certgen.yaml:4:16: servers[0]: deploy_path \"srv\" is not valid: the deploy path must be absolute",
        ),
        (
            format!(
                "{base}{}",
                server("a", "/srv", &cert("a.example.com"))
                    .replace("upstream: http://app:80", "upstream: http://app:80/;evil")
            ),
            "certgen.yaml:7:15: servers[0].certificates[0]: upstream \"http://app:80/;evil\" is not valid: ';' is not allowed; an upstream is",
        ),
        (format!("{base}  - [\n"), "certgen.yaml:3:"),
    ];
    for (yaml, expected) in cases {
        let err = Repo::new(&yaml).refused();
        assert!(
            err.contains(expected),
            "{yaml}\nexpected {expected:?} in:\n{err}"
        );
    }
}

// Files in nginx-ssl/nginx/custom/ are the user's: render leaves them, check ignores
// them. Any other file where nginx loads configuration is reported by check (exit 1).
#[test]
fn custom_files_are_left_alone_and_strays_are_reported() {
    let repo = Repo::rendered(TWO_SERVERS);
    repo.child("prod/nginx-ssl/nginx/custom/example.com/cache.conf")
        .write_str("location /assets/ { expires 1d; }\n")
        .unwrap();
    repo.child("prod/nginx-ssl/nginx/custom/http/zones.conf")
        .write_str("limit_req_zone $binary_remote_addr zone=api:10m rate=5r/s;\n")
        .unwrap();
    let (code, out) = repo.check();
    assert_eq!(code, 0, "{out}");
    repo.edit("http://192.168.10.11:3000", "http://192.168.10.11:3001");
    repo.render();
    repo.child("prod/nginx-ssl/nginx/custom/example.com/cache.conf")
        .assert("location /assets/ { expires 1d; }\n");
    assert_eq!(repo.check().0, 0);

    for stray in [
        "prod/nginx-ssl/nginx/conf.d/extra.conf",
        "prod/nginx-ssl/nginx/sites/other.example.com.conf",
        "dev/nginx-for-cert/nginx/conf.d/old.conf",
    ] {
        repo.child(stray).write_str("# not generated\n").unwrap();
        let (code, out) = repo.check();
        assert_eq!(code, 1, "{stray}: {out}");
        assert!(out.contains(&format!("not generated: ./{stray}")), "{out}");
        let out = repo.render();
        assert!(out.contains("not generated: "), "render warns: {out}");
        repo.child(stray).assert("# not generated\n");
        fs::remove_file(repo.path().join(stray)).unwrap();
    }
    assert_eq!(repo.check().0, 0);
}

// HSTS preload commits every subdomain for a year at least: refused unless chosen whole.
#[test]
fn hsts_preload_and_connect_timeouts_are_checked_across_values() {
    for (from, to, says) in [
        (
            "renew_schedule:",
            "hsts: {max_age: 63072000, preload: true}\nrenew_schedule:",
            "preload needs include_subdomains: true",
        ),
        (
            "renew_schedule:",
            "hsts: {max_age: 86400, include_subdomains: true, preload: true}\nrenew_schedule:",
            "at least 31536000",
        ),
        (
            "    upstream: http://192.168.10.11:3000\n",
            "    upstream: http://192.168.10.11:3000\n    timeouts: {connect: 2m}\n",
            "timeouts.connect 2m is longer than nginx waits",
        ),
    ] {
        let err = Repo::new(TWO_SERVERS).edit(from, to).refused();
        assert!(err.contains(says), "{err}");
    }
    // A value that does what the default does is a note, never an error.
    let repo = Repo::new(TWO_SERVERS);
    repo.edit(
        "    upstream: http://192.168.10.11:3000\n",
        "    upstream: http://192.168.10.11:3000\n    verify_upstream: false\n",
    );
    let out = repo.render();
    assert!(
        out.contains("verify_upstream: false has no effect: this site forwards to no https://"),
        "{out}"
    );
}

// A certificate removed from the config stays on the server; render says how to
// delete it there.
#[test]
fn render_says_how_to_delete_a_removed_certificate() {
    let repo = Repo::rendered(TWO_SERVERS);
    repo.edit(
        "  - domains:\n    - img-dev.example.com\n    upstream: http://192.168.10.22:8080\n",
        "",
    );
    let out = repo.render();
    assert!(
        out.contains("certificate img-dev.example.com left server dev")
            && out.contains("dev/nginx-for-cert/run.sh --delete img-dev.example.com"),
        "{out}"
    );
}

// A schedule that skips days is refused with exit 2, naming the field, writing nothing.
#[test]
fn a_schedule_that_skips_days_is_refused() {
    for (schedule, says) in [
        ("0 0 31 2 *", "at least once every day"),
        ("99 99 99 99 99", "the minute field"),
    ] {
        let err = Repo::new(TWO_SERVERS)
            .edit("12 2,14 * * *", schedule)
            .refused();
        assert!(
            err.contains("renew_schedule") && err.contains(says),
            "{err}"
        );
    }
}

// The keys that make no sense on a swarm server (or only there) are refused, naming
// the server and the reason; nothing is written.
#[test]
fn swarm_options_are_checked() {
    let server = |name: &str, keys: &str| {
        format!(
            "renew_schedule: 1 2,14 * * *\nservers:\n- name: {name}\n{keys}  certificates:\n  \
             - domains: [a.example.com]\n    upstream: http://app:80\n"
        )
    };
    let cases = [
        (
            server("edge", "  engine: swarm\n  http: on-demand\n"),
            "server \"edge\": http: on-demand starts a temporary nginx on port 80 of the machine \
             that orders, but on a swarm",
        ),
        (
            server("edge", "  node_label: edge.proxy\n"),
            "server \"edge\": node_label chooses the nodes of a swarm that run the proxy, and this \
             server has no `engine: swarm`",
        ),
        (
            server("edge", "  engine: swarm\n  node_label: Edge_Proxy\n"),
            "node_label \"Edge_Proxy\" is not valid: a node label is 1-100 lowercase letters",
        ),
        (
            server("edge", "  engine: kubernetes\n"),
            "unknown variant `kubernetes`, expected `compose` or `swarm`",
        ),
        (
            server(&"a".repeat(46), "  engine: swarm\n"),
            "Docker allows 63 characters: shorten the server name to 45 characters or fewer",
        ),
    ];
    for (yaml, expected) in cases {
        let err = Repo::new(&yaml).refused();
        assert!(
            err.contains(expected),
            "{yaml}\nexpected {expected:?} in:\n{err}"
        );
    }
    // A swarm server: a stack file and no compose file for the proxy, port 80 the proxies'
    // (redirect) even with the global default on-demand, the challenge passed to the manager.
    let repo = Repo::rendered(&server(
        "edge",
        "  engine: swarm\n  node_label: edge.proxy\n",
    ));
    let edge = repo.path().join("edge");
    assert!(!edge.join("nginx-ssl/docker-compose.yml").exists());
    let stack = fs::read_to_string(edge.join("nginx-ssl/stack.yml")).unwrap();
    assert!(stack.contains("node.labels.edge.proxy == true"), "{stack}");
    let port80 = fs::read_to_string(edge.join("nginx-ssl/nginx/conf.d/port80.conf")).unwrap();
    assert!(
        port80.contains("proxy_pass http://$certgen_challenge:80;"),
        "{port80}"
    );
    let for_cert = fs::read_to_string(edge.join("nginx-for-cert/docker-compose.yml")).unwrap();
    assert!(!for_cert.contains("nginx_for_cert:"), "{for_cert}");

    // init: --engine swarm with an explicit --http on-demand is refused the same way.
    let err = init_refused(&[
        "--domain",
        "example.com",
        "--engine",
        "swarm",
        "--http",
        "on-demand",
    ]);
    assert!(err.contains("(or --http on-demand from init)"), "{err}");
}

// Catches: a teammate with another certgen version told only "run certgen render" under
// hundreds of lines of diff, with no hint that the versions differ.
#[test]
fn a_tree_from_another_version_says_so_first() {
    let repo = Repo::rendered(TWO_SERVERS);
    let manifest = repo.read(".certgen-manifest");
    let ours = manifest
        .lines()
        .find(|l| l.starts_with("# generated by certgen "))
        .expect("the manifest names its generator")
        .to_string();
    assert!(
        ours.contains(&format!("certgen {}", env!("CARGO_PKG_VERSION"))),
        "{ours}"
    );

    // A tree an older certgen wrote: its manifest without the line, one file different.
    let older = manifest.replace(&format!("{ours}\n"), "");
    fs::write(repo.path().join(".certgen-manifest"), &older).unwrap();
    repo.hand_edit("dev/renew/crontab", "# ", "#  ");
    let (code, out) = repo.check();
    assert_eq!(code, 1);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains("was generated by a certgen from before 0.2")
            && first.contains(&ours["# generated by ".len()..]),
        "{out}"
    );
    let out = repo.render_with(&["--force"]);
    assert!(out.starts_with("certgen render: "), "{out}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("was generated by a certgen from before 0.2"),
        "{out}"
    );
    assert!(repo.read(".certgen-manifest").contains(&ours));
    let (code, out) = repo.check();
    assert_eq!(code, 0, "{out}");
}

// Catches: render after adding a certificate printing only "2 created, 6 changed", and nothing
// saying that the certificates must be ordered again after a switch of ACME server or key type.
#[test]
fn render_says_what_to_run_on_each_server() {
    let repo = Repo::rendered(TWO_SERVERS);
    let added = "  - domains: [shop.example.com]\n    upstream: http://192.168.10.13:8080\n";
    repo.set_config(&format!("{}{added}", repo.config()));
    let steps = |out: &str| out[out.find("Next: ").unwrap_or(out.len())..].to_string();
    let dry = steps(&repo.render_with(&["--dry-run"]));
    let out = steps(&repo.render());
    assert_eq!(dry, out, "--dry-run shows the same steps");
    assert_eq!(
        out,
        "Next: commit and push; then on each server, in its clone of the repo, after `git pull`:\n  \
         prod/apply.sh\n  prod/nginx-for-cert/run.sh      # obtains shop.example.com\n",
    );

    repo.edit(
        "acme_server: https://acme-v02.api.letsencrypt.org/directory",
        "acme_server: letsencrypt-staging",
    );
    let anew = |out: &str, server: &str| {
        out.contains(&format!(
            "  {server}/apply.sh\n  {server}/nginx-for-cert/run.sh      # the ACME server or key type changed"
        ))
    };
    let out = steps(&repo.render());
    assert!(anew(&out, "dev") && anew(&out, "prod"), "{out}");
    repo.edit("key_type: ecdsa", "key_type: rsa");
    let out = steps(&repo.render());
    assert!(anew(&out, "dev") && anew(&out, "prod"), "{out}");

    repo.edit(added, "");
    let out = steps(&repo.render());
    assert_eq!(
        out,
        "Next: commit and push; then on each server, in its clone of the repo, after `git pull`:\n  \
         prod/apply.sh\n  prod/nginx-for-cert/run.sh --delete shop.example.com\n",
    );
    assert!(
        steps(&repo.render()).is_empty(),
        "nothing changed, nothing to run"
    );

    // Basic auth: its password file must be on the server before apply.sh, once.
    repo.edit(
        "    upstream: http://192.168.10.12:8080\n",
        "    upstream: http://192.168.10.12:8080\n    auth: {users: staff}\n",
    );
    let out = steps(&repo.render());
    assert!(
        out.contains("  # first: prod/secrets/auth/staff, basic auth's users (README.md, Secrets): apply.sh refuses to start the proxy without it\n  prod/apply.sh\n"),
        "{out}"
    );
    repo.edit(
        "    auth: {users: staff}\n",
        "    auth: {users: staff, realm: Shop}\n",
    );
    let out = steps(&repo.render());
    assert!(!out.contains("# first"), "{out}");

    // A fallback CA with External Account Binding: its HMAC key first, then the run that orders.
    repo.edit(
        "acme_server: letsencrypt-staging",
        "acme_server: letsencrypt-staging\nfallback_acme_server: zerossl\nfallback_eab: {kid: kid_1}",
    );
    let out = steps(&repo.render());
    assert!(
        out.contains("  # first: prod/secrets/fallback-eab-hmac-key, an External Account Binding HMAC key (README.md, Secrets): nginx-for-cert/run.sh stops without it until the account is registered\n"),
        "{out}"
    );
}

// Catches: CAA records asked for an IP address (CAA has none; the check would always fail), or a
// wildcard's name written without its challenge.
#[test]
fn caa_covers_every_name_with_its_challenge_but_no_address() {
    let repo = Repo::rendered(
        "renew_schedule: 17 4,16 * * *\ndns: {provider: rfc2136}\nservers:\n- name: edge\n  certificates:\n\
         \x20 - domains: [a.example.com, 93.184.216.34]\n    upstream: http://app:80\n    profile: shortlived\n\
         \x20 - domains: [example.com, \"*.example.com\"]\n    upstream: http://app:80\n    challenge: dns-01\n",
    );
    let caa = repo.read("edge/caa.py");
    let names = &caa[caa.find("NAMES = [\n").unwrap()..];
    let names = &names[..names.find("]\n").unwrap() + 2];
    assert_eq!(
        names,
        "NAMES = [\n    (\"a.example.com\", \"http-01\"),\n    (\"example.com\", \"dns-01\"),\n    (\"*.example.com\", \"dns-01\"),\n]\n"
    );
}
