//! Rollouts: the first issuance, a renewal and a render under load, a configuration nginx
//! refuses, a rollout Swarm rolls back, a planted link.

use super::*;

impl Swarm {
    pub(super) fn first_issuance(&mut self) -> Result<(), String> {
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

    pub(super) fn renewal_under_load(&mut self) -> Result<(), String> {
        let before = self.serials();
        self.set_due(true);
        let client = load_on_both_nodes(self.root.clone());
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
        none_failed(&tally)
    }

    pub(super) fn render_rollout(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        // Behind basic auth: its password file goes to the proxies as a Swarm secret.
        let api = Upstream::parse(&format!("http://{HOST}:{API_PORT}")).unwrap();
        cfg.servers[0].certificates[0].routes.insert(
            PathPrefix::parse("/api/").unwrap(),
            Route {
                auth: Some(RouteAuth::On(Auth {
                    realm: None,
                    users: UsersFile::parse("team").unwrap(),
                })),
                ..Route::to(api)
            },
        );
        write_and_render(&config, &cfg);
        let auth = self.out.join(SERVER).join("secrets/auth");
        fs::create_dir_all(&auth).unwrap();
        let hash = run("openssl", &["passwd", "-6", "-salt", "swarm", "s3cret"]);
        fs::write(auth.join("team"), [b"alice:", &hash.stdout[..]].concat()).unwrap();
        sh(&format!(
            "chmod 700 {0} {0}/auth && chmod 600 {0}/auth/team",
            auth.parent().unwrap().display()
        ));
        let client = load_on_both_nodes(self.root.clone());
        let applied = self.manager("./apply.sh");
        let tally = client.stop();
        let log = succeeded(&applied)?;
        for node in NODES {
            let body = self.https_with(node, "app.test", "/api/x", &["-u", "alice:s3cret"])?;
            let refused = self.https(node, "app.test", "/api/x")?;
            if body != "hello from the api\n" || !refused.contains("401 Authorization Required") {
                return Err(format!(
                    "/api/ on {} after the rollout: {body:?} with the password, {refused:?} without",
                    node.name
                ));
            }
        }
        self.figures.render = rollout_seconds(&log).map(|s| (s, tally.clone()));
        none_failed(&tally)
    }

    pub(super) fn refused_config(&mut self) -> Result<(), String> {
        let custom = self.out.join(SERVER).join("nginx-ssl/nginx/custom/http");
        fs::write(custom.join("broken.conf"), "this_is_not_a_directive on;\n").unwrap();
        let version = proxy_version();
        let client = load_on_both_nodes(self.root.clone());
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
        none_failed(&tally)
    }

    pub(super) fn rollback(&mut self) -> Result<(), String> {
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
        let client = load_on_both_nodes(self.root.clone());
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
            self.https_with(node, "app.test", "/api/x", &["-u", "alice:s3cret"])?;
        }
        succeeded(&self.manager("./apply.sh"))?;
        self.every_node_serves()?;
        // What is left: one config per file the proxies get, two secrets per certificate and
        // one per password file.
        let shipped = crate::helpers::files_under(&self.out.join(SERVER).join("nginx-ssl/nginx"))
            .into_iter()
            .filter(|p| p.file_name().unwrap() != ".gitkeep" && *p != Path::new("custom/README.md"))
            .count();
        for (kind, expected) in [("config", shipped), ("secret", 2 * SITES.len() + 1)] {
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

    pub(super) fn planted_link(&mut self) -> Result<(), String> {
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
}
