//! Swarm: what a deploy gives the proxies, and the rollout decisions with a stand-in docker.

use super::*;

// What a swarm deploy gives the proxies, from lib.sh's stack_files run as the scripts
// run it (bash, no Docker): every file of nginx-ssl/nginx as a config at its place in the proxy,
// each certificate on disk as two secrets (none for one not obtained), names that follow the
// content (a changed file, a renewed certificate: a new name; the rest unchanged), a key mode
// of 0400, and a planted link out of archive/ refused. Breakages caught: a file left out or
// put elsewhere, names not by content (no rollout on renewal), a missing certificate's secret
// (a failed deploy), the link check dropped.
#[test]
fn a_swarm_deploy_gives_the_proxies_every_file_and_each_certificate_by_content() {
    let repo = Repo::rendered(
        "renew_schedule: 1 2,14 * * *\nservers:\n- name: edge\n  engine: swarm\n  certificates:\n  \
         - domains: [a.example.com]\n    upstream: http://app:80\n  - domains: [b.example.com]\n    \
         upstream: http://app:80\n",
    );
    let server = repo.path().join("edge");
    // a.example.com is on disk as certbot leaves it (live/ links into archive/); b is not.
    let archive = server.join("certifications/archive/a.example.com");
    let live = server.join("certifications/live/a.example.com");
    fs::create_dir_all(&archive).unwrap();
    fs::create_dir_all(&live).unwrap();
    for file in ["fullchain", "privkey"] {
        fs::write(archive.join(format!("{file}1.pem")), format!("{file} 1\n")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../archive/a.example.com/{file}1.pem"),
            live.join(format!("{file}.pem")),
        )
        .unwrap();
    }
    let stage = repo.tmp().join("stage");
    let stack_files = || {
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir(&stage).unwrap();
        let out = Command::new("bash")
            .args([
                "-c",
                "set -Eeuo pipefail; label=test; . ./lib.sh; stack_files \"$0\"",
            ])
            .arg(&stage)
            .env("server_dir", &server)
            .current_dir(&server)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text, err)
    };
    let (ok, text, err) = stack_files();
    assert!(ok, "{err}");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let nginx = &yaml["services"]["nginx"];
    let targets = |kind: &str| -> Vec<(String, String)> {
        nginx[kind]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|u| {
                let source = u["source"].as_str().unwrap();
                let name = yaml[kind][source]["name"].as_str().unwrap().to_string();
                (u["target"].as_str().unwrap().to_string(), name)
            })
            .collect()
    };
    let configs = targets("configs");
    let config_targets: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        config_targets,
        [
            "/etc/nginx/certgen/common.conf",
            "/etc/nginx/conf.d/00-certgen.conf",
            "/etc/nginx/conf.d/port80.conf",
            "/etc/nginx/certgen/proxy.sh",
            "/etc/nginx/certgen/sites/a.example.com.conf",
            "/etc/nginx/certgen/sites/b.example.com.conf",
        ],
        "{text}"
    );
    let secrets = targets("secrets");
    let secret_targets: Vec<&str> = secrets.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        secret_targets,
        [
            "/etc/letsencrypt/live/a.example.com/fullchain.pem",
            "/etc/letsencrypt/live/a.example.com/privkey.pem",
        ],
        "{text}"
    );
    assert!(text.contains("mode: 0400"), "{text}");
    for (_, name) in configs.iter().chain(&secrets) {
        assert!(
            name.starts_with("certgen-edge-") && name.len() <= 64,
            "{name}"
        );
    }
    // Each file is sent from a copy in the stage, at its place in the proxy, the
    // copy that nginx -t checks: a change on disk in between is never deployed unchecked.
    let staged = stage.join("etc/letsencrypt/live/a.example.com/privkey.pem");
    assert!(
        yaml["secrets"]
            .as_mapping()
            .unwrap()
            .values()
            .any(|v| v["file"].as_str() == Some(staged.to_str().unwrap())),
        "{text}"
    );
    assert_eq!(fs::read_to_string(&staged).unwrap(), "privkey 1\n");
    assert!(stage.join("etc/nginx/conf.d/00-certgen.conf").exists());
    assert!(stage.join("etc/nginx/certgen/proxy.sh").exists());

    // A renewal (a new archive file) and a changed custom file: only their names change.
    fs::write(archive.join("privkey2.pem"), "privkey 2\n").unwrap();
    fs::remove_file(live.join("privkey.pem")).unwrap();
    std::os::unix::fs::symlink(
        "../../archive/a.example.com/privkey2.pem",
        live.join("privkey.pem"),
    )
    .unwrap();
    fs::write(
        server.join("nginx-ssl/nginx/custom/http/mine.conf"),
        "# mine\n",
    )
    .unwrap();
    let (ok, text, err) = stack_files();
    assert!(ok, "{err}");
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("name: certgen-edge-"))
        .filter(|l| {
            let name = l.split("name: ").nth(1).unwrap().split(',').next().unwrap();
            !configs.iter().chain(&secrets).any(|(_, n)| n == name)
        })
        .collect();
    assert_eq!(changed.len(), 2, "a new key and a new custom file:\n{text}");
    assert!(
        text.contains("target: '/etc/nginx/certgen/custom/http/mine.conf'"),
        "{text}"
    );

    // Archive/a.example.com itself made a link (to a folder of the host), the live/
    // files leading into it: refused, though their paths still start with archive/'s.
    let elsewhere = repo.tmp().join("host-folder");
    fs::create_dir(&elsewhere).unwrap();
    for file in ["fullchain1.pem", "privkey2.pem"] {
        fs::write(elsewhere.join(file), "a host file\n").unwrap();
    }
    let real_archive = repo.tmp().join("real-archive");
    fs::rename(&archive, &real_archive).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &archive).unwrap();
    let (ok, _, err) = stack_files();
    assert!(!ok, "a linked archive folder was accepted");
    assert!(
        err.contains("archive/a.example.com is not a folder"),
        "{err}"
    );
    fs::remove_file(&archive).unwrap();
    fs::rename(&real_archive, &archive).unwrap();

    // A link planted at live/ that leads out of archive/: nothing is given to the proxies.
    fs::remove_file(live.join("privkey.pem")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", live.join("privkey.pem")).unwrap();
    let (ok, _, err) = stack_files();
    assert!(!ok, "a planted link was accepted");
    assert!(
        err.contains(
            "privkey.pem leads to /etc/passwd, outside certifications/archive/a.example.com/"
        ),
        "{err}"
    );
}

/// A stand-in for `docker` on a swarm manager: two proxy nodes (`manager`, `worker`), the
/// proxies' rollout in the state FAKE_DIR/state (updating, paused, ...), the worker Ready or Down
/// (FAKE_WORKER), its task running or not (FAKE_WORKER_TASK); the manager's proxy runs the
/// previous secrets until `docker service update --force` rolls it over. Every call is logged as
/// FAKE_DOCKER logs it.
const FAKE_SWARM_DOCKER: &str = r#"#!/usr/bin/env bash
set -u
printf '%s\x1f' "$@" >>"$FAKE_DIR/calls"
printf '\n' >>"$FAKE_DIR/calls"
state=$(cat "$FAKE_DIR/state" 2>/dev/null || echo "${FAKE_STATE:-updating}")
case " $* " in
  *" service inspect --format "*) echo "$state 100" ;;
  *" node ls "*) printf 'm1 manager Ready\nw1 worker %s\n' "${FAKE_WORKER:-Ready}" ;;
  *" service ps "*"node=m1"*) echo taskm ;;
  *" service ps "*"node=w1"*) echo taskw ;;
  *" inspect --type task --format {{.Status.State}} taskm "*) echo running ;;
  *" inspect --type task --format {{.Status.State}} taskw "*) echo "${FAKE_WORKER_TASK:-running}" ;;
  *" inspect --type task "*" taskm "*)
    if [ -e "$FAKE_DIR/forced" ] || [ "${FAKE_MANAGER:-}" = current ]; then echo 's-new c-1 '; else echo 's-old c-1 '; fi ;;
  *" inspect --type task "*" taskw "*) echo 's-new c-1 ' ;;
  *" inspect --type service "*) echo 's-new c-1 ' ;;
  *" service update --detach --force "*) touch "$FAKE_DIR/forced"; echo updating >"$FAKE_DIR/state" ;;
  *" service rollback --detach "*) echo rollback_completed >"$FAKE_DIR/state" ;;
esac
exit 0
"#;

/// A swarm tree whose `docker` is [`FAKE_SWARM_DOCKER`]; runs lib.sh's wait_for_rollout (for a
/// rollout started at 0) and report_nodes as deploy_stack and its callers do.
fn swarm_rollout(env: &[(&str, &str)]) -> Option<Run> {
    let h = Harness::new(
        "renew_schedule: \"1 2,14 * * *\"\nservers:\n- name: edge\n  engine: swarm\n  \
         certificates:\n  - domains: [a.example.com]\n    upstream: http://app:80\n",
    )?;
    fs::write(h.repo.tmp().join("bin/docker"), FAKE_SWARM_DOCKER).unwrap();
    let script = format!(
        "set -Eeuo pipefail; label=test; server_dir={}; . \"$server_dir/lib.sh\"; \
         wait_for_rollout 0; report_nodes || echo NOT-EVERY-NODE",
        h.server().display()
    );
    Some(h.run_program(Path::new("/bin/bash"), &["-c", &script], env))
}

// Catches: a rollout that Swarm holds for a node that went down (worker first) leaving
// the manager on the old certificates until the worker is back (12.8 minutes in one run), the
// lock held all that time: the rollout is started again without the node that is down.
#[test]
fn a_rollout_waiting_for_a_node_that_is_down_goes_on_without_it() {
    let Some(run) = swarm_rollout(&[("FAKE_WORKER", "Down"), ("FAKE_STATE", "updating")]) else {
        return;
    };
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        run.has(&["service", "update", "--detach", "--force"]),
        "{:?}",
        run.calls
    );
    assert!(
        !run.has(&["service", "rollback"]),
        "a node down rolled the others back"
    );
    let log = run.log();
    assert!(
        log.contains("rolling out again to the nodes that are up")
            && log.contains("proxy node manager runs the current certificates")
            && log.contains("proxy node worker is down")
            && log.contains("NOT-EVERY-NODE"),
        "{log}"
    );
}

// Catches: Swarm's failure_action rolling every node back when a node that went down
// comes back; while a proxy that fails on a node that is up (a broken image) is still rolled
// back, as rollback is for.
#[test]
fn only_a_proxy_failing_on_a_node_that_is_up_rolls_the_nodes_back() {
    // Paused for the worker, which is down; the manager runs the new proxy: done for now.
    let Some(run) = swarm_rollout(&[
        ("FAKE_WORKER", "Down"),
        ("FAKE_STATE", "paused"),
        ("FAKE_MANAGER", "current"),
    ]) else {
        return;
    };
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(!run.has(&["service", "rollback"]) && !run.has(&["service", "update"]));
    assert!(
        run.log().contains("proxy node worker is down"),
        "{}",
        run.log()
    );
    // Paused because the worker, which is up, cannot start its new proxy: every node back.
    let run = swarm_rollout(&[
        ("FAKE_STATE", "paused"),
        ("FAKE_MANAGER", "current"),
        ("FAKE_WORKER_TASK", "rejected"),
    ])
    .unwrap();
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(
        run.has(&["service", "rollback", "--detach"]),
        "{:?}",
        run.calls
    );
    assert!(
        run.log().contains("so Swarm rolled every node back"),
        "{}",
        run.log()
    );
}
