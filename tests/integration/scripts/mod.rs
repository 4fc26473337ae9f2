//! The generated scripts' behaviour, without Docker. Each test renders a tree, then
//! runs a script unmodified against a stand-in `docker` that records every argument vector and
//! plays the parts the test asks for: certbot keeping a certificate, ordering one (asking for
//! port 80 through its pre-hook, then leaving the deploy hook's marker), failing; the proxy
//! running or not; `nginx -t` failing in the proxy's reload.
//!
//! The scripts set their own `PATH` (cron's is bare), so the stand-in is mounted over
//! `/usr/local/sbin`, the first folder of that `PATH`, in a mount namespace of the script's own;
//! a network namespace of its own gives it a port 80 (the stand-in's nginx is a Python server
//! answering 404, as nginx answers a challenge token that does not exist). `unshare` does both,
//! as root or in a user namespace.
//!
//! The breakages each test catches are named in its comment.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use proptest::prelude::*;

use crate::fixture::Repo;

mod dns;
mod issuance;
mod server;
mod swarm;

/// The stand-in for `docker`. Every call is one line of FAKE_LOG, its arguments separated by
/// the unit separator. certbot's outcomes, one per `docker compose run ... certbot` call, come
/// from FAKE_CERTBOT: `keep`, `order`, `fail`, `order-fail`.
const FAKE_DOCKER: &str = r#"#!/usr/bin/env bash
set -u
# One line per call: a newline in an argument (the certbot container's program) is written \n.
printf '%s\x1f' "${@//$'\n'/\\n}" >>"$FAKE_DIR/calls"
printf '\n' >>"$FAKE_DIR/calls"
store=../certifications
# listen WHO: a web server on port 80 that answers 404 for a token it does not have, as nginx
# does; WHO (proxy, for-cert) is who holds it, for `down` to stop only nginx_for_cert.
listen() {
  mkdir -p "$FAKE_DIR/empty"
  "$FAKE_PYTHON" -m http.server 80 --bind 127.0.0.1 --directory "$FAKE_DIR/empty" >/dev/null 2>&1 &
  echo $! >"$FAKE_DIR/$1.pid"
}

case " $* " in
  " compose version ")
    # The proxy of an http: redirect server holds port 80 from the start.
    [ "${FAKE_PROXY_PORT80:-}" != 1 ] || [ -e "$FAKE_DIR/proxy.pid" ] || listen proxy
    exit 0
    ;;
  *" pull --quiet --policy missing"*)
    # When the run got past the lock (the pull is its first step after it).
    date +%s.%N >"$FAKE_DIR/past-the-lock"
    exit 0
    ;;
  *" ps --quiet nginx "*)
    # The proxy container's id before and after `up`, from FAKE_PS_IDS ("-": none).
    n=$(cat "$FAKE_DIR/ps-calls" 2>/dev/null || echo 0)
    echo $((n + 1)) >"$FAKE_DIR/ps-calls"
    read -r -a ids <<<"${FAKE_PS_IDS:-- -}"
    [ "${ids[$n]:--}" = - ] || echo "${ids[$n]}"
    exit 0
    ;;
  *" up --detach --wait --remove-orphans "*)
    exit "${FAKE_UP:-0}"
    ;;
  *" ps --status running --quiet nginx "*)
    [ "${FAKE_PROXY:-}" != running ] || echo 0123456789ab
    exit 0
    ;;
  *" exec -T nginx /bin/sh /etc/nginx/certgen/proxy.sh reload "*)
    if [ "${FAKE_NGINX_T:-ok}" != ok ]; then
      echo "nginx: [emerg] unknown directive \"oops\" in /etc/nginx/certgen/custom/a.example.com/broken.conf:1" >&2
      exit 1
    fi
    exit 0
    ;;
  *" up --detach --wait nginx_for_cert "*)
    listen for-cert
    exit 0
    ;;
  *"/nginx-for-cert/docker-compose.yml down "*)
    if [ -e "$FAKE_DIR/for-cert.pid" ]; then
      kill "$(cat "$FAKE_DIR/for-cert.pid")" 2>/dev/null
      rm -f "$FAKE_DIR/for-cert.pid"
    fi
    exit 0
    ;;
  *" --entrypoint python3 certbot - "* | *" --entrypoint python3 certbot_dns - "*)
    # One container for all of a run's certbot runs, each after `--certgen-certificate NAME`:
    # the outcomes, one per run, come from FAKE_CERTBOT; the failed names go to the report.
    # FAKE_PLANT: a compromised certbot (the HTTP-01 one) replaces this path of the store with a
    # link to a file of the host, mid-run.
    if [ -n "${FAKE_PLANT:-}" ] && [[ " $* " == *" certbot - "* ]]; then
      rm -rf "${store:?}/$FAKE_PLANT"
      ln -s "$FAKE_DIR/host-file" "$store/$FAKE_PLANT"
    fi
    # Which credentials file compose would mount into certbot_dns (lib.sh's find_dns_credentials).
    [[ " $* " != *" certbot_dns - "* ]] || echo "${CERTGEN_DNS_CREDENTIALS:-}" >"$FAKE_DIR/dns-credentials"
    # A marker left by an earlier run would answer this one's pre-hook before port 80 opens.
    [ ! -e "$store/.certgen/port80-answer" ] || echo STALE-ANSWER >>"$FAKE_DIR/calls"
    args=("$@")
    names=()
    for ((i = 0; i < ${#args[@]}; i++)); do
      [ "${args[$i]}" != --certgen-certificate ] || names+=("${args[$((i + 1))]}")
    done
    read -r -a outcomes <<<"${FAKE_CERTBOT:-keep}"
    failed=()
    for ((n = 0; n < ${#names[@]}; n++)); do
      case ${outcomes[$n]:-keep} in
        order | order-fail)
          # certbot_dns proves names through DNS: its runs never ask for port 80.
          if [[ " $* " == *" certbot_dns - "* ]]; then
            [ "${outcomes[$n]}" = order ] && touch "$store/.certgen/reload-proxy" || failed+=("${names[$n]}")
            continue
          fi
          touch "$store/.certgen/port80-wanted"
          for _ in $(seq 100); do
            [ -e "$store/.certgen/port80-answer" ] && break
            sleep 0.1
          done
          if [ -e "$store/.certgen/port80-answer" ] && [ "${outcomes[$n]}" = order ]; then
            touch "$store/.certgen/reload-proxy"
          else
            failed+=("${names[$n]}")
          fi
          ;;
        fail) failed+=("${names[$n]}") ;;
      esac
    done
    printf '%s\n' "${failed[@]}" >"$store/.certgen/failed"
    exit 0
    ;;
esac
exit 0
"#;

/// The stand-in for `crontab`: the table is the file FAKE_CRONTAB; `crontab -l` without one says
/// what cron's says.
const FAKE_CRONTAB: &str = r#"#!/bin/sh
case "$1" in
  -l)
    [ -e "$FAKE_CRONTAB" ] || { echo "no crontab for root" >&2; exit 1; }
    cat "$FAKE_CRONTAB"
    ;;
  -) cat >"$FAKE_CRONTAB.new" && mv "$FAKE_CRONTAB.new" "$FAKE_CRONTAB" ;;
  *) exit 2 ;;
esac
"#;

/// A rendered tree with the stand-ins for `docker` and `crontab`.
struct Harness {
    /// The infra repo, in the folder `infra` of its temporary folder (beside `bin`, `fake`).
    repo: Repo,
}

/// What one run of a script did.
struct Run {
    output: Output,
    calls: Vec<Vec<String>>,
    stale_answer: bool,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn log(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    /// The arguments of each certbot run, in order: the runs of the one certbot container
    /// (after each `--certgen-certificate NAME`), and `certbot delete`.
    fn certbot(&self) -> Vec<Vec<String>> {
        let mut runs = Vec::new();
        for call in self.calls.iter().filter(|c| {
            c.first().map(String::as_str) == Some("compose") && c.contains(&"run".into())
        }) {
            let Some(at) = call
                .iter()
                .position(|a| a == "certbot" || a == "certbot_dns")
            else {
                continue;
            };
            let args = &call[at + 1..];
            match args.first().map(String::as_str) {
                // run-certbots.py on stdin: its runs. status.sh's status.py orders nothing.
                Some("-") => {
                    for group in args[1..].split(|a| a == "--certgen-certificate").skip(1) {
                        runs.push(group[1..].to_vec());
                    }
                }
                _ => runs.push(args.to_vec()),
            }
        }
        runs
    }

    /// Where the first call containing all of `words` (in order, adjacent) is in the log.
    fn position(&self, words: &[&str]) -> Option<usize> {
        self.calls
            .iter()
            .position(|c| c.windows(words.len()).any(|w| w == words))
    }

    fn has(&self, words: &[&str]) -> bool {
        self.position(words).is_some()
    }
}

/// A config of one server `edge` with two certificates, and whatever `extra` adds at the top.
fn config(extra: &str, acme_server: &str, email: &str) -> String {
    format!(
        "{extra}email: {email}\nacme_server: {acme}\nrenew_schedule: \"1 2,14 * * *\"\n\
         servers:\n- name: edge\n  deploy_path: /srv/infra\n  certificates:\n\
         \x20 - domains: [a.example.com, www.a.example.com]\n    upstream: http://app:3000\n\
         \x20 - domains: [b.example.com]\n    upstream: http://10.0.0.2:80\n",
        email = certgen::render::yaml_quote(email),
        acme = certgen::render::yaml_quote(acme_server),
    )
}

const ACME: &str = "https://ca.example.com:8443/acme/dir?x=1&y=a+b@c:d~e[f]";

const EMAIL: &str = "a.b+c_d-e@example.com";

impl Harness {
    /// The usual tree: server `edge` with two certificates, the ACME URL and email that test
    /// the quoting.
    fn edge() -> Option<Harness> {
        Harness::new(&config("", ACME, EMAIL))
    }

    /// Runs `script` with no arguments and `env`; it must exit with `code`.
    #[track_caller]
    fn exits(&self, code: i32, script: &str, env: &[(&str, &str)]) -> Run {
        let run = self.run(script, &[], env);
        assert_eq!(run.code(), Some(code), "{script}: {}", run.log());
        run
    }

    /// None, with a visible note, where namespaces cannot be made (no unshare, no user
    /// namespaces); under CERTGEN_REAL_TOOLS=1 that is a failure.
    fn new(yaml: &str) -> Option<Harness> {
        if !namespaces_work() {
            let why = "the script behaviour tests need `unshare` (util-linux) with mount and \
                       network namespaces (as root, or user namespaces enabled)";
            assert!(
                std::env::var("CERTGEN_REAL_TOOLS").as_deref() != Ok("1"),
                "{why}"
            );
            eprintln!("note: skipping: {why}");
            return None;
        }
        let repo = Repo::in_folder(yaml, "infra");
        repo.render();
        let bin = repo.tmp().join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("docker"), FAKE_DOCKER).unwrap();
        fs::write(bin.join("crontab"), FAKE_CRONTAB).unwrap();
        for tool in ["docker", "crontab"] {
            crate::helpers::run("chmod", &["0755", bin.join(tool).to_str().unwrap()]);
        }
        Some(Harness { repo })
    }

    fn server(&self) -> PathBuf {
        self.repo.tmp().join("infra/edge")
    }

    fn markers(&self) -> PathBuf {
        self.server().join("certifications/.certgen")
    }

    fn fake(&self) -> PathBuf {
        self.repo.tmp().join("fake")
    }

    /// Runs `script` (relative to the server folder) with `args`, the stand-in set by `env`.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_program(&self.server().join(script), args, env)
    }

    /// Runs a command line with `sh -c`, as cron does: from /, with cron's bare environment
    /// (and the stand-ins' settings).
    fn run_as_cron(&self, line: &str, env: &[(&str, &str)]) -> Run {
        let mut args = vec![
            "-i".to_string(),
            "PATH=/usr/bin:/bin".into(),
            "HOME=/root".into(),
            format!("FAKE_DIR={}", self.fake().display()),
            format!("FAKE_PYTHON={}", python()),
        ];
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        args.extend(["sh".into(), "-c".into(), format!("cd / && {line}")]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_program(Path::new("/usr/bin/env"), &args, env)
    }

    fn run_program(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let fake = self.fake();
        let _ = fs::remove_dir_all(&fake);
        fs::create_dir_all(&fake).unwrap();
        let mut cmd = Command::new("unshare");
        if !is_root() {
            cmd.arg("--map-root-user");
        }
        cmd.args(["--mount", "--net", "--", "bash", "-c"])
            .arg("mount --bind \"$FAKE_BIN\" /usr/local/sbin && ip link set lo up && exec \"$@\"")
            .arg("unshare")
            .arg(program)
            .args(args)
            .env("FAKE_BIN", self.repo.tmp().join("bin"))
            .env("FAKE_DIR", &fake)
            .env("FAKE_PYTHON", python())
            .current_dir(self.repo.tmp())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("unshare runs");
        for holder in ["proxy.pid", "for-cert.pid"] {
            if let Ok(pid) = fs::read_to_string(fake.join(holder)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        let text = fs::read_to_string(fake.join("calls")).unwrap_or_default();
        Run {
            output,
            stale_answer: text.contains("STALE-ANSWER"),
            calls: text
                .lines()
                .filter(|l| !l.starts_with("STALE"))
                .map(|l| {
                    l.split('\x1f')
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The Python interpreter itself (not a shim that needs this shell's PATH).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn namespaces_work() -> bool {
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.arg("--map-root-user");
    }
    cmd.args(["--mount", "--net", "--", "sh", "-c", "ip link set lo up"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// certbot's arguments for one certificate, as nginx-for-cert/run.sh must pass them.
fn certonly(acme: &str, email: &str, names: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--keep-until-expiring",
        "--server",
        acme,
        "--key-type",
        "ecdsa",
        "--email",
        email,
        "--no-eff-email",
        "--deploy-hook",
        "touch /etc/letsencrypt/.certgen/reload-proxy",
        "--webroot",
        "--webroot-path",
        "/var/www/certbot",
        "--cert-name",
        names[0],
    ]
    .map(String::from)
    .to_vec();
    for n in names {
        args.extend(["--domain".to_string(), n.to_string()]);
    }
    args.extend(
        [
            "--logs-dir",
            "/etc/letsencrypt/logs",
            "--pre-hook",
            PRE_HOOK,
        ]
        .map(String::from),
    );
    args
}

const PRE_HOOK: &str = "touch /etc/letsencrypt/.certgen/port80-wanted; n=0; until [ -e /etc/letsencrypt/.certgen/port80-answer ]; do n=$((n + 1)); [ \"$n\" -le 600 ] || exit 1; sleep 0.1; done";
