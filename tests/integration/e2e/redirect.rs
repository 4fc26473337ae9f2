//! `http: redirect`: the proxy holds port 80 for the challenge and redirects the rest.

use super::*;

impl World {
    pub(super) fn front(&self) -> PathBuf {
        self.out.join(FRONT)
    }

    pub(super) fn front_script(&self, rel: &str) -> Output {
        self.script_of(FRONT, rel)
    }

    pub(super) fn front_compose(&self, args: &[&str]) -> Output {
        self.compose_of(FRONT, args)
    }

    pub(super) fn redirect_first_issuance(&mut self) -> Result<(), String> {
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
        if !self
            .front()
            .join("certifications/live")
            .join(WWW_R1)
            .join("cert.pem")
            .exists()
        {
            return Err(format!("no certificate for {WWW_R1}"));
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

    pub(super) fn redirect_proxy(&mut self) -> Result<(), String> {
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
        // The redirect-only certificate: to the apex over HTTPS, path and query kept, with HSTS.
        let (code, head, _) = self.request(WWW_R1, "/some/path?q=1&x=2", &[]);
        let lower = head.to_ascii_lowercase();
        if code != 301
            || !lower.contains("\nlocation: https://r1.test/some/path?q=1&x=2\n")
            || !lower.contains("\nstrict-transport-security: max-age=")
        {
            return Err(format!(
                "https://{WWW_R1}/some/path?q=1&x=2: {code}\n{head}"
            ));
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

    pub(super) fn redirect_renewal(&mut self) -> Result<(), String> {
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
        self.figures.redirect_requests_retried = load.retried();
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

    pub(super) fn redirect_new_certificate(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let upstream = cfg.servers[1].certificates[0].upstream.clone().unwrap();
        cfg.servers[1].certificates.push(Certificate::new(
            vec![DomainName::parse("r2.test").unwrap()],
            upstream,
        ));
        write_and_render(&config, &cfg);
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
