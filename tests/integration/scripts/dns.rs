//! DNS-01: the plugin image, credentials checked before anything is ordered, links planted mid-run.

use super::*;

/// One server with a DNS-01 wildcard certificate and, with `mixed`, an HTTP-01 one.
fn dns_config(mixed: bool) -> String {
    let mut yaml = format!(
        "email: {EMAIL}\nacme_server: https://ca.example.com/dir\nrenew_schedule: \"1 2,14 * * *\"\n\
         dns:\n  provider: rfc2136\n  propagation_seconds: 5\n\
         servers:\n- name: edge\n  certificates:\n\
         \x20 - domains: [e2e.test, \"*.e2e.test\"]\n    upstream: http://app:3000\n    challenge: dns-01\n"
    );
    if mixed {
        yaml.push_str("  - domains: [plain.example.com]\n    upstream: http://app:3000\n");
    }
    yaml
}

/// The DNS credentials, as the server README says to create them (secrets/, mode 700), the file
/// with `mode`.
fn credentials(h: &Harness, mode: &str) -> PathBuf {
    let dir = h.server().join("secrets");
    fs::create_dir_all(&dir).unwrap();
    crate::helpers::run("chmod", &["700", dir.to_str().unwrap()]);
    let file = dir.join("dns-rfc2136.ini");
    fs::write(&file, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
    crate::helpers::run("chmod", &[mode, file.to_str().unwrap()]);
    file
}

// Catches: a DNS-01 certificate ordered in the webroot image, without its plugin's
// arguments, or through port 80; a wildcard left to the shell's globbing.
#[test]
fn dns_certificates_go_through_the_plugin_and_never_open_port_80() {
    let Some(h) = Harness::new(&dns_config(false)) else {
        return;
    };
    credentials(&h, "600");
    let run = h.exits(0, "nginx-for-cert/run.sh", &[("FAKE_CERTBOT", "order")]);
    let runs = run.certbot();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let args = runs[0].join(" ");
    for expected in [
        "--authenticator dns-rfc2136 --dns-rfc2136-credentials /etc/certgen/dns/rfc2136.ini --dns-rfc2136-propagation-seconds 5",
        "--cert-name e2e.test --domain e2e.test --domain *.e2e.test",
    ] {
        assert!(args.contains(expected), "{args}");
    }
    assert!(
        !args.contains("--pre-hook") && !args.contains("--webroot"),
        "{args}"
    );
    assert!(run.has(&["--entrypoint", "python3", "certbot_dns"]));
    assert!(
        !run.has(&["up", "--detach", "--wait", "nginx_for_cert"]),
        "port 80 opened"
    );
    assert!(
        run.log()
            .contains("port 80 stayed closed: nothing was ordered over HTTP"),
        "{}",
        run.log()
    );

    // Renewal uses the plugin too.
    let store = h.server().join("certifications/renewal");
    fs::create_dir_all(&store).unwrap();
    fs::write(
        store.join("e2e.test.conf"),
        "server = https://ca.example.com/dir\n",
    )
    .unwrap();
    let run = h.exits(0, "renew/run.sh", &[("FAKE_CERTBOT", "keep")]);
    let args = run.certbot().concat().join(" ");
    assert!(
        args.contains("renew --cert-name e2e.test") && args.contains("--authenticator dns-rfc2136"),
        "{args}"
    );
}

// Catches: a missing or world-readable credentials file noticed only by certbot, after
// an order was placed.
#[test]
fn dns_credentials_must_exist_and_be_private_before_anything_is_ordered() {
    let Some(h) = Harness::new(&dns_config(true)) else {
        return;
    };
    let file = h.server().join("secrets/dns-rfc2136.ini");
    for (mode, expected) in [
        (None, "is missing"),
        (Some("644"), "chmod 600"),
        (Some("dir"), "chmod 700"),
    ] {
        match mode {
            Some("dir") => {
                credentials(&h, "600");
                crate::helpers::run(
                    "chmod",
                    &["755", h.server().join("secrets").to_str().unwrap()],
                );
            }
            Some(mode) => drop(credentials(&h, mode)),
            None => {}
        }
        for script in ["nginx-for-cert/run.sh", "renew/run.sh"] {
            let run = h.run(script, &[], &[("FAKE_CERTBOT", "order order")]);
            assert_eq!(run.code(), Some(1), "{script}: {}", run.log());
            assert!(
                run.log()
                    .contains(&h.server().join("secrets").display().to_string())
                    && run.log().contains(expected),
                "{script}: {}",
                run.log()
            );
            assert!(
                run.certbot().is_empty(),
                "{script} ordered: {:?}",
                run.calls
            );
        }
    }
    // Fixed: a mixed server orders both, port 80 only for the HTTP-01 one.
    credentials(&h, "600");
    let run = h.run(
        "nginx-for-cert/run.sh",
        &[],
        &[("FAKE_CERTBOT", "order order")],
    );
    let runs = run.certbot();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let http = runs
        .iter()
        .find(|r| r.contains(&"plain.example.com".to_string()))
        .unwrap();
    assert!(http.contains(&"--webroot".to_string()) && http.contains(&"--pre-hook".to_string()));
    assert!(run.has(&["up", "--detach", "--wait", "nginx_for_cert"]));
    let mounted = fs::read_to_string(h.fake().join("dns-credentials")).unwrap();
    assert_eq!(mounted.trim(), file.display().to_string());
}

// Catches: a tree from before secrets/ (the credentials in certifications/dns/, which
// every certbot container mounts) failing, or kept there silently.
#[test]
fn dns_credentials_at_the_old_place_still_work_and_the_script_says_where_to_move_them() {
    let Some(h) = Harness::new(&dns_config(false)) else {
        return;
    };
    let old = h.server().join("certifications/dns/rfc2136.ini");
    fs::create_dir_all(old.parent().unwrap()).unwrap();
    fs::write(&old, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
    crate::helpers::run("chmod", &["600", old.to_str().unwrap()]);
    let run = h.exits(0, "nginx-for-cert/run.sh", &[("FAKE_CERTBOT", "order")]);
    let new = h.server().join("secrets/dns-rfc2136.ini");
    assert!(
        run.log()
            .contains(&format!("mv {} {}", old.display(), new.display())),
        "{}",
        run.log()
    );
    let mounted = fs::read_to_string(h.fake().join("dns-credentials")).unwrap();
    assert_eq!(mounted.trim(), old.display().to_string());
    // Readable by others there too: stopped, as in secrets/.
    crate::helpers::run("chmod", &["644", old.to_str().unwrap()]);
    h.exits(1, "nginx-for-cert/run.sh", &[("FAKE_CERTBOT", "order")]);
}

// Catches: links checked once, at the start, while Docker follows them at every mount:
// the HTTP-01 certbot container planting a link (at live/, or at an older tree's credentials
// file) where the DNS plugin's container of the same run would mount it.
#[test]
fn a_link_planted_mid_run_stops_the_next_container() {
    for (plant, old_place) in [("live", false), ("dns/rfc2136.ini", true)] {
        let Some(h) = Harness::new(&dns_config(true)) else {
            return;
        };
        if old_place {
            let old = h.server().join("certifications/dns/rfc2136.ini");
            fs::create_dir_all(old.parent().unwrap()).unwrap();
            fs::write(&old, "dns_rfc2136_server = 192.0.2.53\n").unwrap();
            crate::helpers::run("chmod", &["600", old.to_str().unwrap()]);
        } else {
            credentials(&h, "600");
        }
        let run = h.run(
            "nginx-for-cert/run.sh",
            &[],
            &[("FAKE_CERTBOT", "order order"), ("FAKE_PLANT", plant)],
        );
        assert_eq!(run.code(), Some(1), "{plant}: {}", run.log());
        let planted = h.server().join("certifications").join(plant);
        assert!(
            run.log().contains(&planted.display().to_string())
                && run.log().contains("symbolic link"),
            "{plant}: {}",
            run.log()
        );
        assert!(
            !run.has(&["--entrypoint", "python3", "certbot_dns"]),
            "{plant}: the DNS plugin's container started"
        );
    }
}
