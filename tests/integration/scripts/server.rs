//! The server side: the cron line, links in the tree, a tree away from its deploy path, apply.sh.

use super::*;

/// `config` without deploy_path: a tree that works wherever it is cloned.
fn config_without_deploy_path() -> String {
    config("", ACME, EMAIL).replace("  deploy_path: /srv/infra\n", "")
}

// Catches: the cron line written with the generating machine's path (or none); a
// second install adding a second line; other entries lost; a line that does not run
// renew/run.sh the way cron runs it. Also: another tree's line for a server of the same name
// (here at /home/alice, with no marker) removed: it stays, and the install names it.
#[test]
fn install_cron_uses_the_path_the_tree_has_and_is_idempotent() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    // Cloned elsewhere: the tree moves to another folder before it is used.
    let clone = h.repo.tmp().join("srv/infra");
    fs::create_dir_all(clone.parent().unwrap()).unwrap();
    fs::rename(h.repo.tmp().join("infra"), &clone).unwrap();
    let server = clone.join("edge");
    let table = h.repo.tmp().join("crontab");
    let old = "17 3 * * * '/home/alice/infra/edge/renew/run.sh' >> '/home/alice/infra/edge/renew/renew.log' 2>&1";
    fs::write(
        &table,
        format!("MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n{old}\n"),
    )
    .unwrap();
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    for pass in ["first", "second"] {
        let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
        assert_eq!(run.code(), Some(0), "{pass}: {}", run.log());
        let installed = fs::read_to_string(&table).unwrap();
        let expected = cron_line_of(&server);
        assert_eq!(
            installed,
            format!(
                "MAILTO=ops@example.com\n0 3 * * * /usr/local/bin/backup.sh\n{old}\n{expected}\n"
            ),
            "{pass} install"
        );
        assert!(
            run.log().contains(&format!("crontab -e): {old}")),
            "{}",
            run.log()
        );
        if pass == "second" {
            assert!(
                run.log().contains("the cron line is in place"),
                "{}",
                run.log()
            );
        }
    }
    // The line, as cron runs it, runs renew/run.sh (nothing due: exit 0, the run recorded).
    let expected = cron_line_of(&server);
    let run = h.run_as_cron(expected.splitn(6, ' ').nth(5).unwrap(), &env);
    let log = fs::read_to_string(server.join("renew/renew.log")).unwrap_or_default();
    assert!(log.contains("renew: "), "{}{log}", run.log());
    assert!(server.join("renew/last-run").exists(), "{log}");

    // No crontab yet: the line is the whole table.
    fs::remove_file(&table).unwrap();
    let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(fs::read_to_string(&table).unwrap(), format!("{expected}\n"));
}

/// The cron line --install-cron writes for the server folder `server`: its path, and the marker
/// of the tree (renew/tree-id, made at the first install).
fn cron_line_of(server: &Path) -> String {
    let id = fs::read_to_string(server.join("renew/tree-id")).unwrap();
    format!(
        "1 2,14 * * * '{s}/renew/run.sh' >> '{s}/renew/renew.log' 2>&1 # certgen-tree:{}",
        id.trim(),
        s = server.display()
    )
}

// Catches: --install-cron or apply.sh of one tree removing the line of another tree
// whose server has the same name (a staging copy, another team's): each replaces its own only,
// and a tree moved with its state keeps one line.
#[test]
fn two_trees_with_one_server_name_both_keep_their_cron_line() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let first = h.server();
    let staging = h.repo.tmp().join("staging");
    fs::create_dir_all(&staging).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(h.repo.tmp().join("infra"))
        .arg(&staging)
        .status()
        .unwrap();
    assert!(status.success());
    let second = staging.join("infra/edge");
    let table = h.repo.tmp().join("crontab");
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    let install = |server: &Path| {
        let run = h.run_program(&server.join("renew/run.sh"), &["--install-cron"], &env);
        assert_eq!(run.code(), Some(0), "{}", run.log());
    };
    install(&first);
    install(&second);
    install(&first);
    let both = format!("{}\n{}\n", cron_line_of(&first), cron_line_of(&second));
    assert_ne!(cron_line_of(&first), cron_line_of(&second));
    assert_eq!(fs::read_to_string(&table).unwrap(), both);
    // apply.sh of either leaves the other's line alone.
    let run = h.run_program(&second.join("apply.sh"), &[], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(fs::read_to_string(&table).unwrap(), both);

    // The first tree moved, with its state: its line is replaced (and named), the other kept.
    let first_line = cron_line_of(&first);
    let moved = h.repo.tmp().join("moved");
    fs::rename(h.repo.tmp().join("infra"), &moved).unwrap();
    let run = h.run_program(&moved.join("edge/renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(
        run.log().contains(&format!(
            "removed this tree's earlier cron line: {first_line}"
        )),
        "{}",
        run.log()
    );
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        format!(
            "{}\n{}\n",
            cron_line_of(&second),
            cron_line_of(&moved.join("edge"))
        )
    );
}

// Catches: a path a cron line cannot hold written anyway; a missing crontab command
// passing silently.
#[test]
fn install_cron_is_loud_when_it_cannot() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let odd = h.repo.tmp().join("50% done");
    fs::rename(h.repo.tmp().join("infra"), &odd).unwrap();
    let table = h.repo.tmp().join("crontab");
    let env = [("FAKE_CRONTAB", table.to_str().unwrap())];
    let run = h.run_program(&odd.join("edge/renew/run.sh"), &["--install-cron"], &env);
    assert_eq!(run.code(), Some(1), "{}", run.log());
    assert!(
        run.log().contains("a crontab line cannot hold safely"),
        "{}",
        run.log()
    );
    assert!(!table.exists());
}

// Catches: check_tree skipping links (a custom file linked to a world-writable one
// passed), and status.sh, which runs as root from cron or a monitoring agent, skipping
// check_tree altogether.
#[test]
fn a_link_in_the_tree_stops_every_script() {
    let Some(h) = Harness::edge() else { return };
    let writable = h.repo.tmp().join("anyone-can-write.conf");
    fs::write(&writable, "# harmless, for now\n").unwrap();
    let link = h.server().join("nginx-ssl/nginx/custom/http/mine.conf");
    std::os::unix::fs::symlink(&writable, &link).unwrap();
    for script in [
        "renew/run.sh",
        "status.sh",
        "apply.sh",
        "nginx-for-cert/run.sh",
    ] {
        let run = h.run(script, &[], &[]);
        assert_eq!(run.code(), Some(1), "{script}: {}", run.log());
        assert!(
            run.log()
                .contains(&format!("{} is a symbolic link", link.display())),
            "{script}: {}",
            run.log()
        );
        assert!(run.calls.is_empty(), "{script} ran docker: {:?}", run.calls);
    }
}

// Catches: a tree at another place than deploy_path going unnoticed.
#[test]
fn a_tree_away_from_its_deploy_path_says_so() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(0, "renew/run.sh", &[]);
    assert!(
        run.log()
            .contains("but certgen.yaml's deploy_path puts it at /srv/infra/edge"),
        "{}",
        run.log()
    );
}

// Catches: apply.sh restarting a proxy that only needs a reload (dropped
// connections), reloading a proxy compose just recreated, a failed nginx -t reported as
// success, a changed schedule left in the crontab (a line from before trees had a marker is
// this tree's when it runs this tree's path).
#[test]
fn apply_reloads_or_recreates_as_compose_decides() {
    let Some(h) = Harness::new(&config_without_deploy_path()) else {
        return;
    };
    let table = h.repo.tmp().join("crontab");
    let server = h.server();
    let line = |schedule: &str| {
        format!(
            "{schedule} '{s}/renew/run.sh' >> '{s}/renew/renew.log' 2>&1",
            s = server.display()
        )
    };
    fs::write(
        &table,
        format!(
            "0 3 * * * /usr/local/bin/backup.sh\n{}\n",
            line("5 5 * * *")
        ),
    )
    .unwrap();
    let crontab = ("FAKE_CRONTAB", table.to_str().unwrap());
    let reload = ["/etc/nginx/certgen/proxy.sh", "reload"];

    let run = h.exits(0, "apply.sh", &[crontab, ("FAKE_PS_IDS", "aaa aaa")]);
    assert!(run.has(&["up", "--detach", "--wait", "--remove-orphans"]));
    assert!(run.has(&reload), "same container: a reload");
    assert!(run.log().contains("reloaded the proxy's configuration"));
    // The new schedule replaces the old line; the other entry stays.
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        format!(
            "0 3 * * * /usr/local/bin/backup.sh\n{}\n",
            cron_line_of(&server)
        )
    );
    // Neither certificate is on disk: each is named with the command that obtains it.
    assert!(
        run.log()
            .contains("certificate b.example.com is not on disk yet"),
        "{}",
        run.log()
    );

    let run = h.exits(0, "apply.sh", &[crontab, ("FAKE_PS_IDS", "aaa bbb")]);
    assert!(
        !run.has(&reload),
        "a recreated proxy loads its configuration itself"
    );
    assert!(run.log().contains("recreated the proxy"));
    assert!(
        !run.log().contains("cron"),
        "nothing to change: {}",
        run.log()
    );

    let run = h.exits(0, "apply.sh", &[crontab, ("FAKE_PS_IDS", "- aaa")]);
    assert!(run.log().contains("started the proxy") && !run.has(&reload));

    let run = h.exits(
        1,
        "apply.sh",
        &[
            crontab,
            ("FAKE_PS_IDS", "aaa aaa"),
            ("FAKE_NGINX_T", "broken"),
        ],
    );
    assert!(run.log().contains("fails 'nginx -t'"), "{}", run.log());

    // No line yet: apply says how to install it, and installs nothing by itself.
    fs::write(&table, "0 3 * * * /usr/local/bin/backup.sh\n").unwrap();
    let run = h.run("apply.sh", &[], &[crontab, ("FAKE_PS_IDS", "aaa aaa")]);
    assert!(
        run.log().contains("renew/run.sh --install-cron"),
        "{}",
        run.log()
    );
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        "0 3 * * * /usr/local/bin/backup.sh\n"
    );
}

// Catches: apply.sh after a switch of ACME server or key type naming only the certificates
// that are missing, so the ones issued by the old server, or with the old key, stay until they
// expire (renewal keeps both).
#[test]
fn apply_names_the_certificates_to_order_again() {
    let Some(h) = Harness::edge() else { return };
    let store = h.server().join("certifications");
    let issued = |name: &str, renewal: String| {
        fs::create_dir_all(store.join(format!("live/{name}"))).unwrap();
        fs::write(store.join(format!("live/{name}/fullchain.pem")), "").unwrap();
        fs::create_dir_all(store.join("renewal")).unwrap();
        fs::write(store.join(format!("renewal/{name}.conf")), renewal).unwrap();
    };
    issued("a.example.com", "server = https://old.example/dir\n".into());
    issued(
        "b.example.com",
        format!("server = {ACME}\nkey_type = ecdsa\n"),
    );
    let log = h.exits(0, "apply.sh", &[]).log();
    assert!(
        log.contains("certificate a.example.com was issued by another ACME server than")
            && log.contains("order it again with"),
        "{log}"
    );
    assert!(!log.contains("certificate b.example.com"), "{log}");

    issued(
        "b.example.com",
        format!("server = {ACME}\nkey_type = rsa\n"),
    );
    let log = h.exits(0, "apply.sh", &[]).log();
    assert!(
        log.contains("certificate b.example.com has another key type than ecdsa"),
        "{log}"
    );
}

// Catches: a proxy started with basic auth's password file missing or readable by others (its
// sites would answer 500, or the hashes leak), or with a bcrypt hash Debian's nginx cannot check
// (every login refused); the error printing a line of the file.
#[test]
fn apply_refuses_to_start_the_proxy_with_a_password_file_it_cannot_trust() {
    let yaml = config_without_deploy_path().replace(
        "    upstream: http://10.0.0.2:80\n",
        "    upstream: http://10.0.0.2:80\n    auth: {users: staff}\n",
    );
    let Some(h) = Harness::new(&yaml) else {
        return;
    };
    let auth = h.server().join("secrets/auth");
    let file = auth.join("staff");
    let sha512 = "alice:$6$salt$Zr0Ag5hA7Wsr0n8A3Sm1LgI7oQ2PQyB7X7eBf1JcZ7m0tE1r6g5Q1\n";
    let bcrypt = "# the team\nbob:$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC\n";
    for (setup, expected) in [
        (None, "edge/secrets is missing"),
        (Some(("644", sha512)), "chmod 600"),
        (
            Some(("600", bcrypt)),
            "secrets/auth/staff, line 2: not USER:HASH",
        ),
    ] {
        if let Some((mode, content)) = setup {
            fs::create_dir_all(&auth).unwrap();
            crate::helpers::run("chmod", &["700", auth.parent().unwrap().to_str().unwrap()]);
            crate::helpers::run("chmod", &["700", auth.to_str().unwrap()]);
            fs::write(&file, content).unwrap();
            crate::helpers::run("chmod", &[mode, file.to_str().unwrap()]);
        }
        let run = h.exits(1, "apply.sh", &[("FAKE_PS_IDS", "- aaa")]);
        assert!(run.log().contains(expected), "{}", run.log());
        assert!(
            !run.log().contains("$2y$"),
            "a hash in the log: {}",
            run.log()
        );
        assert!(
            !run.has(&["up", "--detach", "--wait", "--remove-orphans"]),
            "the proxy started: {:?}",
            run.calls
        );
    }
    // Missing, it says how to make the folder and the file, and how to add a user.
    fs::remove_dir_all(&auth).unwrap();
    let run = h.exits(1, "apply.sh", &[]);
    assert!(
        run.log().contains(&format!(
            "install -d -m 700 {0} {0}/auth && install -m 600 /dev/null {0}/auth/staff",
            h.server().join("secrets").display()
        )),
        "{}",
        run.log()
    );
    fs::create_dir_all(&auth).unwrap();
    crate::helpers::run("chmod", &["700", auth.to_str().unwrap()]);
    fs::write(&file, format!("{sha512}carol:$5$salt$abc\n")).unwrap();
    crate::helpers::run("chmod", &["600", file.to_str().unwrap()]);
    let run = h.exits(0, "apply.sh", &[("FAKE_PS_IDS", "- aaa")]);
    assert!(run.has(&["up", "--detach", "--wait", "--remove-orphans"]));
}
