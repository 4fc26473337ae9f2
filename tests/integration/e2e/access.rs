//! Who may reach a site: allow lists (also through a trusted proxy) and basic auth, each changed
//! in certgen.yaml and applied as a team would.

use super::*;

use certgen::config::{Auth, RouteAuth, Satisfy};
use certgen::validate::{AuthRealm, TrustedProxy, UsersFile};

/// The private networks: the suite's client reaches the proxy from a Docker network's gateway.
const PRIVATE: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

impl World {
    /// certgen.yaml as `change` leaves the original, rendered, then `./apply.sh` as the README
    /// says; the original is restored by `change` doing nothing.
    fn apply_change(&self, original: &str, change: impl Fn(&mut Config)) -> Result<(), String> {
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(original, &config).unwrap();
        change(&mut cfg);
        write_and_render(&config, &cfg);
        succeeded(&self.readme_reload(SERVER)).map(drop)
    }

    /// The status of `https://NAME/PATH` with curl's `extra` arguments, once it is `expected`.
    fn answers(&self, name: &str, path: &str, extra: &[&str], expected: u16) -> Result<(), String> {
        wait_until(
            &format!("{name}{path} {extra:?} answering {expected}"),
            || self.request(name, path, extra).0 == expected,
        )
    }

    /// img.test's allow list, changed and rendered as a team would: `./apply.sh` reloads the
    /// proxy, which then refuses the suite's client, and admits it again once restored; behind a
    /// trusted proxy, the client it names in X-Forwarded-For is the one matched.
    pub(super) fn allow_list_changed(&mut self) -> Result<(), String> {
        let original = fs::read_to_string(self.out.join("certgen.yaml")).unwrap();
        let allow = |list: &'static [&'static str]| {
            move |cfg: &mut Config| {
                cfg.servers[0].certificates[1].allow = list
                    .iter()
                    .map(|a| ClientNetwork::parse(a).unwrap())
                    .collect();
            }
        };
        self.apply_change(&original, allow(&PRIVATE))?;
        self.answers(IMG, "/", &[], 200)?;
        self.apply_change(&original, allow(&["203.0.113.0/24", "2001:db8::/32"]))?;
        self.answers(IMG, "/", &[], 403)?;
        // The suite's client as a load balancer in front (trusted_proxies): the address it
        // names is matched, in the list or not; its own address is not in the list.
        self.apply_change(&original, |cfg| {
            allow(&["203.0.113.0/24", "2001:db8::/32"])(cfg);
            cfg.servers[0].trusted_proxies = PRIVATE
                .iter()
                .map(|p| TrustedProxy::parse(p).unwrap())
                .collect();
        })?;
        self.answers(IMG, "/", &["-H", "X-Forwarded-For: 203.0.113.9"], 200)?;
        self.answers(IMG, "/", &["-H", "X-Forwarded-For: 198.51.100.1"], 403)?;
        self.answers(IMG, "/", &[], 403)?;
        let app = self.https("app.test");
        self.apply_change(&original, |_| {})?;
        self.answers(IMG, "/", &[], 200)?;
        if app != Ok(200) {
            return Err(format!(
                "app.test, which has no allow list, answered {app:?}"
            ));
        }
        Ok(())
    }

    /// Basic auth on img.test, with its password file in secrets/auth/ as the server's README
    /// says: 401 without it, 200 with it; its health route without; the file in no commit; with
    /// `satisfy: either`, the allow list's client without a password. certgen.yaml is restored
    /// after, whatever the outcome (a later stage moves the tree, without secrets/).
    pub(super) fn basic_auth(&mut self) -> Result<(), String> {
        let original = fs::read_to_string(self.out.join("certgen.yaml")).unwrap();
        let result = self.basic_auth_applied(&original);
        let restored = self.apply_change(&original, |_| {});
        result?;
        restored?;
        self.answers(IMG, "/", &[], 200)
    }

    fn basic_auth_applied(&self, original: &str) -> Result<(), String> {
        let locked = |cfg: &mut Config| {
            let site = img(cfg);
            site.auth = Some(Auth {
                realm: Some(AuthRealm::parse("Staff").unwrap()),
                users: UsersFile::parse("staff").unwrap(),
            });
            let app = site.upstream.clone().unwrap();
            site.routes.insert(
                PathPrefix::parse("/health/").unwrap(),
                Route {
                    auth: Some(RouteAuth::Off),
                    ..Route::to(app)
                },
            );
        };
        // No password file yet: apply.sh refuses to start the proxy with it, naming it.
        let config = self.out.join("certgen.yaml");
        let mut cfg = Config::from_yaml(original, &config).unwrap();
        locked(&mut cfg);
        write_and_render(&config, &cfg);
        let refused = self.readme_reload(SERVER);
        let log = output_text(&refused);
        if refused.status.success() || !log.contains("secrets/auth") {
            return Err(format!("apply.sh without the password file:\n{log}"));
        }
        if self.https(IMG) != Ok(200) {
            return Err(format!(
                "the running proxy, after the refusal: {:?}",
                self.https(IMG)
            ));
        }
        let auth = self.server().join("secrets/auth");
        fs::create_dir_all(&auth).unwrap();
        let hash = sh_out("openssl passwd -6 -salt certgene2e s3cret");
        fs::write(auth.join("staff"), format!("alice:{hash}")).unwrap();
        sh(&format!(
            "chmod 700 {0} && chmod 600 {0}/staff",
            auth.display()
        ));
        self.apply_change(original, locked)?;
        self.answers(IMG, "/", &[], 401)?;
        let (_, head, _) = self.request(IMG, "/", &[]);
        if !head
            .to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"staff\"")
        {
            return Err(format!("no password prompt:\n{head}"));
        }
        self.answers(IMG, "/", &["-u", "alice:wrong"], 401)?;
        self.answers(IMG, "/", &["-u", "alice:s3cret"], 200)?;
        self.answers(IMG, "/health/", &[], 200)?;
        // The password file is in no file git would commit.
        let dir = self.out.to_str().unwrap();
        succeeded(&run("git", &["-C", dir, "add", "-A"]))?;
        let staged = succeeded(&run("git", &["-C", dir, "diff", "--cached", "--name-only"]))?;
        let found = run(
            "git",
            &["-C", dir, "grep", "--cached", "-l", "-F", hash.trim()],
        );
        if staged.contains("/secrets/") || found.status.success() {
            return Err(format!(
                "git would commit the password file or its hash:\n{staged}\n{}",
                output_text(&found)
            ));
        }
        // either: the suite's client, on the allow list, needs no password.
        self.apply_change(original, |cfg| {
            locked(cfg);
            let site = img(cfg);
            site.allow = PRIVATE
                .iter()
                .map(|a| ClientNetwork::parse(a).unwrap())
                .collect();
            site.satisfy = Satisfy::Either;
        })?;
        self.answers(IMG, "/", &[], 200)
    }
}

/// img.test in `cfg`.
fn img(cfg: &mut Config) -> &mut Certificate {
    let certificates = &mut cfg.servers[0].certificates;
    certificates.iter_mut().find(|c| c.name() == IMG).unwrap()
}
