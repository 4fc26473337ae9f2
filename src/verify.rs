//! `certgen verify`: the committed tree checked by the tools that will read it, as CI runs them
//! on a clone (no certificates, no server): shellcheck on every script, `docker compose config`
//! on every compose file, and `nginx -t` in each server's own nginx image on its proxy's
//! configuration, every site enabled with a throwaway certificate. The server runs the same
//! `nginx -t` (apply.sh, the rollout) before a configuration replaces the running one; this
//! finds the broken file in review instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;

use crate::config::{Config, Engine};
use crate::names::SITES;
use crate::render::Tree;

/// What one tool said about one file or folder, when it refused it.
pub struct Finding {
    pub what: String,
    pub output: String,
}

/// Runs every check on the tree in `out`, whose generated files `tree` lists (what `config`
/// renders), and returns what failed (empty: all passed).
pub fn verify(out: &Path, config: &Config, tree: &Tree) -> anyhow::Result<Vec<Finding>> {
    let out = absolute(out)?;
    let mut findings = Vec::new();
    let scratch = tempfile::tempdir().context("creating a temporary folder")?;
    for server in &config.servers {
        let dir = out.join(server.name.as_str());
        // The server's generated files whose name ends with `ending`, on disk.
        let generated = |ending: &str| -> Vec<PathBuf> {
            tree.keys()
                .filter(|rel| rel.starts_with(server.name.as_str()))
                .filter(|rel| rel.to_string_lossy().ends_with(ending))
                .map(|rel| out.join(rel))
                .collect()
        };
        for script in generated(".sh") {
            // -x: each script's `source` of lib.sh is followed and checked with it.
            let run = tool("shellcheck", &["--severity=style", "-x"], &[&script], &dir)?;
            findings.extend(refused(format!("shellcheck {}", script.display()), run));
        }
        for compose in generated("docker-compose.yml") {
            let run = tool(
                "docker",
                &["compose", "-f"],
                &[&compose, Path::new("config")],
                &dir,
            )?;
            findings.extend(refused(
                format!("docker compose config {}", compose.display()),
                run,
            ));
        }
        let image = config.settings(server).images.nginx.to_string();
        let live = scratch.path().join(server.name.as_str());
        let sites = dir.join(SITES);
        let sites: Vec<PathBuf> = generated(".conf")
            .into_iter()
            .filter(|conf| conf.parent() == Some(sites.as_path()))
            .collect();
        throwaway_certificates(&sites, &live)?;
        let proxy = dir.join("nginx-ssl/nginx");
        findings.extend(refused(
            format!("nginx -t ({image}) on {}", proxy.display()),
            nginx_t(&image, &proxy, &live)?,
        ));
        let challenge = dir.join("nginx-for-cert/nginx/conf.d");
        if server.engine == Engine::Compose && challenge.is_dir() {
            let place = "rm -rf /etc/nginx/conf.d && cp -r /tmp/certgen-conf /etc/nginx/conf.d \
                         && exec nginx -t";
            let run = run_with_files(&image, &[(&challenge, "/tmp/certgen-conf")], place)?;
            findings.extend(refused(
                format!("nginx -t ({image}) on {}", challenge.display()),
                run,
            ));
        }
    }
    Ok(findings)
}

/// `nginx -t` as the proxy runs it (`proxy.sh test`: the sites enabled, then the test), on a
/// server's `nginx-ssl/nginx` folder placed where its compose file mounts it, with the
/// certificates of `live`.
fn nginx_t(image: &str, proxy: &Path, live: &Path) -> anyhow::Result<Output> {
    let place = "rm -rf /etc/nginx/conf.d && cp -r /tmp/certgen-proxy/conf.d /etc/nginx/conf.d \
                 && cp -r /tmp/certgen-proxy /etc/nginx/certgen && mkdir -p /etc/letsencrypt \
                 && cp -r /tmp/certgen-live /etc/letsencrypt/live \
                 && exec /bin/sh /etc/nginx/certgen/proxy.sh test";
    run_with_files(
        image,
        &[(proxy, "/tmp/certgen-proxy"), (live, "/tmp/certgen-live")],
        place,
    )
}

/// Runs the shell `script` in a container of `image` holding copies of `files` (folder on this
/// machine, folder in the container). Copied, not mounted: Docker may run elsewhere (a CI's
/// docker-in-docker service), where no folder of this machine exists.
fn run_with_files(image: &str, files: &[(&Path, &str)], script: &str) -> anyhow::Result<Output> {
    let here = Path::new(".");
    let created = tool(
        "docker",
        &[
            "create",
            "--add-host",
            "host.docker.internal:host-gateway",
            "--tmpfs",
            "/run/certgen",
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            script,
        ],
        &[],
        here,
    )?;
    if !created.status.success() {
        return Ok(created);
    }
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let result = (|| {
        for (source, target) in files {
            let container = format!("{id}:{target}");
            let copy = tool(
                "docker",
                &["cp"],
                &[&source.join("."), Path::new(&container)],
                here,
            )?;
            if !copy.status.success() {
                return Ok(copy);
            }
        }
        tool("docker", &["start", "--attach", &id], &[], here)
    })();
    let _ = tool("docker", &["rm", "--force", &id], &[], here);
    result
}

/// A self-signed certificate and key at `live/NAME/` for every site file `NAME.conf` of `sites`.
fn throwaway_certificates(sites: &[PathBuf], live: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(live).with_context(|| format!("creating {}", live.display()))?;
    for site in sites {
        let name = site
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let folder = live.join(name);
        fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let subject = format!("/CN={name}");
        let run = tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ],
            &[
                Path::new("-days"),
                Path::new("2"),
                Path::new("-subj"),
                Path::new(&subject),
                Path::new("-keyout"),
                &folder.join("privkey.pem"),
                Path::new("-out"),
                &folder.join("fullchain.pem"),
            ],
            live,
        )?;
        if let Some(finding) = refused(format!("openssl req for {name}"), run) {
            anyhow::bail!("{}: {}", finding.what, finding.output);
        }
    }
    Ok(())
}

/// Runs `program` with `args`, then `paths`; a program that is not installed is an error that
/// says so (verify needs every one of its tools).
fn tool(program: &str, args: &[&str], paths: &[&Path], dir: &Path) -> anyhow::Result<Output> {
    Command::new(program)
        .args(args)
        .args(paths)
        .current_dir(dir)
        .output()
        .with_context(|| {
            format!("cannot run {program}: certgen verify needs shellcheck, docker with compose, and openssl")
        })
}

fn refused(what: String, run: Output) -> Option<Finding> {
    (!run.status.success()).then(|| Finding {
        what,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
    })
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    fs::canonicalize(path).with_context(|| format!("{} is missing", path.display()))
}
