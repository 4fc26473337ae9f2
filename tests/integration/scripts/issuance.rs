//! Issuance and renewal: the exact certbot arguments, port 80 opened only when asked, reloads,
//! a killed or concurrent run, certificates that left the config.

use super::*;

// Catches: a value no longer quoted (or quoted twice) on its way to certbot; arguments lost,
// reordered or added; port 80 opened before certbot asks, or not closed; the cleanup of a
// killed run dropped; the images not pulled first; the reload skipped.
#[test]
fn issuance_passes_exact_arguments_and_opens_port_80_only_when_asked() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(
        0,
        "nginx-for-cert/run.sh",
        &[("FAKE_CERTBOT", "order keep"), ("FAKE_PROXY", "running")],
    );
    assert_eq!(
        run.certbot(),
        vec![
            certonly(ACME, EMAIL, &["a.example.com", "www.a.example.com"]),
            certonly(ACME, EMAIL, &["b.example.com"]),
        ]
    );
    let pull = run
        .position(&["pull", "--quiet", "--policy", "missing"])
        .unwrap();
    let cleanup = run
        .position(&["down", "--remove-orphans", "--timeout", "5"])
        .unwrap();
    let removed = run
        .position(&["rm", "-f", "certgen-edge-nginx-for-cert-certbot"])
        .unwrap();
    // One certbot container for both certificates: no container start per certificate while
    // port 80 is open.
    let containers = run
        .calls
        .iter()
        .filter(|c| c.windows(2).any(|w| w == ["--entrypoint", "python3"]))
        .count();
    assert_eq!(containers, 1, "{:?}", run.calls);
    let first = run.position(&["--cert-name", "a.example.com"]).unwrap();
    let open = run
        .position(&["up", "--detach", "--wait", "nginx_for_cert"])
        .unwrap();
    let reload = run
        .position(&["/etc/nginx/certgen/proxy.sh", "reload"])
        .unwrap();
    assert!(
        pull < first && cleanup < first && removed < first,
        "pull and the cleanup of a killed run come first: {:?}",
        run.calls
    );
    assert!(first < open, "port 80 opens when certbot asks");
    let close = run.calls[open..]
        .iter()
        .position(|c| c.contains(&"down".to_string()))
        .map(|i| i + open)
        .expect("port 80 closed");
    assert!(close < reload, "port 80 closes before the reload");
    assert!(run.log().contains("port 80 closed again"), "{}", run.log());
    assert!(
        !h.markers().join("reload-proxy").exists(),
        "the marker is removed after a reload"
    );
    assert!(!run.stale_answer);
}

// A certificate's ACME profile reaches certbot; one without keeps the CA's default.
#[test]
fn each_certificates_profile_reaches_certbot() {
    let yaml = config("", ACME, EMAIL).replace(
        "    upstream: http://10.0.0.2:80\n",
        "    upstream: http://10.0.0.2:80\n    profile: shortlived\n",
    );
    let Some(h) = Harness::new(&yaml) else {
        return;
    };
    let run = h.exits(0, "nginx-for-cert/run.sh", &[("FAKE_CERTBOT", "keep keep")]);
    let certbot = run.certbot();
    assert!(!certbot[0].contains(&"--preferred-profile".to_string()));
    let mut expected = certonly(ACME, EMAIL, &["b.example.com"]);
    let at = expected.iter().position(|a| a == "--logs-dir").unwrap();
    expected.splice(
        at..at,
        ["--preferred-profile".to_string(), "shortlived".to_string()],
    );
    assert_eq!(certbot[1], expected);
}

// Catches: port 80 opened with nothing to order; a reload without a changed certificate.
#[test]
fn nothing_to_order_keeps_port_80_closed_and_the_proxy_as_it_is() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(
        0,
        "nginx-for-cert/run.sh",
        &[("FAKE_CERTBOT", "keep keep"), ("FAKE_PROXY", "running")],
    );
    assert!(!run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    assert!(!run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(run
        .log()
        .contains("port 80 stayed closed: nothing was ordered over HTTP"));
}

// Catches: the reload marker dropped when the reload fails (the next run would never reload);
// a failed nginx -t reported as success.
#[test]
fn a_failed_reload_keeps_the_marker_and_the_next_run_reloads() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(
        1,
        "nginx-for-cert/run.sh",
        &[
            ("FAKE_CERTBOT", "order keep"),
            ("FAKE_PROXY", "running"),
            ("FAKE_NGINX_T", "fail"),
        ],
    );
    assert!(run.log().contains("fails 'nginx -t'") && run.log().contains("broken.conf"));
    assert!(
        h.markers().join("reload-proxy").exists(),
        "the marker stays"
    );
    let next = h.exits(
        0,
        "renew/run.sh",
        &[("FAKE_CERTBOT", "keep keep"), ("FAKE_PROXY", "running")],
    );
    assert!(next.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(!h.markers().join("reload-proxy").exists());
}

// Catches: a reload attempted on a stopped proxy (compose exec fails: the run would fail).
#[test]
fn a_stopped_proxy_is_not_reloaded() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(
        0,
        "nginx-for-cert/run.sh",
        &[("FAKE_CERTBOT", "order keep")],
    );
    assert!(!run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
    assert!(run.log().contains("the proxy is not running"));
    assert!(!h.markers().join("reload-proxy").exists());
}

// Catches: a failed order that exits 0, does not name the certificate, or leaves port 80 open.
#[test]
fn a_failed_order_names_the_certificate_and_closes_port_80() {
    let Some(h) = Harness::edge() else { return };
    let run = h.exits(
        1,
        "nginx-for-cert/run.sh",
        &[("FAKE_CERTBOT", "order-fail keep")],
    );
    assert!(
        run.log().contains("could not obtain: a.example.com"),
        "{}",
        run.log()
    );
    let open = run
        .position(&["up", "--detach", "--wait", "nginx_for_cert"])
        .unwrap();
    assert!(
        run.calls[open..]
            .iter()
            .any(|c| c.first().map(String::as_str) == Some("compose") && c.contains(&"down".into())),
        "port 80 closed after the failure"
    );
}

// Catches: the start-of-run cleanup of a killed run removed (its markers would answer the next
// pre-hook before port 80 is open).
#[test]
fn what_a_killed_run_left_is_removed_before_certbot_runs() {
    let Some(h) = Harness::edge() else { return };
    fs::create_dir_all(h.markers()).unwrap();
    fs::write(h.markers().join("port80-wanted"), "").unwrap();
    fs::write(h.markers().join("port80-answer"), "").unwrap();
    let run = h.exits(0, "renew/run.sh", &[]);
    assert!(!h.markers().join("port80-answer").exists());
    assert!(!h.markers().join("port80-wanted").exists());
    // Nothing is due (no lineage in the store): certbot never ran, but the cleanup did.
    assert!(run.has(&["down", "--remove-orphans", "--timeout", "5"]));

    fs::create_dir_all(h.server().join("certifications/renewal")).unwrap();
    fs::write(
        h.server().join("certifications/renewal/a.example.com.conf"),
        "",
    )
    .unwrap();
    fs::write(h.markers().join("port80-answer"), "").unwrap();
    let run = h.exits(0, "renew/run.sh", &[("FAKE_CERTBOT", "keep")]);
    assert!(
        !run.stale_answer,
        "a stale answer was still there when certbot ran"
    );
}

// Catches: the lock dropped, so two runs would share port 80 and the store.
#[test]
fn a_second_run_waits_for_the_first() {
    let Some(h) = Harness::edge() else { return };
    let released = h.repo.tmp().join("released");
    let mut holder = Command::new("flock")
        .arg(h.server())
        .args(["sh", "-c", "sleep 1.5; date +%s.%N >\"$0\""])
        .arg(&released)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let run = h.exits(0, "renew/run.sh", &[]);
    holder.wait().unwrap();
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert!(run
        .log()
        .contains("another run of nginx-for-cert/run.sh, renew/run.sh or apply.sh is under way"));
    let time = |p: PathBuf| -> f64 { fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    assert!(
        time(h.fake().join("past-the-lock")) >= time(released),
        "the second run went on before the first released the lock"
    );
}

// Catches: http: redirect starting the temporary nginx while the proxy holds port 80.
#[test]
fn redirect_mode_uses_the_running_proxys_port_80() {
    let Some(h) = Harness::new(&config("http: redirect\n", ACME, EMAIL)) else {
        return;
    };
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[
            ("FAKE_CERTBOT", "order keep"),
            ("FAKE_PROXY", "running"),
            ("FAKE_PROXY_PORT80", "1"),
        ],
    );
    assert!(!run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    assert!(run
        .log()
        .contains("the proxy answers the ACME challenge on port 80"));
    assert!(run.has(&["/etc/nginx/certgen/proxy.sh", "reload"]));
}

// Catches: renewal of a certificate that left the config; renew arguments changed.
#[test]
fn renewal_covers_the_configured_certificates_only() {
    let Some(h) = Harness::edge() else { return };
    let renewal = h.server().join("certifications/renewal");
    fs::create_dir_all(&renewal).unwrap();
    for name in ["a.example.com", "old.example.com"] {
        fs::write(renewal.join(format!("{name}.conf")), "").unwrap();
    }
    let run = h.exits(0, "renew/run.sh", &[("FAKE_CERTBOT", "keep")]);
    assert_eq!(
        run.certbot(),
        vec![[
            "renew",
            "--cert-name",
            "a.example.com",
            "--non-interactive",
            "--no-random-sleep-on-renew",
            "--deploy-hook",
            "touch /etc/letsencrypt/.certgen/reload-proxy",
            "--webroot",
            "--webroot-path",
            "/var/www/certbot",
            "--logs-dir",
            "/etc/letsencrypt/logs",
            "--pre-hook",
            PRE_HOOK,
        ]
        .map(String::from)
        .to_vec()]
    );
    assert!(run
        .log()
        .contains("skipping old.example.com: it is no longer in certgen.yaml"));
    let failed = h.run("renew/run.sh", &[], &[("FAKE_CERTBOT", "fail")]);
    assert_eq!(failed.code(), Some(1));
    assert!(failed
        .log()
        .contains("certbot could not renew: a.example.com"));
}

// Catches: --delete of a configured certificate, or arguments that reach certbot unchecked.
#[test]
fn delete_takes_only_a_certificate_that_left_the_config() {
    let Some(h) = Harness::edge() else { return };
    let renewal = h.server().join("certifications/renewal");
    fs::create_dir_all(&renewal).unwrap();
    fs::write(renewal.join("old.example.com.conf"), "").unwrap();
    let run = h.run(
        "nginx-for-cert/run.sh",
        &["--delete", "old.example.com"],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.log());
    assert_eq!(
        run.certbot(),
        vec![[
            "delete",
            "--cert-name",
            "old.example.com",
            "--non-interactive",
            "--logs-dir",
            "/etc/letsencrypt/logs"
        ]
        .map(String::from)
        .to_vec()]
    );
    let configured = h.run("nginx-for-cert/run.sh", &["--delete", "a.example.com"], &[]);
    assert_eq!(configured.code(), Some(1));
    assert!(configured
        .log()
        .contains("a.example.com is in certgen.yaml"));
    for bad in [
        &["--delete", "../x"][..],
        &["--delete"],
        &["--force"],
        &["--delete", "-rf"],
    ] {
        let run = h.run("nginx-for-cert/run.sh", bad, &[]);
        assert_eq!(run.code(), Some(2), "{bad:?}: {}", run.log());
        assert!(run.calls.is_empty(), "{bad:?} ran docker: {:?}", run.calls);
    }
}

/// The characters the validators accept in ACME URLs and emails, mixed.
fn acme_servers() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "https://[a-z]{1,8}\\.example(:[1-9][0-9]{1,3})?/[a-zA-Z0-9._~-]{1,6}(\\?[a-z]{1,3}=[a-zA-Z0-9+@:~\\[\\]-]{1,6}(&[a-z]{1,3}=[a-zA-Z0-9+@:~=-]{1,6})?)?",
    )
    .unwrap()
}

fn emails() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z0-9][a-z0-9+._-]{0,10}[a-z0-9]@[a-z]{1,8}\\.example")
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    // Catches: quoting of the ACME URL or the email broken for characters the validators accept.
    #[test]
    fn accepted_values_reach_certbot_unchanged(acme in acme_servers(), email in emails()) {
        prop_assume!(certgen::validate::AcmeServer::parse(&acme).is_ok());
        prop_assume!(certgen::validate::Email::parse(&email).is_ok());
        let Some(h) = Harness::new(&config("", &acme, &email)) else {
            return Ok(());
        };
        let run = h.run("nginx-for-cert/run.sh", &[], &[("FAKE_CERTBOT", "keep keep")]);
        prop_assert_eq!(run.code(), Some(0), "{}", run.log());
        prop_assert_eq!(run.certbot()[1].clone(), certonly(&acme, &email, &["b.example.com"]));
    }
}

#[test]
fn the_acme_url_generator_reaches_every_accepted_character() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = String::new();
    for _ in 0..200 {
        let url = acme_servers().new_tree(&mut runner).unwrap().current();
        if certgen::validate::AcmeServer::parse(&url).is_ok() {
            seen.push_str(&url);
        }
    }
    for c in "&?=+@:~[]".chars() {
        assert!(seen.contains(c), "no accepted URL had {c:?}");
    }
    assert!(Path::new(&python()).is_absolute());
}
