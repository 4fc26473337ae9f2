//! The world the suite runs in: started once (Pebble, the apps, the tree rendered and
//! its servers), stopped when dropped; the helpers every stage uses.

use super::*;

impl World {
    /// HTTPS requests to app.test, HTTP/1.1 and HTTP/2 in turn, while a stage changes the proxy.
    pub(super) fn app_load(&self) -> Load {
        Load::start(self.root.clone(), "app.test", &[Kind::Http1, Kind::Http2])
    }

    pub(super) fn start() -> World {
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
            14002,
            15002,
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
        // Pebble listens on loopback; certbot's containers reach it through the door on the
        // bridge (stopped, Pebble is down for them, and keeps its accounts for when it is back).
        let config = format!(
            r#"{{"pebble":{{"listenAddress":"127.0.0.1:14000","managementListenAddress":"0.0.0.0:15000",
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
        let pebble_door = Spawned(vec![open_door(dir, &bridge, 14000)]);
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
            .args(STANDIN_IMAGES)
            .succeeds();
        // The user edits certgen.yaml, then renders: a third certificate whose upstream never
        // resolves; app.test routes /api/ to the api; img.test forwards to the container on the
        // apps' network and takes bodies up to 1 MB; and a second server, `front`, whose proxy
        // holds port 80 (http: redirect).
        let config = out.join("certgen.yaml");
        let mut cfg = read_config(&config);
        let edge = &mut cfg.servers[0];
        edge.networks = vec![NetworkName::parse(APPS_NETWORK).unwrap()];
        // The monitor's URL goes on the server, in secrets/, never in certgen.yaml.
        edge.notify = Some(true);
        // node_exporter's textfile folder, where renew/run.sh writes the metrics.
        fs::create_dir_all(dir.join("metrics")).unwrap();
        edge.metrics_dir = Some(MetricsDir::parse(dir.join("metrics").to_str().unwrap()).unwrap());
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
            Route::to(Upstream::parse(&format!("http://host.docker.internal:{API_PORT}")).unwrap()),
        );
        // app.test trusts the suite's CA for its https:// route; img.test's goes to the same
        // app with the system's CAs, which do not know it.
        let tls_app = Upstream::parse(&format!("https://host.docker.internal:{TLS_PORT}")).unwrap();
        edge.certificates[0].routes.insert(
            PathPrefix::parse("/secure/").unwrap(),
            Route::to(tls_app.clone()),
        );
        edge.certificates[0].upstream_ca =
            Some(UpstreamCa::parse(&fs::read_to_string(&ca).unwrap()).unwrap());
        edge.certificates[1].routes.insert(
            PathPrefix::parse("/unverified/").unwrap(),
            Route::to(tls_app),
        );
        edge.certificates[1].upstream =
            Some(Upstream::parse(&format!("http://{BOX}:8080")).unwrap());
        edge.certificates[1].max_body_size = NginxSize::parse("1m").unwrap();
        // A rate limit no other stage reaches: 20 a second, 40 more at once.
        edge.certificates[1].rate_limit = Some(RateLimit {
            per_second: 20.try_into().unwrap(),
            burst: 40.try_into().unwrap(),
        });
        // HTTP/3 for app.test only, and a header of its own.
        edge.certificates[0].http3 = Some(true);
        edge.certificates[0].headers.insert(
            HeaderName::parse("X-Frame-Options").unwrap(),
            HeaderValue::parse("DENY").unwrap(),
        );
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
        // www.r1.test only redirects to r1.test, over HTTPS with its own certificate.
        let mut www = Certificate::new(
            vec![DomainName::parse(WWW_R1).unwrap()],
            Upstream::parse(&app_upstream).unwrap(),
        );
        www.upstream = None;
        www.redirect = Some(RedirectTarget::parse("https://r1.test").unwrap());
        front.certificates = vec![short, www];
        cfg.servers.push(front);
        write_and_render(&config, &cfg);

        World {
            root2: scratch.path().join("pebble2-root.pem"),
            scratch,
            out,
            pebble,
            pebble_door,
            helpers,
            monitor,
            root,
            dns_helpers: Spawned(Vec::new()),
            figures: Figures::default(),
        }
    }

    pub(super) fn server(&self) -> PathBuf {
        self.out.join(SERVER)
    }

    pub(super) fn live(&self, cert: &str) -> PathBuf {
        self.server().join("certifications/live").join(cert)
    }

    /// certgen.yaml changed by `edit` and rendered while `stage` runs; then as it was, rendered
    /// again, so the stages after see the suite's tree.
    pub(super) fn rendered_with<T>(
        &mut self,
        edit: impl FnOnce(&mut Config),
        stage: impl FnOnce(&mut World) -> T,
    ) -> T {
        let config = self.out.join("certgen.yaml");
        let original = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&original, &config).unwrap();
        edit(&mut cfg);
        write_and_render(&config, &cfg);
        let result = stage(self);
        fs::write(&config, &original).unwrap();
        certgen()
            .args(["render", "--config"])
            .args([&config])
            .succeeds();
        result
    }

    /// Runs a generated script unmodified, from a folder of its own (as cron would).
    pub(super) fn script(&self, rel: &str) -> Output {
        self.script_of(SERVER, rel)
    }

    /// Runs a generated script of `server` unmodified, from a folder of its own (as cron would).
    pub(super) fn script_of(&self, server: &str, rel: &str) -> Output {
        Command::new(self.out.join(server).join(rel))
            .current_dir(self.scratch.path())
            .output()
            .unwrap()
    }

    pub(super) fn proxy_compose(&self, args: &[&str]) -> Output {
        self.compose_of(SERVER, args)
    }

    /// `docker compose` on the proxy of `server`.
    pub(super) fn compose_of(&self, server: &str, args: &[&str]) -> Output {
        let file = self.out.join(server).join("nginx-ssl/docker-compose.yml");
        let mut all = vec!["compose", "-f", file.to_str().unwrap()];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    /// Makes every certificate due by the lineage's renewal conf (test data, not a script).
    /// A lineage a stage removed is skipped.
    pub(super) fn make_due(&self, due: bool) {
        for cert in ["app.test", IMG, DOWN] {
            self.set_due(SERVER, cert, due);
        }
    }

    pub(super) fn set_due(&self, server: &str, cert: &str, due: bool) {
        set_due(
            &self
                .out
                .join(server)
                .join(format!("certifications/renewal/{cert}.conf")),
            due,
        );
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
        self.pebble_door.stop();
        self.pebble.stop();
        self.dns_helpers.stop();
    }
}

/// Containers of the suite's server other than the proxy: there should be none between runs.
pub(super) fn leftover_containers() -> Vec<String> {
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

/// The status of `https://NAME/` on this machine, verified against `root`.
pub(super) fn https_status(root: &Path, name: &str) -> Result<u16, String> {
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
pub(super) fn lifetime_seconds(dates: &str) -> Option<u64> {
    let date = |key: &str| -> Option<u64> {
        let value = dates.lines().find_map(|l| l.strip_prefix(key))?;
        let out = run("date", &["-u", "-d", value.trim(), "+%s"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    date("notAfter=")?.checked_sub(date("notBefore=")?)
}

/// curl's exit code for an HTTPS request to `name` on this machine, certificate unchecked:
/// 35 is a refused handshake.
pub(super) fn handshake(name: &str) -> Option<i32> {
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
pub(super) fn challtestsrv(action: &str, host: &str) {
    sh(&format!(
        "curl -sSf -d '{{\"host\":\"{host}\"}}' http://127.0.0.1:8055/{action}"
    ));
}

pub(super) fn docker_bridge_address() -> String {
    let out = sh_out("ip -4 -o addr show docker0");
    let addr = out
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no docker0 address: {out}"));
    addr.split('/').next().unwrap().to_string()
}

/// A TCP forwarder from the Docker bridge's `port` to the same port on loopback, where Pebble
/// listens: the address certbot's containers order from. Waits until it answers.
pub(super) fn open_door(dir: &Path, bridge: &str, port: u16) -> std::process::Child {
    fs::write(dir.join("door.py"), DOOR_SCRIPT).unwrap();
    let door = spawn(
        Command::new("python3")
            .arg(dir.join("door.py"))
            .args([bridge, &port.to_string()]),
        &dir.join(format!("door-{port}.log")),
    );
    wait_for("the door to Pebble", || listening_on(bridge, port));
    door
}

pub(super) fn listening(port: u16) -> bool {
    listening_on("127.0.0.1", port)
}

pub(super) fn port80_closed() -> Result<(), String> {
    if listening(80) {
        Err("port 80 is still open".into())
    } else {
        Ok(())
    }
}

/// How long the script's own log says port 80 was open.
pub(super) fn port80_seconds(log: &str) -> Option<f64> {
    let rest = log.split("port 80 closed again (open for ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// The server of the suite's config named `name`.
pub(super) fn server_named<'a>(cfg: &'a mut Config, name: &str) -> &'a mut certgen::config::Server {
    cfg.servers
        .iter_mut()
        .find(|s| s.name.as_str() == name)
        .unwrap()
}
