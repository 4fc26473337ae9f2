//! Every snapshot tree, checked by the tools that will read it: shellcheck for the scripts,
//! `nginx -t` in the pinned nginx (a stand-in built by .ci/setup) with throwaway certificates at
//! the expected paths, and `docker compose config` for the compose files. Runs when
//! `CERTGEN_REAL_TOOLS=1`; a missing tool is then a failure, not a skip.

use std::fs;
use std::path::{Path, PathBuf};

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
            run("shellcheck", &["--severity=style", path]),
        );
        check(&format!("bash -n {path}"), run("bash", &["-n", path]));
    }
}

#[test]
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
}

#[test]
fn every_generated_nginx_config_passes_nginx_t() {
    if !opted_in("CERTGEN_REAL_TOOLS", "nginx -t on the snapshots") {
        return;
    }
    let throwaway = tempfile::tempdir().unwrap();
    let mut dirs: Vec<PathBuf> = snapshot_files(".conf")
        .into_iter()
        .map(|p| p.parent().unwrap().to_path_buf())
        .collect();
    dirs.dedup();
    assert!(!dirs.is_empty());
    for (i, dir) in dirs.iter().enumerate() {
        let live = throwaway.path().join(i.to_string());
        check(
            &format!("nginx -t on {}", dir.display()),
            nginx_t(dir, &live),
        );
    }
}

/// Runs `nginx -t` in the pinned nginx on the configs in `conf_dir`, with throwaway
/// certificates made in `live` at the paths the configs name.
pub fn nginx_t(conf_dir: &Path, live: &Path) -> std::process::Output {
    throwaway_certificates(conf_dir, live);
    let conf = format!("{}:/etc/nginx/conf.d:ro", conf_dir.display());
    let certs = format!("{}:/etc/letsencrypt/live:ro", live.display());
    let image = nginx_image();
    run(
        "docker",
        &[
            "run",
            "--rm",
            "--add-host",
            "host.docker.internal:host-gateway",
            "-v",
            &conf,
            "-v",
            &certs,
            &image,
            "nginx",
            "-t",
        ],
    )
}

/// A self-signed certificate and key at `live/NAME/` for every certificate the configs in `dir`
/// name, so `nginx -t` finds real files at the paths certbot will fill.
fn throwaway_certificates(dir: &Path, live: &Path) {
    fs::create_dir_all(live).unwrap();
    for conf in fs::read_dir(dir).unwrap() {
        let text = fs::read_to_string(conf.unwrap().path()).unwrap();
        for line in text
            .lines()
            .filter(|l| l.trim_start().starts_with("ssl_certificate "))
        {
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .trim_end_matches(';');
            let name = path
                .strip_prefix("/etc/letsencrypt/live/")
                .unwrap()
                .split('/')
                .next()
                .unwrap();
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
}
