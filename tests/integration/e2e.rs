//! The generated tree taken through its whole life against real parts on this machine: dockerd,
//! compose v2, nginx and certbot (stand-in images of the pinned versions, built by .ci/setup) and
//! Pebble, the ACME test server Let's Encrypt maintains, with pebble-challtestsrv answering every
//! test name with 127.0.0.1. The generated scripts run unmodified.
//!
//! Runs when `CERTGEN_E2E=1`, as root, after `.ci/setup`. Each stage prints one PASS/FAIL line;
//! the figures at the end are the README's Performance section. Traffic stays on this machine:
//! loopback and the docker bridge.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use certgen::config::{
    Certificate, Challenge, Config, Dns, DnsProvider, HttpMode, ImageOverrides, TlsProfile,
    WarnDays,
};
use certgen::validate::{
    AcmeServer, DomainName, ImageRef, NetworkName, NginxSize, PathPrefix, PemBundle, ProfileName,
    ServerName, Upstream, UpstreamCa,
};

use crate::helpers::{certgen, opted_in, run};

pub(crate) const NGINX_IMAGE: &str = "certgen-standin/nginx:1.30";
/// The stand-in of an older nginx (1.26), under a tag that names no version: certgen renders the
/// pinned series' configuration for it, which it refuses.
const OLD_NGINX_ALIAS: &str = "certgen-standin/nginx:trixie";
pub(crate) const CERTBOT_IMAGE: &str = "certgen-standin/certbot:5.8.0";
/// The DNS-01 pass: a third server, `wild`, whose names BIND holds (zone e2e.test, updated with
/// a TSIG key), ordered from a second Pebble that resolves through that BIND.
pub(crate) const DNS_IMAGE: &str = "certgen-standin/dns-rfc2136:5.8.0";
const WILD: &str = "wild";
const BIND_PORT: u16 = 8054;
const PEBBLE2_PORT: u16 = 14001;
const PEBBLE2_MANAGEMENT: u16 = 15001;
const SERVER: &str = "edge";
/// The certificates: one with several names, one more with a live upstream, and one whose
/// upstream name never resolves (the proxy must start anyway).
const APP: &str = "app.test,www.app.test";
const IMG: &str = "img.test";
const DOWN: &str = "down.test";
/// A site added by a re-render while the proxy runs (stage A).
const NEW_SITE: &str = "new.test";
/// The port the stand-in app listens on, on the docker bridge address; the API (a route of
/// app.test) listens on the next one.
const APP_PORT: u16 = 18081;
const API_PORT: u16 = 18082;
/// An app that speaks TLS, with a certificate of the suite's own CA (a private CA).
const TLS_PORT: u16 = 18083;
/// The lifetime of Pebble's `shortlived` profile, in seconds: six days, as Let's Encrypt's.
const SHORTLIVED: u64 = 518_400;

/// Pebble 2.10, with ACME profiles, as .ci/setup unpacks it from Debian sid.
pub(crate) fn pebble_with_profiles() -> PathBuf {
    let setup = std::env::var("CERTGEN_SETUP_DIR").unwrap_or_else(|_| "/var/tmp/certgen-ci".into());
    let pebble = Path::new(&setup).join("pebble-sid/usr/bin/pebble");
    assert!(
        pebble.exists(),
        "{} is missing: run .ci/setup",
        pebble.display()
    );
    pebble
}
/// A monitor (healthchecks.io's convention) that records the pings it gets, on the Docker bridge's
/// address: the ping runs on Docker's default network, not the host's.
const MONITOR_PORT: u16 = 18090;
const MONITOR_SCRIPT: &str = r#"
import http.server, json, sys
class Monitor(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(sys.argv[2], "a") as log:
            log.write(json.dumps({"path": self.path, "body": body.decode(errors="replace")}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[3], int(sys.argv[1])), Monitor).serve_forever()
"#;
/// The monitor's ping URL, as the operator writes it into edge/secrets/notify-url.
fn monitor_url(bridge: &str) -> String {
    format!("http://{bridge}:{MONITOR_PORT}/ping/edge")
}

/// The second server of the suite's config: the proxy holds port 80 (`http: redirect`).
const FRONT: &str = "front";
/// An app reached by container name on a Docker network the proxy joins (`networks`).
const APPS_NETWORK: &str = "certgen-e2e-apps";
const BOX: &str = "certgen-e2e-box";

/// The stand-in app: GET answers "hello from NAME" (and the request's headers at /headers),
/// POST reads the whole body and says how many bytes arrived.
pub(crate) const APP_SCRIPT: &str = r#"
import http.server, json, sys
port, bind, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/headers":
            self.answer(json.dumps({k.lower(): v for k, v in self.headers.items()}))
        else:
            self.answer(f"hello from {name}\n")
    def do_POST(self):
        left, got = int(self.headers.get("Content-Length", "0")), 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            got, left = got + len(chunk), left - len(chunk)
        self.answer(f"{name} received {got} bytes\n")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((bind, port), App)
if len(sys.argv) > 5:
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

#[test]
#[ignore = "the end-to-end suite (dockerd, compose, Pebble; as root, after .ci/setup): CERTGEN_E2E=1 cargo test -- --include-ignored"]
fn a_generated_tree_works_end_to_end() {
    if !opted_in(
        "CERTGEN_E2E",
        "the end-to-end suite (dockerd, compose, nginx, certbot, Pebble)",
    ) {
        return;
    }
    let _one_at_a_time = crate::helpers::end_to_end_lock();
    let mut world = World::start();
    let mut stages = Stages::default();

    stages.run(
        "1 nginx-for-cert/run.sh obtains every certificate it can (one name's DNS fails), names the other; port 80 closed after",
        || world.issue(),
    );
    stages.run(
        "2 the proxy starts without that certificate and serves every other name; an unknown name gets no handshake",
        || world.proxy(),
    );
    stages.run(
        "2b the missing certificate, obtained later, is served after the script's reload, with no restart",
        || world.late_certificate(),
    );
    stages.run(
        "2c HSTS on every HTTPS answer, an error page too; a Host unlike the TLS name gets 421",
        || world.hsts(),
    );
    stages.run(
        "2d a 20 MB upload reaches the app; over max_body_size gets 413; /api/ goes to its route; a container on a joined network answers",
        || world.site_options(),
    );
    stages.run(
        "2e a file in custom/<certificate>/ takes effect after the README's reload, survives render; check stays green",
        || world.custom_file(),
    );
    stages.run(
        "2f forged X-Forwarded-For, X-Real-IP, Forwarded, X-Forwarded-Port/-Prefix and Upgrade: h2c: the app sees the real address, none of the rest; WebSocket still upgrades",
        || world.forged_headers(),
    );
    stages.run(
        "2g an https:// upstream is verified: served with its upstream_ca, 502 against the system CAs",
        || world.verified_upstreams(),
    );
    stages.run(
        "2h status.sh on a healthy tree: exit 0, each certificate's days left, served by the proxy; --json carries the same",
        || world.status_healthy(),
    );
    stages.run(
        "2i status.sh exits 1 naming what is wrong: a certificate within warn_days, a missing one, the proxy down",
        || world.status_problems(),
    );
    stages.run(
        "3 git add -A stages no key, certificate, account or renewal file, nothing of secrets/",
        || world.git(),
    );
    stages.run(
        "4 running nginx-for-cert/run.sh again orders no new certificate and leaves port 80 closed",
        || world.reissue(),
    );
    stages.run(
        "4b after a switch of ACME server (staging to production), each certificate is ordered once",
        || world.acme_server_switch(),
    );
    stages.run(
        "5 renewal when due under HTTPS load: new serial, no failed request, port 80 closed",
        || world.renew_under_load(),
    );
    stages.run(
        "6 renewal when nothing is due: exit 0, nothing renewed, no reload, port 80 never opened",
        || world.renew_nothing_due(),
    );
    stages.run(
        "7 two renew/run.sh at once: one waits, no corruption, the proxy serves",
        || world.renew_twice_at_once(),
    );
    stages.run(
        "7b SIGTERM while issuance orders a certificate takes port 80 down; the next run completes",
        || world.interrupted_issuance(),
    );
    stages.run(
        "7b2 SIGKILL while issuance orders a certificate: the next run cleans up what it left and completes",
        || world.killed_issuance(),
    );
    stages.run(
        "7b3 two nginx-for-cert/run.sh at once: the first orders the missing certificate, the second waits and orders nothing",
        || world.issuance_twice_at_once(),
    );
    stages.run(
        "7c Ctrl-C (SIGINT to the process group) during a renewal takes port 80 down",
        || {
            world.make_due(true);
            let result = world.interrupt("renew/run.sh", "INT", true);
            world.make_due(false);
            result
        },
    );
    stages.run(
        "7d port 80 taken: nothing to order is fine; an order stops clearly; the other server undisturbed",
        || world.port80_taken(),
    );
    stages.run(
        "7e a custom file that fails nginx -t: the reload refuses it, renew/run.sh says so and exits 1, the proxy keeps serving; fixed, the next run reloads",
        || world.broken_custom_file(),
    );
    stages.run(
        "7f links planted by the certbot container (at certifications/logs, at each marker) stop the next run, naming the path; nothing outside the tree is touched",
        || world.planted_links(),
    );
    stages.run(
        "7g a certificate removed from certgen.yaml: render names it, renewal skips it and succeeds, --delete removes it; added back, it is obtained again",
        || world.removed_certificate(),
    );
    stages.run(
        "A after a re-render (an upstream changed, a site added), the README's ./apply.sh under HTTPS load: a reload, no failed request; the new site's certificate named, then obtained and served",
        || world.apply_after_render(),
    );
    stages.run(
        "A2 an nginx image that refuses the configuration (an older series, under a tag that names no version): ./apply.sh runs nginx -t in it first and exits 1 naming the directive, under HTTPS load the running proxy keeps serving, never restarted; rendered back, ./apply.sh succeeds",
        || world.older_nginx_image(),
    );
    stages.run(
        "R1 http: redirect, first issuance: the temporary nginx holds port 80 while the proxy has never run; profile: shortlived gives a 6-day certificate, with the IP address 127.0.0.1 on it",
        || world.redirect_first_issuance(),
    );
    stages.run(
        "R2 http: redirect, the proxy: http://NAME/path?q redirects to https://NAME/path?q without HSTS; unknown names get nothing; https://127.0.0.1/ verified (no SNI: the default site); tls: modern refuses TLS 1.2",
        || world.redirect_proxy(),
    );
    stages.run(
        "R3 http: redirect, renewal when due through the proxy's port 80 under HTTPS and HTTP load: new serial, no failed request, nothing else on port 80",
        || world.redirect_renewal(),
    );
    stages.run(
        "R4 http: redirect, a certificate added and rendered while the proxy runs: a restart keeps the proxy up; run.sh obtains it and it is served",
        || world.redirect_new_certificate(),
    );
    stages.run(
        "8 ACME server down: renew fails clearly, old certificate kept, port 80 closed",
        || world.renew_with_acme_down(),
    );
    stages.run(
        "N the monitor got a success ping after a good renewal and a /fail ping with the log after a failed one; with the monitor down, renewal ends as it would, within seconds",
        || world.pings(),
    );
    stages.run(
        "9 one upstream down: the proxy (re)starts and serves the other sites",
        || world.upstream_down(),
    );
    stages.run(
        "10 renew/run.sh --install-cron, twice: one line with this tree's path, other entries kept; a second tree with a server of the same name keeps its own line; that line, run as cron runs it, renews; a full renew.log is rotated",
        || world.install_cron(),
    );
    stages.run(
        "11 the tree moved (a clone elsewhere): ./apply.sh there recreates the proxy on the new paths, --install-cron replaces the old line, no generated file names the old path",
        || world.moved_tree(),
    );
    stages.run(
        "12 issuance that fails (ACME server down) names the certificate, exits 1, closes port 80",
        || world.issuance_fails(),
    );
    stages.run(
        "D1 DNS-01 (BIND, TSIG, a second Pebble resolving through it): the credentials file missing, then mode 644, stops the script naming it; nothing is ordered",
        || world.dns_credentials_checked(),
    );
    stages.run(
        "D2 DNS-01: e2e.test and *.e2e.test issued with something else holding port 80 the whole time, served for e2e.test and anything.e2e.test; BIND holds no TXT record after",
        || world.dns_issuance(),
    );
    stages.run(
        "D3 DNS-01 renewal when due under HTTPS load: new serial, no failed request, port 80 still someone else's, no TXT record left",
        || world.dns_renewal(),
    );
    stages.run(
        "D4 a server mixing DNS-01 and HTTP-01: the HTTP-01 certificate is obtained over port 80, the DNS-01 one kept; both served",
        || world.dns_mixed(),
    );
    stages.run(
        "D5 a compromised certbot image plants a link at live/ mid-run: the DNS plugin's container of the same run never starts, the script names the link (exit 1); the proxy, restarted meanwhile, sees nothing of the host through it; restored, all is served",
        || world.planted_link_mid_run(),
    );
    world.figures.print();
    stages.finish();
}

/// The PASS/FAIL lines, printed as they happen (past the test harness's capture).
#[derive(Default)]
pub(crate) struct Stages {
    failed: Vec<String>,
}

impl Stages {
    pub(crate) fn run(&mut self, name: &str, stage: impl FnOnce() -> Result<(), String>) {
        let start = Instant::now();
        let result = stage();
        let secs = start.elapsed().as_secs_f64();
        let line = match &result {
            Ok(()) => format!("e2e: PASS stage {name} ({secs:.1} s)"),
            Err(why) => format!("e2e: FAIL stage {name} ({secs:.1} s): {why}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Err(why) = result {
            self.failed.push(format!("stage {name}: {why}"));
        }
    }

    #[track_caller]
    pub(crate) fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "end-to-end stages failed:\n{}",
            self.failed.join("\n")
        );
    }
}

#[derive(Default)]
struct Figures {
    first_certificate: Option<f64>,
    port80_issuance: Option<f64>,
    port80_renewal: Option<f64>,
    requests_sent: u32,
    requests_failed: u32,
    requests_retried: u32,
    redirect_port80_issuance: Option<f64>,
    redirect_challenge_renewal: Option<f64>,
    redirect_requests_sent: u32,
    redirect_requests_failed: u32,
    redirect_requests_retried: u32,
}

impl Figures {
    fn print(&self) {
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let mut err = std::io::stderr();
        let _ = writeln!(err, "e2e figures:");
        let _ = writeln!(
            err,
            "  seconds to the first certificate:        {}",
            show(self.first_certificate)
        );
        let _ = writeln!(
            err,
            "  seconds port 80 was open, issuance:      {}",
            show(self.port80_issuance)
        );
        let _ = writeln!(
            err,
            "  seconds port 80 was open, renewal:       {}",
            show(self.port80_renewal)
        );
        let _ = writeln!(
            err,
            "  HTTPS requests during renewal:           {} sent, {} failed",
            self.requests_sent, self.requests_failed
        );
        let _ = writeln!(
            err,
            "  HTTP/2 requests refused unprocessed by an old worker's GOAWAY, then retried: {}",
            self.requests_retried
        );
        let _ = writeln!(err, "  http: redirect");
        let _ = writeln!(
            err,
            "  seconds port 80 was open, first issuance (temporary nginx): {}",
            show(self.redirect_port80_issuance)
        );
        let _ = writeln!(
            err,
            "  seconds the proxy's port 80 served the renewal's challenge: {}",
            show(self.redirect_challenge_renewal)
        );
        let _ = writeln!(
            err,
            "  HTTPS and HTTP requests during renewal:  {} sent, {} failed, {} HTTP/2 retried",
            self.redirect_requests_sent,
            self.redirect_requests_failed,
            self.redirect_requests_retried
        );
    }
}

/// HTTPS requests to the proxy in a loop, alternating HTTP/1.1 and HTTP/2, each on a new
/// connection (a new TLS handshake), verified against Pebble's root. Bounded: at most 20,000
/// requests or 3 minutes, to this machine only.
///
/// During a reload, an old nginx worker answers an HTTP/2 connection it accepted just before it
/// stopped listening with GOAWAY (NO_ERROR, last stream 0): the request was not processed, and
/// RFC 9113 6.8 lets the client retry it, as browsers do. curl does not, so the loop retries
/// exactly that case once and counts it apart. Anything else is a failure.
struct Load {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<LoadResult>,
}

struct LoadResult {
    sent: u32,
    retried: u32,
    failures: Vec<String>,
}

impl LoadResult {
    /// Ok when requests were sent and none failed.
    fn none_failed(&self) -> Result<(), String> {
        if self.failures.is_empty() && self.sent > 0 {
            return Ok(());
        }
        Err(format!(
            "{} of {} requests failed:\n{}",
            self.failures.len(),
            self.sent,
            self.failures.join("\n")
        ))
    }
}

enum Answer {
    Ok,
    RefusedUnprocessed,
    Failed(String),
}

/// One kind of request in the load: HTTPS over HTTP/1.1 or HTTP/2, or plain HTTP on port 80,
/// which must answer with the redirect to HTTPS.
#[derive(Clone, Copy)]
enum Kind {
    Http1,
    Http2,
    Plain,
}

impl Load {
    fn start(root: PathBuf, name: &'static str, kinds: &'static [Kind]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut result = LoadResult {
                sent: 0,
                retried: 0,
                failures: Vec::new(),
            };
            while !flag.load(Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(180)
                && result.sent < 20_000
            {
                let kind = kinds[result.sent as usize % kinds.len()];
                result.sent += 1;
                let mut answer = Self::request(&root, name, kind);
                if matches!(answer, Answer::RefusedUnprocessed) {
                    result.retried += 1;
                    answer = Self::request(&root, name, kind);
                }
                match answer {
                    Answer::Ok => {}
                    Answer::RefusedUnprocessed => result.failures.push("refused twice".into()),
                    Answer::Failed(why) => result.failures.push(format!(
                        "at {:.2} s: {why}",
                        started.elapsed().as_secs_f64()
                    )),
                }
            }
            result
        });
        Load { stop, thread }
    }

    fn request(root: &Path, name: &str, kind: Kind) -> Answer {
        let mut cmd = Command::new("curl");
        cmd.args(["-sSv", "--max-time", "5"]);
        let expected = match kind {
            Kind::Plain => {
                cmd.args(["--resolve", &format!("{name}:80:127.0.0.1")])
                    .arg(format!("http://{name}/load?n=1"));
                format!("301 https://{name}/load?n=1")
            }
            Kind::Http1 | Kind::Http2 => {
                cmd.args(["--cacert", root.to_str().unwrap()])
                    .arg(if matches!(kind, Kind::Http2) {
                        "--http2"
                    } else {
                        "--http1.1"
                    })
                    .args(["--resolve", &format!("{name}:443:127.0.0.1")])
                    .arg(format!("https://{name}/"));
                "200 ".to_string()
            }
        };
        let out = cmd
            .args(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"])
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && code == expected {
            return Answer::Ok;
        }
        let verbose = String::from_utf8_lossy(&out.stderr);
        if matches!(kind, Kind::Http2) && verbose.contains("GOAWAY, error=0, last_stream=0") {
            return Answer::RefusedUnprocessed;
        }
        let last = verbose
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ");
        Answer::Failed(format!(
            "exit {:?}, got {code:?}, {last}",
            out.status.code()
        ))
    }

    fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Everything the suite starts, stopped again when it is dropped.
struct World {
    scratch: tempfile::TempDir,
    out: PathBuf,
    /// Pebble, apart: stage 8 stops it.
    pebble: Spawned,
    /// pebble-challtestsrv, the app and the api.
    helpers: Spawned,
    /// The monitor that notify_url pings; a stage stops it.
    monitor: Spawned,
    /// Pebble's root CA, which every issued certificate chains to.
    root: PathBuf,
    /// The DNS-01 pass: BIND, the second Pebble, and what holds port 80 meanwhile.
    dns_helpers: Spawned,
    /// The second Pebble's root.
    root2: PathBuf,
    figures: Figures,
}

impl World {
    fn start() -> World {
        let out = run("docker", &["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            out.status.success(),
            "dockerd is not running: run .ci/setup first"
        );
        for image in [NGINX_IMAGE, OLD_NGINX_ALIAS, CERTBOT_IMAGE, DNS_IMAGE] {
            assert!(
                run("docker", &["image", "inspect", image]).status.success(),
                "{image} is missing: run .ci/setup"
            );
        }
        for port in [
            80,
            443,
            14000,
            15000,
            8053,
            8055,
            APP_PORT,
            API_PORT,
            TLS_PORT,
            MONITOR_PORT,
            BIND_PORT,
            PEBBLE2_PORT,
            PEBBLE2_MANAGEMENT,
        ] {
            assert!(
                !listening(port),
                "port {port} is in use; the suite needs it (a Pebble or proxy left running?)"
            );
        }
        let bridge = docker_bridge_address();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();

        // Pebble's own TLS certificate must cover the address certbot connects to.
        let ca = dir.join("pebble-ca.pem");
        pebble_certificate(dir, &format!("DNS:localhost,IP:127.0.0.1,IP:{bridge}"));
        // Two profiles, as Let's Encrypt offers them: the default (90 days) and shortlived (6).
        let config = format!(
            r#"{{"pebble":{{"listenAddress":"0.0.0.0:14000","managementListenAddress":"0.0.0.0:15000",
            "certificate":"{d}/pebble.pem","privateKey":"{d}/pebble.key","httpPort":80,"tlsPort":5001,
            "ocspResponderURL":"","externalAccountBindingRequired":false,
            "profiles":{{"default":{{"description":"90 days","validityPeriod":7776000}},
            "shortlived":{{"description":"6 days","validityPeriod":{SHORTLIVED}}}}}}}}}"#,
            d = dir.display()
        );
        fs::write(dir.join("pebble.json"), config).unwrap();

        let mut helpers = Spawned(Vec::new());
        let mut pebble = Spawned(Vec::new());
        let mut monitor = Spawned(Vec::new());
        helpers.0.push(spawn(
            Command::new("pebble-challtestsrv").args([
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-dns01",
                "127.0.0.1:8053",
                "-management",
                "127.0.0.1:8055",
                "-defaultIPv4",
                "127.0.0.1",
            ]),
            &dir.join("challtestsrv.log"),
        ));
        pebble.0.push(spawn(
            Command::new(pebble_with_profiles())
                .args([
                    "-config",
                    dir.join("pebble.json").to_str().unwrap(),
                    "-dnsserver",
                    "127.0.0.1:8053",
                ])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0"),
            &dir.join("pebble.log"),
        ));
        let site = dir.join("site");
        fs::create_dir_all(&site).unwrap();
        fs::write(site.join("index.html"), "hello from the app\n").unwrap();
        let app_script = dir.join("app.py");
        fs::write(&app_script, APP_SCRIPT).unwrap();
        let spawn_app = |port: u16, name: &str| {
            spawn(
                Command::new("python3")
                    .arg(&app_script)
                    .args([&port.to_string(), &bridge, name]),
                &dir.join(format!("{name}.log")),
            )
        };
        helpers.0.push(spawn_app(APP_PORT, "the app"));
        helpers.0.push(spawn_app(API_PORT, "the api"));
        // The TLS app's certificate names the Docker host, as the proxy reaches it.
        sh(&format!(
            "cd {d} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
             -subj /CN=host.docker.internal -keyout tls-app.key -out tls-app.csr 2>/dev/null && \
             printf 'subjectAltName=DNS:host.docker.internal\\n' > tls-san.cnf && \
             openssl x509 -req -in tls-app.csr -CA pebble-ca.pem -CAkey ca.key -CAcreateserial \
             -days 2 -extfile tls-san.cnf -out tls-app.pem 2>/dev/null",
            d = dir.display()
        ));
        helpers.0.push(spawn(
            Command::new("python3").arg(&app_script).args([
                &TLS_PORT.to_string(),
                &bridge,
                "the tls app",
                dir.join("tls-app.pem").to_str().unwrap(),
                dir.join("tls-app.key").to_str().unwrap(),
            ]),
            &dir.join("tls-app.log"),
        ));
        // An app container the proxy reaches by name only through the network it joins.
        let _ = run("docker", &["rm", "-f", BOX]);
        let _ = run("docker", &["network", "rm", APPS_NETWORK]);
        sh(&format!("docker network create {APPS_NETWORK} >/dev/null"));
        let box_conf = "server { listen 8080; location / { return 200 \"hello from the container app\\n\"; } }";
        let started = run(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                BOX,
                "--network",
                APPS_NETWORK,
                NGINX_IMAGE,
                "sh",
                "-c",
                &format!(
                    "echo '{box_conf}' > /etc/nginx/conf.d/box.conf && exec nginx -g 'daemon off;'"
                ),
            ],
        );
        assert!(started.status.success(), "{}", output_text(&started));
        wait_for("Pebble on :14000 and :15000", || {
            listening(14000) && listening(15000)
        });
        fs::write(dir.join("monitor.py"), MONITOR_SCRIPT).unwrap();
        monitor.0.push(spawn(
            Command::new("python3").arg(dir.join("monitor.py")).args([
                &MONITOR_PORT.to_string(),
                dir.join("pings.jsonl").to_str().unwrap(),
                &bridge,
            ]),
            &dir.join("monitor.log"),
        ));
        wait_for("the monitor", || listening_on(&bridge, MONITOR_PORT));
        wait_for("the app and the api", || {
            [APP_PORT, API_PORT, TLS_PORT]
                .iter()
                .all(|port| listening_on(&bridge, *port))
        });

        // The root changes at every Pebble start: fetch it from the management port.
        let root = dir.join("pebble-root.pem");
        sh(&format!(
            "curl -sSf --cacert {} https://127.0.0.1:15000/roots/0 -o {}",
            ca.display(),
            root.display()
        ));

        let out = dir.join("infra");
        let app_upstream = format!("http://host.docker.internal:{APP_PORT}");
        let acme = format!("https://{bridge}:14000/dir");
        certgen()
            .args([
                "init",
                "--server",
                SERVER,
                "--email",
                "ops@example.com",
                "--out",
                out.to_str().unwrap(),
            ])
            .args([
                "--domain",
                APP,
                "--domain",
                IMG,
                "--upstream",
                &app_upstream,
            ])
            .args([
                "--acme-server",
                &acme,
                "--acme-ca-bundle",
                ca.to_str().unwrap(),
            ])
            .args([
                "--nginx-image",
                NGINX_IMAGE,
                "--certbot-image",
                CERTBOT_IMAGE,
            ])
            .succeeds();
        // The user edits certgen.yaml, then renders: a third certificate whose upstream never
        // resolves; app.test routes /api/ to the api; img.test forwards to the container on the
        // apps' network and takes bodies up to 1 MB; and a second server, `front`, whose proxy
        // holds port 80 (http: redirect).
        let config = out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let edge = &mut cfg.servers[0];
        edge.networks = vec![NetworkName::parse(APPS_NETWORK).unwrap()];
        // The monitor's URL goes on the server, in secrets/, never in certgen.yaml.
        edge.notify = Some(true);
        let secrets = out.join(SERVER).join("secrets");
        fs::create_dir_all(&secrets).unwrap();
        fs::write(
            secrets.join("notify-url"),
            format!("{}\n", monitor_url(&bridge)),
        )
        .unwrap();
        sh(&format!(
            "chmod 700 {0} && chmod 600 {0}/notify-url",
            secrets.display()
        ));
        edge.certificates[0].routes.insert(
            PathPrefix::parse("/api/").unwrap(),
            Upstream::parse(&format!("http://host.docker.internal:{API_PORT}")).unwrap(),
        );
        // app.test trusts the suite's CA for its https:// route; img.test's goes to the same
        // app with the system's CAs, which do not know it.
        let tls_app = Upstream::parse(&format!("https://host.docker.internal:{TLS_PORT}")).unwrap();
        edge.certificates[0]
            .routes
            .insert(PathPrefix::parse("/secure/").unwrap(), tls_app.clone());
        edge.certificates[0].upstream_ca =
            Some(UpstreamCa::parse(&fs::read_to_string(&ca).unwrap()).unwrap());
        edge.certificates[1]
            .routes
            .insert(PathPrefix::parse("/unverified/").unwrap(), tls_app);
        edge.certificates[1].upstream = Upstream::parse(&format!("http://{BOX}:8080")).unwrap();
        edge.certificates[1].max_body_size = NginxSize::parse("1m").unwrap();
        edge.certificates.push(Certificate::new(
            vec![DomainName::parse(DOWN).unwrap()],
            Upstream::parse("http://no-such-app:9000").unwrap(),
        ));
        let mut front = edge.clone();
        front.name = ServerName::parse(FRONT).unwrap();
        front.http = Some(HttpMode::Redirect);
        front.tls = Some(TlsProfile::Modern);
        front.notify = None;
        front.networks = Vec::new();
        // An IP address as well (RFC 8738; Let's Encrypt only with shortlived): Pebble validates it
        // on 127.0.0.1:80, and the site becomes the proxy's default for clients that send no SNI.
        let mut short = Certificate::new(
            vec![
                DomainName::parse("r1.test").unwrap(),
                DomainName::parse("127.0.0.1").unwrap(),
            ],
            Upstream::parse(&app_upstream).unwrap(),
        );
        short.profile = Some(ProfileName::parse("shortlived").unwrap());
        front.certificates = vec![short];
        cfg.servers.push(front);
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();

        World {
            root2: scratch.path().join("pebble2-root.pem"),
            scratch,
            out,
            pebble,
            helpers,
            monitor,
            root,
            dns_helpers: Spawned(Vec::new()),
            figures: Figures::default(),
        }
    }

    fn server(&self) -> PathBuf {
        self.out.join(SERVER)
    }

    fn live(&self, cert: &str) -> PathBuf {
        self.server().join("certifications/live").join(cert)
    }

    /// Runs a generated script unmodified, from a folder of its own (as cron would).
    fn script(&self, rel: &str) -> Output {
        self.script_of(SERVER, rel)
    }

    /// Runs a generated script of `server` unmodified, from a folder of its own (as cron would).
    fn script_of(&self, server: &str, rel: &str) -> Output {
        Command::new(self.out.join(server).join(rel))
            .current_dir(self.scratch.path())
            .output()
            .unwrap()
    }

    fn proxy_compose(&self, args: &[&str]) -> Output {
        self.compose_of(SERVER, args)
    }

    /// `docker compose` on the proxy of `server`.
    fn compose_of(&self, server: &str, args: &[&str]) -> Output {
        let file = self.out.join(server).join("nginx-ssl/docker-compose.yml");
        let mut all = vec!["compose", "-f", file.to_str().unwrap()];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    /// Makes every certificate due by the lineage's renewal conf (test data, not a script).
    /// A lineage a stage removed is skipped.
    fn make_due(&self, due: bool) {
        for cert in ["app.test", IMG, DOWN] {
            self.set_due(SERVER, cert, due);
        }
    }

    fn set_due(&self, server: &str, cert: &str, due: bool) {
        set_due(
            &self
                .out
                .join(server)
                .join(format!("certifications/renewal/{cert}.conf")),
            due,
        );
    }

    fn issue(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let watched = self.live("app.test").join("fullchain.pem");
        let first = Arc::new(std::sync::Mutex::new(None));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (first, done) = (first.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if watched.exists() {
                        *first.lock().unwrap() = Some(start.elapsed().as_secs_f64());
                        return;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            })
        };
        // down.test's DNS fails (SERVFAIL), as if its record were not pointed yet.
        challtestsrv("set-servfail", DOWN);
        let out = self.script("nginx-for-cert/run.sh");
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        self.figures.first_certificate = *first.lock().unwrap();
        let log = output_text(&out);
        self.figures.port80_issuance = port80_seconds(&log);
        let names_it = log
            .lines()
            .any(|l| l.contains("could not obtain: ") && l.contains(DOWN));
        if out.status.code() != Some(1) || !names_it {
            return Err(format!(
                "expected exit 1 naming {DOWN}, got {:?}:\n{log}",
                out.status.code()
            ));
        }
        for cert in ["app.test", IMG] {
            if !self.live(cert).join("fullchain.pem").exists() {
                return Err(format!("no certificate for {cert}"));
            }
        }
        if self.live(DOWN).exists() {
            return Err(format!("{DOWN} was obtained although its DNS fails"));
        }
        port80_closed()
    }

    fn proxy(&mut self) -> Result<(), String> {
        let up = self.proxy_compose(&["up", "-d"]);
        succeeded(&up)?;
        wait_until("the proxy answers on :443", || listening(443))?;
        for name in ["app.test", "www.app.test", IMG] {
            wait_until(&format!("{name} over verified TLS"), || {
                self.https(name) == Ok(200)
            })?;
        }
        // The certificate that could not be obtained: its names get no handshake.
        if handshake(DOWN) != Some(35) {
            return Err(format!(
                "{DOWN} has no certificate yet: expected a refused TLS handshake (curl exit 35), got {:?}",
                handshake(DOWN)
            ));
        }
        let logs = output_text(&self.proxy_compose(&["logs", "nginx"]));
        if !logs.contains(&format!("{DOWN}: no certificate yet")) {
            return Err(format!("the proxy does not say why {DOWN} is off:\n{logs}"));
        }
        for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
            let session = sh_out(&format!(
                "echo | openssl s_client -connect 127.0.0.1:443 -servername app.test {flag} -brief -CAfile {} \
                 -verify_return_error -verify_hostname app.test 2>&1",
                self.root.display()
            ));
            if !session.contains(&format!("Protocol version: {version}"))
                || !session.contains("Verification: OK")
            {
                return Err(format!("no verified {version} handshake:\n{session}"));
            }
        }
        if handshake("unknown.test") != Some(35) {
            return Err(format!(
                "unknown.test: expected a refused TLS handshake (curl exit 35), got {:?}",
                handshake("unknown.test")
            ));
        }
        Ok(())
    }

    /// The HTTP status of `https://name/`, verified against Pebble's root with a hostname check.
    fn https(&self, name: &str) -> Result<u16, String> {
        https_status(&self.root, name)
    }

    /// The serial of the certificate the proxy serves for `name`.
    fn served_serial(&self, name: &str) -> String {
        let out = sh_out(&format!(
            "echo | openssl s_client -connect 127.0.0.1:443 -servername {name} 2>/dev/null | openssl x509 -noout -serial"
        ));
        out.trim().to_string()
    }

    fn lineage_files(&self) -> Vec<String> {
        ["app.test", IMG, DOWN]
            .iter()
            .map(|c| {
                fs::read_link(self.live(c).join("cert.pem"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn git(&mut self) -> Result<(), String> {
        let dir = self.out.to_str().unwrap();
        for sub in ["live", "archive", "accounts", "renewal"] {
            if !self.server().join("certifications").join(sub).is_dir() {
                return Err(format!(
                    "certifications/{sub} missing: the check would prove nothing"
                ));
            }
        }
        succeeded(&run("git", &["-C", dir, "init", "-q"]))?;
        succeeded(&run("git", &["-C", dir, "add", "-A"]))?;
        let staged = succeeded(&run("git", &["-C", dir, "diff", "--cached", "--name-only"]))?;
        let bad: Vec<&str> = staged
            .lines()
            .filter(|p| {
                (p.contains("/certifications/") && !p.ends_with("/certifications/.gitkeep"))
                    || p.contains("/secrets/")
            })
            .collect();
        if !bad.is_empty() {
            return Err(format!("git would stage: {bad:?}"));
        }
        // edge/secrets/notify-url is there (the monitor's URL), and must stay out.
        if !self.server().join("secrets/notify-url").exists() {
            return Err("the suite wrote no secrets/notify-url to check".into());
        }
        if !staged.lines().any(|p| p == "edge/certifications/.gitkeep") {
            return Err("certifications/.gitkeep is not staged".into());
        }
        Ok(())
    }

    fn reissue(&mut self) -> Result<(), String> {
        let before = self.lineage_files();
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if self.lineage_files() != before {
            return Err(format!(
                "the certificates changed: {before:?} -> {:?}",
                self.lineage_files()
            ));
        }
        if log.contains("Successfully received certificate") {
            return Err("certbot ordered a certificate".into());
        }
        if log.contains("opening port 80") || !log.contains("port 80 stayed closed") {
            return Err(format!("port 80 was opened with nothing to order:\n{log}"));
        }
        port80_closed()
    }

    fn renew_under_load(&mut self) -> Result<(), String> {
        let before = self.served_serial("app.test");
        self.make_due(true);
        let load = Load::start(self.root.clone(), "app.test", &[Kind::Http1, Kind::Http2]);
        thread::sleep(Duration::from_millis(500));
        let out = self.script("renew/run.sh");
        thread::sleep(Duration::from_millis(500));
        let load = load.stop();
        self.make_due(false);
        self.figures.requests_sent = load.sent;
        self.figures.requests_failed = load.failures.len() as u32;
        self.figures.requests_retried = load.retried;
        let log = succeeded(&out)?;
        self.figures.port80_renewal = port80_seconds(&log);
        if !log.contains("reloaded the proxy") {
            return Err(format!("the proxy was not reloaded:\n{log}"));
        }
        let after = self.served_serial("app.test");
        if after == before || after.is_empty() {
            return Err(format!("the proxy still serves {before}"));
        }
        if self.figures.requests_failed > 0 || self.figures.requests_sent == 0 {
            return Err(format!(
                "{} of {} requests failed:\n{}\n{log}",
                self.figures.requests_failed,
                self.figures.requests_sent,
                load.failures.join("\n")
            ));
        }
        port80_closed()
    }

    fn reloads(&self) -> usize {
        let logs = self.proxy_compose(&["logs", "nginx"]);
        String::from_utf8_lossy(&logs.stdout)
            .matches("reconfiguring")
            .count()
    }

    fn renew_nothing_due(&mut self) -> Result<(), String> {
        let before = (self.lineage_files(), self.reloads());
        let log = succeeded(&self.script("renew/run.sh"))?;
        if !log.contains("no certificate changed; the proxy is not reloaded") {
            return Err(format!("expected no reload:\n{log}"));
        }
        if log.contains("opening port 80") {
            return Err(format!("port 80 was opened with nothing due:\n{log}"));
        }
        let after = (self.lineage_files(), self.reloads());
        if after != before {
            return Err(format!("something changed: {before:?} -> {after:?}"));
        }
        port80_closed()
    }

    fn renew_twice_at_once(&mut self) -> Result<(), String> {
        self.make_due(true);
        let spawn_renew = || {
            Command::new(self.server().join("renew/run.sh"))
                .current_dir(self.scratch.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn_renew(), spawn_renew());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        self.make_due(false);
        let logs = format!("{}{}", output_text(&a), output_text(&b));
        if !a.status.success() || !b.status.success() {
            return Err(format!("a run failed:\n{logs}"));
        }
        if !logs.contains("waiting for it") {
            return Err(format!("neither run waited for the other:\n{logs}"));
        }
        // No corruption: each live certificate matches its key, and the proxy serves it.
        for cert in ["app.test", IMG] {
            let live = self.live(cert);
            let pubkey = |args: &str| sh_out(&format!("openssl {args} | openssl sha256"));
            let from_cert = pubkey(&format!(
                "x509 -in {}/cert.pem -noout -pubkey",
                live.display()
            ));
            let from_key = pubkey(&format!("pkey -in {}/privkey.pem -pubout", live.display()));
            if from_cert != from_key {
                return Err(format!("{cert}: the certificate does not match its key"));
            }
        }
        wait_until("the proxy serves app.test", || {
            self.https("app.test") == Ok(200)
        })?;
        port80_closed()
    }

    fn renew_with_acme_down(&mut self) -> Result<(), String> {
        let before = self.served_serial("app.test");
        self.pebble.stop();
        self.make_due(true);
        let out = self.script("renew/run.sh");
        self.make_due(false);
        let log = output_text(&out);
        if out.status.success() {
            return Err(format!(
                "renew/run.sh exited 0 with the ACME server down:\n{log}"
            ));
        }
        if !log.contains("certbot could not renew: app.test")
            || !log.contains("keeps serving the current certificates")
        {
            return Err(format!("no clear message:\n{log}"));
        }
        if self.https("app.test") != Ok(200) || self.served_serial("app.test") != before {
            return Err("the proxy no longer serves the old certificate".into());
        }
        let (code, status) = self.status(&[]);
        if code != Some(1) || !status.contains("problem: the last renewal run, at ") {
            return Err(format!(
                "status.sh after the failed renewal: exit {code:?}
{status}"
            ));
        }
        port80_closed()
    }

    fn upstream_down(&mut self) -> Result<(), String> {
        succeeded(&self.proxy_compose(&["restart"]))?;
        wait_until("the proxy serves app.test after a restart", || {
            self.https("app.test") == Ok(200)
        })?;
        for (name, want) in [("www.app.test", 200), (IMG, 200), (DOWN, 502)] {
            let got = self.https(name);
            if got != Ok(want) {
                return Err(format!("{name}: expected {want}, got {got:?}"));
            }
        }
        Ok(())
    }

    /// Runs `program` with a stand-in `crontab` (the table in the file `table`): mounted over
    /// /usr/local/sbin, the first folder of the scripts' own PATH, in a mount namespace of its
    /// own, so the machine's real crontab is never touched.
    /// Runs `program` with `args` and a stand-in COMMAND (a shell script) first on the scripts'
    /// PATH: /usr/local/sbin, in a mount namespace of its own, holds the stand-in alone.
    fn with_stub(&self, command: &str, script: &str, program: &Path, args: &[&str]) -> Output {
        let stub = self.scratch.path().join(format!("stub-{command}"));
        fs::create_dir_all(&stub).unwrap();
        fs::write(stub.join(command), script).unwrap();
        sh(&format!("chmod 0755 {}/{command}", stub.display()));
        Command::new("unshare")
            .args(["--mount", "--", "bash", "-c"])
            .arg("mount --bind \"$0\" /usr/local/sbin && exec \"$@\"")
            .arg(&stub)
            .arg(program)
            .args(args)
            .current_dir(program.parent().unwrap())
            .output()
            .unwrap()
    }

    /// Runs `program` with every `docker` call it makes recorded in `calls`, one line each, as
    /// `ps` would have shown it, before the real docker runs it.
    fn with_docker_recorded(&self, program: &Path, calls: &Path) -> Output {
        let real = sh_out("command -v docker");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >>{}\nexec {} \"$@\"\n",
            calls.display(),
            real.trim()
        );
        self.with_stub("docker", &script, program, &[])
    }

    /// Runs `program` with a `crontab` whose table is the file `table`.
    fn with_stub_crontab(&self, table: &Path, program: &Path, args: &[&str]) -> Output {
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n  -l) [ -e {t} ] || {{ echo 'no crontab for root' >&2; exit 1; }}; cat {t} ;;\n  -) cat > {t}.new && mv {t}.new {t} ;;\n  *) exit 2 ;;\nesac\n",
            t = table.display()
        );
        self.with_stub("crontab", &script, program, args)
    }

    fn install_cron(&mut self) -> Result<(), String> {
        let table = self.scratch.path().join("table");
        fs::write(
            &table,
            "MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n",
        )
        .unwrap();
        let script = self.server().join("renew/run.sh");
        for _ in 0..2 {
            succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
        }
        let installed = fs::read_to_string(&table).unwrap();
        let lines: Vec<&str> = installed
            .lines()
            .filter(|l| l.contains("renew/run.sh"))
            .collect();
        let quoted = format!("'{}'", script.display());
        if !installed.starts_with("MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n")
            || lines.len() != 1
            || !lines[0].contains(&quoted)
        {
            return Err(format!("after installing twice:\n{installed}"));
        }
        // The line's command, as cron runs it: sh, from /, with cron's bare environment. Pebble is
        // down now, but nothing is due, so certbot has nothing to order.
        let command = lines[0]
            .splitn(6, ' ')
            .nth(5)
            .ok_or("a cron line has five time fields")?;
        // A renew.log past its cap (1 MiB): the run rotates it and logs into a new one.
        let logs = self.server().join("renew");
        let filler = "an earlier run\n".repeat(80_000);
        fs::write(logs.join("renew.log"), &filler).unwrap();
        let out = Command::new("/bin/sh")
            .args(["-c", command])
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/root")
            .env("SHELL", "/bin/sh")
            .output()
            .unwrap();
        let log = fs::read_to_string(logs.join("renew.log")).unwrap_or_default();
        if !log.contains("renew: done") {
            return Err(format!(
                "the cron command did not finish (exit {:?}):\n{log}{}",
                out.status.code(),
                output_text(&out)
            ));
        }
        let rotated = fs::read_to_string(logs.join("renew.log.1")).unwrap_or_default();
        if !rotated.starts_with(&filler) || log.contains("an earlier run") || log.len() > 100_000 {
            return Err(format!(
                "renew.log was not rotated: renew.log {} bytes, renew.log.1 {} bytes",
                log.len(),
                rotated.len()
            ));
        }
        // A second tree with a server of the same name (a staging copy) installs its
        // own line; each keeps the other's, whichever installs last.
        let staging = self.scratch.path().join("staging");
        sh(&format!(
            "mkdir -p {s} && cp -a {} {s}/ && rm -rf {s}/edge/renew/tree-id {s}/edge/certifications",
            self.server().display(),
            s = staging.display()
        ));
        let other = staging.join("edge/renew/run.sh");
        succeeded(&self.with_stub_crontab(&table, &other, &["--install-cron"]))?;
        succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
        let installed = fs::read_to_string(&table).unwrap();
        let markers: Vec<&str> = installed
            .lines()
            .filter_map(|l| l.split("# certgen-tree:").nth(1))
            .collect();
        if markers.len() != 2
            || markers[0] == markers[1]
            || !installed.contains(&format!("'{}'", other.display()))
            || !installed.contains(&quoted)
        {
            return Err(format!("two trees with one server name:\n{installed}"));
        }
        // The staging copy goes, and its line with it, as its operator would remove them.
        let _ = fs::remove_dir_all(&staging);
        let kept: String = installed
            .lines()
            .filter(|l| !l.contains(staging.to_str().unwrap()))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&table, kept).unwrap();
        // The log names hosts and paths: readable by root alone, though cron's shell
        // created it world-readable.
        let modes = sh_out(&format!(
            "stat -c %a {0}/renew.log {0}/renew.log.1",
            logs.display()
        ));
        if modes.split_whitespace().any(|m| m != "600") {
            return Err(format!("renew.log and renew.log.1 have modes {modes}"));
        }
        Ok(())
    }

    /// Images.nginx set to an nginx that refuses the configuration.
    fn older_nginx_image(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let original = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&original, &config).unwrap();
        cfg.servers[0].images = Some(ImageOverrides {
            nginx: Some(ImageRef::parse(OLD_NGINX_ALIAS).unwrap()),
            certbot: None,
        });
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        let started = self.proxy_started_at();
        let load = Load::start(self.root.clone(), "app.test", &[Kind::Http1, Kind::Http2]);
        let applied = self.readme_reload(SERVER);
        thread::sleep(Duration::from_millis(300));
        let load = load.stop();
        let log = output_text(&applied);
        let result = if applied.status.code() != Some(1)
            || !log.contains("add_header_inherit")
            || !log.contains("the running proxy keeps serving")
        {
            Err(format!(
                "apply.sh with an older nginx (exit {:?}):\n{log}",
                applied.status.code()
            ))
        } else if self.proxy_started_at() != started {
            Err("the proxy was restarted with an image that refuses its configuration".into())
        } else {
            load.none_failed()
        };
        fs::write(&config, original).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        result?;
        self.readme_apply(SERVER).map(|_| ())
    }

    /// The README's command to apply a change: its output, or why it failed.
    fn readme_apply(&self, server: &str) -> Result<String, String> {
        succeeded(&self.readme_reload(server))
    }

    fn apply_after_render(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let edge = &mut cfg.servers[0];
        let app = edge.certificates[0].upstream.clone();
        let img = edge
            .certificates
            .iter_mut()
            .find(|c| c.name() == IMG)
            .ok_or("no img.test certificate")?;
        img.upstream = app.clone();
        edge.certificates.push(Certificate::new(
            vec![DomainName::parse(NEW_SITE).unwrap()],
            app,
        ));
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        let started = self.proxy_started_at();
        let load = Load::start(self.root.clone(), "app.test", &[Kind::Http1, Kind::Http2]);
        thread::sleep(Duration::from_millis(300));
        let applied = self.readme_apply(SERVER);
        thread::sleep(Duration::from_millis(300));
        let load = load.stop();
        let log = applied?;
        if !log.contains("reloaded the proxy's configuration")
            || !log.contains(&format!("certificate {NEW_SITE} is not on disk yet"))
        {
            return Err(format!("apply.sh:\n{log}"));
        }
        if self.proxy_started_at() != started {
            return Err("apply.sh restarted the proxy for a change a reload applies".into());
        }
        load.none_failed()?;
        let (code, _, answer) = self.request(IMG, "/", &[]);
        if code != 200 || answer.trim() != "hello from the app" {
            return Err(format!(
                "{IMG} after its upstream changed: {code} {answer:?}"
            ));
        }
        // Nothing changed since: apply again changes nothing, reloads only.
        let again = self.readme_apply(SERVER)?;
        if again.contains("recreated") || again.contains("started the proxy") {
            return Err(format!("a second apply.sh:\n{again}"));
        }
        succeeded(&self.script("nginx-for-cert/run.sh"))?;
        wait_until("the new site over verified TLS", || {
            self.https(NEW_SITE) == Ok(200)
        })
    }

    fn moved_tree(&mut self) -> Result<(), String> {
        let old = self.out.clone();
        let moved = self.scratch.path().join("clone/infra");
        fs::create_dir_all(moved.parent().unwrap()).unwrap();
        fs::rename(&old, &moved).unwrap();
        self.out = moved.clone();
        let result = (|| {
            let log = self.readme_apply(SERVER)?;
            if !log.contains("recreated the proxy") {
                return Err(format!("apply.sh in the moved tree:\n{log}"));
            }
            wait_until("app.test from the moved tree", || {
                self.https("app.test") == Ok(200)
            })?;
            let mounts = sh_out(&format!(
                "docker inspect --format '{{{{range .Mounts}}}}{{{{.Source}}}} {{{{end}}}}' $(docker compose -f {} ps -q nginx)",
                moved.join("edge/nginx-ssl/docker-compose.yml").display()
            ));
            if !mounts.contains(moved.to_str().unwrap())
                || mounts.contains(&format!("{} ", old.display()))
            {
                return Err(format!("the proxy's mounts: {mounts}"));
            }
            let table = self.scratch.path().join("table");
            let script = moved.join("edge/renew/run.sh");
            succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
            let installed = fs::read_to_string(&table).unwrap();
            let runs: Vec<&str> = installed
                .lines()
                .filter(|l| l.contains("renew/run.sh"))
                .collect();
            if runs.len() != 1
                || !runs[0].contains(&format!("'{}'", script.display()))
                || !installed.contains("/usr/local/bin/backup.sh")
            {
                return Err(format!(
                    "after --install-cron in the moved tree:\n{installed}"
                ));
            }
            let named = sh_out(&format!(
                "grep -rlF {} {} --exclude-dir=certifications || true",
                old.display(),
                moved.display()
            ));
            if !named.trim().is_empty() {
                return Err(format!(
                    "files that name the old path {}:\n{named}",
                    old.display()
                ));
            }
            Ok(())
        })();
        // Back where the other stages expect it.
        fs::rename(&moved, &old).unwrap();
        self.out = old;
        result?;
        self.readme_apply(SERVER).map(|_| ())
    }

    /// BIND for the zone e2e.test (dynamic updates with a TSIG key), a second Pebble that
    /// resolves through it, and `wild` in certgen.yaml: a DNS-01 certificate for e2e.test and
    /// *.e2e.test, with the credentials the README asks for. Returns the credentials' text.
    fn dns_setup(&mut self) -> Result<String, String> {
        let dir = self.scratch.path().join("dns");
        fs::create_dir_all(&dir).unwrap();
        let bridge = docker_bridge_address();
        let (key, secret) = tsig_key()?;
        fs::write(
            dir.join("e2e.test.zone"),
            "$TTL 30\n@ IN SOA ns.e2e.test. admin.e2e.test. 1 60 60 600 30\n@ IN NS ns.e2e.test.\n\
             ns IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n",
        )
        .unwrap();
        fs::write(
            dir.join("named.conf"),
            format!(
                "{key}\noptions {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; \
                 session-keyfile \"{d}/session.key\"; listen-on port {BIND_PORT} {{ 127.0.0.1; {bridge}; }}; \
                 listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; }};\n\
                 zone \"e2e.test\" {{ type primary; file \"{d}/e2e.test.zone\"; \
                 allow-update {{ key certgen-e2e; }}; }};\n",
                d = dir.display()
            ),
        )
        .unwrap();
        self.dns_helpers.0.push(spawn(
            Command::new("named").args(["-g", "-c", dir.join("named.conf").to_str().unwrap()]),
            &dir.join("named.log"),
        ));
        wait_until("BIND answers for e2e.test", || {
            sh_out(&format!("dig +short @127.0.0.1 -p {BIND_PORT} e2e.test A")).trim()
                == "127.0.0.1"
        })?;
        let d = self.scratch.path();
        let config = format!(
            r#"{{"pebble":{{"listenAddress":"0.0.0.0:{PEBBLE2_PORT}","managementListenAddress":"0.0.0.0:{PEBBLE2_MANAGEMENT}",
            "certificate":"{d}/pebble.pem","privateKey":"{d}/pebble.key","httpPort":80,"tlsPort":5001,
            "ocspResponderURL":"","externalAccountBindingRequired":false}}}}"#,
            d = d.display()
        );
        fs::write(dir.join("pebble2.json"), config).unwrap();
        self.dns_helpers.0.push(spawn(
            Command::new(pebble_with_profiles())
                .args(["-config", dir.join("pebble2.json").to_str().unwrap()])
                .args(["-dnsserver", &format!("127.0.0.1:{BIND_PORT}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0"),
            &dir.join("pebble2.log"),
        ));
        wait_until("the second Pebble", || listening(PEBBLE2_MANAGEMENT))?;
        sh(&format!(
            "curl -sSf --cacert {d}/pebble-ca.pem https://127.0.0.1:{PEBBLE2_MANAGEMENT}/roots/0 -o {}",
            self.root2.display(),
            d = d.display()
        ));

        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let mut wild = cfg.servers[1].clone();
        wild.name = ServerName::parse(WILD).unwrap();
        wild.http = Some(HttpMode::OnDemand);
        wild.acme_server =
            Some(AcmeServer::parse(&format!("https://{bridge}:{PEBBLE2_PORT}/dir")).unwrap());
        wild.acme_ca_bundle =
            Some(PemBundle::parse(&fs::read_to_string(d.join("pebble-ca.pem")).unwrap()).unwrap());
        wild.notify = None;
        wild.dns = Some(Dns {
            provider: DnsProvider::Rfc2136,
            propagation_seconds: Some(1.try_into().unwrap()),
            image: Some(ImageRef::parse(DNS_IMAGE).unwrap()),
        });
        let upstream = wild.certificates[0].upstream.clone();
        let mut cert = Certificate::new(
            vec![
                DomainName::parse("e2e.test").unwrap(),
                DomainName::parse("*.e2e.test").unwrap(),
            ],
            upstream,
        );
        cert.challenge = Challenge::Dns01;
        wild.certificates = vec![cert];
        cfg.servers.push(wild);
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        Ok(format!(
            "dns_rfc2136_server = {bridge}\ndns_rfc2136_port = {BIND_PORT}\n\
             dns_rfc2136_name = certgen-e2e\ndns_rfc2136_secret = {secret}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n"
        ))
    }

    fn wild(&self) -> PathBuf {
        self.out.join(WILD)
    }

    fn dns_credentials_checked(&mut self) -> Result<(), String> {
        // One proxy per machine: front's gives ports 80 and 443 to wild's for this pass.
        for server in [SERVER, FRONT] {
            succeeded(&self.compose_of(server, &["down"]))?;
        }
        let credentials = self.dns_setup()?;
        let file = self.wild().join("secrets/dns-rfc2136.ini");
        for (mode, expected) in [(None, "is missing"), (Some("644"), "chmod 600")] {
            if let Some(mode) = mode {
                // As the README says, but with the wrong mode.
                sh(&format!(
                    "install -d -m 700 {}",
                    file.parent().unwrap().display()
                ));
                fs::write(&file, &credentials).unwrap();
                sh(&format!("chmod {mode} {}", file.display()));
            }
            let out = self.script_of(WILD, "nginx-for-cert/run.sh");
            let log = output_text(&out);
            if out.status.code() != Some(1)
                || !log.contains(&file.display().to_string())
                || !log.contains(expected)
            {
                return Err(format!("{mode:?}: exit {:?}\n{log}", out.status.code()));
            }
            if self.wild().join("certifications/live/e2e.test").exists() {
                return Err(format!("something was ordered with the file {expected}"));
            }
        }
        sh(&format!("chmod 600 {}", file.display()));
        Ok(())
    }

    fn https_wild(&self, name: &str) -> Result<u16, String> {
        https_status(&self.root2, name)
    }

    fn txt_records(&self) -> String {
        sh_out(&format!(
            "dig +short @127.0.0.1 -p {BIND_PORT} _acme-challenge.e2e.test TXT"
        ))
    }

    fn dns_issuance(&mut self) -> Result<(), String> {
        // Something else holds port 80 the whole pass.
        self.dns_helpers.0.push(spawn(
            Command::new("python3").args(["-m", "http.server", "80", "--bind", "0.0.0.0"]),
            &self.scratch.path().join("dns/port80.log"),
        ));
        wait_until("the other web server on port 80", || listening(80))?;
        let log = succeeded(&self.script_of(WILD, "nginx-for-cert/run.sh"))?;
        if !log.contains("port 80 stayed closed") || log.contains("opening port 80") {
            return Err(format!("port 80:\n{log}"));
        }
        let cert = self.wild().join("certifications/live/e2e.test/cert.pem");
        let sans = sh_out(&format!(
            "openssl x509 -in {} -noout -ext subjectAltName",
            cert.display()
        ));
        if !sans.contains("DNS:e2e.test") || !sans.contains("DNS:*.e2e.test") {
            return Err(format!("the certificate's names: {sans}"));
        }
        self.readme_apply(WILD)?;
        for name in ["e2e.test", "anything.e2e.test"] {
            wait_until(&format!("{name} over verified TLS"), || {
                self.https_wild(name) == Ok(200)
            })?;
        }
        if !self.txt_records().trim().is_empty() || !listening(80) {
            return Err(format!(
                "after issuance: TXT {:?}, port 80 held by the other server: {}",
                self.txt_records(),
                listening(80)
            ));
        }
        Ok(())
    }

    fn dns_renewal(&mut self) -> Result<(), String> {
        let before = self.served_serial("e2e.test");
        self.set_due(WILD, "e2e.test", true);
        let load = Load::start(
            self.root2.clone(),
            "anything.e2e.test",
            &[Kind::Http1, Kind::Http2],
        );
        thread::sleep(Duration::from_millis(300));
        let out = self.script_of(WILD, "renew/run.sh");
        thread::sleep(Duration::from_millis(500));
        let load = load.stop();
        self.set_due(WILD, "e2e.test", false);
        let log = succeeded(&out)?;
        if !log.contains("reloaded the proxy") || log.contains("opening port 80") {
            return Err(format!("renew/run.sh:\n{log}"));
        }
        let after = self.served_serial("e2e.test");
        if after == before || after.is_empty() {
            return Err(format!("the proxy still serves {before}"));
        }
        load.none_failed()?;
        if !self.txt_records().trim().is_empty() || !listening(80) {
            return Err(format!("after renewal: TXT {:?}", self.txt_records()));
        }
        Ok(())
    }

    fn dns_mixed(&mut self) -> Result<(), String> {
        // The other web server leaves port 80 to the HTTP-01 certificate.
        if let Some(mut squatter) = self.dns_helpers.0.pop() {
            let _ = squatter.kill();
            let _ = squatter.wait();
        }
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let wild = cfg
            .servers
            .iter_mut()
            .find(|s| s.name.as_str() == WILD)
            .unwrap();
        let upstream = wild.certificates[0].upstream.clone();
        wild.certificates.push(Certificate::new(
            vec![DomainName::parse("mixed.e2e.test").unwrap()],
            upstream,
        ));
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        self.readme_apply(WILD)?;
        let before = self.served_serial("e2e.test");
        let log = succeeded(&self.script_of(WILD, "nginx-for-cert/run.sh"))?;
        if !log.contains("opening port 80") || !log.contains("port 80 closed again") {
            return Err(format!(
                "the HTTP-01 certificate did not use port 80:\n{log}"
            ));
        }
        wait_until("mixed.e2e.test over verified TLS", || {
            self.https_wild("mixed.e2e.test") == Ok(200)
        })?;
        if self.served_serial("e2e.test") != before || self.https_wild("e2e.test") != Ok(200) {
            return Err("the DNS-01 certificate changed or is no longer served".into());
        }
        // The DNS credentials reach the plugin's container, and no other: not the
        // HTTP-01 certbot's (which status.sh runs in too), whatever it searches.
        let look = |service: &str, script: &str| {
            let out = Command::new("docker")
                .args([
                    "compose",
                    "run",
                    "--rm",
                    "--no-deps",
                    "-T",
                    "--entrypoint",
                    "sh",
                ])
                .args([service, "-c", script])
                .current_dir(self.wild().join("nginx-for-cert"))
                .env(
                    "CERTGEN_DNS_CREDENTIALS",
                    self.wild().join("secrets/dns-rfc2136.ini"),
                )
                .output()
                .unwrap();
            output_text(&out)
        };
        let secret = "dns_rfc2136_secret";
        let seen_by_http = look(
            "certbot",
            &format!("grep -rlsF {secret} /etc /var /opt /root /tmp; true"),
        );
        let seen_by_dns = look("certbot_dns", "cat /etc/certgen/dns/rfc2136.ini");
        if seen_by_http.contains('/') || !seen_by_dns.contains(secret) {
            return Err(format!(
                "the HTTP-01 certbot container finds the credentials in: {seen_by_http}\nthe DNS plugin's: {seen_by_dns}"
            ));
        }
        Ok(())
    }

    /// A certbot image that, inside its container, replaces live/ with a link
    /// to a folder of the host (Docker would follow it at the next mount of that path).
    fn planted_link_mid_run(&mut self) -> Result<(), String> {
        let dir = self.scratch.path().join("planting");
        let host = dir.join("host-folder");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("host-only"), "a file of the host\n").unwrap();
        let image = "certgen-e2e/certbot-planting:1";
        fs::write(
            dir.join("certbot"),
            format!(
                "#!/bin/sh\n# A compromised certbot: live/ becomes a link to a folder of the host.\n\
                 if [ ! -L /etc/letsencrypt/live ]; then\n  mv /etc/letsencrypt/live /etc/letsencrypt/live.real\n  \
                 ln -s {} /etc/letsencrypt/live\nfi\nexec /opt/certbot/bin/certbot.real \"$@\"\n",
                host.display()
            ),
        )
        .unwrap();
        sh(&format!(
            "cd {d} && chmod 755 certbot && docker rm -f certgen-e2e-plant >/dev/null 2>&1; \
             docker create --name certgen-e2e-plant {CERTBOT_IMAGE} >/dev/null && \
             docker cp certgen-e2e-plant:/opt/certbot/bin/certbot certbot.real && \
             docker cp certbot.real certgen-e2e-plant:/opt/certbot/bin/certbot.real && \
             docker cp certbot certgen-e2e-plant:/opt/certbot/bin/certbot && \
             docker commit certgen-e2e-plant {image} >/dev/null && docker rm certgen-e2e-plant >/dev/null",
            d = dir.display()
        ));
        let config = self.out.join("certgen.yaml");
        let original = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&original, &config).unwrap();
        let wild = cfg
            .servers
            .iter_mut()
            .find(|s| s.name.as_str() == WILD)
            .unwrap();
        wild.images = Some(ImageOverrides {
            nginx: None,
            certbot: Some(ImageRef::parse(image).unwrap()),
        });
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        let live = self.wild().join("certifications/live");
        let out = self.script_of(WILD, "nginx-for-cert/run.sh");
        let log = output_text(&out);
        let planted = fs::symlink_metadata(&live).is_ok_and(|m| m.is_symlink());
        let dns_started = log.contains("--- certificate e2e.test");
        let result = if !planted {
            Err(format!("the planting image planted nothing:\n{log}"))
        } else if out.status.code() != Some(1)
            || !log.contains(&format!("{} is a symbolic link", live.display()))
            || dns_started
        {
            Err(format!(
                "after the link was planted (exit {:?}):\n{log}",
                out.status.code()
            ))
        } else {
            // A restart no script sees (a crash, a reboot): the proxy mounts the store as one
            // folder, so the link resolves inside it, to nothing of the host.
            let restarted = self.compose_of(WILD, &["restart", "nginx"]);
            let seen = self.compose_of(
                WILD,
                &[
                    "exec",
                    "-T",
                    "nginx",
                    "cat",
                    "/etc/letsencrypt/live/host-only",
                ],
            );
            if !restarted.status.success() || seen.status.success() {
                Err(format!(
                    "the restarted proxy read the host's file through the link: {}",
                    output_text(&seen)
                ))
            } else {
                Ok(())
            }
        };
        // As the operator would after the script named it: remove the link, put live/ back,
        // and go back to the real certbot image.
        let _ = fs::remove_file(&live);
        let _ = fs::rename(self.wild().join("certifications/live.real"), &live);
        fs::write(&config, original).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        result?;
        self.readme_apply(WILD)?;
        wait_until("e2e.test over verified TLS again", || {
            self.https_wild("e2e.test") == Ok(200)
        })
    }

    fn issuance_fails(&mut self) -> Result<(), String> {
        // Pebble is down since stage 8. Take img.test away, as if it were a new certificate.
        for dir in ["live/img.test", "archive/img.test"] {
            let _ = fs::remove_dir_all(self.server().join("certifications").join(dir));
        }
        let _ = fs::remove_file(self.server().join("certifications/renewal/img.test.conf"));
        let out = self.script("nginx-for-cert/run.sh");
        let log = output_text(&out);
        if !log.contains("app.test: its earlier certificate is still in place and served") {
            return Err(format!(
                "the still valid app.test is not told apart:\n{log}"
            ));
        }
        if !self
            .server()
            .join("certifications/logs/letsencrypt.log")
            .is_file()
        {
            return Err("certbot's debug log was not kept in certifications/logs".into());
        }
        let names_it = log
            .lines()
            .any(|l| l.contains("could not obtain:") && l.contains("img.test"));
        if out.status.code() != Some(1) || !names_it {
            return Err(format!(
                "expected exit 1 naming img.test, got {:?}:\n{log}",
                out.status.code()
            ));
        }
        port80_closed()
    }

    /// Starts `script`, waits for port 80 to open, then sends `signal`: to the script alone
    /// (`kill`), or to its whole process group as a terminal's Ctrl-C does.
    fn interrupt(&mut self, script: &str, signal: &str, whole_group: bool) -> Result<(), String> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(self.server().join(script))
            .current_dir(self.scratch.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        if let Err(e) = wait_until("port 80 to open", || listening(80)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        // procps' kill: a negative id after `--` is a process group.
        let target = if whole_group {
            format!("-{}", child.id())
        } else {
            child.id().to_string()
        };
        let killed = Command::new("kill")
            .args(["-s", signal, "--", &target])
            .status()
            .unwrap();
        if !killed.success() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("kill -s {signal} -- {target} failed"));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{script} did not exit within 60 s of SIG{signal}"));
            }
            thread::sleep(Duration::from_millis(100));
        };
        let left = leftover_containers();
        if !left.is_empty() {
            return Err(format!(
                "containers left behind after SIG{signal}: {left:?}"
            ));
        }
        let expected = if signal == "INT" { 130 } else { 143 };
        if status.code() != Some(expected) {
            return Err(format!(
                "expected exit {expected} after SIG{signal}, got {:?}",
                status.code()
            ));
        }
        port80_closed()
    }
}

impl World {
    fn acme_server_switch(&mut self) -> Result<(), String> {
        // As if app.test had been issued by Let's Encrypt's staging server (renewal conf is
        // certbot's data). Only the file changes: no request leaves this machine.
        let conf = self.server().join("certifications/renewal/app.test.conf");
        let text = fs::read_to_string(&conf).unwrap();
        let (pebble, staging) = (
            text.lines()
                .find(|l| l.starts_with("server = "))
                .ok_or("no server line")?
                .to_string(),
            "server = https://acme-staging-v02.api.letsencrypt.org/directory",
        );
        fs::write(&conf, text.replace(&pebble, staging)).unwrap();
        let before = self.lineage_files();
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        let after = self.lineage_files();
        if !log.contains("certificate app.test was issued by another ACME server")
            || after[0] == before[0]
        {
            return Err(format!("app.test was not ordered again:\n{log}"));
        }
        if after[1..] != before[1..] {
            return Err(format!(
                "other certificates changed: {before:?} -> {after:?}"
            ));
        }
        if !fs::read_to_string(&conf).unwrap().contains(&pebble) {
            return Err("the lineage does not name the configured ACME server now".into());
        }
        let again = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if self.lineage_files() != after || again.contains("Successfully received certificate") {
            return Err(format!("the run after the switch ordered again:\n{again}"));
        }
        port80_closed()
    }

    /// Removes a lineage, as if its certificate were new (test data, not a script).
    fn forget(&self, cert: &str) {
        let store = self.server().join("certifications");
        for dir in [format!("live/{cert}"), format!("archive/{cert}")] {
            let _ = fs::remove_dir_all(store.join(dir));
        }
        let _ = fs::remove_file(store.join(format!("renewal/{cert}.conf")));
    }

    fn interrupted_issuance(&mut self) -> Result<(), String> {
        self.forget(DOWN);
        self.interrupt("nginx-for-cert/run.sh", "TERM", false)?;
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if !self.live(DOWN).join("fullchain.pem").exists() {
            return Err(format!(
                "the run after the interrupted one did not obtain {DOWN}:\n{log}"
            ));
        }
        port80_closed()
    }

    fn port80_taken(&mut self) -> Result<(), String> {
        let site = self.scratch.path().join("site");
        let mut other = spawn(
            Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    "80",
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                ])
                .arg(&site),
            &self.scratch.path().join("other-web-server.log"),
        );
        let result = (|| {
            wait_until("the other web server on :80", || listening(80))?;
            let idle = self.script("nginx-for-cert/run.sh");
            if !idle.status.success() {
                return Err(format!(
                    "with nothing to order, run.sh failed:\n{}",
                    output_text(&idle)
                ));
            }
            self.forget(DOWN);
            let out = self.script("nginx-for-cert/run.sh");
            let log = output_text(&out);
            if out.status.code() != Some(1) || !log.contains("port 80 is already in use") {
                return Err(format!(
                    "expected exit 1 saying port 80 is in use, got {:?}:\n{log}",
                    out.status.code()
                ));
            }
            if other.try_wait().unwrap().is_some() || !listening(80) {
                return Err("the other web server on :80 was disturbed".into());
            }
            let left = leftover_containers();
            if !left.is_empty() {
                return Err(format!("containers left behind: {left:?}"));
            }
            Ok(())
        })();
        let _ = other.kill();
        let _ = other.wait();
        // Back to where the later stages expect the tree.
        result.and_then(|()| succeeded(&self.script("nginx-for-cert/run.sh")).map(|_| ()))
    }
}

/// Notify_url.
impl World {
    /// The pings the monitor got: (path, body).
    fn received_pings(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.scratch.path().join("pings.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_yaml::from_str::<serde_yaml::Value>(l).ok())
            .map(|v| {
                (
                    v["path"].as_str().unwrap_or_default().to_string(),
                    v["body"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn pings(&mut self) -> Result<(), String> {
        let pings = self.received_pings();
        let success = pings
            .iter()
            .any(|(path, body)| path == "/ping/edge" && body.contains("renew: done"));
        let failure = pings.iter().any(|(path, body)| {
            path == "/ping/edge/fail"
                && body.contains("certbot could not renew")
                && body.len() <= 10_000
        });
        if !success || !failure {
            let paths: Vec<&String> = pings.iter().map(|(p, _)| p).collect();
            return Err(format!("pings received: {paths:?}"));
        }
        // The URL is in no argument of any docker call (ps and docker inspect show
        // those), in no log and in no file of the tree but secrets/notify-url.
        let calls = self.scratch.path().join("docker-calls");
        let out = self.with_docker_recorded(&self.server().join("renew/run.sh"), &calls);
        let log = succeeded(&out)?;
        let pinged = self.received_pings().len() > pings.len();
        let argv = fs::read_to_string(&calls).unwrap_or_default();
        let secret = "/ping/edge";
        let leaks = sh_out(&format!(
            "grep -rlF {secret} {} --exclude-dir=secrets || true",
            self.out.display()
        ));
        if !pinged
            || !argv.contains("/certgen/ping.py")
            || argv.contains(secret)
            || log.contains(secret)
            || !leaks.trim().is_empty()
        {
            return Err(format!("pinged: {pinged}; files naming the URL: {leaks}; docker calls:\n{argv}\nlog:\n{log}"));
        }
        // The monitor down: the run ends as it would have, a few seconds later at most.
        self.monitor.stop();
        let start = Instant::now();
        let out = self.script("renew/run.sh");
        let took = start.elapsed().as_secs_f64();
        let log = succeeded(&out)?;
        if !log.contains("WARNING: could not deliver the ping") || took > 30.0 {
            return Err(format!("monitor down: {took:.1} s\n{log}"));
        }
        Ok(())
    }
}

/// Status.sh.
impl World {
    /// status.sh (or `--json`): its exit code and output.
    fn status(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(self.server().join("status.sh"))
            .args(args)
            .current_dir(self.scratch.path())
            .output()
            .unwrap();
        (out.status.code(), output_text(&out))
    }

    fn status_healthy(&mut self) -> Result<(), String> {
        let (code, text) = self.status(&[]);
        let each = [
            "app.test (app.test, www.app.test)",
            "img.test (img.test)",
            "down.test (down.test)",
        ];
        if code != Some(0)
            || !each.iter().all(|c| text.contains(&format!("  {c}: ")))
            || text.matches("served by the proxy").count() != 3
            || !text.contains("from the configured ACME server")
            || !text.contains("status: OK")
        {
            return Err(format!("exit {code:?}:\n{text}"));
        }
        let (code, json) = self.status(&["--json"]);
        let report: serde_yaml::Value = serde_yaml::from_str(&json)
            .map_err(|e| format!("--json is not JSON ({e}):\n{json}"))?;
        let certificates = report["certificates"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let facts_hold = certificates.len() == 3
            && certificates.iter().all(|c| {
                c["served"].as_bool() == Some(true)
                    // Pebble picks a profile at random for an order that names none: 90
                    // or 6 days. Either way the certificate is fresh.
                    && c["days_left"]
                        .as_u64()
                        .zip(c["lifetime_days"].as_u64())
                        .is_some_and(|(left, lifetime)| lifetime >= 5 && left + 1 >= lifetime)
                    && c["from_configured_acme_server"].as_bool() == Some(true)
                    && c["expires"].as_str().is_some_and(|e| e.ends_with('Z'))
            });
        if code != Some(0) || report["ok"].as_bool() != Some(true) || !facts_hold {
            return Err(format!("--json, exit {code:?}:\n{json}"));
        }
        Ok(())
    }

    fn status_problems(&mut self) -> Result<(), String> {
        // Within the threshold: warn below ten years, which every certificate is.
        let config = self.out.join("certgen.yaml");
        let text = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&text, &config).unwrap();
        cfg.warn_days = Some(WarnDays::try_from(3650).unwrap());
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        let (code, out) = self.status(&[]);
        fs::write(&config, text).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        if code != Some(1)
            || !out.contains("problem: app.test: expires in")
            || !out.contains("within the warning threshold of 3650")
        {
            return Err(format!("warn_days 3650: exit {code:?}\n{out}"));
        }
        // A missing certificate.
        self.forget(DOWN);
        let (code, out) = self.status(&[]);
        let missing = out.contains(&format!("problem: {DOWN}: no certificate yet"));
        succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if code != Some(1) || !missing {
            return Err(format!("{DOWN} missing: exit {code:?}\n{out}"));
        }
        // The proxy down.
        succeeded(&self.proxy_compose(&["stop"]))?;
        let (code, out) = self.status(&[]);
        succeeded(&self.proxy_compose(&["start"]))?;
        wait_until("the proxy again", || self.https("app.test") == Ok(200))?;
        if code != Some(1) || !out.contains("problem: the proxy is not running") {
            return Err(format!("proxy down: exit {code:?}\n{out}"));
        }
        let (code, out) = self.status(&["--bogus"]);
        if code != Some(2) {
            return Err(format!("a usage error: exit {code:?}\n{out}"));
        }
        wait_until("a healthy status again", || self.status(&[]).0 == Some(0))
    }
}

/// What only real runs show.
impl World {
    fn killed_issuance(&mut self) -> Result<(), String> {
        self.forget(DOWN);
        let mut child = Command::new(self.server().join("nginx-for-cert/run.sh"))
            .current_dir(self.scratch.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let opened = wait_until("port 80 to open", || listening(80));
        let _ = child.kill(); // SIGKILL: no trap runs
        let _ = child.wait();
        opened?;
        let left = leftover_containers();
        if left.is_empty() {
            return Err("SIGKILL left nothing behind: the stage tests nothing".into());
        }
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if !self.live(DOWN).join("fullchain.pem").exists() {
            return Err(format!(
                "the run after SIGKILL did not obtain {DOWN}:\n{log}"
            ));
        }
        let left = leftover_containers();
        if !left.is_empty() {
            return Err(format!("containers left after the next run: {left:?}"));
        }
        port80_closed()
    }

    fn issuance_twice_at_once(&mut self) -> Result<(), String> {
        self.forget(DOWN);
        let spawn = || {
            Command::new(self.server().join("nginx-for-cert/run.sh"))
                .current_dir(self.scratch.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let first = spawn();
        thread::sleep(Duration::from_millis(300));
        let second = spawn();
        let (first, second) = (
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        );
        let (a, b) = (succeeded(&first)?, succeeded(&second)?);
        let ordered = |log: &str| log.contains("Successfully received certificate");
        if !ordered(&a) || ordered(&b) || !b.contains("waiting for it") {
            return Err(format!("first:\n{a}\nsecond:\n{b}"));
        }
        if !b.contains("port 80 stayed closed") {
            return Err(format!("the second run opened port 80:\n{b}"));
        }
        port80_closed()
    }
}

/// Headers the client cannot forge, verified upstreams, a hostile certbot container,
/// certificates that left the config.
impl World {
    fn forged_headers(&mut self) -> Result<(), String> {
        let forged = [
            "X-Forwarded-For: 203.0.113.9",
            "X-Real-IP: 203.0.113.9",
            "Forwarded: for=203.0.113.9;proto=http",
            "X-Forwarded-Port: 8443",
            "X-Forwarded-Prefix: /evil",
            "X-Forwarded-Proto: http",
            "Upgrade: h2c",
            "Connection: Upgrade, HTTP2-Settings",
            "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
        ];
        let mut args = vec!["--http1.1"];
        for header in &forged {
            args.extend(["-H", header]);
        }
        let (code, _, body) = self.request("app.test", "/headers", &args);
        let seen: std::collections::BTreeMap<String, String> =
            serde_yaml::from_str(&body).map_err(|e| format!("{code} {body:?}: {e}"))?;
        let get = |h: &str| seen.get(h).map(String::as_str);
        let real = get("x-forwarded-for").unwrap_or_default();
        let problems: Vec<String> = [
            (
                real.parse::<std::net::IpAddr>().is_err(),
                "X-Forwarded-For is not one address",
            ),
            (
                get("x-real-ip") != Some(real),
                "X-Real-IP differs from X-Forwarded-For",
            ),
            (seen.contains_key("forwarded"), "Forwarded passed through"),
            (
                seen.contains_key("x-forwarded-prefix"),
                "X-Forwarded-Prefix passed through",
            ),
            (
                get("x-forwarded-port") != Some("443"),
                "X-Forwarded-Port is not 443",
            ),
            (
                get("x-forwarded-proto") != Some("https"),
                "X-Forwarded-Proto is not https",
            ),
            (seen.contains_key("upgrade"), "Upgrade: h2c passed through"),
            (
                get("connection") != Some("close"),
                "Connection is not close",
            ),
        ]
        .into_iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, why)| why.to_string())
        .collect();
        if code != 200 || !problems.is_empty() || body.contains("203.0.113.9") {
            return Err(format!("{code}: {problems:?}\nthe app saw: {body}"));
        }
        let (_, _, body) = self.request(
            "app.test",
            "/headers",
            &[
                "--http1.1",
                "-H",
                "Upgrade: websocket",
                "-H",
                "Connection: Upgrade",
            ],
        );
        let seen: std::collections::BTreeMap<String, String> =
            serde_yaml::from_str(&body).map_err(|e| format!("{body:?}: {e}"))?;
        if seen.get("upgrade").map(String::as_str) != Some("websocket")
            || seen.get("connection").map(String::as_str) != Some("upgrade")
        {
            return Err(format!("a WebSocket upgrade did not pass: {body}"));
        }
        Ok(())
    }

    fn verified_upstreams(&mut self) -> Result<(), String> {
        let (code, _, body) = self.request("app.test", "/secure/x", &[]);
        if code != 200 || body.trim() != "hello from the tls app" {
            return Err(format!(
                "https://app.test/secure/x (upstream_ca): {code} {body:?}"
            ));
        }
        let (code, _, body) = self.request(IMG, "/unverified/x", &[]);
        if code != 502 {
            return Err(format!(
                "https://{IMG}/unverified/x (an upstream the system CAs do not know): expected 502, got {code} {body:?}"
            ));
        }
        Ok(())
    }

    /// Runs a shell command in the certbot image with this server's certificate store mounted
    /// as the scripts mount it: what a compromised certbot image could do.
    fn as_certbot(&self, command: &str) {
        let store = format!(
            "{}:/etc/letsencrypt",
            self.server().join("certifications").display()
        );
        let out = run(
            "docker",
            &[
                "run",
                "--rm",
                "-v",
                &store,
                "--entrypoint",
                "sh",
                CERTBOT_IMAGE,
                "-c",
                command,
            ],
        );
        assert!(out.status.success(), "{command}: {}", output_text(&out));
    }

    fn planted_links(&mut self) -> Result<(), String> {
        let store = self.server().join("certifications");
        let outside = Path::new("/letsencrypt.log");
        self.as_certbot(
            "mv /etc/letsencrypt/logs /etc/letsencrypt/logs.real && ln -s / /etc/letsencrypt/logs",
        );
        self.make_due(true);
        let out = self.script("renew/run.sh");
        self.make_due(false);
        fs::remove_file(store.join("logs")).unwrap();
        fs::rename(store.join("logs.real"), store.join("logs")).unwrap();
        let log = output_text(&out);
        let named = format!("{}/logs is a symbolic link", store.display());
        if out.status.code() != Some(1) || !log.contains(&named) {
            return Err(format!(
                "a link at certifications/logs: exit {:?}\n{log}",
                out.status.code()
            ));
        }
        if outside.exists() || log.contains("Renewing") {
            return Err(format!("the run went on through the link:\n{log}"));
        }
        for marker in ["reload-proxy", "port80-wanted", "port80-answer"] {
            let victim = format!("/tmp/certgen-e2e-victim-{marker}");
            let _ = fs::remove_file(&victim);
            self.as_certbot(&format!(
                "ln -s {victim} /etc/letsencrypt/.certgen/{marker}"
            ));
            let out = self.script("nginx-for-cert/run.sh");
            let planted = store.join(".certgen").join(marker);
            let still_there = planted.symlink_metadata().is_ok();
            let _ = fs::remove_file(&planted);
            let log = output_text(&out);
            let named = format!("{} is not a plain file", planted.display());
            if out.status.code() != Some(1) || !log.contains(&named) || !still_there {
                return Err(format!(
                    "a link at the marker {marker}: exit {:?}\n{log}",
                    out.status.code()
                ));
            }
            if Path::new(&victim).exists() {
                return Err(format!("{victim} was created through the link"));
            }
        }
        // With the links gone, the scripts run again.
        succeeded(&self.script("renew/run.sh")).map(|_| ())
    }

    fn removed_certificate(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let config_text = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&config_text, &config).unwrap();
        cfg.servers[0].certificates.retain(|c| c.name() != DOWN);
        fs::write(&config, cfg.to_yaml()).unwrap();
        let rendered = certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        if !rendered.contains(&format!("{SERVER}/nginx-for-cert/run.sh --delete {DOWN}")) {
            return Err(format!(
                "render does not say how to delete {DOWN}:\n{rendered}"
            ));
        }
        let before = fs::read_link(self.live(DOWN).join("cert.pem")).ok();
        self.make_due(true);
        let out = self.script("renew/run.sh");
        self.make_due(false);
        let log = succeeded(&out)?;
        if !log.contains(&format!("skipping {DOWN}: it is no longer in certgen.yaml")) {
            return Err(format!(
                "renewal does not name the skipped certificate:\n{log}"
            ));
        }
        if fs::read_link(self.live(DOWN).join("cert.pem")).ok() != before {
            return Err(format!("{DOWN} was renewed although it left the config"));
        }
        let delete = self.server().join("nginx-for-cert/run.sh");
        let out = Command::new(&delete)
            .args(["--delete", DOWN])
            .output()
            .unwrap();
        succeeded(&out)?;
        if self.live(DOWN).exists()
            || self
                .server()
                .join(format!("certifications/renewal/{DOWN}.conf"))
                .exists()
        {
            return Err(format!("--delete left {DOWN} in the store"));
        }
        let again = Command::new(&delete)
            .args(["--delete", "app.test"])
            .output()
            .unwrap();
        if again.status.code() != Some(1) || !output_text(&again).contains("is in certgen.yaml") {
            return Err(format!(
                "--delete of a configured certificate: {}",
                output_text(&again)
            ));
        }
        // Back as it was: the certificate added again is obtained and served.
        fs::write(&config, config_text).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        succeeded(&self.script("nginx-for-cert/run.sh"))?;
        wait_until(&format!("{DOWN} served again"), || {
            self.https(DOWN) == Ok(502)
        })
    }
}

/// A production site (a missing certificate, HSTS, uploads, routes, networks, custom
/// configuration) and the `http: redirect` pass on the second server, `front`.
impl World {
    fn late_certificate(&mut self) -> Result<(), String> {
        challtestsrv("clear-servfail", DOWN);
        let started = self.proxy_started_at();
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if !log.contains("reloaded the proxy") {
            return Err(format!("the proxy was not reloaded:\n{log}"));
        }
        // Its upstream never resolves: verified TLS for its name, then 502 from its site.
        wait_until(&format!("{DOWN} over verified TLS"), || {
            self.https(DOWN) == Ok(502)
        })?;
        if self.proxy_started_at() != started {
            return Err("the proxy was restarted; a reload was enough".into());
        }
        Ok(())
    }

    /// When the proxy's container last started (a restart changes it, a reload does not).
    fn proxy_started_at(&self) -> String {
        let id = output_text(&self.proxy_compose(&["ps", "-q", "nginx"]));
        sh_out(&format!(
            "docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {}",
            id.trim()
        ))
    }

    fn hsts(&mut self) -> Result<(), String> {
        for (name, status) in [("app.test", 200), (DOWN, 502)] {
            let (code, headers, _) = self.request(name, "/", &[]);
            let hsts = headers
                .lines()
                .any(|l| l.eq_ignore_ascii_case("strict-transport-security: max-age=63072000"));
            if code != status || !hsts {
                return Err(format!(
                    "{name}: expected {status} with HSTS, got {code}:\n{headers}"
                ));
            }
        }
        // A request for a name this proxy does not serve, on a connection made for
        // app.test, reached the handshake-rejecting default server and got 200 without HSTS.
        for version in ["--http1.1", "--http2"] {
            let (code, headers, _) =
                self.request("app.test", "/", &[version, "-H", "Host: unknown.test"]);
            if code != 421 {
                return Err(format!("Host unlike SNI ({version}): {code}\n{headers}"));
            }
        }
        Ok(())
    }

    /// `curl` over verified TLS to `https://name{path}` with `extra` arguments: the status, the
    /// response headers and the body.
    fn request(&self, name: &str, path: &str, extra: &[&str]) -> (u16, String, String) {
        let headers = self.scratch.path().join("headers.txt");
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "--cacert",
                self.root.to_str().unwrap(),
            ])
            .args(["--resolve", &format!("{name}:443:127.0.0.1")])
            .args(["-D", headers.to_str().unwrap()])
            .args(extra)
            .arg(format!("https://{name}{path}"))
            .output()
            .unwrap();
        let head = fs::read_to_string(&headers)
            .unwrap_or_default()
            .replace('\r', "");
        let code = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (
            code,
            head,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn site_options(&mut self) -> Result<(), String> {
        let body = self.scratch.path().join("20mb.bin");
        fs::write(&body, vec![b'x'; 20 << 20]).unwrap();
        let upload = format!("@{}", body.display());
        let (code, _, answer) = self.request("app.test", "/upload", &["--data-binary", &upload]);
        if code != 200 || answer.trim() != "the app received 20971520 bytes" {
            return Err(format!("a 20 MB POST to app.test: {code} {answer:?}"));
        }
        let small = self.scratch.path().join("2mb.bin");
        fs::write(&small, vec![b'x'; 2 << 20]).unwrap();
        let upload = format!("@{}", small.display());
        let (code, _, _) = self.request(IMG, "/upload", &["--data-binary", &upload]);
        if code != 413 {
            return Err(format!(
                "a 2 MB POST to {IMG} (max_body_size 1m): expected 413, got {code}"
            ));
        }
        for (name, path, expected) in [
            ("app.test", "/api/items", "hello from the api"),
            ("app.test", "/", "hello from the app"),
            (IMG, "/", "hello from the container app"),
        ] {
            let (code, _, answer) = self.request(name, path, &[]);
            if code != 200 || answer.trim() != expected {
                return Err(format!(
                    "https://{name}{path}: {code} {answer:?}, expected {expected:?}"
                ));
            }
        }
        Ok(())
    }

    /// The command the server README gives to apply a change in nginx-ssl/nginx/custom/
    /// (./apply.sh), run from the server's folder as it says.
    fn readme_reload(&self, server: &str) -> Output {
        let folder = self.out.join(server);
        let readme = fs::read_to_string(folder.join("README.md")).unwrap();
        let command = readme
            .lines()
            .map(str::trim)
            .find(|l| *l == "./apply.sh")
            .expect("the README shows how to apply a change");
        Command::new("sh")
            .args(["-c", command])
            .current_dir(&folder)
            .output()
            .unwrap()
    }

    fn custom_file(&mut self) -> Result<(), String> {
        let custom = self
            .server()
            .join("nginx-ssl/nginx/custom/app.test/e2e.conf");
        fs::write(
            &custom,
            "location = /custom {\n    add_header X-Certgen-Custom yes;\n    return 200 \"custom\\n\";\n}\n",
        )
        .unwrap();
        succeeded(&self.readme_reload(SERVER))?;
        // nginx reloads asynchronously: the old workers may answer for a moment.
        let _ = wait_until("the custom location", || {
            self.request("app.test", "/custom", &[]).2 == "custom\n"
        });
        let (code, headers, body) = self.request("app.test", "/custom", &[]);
        let has = |h: &str| {
            headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with(h))
        };
        if code != 200 || body != "custom\n" || !has("x-certgen-custom:") {
            return Err(format!("/custom: {code} {body:?}\n{headers}"));
        }
        if !has("strict-transport-security:") {
            return Err(format!("the custom location lost HSTS:\n{headers}"));
        }
        // A change to certgen.yaml, rendered: the custom file stays, and check is green.
        let config = self.out.join("certgen.yaml");
        let yaml = fs::read_to_string(&config).unwrap();
        fs::write(&config, yaml.replacen("read: 60s", "read: 61s", 1)).unwrap();
        let config = config.to_str().unwrap();
        let rendered = certgen().args(["render", "--config", config]).succeeds();
        if rendered.contains(" 0 changed") || !custom.is_file() {
            return Err(format!("render:\n{rendered}"));
        }
        let check = certgen().args(["check", "--config", config]).run();
        if !check.status.success() {
            return Err(format!("check after render: {}", output_text(&check)));
        }
        succeeded(&self.readme_reload(SERVER))?;
        thread::sleep(Duration::from_millis(500));
        let (code, _, body) = self.request("app.test", "/custom", &[]);
        if code != 200 || body != "custom\n" {
            return Err(format!(
                "/custom after the render and reload: {code} {body:?}"
            ));
        }
        Ok(())
    }

    fn broken_custom_file(&mut self) -> Result<(), String> {
        let broken = self
            .server()
            .join("nginx-ssl/nginx/custom/app.test/broken.conf");
        fs::write(&broken, "this_is_not_a_directive on;\n").unwrap();
        let before = self.served_serial("app.test");
        let reload = self.readme_reload(SERVER);
        if reload.status.success() || !output_text(&reload).contains("broken.conf") {
            return Err(format!(
                "the reload did not refuse broken.conf:\n{}",
                output_text(&reload)
            ));
        }
        self.make_due(true);
        let out = self.script("renew/run.sh");
        self.make_due(false);
        let log = output_text(&out);
        if out.status.code() != Some(1)
            || !log.contains("fails 'nginx -t'")
            || !log.contains("broken.conf")
        {
            return Err(format!(
                "renew/run.sh did not report it: {:?}\n{log}",
                out.status.code()
            ));
        }
        if self.https("app.test") != Ok(200) || self.served_serial("app.test") != before {
            return Err("the proxy stopped serving what it served".into());
        }
        // Renewed on disk, the old one served: the blog's failure, named by status.sh.
        let (code, status) = self.status(&[]);
        if code != Some(1)
            || !status.contains("problem: app.test: the proxy does not serve this certificate")
        {
            return Err(format!(
                "status.sh after the failed reload: exit {code:?}
{status}"
            ));
        }
        fs::remove_file(&broken).unwrap();
        // The renewed certificates are on disk; the reload they need was kept for the next run.
        let log = succeeded(&self.script("renew/run.sh"))?;
        if !log.contains("reloaded the proxy") {
            return Err(format!("the next run did not reload:\n{log}"));
        }
        wait_until("the renewed certificate served", || {
            let now = self.served_serial("app.test");
            !now.is_empty() && now != before
        })
    }

    fn front(&self) -> PathBuf {
        self.out.join(FRONT)
    }

    fn front_script(&self, rel: &str) -> Output {
        self.script_of(FRONT, rel)
    }

    fn front_compose(&self, args: &[&str]) -> Output {
        self.compose_of(FRONT, args)
    }

    fn redirect_first_issuance(&mut self) -> Result<(), String> {
        // One proxy per machine: edge's gives ports 80 and 443 to front's for this pass.
        succeeded(&self.proxy_compose(&["down"]))?;
        let log = succeeded(&self.front_script("nginx-for-cert/run.sh"))?;
        self.figures.redirect_port80_issuance = port80_seconds(&log);
        if !log.contains("opening port 80") {
            return Err(format!(
                "the temporary nginx did not serve the challenge:\n{log}"
            ));
        }
        let cert = self.front().join("certifications/live/r1.test/cert.pem");
        if !cert.exists() {
            return Err("no certificate for r1.test".into());
        }
        // profile: shortlived gives Pebble's shortlived lifetime.
        let dates = sh_out(&format!(
            "openssl x509 -in {} -noout -startdate -enddate -dateopt iso_8601",
            cert.display()
        ));
        let lifetime = lifetime_seconds(&dates).ok_or(format!("no dates: {dates}"))?;
        if lifetime.abs_diff(SHORTLIVED) > 120 {
            return Err(format!(
                "r1.test lives {lifetime} s, not {SHORTLIVED} s: {dates}"
            ));
        }
        let sans = sh_out(&format!(
            "openssl x509 -in {} -noout -ext subjectAltName",
            cert.display()
        ));
        if !sans.contains("DNS:r1.test") || !sans.contains("IP Address:127.0.0.1") {
            return Err(format!("r1.test's names: {sans}"));
        }
        port80_closed()
    }

    fn redirect_proxy(&mut self) -> Result<(), String> {
        succeeded(&self.front_compose(&["up", "-d"]))?;
        wait_until("r1.test over verified TLS", || {
            self.https("r1.test") == Ok(200)
        })?;
        let plain = |host: &str, path: &str| {
            let out = Command::new("curl")
                .args(["-sS", "--max-time", "5", "-D", "-", "-o", "/dev/null"])
                .args(["--resolve", &format!("{host}:80:127.0.0.1")])
                .arg(format!("http://{host}{path}"))
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).replace('\r', ""),
            )
        };
        // By IP address: no SNI, so the default site, whose certificate names the address.
        let by_ip = sh_out(&format!(
            "curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 --cacert {} https://127.0.0.1/",
            self.root.display()
        ));
        if by_ip != "200" {
            return Err(format!("https://127.0.0.1/ over verified TLS: {by_ip}"));
        }
        let (code, head) = plain("127.0.0.1", "/x");
        if !head.contains("ocation: https://127.0.0.1/x") {
            return Err(format!("http://127.0.0.1/x: {code:?}\n{head}"));
        }
        let (code, head) = plain("r1.test", "/some/path?q=1&x=2");
        let location = head.lines().find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        });
        if code != Some(0)
            || !head.starts_with("HTTP/1.1 301")
            || location != Some("https://r1.test/some/path?q=1&x=2")
        {
            return Err(format!(
                "http://r1.test/some/path?q=1&x=2: {code:?}\n{head}"
            ));
        }
        if head
            .to_ascii_lowercase()
            .contains("strict-transport-security")
        {
            return Err(format!("HSTS on port 80:\n{head}"));
        }
        // An unknown name: no answer (444) but for the challenge path, which only knows tokens.
        let (code, head) = plain("unknown.test", "/");
        if code != Some(52) {
            return Err(format!(
                "unknown.test on port 80: expected no reply (curl 52), got {code:?}\n{head}"
            ));
        }
        let (_, head) = plain("unknown.test", "/.well-known/acme-challenge/nothing");
        if !head.starts_with("HTTP/1.1 404") {
            return Err(format!("the challenge path for an unknown name:\n{head}"));
        }
        // front's profile is `tls: modern`: TLS 1.3 only.
        let handshake = |flag: &str| {
            sh_out(&format!(
                "echo | openssl s_client -connect 127.0.0.1:443 -servername r1.test {flag} -brief -CAfile {} 2>&1",
                self.root.display()
            ))
        };
        let tls12 = handshake("-tls1_2");
        let tls13 = handshake("-tls1_3");
        if tls12.contains("Protocol version: TLSv1.2")
            || !tls13.contains("Protocol version: TLSv1.3")
        {
            return Err(format!("tls: modern: TLS 1.2 {tls12}\nTLS 1.3 {tls13}"));
        }
        Ok(())
    }

    fn redirect_renewal(&mut self) -> Result<(), String> {
        let before = self.served_serial("r1.test");
        self.set_due(FRONT, "r1.test", true);
        let load = Load::start(
            self.root.clone(),
            "r1.test",
            &[Kind::Http1, Kind::Plain, Kind::Http2],
        );
        thread::sleep(Duration::from_millis(500));
        let out = self.front_script("renew/run.sh");
        thread::sleep(Duration::from_millis(500));
        let load = load.stop();
        self.set_due(FRONT, "r1.test", false);
        self.figures.redirect_requests_sent = load.sent;
        self.figures.redirect_requests_failed = load.failures.len() as u32;
        self.figures.redirect_requests_retried = load.retried;
        let log = succeeded(&out)?;
        self.figures.redirect_challenge_renewal = log
            .split("the proxy answered the ACME challenge on port 80 (for ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok());
        if !log.contains("the proxy answers the ACME challenge on port 80")
            || log.contains("opening port 80")
        {
            return Err(format!(
                "the renewal did not go through the proxy's port 80:\n{log}"
            ));
        }
        let temporary = sh_out("docker ps -a --filter name=certgen-front --format '{{.Names}}'");
        if temporary.lines().any(|n| n.contains("nginx_for_cert")) {
            return Err(format!("a second nginx ran for port 80: {temporary}"));
        }
        let after = self.served_serial("r1.test");
        if after == before || after.is_empty() {
            return Err(format!("the proxy still serves {before}"));
        }
        if !load.failures.is_empty() || load.sent == 0 {
            return Err(format!(
                "{} of {} requests failed:\n{}\n{log}",
                load.failures.len(),
                load.sent,
                load.failures.join("\n")
            ));
        }
        Ok(())
    }

    fn redirect_new_certificate(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let upstream = cfg.servers[1].certificates[0].upstream.clone();
        cfg.servers[1].certificates.push(Certificate::new(
            vec![DomainName::parse("r2.test").unwrap()],
            upstream,
        ));
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        // Restarted with a site whose certificate does not exist yet: the proxy comes back.
        succeeded(&self.front_compose(&["restart"]))?;
        wait_until("r1.test after the restart", || {
            self.https("r1.test") == Ok(200)
        })?;
        // front's default site is r1.test's, which holds its IP address: a name without a
        // certificate gets that certificate, which does not name it (curl 60), where edge refuses
        // the handshake.
        let verified = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&self.root)
            .args(["--resolve", "r2.test:443:127.0.0.1", "https://r2.test/"])
            .output()
            .unwrap();
        if verified.status.code() != Some(60) {
            return Err(format!(
                "r2.test before its certificate: {}",
                output_text(&verified)
            ));
        }
        let log = succeeded(&self.front_script("nginx-for-cert/run.sh"))?;
        if !log.contains("the proxy answers the ACME challenge on port 80")
            || !log.contains("reloaded the proxy")
        {
            return Err(format!(
                "r2.test was not obtained through the running proxy:\n{log}"
            ));
        }
        wait_until("r2.test over verified TLS", || {
            self.https("r2.test") == Ok(200)
        })?;
        let redirect = sh_out(
            "curl -sS -o /dev/null -w '%{http_code}' --resolve r2.test:80:127.0.0.1 http://r2.test/",
        );
        if redirect != "301" {
            return Err(format!("http://r2.test/ after the reload: {redirect}"));
        }
        // Back to the edge proxy for the stages after this pass.
        succeeded(&self.front_compose(&["down"]))?;
        succeeded(&self.proxy_compose(&["up", "-d"]))?;
        wait_until("app.test on the edge proxy again", || {
            self.https("app.test") == Ok(200)
        })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for project in [
            "edge/nginx-ssl",
            "edge/nginx-for-cert",
            "edge/renew",
            "front/nginx-ssl",
            "front/nginx-for-cert",
            "front/renew",
            "wild/nginx-ssl",
            "wild/nginx-for-cert",
            "wild/renew",
        ] {
            let file = self.out.join(project).join("docker-compose.yml");
            let _ = Command::new("docker")
                .args([
                    "compose",
                    "-f",
                    file.to_str().unwrap(),
                    "down",
                    "--remove-orphans",
                    "--timeout",
                    "2",
                ])
                .output();
        }
        let _ = run("docker", &["rm", "-f", BOX]);
        let _ = run("docker", &["network", "rm", APPS_NETWORK]);
        self.helpers.stop();
        self.monitor.stop();
        self.pebble.stop();
        self.dns_helpers.stop();
    }
}

/// Child processes that are killed when this is dropped, so a panic anywhere (in
/// `World::start` too) leaves none of them running.
pub(crate) struct Spawned(pub(crate) Vec<Child>);

impl Spawned {
    fn stop(&mut self) {
        for mut child in self.0.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Containers of the suite's server other than the proxy: there should be none between runs.
fn leftover_containers() -> Vec<String> {
    let ps = run(
        "docker",
        &[
            "ps",
            "-a",
            "--filter",
            "name=certgen-edge",
            "--format",
            "{{.Names}}",
        ],
    );
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|n| !n.contains("-ssl-"))
        .map(str::to_string)
        .collect()
}

/// Makes the certificate of renewal settings `path` due for renewal now (certbot's
/// renew_before_expiry), or not; a certificate not obtained has no such file.
pub(crate) fn set_due(path: &Path, due: bool) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("renew_before_expiry"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = if due {
        format!("renew_before_expiry = 3650 days\n{without}")
    } else {
        without
    };
    fs::write(path, text).unwrap();
}

/// A new TSIG key `certgen-e2e` for BIND's updates: its named.conf block and its secret.
pub(crate) fn tsig_key() -> Result<(String, String), String> {
    let key = sh_out("tsig-keygen -a hmac-sha256 certgen-e2e");
    let secret = key
        .split("secret \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or(format!("tsig-keygen: {key}"))?
        .to_string();
    Ok((key, secret))
}

/// A CA (`DIR/pebble-ca.pem`, `ca.key`) and Pebble's own TLS certificate from it
/// (`pebble.pem`, `pebble.key`), valid for `san` (`IP:127.0.0.1,IP:...`): certbot connects to
/// Pebble at one of those addresses and trusts the CA (acme_ca_bundle).
pub(crate) fn pebble_certificate(dir: &Path, san: &str) {
    sh(&format!(
        "cd {d} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
         -subj '/CN=certgen e2e pebble CA' -keyout ca.key -out pebble-ca.pem 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=pebble \
         -keyout pebble.key -out pebble.csr 2>/dev/null && \
         printf 'subjectAltName={san}\\n' > san.cnf && \
         openssl x509 -req -in pebble.csr -CA pebble-ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile san.cnf -out pebble.pem 2>/dev/null",
        d = dir.display()
    ));
}

/// The status of `https://NAME/` on this machine, verified against `root`.
fn https_status(root: &Path, name: &str) -> Result<u16, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:443:127.0.0.1")])
        .arg(format!("https://{name}/"))
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("{e}"))
}

/// notAfter - notBefore of `openssl x509 -startdate -enddate -dateopt iso_8601` output.
fn lifetime_seconds(dates: &str) -> Option<u64> {
    let date = |key: &str| -> Option<u64> {
        let value = dates.lines().find_map(|l| l.strip_prefix(key))?;
        let out = run("date", &["-u", "-d", value.trim(), "+%s"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    date("notAfter=")?.checked_sub(date("notBefore=")?)
}

/// curl's exit code for an HTTPS request to `name` on this machine, certificate unchecked:
/// 35 is a refused handshake.
fn handshake(name: &str) -> Option<i32> {
    Command::new("curl")
        .args(["-sk", "--max-time", "5", "--resolve"])
        .arg(format!("{name}:443:127.0.0.1"))
        .arg(format!("https://{name}/"))
        .args(["-o", "/dev/null"])
        .output()
        .unwrap()
        .status
        .code()
}

/// Tells pebble-challtestsrv (its management port) to `action` (set-servfail, clear-servfail)
/// for `host`.
#[track_caller]
fn challtestsrv(action: &str, host: &str) {
    sh(&format!(
        "curl -sSf -d '{{\"host\":\"{host}\"}}' http://127.0.0.1:8055/{action}"
    ));
}

fn docker_bridge_address() -> String {
    let out = sh_out("ip -4 -o addr show docker0");
    let addr = out
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no docker0 address: {out}"));
    addr.split('/').next().unwrap().to_string()
}

pub(crate) fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let file = fs::File::create(log).unwrap();
    cmd.stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run .ci/setup)"))
}

fn listening(port: u16) -> bool {
    listening_on("127.0.0.1", port)
}

pub(crate) fn listening_on(host: &str, port: u16) -> bool {
    let addr = format!("{host}:{port}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

fn port80_closed() -> Result<(), String> {
    if listening(80) {
        Err("port 80 is still open".into())
    } else {
        Ok(())
    }
}

#[track_caller]
pub(crate) fn wait_for(what: &str, ready: impl Fn() -> bool) {
    if let Err(e) = wait_until(what, ready) {
        panic!("{e}");
    }
}

pub(crate) fn wait_until(what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    wait_up_to(30, what, ready)
}

/// `ready` polled for at most `seconds`.
pub(crate) fn wait_up_to(seconds: u64, what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(200));
    }
    Err(format!("timed out waiting for {what}"))
}

pub(crate) fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The output of a run that must have exited 0.
pub(crate) fn succeeded(out: &Output) -> Result<String, String> {
    let text = output_text(out);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("exit {:?}:\n{text}", out.status.code()))
    }
}

/// How long the script's own log says port 80 was open.
fn port80_seconds(log: &str) -> Option<f64> {
    let rest = log.split("port 80 closed again (open for ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[track_caller]
pub(crate) fn sh(script: &str) {
    let out = run("sh", &["-c", script]);
    assert!(out.status.success(), "{script}\n{}", output_text(&out));
}

pub(crate) fn sh_out(script: &str) -> String {
    String::from_utf8_lossy(&run("sh", &["-c", script]).stdout).into_owned()
}
