//! Each claim the README makes about the command line has a test that fails when the
//! claim breaks. (The claims about the generated scripts are in `scripts.rs`, those only real
//! Docker can show in `e2e.rs`.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_fs::prelude::*;
use assert_fs::TempDir;

use crate::fixture::init_refused;
use crate::fixture::{Repo, ONE_SERVER};
use crate::helpers::{certgen, files_under};

// "each file is written atomically, so an error leaves nothing half-written" and "exit 1
// failure": a write that fails part way (a file-size limit, as a full disk would) leaves every
// file either as it was or as rendered, no temporary file, the manifest as it was, and exit 1.
#[test]
fn a_write_that_fails_part_way_leaves_no_half_written_file() {
    let repo = Repo::rendered(ONE_SERVER);
    let before: Vec<(PathBuf, Vec<u8>)> = contents(repo.path());
    repo.edit("app:3000", "app:4000")
        .edit("a.example.com", "c.example.com");
    // 8 KiB per file at most: the small files are written, the larger scripts are not.
    let out = Command::new("bash")
        .args([
            "-c",
            "trap '' XFSZ; ulimit -f 8; exec \"$0\" render --config \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_certgen"))
        .arg(repo.path().join("certgen.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a write failure is not bad input: {stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    let after = contents(repo.path());
    let temporary: Vec<&PathBuf> = after
        .iter()
        .map(|(p, _)| p)
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".certgen-") && name != ".certgen-manifest"
        })
        .collect();
    assert!(
        temporary.is_empty(),
        "temporary files were left: {temporary:?}"
    );
    let rendered_now = render_in_memory(repo.path());
    for (path, bytes) in &after {
        let was = before.iter().find(|(p, _)| p == path).map(|(_, b)| b);
        let new = rendered_now.get(path).map(|f| f.contents.as_bytes());
        assert!(
            Some(bytes) == was || Some(bytes.as_slice()) == new || path.ends_with("certgen.yaml"),
            "{} is half-written",
            path.display()
        );
    }
    let manifest = |files: &[(PathBuf, Vec<u8>)]| {
        files
            .iter()
            .find(|(p, _)| p.ends_with(".certgen-manifest"))
            .map(|(_, b)| b.clone())
    };
    assert_eq!(
        manifest(&after),
        manifest(&before),
        "the manifest is written last"
    );
}

fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

fn render_in_memory(dir: &Path) -> certgen::render::Tree {
    let path = dir.join("certgen.yaml");
    let config =
        certgen::config::Config::from_yaml(&fs::read_to_string(&path).unwrap(), &path).unwrap();
    certgen::render::render(&config).unwrap()
}

// "the value (escaped, so a newline or NUL shows)".
#[test]
fn values_in_errors_are_escaped() {
    let err = init_refused(&[
        "--domain",
        "example.com",
        "--email",
        "a\nb\u{1b}[31m@example.com",
    ]);
    assert!(err.contains(r#""a\nb\u{1b}[31m@example.com""#), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape character reached the terminal: {err:?}"
    );
}

// "`--config` defaults to `./certgen.yaml` and `--out` to the config's folder".
#[test]
fn render_and_check_find_the_config_and_the_folder_by_default() {
    let repo = Repo::rendered(ONE_SERVER);
    fs::remove_dir_all(repo.path().join("edge")).unwrap();
    certgen()
        .current_dir(repo.path())
        .args(["render"])
        .succeeds();
    repo.child("edge/renew/run.sh")
        .assert(predicates::path::is_file());
    certgen()
        .current_dir(repo.path())
        .args(["check"])
        .succeeds();

    // From elsewhere, --config alone: the tree is the config's folder.
    let other = TempDir::new().unwrap();
    fs::remove_dir_all(repo.path().join("edge")).unwrap();
    certgen()
        .current_dir(other.path())
        .args(["render", "--config"])
        .args([repo.path().join("certgen.yaml")])
        .succeeds();
    repo.child("edge/renew/run.sh")
        .assert(predicates::path::is_file());
    assert!(
        files_under(other.path()).is_empty(),
        "nothing is written where it runs"
    );

    // --out elsewhere: the tree goes there.
    let out = TempDir::new().unwrap();
    certgen()
        .args(["render", "--config"])
        .args([repo.path().join("certgen.yaml")])
        .args(["--out"])
        .args([out.path()])
        .succeeds();
    out.child("edge/renew/run.sh")
        .assert(predicates::path::is_file());
    certgen()
        .args(["check", "--config"])
        .args([repo.path().join("certgen.yaml")])
        .args(["--out"])
        .args([out.path()])
        .succeeds();
}

// Every flag of `init` lands where the README says.
#[test]
fn every_init_flag_lands_in_the_tree() {
    let tmp = TempDir::new().unwrap();
    let bundle = tmp.child("ca.pem");
    bundle
        .write_str("-----BEGIN CERTIFICATE-----\nMIIBflag\n-----END CERTIFICATE-----\n")
        .unwrap();
    let out = tmp.child("infra");
    certgen()
        .args(["init", "--out"])
        .args([out.path()])
        .args([
            "--domain",
            "a.example.com,www.a.example.com=http://front:3000",
        ])
        .args(["--domain", "b.example.com"])
        .args(["--email", "ops+certs@example.com", "--server", "web"])
        .args(["--upstream", "http://backend:8080", "--http", "redirect"])
        .args(["--deploy-path", "/opt/infra"])
        .args(["--acme-server", "https://ca.example.com/acme/dir"])
        .args(["--acme-ca-bundle", bundle.path().to_str().unwrap()])
        .args(["--nginx-image", "mirror.example.com/nginx:1.30.1"])
        .args(["--certbot-image", "mirror.example.com/certbot:v5.8.0"])
        .args(["--profile", "tlsserver"])
        .succeeds();
    let read = |p: &str| fs::read_to_string(out.path().join(p)).unwrap();
    let issue = read("web/nginx-for-cert/run.sh");
    assert!(
        issue.contains("profile='tlsserver' obtain http a.example.com"),
        "--profile"
    );
    assert!(issue.contains("--email 'ops+certs@example.com'"), "--email");
    assert!(
        issue.contains("acme_server='https://ca.example.com/acme/dir'"),
        "--acme-server"
    );
    assert!(
        issue.contains("obtain http a.example.com 'a.example.com' 'www.a.example.com'")
            && issue.contains("obtain http b.example.com 'b.example.com'"),
        "--domain"
    );
    assert!(
        read("web/acme-ca.pem").contains("MIIBflag"),
        "--acme-ca-bundle"
    );
    for compose in [
        "web/nginx-ssl/docker-compose.yml",
        "web/nginx-for-cert/docker-compose.yml",
    ] {
        assert!(
            read(compose).contains("mirror.example.com/nginx:1.30.1"),
            "--nginx-image"
        );
    }
    assert!(
        read("web/nginx-for-cert/docker-compose.yml").contains("mirror.example.com/certbot:v5.8.0"),
        "--certbot-image"
    );
    assert!(
        read("web/nginx-ssl/nginx/sites/a.example.com.conf").contains("server front:3000 resolve;"),
        "--domain NAMES=UPSTREAM"
    );
    assert!(
        read("web/nginx-ssl/nginx/sites/b.example.com.conf")
            .contains("server backend:8080 resolve;"),
        "--upstream"
    );
    assert!(
        read("web/nginx-ssl/docker-compose.yml").contains("\"80:80\""),
        "--http"
    );
    assert!(
        read("web/renew/crontab").contains("'/opt/infra/web/renew/run.sh'"),
        "--deploy-path"
    );
    assert!(out.path().join("web").is_dir(), "--server");
}

// "A generated file that was edited by hand stops render": also when render would delete it
// because its certificate left the config.
#[test]
fn a_hand_edited_file_of_a_removed_certificate_is_not_deleted_without_force() {
    let repo = Repo::rendered(ONE_SERVER);
    let site = repo
        .path()
        .join("edge/nginx-ssl/nginx/sites/b.example.com.conf");
    let edited = format!("{}# mine\n", fs::read_to_string(&site).unwrap());
    fs::write(&site, &edited).unwrap();
    repo.edit(
        "  - domains: [b.example.com]\n    upstream: http://app:3001\n",
        "",
    );
    let err = repo.render_fails(2);
    assert!(
        err.contains("sites/b.example.com.conf: edited by hand"),
        "{err}"
    );
    assert!(err.contains("-# mine"), "{err}");
    assert_eq!(fs::read_to_string(&site).unwrap(), edited);
    repo.render_with(&["--force"]);
    assert!(!site.exists());
}

// `deploy_path: /` (the infra folder is the root): paths have no double slash.
#[test]
fn a_deploy_path_of_root_gives_single_slashed_paths() {
    let repo = Repo::rendered(&ONE_SERVER.replace("deploy_path: /srv/infra", "deploy_path: /"));
    let crontab = fs::read_to_string(repo.path().join("edge/renew/crontab")).unwrap();
    assert!(
        crontab.contains(" '/edge/renew/run.sh' >> '/edge/renew/renew.log' 2>&1"),
        "{crontab}"
    );
    let readme = fs::read_to_string(repo.path().join("edge/README.md")).unwrap();
    assert!(
        readme.contains("`cd /edge`") && !readme.contains("//edge"),
        "{readme}"
    );
    let lib = fs::read_to_string(repo.path().join("edge/lib.sh")).unwrap();
    assert!(lib.contains("local expected='/edge'"), "{lib}");
}

// With --out and no --config, render and check read OUT/certgen.yaml.
#[test]
fn out_alone_finds_its_config() {
    let repo = Repo::rendered(ONE_SERVER);
    let elsewhere = TempDir::new().unwrap();
    certgen()
        .current_dir(elsewhere.path())
        .args(["check", "--out"])
        .args([repo.path()])
        .succeeds();
    fs::remove_file(repo.path().join("edge/renew/crontab")).unwrap();
    certgen()
        .current_dir(elsewhere.path())
        .args(["render", "--out"])
        .args([repo.path()])
        .succeeds();
    repo.child("edge/renew/crontab")
        .assert(predicates::path::is_file());
}

// Completions and a man page, from the same declaration as the parser.
#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    for shell in ["bash", "zsh", "fish"] {
        let script = certgen().args(["completions", shell]).succeeds();
        for word in ["init", "render", "check", "--domain", "--http"] {
            // fish writes a long option as `-l domain`.
            let word = match (shell, word.strip_prefix("--")) {
                ("fish", Some(long)) => format!("-l {long}"),
                _ => word.to_string(),
            };
            assert!(script.contains(&word), "{shell} completion lacks {word}");
        }
        if shell == "bash" {
            let parses = Command::new("bash")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(parses.success(), "the bash completion does not parse");
        }
    }
    let man = certgen().args(["man"]).succeeds();
    assert!(
        man.contains(".TH certgen 1") && man.contains("render"),
        "{man}"
    );
    let err = certgen().args(["completions", "tcsh"]).fails_with(2);
    assert!(err.contains("possible values"), "{err}");
}

// Catches: `certgen man | grep -q .TH` (a reader that stops early) printing "Broken
// pipe" and exiting 1, or a panic, for any subcommand that prints a document.
#[test]
fn a_reader_that_closes_the_pipe_early_is_not_an_error() {
    for args in [&["man"][..], &["schema"], &["completions", "bash"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certgen"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The read end closed before certgen writes: every write fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{args:?}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// The examples in --help run as they are; dry runs list new files and show diffs of
// changes only (-v for everything); a dry run with --force says what it would replace.
#[test]
fn help_examples_run_and_dry_runs_are_short() {
    let help = certgen().args(["init", "--help"]).succeeds();
    let examples: Vec<String> = help
        .split("\n  certgen init ")
        .skip(1)
        .map(|e| {
            e.split("\n\n")
                .next()
                .unwrap()
                .replace("\\\n", " ")
                .replace("--out infra", "")
                // As the shell reads them: the quotes around a wildcard go.
                .replace('\'', "")
        })
        .collect();
    assert_eq!(examples.len(), 5, "{help}");
    for example in examples {
        let tmp = TempDir::new().unwrap();
        let args: Vec<&str> = example.split_whitespace().collect();
        certgen()
            .args(["init", "--out"])
            .args([tmp.path()])
            .args(&args)
            .succeeds();
    }
    let usage = certgen().args(["init", "--help"]).succeeds();
    assert!(
        usage.contains("Usage: certgen init --domain NAMES[=UPSTREAM]"),
        "{usage}"
    );

    let tmp = TempDir::new().unwrap();
    let dry = certgen()
        .args(["init", "--domain", "example.com", "--dry-run", "--out"])
        .args([tmp.path()])
        .succeeds();
    assert!(
        dry.contains("create ") && !dry.contains("+++ "),
        "no diffs of new files: {dry}"
    );
    assert!(dry.lines().count() < 40, "{dry}");
    let verbose = certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "--dry-run",
            "-v",
            "--out",
        ])
        .args([tmp.path()])
        .succeeds();
    assert!(verbose.contains("+++ "), "-v shows new files: {verbose}");

    tmp.child("example.com/README.md")
        .write_str("mine\n")
        .unwrap();
    let forced = certgen()
        .args([
            "init",
            "--domain",
            "example.com",
            "--dry-run",
            "--force",
            "--out",
        ])
        .args([tmp.path()])
        .succeeds();
    assert!(
        forced.contains("--force would replace") && !forced.contains("would need --force"),
        "{forced}"
    );
}

// --quiet prints nothing on success, and still what needs acting on.
#[test]
fn quiet_prints_only_what_needs_acting_on() {
    let tmp = TempDir::new().unwrap();
    let out = certgen()
        .args(["init", "--quiet", "--domain", "example.com", "--out"])
        .args([tmp.path()])
        .succeeds();
    assert_eq!(out, "");
    let config = tmp.path().join("certgen.yaml");
    assert_eq!(
        certgen()
            .args(["check", "-q", "--config"])
            .args([&config])
            .succeeds(),
        ""
    );
    tmp.child("example.com/nginx-ssl/nginx/conf.d/extra.conf")
        .write_str("# mine\n")
        .unwrap();
    let out = certgen()
        .args(["render", "-q", "--config"])
        .args([&config])
        .succeeds();
    assert!(
        out.starts_with("not generated: ") && out.lines().count() == 1,
        "{out}"
    );
    let drift = certgen()
        .args(["check", "-q", "--config"])
        .args([&config])
        .run();
    assert_eq!(drift.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&drift.stdout).contains("not generated: "));
}

// The JSON Schema (`certgen schema`, and certgen.schema.json beside the config) accepts
// every example and every config init writes, and flags a typo, as an editor would.
#[test]
fn the_schema_accepts_every_example_and_flags_typos() {
    let schema: serde_json::Value =
        serde_json::from_slice(&certgen().args(["schema"]).run().stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let as_json = |yaml: &str| -> serde_json::Value { serde_yaml::from_str(yaml).unwrap() };
    let mut examples = 0;
    for entry in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let yaml = fs::read_to_string(&path).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&yaml))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        examples += 1;
    }
    assert!(examples >= 6);

    let repo = Repo::initialized(&["--domain", "example.com"]);
    let written = fs::read_to_string(repo.path().join("certgen.yaml")).unwrap();
    assert!(
        written.starts_with("# yaml-language-server: $schema=./certgen.schema.json\n"),
        "{written}"
    );
    let beside = fs::read_to_string(repo.path().join("certgen.schema.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&beside).unwrap(),
        schema
    );
    assert!(validator.is_valid(&as_json(&written)));

    // A config without the line (written by hand, or before certgen had a schema): render says
    // which line to add when it first writes the schema, and never edits the config itself.
    let config = repo.path().join("certgen.yaml");
    let bare = written.lines().skip(1).collect::<Vec<_>>().join("\n") + "\n";
    fs::write(&config, &bare).unwrap();
    fs::remove_file(repo.path().join("certgen.schema.json")).unwrap();
    let render = || {
        let out = certgen().args(["render", "--config"]).args([&config]).run();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(render().contains("# yaml-language-server: $schema=./certgen.schema.json"));
    assert!(!render().contains("yaml-language-server"));
    assert_eq!(fs::read_to_string(&config).unwrap(), bare);

    for (typo, from, to) in [
        ("a mistyped global key", "renew_schedule:", "renew_shedule:"),
        ("a mistyped server key", "certificates:", "certificate:"),
        ("a mistyped certificate key", "upstream:", "upstreams:"),
        (
            "a string for a number",
            "renew_schedule:",
            "warn_days: two weeks\nrenew_schedule:",
        ),
        (
            "an unknown http mode",
            "renew_schedule:",
            "http: always\nrenew_schedule:",
        ),
    ] {
        assert!(written.contains(from), "{from}");
        let broken = written.replacen(from, to, 1);
        assert!(!validator.is_valid(&as_json(&broken)), "{typo} passed");
    }
}

// Colour in diffs and summaries on a terminal; none for pipes (as here) and none with
// NO_COLOR, even when forced.
#[test]
fn colour_only_where_it_helps() {
    let repo = Repo::initialized(&["--domain", "example.com", "--quiet"]);
    let status = repo.path().join("example.com/status.sh");
    let mut text = fs::read_to_string(&status).unwrap();
    text.push_str("# edited\n");
    fs::write(&status, text).unwrap();
    let check = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certgen"));
        cmd.args(["check", "--out"]).arg(repo.path());
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let piped = check(&[]);
    assert!(
        piped.contains("\n-# edited\n") && !piped.contains('\x1b'),
        "{piped}"
    );
    // CLICOLOR_FORCE stands in for a terminal here.
    let forced = check(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains("\x1b[31m-# edited\x1b[0m"), "{forced:?}");
    assert!(forced.contains("\x1b[33mchanged\x1b[0m: "), "{forced:?}");
    let refused = check(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!refused.contains('\x1b'), "{refused:?}");
}

// Catches: certgen(1) naming certgen-init(1) and other pages that do not exist, pages without
// their flags, and -q offered where it means nothing.
#[test]
fn man_pages_exist_for_every_page_named_and_list_the_flags() {
    let tmp = TempDir::new().unwrap();
    certgen()
        .args(["man", "--dir"])
        .args([tmp.path()])
        .succeeds();
    let main = fs::read_to_string(tmp.path().join("certgen.1")).unwrap();
    for command in ["init", "render", "check", "completions", "man", "schema"] {
        let page = format!("certgen-{command}.1");
        assert!(main.contains(&format!("certgen\\-{command}(1)")), "{main}");
        assert!(
            tmp.path().join(&page).is_file(),
            "{page} is named but missing"
        );
    }
    let init = fs::read_to_string(tmp.path().join("certgen-init.1")).unwrap();
    for flag in ["domain", "email", "dry\\-run", "quiet"] {
        assert!(
            init.contains(&format!("\\-\\-{flag}")),
            "--{flag} not in certgen-init(1)"
        );
    }
    for args in [
        &["schema", "-q"][..],
        &["man", "-q"],
        &["completions", "bash", "-q"],
    ] {
        let err = certgen().args(args).fails_with(2);
        assert!(err.contains("unexpected argument '-q'"), "{err}");
    }
}
