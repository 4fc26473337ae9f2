//! The server-side workflow: apply.sh after a render, an nginx image that refuses the
//! configuration, the cron line, a moved tree.

use super::*;

impl World {
    /// Runs `program` with a stand-in `crontab` (the table in the file `table`): mounted over
    /// /usr/local/sbin, the first folder of the scripts' own PATH, in a mount namespace of its
    /// own, so the machine's real crontab is never touched.
    /// Runs `program` with `args` and a stand-in COMMAND (a shell script) first on the scripts'
    /// PATH: /usr/local/sbin, in a mount namespace of its own, holds the stand-in alone.
    pub(super) fn with_stub(
        &self,
        command: &str,
        script: &str,
        program: &Path,
        args: &[&str],
    ) -> Output {
        let stub = self.scratch.path().join(format!("stub-{command}"));
        fs::create_dir_all(&stub).unwrap();
        fs::write(stub.join(command), script).unwrap();
        sh(&format!("chmod 0755 {}/{command}", stub.display()));
        Command::new("unshare")
            .args(["--mount", "--", "bash", "-c"])
            .arg("mount --bind \"$0\" /usr/local/sbin && exec \"$@\"")
            .arg(&stub)
            .arg(program)
            .args(args)
            .current_dir(program.parent().unwrap())
            .output()
            .unwrap()
    }

    /// Runs `program` with every `docker` call it makes recorded in `calls`, one line each, as
    /// `ps` would have shown it, before the real docker runs it.
    pub(super) fn with_docker_recorded(&self, program: &Path, calls: &Path) -> Output {
        let real = sh_out("command -v docker");
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >>{}\nexec {} \"$@\"\n",
            calls.display(),
            real.trim()
        );
        self.with_stub("docker", &script, program, &[])
    }

    /// Runs `program` with a `crontab` whose table is the file `table`.
    pub(super) fn with_stub_crontab(&self, table: &Path, program: &Path, args: &[&str]) -> Output {
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in\n  -l) [ -e {t} ] || {{ echo 'no crontab for root' >&2; exit 1; }}; cat {t} ;;\n  -) cat > {t}.new && mv {t}.new {t} ;;\n  *) exit 2 ;;\nesac\n",
            t = table.display()
        );
        self.with_stub("crontab", &script, program, args)
    }

    pub(super) fn install_cron(&mut self) -> Result<(), String> {
        let table = self.scratch.path().join("table");
        fs::write(
            &table,
            "MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n",
        )
        .unwrap();
        let script = self.server().join("renew/run.sh");
        for _ in 0..2 {
            succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
        }
        let installed = fs::read_to_string(&table).unwrap();
        let lines = renewal_lines(&installed);
        let quoted = format!("'{}'", script.display());
        if !installed.starts_with("MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n")
            || lines.len() != 1
            || !lines[0].contains(&quoted)
        {
            return Err(format!("after installing twice:\n{installed}"));
        }
        // The line's command, as cron runs it: sh, from /, with cron's bare environment. Pebble is
        // down now, but nothing is due, so certbot has nothing to order.
        let command = lines[0]
            .splitn(6, ' ')
            .nth(5)
            .ok_or("a cron line has five time fields")?;
        // A renew.log past its cap (1 MiB): the run rotates it and logs into a new one.
        let logs = self.server().join("renew");
        let filler = "an earlier run\n".repeat(80_000);
        fs::write(logs.join("renew.log"), &filler).unwrap();
        let out = Command::new("/bin/sh")
            .args(["-c", command])
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/root")
            .env("SHELL", "/bin/sh")
            .output()
            .unwrap();
        let log = fs::read_to_string(logs.join("renew.log")).unwrap_or_default();
        if !log.contains("renew: done") {
            return Err(format!(
                "the cron command did not finish (exit {:?}):\n{log}{}",
                out.status.code(),
                output_text(&out)
            ));
        }
        let rotated = fs::read_to_string(logs.join("renew.log.1")).unwrap_or_default();
        if !rotated.starts_with(&filler) || log.contains("an earlier run") || log.len() > 100_000 {
            return Err(format!(
                "renew.log was not rotated: renew.log {} bytes, renew.log.1 {} bytes",
                log.len(),
                rotated.len()
            ));
        }
        // A second tree with a server of the same name (a staging copy) installs its
        // own line; each keeps the other's, whichever installs last.
        let staging = self.scratch.path().join("staging");
        sh(&format!(
            "mkdir -p {s} && cp -a {} {s}/ && rm -rf {s}/edge/renew/tree-id {s}/edge/certifications",
            self.server().display(),
            s = staging.display()
        ));
        let other = staging.join("edge/renew/run.sh");
        succeeded(&self.with_stub_crontab(&table, &other, &["--install-cron"]))?;
        succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
        let installed = fs::read_to_string(&table).unwrap();
        let markers: Vec<&str> = installed
            .lines()
            .filter_map(|l| l.split("# certgen-tree:").nth(1))
            .collect();
        if markers.len() != 2
            || markers[0] == markers[1]
            || !installed.contains(&format!("'{}'", other.display()))
            || !installed.contains(&quoted)
        {
            return Err(format!("two trees with one server name:\n{installed}"));
        }
        // The staging copy goes, and its line with it, as its operator would remove them.
        let _ = fs::remove_dir_all(&staging);
        let kept: String = installed
            .lines()
            .filter(|l| !l.contains(staging.to_str().unwrap()))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(&table, kept).unwrap();
        // The log names hosts and paths: readable by root alone, though cron's shell
        // created it world-readable.
        let modes = sh_out(&format!(
            "stat -c %a {0}/renew.log {0}/renew.log.1",
            logs.display()
        ));
        if modes.split_whitespace().any(|m| m != "600") {
            return Err(format!("renew.log and renew.log.1 have modes {modes}"));
        }
        Ok(())
    }

    /// Images.nginx set to an nginx that refuses the configuration.
    pub(super) fn older_nginx_image(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let original = fs::read_to_string(&config).unwrap();
        let mut cfg = Config::from_yaml(&original, &config).unwrap();
        cfg.servers[0].images = Some(ImageOverrides {
            nginx: Some(ImageRef::parse(OLD_NGINX_ALIAS).unwrap()),
            certbot: None,
        });
        write_and_render(&config, &cfg);
        let started = self.proxy_started_at();
        let load = self.app_load();
        let applied = self.readme_reload(SERVER);
        thread::sleep(Duration::from_millis(300));
        let load = load.stop();
        let log = output_text(&applied);
        let result = if applied.status.code() != Some(1)
            || !log.contains("add_header_inherit")
            || !log.contains("the running proxy keeps serving")
        {
            Err(format!(
                "apply.sh with an older nginx (exit {:?}):\n{log}",
                applied.status.code()
            ))
        } else if self.proxy_started_at() != started {
            Err("the proxy was restarted with an image that refuses its configuration".into())
        } else {
            load.none_failed()
        };
        fs::write(&config, original).unwrap();
        certgen()
            .args(["render", "--config", config.to_str().unwrap()])
            .succeeds();
        result?;
        self.readme_apply(SERVER).map(|_| ())
    }

    /// The README's command to apply a change: its output, or why it failed.
    pub(super) fn readme_apply(&self, server: &str) -> Result<String, String> {
        succeeded(&self.readme_reload(server))
    }

    pub(super) fn apply_after_render(&mut self) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(&fs::read_to_string(&config).unwrap(), &config).unwrap();
        let edge = &mut cfg.servers[0];
        let app = edge.certificates[0].upstream.clone().unwrap();
        let img = edge
            .certificates
            .iter_mut()
            .find(|c| c.name() == IMG)
            .ok_or("no img.test certificate")?;
        img.upstream = Some(app.clone());
        edge.certificates.push(Certificate::new(
            vec![DomainName::parse(NEW_SITE).unwrap()],
            app,
        ));
        write_and_render(&config, &cfg);
        let started = self.proxy_started_at();
        let load = self.app_load();
        thread::sleep(Duration::from_millis(300));
        let applied = self.readme_apply(SERVER);
        thread::sleep(Duration::from_millis(300));
        let load = load.stop();
        let log = applied?;
        if !log.contains("reloaded the proxy's configuration")
            || !log.contains(&format!("certificate {NEW_SITE} is not on disk yet"))
        {
            return Err(format!("apply.sh:\n{log}"));
        }
        if self.proxy_started_at() != started {
            return Err("apply.sh restarted the proxy for a change a reload applies".into());
        }
        load.none_failed()?;
        let (code, _, answer) = self.request(IMG, "/", &[]);
        if code != 200 || answer.trim() != "hello from the app" {
            return Err(format!(
                "{IMG} after its upstream changed: {code} {answer:?}"
            ));
        }
        // Nothing changed since: apply again changes nothing, reloads only.
        let again = self.readme_apply(SERVER)?;
        if again.contains("recreated") || again.contains("started the proxy") {
            return Err(format!("a second apply.sh:\n{again}"));
        }
        succeeded(&self.script("nginx-for-cert/run.sh"))?;
        wait_until("the new site over verified TLS", || {
            self.https(NEW_SITE) == Ok(200)
        })
    }

    pub(super) fn moved_tree(&mut self) -> Result<(), String> {
        let old = self.out.clone();
        let moved = self.scratch.path().join("clone/infra");
        fs::create_dir_all(moved.parent().unwrap()).unwrap();
        fs::rename(&old, &moved).unwrap();
        self.out = moved.clone();
        let result = (|| {
            let log = self.readme_apply(SERVER)?;
            if !log.contains("recreated the proxy") {
                return Err(format!("apply.sh in the moved tree:\n{log}"));
            }
            wait_until("app.test from the moved tree", || {
                self.https("app.test") == Ok(200)
            })?;
            let mounts = sh_out(&format!(
                "docker inspect --format '{{{{range .Mounts}}}}{{{{.Source}}}} {{{{end}}}}' $(docker compose -f {} ps -q nginx)",
                moved.join("edge/nginx-ssl/docker-compose.yml").display()
            ));
            if !mounts.contains(moved.to_str().unwrap())
                || mounts.contains(&format!("{} ", old.display()))
            {
                return Err(format!("the proxy's mounts: {mounts}"));
            }
            let table = self.scratch.path().join("table");
            let script = moved.join("edge/renew/run.sh");
            succeeded(&self.with_stub_crontab(&table, &script, &["--install-cron"]))?;
            let installed = fs::read_to_string(&table).unwrap();
            let runs = renewal_lines(&installed);
            if runs.len() != 1
                || !runs[0].contains(&format!("'{}'", script.display()))
                || !installed.contains("/usr/local/bin/backup.sh")
            {
                return Err(format!(
                    "after --install-cron in the moved tree:\n{installed}"
                ));
            }
            let named = sh_out(&format!(
                "grep -rlF {} {} --exclude-dir=certifications || true",
                old.display(),
                moved.display()
            ));
            if !named.trim().is_empty() {
                return Err(format!(
                    "files that name the old path {}:\n{named}",
                    old.display()
                ));
            }
            Ok(())
        })();
        // Back where the other stages expect it.
        fs::rename(&moved, &old).unwrap();
        self.out = old;
        result?;
        self.readme_apply(SERVER).map(|_| ())
    }
}

/// The lines of a crontab that run a renewal.
fn renewal_lines(crontab: &str) -> Vec<&str> {
    crontab
        .lines()
        .filter(|l| l.contains("renew/run.sh"))
        .collect()
}
