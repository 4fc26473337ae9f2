//! The swarm the suite runs on: two docker-in-docker nodes, Pebble, BIND and the apps,
//! started once and removed when dropped; the helpers every stage uses.

use super::*;

impl Swarm {
    pub(super) fn start() -> Swarm {
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
        crate::world::pebble_certificate(dir, &format!("IP:127.0.0.1,IP:{HOST}"));
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
            .all(|(port, host)| crate::world::listening_on(host, *port))
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
            .args(STANDIN_IMAGES)
            .succeeds();
        // The wildcard over DNS-01, through BIND; its credentials on the manager, mode 600.
        let config = out.join("certgen.yaml");
        let mut cfg = read_config(&config);
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
            edge.certificates[0].upstream.clone().unwrap(),
        );
        wildcard.challenge = Challenge::Dns01;
        edge.certificates.push(wildcard);
        write_and_render(&config, &cfg);
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
    pub(super) fn manager(&self, command: &str) -> Output {
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

    pub(super) fn https(&self, node: Node, name: &str, path: &str) -> Result<String, String> {
        self.https_with(node, name, path, &[])
    }

    /// [`Swarm::https`] with curl's `extra` arguments (credentials).
    pub(super) fn https_with(
        &self,
        node: Node,
        name: &str,
        path: &str,
        extra: &[&str],
    ) -> Result<String, String> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(&self.root)
            .args(["--resolve", &format!("{name}:443:{}", node.address)])
            .args(extra)
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
    pub(super) fn every_node_serves(&self) -> Result<(), String> {
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

    pub(super) fn set_due(&self, due: bool) {
        for (cert, _) in SITES {
            let renewal = format!("{SERVER}/certifications/renewal/{cert}.conf");
            crate::world::set_due(&self.out.join(renewal), due);
        }
    }

    pub(super) fn serials(&self) -> Vec<String> {
        NODES
            .iter()
            .flat_map(|node| SITES.iter().map(|(_, name)| node.serial(name)))
            .collect()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        remove_nodes();
    }
}

/// The nodes, their storage, their network and the cgroups their dockerd made.
pub(super) fn remove_nodes() {
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
pub(super) fn proxy_version() -> String {
    MANAGER.docker_out(&[
        "service",
        "inspect",
        "--format",
        "{{.Version.Index}}",
        "certgen-edge_nginx",
    ])
}
