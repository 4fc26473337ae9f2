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
  " compose down "*)
    if [ -e "$FAKE_DIR/for-cert.pid" ]; then
      kill "$(cat "$FAKE_DIR/for-cert.pid")" 2>/dev/null
      rm -f "$FAKE_DIR/for-cert.pid"
    fi
    exit 0
    ;;
  *" --entrypoint python3 certbot -c "* | *" --entrypoint python3 certbot_dns -c "*)
    # One container for all of a run's certbot runs, each after `--certgen-certificate NAME`:
    # the outcomes, one per run, come from FAKE_CERTBOT; the failed names go to the report.
    # FAKE_PLANT: a compromised certbot (the HTTP-01 one) replaces this path of the store with a
    # link to a file of the host, mid-run.
    if [ -n "${FAKE_PLANT:-}" ] && [[ " $* " == *" certbot -c "* ]]; then
      rm -rf "${store:?}/$FAKE_PLANT"
      ln -s "$FAKE_DIR/host-file" "$store/$FAKE_PLANT"
    fi
    # Which credentials file compose would mount into certbot_dns (lib.sh's find_dns_credentials).
    [[ " $* " != *" certbot_dns -c "* ]] || echo "${CERTGEN_DNS_CREDENTIALS:-}" >"$FAKE_DIR/dns-credentials"
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
          if [[ " $* " == *" certbot_dns -c "* ]]; then
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
        for call in self
            .calls
            .iter()
            .filter(|c| c.get(1).map(String::as_str) == Some("run"))
        {
            let Some(at) = call
                .iter()
                .position(|a| a == "certbot" || a == "certbot_dns")
            else {
                continue;
            };
            let args = &call[at + 1..];
            if args.first().map(String::as_str) != Some("-c") {
                runs.push(args.to_vec());
                continue;
            }
            for group in args[2..].split(|a| a == "--certgen-certificate").skip(1) {
                runs.push(group[1..].to_vec());
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

// Catches: a value no longer quoted (or quoted twice) on its way to certbot; arguments lost,
// reordered or added; port 80 opened before certbot asks, or not closed; the cleanup of a
// killed run dropped; the images not pulled first; the reload skipped.
#[test]
fn issuance_passes_exact_arguments_and_opens_port_80_only_when_asked() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "order keep"), ("FAKE_PROXY", "running")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(
        run.certbot(),
        vec![
            certonly(ACME, EMAIL, &["a.example.com", "www.a.example.com"]),
            certonly(ACME, EMAIL, &["b.example.com"]),
        ]
    );
    let pull = run
        .position(&["pull", "--quiet", "--policy", "missing"])
        .unwrap();
    let cleanup = run
        .position(&["down", "--remove-orphans", "--timeout", "5"])
        .unwrap();
    let removed = run
        .position(&["rm", "-f", "certgen-edge-nginx-for-cert-certbot"])
        .unwrap();
    // One certbot container for both certificates: no container start per certificate while
    // port 80 is open.
    let containers = run
        .calls
        .iter()
        .filter(|c| c.windows(2).any(|w| w == ["--entrypoint", "python3"]))
        .count();
    assert_eq!(containers, 1, "{:?}", run.calls);
    let first = run.position(&["--cert-name", "a.example.com"]).unwrap();
    let open = run
        .position(&["up", "--detach", "--wait", "nginx_for_cert"])
        .unwrap();
    let reload = run
        .position(&["/etc/nginx/certgen/proxy.sh", "reload"])
        .unwrap();
    assert!(
        pull < first && cleanup < first && removed < first,
        "pull and the cleanup of a killed run come first: {:?}",
        run.calls
    );
    assert!(first < open, "port 80 opens when certbot asks");
    let close = run.calls[open..]
        .iter()
        .position(|c| c.contains(&"down".to_string()))
        .map(|i| i + open)
        .expect("port 80 closed");
    assert!(close < reload, "port 80 closes before the reload");
    assert!(run.log().contains("port 80 closed again"), "{}", run.log());
    assert!(
        !h.markers().join("reload-proxy").exists(),
        "the marker is removed after a reload"
    );
    assert!(!run.stale_answer);
}

// A certificate's ACME profile reaches certbot; one without keeps the CA's default.
#[test]
fn each_certificates_profile_reaches_certbot() {
    let yaml = config("", ACME, EMAIL).replace(
        "    upstream: http://10.0.0.2:80\n",
        "    upstream: http://10.0.0.2:80\n    profile: shortlived\n",
    );
    let Some(h) = Harness::new(&yaml) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "keep keep")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let certbot = run.certbot();
    assert!(!certbot[0].contains(&"--preferred-profile".to_string()));
    let mut expected = certonly(ACME, EMAIL, &["b.example.com"]);
    let at = expected.iter().position(|a| a == "--logs-dir").unwrap();
    expected.splice(
        at..at,
        ["--preferred-profile".to_string(), "shortlived".to_string()],
    );
    assert_eq!(certbot[1], expected);
}

// Catches: port 80 opened with nothing to order; a reload without a changed certificate.
#[test]
fn nothing_to_order_keeps_port_80_closed_and_the_proxy_as_it_is() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "keep keep"), ("FAKE_PROXY", "running")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    assert!(!run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(run
        .log()
        .contains("port 80 stayed closed: nothing was ordered over HTTP"));
}

// Catches: the reload marker dropped when the reload fails (the next run would never reload);
// a failed nginx -t reported as success.
#[test]
fn a_failed_reload_keeps_the_marker_and_the_next_run_reloads() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[
            ("FAKE_CERTBOT", "order keep"),
            ("FAKE_PROXY", "running"),
            ("FAKE_NGINX_T", "fail"),
        ],
    );
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(run.log().contains("fails 'nginx -t'") && run.log().contains("broken.conf"));
    assert!(
        h.markers().join("reload-proxy").exists(),
        "the marker stays"
    );
    let next = h.run(
        "renew/run.sh",
        &[],
        &[("FAKE_CERTBOT", "keep keep"), ("FAKE_PROXY", "running")],
    );
    assert_eq!(next.code(), Some(0), "{}", next.log());
    assert!(next.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(!h.markers().join("reload-proxy").exists());
}

// Catches: a reload attempted on a stopped proxy (compose exec fails: the run would fail).
#[test]
fn a_stopped_proxy_is_not_reloaded() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "order keep")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(run.log().contains("the proxy is not running"));
    assert!(!h.markers().join("reload-proxy").exists());
}

// Catches: a failed order that exits 0, does not name the certificate, or leaves port 80 open.
#[test]
fn a_failed_order_names_the_certificate_and_closes_port_80() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "order-fail keep")],
    );
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(
        run.log().contains("could not obtain: a.example.com"),
        "{}",
        run.log()
    );
    let open = run
        .position(&["up", "--detach", "--wait", "nginx_for_cert"])
        .unwrap();
    assert!(
        run.calls[open..]
            .iter()
            .any(|c| c.get(1).map(String::as_str) == Some("down")),
        "port 80 closed after the failure"
    );
}

// Catches: the start-of-run cleanup of a killed run removed (its markers would answer the next
// pre-hook before port 80 is open).
#[test]
fn what_a_killed_run_left_is_removed_before_certbot_runs() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    fs::create_dir_all(h.markers()).unwrap();
    fs::write(h.markers().join("port80-wanted"), "").unwrap();
    fs::write(h.markers().join("port80-answer"), "").unwrap();
    let run = h.run("renew/run.sh", &[], &[]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!h.markers().join("port80-answer").exists());
    assert!(!h.markers().join("port80-wanted").exists());
    // Nothing is due (no lineage in the store): certbot never ran, but the cleanup did.
    assert!(run.has(&["down", "--remove-orphans", "--timeout", "5"]));

    fs::create_dir_all(h.server().join("certifications/renewal")).unwrap();
    fs::write(
        h.server().join("certifications/renewal/a.example.com.conf"),
        "",
    )
    .unwrap();
    fs::write(h.markers().join("port80-answer"), "").unwrap();
    let run = h.run("renew/run.sh", &[], &[("FAKE_CERTBOT", "keep")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        !run.stale_answer,
        "a stale answer was still there when certbot ran"
    );
}

// Catches: the lock dropped, so two runs would share port 80 and the store.
#[test]
fn a_second_run_waits_for_the_first() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let released = h.repo.tmp().join("released");
    let mut holder = Command::new("flock")
        .arg(h.server())
        .args(["sh", "-c", "sleep 1.5; date +%s.%N >\"$0\""])
        .arg(&released)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let run = h.run("renew/run.sh", &[], &[]);
    holder.wait().unwrap();
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run
        .log()
        .contains("another run of nginx-for-cert/run.sh, renew/run.sh or apply.sh is under way"));
    let time = |p: PathBuf| -> f64 { fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    assert!(
        time(h.fake().join("past-the-lock")) >= time(released),
        "the second run went on before the first released the lock"
    );
}

// Catches: http: redirect starting the temporary nginx while the proxy holds port 80.
#[test]
fn redirect_mode_uses_the_running_proxys_port_80() {
    let Some(h) = Harness::new(&config("http: redirect\n", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[
            ("FAKE_CERTBOT", "order keep"),
            ("FAKE_PROXY", "running"),
            ("FAKE_PROXY_PORT80", "1"),
        ],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    assert!(run
        .log()
        .contains("the proxy answers the ACME challenge on port 80"));
    assert!(run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
}

// Catches: renewal of a certificate that left the config; renew arguments changed.
#[test]
fn renewal_covers_the_configured_certificates_only() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let renewal = h.server().join("certifications/renewal");
    fs::create_dir_all(&renewal).unwrap();
    for name in ["a.example.com", "old.example.com"] {
        fs::write(renewal.join(format!("{name}.conf")), "").unwrap();
    }
    let run = h.run("renew/run.sh", &[], &[("FAKE_CERTBOT", "keep")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(
        run.certbot(),
        vec![[
            "renew",
            "--cert-name",
            "a.example.com",
            "--non-interactive",
            "--no-random-sleep-on-renew",
            "--deploy-hook",
            "touch /etc/letsencrypt/.certgen/reload-proxy",
            "--webroot",
            "--webroot-path",
            "/var/www/certbot",
            "--logs-dir",
            "/etc/letsencrypt/logs",
            "--pre-hook",
            PRE_HOOK,
        ]
        .map(String::from)
        .to_vec()]
    );
    assert!(run
        .log()
        .contains("skipping old.example.com: it is no longer in certgen.yaml"));
    let failed = h.run("renew/run.sh", &[], &[("FAKE_CERTBOT", "fail")]);
    assert_eq!(failed.code(), Some(1));
    assert!(failed
        .log()
        .contains("certbot could not renew: a.example.com"));
}

// Catches: --delete of a configured certificate, or arguments that reach certbot unchecked.
#[test]
fn delete_takes_only_a_certificate_that_left_the_config() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let renewal = h.server().join("certifications/renewal");
    fs::create_dir_all(&renewal).unwrap();
    fs::write(renewal.join("old.example.com.conf"), "").unwrap();
    let run = h.run(
        "nginx-for-cert/run.sh",
        &["--delete", "old.example.com"],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(
        run.certbot(),
        vec![[
            "delete",
            "--cert-name",
            "old.example.com",
            "--non-interactive",
            "--logs-dir",
            "/etc/letsencrypt/logs"
        ]
        .map(String::from)
        .to_vec()]
    );
    let configured = h.run("nginx-for-cert/run.sh", &["--delete", "a.example.com"], &[]);
    assert_eq!(configured.code(), Some(1));
    assert!(configured
        .log()
        .contains("a.example.com is in certgen.yaml"));
    for bad in [
        &["--delete", "../x"][..],
        &["--delete"],
        &["--force"],
        &["--delete", "-rf"],
    ] {
        let run = h.run("nginx-for-cert/run.sh", bad, &[]);
        assert_eq!(run.code(), Some(2), "{bad:?}: {}", run.log());
        assert!(run.calls.is_empty(), "{bad:?} ran docker: {:?}", run.calls);
    }
}

/// The characters the validators accept in ACME URLs and emails, mixed.
fn acme_servers() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "https://[a-z]{1,8}\\.example(:[1-9][0-9]{1,3})?/[a-zA-Z0-9._~-]{1,6}(\\?[a-z]{1,3}=[a-zA-Z0-9+@:~\\[\\]-]{1,6}(&[a-z]{1,3}=[a-zA-Z0-9+@:~=-]{1,6})?)?",
    )
    .unwrap()
}

fn emails() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9][a-z0-9+._-]{0,10}[a-z0-9]@[a-z]{1,8}\\.example")
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    // Catches: quoting of the ACME URL or the email broken for characters the validators accept.
    #[test]
    fn accepted_values_reach_certbot_unchanged(acme in acme_servers(), email in emails()) {
        prop_assume!(certgen::validate::AcmeServer::parse(&acme).is_ok());
        prop_assume!(certgen::validate::Email::parse(&email).is_ok());
        let Some(h) = Harness::new(&config("", &acme, &email)) else {
            return Ok(());
        };
        let run = h.run("nginx-for-cert/run.sh", &[], &[("FAKE_CERTBOT", "keep keep")]);
        prop_assert_eq!(run.code(), Some(0), "{}", run.log());
        prop_assert_eq!(run.certbot()[1].clone(), certonly(&acme, &email, &["b.example.com"]));
    }
}

#[test]
fn the_acme_url_generator_reaches_every_accepted_character() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = String::new();
    for _ in 0..200 {
        let url = acme_servers().new_tree(&mut runner).unwrap().current();
        if certgen::validate::AcmeServer::parse(&url).is_ok() {
            seen.push_str(&url);
        }
    }
    for c in "&?=+@:~[]".chars() {
        assert!(seen.contains(c), "no accepted URL had {c:?}");
    }
    assert!(Path::new(&python()).is_absolute());
}

/// `config` without deploy_path: a tree that works wherever it is cloned.
fn config_without_deploy_path() -> String {
    config("", ACME, EMAIL).replace("  deploy_path: /srv/infra\n", "")
}

// Catches: the cron line written with the generating machine's path (or none); a
// second install adding a second line; other entries lost; a line that does not run
// renew/run.sh the way cron runs it. Also: another tree's line for a server of the same name
// (here at /home/alice, with no marker) removed: it stays, and the install names it.
#[test]
fn install_cron_uses_the_path_the_tree_has_and_is_idempotent() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    // Cloned elsewhere: the tree moves to another folder before it is used.
    let clone = h.repo.tmp().join("srv/infra");
    fs::create_dir_all(clone.parent().unwrap()).unwrap();
    fs::rename(h.repo.tmp().join("infra"), &clone).unwrap();
    let server = clone.join("edge");
    let table = h.repo.tmp().join("crontab");
    let old = "17 3 * * * '/home/alice/infra/edge/renew/run.sh' >> '/home/alice/infra/edge/renew/renew.log' 2>&1";
    fs::write(
        &table,
        format!("MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n{old}\n"),
    )
    .unwrap();
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    for pass in ["first", "second"] {
        let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
        assert_eq!(run.code(), Some(0), "{pass}: {}", run.log());
        let installed = fs::read_to_string(&table).unwrap();
        let expected = cron_line_of(&server);
        assert_eq!(
            installed,
            format!(
                "MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n{old}\n{expected}\n"
            ),
            "{pass} install"
        );
        assert!(
            run.log().contains(&format!("crontab -e): {old}")),
            "{}",
            run.log()
        );
        if pass == "second" {
            assert!(
                run.log().contains("the cron line is in place"),
                "{}",
                run.log()
            );
        }
    }
    // The line, as cron runs it, runs renew/run.sh (nothing due: exit 0, the run recorded).
    let expected = cron_line_of(&server);
    let run = h.run_as_cron(expected.splitn(6, ' ').nth(5).unwrap(), &env);
    let log = fs::read_to_string(server.join("renew/renew.log")).unwrap_or_default();
    assert!(log.contains("renew: "), "{}{log}", run.log());
    assert!(server.join("renew/last-run").exists(), "{log}");

    // No crontab yet: the line is the whole table.
    fs::remove_file(&table).unwrap();
    let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(fs::read_to_string(&table).unwrap(), format!("{expected}\n"));
}

/// The cron line --install-cron writes for the server folder `server`: its path, and the marker
/// of the tree (renew/tree-id, made at the first install).
fn cron_line_of(server: &Path) -> String {
    let id = fs::read_to_string(server.join("renew/tree-id")).unwrap();
    format!(
        "1 2,14 * * * '{s}/renew/run.sh' >> '{s}/renew/renew.log' 2>&1 # certgen-tree:{}",
        id.trim(),
        s = server.display()
    )
}

// Catches: --install-cron or apply.sh of one tree removing the line of another tree
// whose server has the same name (a staging copy, another team's): each replaces its own only,
// and a tree moved with its state keeps one line.
#[test]
fn two_trees_with_one_server_name_both_keep_their_cron_line() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let first = h.server();
    let staging = h.repo.tmp().join("staging");
    fs::create_dir_all(&staging).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(h.repo.tmp().join("infra"))
        .arg(&staging)
        .status()
        .unwrap();
    assert!(status.success());
    let second = staging.join("infra/edge");
    let table = h.repo.tmp().join("crontab");
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    let install = |server: &Path| {
        let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
        assert_eq!(run.code(), Some(0), "{}", run.log());
    };
    install(&first);
    install(&second);
    install(&first);
    let both = format!("{}\n{}\n", cron_line_of(&first), cron_line_of(&second));
    assert_ne!(cron_line_of(&first), cron_line_of(&second));
    assert_eq!(fs::read_to_string(&table).unwrap(), both);
    // apply.sh of either leaves the other's line alone.
    let run = h.run_program(&second.join("apply.sh"), &[], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(fs::read_to_string(&table).unwrap(), both);

    // The first tree moved, with its state: its line is replaced (and named), the other kept.
    let first_line = cron_line_of(&first);
    let moved = h.repo.tmp().join("moved");
    fs::rename(h.repo.tmp().join("infra"), &moved).unwrap();
    let run = h.run_program(&moved.join("edge/renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        run.log().contains(&format!(
            "removed this tree's earlier cron line: {first_line}"
        )),
        "{}",
        run.log()
    );
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        format!(
            "{}\n{}\n",
            cron_line_of(&second),
            cron_line_of(&moved.join("edge"))
        )
    );
}

// Catches: a path a cron line cannot hold written anyway; a missing crontab command
// passing silently.
#[test]
fn install_cron_is_loud_when_it_cannot() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let odd = h.repo.tmp().join("50% done");
    fs::rename(h.repo.tmp().join("infra"), &odd).unwrap();
    let table = h.repo.tmp().join("crontab");
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    let run = h.run_program(&odd.join("edge/renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(
        run.log().contains("a crontab line cannot hold safely"),
        "{}",
        run.log()
    );
    assert!(!table.exists());
}

// Catches: check_tree skipping links (a custom file linked to a world-writable one
// passed), and status.sh, which runs as root from cron or a monitoring agent, skipping
// check_tree altogether.
#[test]
fn a_link_in_the_tree_stops_every_script() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let writable = h.repo.tmp().join("anyone-can-write.conf");
    fs::write(&writable, "# harmless, for now\n").unwrap();
    let link = h.server().join("nginx-ssl/nginx/custom/http/mine.conf");
    std::os::unix::fs::symlink(&writable, &link).unwrap();
    for script in [
        "renew/run.sh",
        "status.sh",
        "apply.sh",
        "nginx-for-cert/run.sh",
    ] {
        let run = h.run(script, &[], &[]);
        assert_eq!(run.code(), Some(1), "{script}: {}", run.log());
        assert!(
            run.log()
                .contains(&format!("{} is a symbolic link", link.display())),
            "{script}: {}",
            run.log()
        );
        assert!(run.calls.is_empty(), "{script} ran docker: {:?}", run.calls);
    }
}

// Catches: a tree at another place than deploy_path going unnoticed.
#[test]
fn a_tree_away_from_its_deploy_path_says_so() {
    let Some(h) = Harness::new(&config("", ACME, EMAIL)) else {
        return;
    };
    let run = h.run("renew/run.sh", &[], &[]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        run.log()
            .contains("but certgen.yaml's deploy_path puts it at /srv/infra/edge"),
        "{}",
        run.log()
    );
}

// Catches: apply.sh restarting a proxy that only needs a reload (dropped
// connections), reloading a proxy compose just recreated, a failed nginx -t reported as
// success, a changed schedule left in the crontab (a line from before trees had a marker is
// this tree's when it runs this tree's path).
#[test]
fn apply_reloads_or_recreates_as_compose_decides() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let table = h.repo.tmp().join("crontab");
    let server = h.server();
    let line = |schedule: &str| {
        format!(
            "{schedule} '{s}/renew/run.sh' >> '{s}/renew/renew.log' 2>&1",
            s = server.display()
        )
    };
    fs::write(
        &table,
        format!(
            "0 3 * * * /usr/local/bin/backup.sh\n{}\n",
            line("5 5 * * *")
        ),
    )
    .unwrap();
    let crontab = ("FAKE_CRONTAB", table.to_str().unwrap());
    let reload = ["/etc/nginx/certgen/proxy.sh", "reload"];

    let run = h.run("apply.sh", &[], &[crontab, ("FAKE_PS_IDS", "aaa aaa")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run.has(&["up", "--detach", "--wait", "--remove-orphans"]));
    assert!(run.has(&reload), "same container: a reload");
    assert!(run.log().contains("reloaded the proxy's configuration"));
    // The new schedule replaces the old line; the other entry stays.
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        format!(
            "0 3 * * * /usr/local/bin/backup.sh\n{}\n",
            cron_line_of(&server)
        )
    );
    // Neither certificate is on disk: each is named with the command that obtains it.
    assert!(
        run.log()
            .contains("certificate b.example.com is not on disk yet"),
        "{}",
        run.log()
    );

    let run = h.run("apply.sh", &[], &[crontab, ("FAKE_PS_IDS", "aaa bbb")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        !run.has(&reload),
        "a recreated proxy loads its configuration itself"
    );
    assert!(run.log().contains("recreated the proxy"));
    assert!(
        !run.log().contains("cron"),
        "nothing to change: {}",
        run.log()
    );

    let run = h.run("apply.sh", &[], &[crontab, ("FAKE_PS_IDS", "- aaa")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run.log().contains("started the proxy") && !run.has(&reload));

    let run = h.run(
        "apply.sh",
        &[],
        &[
            crontab,
            ("FAKE_PS_IDS", "aaa aaa"),
            ("FAKE_NGINX_T", "broken"),
        ],
    );
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(run.log().contains("fails 'nginx -t'"), "{}", run.log());

    // No line yet: apply says how to install it, and installs nothing by itself.
    fs::write(&table, "0 3 * * * /usr/local/bin/backup.sh\n").unwrap();
    let run = h.run("apply.sh", &[], &[crontab, ("FAKE_PS_IDS", "aaa aaa")]);
    assert!(
        run.log().contains("renew/run.sh --install-cron"),
        "{}",
        run.log()
    );
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        "0 3 * * * /usr/local/bin/backup.sh\n"
    );
}

/// One server with a DNS-01 wildcard certificate and, with `mixed`, an HTTP-01 one.
fn dns_config(mixed: bool) -> String {
    let mut yaml = format!(
        "email: {EMAIL}\nacme_server: https://ca.example.com/dir\nrenew_schedule: \"1 2,14 * * *\"\n\
         dns:\n  provider: rfc2136\n  propagation_seconds: 5\n\
         servers:\n- name: edge\n  certificates:\n\
         \x20 - domains: [e2e.test, \"*.e2e.test\"]\n    upstream: http://app:3000\n    challenge: dns-01\n"
    );
    if mixed {
        yaml.push_str("  - domains: [plain.example.com]\n    upstream: http://app:3000\n");
    }
    yaml
}

/// The DNS credentials, as the server README says to create them (secrets/, mode 700), the file
/// with `mode`.
fn credentials(h: &Harness, mode: &str) -> PathBuf {
    let dir = h.server().join("secrets");
    fs::create_dir_all(&dir).unwrap();
    crate::helpers::run("chmod", &["700", dir.to_str().unwrap()]);
    let file = dir.join("dns-rfc2136.ini");
    fs::write(&file, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
    crate::helpers::run("chmod", &[mode, file.to_str().unwrap()]);
    file
}

// Catches: a DNS-01 certificate ordered in the webroot image, without its plugin's
// arguments, or through port 80; a wildcard left to the shell's globbing.
#[test]
fn dns_certificates_go_through_the_plugin_and_never_open_port_80() {
    let Some(h) = Harness::new(&dns_config(false)) else {
        return;
    };
    credentials(&h, "600");
    let run = h.run("nginx-for-cert/run.sh", &[], &[("FAKE_CERTBOT", "order")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let runs = run.certbot();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let args = runs[0].join(" ");
    for expected in [
        "--authenticator dns-rfc2136 --dns-rfc2136-credentials /etc/certgen/dns/rfc2136.ini --dns-rfc2136-propagation-seconds 5",
        "--cert-name e2e.test --domain e2e.test --domain *.e2e.test",
    ] {
        assert!(args.contains(expected), "{args}");
    }
    assert!(
        !args.contains("--pre-hook") && !args.contains("--webroot"),
        "{args}"
    );
    assert!(run.has(&["--entrypoint", "python3", "certbot_dns"]));
    assert!(
        !run.has(&["up", "--detach", "--wait", "nginx_for_cert"]),
        "port 80 opened"
    );
    assert!(
        run.log()
            .contains("port 80 stayed closed: nothing was ordered over HTTP"),
        "{}",
        run.log()
    );

    // Renewal uses the plugin too.
    let store = h.server().join("certifications/renewal");
    fs::create_dir_all(&store).unwrap();
    fs::write(
        store.join("e2e.test.conf"),
        "server = https://ca.example.com/dir\n",
    )
    .unwrap();
    let run = h.run("renew/run.sh", &[], &[("FAKE_CERTBOT", "keep")]);
    let args = run.certbot().concat().join(" ");
    assert!(
        args.contains("renew --cert-name e2e.test") && args.contains("--authenticator dns-rfc2136"),
        "{args}"
    );
}

// Catches: a missing or world-readable credentials file noticed only by certbot, after
// an order was placed.
#[test]
fn dns_credentials_must_exist_and_be_private_before_anything_is_ordered() {
    let Some(h) = Harness::new(&dns_config(true)) else {
        return;
    };
    let file = h.server().join("secrets/dns-rfc2136.ini");
    for (mode, expected) in [
        (None, "is missing"),
        (Some("644"), "chmod 600"),
        (Some("dir"), "chmod 700"),
    ] {
        match mode {
            Some("dir") => {
                credentials(&h, "600");
                crate::helpers::run(
                    "chmod",
                    &["755", h.server().join("secrets").to_str().unwrap()],
                );
            }
            Some(mode) => drop(credentials(&h, mode)),
            None => {}
        }
        for script in ["nginx-for-cert/run.sh", "renew/run.sh"] {
            let run = h.run(script, &[], &[("FAKE_CERTBOT", "order order")]);
            assert_eq!(run.code(), Some(1), "{script}: {}", run.log());
            assert!(
                run.log()
                    .contains(&h.server().join("secrets").display().to_string())
                    && run.log().contains(expected),
                "{script}: {}",
                run.log()
            );
            assert!(
                run.certbot().is_empty(),
                "{script} ordered: {:?}",
                run.calls
            );
        }
    }
    // Fixed: a mixed server orders both, port 80 only for the HTTP-01 one.
    credentials(&h, "600");
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "order order")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let runs = run.certbot();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let http = runs
        .iter()
        .find(|r| r.contains(&"plain.example.com".to_string()))
        .unwrap();
    assert!(http.contains(&"--webroot".to_string()) && http.contains(&"--pre-hook".to_string()));
    assert!(run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    let mounted = fs::read_to_string(h.fake().join("dns-credentials")).unwrap();
    assert_eq!(mounted.trim(), file.display().to_string());
}

// Catches: a tree from before secrets/ (the credentials in certifications/dns/, which
// every certbot container mounts) failing, or kept there silently.
#[test]
fn dns_credentials_at_the_old_place_still_work_and_the_script_says_where_to_move_them() {
    let Some(h) = Harness::new(&dns_config(false)) else {
        return;
    };
    let old = h.server().join("certifications/dns/rfc2136.ini");
    fs::create_dir_all(old.parent().unwrap()).unwrap();
    fs::write(&old, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
    crate::helpers::run("chmod", &["600", old.to_str().unwrap()]);
    let run = h.run("nginx-for-cert/run.sh", &[], &[("FAKE_CERTBOT", "order")]);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    let new = h.server().join("secrets/dns-rfc2136.ini");
    assert!(
        run.log()
            .contains(&format!("mv {} {}", old.display(), new.display())),
        "{}",
        run.log()
    );
    let mounted = fs::read_to_string(h.fake().join("dns-credentials")).unwrap();
    assert_eq!(mounted.trim(), old.display().to_string());
    // Readable by others there too: stopped, as in secrets/.
    crate::helpers::run("chmod", &["644", old.to_str().unwrap()]);
    let run = h.run("nginx-for-cert/run.sh", &[], &[("FAKE_CERTBOT", "order")]);
    assert_eq!(run.code(), Some(1), "{}", run.log());
}

// Catches: links checked once, at the start, while Docker follows them at every mount:
// the HTTP-01 certbot container planting a link (at live/, or at an older tree's credentials
// file) where the DNS plugin's container of the same run would mount it.
#[test]
fn a_link_planted_mid_run_stops_the_next_container() {
    for (plant, old_place) in [("live", false), ("dns/rfc2136.ini", true)] {
        let Some(h) = Harness::new(&dns_config(true)) else {
            return;
        };
        if old_place {
            let old = h.server().join("certifications/dns/rfc2136.ini");
            fs::create_dir_all(old.parent().unwrap()).unwrap();
            fs::write(&old, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
            crate::helpers::run("chmod", &["600", old.to_str().unwrap()]);
        } else {
            credentials(&h, "600");
        }
        let run = h.run(
            "nginx-for-cert/run.sh",
            &[],
            &[("FAKE_CERTBOT", "order order"), ("FAKE_PLANT", plant)],
        );
        assert_eq!(run.code(), Some(1), "{plant}: {}", run.log());
        let planted = h.server().join("certifications").join(plant);
        assert!(
            run.log().contains(&planted.display().to_string())
                && run.log().contains("symbolic link"),
            "{plant}: {}",
            run.log()
        );
        assert!(
            !run.has(&["--entrypoint", "python3", "certbot_dns"]),
            "{plant}: the DNS plugin's container started"
        );
    }
}

// What a swarm deploy gives the proxies, from lib.sh's stack_files run as the scripts
// run it (bash, no Docker): every file of nginx-ssl/nginx as a config at its place in the proxy,
// each certificate on disk as two secrets (none for one not obtained), names that follow the
// content (a changed file, a renewed certificate: a new name; the rest unchanged), a key mode
// of 0400, and a planted link out of archive/ refused. Breakages caught: a file left out or
// put elsewhere, names not by content (no rollout on renewal), a missing certificate's secret
// (a failed deploy), the link check dropped.
#[test]
fn a_swarm_deploy_gives_the_proxies_every_file_and_each_certificate_by_content() {
    let repo = Repo::rendered(
        "renew_schedule: 1 2,14 * * *\nservers:\n- name: edge\n  engine: swarm\n  certificates:\n  \
         - domains: [a.example.com]\n    upstream: http://app:80\n  - domains: [b.example.com]\n    \
         upstream: http://app:80\n",
    );
    let server = repo.path().join("edge");
    // a.example.com is on disk as certbot leaves it (live/ links into archive/); b is not.
    let archive = server.join("certifications/archive/a.example.com");
    let live = server.join("certifications/live/a.example.com");
    fs::create_dir_all(&archive).unwrap();
    fs::create_dir_all(&live).unwrap();
    for file in ["fullchain", "privkey"] {
        fs::write(archive.join(format!("{file}1.pem")), format!("{file} 1\n")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../archive/a.example.com/{file}1.pem"),
            live.join(format!("{file}.pem")),
        )
        .unwrap();
    }
    let stage = repo.tmp().join("stage");
    let stack_files = || {
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir(&stage).unwrap();
        let out = Command::new("bash")
            .args([
                "-c",
                "set -Eeuo pipefail; label=test; . ./lib.sh; stack_files \"$0\"",
            ])
            .arg(&stage)
            .env("server_dir", &server)
            .current_dir(&server)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text, err)
    };
    let (ok, text, err) = stack_files();
    assert!(ok, "{err}");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let nginx = &yaml["services"]["nginx"];
    let targets = |kind: &str| -> Vec<(String, String)> {
        nginx[kind]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|u| {
                let source = u["source"].as_str().unwrap();
                let name = yaml[kind][source]["name"].as_str().unwrap().to_string();
                (u["target"].as_str().unwrap().to_string(), name)
            })
            .collect()
    };
    let configs = targets("configs");
    let config_targets: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        config_targets,
        [
            "/etc/nginx/conf.d/00-certgen.conf",
            "/etc/nginx/conf.d/port80.conf",
            "/etc/nginx/certgen/proxy.sh",
            "/etc/nginx/certgen/sites/a.example.com.conf",
            "/etc/nginx/certgen/sites/b.example.com.conf",
        ],
        "{text}"
    );
    let secrets = targets("secrets");
    let secret_targets: Vec<&str> = secrets.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        secret_targets,
        [
            "/etc/letsencrypt/live/a.example.com/fullchain.pem",
            "/etc/letsencrypt/live/a.example.com/privkey.pem",
        ],
        "{text}"
    );
    assert!(text.contains("mode: 0400"), "{text}");
    for (_, name) in configs.iter().chain(&secrets) {
        assert!(
            name.starts_with("certgen-edge-") && name.len() <= 64,
            "{name}"
        );
    }
    // Each file is sent from a copy in the stage, at its place in the proxy, the
    // copy that nginx -t checks: a change on disk in between is never deployed unchecked.
    let staged = stage.join("etc/letsencrypt/live/a.example.com/privkey.pem");
    assert!(
        yaml["secrets"]
            .as_mapping()
            .unwrap()
            .values()
            .any(|v| v["file"].as_str() == Some(staged.to_str().unwrap())),
        "{text}"
    );
    assert_eq!(fs::read_to_string(&staged).unwrap(), "privkey 1\n");
    assert!(stage.join("etc/nginx/conf.d/00-certgen.conf").exists());
    assert!(stage.join("etc/nginx/certgen/proxy.sh").exists());

    // A renewal (a new archive file) and a changed custom file: only their names change.
    fs::write(archive.join("privkey2.pem"), "privkey 2\n").unwrap();
    fs::remove_file(live.join("privkey.pem")).unwrap();
    std::os::unix::fs::symlink(
        "../../archive/a.example.com/privkey2.pem",
        live.join("privkey.pem"),
    )
    .unwrap();
    fs::write(
        server.join("nginx-ssl/nginx/custom/http/mine.conf"),
        "# mine\n",
    )
    .unwrap();
    let (ok, text, err) = stack_files();
    assert!(ok, "{err}");
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("name: certgen-edge-"))
        .filter(|l| {
            let name = l.split("name: ").nth(1).unwrap().split(',').next().unwrap();
            !configs.iter().chain(&secrets).any(|(_, n)| n == name)
        })
        .collect();
    assert_eq!(changed.len(), 2, "a new key and a new custom file:\n{text}");
    assert!(
        text.contains("target: '/etc/nginx/certgen/custom/http/mine.conf'"),
        "{text}"
    );

    // Archive/a.example.com itself made a link (to a folder of the host), the live/
    // files leading into it: refused, though their paths still start with archive/'s.
    let elsewhere = repo.tmp().join("host-folder");
    fs::create_dir(&elsewhere).unwrap();
    for file in ["fullchain1.pem", "privkey2.pem"] {
        fs::write(elsewhere.join(file), "a host file\n").unwrap();
    }
    let real_archive = repo.tmp().join("real-archive");
    fs::rename(&archive, &real_archive).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &archive).unwrap();
    let (ok, _, err) = stack_files();
    assert!(!ok, "a linked archive folder was accepted");
    assert!(
        err.contains("archive/a.example.com is not a folder"),
        "{err}"
    );
    fs::remove_file(&archive).unwrap();
    fs::rename(&real_archive, &archive).unwrap();

    // A link planted at live/ that leads out of archive/: nothing is given to the proxies.
    fs::remove_file(live.join("privkey.pem")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", live.join("privkey.pem")).unwrap();
    let (ok, _, err) = stack_files();
    assert!(!ok, "a planted link was accepted");
    assert!(
        err.contains(
            "privkey.pem leads to /etc/passwd, outside certifications/archive/a.example.com/"
        ),
        "{err}"
    );
}

/// A stand-in for `docker` on a swarm manager: two proxy nodes (`manager`, `worker`), the
/// proxies' rollout in the state FAKE_DIR/state (updating, paused, ...), the worker Ready or Down
/// (FAKE_WORKER), its task running or not (FAKE_WORKER_TASK); the manager's proxy runs the
/// previous secrets until `docker service update --force` rolls it over. Every call is logged as
/// FAKE_DOCKER logs it.
const FAKE_SWARM_DOCKER: &str = r#"#!/usr/bin/env bash
set -u
printf '%s\x1f' "$@" >>"$FAKE_DIR/calls"
printf '\n' >>"$FAKE_DIR/calls"
state=$(cat "$FAKE_DIR/state" 2>/dev/null || echo "${FAKE_STATE:-updating}")
case " $* " in
  *" service inspect --format "*) echo "$state 100" ;;
  *" node ls "*) printf 'm1 manager Ready\nw1 worker %s\n' "${FAKE_WORKER:-Ready}" ;;
  *" service ps "*"node=m1"*) echo taskm ;;
  *" service ps "*"node=w1"*) echo taskw ;;
  *" inspect --type task --format {{.Status.State}} taskm "*) echo running ;;
  *" inspect --type task --format {{.Status.State}} taskw "*) echo "${FAKE_WORKER_TASK:-running}" ;;
  *" inspect --type task "*" taskm "*)
    if [ -e "$FAKE_DIR/forced" ] || [ "${FAKE_MANAGER:-}" = current ]; then echo 's-new c-1 '; else echo 's-old c-1 '; fi ;;
  *" inspect --type task "*" taskw "*) echo 's-new c-1 ' ;;
  *" inspect --type service "*) echo 's-new c-1 ' ;;
  *" service update --detach --force "*) touch "$FAKE_DIR/forced"; echo updating >"$FAKE_DIR/state" ;;
  *" service rollback --detach "*) echo rollback_completed >"$FAKE_DIR/state" ;;
esac
exit 0
"#;

/// A swarm tree whose `docker` is [`FAKE_SWARM_DOCKER`]; runs lib.sh's wait_for_rollout (for a
/// rollout started at 0) and report_nodes as deploy_stack and its callers do.
fn swarm_rollout(env: &[(&str, &str)]) -> Option<Run> {
    let h = Harness::new(
        "renew_schedule: \"1 2,14 * * *\"\nservers:\n- name: edge\n  engine: swarm\n  \
         certificates:\n  - domains: [a.example.com]\n    upstream: http://app:80\n",
    )?;
    fs::write(h.repo.tmp().join("bin/docker"), FAKE_SWARM_DOCKER).unwrap();
    let script = format!(
        "set -Eeuo pipefail; label=test; server_dir={}; . \"$server_dir/lib.sh\"; \
         wait_for_rollout 0; report_nodes || echo NOT-EVERY-NODE",
        h.server().display()
    );
    Some(h.run_program(Path::new("/bin/bash"), &["-c", &script], env))
}

// Catches: a rollout that Swarm holds for a node that went down (worker first) leaving
// the manager on the old certificates until the worker is back (12.8 minutes in one run), the
// lock held all that time: the rollout is started again without the node that is down.
#[test]
fn a_rollout_waiting_for_a_node_that_is_down_goes_on_without_it() {
    let Some(run) = swarm_rollout(&[("FAKE_WORKER", "Down"), ("FAKE_STATE", "updating")]) else {
        return;
    };
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        run.has(&["service", "update", "--detach", "--force"]),
        "{:?}",
        run.calls
    );
    assert!(
        !run.has(&["service", "rollback"]),
        "a node down rolled the others back"
    );
    let log = run.log();
    assert!(
        log.contains("rolling out again to the nodes that are up")
            && log.contains("proxy node manager runs the current certificates")
            && log.contains("proxy node worker is down")
            && log.contains("NOT-EVERY-NODE"),
        "{log}"
    );
}

// Catches: Swarm's failure_action rolling every node back when a node that went down
// comes back; while a proxy that fails on a node that is up (a broken image) is still rolled
// back, as rollback is for.
#[test]
fn only_a_proxy_failing_on_a_node_that_is_up_rolls_the_nodes_back() {
    // Paused for the worker, which is down; the manager runs the new proxy: done for now.
    let Some(run) = swarm_rollout(&[
        ("FAKE_WORKER", "Down"),
        ("FAKE_STATE", "paused"),
        ("FAKE_MANAGER", "current"),
    ]) else {
        return;
    };
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!run.has(&["service", "rollback"]) && !run.has(&["service", "update"]));
    assert!(
        run.log().contains("proxy node worker is down"),
        "{}",
        run.log()
    );
    // Paused because the worker, which is up, cannot start its new proxy: every node back.
    let run = swarm_rollout(&[
        ("FAKE_STATE", "paused"),
        ("FAKE_MANAGER", "current"),
        ("FAKE_WORKER_TASK", "rejected"),
    ])
    .unwrap();
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(
        run.has(&["service", "rollback", "--detach"]),
        "{:?}",
        run.calls
    );
    assert!(
        run.log().contains("so Swarm rolled every node back"),
        "{}",
        run.log()
    );
}
