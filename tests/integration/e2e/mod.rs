//! The generated tree taken through its whole life against real parts on this machine: dockerd,
//! compose v2, nginx and certbot (stand-in images of the pinned versions, built by .ci/setup) and
//! Pebble, the ACME test server Let's Encrypt maintains, with pebble-challtestsrv answering every
//! test name with 127.0.0.1. The generated scripts run unmodified.
//!
//! Runs when `CERTGEN_E2E=1`, as root, after `.ci/setup`. Each stage prints one PASS/FAIL line;
//! the figures at the end are CONTRIBUTING.md's (Benchmarks). Traffic stays on this machine:
//! loopback and the docker bridge.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use certgen::config::{
    Certificate, Challenge, Config, Dns, DnsProvider, HttpMode, ImageOverrides, RateLimit, Route,
    TlsProfile, WarnDays,
};
use certgen::validate::{
    AcmeServer, CaaResolver, ClientNetwork, DomainName, HeaderName, HeaderValue, ImageRef,
    MetricsDir, NetworkName, NginxSize, NginxTime, PathPrefix, PemBundle, ProfileName,
    RedirectTarget, ServerName, Upstream, UpstreamCa,
};

use crate::helpers::{certgen, run};
use crate::world::load::{Kind, Load};
use crate::world::{
    listening_on, output_text, pebble_certificate, pebble_with_profiles, read_config, set_due, sh,
    sh_out, spawn, succeeded, tsig_key, wait_for, wait_until, write_and_render, Spawned, Stages,
    APP_SCRIPT, CERTBOT_IMAGE, DNS_IMAGE, NGINX_IMAGE, STANDIN_IMAGES,
};

mod access;
mod apply;
mod ca;
mod data_path;
mod dns;
mod issuance;
mod monitoring;
mod redirect;
mod renewal;
mod security;
mod sites;
mod start;

use start::{
    challtestsrv, docker_bridge_address, handshake, https_status, leftover_containers,
    lifetime_seconds, listening, port80_closed, port80_seconds, server_named,
};

/// The stand-in of an older nginx (1.26), under a tag that names no version: certgen renders the
/// pinned series' configuration for it, which it refuses.
const OLD_NGINX_ALIAS: &str = "certgen-standin/nginx:trixie";

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

/// A site added by a re-render while the proxy runs (apply.rs).
const NEW_SITE: &str = "new.test";

/// The port the stand-in app listens on, on the docker bridge address; the API (a route of
/// app.test) listens on the next one.
const APP_PORT: u16 = 18081;

const API_PORT: u16 = 18082;

/// An app that speaks TLS, with a certificate of the suite's own CA (a private CA).
const TLS_PORT: u16 = 18083;

/// The lifetime of Pebble's `shortlived` profile, in seconds: six days, as Let's Encrypt's.
const SHORTLIVED: u64 = 518_400;

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

/// A TCP forwarder: connections to ADDRESS:PORT go on to 127.0.0.1:PORT.
const DOOR_SCRIPT: &str = r#"
import asyncio, sys
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def forward(reader, writer):
    try:
        upstream = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, upstream[1]), pipe(upstream[0], writer))
async def main():
    server = await asyncio.start_server(forward, sys.argv[1], int(sys.argv[2]))
    await server.serve_forever()
asyncio.run(main())
"#;

/// The monitor's ping URL, as the operator writes it into edge/secrets/notify-url.
fn monitor_url(bridge: &str) -> String {
    format!("http://{bridge}:{MONITOR_PORT}/ping/edge")
}

/// The second server of the suite's config: the proxy holds port 80 (`http: redirect`).
const FRONT: &str = "front";

/// front's redirect-only certificate: to r1.test, with the path and query.
const WWW_R1: &str = "www.r1.test";

/// An app reached by container name on a Docker network the proxy joins (`networks`).
const APPS_NETWORK: &str = "certgen-e2e-apps";

const BOX: &str = "certgen-e2e-box";

#[test]
#[ignore = "the end-to-end suite (dockerd, compose, Pebble; as root, after .ci/setup): CERTGEN_E2E=1 cargo test -- --include-ignored"]
fn a_generated_tree_works_end_to_end() {
    let Some(mut stages) = Stages::begin(
        "e2e",
        "the end-to-end suite (dockerd, compose, nginx, certbot, Pebble)",
    ) else {
        return;
    };
    let mut world = World::start();

    stages.run(
        "nginx-for-cert/run.sh obtains every certificate it can (one name's DNS fails), names the other; port 80 closed after",
        || world.issue(),
    );
    stages.run(
        "the proxy starts without that certificate and serves every other name; an unknown name gets no handshake",
        || world.proxy(),
    );
    stages.run(
        "the missing certificate, obtained later, is served after the script's reload, with no restart",
        || world.late_certificate(),
    );
    stages.run(
        "HSTS on every HTTPS answer, an error page too, with the site's own headers; a Host unlike the TLS name gets 421",
        || world.hsts(),
    );
    stages.run(
        "HTTP/3 (http3: true on app.test): a real HTTP/3 client (aioquic) gets app.test, verified with the Pebble certificate; its HTTP/2 answers carry Alt-Svc, img.test's none",
        || world.http3(),
    );
    stages.run(
        "rate_limit on img.test (20/s, burst 40): 150 requests at once get 429 past the burst, the first ones 200",
        || world.rate_limited(),
    );
    stages.run(
        "a 20 MB upload reaches the app; over max_body_size gets 413; /api/ goes to its route; a container on a joined network answers",
        || world.site_options(),
    );
    stages.run(
        "a file in custom/<certificate>/ takes effect after the README's reload, survives render; check stays green",
        || world.custom_file(),
    );
    stages.run(
        "forged X-Forwarded-For, X-Real-IP, Forwarded, X-Forwarded-Port/-Prefix and Upgrade: h2c: the app sees the real address, none of the rest; WebSocket still upgrades",
        || world.forged_headers(),
    );
    stages.run(
        "an https:// upstream is verified: served with its upstream_ca, 502 against the system CAs",
        || world.verified_upstreams(),
    );
    stages.run(
        "status.sh on a healthy tree: exit 0, each certificate's days left, served by the proxy; --json carries the same",
        || world.status_healthy(),
    );
    stages.run(
        "status.sh exits 1 naming what is wrong: a certificate within warn_days, a missing one, the proxy down",
        || world.status_problems(),
    );
    stages.run(
        "git add -A stages no key, certificate, account or renewal file, nothing of secrets/",
        || world.git(),
    );
    stages.run(
        "running nginx-for-cert/run.sh again orders no new certificate and leaves port 80 closed",
        || world.reissue(),
    );
    stages.run(
        "after a switch of ACME server (staging to production) or key type, each certificate is ordered once anew",
        || world.acme_server_switch(),
    );
    stages.run(
        "renewal when due under HTTPS load: new serial, no failed request, port 80 closed",
        || world.renew_under_load(),
    );
    stages.run(
        "metrics: status.sh --prometheus passes promtool; renew/run.sh writes them to metrics_dir, readable by all, and app.test's expiry in them changes when it is renewed",
        || world.metrics(),
    );
    stages.run(
        "renewal when nothing is due: exit 0, nothing renewed, no reload, port 80 never opened",
        || world.renew_nothing_due(),
    );
    stages.run(
        "two renew/run.sh at once: one waits, no corruption, the proxy serves",
        || world.renew_twice_at_once(),
    );
    stages.run(
        "SIGTERM while issuance orders a certificate takes port 80 down; the next run completes",
        || world.interrupted_issuance(),
    );
    stages.run(
        "SIGKILL while issuance orders a certificate: the next run cleans up what it left and completes",
        || world.killed_issuance(),
    );
    stages.run(
        "two nginx-for-cert/run.sh at once: the first orders the missing certificate, the second waits and orders nothing",
        || world.issuance_twice_at_once(),
    );
    stages.run(
        "Ctrl-C (SIGINT to the process group) during a renewal takes port 80 down",
        || {
            world.make_due(true);
            let result = world.interrupt("renew/run.sh", "INT", true);
            world.make_due(false);
            result
        },
    );
    stages.run(
        "port 80 taken: nothing to order is fine; an order stops clearly; the other server undisturbed",
        || world.port80_taken(),
    );
    stages.run(
        "a custom file that fails nginx -t: the reload refuses it, renew/run.sh says so and exits 1, the proxy keeps serving; fixed, the next run reloads",
        || world.broken_custom_file(),
    );
    stages.run(
        "links planted by the certbot container (at certifications/logs, at each marker) stop the next run, naming the path; nothing outside the tree is touched",
        || world.planted_links(),
    );
    stages.run(
        "a certificate removed from certgen.yaml: render names it, renewal skips it and succeeds, --delete removes it; added back, it is obtained again",
        || world.removed_certificate(),
    );
    stages.run(
        "after a re-render (an upstream changed, a site added), the README's ./apply.sh under HTTPS load: a reload, no failed request; the new site's certificate named, then obtained and served",
        || world.apply_after_render(),
    );
    stages.run(
        "an nginx image that refuses the configuration (an older series, under a tag that names no version): ./apply.sh runs nginx -t in it first and exits 1 naming the directive, under HTTPS load the running proxy keeps serving, never restarted; rendered back, ./apply.sh succeeds",
        || world.older_nginx_image(),
    );
    stages.run(
        "http: redirect, first issuance: the temporary nginx holds port 80 while the proxy has never run; profile: shortlived gives a 6-day certificate, with the IP address 127.0.0.1 on it",
        || world.redirect_first_issuance(),
    );
    stages.run(
        "http: redirect, the proxy: http://NAME/path?q redirects to https://NAME/path?q without HSTS; https://www.r1.test/path?q (a redirect-only certificate) to https://r1.test/path?q with HSTS; unknown names get nothing; https://127.0.0.1/ verified (no SNI: the default site); tls: modern refuses TLS 1.2",
        || world.redirect_proxy(),
    );
    stages.run(
        "http: redirect, renewal when due through the proxy's port 80 under HTTPS and HTTP load: new serial, no failed request, nothing else on port 80",
        || world.redirect_renewal(),
    );
    stages.run(
        "http: redirect, a certificate added and rendered while the proxy runs: a restart keeps the proxy up; run.sh obtains it and it is served",
        || world.redirect_new_certificate(),
    );
    stages.run(
        "External Account Binding (eab.kid, a Pebble that requires it): run.sh without the HMAC key in secrets/ stops naming it and orders nothing; with it, certbot registers and every certificate is ordered anew from that CA; the key in no log; once registered, the key is needed no more",
        || world.eab(),
    );
    stages.run(
        "ACME server down: renew fails clearly, old certificate kept, port 80 closed",
        || world.renew_with_acme_down(),
    );
    stages.run(
        "the monitor got a success ping after a good renewal and a /fail ping with the log after a failed one; with the monitor down, renewal ends as it would, within seconds",
        || world.pings(),
    );
    stages.run(
        "a fallback CA: with the ACME server down, a due renewal comes from the fallback (its EAB key on the server), served, named by status.sh; with the ACME server back, the next from it",
        || world.fallback(),
    );
    stages.run(
        "one upstream down: the proxy (re)starts and serves the other sites",
        || world.upstream_down(),
    );
    stages.run(
        "kept-alive upstream connections: 20 requests, each on a new client connection, reach the app over a few connections; a WebSocket echo through the proxy",
        || world.upstream_connections_kept(),
    );
    stages.run(
        "an app container started after the proxy is served within seconds, its connections kept alive; recreated on a new address, it is found again; no reload",
        || world.upstream_started_late(),
    );
    stages.run(
        "an allow list on img.test, changed in certgen.yaml and applied: the suite's client admitted by one, refused (403) by another; behind a trusted proxy, the client its X-Forwarded-For names admitted or refused; admitted once restored; app.test unaffected",
        || world.allow_list_changed(),
    );
    stages.run(
        "basic auth on img.test, changed in certgen.yaml and applied: refused while its password file is missing; then 401 without the password, 200 with it from secrets/auth/, its auth: off route without; the file in no commit; satisfy: either admits the allow list's client without one",
        || world.basic_auth(),
    );
    stages.run(
        "renew/run.sh --install-cron, twice: one line with this tree's path, other entries kept; a second tree with a server of the same name keeps its own line; that line, run as cron runs it, renews; a full renew.log is rotated",
        || world.install_cron(),
    );
    stages.run(
        "the tree moved (a clone elsewhere): ./apply.sh there recreates the proxy on the new paths, --install-cron replaces the old line, no generated file names the old path",
        || world.moved_tree(),
    );
    stages.run(
        "issuance that fails (ACME server down) names the certificate, exits 1, closes port 80",
        || world.issuance_fails(),
    );
    stages.run(
        "DNS-01 (BIND, TSIG, a second Pebble resolving through it): the credentials file missing, then mode 644, stops the script naming it; nothing is ordered",
        || world.dns_credentials_checked(),
    );
    stages.run(
        "DNS-01: e2e.test and *.e2e.test issued with something else holding port 80 the whole time, served for e2e.test and anything.e2e.test; BIND holds no TXT record after",
        || world.dns_issuance(),
    );
    stages.run(
        "DNS-01 renewal when due under HTTPS load: new serial, no failed request, port 80 still someone else's, no TXT record left",
        || world.dns_renewal(),
    );
    stages.run(
        "CAA (status.sh --caa, asking BIND): the records printed pin e2e.test and *.e2e.test to the account Pebble created, with dns-01; not pinned before they are published, pinned after; another CA's record is reported as forbidding this one, and under it nginx-for-cert/run.sh orders no new certificate, saying why",
        || world.caa(),
    );
    stages.run(
        "a server mixing DNS-01 and HTTP-01: the HTTP-01 certificate is obtained over port 80, the DNS-01 one kept; both served",
        || world.dns_mixed(),
    );
    stages.run(
        "a compromised certbot image plants a link at live/ mid-run: the DNS plugin's container of the same run never starts, the script names the link (exit 1); the proxy, restarted meanwhile, sees nothing of the host through it; restored, all is served",
        || world.planted_link_mid_run(),
    );
    world.figures.print();
    stages.finish();
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

/// Everything the suite starts, stopped again when it is dropped.
struct World {
    scratch: tempfile::TempDir,
    out: PathBuf,
    pebble: Spawned,
    /// Pebble's address for certbot (start::open_door): the renewal with the ACME server down
    /// closes it.
    pebble_door: Spawned,
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
