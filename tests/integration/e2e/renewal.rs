//! Renewal: under load, with nothing due, twice at once, with the ACME server down, with
//! an upstream down.

use super::*;

impl World {
    pub(super) fn renew_under_load(&mut self) -> Result<(), String> {
        let before = self.served_serial("app.test");
        self.make_due(true);
        let load = self.app_load();
        thread::sleep(Duration::from_millis(500));
        let out = self.script("renew/run.sh");
        thread::sleep(Duration::from_millis(500));
        let load = load.stop();
        self.make_due(false);
        self.figures.requests_sent = load.sent;
        self.figures.requests_failed = load.failures.len() as u32;
        self.figures.requests_retried = load.retried();
        let log = succeeded(&out)?;
        self.figures.port80_renewal = port80_seconds(&log);
        if !log.contains("reloaded the proxy") {
            return Err(format!("the proxy was not reloaded:\n{log}"));
        }
        let after = self.served_serial("app.test");
        if after == before || after.is_empty() {
            return Err(format!("the proxy still serves {before}"));
        }
        if self.figures.requests_failed > 0 || self.figures.requests_sent == 0 {
            return Err(format!(
                "{} of {} requests failed:\n{}\n{log}",
                self.figures.requests_failed,
                self.figures.requests_sent,
                load.failures.join("\n")
            ));
        }
        port80_closed()
    }

    pub(super) fn reloads(&self) -> usize {
        let logs = self.proxy_compose(&["logs", "nginx"]);
        String::from_utf8_lossy(&logs.stdout)
            .matches("reconfiguring")
            .count()
    }

    pub(super) fn renew_nothing_due(&mut self) -> Result<(), String> {
        let before = (self.lineage_files(), self.reloads());
        let log = succeeded(&self.script("renew/run.sh"))?;
        if !log.contains("no certificate changed; the proxy is not reloaded") {
            return Err(format!("expected no reload:\n{log}"));
        }
        if log.contains("opening port 80") {
            return Err(format!("port 80 was opened with nothing due:\n{log}"));
        }
        let after = (self.lineage_files(), self.reloads());
        if after != before {
            return Err(format!("something changed: {before:?} -> {after:?}"));
        }
        port80_closed()
    }

    pub(super) fn renew_twice_at_once(&mut self) -> Result<(), String> {
        self.make_due(true);
        let spawn_renew = || {
            Command::new(self.server().join("renew/run.sh"))
                .current_dir(self.scratch.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn_renew(), spawn_renew());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        self.make_due(false);
        let logs = format!("{}{}", output_text(&a), output_text(&b));
        if !a.status.success() || !b.status.success() {
            return Err(format!("a run failed:\n{logs}"));
        }
        if !logs.contains("waiting for it") {
            return Err(format!("neither run waited for the other:\n{logs}"));
        }
        // No corruption: each live certificate matches its key, and the proxy serves it.
        for cert in ["app.test", IMG] {
            let live = self.live(cert);
            let pubkey = |args: &str| sh_out(&format!("openssl {args} | openssl sha256"));
            let from_cert = pubkey(&format!(
                "x509 -in {}/cert.pem -noout -pubkey",
                live.display()
            ));
            let from_key = pubkey(&format!("pkey -in {}/privkey.pem -pubout", live.display()));
            if from_cert != from_key {
                return Err(format!("{cert}: the certificate does not match its key"));
            }
        }
        wait_until("the proxy serves app.test", || {
            self.https("app.test") == Ok(200)
        })?;
        port80_closed()
    }

    pub(super) fn renew_with_acme_down(&mut self) -> Result<(), String> {
        let before = self.served_serial("app.test");
        self.pebble_door.stop();
        self.make_due(true);
        let out = self.script("renew/run.sh");
        self.make_due(false);
        let log = output_text(&out);
        if out.status.success() {
            return Err(format!(
                "renew/run.sh exited 0 with the ACME server down:\n{log}"
            ));
        }
        if !log.contains("certbot could not renew: app.test")
            || !log.contains("keeps serving the current certificates")
        {
            return Err(format!("no clear message:\n{log}"));
        }
        if self.https("app.test") != Ok(200) || self.served_serial("app.test") != before {
            return Err("the proxy no longer serves the old certificate".into());
        }
        let (code, status) = self.status(&[]);
        if code != Some(1) || !status.contains("problem: the last renewal run, at ") {
            return Err(format!(
                "status.sh after the failed renewal: exit {code:?}
{status}"
            ));
        }
        port80_closed()
    }

    pub(super) fn upstream_down(&mut self) -> Result<(), String> {
        succeeded(&self.proxy_compose(&["restart"]))?;
        wait_until("the proxy serves app.test after a restart", || {
            self.https("app.test") == Ok(200)
        })?;
        for (name, want) in [("www.app.test", 200), (IMG, 200), (DOWN, 502)] {
            let got = self.https(name);
            if got != Ok(want) {
                return Err(format!("{name}: expected {want}, got {got:?}"));
            }
        }
        Ok(())
    }
}
