//! Issue 14: the generated scripts' behaviour, without Docker. Each test renders a tree, then
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

use assert_fs::TempDir;
use proptest::prelude::*;

use crate::helpers::certgen;

/// The stand-in for `docker`. Every call is one line of FAKE_LOG, its arguments separated by
/// the unit separator. certbot's outcomes, one per `docker compose run ... certbot` call, come
/// from FAKE_CERTBOT: `keep`, `order`, `fail`, `order-fail`.
const FAKE_DOCKER: &str = r#"#!/usr/bin/env bash
set -u
printf '%s\x1f' "$@" >>"$FAKE_DIR/calls"
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
  *" run --rm --no-deps -T --name "*" certbot "*)
    # A marker left by an earlier run would answer this one's pre-hook before port 80 opens.
    [ ! -e "$store/.certgen/port80-answer" ] || echo STALE-ANSWER >>"$FAKE_DIR/calls"
    n=$(cat "$FAKE_DIR/certbot-calls" 2>/dev/null || echo 0)
    echo $((n + 1)) >"$FAKE_DIR/certbot-calls"
    read -r -a outcomes <<<"${FAKE_CERTBOT:-keep}"
    outcome=${outcomes[$n]:-keep}
    case $outcome in
      order | order-fail)
        touch "$store/.certgen/port80-wanted"
        for _ in $(seq 100); do
          [ -e "$store/.certgen/port80-answer" ] && break
          sleep 0.1
        done
        [ -e "$store/.certgen/port80-answer" ] || exit 1
        [ "$outcome" = order ] || exit 1
        touch "$store/.certgen/reload-proxy"
        ;;
      fail) exit 1 ;;
    esac
    exit 0
    ;;
esac
exit 0
"#;

/// A rendered tree with the stand-in `docker`.
struct Harness {
    tmp: TempDir,
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

    /// The arguments certbot received, one vector per `docker compose run ... certbot` call.
    fn certbot(&self) -> Vec<Vec<String>> {
        self.calls
            .iter()
            .filter(|c| c.get(1).map(String::as_str) == Some("run"))
            .filter_map(|c| {
                let at = c.iter().position(|a| a == "certbot")?;
                Some(c[at + 1..].to_vec())
            })
            .collect()
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
        let tmp = TempDir::new().unwrap();
        let infra = tmp.path().join("infra");
        fs::create_dir_all(&infra).unwrap();
        fs::write(infra.join("certgen.yaml"), yaml).unwrap();
        certgen()
            .args(["render", "--config"])
            .args([infra.join("certgen.yaml")])
            .succeeds();
        let bin = tmp.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("docker"), FAKE_DOCKER).unwrap();
        crate::helpers::run("chmod", &["0755", bin.join("docker").to_str().unwrap()]);
        Some(Harness { tmp })
    }

    fn server(&self) -> PathBuf {
        self.tmp.path().join("infra/edge")
    }

    fn markers(&self) -> PathBuf {
        self.server().join("certifications/.certgen")
    }

    fn fake(&self) -> PathBuf {
        self.tmp.path().join("fake")
    }

    /// Runs `script` (relative to the server folder) with `args`, the stand-in set by `env`.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
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
            .arg(self.server().join(script))
            .args(args)
            .env("FAKE_BIN", self.tmp.path().join("bin"))
            .env("FAKE_DIR", &fake)
            .env("FAKE_PYTHON", python())
            .current_dir(self.tmp.path())
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
        "--webroot",
        "--webroot-path",
        "/var/www/certbot",
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
    let first = run.position(&["--cert-name", "a.example.com"]).unwrap();
    let open = run
        .position(&["up", "--detach", "--wait", "nginx_for_cert"])
        .unwrap();
    let second = run.position(&["--cert-name", "b.example.com"]).unwrap();
    let reload = run
        .position(&["/etc/nginx/certgen/proxy.sh", "reload"])
        .unwrap();
    assert!(
        pull < cleanup && cleanup < first && removed < first,
        "pull and the cleanup of a killed run come first: {:?}",
        run.calls
    );
    assert!(
        first < open && open < second,
        "port 80 opens when certbot asks"
    );
    let close = run.calls[second..]
        .iter()
        .position(|c| c.contains(&"down".to_string()))
        .map(|i| i + second)
        .expect("port 80 closed");
    assert!(close < reload, "port 80 closes before the reload");
    assert!(run.log().contains("port 80 closed again"), "{}", run.log());
    assert!(
        !h.markers().join("reload-proxy").exists(),
        "the marker is removed after a reload"
    );
    assert!(!run.stale_answer);
}

// Issue 9: a certificate's ACME profile reaches certbot; one without keeps the CA's default.
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
        .contains("nothing to order: port 80 stayed closed"));
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
    let released = h.tmp.path().join("released");
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
        .contains("another run of nginx-for-cert/run.sh or renew/run.sh is under way"));
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
