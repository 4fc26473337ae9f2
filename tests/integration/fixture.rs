//! The one fixture of the tests that write a config: an infra repo in a temporary folder, made
//! from a certgen.yaml given as text, then rendered, checked, edited and read as a user would,
//! through the certgen binary.
//!
//! ```ignore
//! let repo = Repo::rendered(ONE_SERVER);
//! repo.edit("app:3000", "app:4000").render();
//! assert_eq!(repo.check().0, 0);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_fs::fixture::ChildPath;
use assert_fs::prelude::*;
use assert_fs::TempDir;

use crate::helpers::{certgen, Certgen};

/// One server, `edge`, with two certificates.
pub const ONE_SERVER: &str = "\
renew_schedule: \"1 2,14 * * *\"
servers:
- name: edge
  deploy_path: /srv/infra
  certificates:
  - domains: [a.example.com]
    upstream: http://app:3000
  - domains: [b.example.com]
    upstream: http://app:3001
";

/// Two servers, dev and prod, with two certificates each.
pub const TWO_SERVERS: &str = "\
email: ops@example.com
acme_server: https://acme-v02.api.letsencrypt.org/directory
acme_ca_bundle: null
key_type: ecdsa
tls: intermediate
images:
  nginx: nginx:1.30
  certbot: certbot/certbot:v5.8.0
renew_schedule: 12 2,14 * * *
servers:
- name: dev
  deploy_path: /srv/infra
  certificates:
  - domains:
    - dev.example.com
    upstream: http://192.168.10.21:3000
  - domains:
    - img-dev.example.com
    upstream: http://192.168.10.22:8080
- name: prod
  deploy_path: /srv/infra
  certificates:
  - domains:
    - example.com
    upstream: http://192.168.10.11:3000
  - domains:
    - img.example.com
    upstream: http://192.168.10.12:8080
";

/// An infra repo: a folder holding certgen.yaml (and, once rendered, the tree beside it).
pub struct Repo {
    tmp: TempDir,
    root: PathBuf,
}

impl Repo {
    /// A repo whose certgen.yaml is `yaml`, not rendered.
    #[track_caller]
    pub fn new(yaml: &str) -> Repo {
        Repo::in_folder(yaml, "")
    }

    /// A repo in the folder `sub` of a temporary folder (its siblings free for the test's own
    /// files, such as stand-in programs).
    #[track_caller]
    pub fn in_folder(yaml: &str, sub: &str) -> Repo {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join(sub);
        fs::create_dir_all(&root).unwrap();
        let repo = Repo { tmp, root };
        repo.set_config(yaml);
        repo
    }

    /// A repo made by `certgen init ARGS --out DIR`, which must succeed.
    #[track_caller]
    pub fn initialized(args: &[&str]) -> Repo {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        certgen()
            .args(["init"])
            .args(args)
            .args(["--out"])
            .args([&root])
            .succeeds();
        Repo { tmp, root }
    }

    /// A repo whose certgen.yaml is `yaml`, rendered.
    #[track_caller]
    pub fn rendered(yaml: &str) -> Repo {
        let repo = Repo::new(yaml);
        repo.render();
        repo
    }

    /// The repo's folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The temporary folder the repo is in (the repo itself, unless made with `in_folder`).
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// A file or folder of the repo, for assert_fs's assertions.
    pub fn child(&self, rel: impl AsRef<Path>) -> ChildPath {
        ChildPath::new(self.root.join(rel))
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("certgen.yaml")
    }

    /// The text of certgen.yaml.
    pub fn config(&self) -> String {
        self.read("certgen.yaml")
    }

    /// Replaces certgen.yaml.
    #[track_caller]
    pub fn set_config(&self, yaml: &str) -> &Repo {
        fs::write(self.config_path(), yaml).unwrap();
        self
    }

    /// Replaces the first `from` in certgen.yaml with `to`; `from` must be there.
    #[track_caller]
    pub fn edit(&self, from: &str, to: &str) -> &Repo {
        let text = self.config();
        assert!(text.contains(from), "{from:?} not in certgen.yaml:\n{text}");
        self.set_config(&text.replacen(from, to, 1))
    }

    /// Edits a file of the tree by hand, as a teammate would: the first `from` becomes `to`.
    /// The file's path.
    #[track_caller]
    pub fn hand_edit(&self, rel: &str, from: &str, to: &str) -> PathBuf {
        let text = self.read(rel);
        assert!(text.contains(from), "{from:?} not in {rel}");
        let path = self.root.join(rel);
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        path
    }

    /// The text of a file of the repo.
    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        let path = self.root.join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `certgen render` with `extra` arguments; it must succeed. Its output.
    #[track_caller]
    pub fn render_with(&self, extra: &[&str]) -> String {
        self.certgen("render").args(extra).succeeds()
    }

    /// `certgen render`, whatever its outcome.
    pub fn render_output(&self) -> Output {
        self.certgen("render").run()
    }

    /// certgen's `command` run as a user runs it: in the repo, `--config certgen.yaml` (so its
    /// errors name `certgen.yaml:LINE:COLUMN`).
    fn certgen(&self, command: &str) -> Certgen {
        certgen()
            .current_dir(&self.root)
            .args([command, "--config", "certgen.yaml"])
    }

    /// `certgen render`; it must succeed. Its output.
    #[track_caller]
    pub fn render(&self) -> String {
        self.render_with(&[])
    }

    /// `certgen render`, which must exit with `code`. Its stderr.
    #[track_caller]
    pub fn render_fails(&self, code: i32) -> String {
        self.certgen("render").fails_with(code)
    }

    /// `certgen render` of a config it must refuse: exit 2, and nothing written (the repo holds
    /// only certgen.yaml still). The error.
    #[track_caller]
    pub fn refused(&self) -> String {
        let err = self.render_fails(2);
        assert_eq!(
            crate::helpers::files_under(&self.root),
            [PathBuf::from("certgen.yaml")],
            "a refused config wrote files: {err}"
        );
        err
    }

    /// `certgen check`: its exit code, and its stdout and stderr together.
    pub fn check(&self) -> (i32, String) {
        let out = self.certgen("check").run();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap(), text)
    }
}

/// `certgen init ARGS --out DIR` into a new folder, which it must refuse: exit 2, nothing
/// written. Its stderr.
#[track_caller]
pub fn init_refused(args: &[&str]) -> String {
    let tmp = TempDir::new().unwrap();
    let err = certgen()
        .args(["init"])
        .args(args)
        .args(["--out"])
        .args([tmp.path()])
        .fails_with(2);
    assert!(
        crate::helpers::files_under(tmp.path()).is_empty(),
        "init {args:?} was refused but wrote files"
    );
    err
}

#[test]
fn a_repo_renders_edits_and_checks() {
    let repo = Repo::rendered(ONE_SERVER);
    repo.child("edge/nginx-ssl/nginx/sites/a.example.com.conf")
        .assert(predicates::str::contains("app:3000"));
    assert_eq!(repo.check().0, 0);
    repo.edit("app:3000", "app:4000");
    assert_eq!(
        repo.check().0,
        1,
        "an edited config is drift until rendered"
    );
    assert!(repo.render().contains("a.example.com.conf"));
    assert_eq!(repo.check().0, 0);
}
