//! Other CAs: one that registers accounts only with External Account Binding.

use super::*;

use certgen::config::Eab;
use certgen::validate::EabKid;

/// The third Pebble, which requires EAB.
const PEBBLE_EAB_PORT: u16 = 14002;
const PEBBLE_EAB_MANAGEMENT: u16 = 15002;
const EAB_KID: &str = "kid-e2e";
/// The HMAC key the CA gives with the key id (base64url, as Pebble and every CA write it).
const EAB_HMAC: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

impl World {
    /// front moves to a CA that requires External Account Binding: without the HMAC key on the
    /// server, run.sh stops naming it and orders nothing; with it, certbot registers and every
    /// certificate is ordered anew from that CA; the key is in no log.
    pub(super) fn eab(&mut self) -> Result<(), String> {
        let d = self.scratch.path().to_path_buf();
        let config = format!(
            r#"{{"pebble":{{"listenAddress":"0.0.0.0:{PEBBLE_EAB_PORT}","managementListenAddress":"0.0.0.0:{PEBBLE_EAB_MANAGEMENT}",
            "certificate":"{d}/pebble.pem","privateKey":"{d}/pebble.key","httpPort":80,"tlsPort":5001,
            "ocspResponderURL":"","externalAccountBindingRequired":true,
            "externalAccountMACKeys":{{"{EAB_KID}":"{EAB_HMAC}"}},
            "profiles":{{"default":{{"description":"90 days","validityPeriod":7776000}},
            "shortlived":{{"description":"6 days","validityPeriod":{SHORTLIVED}}}}}}}}}"#,
            d = d.display()
        );
        fs::write(d.join("pebble-eab.json"), config).unwrap();
        self.helpers.0.push(spawn(
            Command::new(pebble_with_profiles())
                .args(["-config", d.join("pebble-eab.json").to_str().unwrap()])
                .args(["-dnsserver", "127.0.0.1:8053"])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0"),
            &d.join("pebble-eab.log"),
        ));
        wait_until("the EAB Pebble", || listening(PEBBLE_EAB_MANAGEMENT))?;
        let root = d.join("pebble-eab-root.pem");
        sh(&format!(
            "curl -sSf --cacert {d}/pebble-ca.pem https://127.0.0.1:{PEBBLE_EAB_MANAGEMENT}/roots/0 -o {}",
            root.display(),
            d = d.display()
        ));

        let bridge = docker_bridge_address();
        let bundle = fs::read_to_string(d.join("pebble-ca.pem")).unwrap();
        // Back to the suite's Pebble for the stages after (front's certificates stay).
        self.rendered_with(
            |cfg| {
                let front = &mut cfg.servers[1];
                front.acme_server = Some(
                    AcmeServer::parse(&format!("https://{bridge}:{PEBBLE_EAB_PORT}/dir")).unwrap(),
                );
                // A server with its own ACME server brings that server's CA bundle.
                front.acme_ca_bundle = Some(PemBundle::parse(&bundle).unwrap());
                front.eab = Some(Eab {
                    kid: EabKid::parse(EAB_KID).unwrap(),
                });
            },
            |world| world.eab_registration(&root),
        )
    }

    fn eab_registration(&self, root: &Path) -> Result<(), String> {
        let accounts = self.front().join("certifications/accounts");
        let registered = || {
            sh_out(&format!(
                "ls {}/*:{PEBBLE_EAB_PORT}/dir/*/regr.json 2>/dev/null",
                accounts.display()
            ))
        };
        let refused = self.front_script("nginx-for-cert/run.sh");
        let log = output_text(&refused);
        if refused.status.success()
            || !log.contains("is missing")
            || !log.contains("install -m 600 /dev/null")
            || !log.contains("secrets/eab-hmac-key")
            || !registered().is_empty()
        {
            return Err(format!("run.sh without the EAB key:\n{log}"));
        }
        let secrets = self.front().join("secrets");
        fs::create_dir_all(&secrets).unwrap();
        fs::write(secrets.join("eab-hmac-key"), format!("{EAB_HMAC}\n")).unwrap();
        sh(&format!(
            "chmod 700 {0} && chmod 600 {0}/eab-hmac-key",
            secrets.display()
        ));
        let log = succeeded(&self.front_script("nginx-for-cert/run.sh"))?;
        if !log.contains("certbot registers one there with External Account Binding") {
            return Err(format!("run.sh did not say it registers with EAB:\n{log}"));
        }
        if registered().is_empty() {
            return Err(format!("no account at the EAB Pebble:\n{log}"));
        }
        // Each certificate now chains to the EAB Pebble's root (edge's proxy holds 443 now:
        // front's certificates are checked on disk).
        for name in ["r1.test", WWW_R1, "r2.test"] {
            let chain = self
                .front()
                .join("certifications/live")
                .join(name)
                .join("fullchain.pem");
            let verified = sh_out(&format!(
                "openssl verify -CAfile {} -untrusted {1} {1} 2>&1",
                root.display(),
                chain.display()
            ));
            if !verified.trim().ends_with(": OK") {
                return Err(format!("{name}, with the EAB Pebble's root: {verified}"));
            }
        }
        // The key reached certbot in a file: it is in no log.
        let certbot_log = self.front().join("certifications/logs/letsencrypt.log");
        let logged = fs::read_to_string(&certbot_log).unwrap_or_default();
        if log.contains(EAB_HMAC) || logged.contains(EAB_HMAC) {
            return Err("the EAB HMAC key is in a log".into());
        }
        // Registered: the next run needs the key no more.
        fs::remove_file(secrets.join("eab-hmac-key")).unwrap();
        succeeded(&self.front_script("nginx-for-cert/run.sh")).map(drop)
    }
}

impl World {
    /// `wild/status.sh --caa`, asking BIND: the records that pin e2e.test and *.e2e.test to the
    /// account Pebble created, with dns-01; "not pinned" before they are published, "pinned"
    /// after; a CAA record that names another CA is reported as forbidding this one. The
    /// records are removed after.
    pub(super) fn caa(&mut self) -> Result<(), String> {
        let result = self.caa_pinned();
        self.caa_update(&["update delete e2e.test. CAA"]);
        result
    }

    fn caa_pinned(&mut self) -> Result<(), String> {
        let resolver = format!("{}:{BIND_PORT}", docker_bridge_address());
        let caa = || {
            let out = Command::new(self.wild().join("status.sh"))
                .args(["--caa", "--resolver", &resolver])
                .output()
                .unwrap();
            (out.status.code(), output_text(&out))
        };
        let (code, before) = caa();
        // The account certbot registered at the second Pebble, as Pebble named it.
        let regr = sh_out(&format!(
            "cat {}/certifications/accounts/*:{PEBBLE2_PORT}/dir/*/regr.json",
            self.wild().display()
        ));
        let regr: serde_json::Value =
            serde_json::from_str(&regr).map_err(|e| format!("regr.json {regr:?}: {e}"))?;
        let uri = regr["uri"]
            .as_str()
            .ok_or(format!("no account URI in {regr}"))?;
        let records: Vec<&str> = before.lines().filter(|l| l.contains(" CAA 0 ")).collect();
        let expected = |tag: &str| {
            format!(
                "e2e.test. CAA 0 {tag} \"pebble.letsencrypt.org; accounturi={uri}; validationmethods=dns-01\""
            )
        };
        if code != Some(1)
            || records != [expected("issue"), expected("issuewild")]
            || !before.contains("\ne2e.test: not pinned: no CAA record")
        {
            return Err(format!(
                "status.sh --caa before publishing ({code:?}):\n{before}"
            ));
        }
        // Published as printed (nsupdate wants a TTL after the name).
        let adds: Vec<String> = records
            .iter()
            .map(|r| format!("update add {}", r.replacen(". CAA", ". 30 CAA", 1)))
            .collect();
        self.caa_update(&adds.iter().map(String::as_str).collect::<Vec<_>>());
        let (code, after) = caa();
        if code != Some(0)
            || !after.contains("\ne2e.test: pinned: ")
            || !after.contains("\n*.e2e.test: pinned: ")
        {
            return Err(format!(
                "status.sh --caa once published ({code:?}):\n{after}"
            ));
        }
        // Another CA's record: reported as forbidding this one.
        self.caa_update(&[
            "update delete e2e.test. CAA",
            "update add e2e.test. 30 CAA 0 issue \"other-ca.example\"",
        ]);
        let (code, other) = caa();
        if code != Some(1) || !other.contains("\ne2e.test: forbidden: CAA at e2e.test names no domain of this CA (pebble.letsencrypt.org)") {
            return Err(format!("status.sh --caa with another CA's record ({code:?}):\n{other}"));
        }
        self.caa_before_ordering()
    }

    /// Under that record, a new certificate is not ordered: nginx-for-cert/run.sh says why (its
    /// CAA lookups ask caa_resolver, BIND here), exits 1, and nothing is issued.
    fn caa_before_ordering(&mut self) -> Result<(), String> {
        let out = self.rendered_with(
            |cfg| {
                let wild = server_named(cfg, WILD);
                let mut cert = Certificate::new(
                    vec![DomainName::parse("caa.e2e.test").unwrap()],
                    wild.certificates[0].upstream.clone().unwrap(),
                );
                cert.challenge = Challenge::Dns01;
                wild.certificates.push(cert);
            },
            |world| world.script_of(WILD, "nginx-for-cert/run.sh"),
        );
        let log = output_text(&out);
        let said = "certificate caa.e2e.test: not ordered from https://";
        let why = "caa.e2e.test: CAA at e2e.test names no domain of this CA (pebble.letsencrypt.org) for this account and dns-01: an order would fail";
        if out.status.code() != Some(1)
            || !log.contains(said)
            || !log.contains(why)
            || !log.contains("could not obtain: caa.e2e.test")
        {
            return Err(format!(
                "nginx-for-cert/run.sh under another CA's record ({:?}):\n{log}",
                out.status.code()
            ));
        }
        if self
            .wild()
            .join("certifications/renewal/caa.e2e.test.conf")
            .exists()
        {
            return Err(format!("caa.e2e.test was ordered:\n{log}"));
        }
        Ok(())
    }

    /// Runs nsupdate on BIND's e2e.test zone with the suite's TSIG key.
    fn caa_update(&self, commands: &[&str]) {
        let script = format!(
            "server 127.0.0.1 {BIND_PORT}\nzone e2e.test\n{}\nsend\n",
            commands.join("\n")
        );
        let key = self.scratch.path().join("dns/tsig.key");
        let out =
            crate::helpers::run_with_input("nsupdate", &["-k", key.to_str().unwrap()], &script)
                .unwrap();
        assert!(out.status.success(), "nsupdate:\n{}", output_text(&out));
    }
}

impl World {
    /// edge gains the EAB Pebble as its fallback while its ACME server is down (since the
    /// renewal with the ACME server down): a due renewal is ordered from the fallback, once the
    /// fallback's HMAC key is on the server, and served; status.sh names the fallback. With the
    /// ACME server back, the next due renewal comes from it again, with edge's account there.
    pub(super) fn fallback(&mut self) -> Result<(), String> {
        let fallback = format!("https://{}:{PEBBLE_EAB_PORT}/dir", docker_bridge_address());
        // Then edge without a fallback, for the stages after.
        let result = self.rendered_with(
            |cfg| {
                cfg.servers[0].fallback_acme_server = Some(AcmeServer::parse(&fallback).unwrap());
                cfg.servers[0].fallback_eab = Some(Eab {
                    kid: EabKid::parse(EAB_KID).unwrap(),
                });
            },
            |world| world.fallback_renewals(&fallback),
        );
        self.make_due(false);
        let _ = fs::remove_file(self.server().join("secrets/fallback-eab-hmac-key"));
        // The ACME server down again, as the stages after expect.
        self.pebble_door.stop();
        result
    }

    fn fallback_renewals(&mut self, fallback: &str) -> Result<(), String> {
        let conf = self.server().join("certifications/renewal/app.test.conf");
        let server_of = || {
            let text = fs::read_to_string(&conf).unwrap_or_default();
            let line = text.lines().find(|l| l.starts_with("server = "));
            line.unwrap_or_default()
                .trim_start_matches("server = ")
                .to_string()
        };
        let primary = server_of();
        let before = self.served_serial("app.test");

        // Without the fallback's HMAC key: no account can be registered there; said, and failed.
        self.make_due(true);
        let out = self.script("renew/run.sh");
        let log = output_text(&out);
        if out.status.success()
            || !log.contains("secrets/fallback-eab-hmac-key: a renewal from")
            || !log.contains(&format!("the ACME server {primary} failed (unreachable): ordering it from the fallback, {fallback}"))
            || !log.contains(&format!("the fallback {fallback} failed too"))
            || self.served_serial("app.test") != before
        {
            return Err(format!("renew/run.sh without the fallback's key:\n{log}"));
        }

        let secrets = self.server().join("secrets");
        fs::write(
            secrets.join("fallback-eab-hmac-key"),
            format!("{EAB_HMAC}\n"),
        )
        .unwrap();
        sh(&format!(
            "chmod 600 {}/fallback-eab-hmac-key",
            secrets.display()
        ));
        let log = succeeded(&self.script("renew/run.sh"))?;
        let steps = [
            format!("certificate app.test: the ACME server {primary} failed (unreachable): ordering it from the fallback, {fallback}"),
            format!("certificate app.test: obtained from the fallback {fallback}; its next renewal tries {primary} first"),
        ];
        if steps.iter().any(|step| !log.contains(step.as_str())) || server_of() != fallback {
            return Err(format!(
                "app.test was not renewed from the fallback:\n{log}"
            ));
        }
        let eab_root = self.scratch.path().join("pebble-eab-root.pem");
        let served = sh_out(&format!(
            "echo | openssl s_client -connect 127.0.0.1:443 -servername app.test -CAfile {} 2>&1 | grep -c 'Verify return code: 0'",
            eab_root.display()
        ));
        if served.trim() != "1" || self.served_serial("app.test") == before {
            return Err(format!(
                "the proxy does not serve app.test from the fallback:\n{log}"
            ));
        }
        let (code, status) = self.status(&[]);
        if code != Some(0) || !status.contains(&format!("from the FALLBACK ACME server ({fallback}; its next renewal tries {primary} first)")) {
            return Err(format!("status.sh after the fallback ({code:?}):\n{status}"));
        }
        if log.contains(EAB_HMAC) {
            return Err("the fallback's HMAC key is in the log".into());
        }
        // nginx-for-cert/run.sh meanwhile: nothing is due, the fallback issues nothing, all is well.
        self.make_due(false);
        let files = self.lineage_files();
        let log = succeeded(&self.script("nginx-for-cert/run.sh"))?;
        if self.lineage_files() != files
            || !log.contains("certificate img.test: not due: the fallback issued nothing")
        {
            return Err(format!("nginx-for-cert/run.sh during the outage:\n{log}"));
        }

        // The ACME server back: the next due renewal comes from it, with edge's account there.
        let store = self.server().join("certifications");
        let accounts = || sh_out(&format!("ls -d {}/accounts/*/dir/*", store.display()));
        let registered = accounts();
        self.pebble_door = Spawned(vec![super::start::open_door(
            self.scratch.path(),
            &docker_bridge_address(),
            14000,
        )]);
        self.make_due(true);
        let log = succeeded(&self.script("renew/run.sh"))?;
        self.make_due(false);
        if log.contains("from the fallback") || server_of() != primary || accounts() != registered {
            return Err(format!(
                "app.test was not renewed from the ACME server again:\n{log}"
            ));
        }
        wait_until(
            "the proxy serves app.test from the ACME server again",
            || self.https("app.test") == Ok(200),
        )?;
        let (code, status) = self.status(&[]);
        if code != Some(0) || status.contains("FALLBACK") {
            return Err(format!(
                "status.sh with the ACME server back ({code:?}):\n{status}"
            ));
        }
        // status.sh --caa names both accounts: the fallback's CA must be allowed too. (No
        // resolver answers here: every verdict is unknown.)
        let (code, caa) = self.status(&["--caa", "--resolver", "127.0.0.1:9"]);
        let uri = |port: u16| {
            let regr = sh_out(&format!(
                "cat {}/certifications/accounts/*:{port}/dir/*/regr.json",
                self.server().display()
            ));
            let regr: serde_json::Value = serde_json::from_str(&regr).unwrap_or_default();
            regr["uri"].as_str().unwrap_or("none").to_string()
        };
        let record = |port: u16| {
            format!(
                "app.test. CAA 0 issue \"pebble.letsencrypt.org; accounturi={}; validationmethods=http-01\"",
                uri(port)
            )
        };
        if code != Some(1)
            || !caa.contains(&record(14000))
            || !caa.contains(&record(PEBBLE_EAB_PORT))
            || !caa.contains("app.test: the fallback: unknown: the CAA lookup failed")
        {
            return Err(format!(
                "status.sh --caa with a fallback ({code:?}):\n{caa}"
            ));
        }
        port80_closed()
    }
}
