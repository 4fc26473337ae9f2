//! The helpers every test module shares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A run of the certgen binary: `certgen().args([...]).succeeds()`.
pub struct Certgen {
    cmd: Command,
}

pub fn certgen() -> Certgen {
    Certgen {
        cmd: Command::new(env!("CARGO_BIN_EXE_certgen")),
    }
}

impl Certgen {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn run(mut self) -> Output {
        self.cmd.output().expect("certgen runs")
    }

    /// Runs, expects exit 0, and returns stdout.
    #[track_caller]
    pub fn succeeds(self) -> String {
        let out = self.run();
        assert!(
            out.status.success(),
            "certgen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expects `code`, and returns stderr.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> String {
        let out = self.run();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit {code}; stderr:\n{stderr}"
        );
        stderr
    }
}

/// Is the opt-in variable `name` set to 1? The tests that ask are `#[ignore]`d, so plain
/// `cargo test` lists them as ignored; run with `--include-ignored`, they still need their
/// variable, and without it say that they skipped. Any other value is a mistake, not a no.
pub fn opted_in(name: &str, what: &str) -> bool {
    let on = switched_on(name, &format!("run {what}"));
    if !on {
        let _ = writeln!(
            std::io::stderr(),
            "note: skipping {what}; set {name}=1 to run it (.ci/run does)"
        );
    }
    on
}

/// Is the switch `name` set to 1? Unset is no; any other value is a mistake, not a no.
pub fn switched_on(name: &str, what: &str) -> bool {
    match std::env::var(name).as_deref() {
        Ok("1") => true,
        Err(std::env::VarError::NotPresent) => false,
        Ok(other) => panic!("{name} is {other:?}: set it to 1 to {what}, or unset it"),
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Runs a command to completion and returns its output; panics if it cannot be started.
#[track_caller]
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (is it installed? .ci/setup installs it)")
        })
}

/// Runs `program` with `args` and `input` on its standard input, to completion.
pub fn run_with_input(program: &str, args: &[&str], input: &str) -> std::io::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    child.wait_with_output()
}

/// Every file under `dir`, relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

/// The end-to-end suites (e2e, swarm) run one at a time: both load this machine's two cores, and
/// their timings are the README's figures.
pub fn end_to_end_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
