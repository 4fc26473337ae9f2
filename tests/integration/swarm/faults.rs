//! Nodes lost: a node down during a renewal, a worker lost mid-rollout; keys stay on the
//! manager.

use super::*;

impl Swarm {
    pub(super) fn node_down_during_renewal(&mut self) -> Result<(), String> {
        sh(&format!("docker stop -t 5 {} >/dev/null", WORKER.name));
        let down = wait_up_to(90, "the manager to see the worker down", || {
            WORKER.state() == "down"
        });
        // The names point at the manager while the worker is away.
        self.point_names_at(MANAGER);
        let result = down.and_then(|()| {
            let before = MANAGER.serial("app.test");
            self.set_due(true);
            let renewed = self.manager("renew/run.sh");
            self.set_due(false);
            let log = output_text(&renewed);
            if renewed.status.code() != Some(1)
                || !log.contains("rolled out: the proxies serve the new certificates")
                || !log.contains("1 of 2 proxy nodes run a proxy")
            {
                return Err(format!(
                    "renew/run.sh with a node down should renew, roll out and report the node (exit 1); exit {:?}:\n{log}",
                    renewed.status.code()
                ));
            }
            let new = MANAGER.serial("app.test");
            if new == before {
                return Err("the manager's proxy still serves the old certificate".into());
            }
            Ok(new)
        });
        self.point_names_at(WORKER);
        sh(&format!("docker start {} >/dev/null", WORKER.name));
        let new = result?;
        wait_up_to(150, "the worker back, serving the new certificate", || {
            WORKER.serial("app.test") == new
        })?;
        self.every_node_serves()?;
        wait_up_to(90, "the manager to see the worker's proxy running", || {
            MANAGER
                .docker_out(&[
                    "service",
                    "ps",
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.CurrentState}}",
                    "certgen-edge_nginx",
                ])
                .lines()
                .filter(|l| l.starts_with("Running"))
                .count()
                == 2
        })?;
        // The failed run stays the last one until cron's next run, which now succeeds and
        // finds nothing to report.
        let next = succeeded(&self.manager("renew/run.sh"))?;
        if !next.contains("status: OK") {
            return Err(format!("renew/run.sh after the worker came back:\n{next}"));
        }
        succeeded(&self.manager("./status.sh")).map(|_| ())
    }

    /// The id of the proxy task that `node` is meant to run now.
    pub(super) fn proxy_task(&self, node: Node) -> String {
        MANAGER
            .docker_out(&[
                "service",
                "ps",
                "--quiet",
                "--filter",
                "desired-state=running",
                "--filter",
                &format!("node={}", node.name),
                "certgen-edge_nginx",
            ])
            .trim()
            .to_string()
    }

    /// The worker lost while the rollout of a renewal updates it. Returns which node
    /// Swarm updated first, for the figures.
    pub(super) fn lose_worker_mid_rollout(&mut self) -> Result<&'static str, String> {
        let (manager_task, worker_task) = (self.proxy_task(MANAGER), self.proxy_task(WORKER));
        let before = MANAGER.serial("app.test");
        let log = self.scratch.path().join("renew-mid-rollout.log");
        self.set_due(true);
        let start = Instant::now();
        let mut renewal = Command::new("docker")
            .args(["exec", "-w", &format!("{INFRA}/{SERVER}"), MANAGER.name])
            .args(["bash", "-c", "renew/run.sh"])
            .stdout(fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The worker goes the moment Swarm's rollout starts to replace its proxy.
        let reached = wait_up_to(240, "the rollout to reach the worker", || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("deploying the stack")
                && self.proxy_task(WORKER) != worker_task
        });
        let order = if self.proxy_task(MANAGER) != manager_task {
            "the manager first"
        } else {
            "the worker first"
        };
        sh(&format!("docker stop -t 1 {} >/dev/null", WORKER.name));
        self.set_due(false);
        let status = reached.and_then(|()| {
            let deadline = Instant::now() + Duration::from_secs(420);
            while renewal.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    return Err("renew/run.sh did not end within 420 s".to_string());
                }
                thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        });
        let _ = renewal.kill();
        let code = renewal.wait().unwrap().code();
        let took = start.elapsed().as_secs_f64();
        let text = fs::read_to_string(&log).unwrap_or_default();
        let result = status.and_then(|()| {
            if code != Some(1)
                || !text.contains(&format!("proxy node {} is down", WORKER.name))
                || !text.contains("1 of 2 proxy nodes run a proxy")
                || text.contains("rolled back")
                || took > 330.0
            {
                return Err(format!(
                    "renew/run.sh with the worker lost mid-rollout ({order}): exit {code:?} after {took:.0} s:\n{text}"
                ));
            }
            let lock = self.manager(&format!("flock -n {INFRA}/{SERVER} true"));
            if !lock.status.success() {
                return Err("the server's lock is still held after the run".into());
            }
            let now = MANAGER.serial("app.test");
            if now == before {
                return Err(format!("the manager still serves the old certificate ({order})"));
            }
            Ok(now)
        });
        sh(&format!("docker start {} >/dev/null", WORKER.name));
        let new = result?;
        wait_up_to(120, "the manager to see the worker back", || {
            WORKER.state() == "ready"
        })?;
        // Swarm, or the next run, brings the worker to the current stack; never back to the old
        // certificate on the manager.
        let next = self.manager("renew/run.sh");
        wait_up_to(150, "the worker serving the new certificate", || {
            WORKER.serial("app.test") == new
        })?;
        if MANAGER.serial("app.test") != new {
            return Err(format!(
                "the manager went back to the old certificate ({order})"
            ));
        }
        self.every_node_serves()?;
        // The run after that finds nothing to do or report.
        let last = succeeded(&self.manager("renew/run.sh")).map_err(|e| {
            format!(
                "after the worker came back ({order}), the first run:\n{}\nthe next:\n{e}",
                output_text(&next)
            )
        })?;
        if !last.contains("status: OK") {
            return Err(format!("after the worker came back ({order}):\n{last}"));
        }
        Ok(order)
    }

    /// Swarm picks the order of the nodes (here, in every run seen so far, the manager first):
    /// the worker-first case, a rollout held for the node that is down while the manager is
    /// behind, is covered by scripts::a_rollout_waiting_for_a_node_that_is_down_goes_on_without_it.
    pub(super) fn node_lost_mid_rollout(&mut self) -> Result<(), String> {
        let order = self.lose_worker_mid_rollout()?;
        say(&format!(
            "swarm: the worker lost mid-rollout, Swarm updating {order}"
        ));
        Ok(())
    }

    /// Points the HTTP-01 names at `node`, through BIND's dynamic updates.
    pub(super) fn point_names_at(&self, node: Node) {
        let mut update = format!("server 127.0.0.1 {BIND_PORT}\n");
        for (cert, _) in &SITES[..2] {
            update += &format!(
                "update delete {cert}. A\nupdate add {cert}. 5 A {}\n",
                node.address
            );
        }
        update += "send\n";
        let mut nsupdate = Command::new("nsupdate")
            .args(["-y", &format!("hmac-sha256:certgen-e2e:{}", self.secret)])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        nsupdate
            .stdin
            .take()
            .unwrap()
            .write_all(update.as_bytes())
            .unwrap();
        assert!(
            nsupdate.wait().unwrap().success(),
            "nsupdate failed:\n{update}"
        );
    }

    pub(super) fn keys_stay_home(&mut self) -> Result<(), String> {
        let store = self.out.join(SERVER).join("certifications");
        let mut markers = Vec::new();
        for (cert, _) in SITES {
            let key = fs::read_to_string(store.join(format!("live/{cert}/privkey.pem"))).unwrap();
            // A line of the key's base64 body: any copy of the key in PEM holds it.
            let line = key.lines().nth(1).unwrap().to_string();
            markers.push(line);
        }
        let grep = |what: &str, paths: &[String]| -> Result<(), String> {
            for marker in &markers {
                let mut args = vec!["-rlF", "--", marker.as_str()];
                args.extend(paths.iter().map(String::as_str));
                let out = run("grep", &args);
                let found = String::from_utf8_lossy(&out.stdout).into_owned();
                if !found.trim().is_empty() {
                    return Err(format!("a private key is in {what}:\n{found}"));
                }
            }
            Ok(())
        };
        // The nodes' disks as this machine sees them: their Docker storage (images, containers,
        // volumes, the swarm's raft log) and each node's own root filesystem layer.
        let mut disks = Vec::new();
        for node in NODES {
            disks.push(
                sh_out(&format!(
                    "docker volume inspect --format '{{{{.Mountpoint}}}}' {}",
                    node.name
                ))
                .trim()
                .to_string(),
            );
            disks.push(
                sh_out(&format!(
                    "docker inspect --format '{{{{.GraphDriver.Data.UpperDir}}}}' {}",
                    node.name
                ))
                .trim()
                .to_string(),
            );
        }
        grep("a node's disk", &disks)?;
        // Every log: the nodes' dockerd, every container they ran, the scripts' own.
        let mut logs = String::new();
        for node in NODES {
            logs += &output_text(&run("docker", &["logs", node.name]));
            for id in node.docker_out(&["ps", "-aq"]).split_whitespace() {
                logs += &output_text(&node.docker(&["logs", id]));
            }
        }
        let logs_file = self.scratch.path().join("all-logs.txt");
        fs::write(&logs_file, logs).unwrap();
        grep("a log", &[logs_file.display().to_string()])?;
        // The tree outside certifications/ (what git would see, renew.log included).
        let tree: Vec<String> = fs::read_dir(self.out.join(SERVER))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "certifications")
            .map(|p| p.display().to_string())
            .collect();
        grep("the tree outside certifications/", &tree)?;
        // In a proxy, the key is a Swarm secret: in memory.
        let proxy = WORKER.docker_out(&["ps", "-q", "--filter", "name=certgen-edge_nginx"]);
        let mounts = WORKER.docker_out(&["exec", proxy.trim(), "cat", "/proc/mounts"]);
        let key_mount = mounts
            .lines()
            .find(|l| {
                l.split_whitespace().nth(1) == Some("/etc/letsencrypt/live/app.test/privkey.pem")
            })
            .unwrap_or_default();
        if key_mount.split_whitespace().nth(2) != Some("tmpfs") {
            return Err(format!(
                "the worker's proxy does not hold the key in a tmpfs secret:\n{mounts}"
            ));
        }
        Ok(())
    }
}
