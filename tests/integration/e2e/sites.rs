//! The sites the proxy serves: a late certificate, HSTS, site options, custom files.

use super::*;

impl World {
    pub(super) fn late_certificate(&mut self) -> Result<(), String> {
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
    pub(super) fn proxy_started_at(&self) -> String {
        let id = output_text(&self.proxy_compose(&["ps", "-q", "nginx"]));
        sh_out(&format!(
            "docker inspect --format '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {}",
            id.trim()
        ))
    }

    pub(super) fn hsts(&mut self) -> Result<(), String> {
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
        // app.test's own header (headers in certgen.yaml) beside HSTS, on an error of the app too.
        let (code, headers, _) = self.request("app.test", "/missing", &[]);
        let has = |line: &str| headers.lines().any(|l| l.eq_ignore_ascii_case(line));
        if code != 404
            || !has("x-frame-options: DENY")
            || !has("strict-transport-security: max-age=63072000")
        {
            return Err(format!("app.test/missing: {code}, its headers:\n{headers}"));
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
    pub(super) fn request(&self, name: &str, path: &str, extra: &[&str]) -> (u16, String, String) {
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

    pub(super) fn site_options(&mut self) -> Result<(), String> {
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
    pub(super) fn readme_reload(&self, server: &str) -> Output {
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

    pub(super) fn custom_file(&mut self) -> Result<(), String> {
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
        let mut cfg = read_config(&config);
        cfg.servers[0].certificates[0].timeouts.read = NginxTime::parse("61s").unwrap();
        fs::write(&config, cfg.to_yaml()).unwrap();
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

    pub(super) fn broken_custom_file(&mut self) -> Result<(), String> {
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
}
