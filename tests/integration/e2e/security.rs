//! Hostile requests and a hostile certbot container: forged headers, verified upstreams,
//! planted links; a removed certificate.

use super::*;

impl World {
    pub(super) fn forged_headers(&mut self) -> Result<(), String> {
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
            // No Connection header: the connection to the app is kept (h2c's upgrade is not).
            (
                seen.contains_key("connection"),
                "a Connection header reached the app",
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

    pub(super) fn verified_upstreams(&mut self) -> Result<(), String> {
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
    pub(super) fn as_certbot(&self, command: &str) {
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

    pub(super) fn planted_links(&mut self) -> Result<(), String> {
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

    pub(super) fn removed_certificate(&mut self) -> Result<(), String> {
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
