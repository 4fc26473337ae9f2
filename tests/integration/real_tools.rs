//! Every snapshot tree, checked by the tools that will read it: shellcheck for the scripts,
//! `nginx -t` in the pinned nginx (a stand-in built by .ci/setup) with throwaway certificates at
//! the expected paths, and `docker compose config` for the compose files. Runs when
//! `CERTGEN_REAL_TOOLS=1`; a missing tool is then a failure, not a skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_fs::prelude::*;

use crate::helpers::{files_under, opted_in, repo, run};

/// The nginx image `nginx -t` runs in: the stand-in of the pinned series unless overridden.
pub fn nginx_image() -> String {
    std::env::var("CERTGEN_NGINX_IMAGE").unwrap_or_else(|_| "certgen-standin/nginx:1.30".into())
}

fn snapshot_files(ending: &str) -> Vec<PathBuf> {
    let root = repo().join("snapshots");
    files_under(&root)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(ending))
        .map(|p| root.join(p))
        .collect()
}

#[track_caller]
fn check(what: &str, out: std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn every_generated_script_passes_shellcheck() {
    if !opted_in("CERTGEN_REAL_TOOLS", "shellcheck on the snapshots") {
        return;
    }
    let scripts = snapshot_files(".sh");
    assert!(!scripts.is_empty());
    for script in scripts {
        let path = script.to_str().unwrap();
        check(
            &format!("shellcheck {path}"),
            // -x: each script's `source` of lib.sh is followed and checked with it.
            run("shellcheck", &["--severity=style", "-x", path]),
        );
        check(&format!("bash -n {path}"), run("bash", &["-n", path]));
    }
}

#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn every_generated_python_file_parses() {
    if !opted_in("CERTGEN_REAL_TOOLS", "python3 on the snapshots' .py files") {
        return;
    }
    let files = snapshot_files(".py");
    assert!(files.iter().any(|p| p.ends_with("status.py")), "{files:?}");
    for file in files {
        let path = file.to_str().unwrap();
        let parse = "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])";
        check(
            &format!("python3 parsing {path}"),
            run("python3", &["-c", parse, path]),
        );
    }
}

#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn every_generated_compose_file_passes_docker_compose_config() {
    if !opted_in(
        "CERTGEN_REAL_TOOLS",
        "docker compose config on the snapshots",
    ) {
        return;
    }
    let files = snapshot_files("docker-compose.yml");
    assert!(!files.is_empty());
    for file in files {
        let path = file.to_str().unwrap();
        check(
            &format!("docker compose config {path}"),
            run("docker", &["compose", "-f", path, "config", "--quiet"]),
        );
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("version:")),
            "{path}: compose files have no version key"
        );
    }
    // engine: swarm: the stack file, as `docker stack deploy` reads it (the CLI alone, no swarm).
    let stacks = snapshot_files("nginx-ssl/stack.yml");
    assert!(!stacks.is_empty());
    for file in stacks {
        let path = file.to_str().unwrap();
        let out = Command::new("docker")
            .args(["stack", "config", "--compose-file", path])
            .env("CERTGEN_NODE_ID", "n0de")
            .output()
            .unwrap();
        check(&format!("docker stack config {path}"), out.clone());
        let config = String::from_utf8_lossy(&out.stdout);
        assert!(
            config.contains("mode: global") && config.contains("node.id == n0de"),
            "{path}: {config}"
        );
    }
}

#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn every_generated_nginx_config_passes_nginx_t() {
    if !opted_in("CERTGEN_REAL_TOOLS", "nginx -t on the snapshots") {
        return;
    }
    let throwaway = tempfile::tempdir().unwrap();
    let servers: Vec<PathBuf> = snapshot_files("nginx-ssl/nginx/proxy.sh")
        .into_iter()
        .map(|p| p.ancestors().nth(3).unwrap().to_path_buf())
        .collect();
    assert!(!servers.is_empty());
    for (i, server) in servers.iter().enumerate() {
        let proxy = server.join("nginx-ssl/nginx");
        let live = throwaway.path().join(i.to_string());
        let all = nginx_t(&proxy, &live, true);
        check(&format!("nginx -t on {}", proxy.display()), all.clone());
        let log = String::from_utf8_lossy(&all.stderr);
        assert!(
            !log.contains("no certificate yet"),
            "{}: a site stayed off although its certificate exists:\n{log}",
            proxy.display()
        );
        // With no certificate on disk at all, the proxy's configuration still loads.
        let none = throwaway.path().join(format!("{i}-empty"));
        check(
            &format!("nginx -t on {} without certificates", proxy.display()),
            nginx_t(&proxy, &none, false),
        );
        let challenge = server.join("nginx-for-cert/nginx/conf.d");
        check(
            &format!("nginx -t on {}", challenge.display()),
            run(
                "docker",
                &[
                    "run",
                    "--rm",
                    "-v",
                    &format!("{}:/etc/nginx/conf.d:ro", challenge.display()),
                    &nginx_image(),
                    "nginx",
                    "-t",
                ],
            ),
        );
    }
}

/// Runs `proxy.sh test` (the sites enabled as the proxy enables them, then `nginx -t`) in the
/// pinned nginx on a server's `nginx-ssl/nginx` folder, mounted as its compose file mounts it,
/// with throwaway certificates in `live` for every site when `certificates` is set.
pub fn nginx_t(proxy: &Path, live: &Path, certificates: bool) -> std::process::Output {
    nginx_t_in(&nginx_image(), proxy, live, certificates)
}

/// [`nginx_t`] in another nginx image.
pub fn nginx_t_in(
    image: &str,
    proxy: &Path,
    live: &Path,
    certificates: bool,
) -> std::process::Output {
    fs::create_dir_all(live).unwrap();
    if certificates {
        throwaway_certificates(&proxy.join("sites"), live);
    }
    proxy_container(&["--rm"], image, proxy, live, "test")
}

/// `docker run` of the proxy as its compose file runs it (the folders of `proxy` and the
/// certificates of `live` mounted read-only, the Docker host known by name), with `options` and
/// `proxy.sh COMMAND`.
fn proxy_container(
    options: &[&str],
    image: &str,
    proxy: &Path,
    live: &Path,
    command: &str,
) -> std::process::Output {
    let conf = format!("{}:/etc/nginx/conf.d:ro", proxy.join("conf.d").display());
    let certgen = format!("{}:/etc/nginx/certgen:ro", proxy.display());
    let certs = format!("{}:/etc/letsencrypt/live:ro", live.display());
    // Basic auth's password files, where the server has them (SERVER/secrets/auth).
    let auth = proxy.join("../../secrets/auth");
    let auth = format!("{}:/etc/nginx/auth:ro", auth.display());
    let mut args = vec!["run"];
    args.extend(options);
    if proxy.join("../../secrets/auth").is_dir() {
        args.extend(["-v", &auth]);
    }
    args.extend([
        "--add-host",
        "host.docker.internal:host-gateway",
        "--tmpfs",
        "/run/certgen",
        "-v",
        &conf,
        "-v",
        &certgen,
        "-v",
        &certs,
        "--entrypoint",
        "/bin/sh",
        image,
        "/etc/nginx/certgen/proxy.sh",
        command,
    ]);
    run("docker", &args)
}

/// A self-signed certificate and key at `live/NAME/` for every site in `sites` (NAME.conf).
fn throwaway_certificates(sites: &Path, live: &Path) {
    for site in fs::read_dir(sites).unwrap() {
        let name = site.unwrap().path();
        let name = name.file_stem().unwrap().to_str().unwrap();
        let folder = live.join(name);
        fs::create_dir_all(&folder).unwrap();
        let key = folder.join("privkey.pem");
        let cert = folder.join("fullchain.pem");
        let subject = format!("/CN={name}");
        check(
            "openssl req",
            run(
                "openssl",
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &subject,
                    "-keyout",
                    key.to_str().unwrap(),
                    "-out",
                    cert.to_str().unwrap(),
                ],
            ),
        );
    }
}

/// The stand-in of an older nginx series (Debian trixie's 1.26), built by .ci/setup.
pub const OLD_NGINX_IMAGE: &str = "certgen-standin/nginx:1.26";

// Catches: a configuration an older nginx refuses (every site down) rendered for an
// image whose tag names that nginx; a stand-in that would not have refused the pinned one.
#[test]
#[ignore = "real tools (docker, the nginx stand-ins): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn an_older_nginx_gets_a_configuration_it_accepts() {
    if !opted_in("CERTGEN_REAL_TOOLS", "nginx -t in an older nginx") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("infra");
    crate::helpers::certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "--domain",
            "api.example.com=http://api:8080",
            "--email",
            "ops@example.com",
        ])
        .args(["--nginx-image", "nginx:1.26", "--out"])
        .args([&out])
        .succeeds();
    let proxy = out.join("example.com/nginx-ssl/nginx");
    check(
        "nginx -t of the nginx:1.26 configuration in nginx 1.26",
        nginx_t_in(OLD_NGINX_IMAGE, &proxy, &tmp.path().join("live"), true),
    );
    let conf = fs::read_to_string(proxy.join("conf.d/00-certgen.conf")).unwrap();
    assert!(
        conf.contains("Lost:") && !conf.contains("add_header_inherit merge;"),
        "{conf}"
    );
    // No `resolve` before 1.27.3: a name goes through a variable, an address through a block.
    let site = |name: &str| fs::read_to_string(proxy.join(format!("sites/{name}.conf"))).unwrap();
    let (api, apex) = (site("api.example.com"), site("example.com"));
    assert!(
        api.contains("set $upstream http://api:8080;") && !api.contains(" resolve;"),
        "{api}"
    );
    assert!(apex.contains("keepalive 256;"), "{apex}");
    // The pinned series' configuration is what 1.26 refuses, by name.
    let pinned = repo().join("snapshots/blog/edge/nginx-ssl/nginx");
    let refused = nginx_t_in(OLD_NGINX_IMAGE, &pinned, &tmp.path().join("live2"), true);
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && log.contains("add_header_inherit"),
        "{log}"
    );
}

/// A proxy of a rendered tree running in the nginx stand-in, with throwaway certificates: its
/// sites answer at its container address; removed on drop.
struct LiveProxy {
    name: &'static str,
    ip: String,
    _live: tempfile::TempDir,
}

impl LiveProxy {
    fn start(name: &'static str, proxy: &Path) -> LiveProxy {
        let live = tempfile::tempdir().unwrap();
        throwaway_certificates(&proxy.join("sites"), live.path());
        let _ = run("docker", &["rm", "-f", name]);
        let started = proxy_container(
            &["-d", "--name", name],
            &nginx_image(),
            proxy,
            live.path(),
            "start",
        );
        check(&format!("the proxy of {}", proxy.display()), started);
        let inspect = ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name];
        let ip = String::from_utf8_lossy(&run("docker", &inspect).stdout)
            .trim()
            .to_string();
        LiveProxy {
            name,
            ip,
            _live: live,
        }
    }

    /// The response head of `https://NAME/PATH` (with `headers`), once the proxy answers.
    fn head(&self, name: &str, path: &str, headers: &[&str]) -> String {
        let mut args = vec![
            "-sk".to_string(),
            "-o".into(),
            "/dev/null".into(),
            "-D".into(),
            "-".into(),
            "--resolve".into(),
            format!("{name}:443:{}", self.ip),
        ];
        for header in headers {
            args.extend(["-H".to_string(), header.to_string()]);
        }
        args.push(format!("https://{name}{path}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for _ in 0..50 {
            let head = String::from_utf8_lossy(&run("curl", &args).stdout).replace('\r', "");
            if !head.is_empty() {
                return head;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let logs = run("docker", &["logs", self.name]);
        panic!(
            "{name} does not answer:\n{}",
            String::from_utf8_lossy(&logs.stderr)
        );
    }
}

impl Drop for LiveProxy {
    fn drop(&mut self) {
        let _ = run("docker", &["rm", "-f", self.name]);
    }
}

// Catches: a redirect-only site (redirect: in certgen.yaml) that loses the request's path or
// query, answers without HSTS, or cannot start without an upstream.
#[test]
#[ignore = "real tools (docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn a_redirect_site_keeps_the_path_and_query() {
    if !opted_in(
        "CERTGEN_REAL_TOOLS",
        "a redirect site in the nginx stand-in",
    ) {
        return;
    }
    let proxy = LiveProxy::start(
        "certgen-real-tools-redirect",
        &repo().join("snapshots/production-site/web/nginx-ssl/nginx"),
    );
    let head = proxy.head("www.shop.example.net", "/a/b?c=1&d", &[]);
    let has = |line: &str| head.lines().any(|l| l.eq_ignore_ascii_case(line));
    assert!(
        head.starts_with("HTTP/2 301")
            && has("location: https://shop.example.com/a/b?c=1&d")
            && has("strict-transport-security: max-age=63072000; includeSubDomains"),
        "{head}"
    );
}

// Catches: an allow list matched on the wrong address (a load balancer's, or a forged
// X-Forwarded-For), so that it admits everyone behind the balancer, or anyone who writes the
// header.
#[test]
#[ignore = "real tools (docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn an_allow_list_admits_its_clients_also_through_a_trusted_proxy() {
    if !opted_in("CERTGEN_REAL_TOOLS", "allow lists in the nginx stand-in") {
        return;
    }
    // This machine reaches a container from the bridge's gateway: the trusted proxy here.
    let gateway = bridge_gateway();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("certgen.yaml");
    let site = |name: &str, allow: &str| {
        format!("  - domains: [{name}]\n    redirect: https://example.com\n    allow: [{allow}]\n")
    };
    fs::write(
        &config,
        format!(
            "renew_schedule: 17 4,16 * * *\nacme_server: https://ca.test/directory\n\
             servers:\n- name: edge\n  trusted_proxies: [\"{gateway}\"]\n  certificates:\n{}{}",
            site("here.test", &format!("\"{gateway}\"")),
            site("office.test", "203.0.113.0/24, \"2001:db8::/32\""),
        ),
    )
    .unwrap();
    crate::helpers::certgen()
        .args(["render", "--config"])
        .args([&config])
        .succeeds();
    let proxy = LiveProxy::start(
        "certgen-real-tools-allow",
        &tmp.path().join("edge/nginx-ssl/nginx"),
    );
    let status = |name: &str, headers: &[&str]| {
        proxy
            .head(name, "/", headers)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    for (name, headers, expected) in [
        // The connecting address, when no trusted proxy names another.
        ("here.test", &[][..], "301"),
        ("office.test", &[][..], "403"),
        // The address the trusted proxy names, in and out of the list.
        ("office.test", &["X-Forwarded-For: 203.0.113.9"][..], "301"),
        ("office.test", &["X-Forwarded-For: 198.51.100.1"][..], "403"),
        ("here.test", &["X-Forwarded-For: 198.51.100.1"][..], "403"),
    ] {
        assert_eq!(status(name, headers), expected, "{name} {headers:?}");
    }
}

// Catches: basic auth that lets a client in without the password, a route's `auth: off` that
// still asks, `satisfy: either` that asks the allow list's clients for a password (or lets
// anyone else in without one), a password file nginx's workers cannot read (every login 500).
#[test]
#[ignore = "real tools (docker, openssl, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn basic_auth_asks_for_the_password_from_the_secrets_folder() {
    if !opted_in("CERTGEN_REAL_TOOLS", "basic auth in the nginx stand-in") {
        return;
    }
    let gateway = bridge_gateway();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("certgen.yaml");
    fs::write(
        &config,
        format!(
            "renew_schedule: 17 4,16 * * *\nacme_server: https://ca.test/directory\n\
             servers:\n- name: edge\n  trusted_proxies: [\"{gateway}\"]\n  certificates:\n\
             \x20 - domains: [locked.test]\n    upstream: http://host.docker.internal:9\n    auth: {{realm: Staff, users: staff}}\n\
             \x20   routes:\n      /health/: {{upstream: \"http://host.docker.internal:9\", auth: off}}\n\
             \x20 - domains: [either.test]\n    redirect: https://example.com\n    auth: {{users: staff}}\n\
             \x20   allow: [\"{gateway}\"]\n    satisfy: either\n\
             \x20 - domains: [both.test]\n    redirect: https://example.com\n    auth: {{users: staff}}\n\
             \x20   allow: [\"{gateway}\"]\n"
        ),
    )
    .unwrap();
    crate::helpers::certgen()
        .args(["render", "--config"])
        .args([&config])
        .succeeds();
    // The password file as the server's README says, mode 600 in a folder of mode 700.
    let auth = tmp.path().join("edge/secrets/auth");
    fs::create_dir_all(&auth).unwrap();
    let hash = run("openssl", &["passwd", "-6", "-salt", "certgen", "s3cret"]);
    let line = format!("alice:{}", String::from_utf8_lossy(&hash.stdout));
    fs::write(auth.join("staff"), line).unwrap();
    check(
        "chmod",
        run(
            "chmod",
            &[
                "-R",
                "go-rwx",
                tmp.path().join("edge/secrets").to_str().unwrap(),
            ],
        ),
    );
    let proxy = LiveProxy::start(
        "certgen-real-tools-auth",
        &tmp.path().join("edge/nginx-ssl/nginx"),
    );
    let status = |name: &str, path: &str, headers: &[&str]| {
        proxy
            .head(name, path, headers)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    let good = "Authorization: Basic YWxpY2U6czNjcmV0"; // alice:s3cret
    let bad = "Authorization: Basic YWxpY2U6d3Jvbmc="; // alice:wrong
    let elsewhere = "X-Forwarded-For: 198.51.100.1";
    for (name, path, headers, expected) in [
        ("locked.test", "/", &[][..], "401"),
        ("locked.test", "/", &[bad][..], "401"),
        // Past the password, the app (none here) answers: 502.
        ("locked.test", "/", &[good][..], "502"),
        ("locked.test", "/health/", &[][..], "502"),
        // either: the listed client without a password; anyone else with one.
        ("either.test", "/", &[][..], "301"),
        ("either.test", "/", &[elsewhere][..], "401"),
        ("either.test", "/", &[elsewhere, good][..], "301"),
        // both: the listed client still needs the password; no password opens it elsewhere.
        ("both.test", "/", &[][..], "401"),
        ("both.test", "/", &[good][..], "301"),
        ("both.test", "/", &[elsewhere, good][..], "403"),
    ] {
        assert_eq!(
            status(name, path, headers),
            expected,
            "{name}{path} {headers:?}"
        );
    }
    let head = proxy.head("locked.test", "/", &[]);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"staff\""),
        "{head}"
    );
}

/// The address this machine reaches a container from: the default bridge's gateway. A fresh
/// daemon may not list it (only the subnet): then it is the subnet's first address, as Docker
/// assigns it.
fn bridge_gateway() -> String {
    let inspect = [
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}} {{(index .IPAM.Config 0).Subnet}}",
    ];
    let out = String::from_utf8_lossy(&run("docker", &inspect).stdout).into_owned();
    let mut words = out.split_whitespace().rev();
    let subnet = words.next().expect("the bridge network has a subnet");
    if let Some(gateway) = words.next() {
        return gateway.to_string();
    }
    let network: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(network) + 1).to_string()
}

// Catches: a CI workflow for the infra repo that GitHub would refuse, and a verify step that
// passes a tree whose nginx configuration the proxy would refuse.
#[test]
#[ignore = "real tools (check-jsonschema, shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn the_ci_workflow_is_valid_and_its_verify_step_fails_a_broken_tree() {
    if !opted_in(
        "CERTGEN_REAL_TOOLS",
        "the infra repo's CI workflow and certgen verify",
    ) {
        return;
    }
    let ci_files = [
        (".github/workflows/certgen.yml", "vendor.github-workflows"),
        (".gitlab-ci.yml", "vendor.gitlab-ci"),
    ];
    for (file, schema) in ci_files {
        let files = snapshot_files(file);
        assert!(!files.is_empty(), "no snapshot has {file}");
        for path in files {
            let path = path.to_str().unwrap();
            check(
                &format!("check-jsonschema {path}"),
                run("check-jsonschema", &["--builtin-schema", schema, path]),
            );
        }
    }
    let repo = crate::fixture::Repo::rendered(&format!(
        "ci: [github, pre-commit]\nimages:\n  nginx: {}\n  certbot: certgen-standin/certbot:5.8.0\n{}",
        nginx_image(),
        crate::fixture::ONE_SERVER
    ));
    let verify = || {
        crate::helpers::certgen()
            .current_dir(repo.path())
            .args(["verify"])
            .run()
    };
    check("certgen verify on a fresh tree", verify());
    repo.child("edge/nginx-ssl/nginx/custom/http/broken.conf")
        .write_str("oops;\n")
        .unwrap();
    let out = verify();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("nginx -t") && text.contains("broken.conf"),
        "{text}"
    );
}

// Catches: a pre-commit configuration pre-commit refuses, and a hook that lets a tree that is
// not what certgen.yaml renders be committed.
#[test]
#[ignore = "real tools (pre-commit, git): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn the_pre_commit_hook_refuses_a_tree_that_is_not_rendered() {
    if !opted_in("CERTGEN_REAL_TOOLS", "the pre-commit hook certgen writes") {
        return;
    }
    for config in snapshot_files(".pre-commit-config.yaml") {
        let path = config.to_str().unwrap();
        check(
            &format!("pre-commit validate-config {path}"),
            run("pre-commit", &["validate-config", path]),
        );
    }
    let repo = crate::fixture::Repo::rendered(&format!(
        "ci: [pre-commit]\n{}",
        crate::fixture::ONE_SERVER
    ));
    // certgen on PATH, as the hook expects; pre-commit's cache in the test's folder.
    let bin = Path::new(env!("CARGO_BIN_EXE_certgen")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cache = repo.tmp().join("pre-commit-cache");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap()
    };
    let hook = || {
        Command::new("pre-commit")
            .args(["run", "--all-files"])
            .current_dir(repo.path())
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", &cache)
            .output()
            .unwrap()
    };
    check("git init", git(&["init", "-q"]));
    check("git add", git(&["add", "-A"]));
    check("pre-commit run on a rendered tree", hook());
    repo.hand_edit(
        "edge/nginx-ssl/nginx/sites/a.example.com.conf",
        "http2 on;",
        "http2 off;",
    );
    check("git add", git(&["add", "-A"]));
    let out = hook();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("certgen check") && text.contains("a.example.com.conf"),
        "{text}"
    );
}

// Catches: a fallback CA asked after a failure that is the server's own (a challenge, CAA, the
// DNS provider, a wrong CA bundle, the limit on failed validations), where it would fail too;
// or not asked when the ACME server is down, errs, or rate-limits. The real run-certbots.py of
// the production example, in the certbot image, with a stand-in `certbot` that fails at the ACME
// server with each failure's line from certbot's log and succeeds at the fallback.
#[test]
#[ignore = "real tools (shellcheck, docker, the nginx stand-in): CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored"]
fn the_fallback_ca_is_asked_only_when_the_acme_server_failed() {
    if !opted_in(
        "CERTGEN_REAL_TOOLS",
        "run-certbots.py's fallback in the certbot image",
    ) {
        return;
    }
    let web = repo().join("snapshots/production-site/web");
    let dir = assert_fs::TempDir::new().unwrap();
    let primary = "acme-v02.api.letsencrypt.org";
    let stand_in = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *register*) mkdir -p /etc/letsencrypt/accounts/dv.acme-v02.api.pki.goog/directory/id1 ;;\n  \
         *{primary}*) printf '%s\\n' \"$CASE\" >/etc/letsencrypt/logs/letsencrypt.log; exit 1 ;;\n  \
         *) echo \"ordered: $*\" ;;\nesac\n"
    );
    dir.child("bin/certbot").write_str(&stand_in).unwrap();
    let line =
        |message: &str| format!("2026-12-07 02:11:14,797:ERROR:certbot._internal.log:{message}");
    let unreachable = format!("requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{primary}', port=443): Max retries exceeded with url: /directory (Caused by NewConnectionError(\"Failed to establish a new connection: [Errno 111] Connection refused\"))");
    let cases = [
        (unreachable.clone(), Some("unreachable")),
        ("urn:ietf:params:acme:error:serverInternal :: The server experienced an internal error".into(), Some("a server error")),
        ("acme.errors.ClientError: <Response [503]>".into(), Some("a server error")),
        ("urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many certificates (5) already issued for this exact set of identifiers".into(), Some("rate limited")),
        ("urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many failed authorizations (5) for \"shop.example.com\" in the last 1h0m0s".into(), None),
        ("Some challenges have failed.".into(), None),
        ("urn:ietf:params:acme:error:caa :: CAA record for shop.example.com prevents issuance".into(), None),
        ("Error determining zone_id: HTTPSConnectionPool(host='api.cloudflare.com', port=443): Read timed out.".into(), None),
        (unreachable.replace("NewConnectionError(\"Failed to establish a new connection: [Errno 111] Connection refused\")", "SSLError(SSLCertVerificationError('certificate verify failed'))"), None),
    ];
    for (message, why) in cases {
        let store = dir.child("letsencrypt");
        let _ = fs::remove_dir_all(store.path());
        store.child(".certgen").create_dir_all().unwrap();
        store.child("logs").create_dir_all().unwrap();
        let mount = |source: &Path, target: &str| {
            format!("type=bind,source={},target={target}", source.display())
        };
        let out = Command::new("docker")
            .args(["run", "--rm", "--network", "none", "-e", &format!("CASE={}", line(&message))])
            .args(["--mount", &mount(store.path(), "/etc/letsencrypt")])
            .args(["--mount", &mount(&dir.path().join("bin"), "/certgen-bin")])
            .args(["--mount", &mount(&web.join("caa.py"), "/etc/certgen/caa.py")])
            .args(["--mount", &mount(&web.join("nginx-for-cert/run-certbots.py"), "/run-certbots.py")])
            .args(["--entrypoint", "sh", crate::world::CERTBOT_IMAGE, "-c"])
            .arg("chmod +x /certgen-bin/certbot && touch /etc/certgen/fallback-eab-hmac-key 2>/dev/null; PATH=/certgen-bin:$PATH exec python3 /run-certbots.py \"$@\"")
            .args(["sh", "--certgen-certificate", "shop.example.com", "certonly", "--server"])
            .args([&format!("https://{primary}/directory"), "--webroot", "--domain", "shop.example.com"])
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let failed = fs::read_to_string(store.child(".certgen/failed").path()).unwrap_or_default();
        match why {
            Some(why) => assert!(
                log.contains(&format!("failed ({why}): ordering it from the fallback"))
                    && log.contains(
                        "ordered: certonly --server https://dv.acme-v02.api.pki.goog/directory"
                    )
                    && failed.is_empty(),
                "{message}:\n{log}"
            ),
            None => assert!(
                !log.contains("fallback") && failed == "shop.example.com\n",
                "{message}:\n{log}"
            ),
        }
    }
}
