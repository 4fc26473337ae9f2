//! DNS-01 against BIND and a second Pebble: credentials checked, wildcard issuance and
//! renewal, a server mixing challenges, a link planted mid-run.

use super::*;

impl World {
    /// BIND for the zone e2e.test (dynamic updates with a TSIG key), a second Pebble that
    /// resolves through it, and `wild` in certgen.yaml: a DNS-01 certificate for e2e.test and
    /// *.e2e.test, with the credentials the README asks for. Returns the credentials' text.
    pub(super) fn dns_setup(&mut self) -> Result<String, String> {
        let dir = self.scratch.path().join("dns");
        fs::create_dir_all(&dir).unwrap();
        let bridge = docker_bridge_address();
        let (key, secret) = tsig_key()?;
        // For nsupdate (the CAA stage).
        fs::write(dir.join("tsig.key"), &key).unwrap();
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
        // The CAA checks ask BIND, which serves the test zone.
        wild.caa_resolver = Some(CaaResolver::parse(&format!("{bridge}:{BIND_PORT}")).unwrap());
        wild.dns = Some(Dns {
            provider: DnsProvider::Rfc2136,
            propagation_seconds: Some(1.try_into().unwrap()),
            image: Some(ImageRef::parse(DNS_IMAGE).unwrap()),
        });
        let upstream = wild.certificates[0].upstream.clone().unwrap();
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
        write_and_render(&config, &cfg);
        Ok(format!(
            "dns_rfc2136_server = {bridge}\ndns_rfc2136_port = {BIND_PORT}\n\
             dns_rfc2136_name = certgen-e2e\ndns_rfc2136_secret = {secret}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n"
        ))
    }

    pub(super) fn wild(&self) -> PathBuf {
        self.out.join(WILD)
    }

    pub(super) fn dns_credentials_checked(&mut self) -> Result<(), String> {
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

    pub(super) fn https_wild(&self, name: &str) -> Result<u16, String> {
        https_status(&self.root2, name)
    }

    pub(super) fn txt_records(&self) -> String {
        sh_out(&format!(
            "dig +short @127.0.0.1 -p {BIND_PORT} _acme-challenge.e2e.test TXT"
        ))
    }

    pub(super) fn dns_issuance(&mut self) -> Result<(), String> {
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

    pub(super) fn dns_renewal(&mut self) -> Result<(), String> {
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

    pub(super) fn dns_mixed(&mut self) -> Result<(), String> {
        // The other web server leaves port 80 to the HTTP-01 certificate.
        if let Some(mut squatter) = self.dns_helpers.0.pop() {
            let _ = squatter.kill();
            let _ = squatter.wait();
        }
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let wild = server_named(&mut cfg, WILD);
        let upstream = wild.certificates[0].upstream.clone().unwrap();
        wild.certificates.push(Certificate::new(
            vec![DomainName::parse("mixed.e2e.test").unwrap()],
            upstream,
        ));
        write_and_render(&config, &cfg);
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
    pub(super) fn planted_link_mid_run(&mut self) -> Result<(), String> {
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
        let wild = server_named(&mut cfg, WILD);
        wild.images = Some(ImageOverrides {
            nginx: None,
            certbot: Some(ImageRef::parse(image).unwrap()),
        });
        write_and_render(&config, &cfg);
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
}
