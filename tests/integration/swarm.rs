//! A generated `engine: swarm` tree on a real two-node Docker Swarm, built on this
//! machine from two docker-in-docker nodes (the `certgen-ci/swarm-node` image of .ci/setup:
//! Debian's dockerd, this machine's Docker CLI and compose plugin). The manager holds the tree
//! and runs the generated scripts unmodified, in the tree's folder as its README says; every
//! name points at the other node, so the ACME challenge is answered through it. Pebble and the
//! apps run on this machine, on the nodes' network.
//!
//! Runs when `CERTGEN_E2E=1`, as root, after `.ci/setup`, one end-to-end suite at a time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use certgen::config::{Certificate, Challenge, Config, Dns, DnsProvider};
use certgen::validate::{DomainName, ImageRef, PathPrefix, Upstream};

use crate::e2e::{
    output_text, pebble_with_profiles, sh, sh_out, spawn, succeeded, tsig_key, wait_for,
    wait_up_to, Spawned, Stages, APP_SCRIPT, CERTBOT_IMAGE, DNS_IMAGE, NGINX_IMAGE,
};
use crate::helpers::{certgen, opted_in, run};

const NODE_IMAGE: &str = "certgen-ci/swarm-node:bookworm";
const NETWORK: &str = "certgen-e2e-swarm";
const SUBNET: &str = "10.213.7.0/24";
/// This machine on the nodes' network: Pebble and the apps listen here.
const HOST: &str = "10.213.7.1";
/// The manager, which holds the tree, and the worker, at which every name points.
const MANAGER: Node = Node {
    name: "certgen-e2e-node1",
    address: "10.213.7.11",
};
const WORKER: Node = Node {
    name: "certgen-e2e-node2",
    address: "10.213.7.12",
};
const NODES: [Node; 2] = [MANAGER, WORKER];
/// Where the manager has the infra folder (a bind mount of this suite's scratch folder).
const INFRA: &str = "/srv/infra";
const SERVER: &str = "edge";
/// The certificates, by folder, and a name each is asked for: two over HTTP-01, and a wildcard
/// (e2e.test, *.e2e.test) over DNS-01.
const SITES: [(&str, &str); 3] = [
    ("app.test", "app.test"),
    ("img.test", "img.test"),
    ("e2e.test", "anything.e2e.test"),
];
const PEBBLE_PORT: u16 = 14100;
const PEBBLE_MANAGEMENT: u16 = 15100;
/// BIND, authoritative for test. (every name), updated with a TSIG key: by certbot's rfc2136
/// plugin for DNS-01, by the suite to point names elsewhere.
const BIND_PORT: u16 = 8154;
const APP_PORT: u16 = 18180;
const API_PORT: u16 = 18181;

#[derive(Clone, Copy)]
struct Node {
    name: &'static str,
    address: &'static str,
}

impl Node {
    /// `docker ARGS` on this node's own dockerd.
    fn docker(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.name, "docker"];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    fn docker_out(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.docker(args).stdout).into_owned()
    }

    /// The serial of the certificate this node's proxy presents for `name`.
    fn serial(&self, name: &str) -> String {
        sh_out(&format!(
            "echo | openssl s_client -connect {}:443 -servername {name} 2>/dev/null | openssl x509 -noout -serial",
            self.address
        ))
        .trim()
        .to_string()
    }

    /// The logs of this node's proxy containers, the stopped ones too.
    fn proxy_logs(&self) -> String {
        let ids = self.docker_out(&["ps", "-aq", "--filter", "name=certgen-edge_nginx"]);
        ids.split_whitespace()
            .map(|id| output_text(&self.docker(&["logs", id])))
            .collect()
    }
}

#[test]
#[ignore = "the end-to-end suite on a two-node Docker Swarm (dockerd, Pebble; as root, after .ci/setup): CERTGEN_E2E=1 cargo test -- --include-ignored"]
fn a_swarm_tree_works_end_to_end() {
    if !opted_in(
        "CERTGEN_E2E",
        "the swarm end-to-end suite (two docker-in-docker nodes, Pebble)",
    ) {
        return;
    }
    let _one_at_a_time = crate::helpers::end_to_end_lock();
    let mut swarm = Swarm::start();
    let mut stages = Stages::default();
    stages.run(
        "S1 swarm, first issuance as the README says (labels, ./apply.sh, nginx-for-cert/run.sh): HTTP-01 answered through the worker, a wildcard over DNS-01 (BIND); both nodes serve verified TLS for every name; port 80 redirects",
        || swarm.first_issuance(),
    );
    stages.run(
        "S2 swarm, renewal when due rolled out one node at a time: each node then serves the new serial; a client alternating between the nodes (falling back on a refused connection) sees no failed request",
        || swarm.renewal_under_load(),
    );
    stages.run(
        "S3 swarm, a render that adds a route, then ./apply.sh: rolled out the same way, served by both nodes, no failed request",
        || swarm.render_rollout(),
    );
    stages.run(
        "S3b swarm, a custom file that fails nginx -t: ./apply.sh checks it on the manager and rolls nothing out (exit 1), no failed request",
        || swarm.refused_config(),
    );
    stages.run(
        "S3c swarm, an nginx image the worker cannot get (the check on the manager passes): Swarm rolls every node back, apply.sh exits 1 saying so, both nodes serve again; rendered back, ./apply.sh succeeds and leaves only the configs the proxies use",
        || swarm.rollback(),
    );
    stages.run(
        "S4 swarm, a node down during a renewal: renew/run.sh rolls out to the other and reports the node missing (exit 1); back up, the node serves the new certificate, and the next run and status.sh are clean",
        || swarm.node_down_during_renewal(),
    );
    stages.run(
        "S4b swarm, the worker's Docker stopped once the renewal's rollout reaches it: renew/run.sh ends within its limit, naming the node down (exit 1), the lock free, the manager serving the new certificate, nothing rolled back; the worker back, the next run brings it the new certificate",
        || swarm.node_lost_mid_rollout(),
    );
    stages.run(
        "S5 swarm, a link planted at a live/ key (to a file of the manager): ./apply.sh refuses to send it to the proxies, naming it; nothing is deployed",
        || swarm.planted_link(),
    );
    stages.run(
        "S6 swarm, no key anywhere but the manager's certifications/: not in the nodes' disks, images or logs, nor in the tree; in the proxies, only in memory (tmpfs)",
        || swarm.keys_stay_home(),
    );
    swarm.figures.print();
    stages.finish();
}

/// Everything the swarm pass starts, removed again when it is dropped.
struct Swarm {
    scratch: tempfile::TempDir,
    /// The infra folder on this machine (the manager's INFRA).
    out: PathBuf,
    root: PathBuf,
    /// The TSIG key's secret, for nsupdate.
    secret: String,
    _helpers: Spawned,
    figures: Figures,
}

#[derive(Default)]
struct Figures {
    first_rollout: Option<f64>,
    renewal: Option<(f64, Tally)>,
    render: Option<(f64, Tally)>,
    rollback: Option<Tally>,
}

impl Figures {
    fn print(&self) {
        let show = |what: &str, figures: &Option<(f64, Tally)>| match figures {
            Some((seconds, t)) => say(&format!(
                "  {what}: rollout to two nodes {seconds:.1} s; {}",
                t.summary()
            )),
            None => say(&format!("  {what}: n/a")),
        };
        say("swarm figures:");
        match self.first_rollout {
            Some(s) => say(&format!(
                "  first issuance: rollout of the certificates to two nodes {s:.1} s"
            )),
            None => say("  first issuance: n/a"),
        }
        show("renewal", &self.renewal);
        show("render (a new route)", &self.render);
        if let Some(t) = &self.rollback {
            say(&format!("  a rollout Swarm rolled back: {}", t.summary()));
        }
    }
}

impl Swarm {
    fn start() -> Swarm {
        let out = run("docker", &["image", "inspect", NODE_IMAGE]);
        assert!(
            out.status.success(),
            "{NODE_IMAGE} is missing: run .ci/setup"
        );
        let version = sh_out("docker version --format '{{.Client.Version}}'");
        assert!(
            version
                .split('.')
                .next()
                .and_then(|m| m.trim().parse::<u32>().ok())
                >= Some(26),
            "the swarm pass needs the Docker CLI 26 or later here (it is {version})"
        );
        remove_nodes();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        sh(&format!(
            "docker network create --subnet {SUBNET} {NETWORK} >/dev/null"
        ));
        for node in NODES {
            let mut args = vec![
                "run",
                "-d",
                "--name",
                node.name,
                "--hostname",
                node.name,
                "--network",
                NETWORK,
                "--ip",
                node.address,
                "--cap-add",
                "ALL",
                "--cap-drop",
                "SYS_RESOURCE",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--security-opt",
                "systempaths=unconfined",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            ];
            let storage = format!("{}:/var/lib/docker", node.name);
            let infra = format!("{}:{INFRA}", dir.join("infra").display());
            args.extend(["-v", &storage]);
            if node.name == MANAGER.name {
                fs::create_dir_all(dir.join("infra")).unwrap();
                args.extend(["-v", &infra]);
            }
            let parent = format!("/{}", node.name);
            args.extend([NODE_IMAGE, "--cgroup-parent", &parent]);
            let started = run("docker", &args);
            assert!(started.status.success(), "{}", output_text(&started));
        }
        for node in NODES {
            wait_for(&format!("dockerd in {}", node.name), || {
                node.docker(&["info"]).status.success()
            });
        }
        let init = MANAGER.docker(&["swarm", "init", "--advertise-addr", MANAGER.address]);
        assert!(init.status.success(), "{}", output_text(&init));
        let token = MANAGER.docker_out(&["swarm", "join-token", "-q", "worker"]);
        let join = WORKER.docker(&[
            "swarm",
            "join",
            "--token",
            token.trim(),
            &format!("{}:2377", MANAGER.address),
        ]);
        assert!(join.status.success(), "{}", output_text(&join));
        // No registry here: the images are loaded into the nodes that run them (certbot only on
        // the manager).
        for (image, nodes) in [
            (NGINX_IMAGE, &NODES[..]),
            (CERTBOT_IMAGE, &NODES[..1]),
            (DNS_IMAGE, &NODES[..1]),
        ] {
            for node in nodes {
                sh(&format!(
                    "docker save {image} | docker exec -i {} docker load -q >/dev/null",
                    node.name
                ));
            }
        }

        // Pebble, its certificate valid for this machine's address on the nodes' network, and
        // a DNS server that answers every name with the worker's address.
        let ca = dir.join("pebble-ca.pem");
        crate::e2e::pebble_certificate(dir, &format!("IP:127.0.0.1,IP:{HOST}"));
        fs::write(
            dir.join("pebble.json"),
            format!(
                r#"{{"pebble":{{"listenAddress":"0.0.0.0:{PEBBLE_PORT}","managementListenAddress":"127.0.0.1:{PEBBLE_MANAGEMENT}",
                "certificate":"{d}/pebble.pem","privateKey":"{d}/pebble.key","httpPort":80,"tlsPort":5001,
                "ocspResponderURL":"","externalAccountBindingRequired":false}}}}"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let mut helpers = Spawned(Vec::new());
        let (key, secret) = tsig_key().unwrap();
        let mut zone = String::from(
            "$TTL 5\n@ IN SOA ns.test. admin.test. 1 60 60 600 5\n@ IN NS ns.test.\nns IN A 127.0.0.1\n",
        );
        for name in ["app", "img", "e2e", "*.e2e"] {
            zone += &format!("{name} IN A {}\n", WORKER.address);
        }
        fs::write(dir.join("test.zone"), zone).unwrap();
        fs::write(
            dir.join("named.conf"),
            format!(
                "{key}\noptions {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; \
                 session-keyfile \"{d}/session.key\"; listen-on port {BIND_PORT} {{ 127.0.0.1; {HOST}; }}; \
                 listen-on-v6 {{ none; }}; recursion no; dnssec-validation no; }};\n\
                 zone \"test\" {{ type primary; file \"{d}/test.zone\"; \
                 allow-update {{ key certgen-e2e; }}; }};\n",
                d = dir.display()
            ),
        )
        .unwrap();
        helpers.0.push(spawn(
            Command::new("named").args(["-g", "-c", dir.join("named.conf").to_str().unwrap()]),
            &dir.join("named.log"),
        ));
        helpers.0.push(spawn(
            Command::new(pebble_with_profiles())
                .args(["-config", dir.join("pebble.json").to_str().unwrap()])
                .args(["-dnsserver", &format!("127.0.0.1:{BIND_PORT}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0"),
            &dir.join("pebble.log"),
        ));
        let app = dir.join("app.py");
        fs::write(&app, APP_SCRIPT).unwrap();
        for (port, name) in [(APP_PORT, "the app"), (API_PORT, "the api")] {
            helpers.0.push(spawn(
                Command::new("python3")
                    .arg(&app)
                    .args([&port.to_string(), HOST, name]),
                &dir.join(format!("{port}.log")),
            ));
        }
        wait_for("BIND", || {
            sh_out(&format!(
                "dig +short @127.0.0.1 -p {BIND_PORT} anything.e2e.test A"
            ))
            .trim()
                == WORKER.address
        });
        wait_for("Pebble and the apps", || {
            [
                (PEBBLE_MANAGEMENT, "127.0.0.1"),
                (APP_PORT, HOST),
                (API_PORT, HOST),
            ]
            .iter()
            .all(|(port, host)| crate::e2e::listening_on(host, *port))
        });
        let root = dir.join("pebble-root.pem");
        sh(&format!(
            "curl -sSf --cacert {} https://127.0.0.1:{PEBBLE_MANAGEMENT}/roots/0 -o {}",
            ca.display(),
            root.display()
        ));

        let out = dir.join("infra");
        certgen()
            .args([
                "init",
                "--server",
                SERVER,
                "--engine",
                "swarm",
                "--email",
                "ops@example.com",
            ])
            .args(["--out", out.to_str().unwrap()])
            .args(["--domain", SITES[0].0, "--domain", SITES[1].0])
            .args(["--upstream", &format!("http://{HOST}:{APP_PORT}")])
            .args([
                "--acme-server",
                &format!("https://{HOST}:{PEBBLE_PORT}/dir"),
            ])
            .args(["--acme-ca-bundle", ca.to_str().unwrap()])
            .args([
                "--nginx-image",
                NGINX_IMAGE,
                "--certbot-image",
                CERTBOT_IMAGE,
            ])
            .succeeds();
        // The wildcard over DNS-01, through BIND; its credentials on the manager, mode 600.
        let config = out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let edge = &mut cfg.servers[0];
        edge.dns = Some(Dns {
            provider: DnsProvider::Rfc2136,
            propagation_seconds: Some(1.try_into().unwrap()),
            image: Some(ImageRef::parse(DNS_IMAGE).unwrap()),
        });
        let mut wildcard = Certificate::new(
            vec![
                DomainName::parse("e2e.test").unwrap(),
                DomainName::parse("*.e2e.test").unwrap(),
            ],
            edge.certificates[0].upstream.clone(),
        );
        wildcard.challenge = Challenge::Dns01;
        edge.certificates.push(wildcard);
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        // As the server README says: secrets/ (mode 700), the file mode 600.
        let credentials = out.join(SERVER).join("secrets");
        sh(&format!(
            "umask 077 && mkdir {0} && printf 'dns_rfc2136_server = {HOST}\\ndns_rfc2136_port = {BIND_PORT}\\n\
             dns_rfc2136_name = certgen-e2e\\ndns_rfc2136_secret = {secret}\\n\
             dns_rfc2136_algorithm = HMAC-SHA256\\n' > {0}/dns-rfc2136.ini",
            credentials.display()
        ));
        Swarm {
            scratch,
            out,
            root,
            secret,
            _helpers: helpers,
            figures: Figures::default(),
        }
    }

    /// A command in the manager, in the server's folder (where the README's commands run).
    fn manager(&self, command: &str) -> Output {
        run(
            "docker",
            &[
                "exec",
                "-w",
                &format!("{INFRA}/{SERVER}"),
                MANAGER.name,
                "bash",
                "-c",
                command,
            ],
        )
    }

    fn https(&self, node: Node, name: &str, path: &str) -> Result<String, String> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&self.root)
            .args(["--resolve", &format!("{name}:443:{}", node.address)])
            .arg(format!("https://{name}{path}"))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "https://{name}{path} on {}: {}",
                node.name,
                output_text(&out)
            ))
        }
    }

    /// Every name, on every node, over verified TLS, forwarded to the app.
    fn every_node_serves(&self) -> Result<(), String> {
        for node in NODES {
            for (_, name) in SITES {
                let body = self.https(node, name, "/")?;
                if body != "hello from the app\n" {
                    return Err(format!("https://{name}/ on {}: {body:?}", node.name));
                }
            }
        }
        Ok(())
    }

    fn first_issuance(&mut self) -> Result<(), String> {
        for node in NODES {
            succeeded(&self.manager(&format!(
                "docker node update --label-add certgen.proxy=true {}",
                node.name
            )))?;
        }
        let apply = succeeded(&self.manager("./apply.sh"))?;
        if !apply.contains("2/2 nodes run the proxy") {
            return Err(format!(
                "apply.sh did not start a proxy on both nodes:\n{apply}"
            ));
        }
        // Before any certificate, the proxies answer on port 80 and give no handshake on 443.
        let refused = Command::new("curl")
            .args([
                "-sk",
                "--resolve",
                &format!("app.test:443:{}", WORKER.address),
            ])
            .arg("https://app.test/")
            .status()
            .unwrap();
        if refused.success() {
            return Err("a proxy without certificates completed a TLS handshake".into());
        }
        let log = succeeded(&self.manager("nginx-for-cert/run.sh"))?;
        self.figures.first_rollout = rollout_seconds(&log);
        if !log.contains("rolled out: the proxies serve the new certificates") {
            return Err(format!(
                "nginx-for-cert/run.sh did not roll the certificates out:\n{log}"
            ));
        }
        self.every_node_serves()?;
        let worker = WORKER.proxy_logs();
        let manager = MANAGER.proxy_logs();
        if !worker.contains("GET /.well-known/acme-challenge/") {
            return Err(format!(
                "the worker's proxy passed on no challenge:\n{worker}"
            ));
        }
        if manager.contains("GET /.well-known/acme-challenge/") {
            return Err(
                "the names point at the worker, yet the manager's proxy saw a challenge".into(),
            );
        }
        for node in NODES {
            let out = sh_out(&format!(
                "curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --resolve app.test:80:{} 'http://app.test/a?b=1'",
                node.address
            ));
            if out != "301 https://app.test/a?b=1" {
                return Err(format!("http://app.test/a?b=1 on {}: {out}", node.name));
            }
        }
        let status = self.manager("./status.sh");
        succeeded(&status).map(|_| ())
    }

    fn set_due(&self, due: bool) {
        for (cert, _) in SITES {
            let renewal = format!("{SERVER}/certifications/renewal/{cert}.conf");
            crate::e2e::set_due(&self.out.join(renewal), due);
        }
    }

    fn serials(&self) -> Vec<String> {
        NODES
            .iter()
            .flat_map(|node| SITES.iter().map(|(_, name)| node.serial(name)))
            .collect()
    }

    fn renewal_under_load(&mut self) -> Result<(), String> {
        let before = self.serials();
        self.set_due(true);
        let client = Alternating::start(self.root.clone());
        let renewed = self.manager("renew/run.sh");
        let tally = client.stop();
        self.set_due(false);
        let log = succeeded(&renewed)?;
        let after = self.serials();
        for (i, (old, new)) in before.iter().zip(&after).enumerate() {
            if old == new || new.is_empty() {
                return Err(format!(
                    "{} still serves {old} for {} after the renewal",
                    NODES[i / SITES.len()].name,
                    SITES[i % SITES.len()].1
                ));
            }
        }
        if after[..SITES.len()] != after[SITES.len()..] {
            return Err(format!("the nodes serve different certificates: {after:?}"));
        }
        self.figures.renewal = rollout_seconds(&log).map(|s| (s, tally.clone()));
        tally.none_failed()
    }

    fn render_rollout(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        cfg.servers[0].certificates[0].routes.insert(
            PathPrefix::parse("/api/").unwrap(),
            Upstream::parse(&format!("http://{HOST}:{API_PORT}")).unwrap(),
        );
        fs::write(&config, cfg.to_yaml()).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        let client = Alternating::start(self.root.clone());
        let applied = self.manager("./apply.sh");
        let tally = client.stop();
        let log = succeeded(&applied)?;
        for node in NODES {
            let body = self.https(node, "app.test", "/api/x")?;
            if body != "hello from the api\n" {
                return Err(format!(
                    "/api/ on {} after the rollout: {body:?}",
                    node.name
                ));
            }
        }
        self.figures.render = rollout_seconds(&log).map(|s| (s, tally.clone()));
        tally.none_failed()
    }

    fn refused_config(&mut self) -> Result<(), String> {
        let custom = self.out.join(SERVER).join("nginx-ssl/nginx/custom/http");
        fs::write(custom.join("broken.conf"), "this_is_not_a_directive on;\n").unwrap();
        let version = proxy_version();
        let client = Alternating::start(self.root.clone());
        let applied = self.manager("./apply.sh");
        let tally = client.stop();
        fs::remove_file(custom.join("broken.conf")).unwrap();
        let log = output_text(&applied);
        if applied.status.code() != Some(1) || !log.contains("so it was not rolled out") {
            return Err(format!(
                "apply.sh with a custom file that fails nginx -t; exit {:?}:\n{log}",
                applied.status.code()
            ));
        }
        if proxy_version() != version {
            return Err(
                "the proxies' service changed although nothing should be rolled out".into(),
            );
        }
        tally.none_failed()
    }

    fn rollback(&mut self) -> Result<(), String> {
        // An nginx image that the manager has and the worker cannot get (not pushed to the
        // registry): the check on the manager passes, the worker's proxy cannot start.
        const LOCAL: &str = "certgen-standin/nginx:manager-only";
        succeeded(&MANAGER.docker(&["tag", NGINX_IMAGE, LOCAL]))?;
        let config = self.out.join("certgen.yaml");
        let original = fs::read_to_string(&config).unwrap();
        fs::write(
            &config,
            original.replace(&format!("nginx: {NGINX_IMAGE}"), &format!("nginx: {LOCAL}")),
        )
        .unwrap();
        let render = || {
            certgen()
                .args(["render", "--config", config.to_str().unwrap()])
                .succeeds()
        };
        render();
        let client = Alternating::start(self.root.clone());
        let applied = self.manager("./apply.sh");
        let tally = client.stop();
        fs::write(&config, &original).unwrap();
        render();
        let log = output_text(&applied);
        if applied.status.code() != Some(1) || !log.contains("Swarm rolled every node back") {
            return Err(format!(
                "apply.sh with an image the worker cannot get should fail and say Swarm rolled back; exit {:?}:\n{log}",
                applied.status.code()
            ));
        }
        // Measured, not asserted: Swarm rolls back the node that updated fine while the failed
        // one is still down, so for a moment no node answers (the README's figures).
        say(&format!(
            "swarm, during the rollout Swarm rolled back: {}",
            tally.summary()
        ));
        self.figures.rollback = Some(tally.clone());
        for node in NODES {
            self.https(node, "app.test", "/api/x")?;
        }
        succeeded(&self.manager("./apply.sh"))?;
        self.every_node_serves()?;
        // What is left: one config per file the proxies get, and two secrets per certificate.
        let shipped = crate::helpers::files_under(&self.out.join(SERVER).join("nginx-ssl/nginx"))
            .into_iter()
            .filter(|p| p.file_name().unwrap() != ".gitkeep" && *p != Path::new("custom/README.md"))
            .count();
        for (kind, expected) in [("config", shipped), ("secret", 2 * SITES.len())] {
            let names = MANAGER.docker_out(&[
                kind,
                "ls",
                "--filter",
                "label=com.docker.stack.namespace=certgen-edge",
                "-q",
            ]);
            if names.lines().count() != expected {
                return Err(format!(
                    "{} {kind}s left, not {expected}:\n{names}",
                    names.lines().count()
                ));
            }
        }
        Ok(())
    }

    fn planted_link(&mut self) -> Result<(), String> {
        let key = self
            .out
            .join(SERVER)
            .join("certifications/live/app.test/privkey.pem");
        let target = fs::read_link(&key).unwrap();
        let secrets = MANAGER.docker_out(&["secret", "ls", "-q"]);
        fs::remove_file(&key).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &key).unwrap();
        let applied = self.manager("./apply.sh");
        fs::remove_file(&key).unwrap();
        std::os::unix::fs::symlink(&target, &key).unwrap();
        let log = output_text(&applied);
        if applied.status.code() != Some(1)
            || !log.contains(
                "privkey.pem leads to /etc/passwd, outside certifications/archive/app.test/",
            )
        {
            return Err(format!(
                "apply.sh with a planted link; exit {:?}:\n{log}",
                applied.status.code()
            ));
        }
        if MANAGER.docker_out(&["secret", "ls", "-q"]) != secrets {
            return Err("the secrets changed although nothing should have been deployed".into());
        }
        Ok(())
    }

    fn node_down_during_renewal(&mut self) -> Result<(), String> {
        sh(&format!("docker stop -t 5 {} >/dev/null", WORKER.name));
        let down = wait_up_to(90, "the manager to see the worker down", || {
            MANAGER
                .docker_out(&[
                    "node",
                    "inspect",
                    "--format",
                    "{{.Status.State}}",
                    WORKER.name,
                ])
                .trim()
                == "down"
        });
        // The names point at the manager while the worker is away.
        self.point_names_at(MANAGER);
        let result = down.and_then(|()| {
            let before = MANAGER.serial("app.test");
            self.set_due(true);
            let renewed = self.manager("renew/run.sh");
            self.set_due(false);
            let log = output_text(&renewed);
            if renewed.status.code() != Some(1)
                || !log.contains("rolled out: the proxies serve the new certificates")
                || !log.contains("1 of 2 proxy nodes run a proxy")
            {
                return Err(format!(
                    "renew/run.sh with a node down should renew, roll out and report the node (exit 1); exit {:?}:\n{log}",
                    renewed.status.code()
                ));
            }
            let new = MANAGER.serial("app.test");
            if new == before {
                return Err("the manager's proxy still serves the old certificate".into());
            }
            Ok(new)
        });
        self.point_names_at(WORKER);
        sh(&format!("docker start {} >/dev/null", WORKER.name));
        let new = result?;
        wait_up_to(150, "the worker back, serving the new certificate", || {
            WORKER.serial("app.test") == new
        })?;
        self.every_node_serves()?;
        wait_up_to(90, "the manager to see the worker's proxy running", || {
            MANAGER
                .docker_out(&[
                    "service",
                    "ps",
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.CurrentState}}",
                    "certgen-edge_nginx",
                ])
                .lines()
                .filter(|l| l.starts_with("Running"))
                .count()
                == 2
        })?;
        // The failed run stays the last one until cron's next run, which now succeeds and
        // finds nothing to report.
        let next = succeeded(&self.manager("renew/run.sh"))?;
        if !next.contains("status: OK") {
            return Err(format!("renew/run.sh after the worker came back:\n{next}"));
        }
        succeeded(&self.manager("./status.sh")).map(|_| ())
    }

    /// The id of the proxy task that `node` is meant to run now.
    fn proxy_task(&self, node: Node) -> String {
        MANAGER
            .docker_out(&[
                "service",
                "ps",
                "--quiet",
                "--filter",
                "desired-state=running",
                "--filter",
                &format!("node={}", node.name),
                "certgen-edge_nginx",
            ])
            .trim()
            .to_string()
    }

    /// The worker lost while the rollout of a renewal updates it. Returns which node
    /// Swarm updated first, for the figures.
    fn lose_worker_mid_rollout(&mut self) -> Result<&'static str, String> {
        let (manager_task, worker_task) = (self.proxy_task(MANAGER), self.proxy_task(WORKER));
        let before = MANAGER.serial("app.test");
        let log = self.scratch.path().join("renew-mid-rollout.log");
        self.set_due(true);
        let start = Instant::now();
        let mut renewal = Command::new("docker")
            .args(["exec", "-w", &format!("{INFRA}/{SERVER}"), MANAGER.name])
            .args(["bash", "-c", "renew/run.sh"])
            .stdout(fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The worker goes the moment Swarm's rollout starts to replace its proxy.
        let reached = wait_up_to(240, "the rollout to reach the worker", || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("deploying the stack")
                && self.proxy_task(WORKER) != worker_task
        });
        let order = if self.proxy_task(MANAGER) != manager_task {
            "the manager first"
        } else {
            "the worker first"
        };
        sh(&format!("docker stop -t 1 {} >/dev/null", WORKER.name));
        self.set_due(false);
        let status = reached.and_then(|()| {
            let deadline = Instant::now() + Duration::from_secs(420);
            while renewal.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    return Err("renew/run.sh did not end within 420 s".to_string());
                }
                thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        });
        let _ = renewal.kill();
        let code = renewal.wait().unwrap().code();
        let took = start.elapsed().as_secs_f64();
        let text = fs::read_to_string(&log).unwrap_or_default();
        let result = status.and_then(|()| {
            if code != Some(1)
                || !text.contains(&format!("proxy node {} is down", WORKER.name))
                || !text.contains("1 of 2 proxy nodes run a proxy")
                || text.contains("rolled back")
                || took > 330.0
            {
                return Err(format!(
                    "renew/run.sh with the worker lost mid-rollout ({order}): exit {code:?} after {took:.0} s:\n{text}"
                ));
            }
            let lock = self.manager(&format!("flock -n {INFRA}/{SERVER} true"));
            if !lock.status.success() {
                return Err("the server's lock is still held after the run".into());
            }
            let now = MANAGER.serial("app.test");
            if now == before {
                return Err(format!("the manager still serves the old certificate ({order})"));
            }
            Ok(now)
        });
        sh(&format!("docker start {} >/dev/null", WORKER.name));
        let new = result?;
        wait_up_to(120, "the manager to see the worker back", || {
            MANAGER
                .docker_out(&[
                    "node",
                    "inspect",
                    "--format",
                    "{{.Status.State}}",
                    WORKER.name,
                ])
                .trim()
                == "ready"
        })?;
        // Swarm, or the next run, brings the worker to the current stack; never back to the old
        // certificate on the manager.
        let next = self.manager("renew/run.sh");
        wait_up_to(150, "the worker serving the new certificate", || {
            WORKER.serial("app.test") == new
        })?;
        if MANAGER.serial("app.test") != new {
            return Err(format!(
                "the manager went back to the old certificate ({order})"
            ));
        }
        self.every_node_serves()?;
        // The run after that finds nothing to do or report.
        let last = succeeded(&self.manager("renew/run.sh")).map_err(|e| {
            format!(
                "after the worker came back ({order}), the first run:\n{}\nthe next:\n{e}",
                output_text(&next)
            )
        })?;
        if !last.contains("status: OK") {
            return Err(format!("after the worker came back ({order}):\n{last}"));
        }
        Ok(order)
    }

    /// Swarm picks the order of the nodes (here, in every run seen so far, the manager first):
    /// the worker-first case, a rollout held for the node that is down while the manager is
    /// behind, is covered by scripts::a_rollout_waiting_for_a_node_that_is_down_goes_on_without_it.
    fn node_lost_mid_rollout(&mut self) -> Result<(), String> {
        let order = self.lose_worker_mid_rollout()?;
        say(&format!(
            "swarm: the worker lost mid-rollout, Swarm updating {order}"
        ));
        Ok(())
    }

    /// Points the HTTP-01 names at `node`, through BIND's dynamic updates.
    fn point_names_at(&self, node: Node) {
        let mut update = format!("server 127.0.0.1 {BIND_PORT}\n");
        for (cert, _) in &SITES[..2] {
            update += &format!(
                "update delete {cert}. A\nupdate add {cert}. 5 A {}\n",
                node.address
            );
        }
        update += "send\n";
        let mut nsupdate = Command::new("nsupdate")
            .args(["-y", &format!("hmac-sha256:certgen-e2e:{}", self.secret)])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        nsupdate
            .stdin
            .take()
            .unwrap()
            .write_all(update.as_bytes())
            .unwrap();
        assert!(
            nsupdate.wait().unwrap().success(),
            "nsupdate failed:\n{update}"
        );
    }

    fn keys_stay_home(&mut self) -> Result<(), String> {
        let store = self.out.join(SERVER).join("certifications");
        let mut markers = Vec::new();
        for (cert, _) in SITES {
            let key = fs::read_to_string(store.join(format!("live/{cert}/privkey.pem"))).unwrap();
            // A line of the key's base64 body: any copy of the key in PEM holds it.
            let line = key.lines().nth(1).unwrap().to_string();
            markers.push(line);
        }
        let grep = |what: &str, paths: &[String]| -> Result<(), String> {
            for marker in &markers {
                let mut args = vec!["-rlF", "--", marker.as_str()];
                args.extend(paths.iter().map(String::as_str));
                let out = run("grep", &args);
                let found = String::from_utf8_lossy(&out.stdout).into_owned();
                if !found.trim().is_empty() {
                    return Err(format!("a private key is in {what}:\n{found}"));
                }
            }
            Ok(())
        };
        // The nodes' disks as this machine sees them: their Docker storage (images, containers,
        // volumes, the swarm's raft log) and each node's own root filesystem layer.
        let mut disks = Vec::new();
        for node in NODES {
            disks.push(
                sh_out(&format!(
                    "docker volume inspect --format '{{{{.Mountpoint}}}}' {}",
                    node.name
                ))
                .trim()
                .to_string(),
            );
            disks.push(
                sh_out(&format!(
                    "docker inspect --format '{{{{.GraphDriver.Data.UpperDir}}}}' {}",
                    node.name
                ))
                .trim()
                .to_string(),
            );
        }
        grep("a node's disk", &disks)?;
        // Every log: the nodes' dockerd, every container they ran, the scripts' own.
        let mut logs = String::new();
        for node in NODES {
            logs += &output_text(&run("docker", &["logs", node.name]));
            for id in node.docker_out(&["ps", "-aq"]).split_whitespace() {
                logs += &output_text(&node.docker(&["logs", id]));
            }
        }
        let logs_file = self.scratch.path().join("all-logs.txt");
        fs::write(&logs_file, logs).unwrap();
        grep("a log", &[logs_file.display().to_string()])?;
        // The tree outside certifications/ (what git would see, renew.log included).
        let tree: Vec<String> = fs::read_dir(self.out.join(SERVER))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "certifications")
            .map(|p| p.display().to_string())
            .collect();
        grep("the tree outside certifications/", &tree)?;
        // In a proxy, the key is a Swarm secret: in memory.
        let proxy = WORKER.docker_out(&["ps", "-q", "--filter", "name=certgen-edge_nginx"]);
        let mounts = WORKER.docker_out(&["exec", proxy.trim(), "cat", "/proc/mounts"]);
        let key_mount = mounts
            .lines()
            .find(|l| {
                l.split_whitespace().nth(1) == Some("/etc/letsencrypt/live/app.test/privkey.pem")
            })
            .unwrap_or_default();
        if key_mount.split_whitespace().nth(2) != Some("tmpfs") {
            return Err(format!(
                "the worker's proxy does not hold the key in a tmpfs secret:\n{mounts}"
            ));
        }
        Ok(())
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        remove_nodes();
    }
}

/// The nodes, their storage, their network and the cgroups their dockerd made.
fn remove_nodes() {
    for node in NODES {
        let _ = run("docker", &["rm", "-f", "-v", node.name]);
        let _ = run("docker", &["volume", "rm", node.name]);
        let _ = run(
            "sh",
            &["-c", &format!(
                "for d in /sys/fs/cgroup/{n} /sys/fs/cgroup/*/{n}; do [ -d \"$d\" ] && find \"$d\" -depth -type d -exec rmdir {{}} + ; done 2>/dev/null; true",
                n = node.name
            )],
        );
    }
    let _ = run("docker", &["network", "rm", NETWORK]);
}

/// The version of the proxies' service: it changes with every update of its spec.
fn proxy_version() -> String {
    MANAGER.docker_out(&[
        "service",
        "inspect",
        "--format",
        "{{.Version.Index}}",
        "certgen-edge_nginx",
    ])
}

/// A line on stderr past the test harness's capture, as the e2e suite's stage lines.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The seconds the scripts' log gives for the last deploy of the stack.
fn rollout_seconds(log: &str) -> Option<f64> {
    let rest = log.rsplit("the stack is deployed (in ").next()?;
    rest.split(' ').next()?.parse().ok()
}

/// What the alternating client saw.
#[derive(Clone, Default)]
struct Tally {
    sent: u32,
    failed: u32,
    /// By node 1 and node 2: connections refused, and HTTP/2 requests a stopping nginx sent back
    /// unprocessed (GOAWAY, last stream 0: RFC 9113 6.8 lets the client retry them, as browsers
    /// do). Each was retried on the other node.
    refused: [u32; 2],
    unprocessed: [u32; 2],
    errors: Vec<String>,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "{} requests, {} failed; retried on the other node: refused by node 1 / node 2: {} / {}, sent back unprocessed (HTTP/2 GOAWAY): {} / {}",
            self.sent, self.failed, self.refused[0], self.refused[1], self.unprocessed[0], self.unprocessed[1]
        )
    }

    fn none_failed(&self) -> Result<(), String> {
        say(&format!("swarm: {}", self.summary()));
        if self.sent < 20 {
            return Err(format!("only {} requests were sent", self.sent));
        }
        if self.failed > 0 {
            return Err(format!(
                "{} of {} requests failed: {:?}",
                self.failed,
                self.sent,
                &self.errors[..self.errors.len().min(5)]
            ));
        }
        Ok(())
    }
}

enum Answer {
    Ok,
    Refused,
    Unprocessed,
    Failed(String),
}

/// HTTPS requests to app.test over HTTP/2, alternately to the two nodes, each on a new
/// connection, verified against Pebble's root. A refused connection, or a request sent back
/// unprocessed, is tried once on the other node, as a browser does with a name that has two
/// addresses; a request fails when that fails too, or on any other error or status.
struct Alternating {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<Tally>,
}

impl Alternating {
    fn start(root: PathBuf) -> Alternating {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut tally = Tally::default();
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut turn = 0;
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                tally.sent += 1;
                let first = turn % 2;
                turn += 1;
                let answer = match request(&root, NODES[first]) {
                    Answer::Refused => {
                        tally.refused[first] += 1;
                        request(&root, NODES[1 - first])
                    }
                    Answer::Unprocessed => {
                        tally.unprocessed[first] += 1;
                        request(&root, NODES[1 - first])
                    }
                    answer => answer,
                };
                let why = match answer {
                    Answer::Ok => continue,
                    Answer::Refused => "both nodes refused".to_string(),
                    Answer::Unprocessed => "both nodes sent it back".to_string(),
                    Answer::Failed(why) => why,
                };
                tally.failed += 1;
                tally.errors.push(why);
            }
            tally
        });
        Alternating { stop, handle }
    }

    fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn request(root: &Path, node: Node) -> Answer {
    let out = Command::new("curl")
        .args(["-sSv", "--http2", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--connect-timeout", "2", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("app.test:443:{}", node.address)])
        .arg("https://app.test/")
        .output()
        .unwrap();
    let verbose = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) if out.stdout == b"200" => Answer::Ok,
        Some(7) => Answer::Refused,
        _ if verbose.contains("GOAWAY, error=0, last_stream=0") => Answer::Unprocessed,
        code => Answer::Failed(format!(
            "{}: exit {code:?}, status {}, {}",
            node.name,
            String::from_utf8_lossy(&out.stdout),
            verbose
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        )),
    }
}
