//! What tells the team: the monitor's pings and status.sh.

use std::os::unix::fs::PermissionsExt;

use super::*;

impl World {
    /// The pings the monitor got: (path, body).
    pub(super) fn received_pings(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.scratch.path().join("pings.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_yaml::from_str::<serde_yaml::Value>(l).ok())
            .map(|v| {
                (
                    v["path"].as_str().unwrap_or_default().to_string(),
                    v["body"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub(super) fn pings(&mut self) -> Result<(), String> {
        let pings = self.received_pings();
        let success = pings
            .iter()
            .any(|(path, body)| path == "/ping/edge" && body.contains("renew: done"));
        let failure = pings.iter().any(|(path, body)| {
            path == "/ping/edge/fail"
                && body.contains("certbot could not renew")
                && body.len() <= 10_000
        });
        if !success || !failure {
            let paths: Vec<&String> = pings.iter().map(|(p, _)| p).collect();
            return Err(format!("pings received: {paths:?}"));
        }
        // The URL is in no argument of any docker call (ps and docker inspect show
        // those), in no log and in no file of the tree but secrets/notify-url.
        let calls = self.scratch.path().join("docker-calls");
        let out = self.with_docker_recorded(&self.server().join("renew/run.sh"), &calls);
        let log = succeeded(&out)?;
        let pinged = self.received_pings().len() > pings.len();
        let argv = fs::read_to_string(&calls).unwrap_or_default();
        let secret = "/ping/edge";
        let leaks = sh_out(&format!(
            "grep -rlF {secret} {} --exclude-dir=secrets || true",
            self.out.display()
        ));
        if !pinged
            || !argv.contains("/certgen/ping.py")
            || argv.contains(secret)
            || log.contains(secret)
            || !leaks.trim().is_empty()
        {
            return Err(format!("pinged: {pinged}; files naming the URL: {leaks}; docker calls:\n{argv}\nlog:\n{log}"));
        }
        // The monitor down: the run ends as it would have, a few seconds later at most.
        self.monitor.stop();
        let start = Instant::now();
        let out = self.script("renew/run.sh");
        let took = start.elapsed().as_secs_f64();
        let log = succeeded(&out)?;
        if !log.contains("WARNING: could not deliver the ping") || took > 30.0 {
            return Err(format!("monitor down: {took:.1} s\n{log}"));
        }
        Ok(())
    }

    /// status.sh (or `--json`): its exit code and output.
    pub(super) fn status(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(self.server().join("status.sh"))
            .args(args)
            .current_dir(self.scratch.path())
            .output()
            .unwrap();
        (out.status.code(), output_text(&out))
    }

    pub(super) fn status_healthy(&mut self) -> Result<(), String> {
        let (code, text) = self.status(&[]);
        let each = [
            "app.test (app.test, www.app.test)",
            "img.test (img.test)",
            "down.test (down.test)",
        ];
        if code != Some(0)
            || !each.iter().all(|c| text.contains(&format!("  {c}: ")))
            || text.matches("served by the proxy").count() != 3
            || !text.contains("from the configured ACME server")
            || !text.contains("status: OK")
        {
            return Err(format!("exit {code:?}:\n{text}"));
        }
        let (code, json) = self.status(&["--json"]);
        let report: serde_yaml::Value = serde_yaml::from_str(&json)
            .map_err(|e| format!("--json is not JSON ({e}):\n{json}"))?;
        let certificates = report["certificates"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        let facts_hold = certificates.len() == 3
            && certificates.iter().all(|c| {
                c["served"].as_bool() == Some(true)
                    // Pebble picks a profile at random for an order that names none: 90
                    // or 6 days. Either way the certificate is fresh.
                    && c["days_left"]
                        .as_u64()
                        .zip(c["lifetime_days"].as_u64())
                        .is_some_and(|(left, lifetime)| lifetime >= 5 && left + 1 >= lifetime)
                    && c["from_configured_acme_server"].as_bool() == Some(true)
                    && c["expires"].as_str().is_some_and(|e| e.ends_with('Z'))
            });
        if code != Some(0) || report["ok"].as_bool() != Some(true) || !facts_hold {
            return Err(format!("--json, exit {code:?}:\n{json}"));
        }
        Ok(())
    }

    pub(super) fn status_problems(&mut self) -> Result<(), String> {
        // Within the threshold: warn below ten years, which every certificate is.
        let config = self.out.join("certgen.yaml");
        let text = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&text, &config).unwrap();
        cfg.warn_days = Some(WarnDays::try_from(3650).unwrap());
        write_and_render(&config, &cfg);
        let (code, out) = self.status(&[]);
        fs::write(&config, text).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        if code != Some(1)
            || !out.contains("problem: app.test: expires in")
            || !out.contains("within the warning threshold of 3650")
        {
            return Err(format!("warn_days 3650: exit {code:?}\n{out}"));
        }
        // A missing certificate.
        self.forget(DOWN);
        let (code, out) = self.status(&[]);
        let (_, metrics) = self.status(&["--prometheus"]);
        let missing = out.contains(&format!("problem: {DOWN}: no certificate yet"))
            && Self::sample(&metrics, "certgen_certificate_present", DOWN).as_deref() == Some("0");
        succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if code != Some(1) || !missing {
            return Err(format!("{DOWN} missing: exit {code:?}\n{out}"));
        }
        // The proxy down.
        succeeded(&self.proxy_compose(&["stop"]))?;
        let (code, out) = self.status(&[]);
        let (_, metrics) = self.status(&["--prometheus"]);
        succeeded(&self.proxy_compose(&["start"]))?;
        let not_served = Self::sample(&metrics, "certgen_proxy_up", "").as_deref() == Some("0")
            && Self::sample(&metrics, "certgen_certificate_served", "app.test").as_deref()
                == Some("0");
        if !not_served {
            return Err(format!("proxy down, the metrics:\n{metrics}"));
        }
        wait_until("the proxy again", || self.https("app.test") == Ok(200))?;
        if code != Some(1) || !out.contains("problem: the proxy is not running") {
            return Err(format!("proxy down: exit {code:?}\n{out}"));
        }
        let (code, out) = self.status(&["--bogus"]);
        if code != Some(2) {
            return Err(format!("a usage error: exit {code:?}\n{out}"));
        }
        wait_until("a healthy status again", || self.status(&[]).0 == Some(0))
    }

    /// The value of `metric` for certificate `cert` of server edge in `text` (Prometheus's
    /// text format), or of the server's own `metric` when `cert` is empty.
    fn sample(text: &str, metric: &str, cert: &str) -> Option<String> {
        let labels = if cert.is_empty() {
            format!("{{server=\"{SERVER}\"}} ")
        } else {
            format!("{{server=\"{SERVER}\",certificate=\"{cert}\"}} ")
        };
        let prefix = format!("{metric}{labels}");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(str::to_string)
    }

    /// `promtool check metrics` on `text`: its complaints, if any.
    fn promtool(text: &str) -> Result<(), String> {
        let out = crate::helpers::run_with_input("promtool", &["check", "metrics"], text)
            .map_err(|e| format!("promtool (.ci/setup installs it): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "promtool check metrics: {}\n{text}",
                output_text(&out)
            ))
        }
    }

    pub(super) fn metrics(&mut self) -> Result<(), String> {
        let (code, now) = self.status(&["--prometheus"]);
        Self::promtool(&now)?;
        let served = ["app.test", IMG, DOWN]
            .iter()
            .all(|c| Self::sample(&now, "certgen_certificate_served", c).as_deref() == Some("1"));
        if code != Some(0)
            || !served
            || Self::sample(&now, "certgen_problems", "").as_deref() != Some("0")
        {
            return Err(format!(
                "status.sh --prometheus on a healthy tree, exit {code:?}:\n{now}"
            ));
        }
        let file = self
            .scratch
            .path()
            .join(format!("metrics/certgen-{SERVER}.prom"));
        let expiry = |text: &str| {
            Self::sample(
                text,
                "certgen_certificate_expiry_timestamp_seconds",
                "app.test",
            )
        };
        let before = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        self.set_due(SERVER, "app.test", true);
        let renewed = self.script("renew/run.sh");
        self.set_due(SERVER, "app.test", false);
        succeeded(&renewed)?;
        let after = fs::read_to_string(&file).unwrap();
        Self::promtool(&after)?;
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        if expiry(&after).is_none() || expiry(&after) == expiry(&before) || mode != 0o644 {
            return Err(format!(
                "after a renewal (mode {mode:o}), before:\n{before}\nafter:\n{after}"
            ));
        }
        if Self::sample(&after, "certgen_last_renewal_success", "").as_deref() != Some("1") {
            return Err(format!(
                "the renewal's success is not in the metrics:\n{after}"
            ));
        }
        Ok(())
    }
}
