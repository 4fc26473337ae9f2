//! Issuance: the first certificates, the proxy, running again, a switch of ACME server,
//! interruptions and port 80 taken.

use super::*;

impl World {
    pub(super) fn issue(&mut self) -> Result<(), String> {
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

    pub(super) fn proxy(&mut self) -> Result<(), String> {
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
    pub(super) fn https(&self, name: &str) -> Result<u16, String> {
        https_status(&self.root, name)
    }

    /// The serial of the certificate the proxy serves for `name`.
    pub(super) fn served_serial(&self, name: &str) -> String {
        let out = sh_out(&format!(
            "echo | openssl s_client -connect 127.0.0.1:443 -servername {name} 2>/dev/null | openssl x509 -noout -serial"
        ));
        out.trim().to_string()
    }

    pub(super) fn lineage_files(&self) -> Vec<String> {
        ["app.test", IMG, DOWN]
            .iter()
            .map(|c| {
                fs::read_link(self.live(c).join("cert.pem"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub(super) fn git(&mut self) -> Result<(), String> {
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

    pub(super) fn reissue(&mut self) -> Result<(), String> {
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

    /// As if app.test had been issued by Let's Encrypt's staging server, then with an RSA key
    /// (the renewal conf is certbot's data; only the file changes, no request leaves this
    /// machine): each time nginx-for-cert/run.sh orders app.test once anew, and only it.
    pub(super) fn acme_server_switch(&mut self) -> Result<(), String> {
        let conf = self.server().join("certifications/renewal/app.test.conf");
        let line = |key: &str| -> Result<String, String> {
            let text = fs::read_to_string(&conf).unwrap();
            let found = text.lines().find(|l| l.starts_with(key));
            Ok(found.ok_or(format!("no {key} line"))?.to_string())
        };
        for (configured, other, said) in [
            (
                line("server = ")?,
                "server = https://acme-staging-v02.api.letsencrypt.org/directory",
                "certificate app.test was issued by another ACME server",
            ),
            (
                line("key_type = ")?,
                "key_type = rsa",
                "certificate app.test has another key type than ecdsa",
            ),
        ] {
            let text = fs::read_to_string(&conf).unwrap();
            fs::write(&conf, text.replace(&configured, other)).unwrap();
            let before = self.lineage_files();
            let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
            let after = self.lineage_files();
            if !log.contains(said) || after[0] == before[0] {
                return Err(format!("app.test was not ordered again ({other}):\n{log}"));
            }
            if after[1..] != before[1..] {
                return Err(format!(
                    "other certificates changed: {before:?} -> {after:?}"
                ));
            }
            if !fs::read_to_string(&conf).unwrap().contains(&configured) {
                return Err(format!("the lineage does not say {configured} now"));
            }
            let again = succeeded(&self.script("nginx-for-cert/run.sh"))?;
            if self.lineage_files() != after || again.contains("Successfully received certificate")
            {
                return Err(format!("the run after the switch ordered again:\n{again}"));
            }
        }
        port80_closed()
    }

    /// Removes a lineage, as if its certificate were new (test data, not a script).
    pub(super) fn forget(&self, cert: &str) {
        let store = self.server().join("certifications");
        for dir in [format!("live/{cert}"), format!("archive/{cert}")] {
            let _ = fs::remove_dir_all(store.join(dir));
        }
        let _ = fs::remove_file(store.join(format!("renewal/{cert}.conf")));
    }

    pub(super) fn interrupted_issuance(&mut self) -> Result<(), String> {
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

    pub(super) fn killed_issuance(&mut self) -> Result<(), String> {
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

    pub(super) fn issuance_twice_at_once(&mut self) -> Result<(), String> {
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

    pub(super) fn port80_taken(&mut self) -> Result<(), String> {
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

    pub(super) fn issuance_fails(&mut self) -> Result<(), String> {
        // Pebble is down since the renewal with the ACME server down. Take img.test away, as if it were a new certificate.
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
    pub(super) fn interrupt(
        &mut self,
        script: &str,
        signal: &str,
        whole_group: bool,
    ) -> Result<(), String> {
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
