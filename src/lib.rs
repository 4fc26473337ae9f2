//! certgen writes a tree of files that gives a server HTTPS with Let's Encrypt, Docker Compose,
//! nginx and certbot. It runs nothing on the server itself: the tree is committed and run there.
//!
//! The flow of every command: parse and validate input ([`cli`], [`validate`], [`config`]),
//! render the whole tree in memory ([`render`]), then plan and write it without losing anything
//! ([`write`]). [`commands`] ties them together.

/// A regex compiled once, where it is used.
macro_rules! regex {
    ($re:expr) => {{
        static RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($re).expect("valid regex"));
        &*RE
    }};
}

pub mod cli;
pub mod commands;
pub mod config;
mod manifest;
pub mod names;
pub mod render;
pub mod validate;
pub mod verify;
pub mod write;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

/// Bad input: the user has to change the command or the config. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Runs the command line and turns the outcome into an exit code: 0 success, 1 failure,
/// 2 bad usage or bad input (nothing was written).
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::ValueValidation => {
            let _ = writeln!(io::stderr(), "{}", escaped_value_error(&e));
            return ExitCode::from(2);
        }
        Err(e) if e.kind() == clap::error::ErrorKind::UnknownArgument => {
            let _ = e.print();
            // `--domain a.example.com b.example.com`: the second name is an unknown argument.
            if let Some(clap::error::ContextValue::String(arg)) =
                e.get(clap::error::ContextKind::InvalidArg)
            {
                if !arg.starts_with('-') && arg.contains('.') {
                    let args: Vec<String> = std::env::args().collect();
                    let before = args
                        .iter()
                        .position(|a| a == arg)
                        .and_then(|i| args.get(i.checked_sub(1)?))
                        .filter(|a| !a.starts_with('-'))
                        .map_or("example.com", String::as_str);
                    let _ = writeln!(
                        io::stderr(),
                        "hint: to put several names on one certificate, separate them with commas: --domain {before},{arg}; repeat --domain for another certificate"
                    );
                }
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let quiet = match &cli.command {
        cli::Command::Init(args) => args.output.quiet,
        cli::Command::Render(args) => args.tree.output.quiet,
        cli::Command::Check(args) | cli::Command::Verify(args) => args.tree.output.quiet,
        _ => false,
    };
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
    let result = match cli.command {
        cli::Command::Init(args) => commands::init(*args),
        cli::Command::Render(args) => commands::render(args),
        cli::Command::Check(args) => commands::check(args),
        cli::Command::Verify(args) => commands::verify(args),
        cli::Command::Completions { shell } => commands::completions(shell),
        cli::Command::Man { dir } => commands::man(dir.as_deref()),
        cli::Command::Schema => commands::schema(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(
                anstream::stderr(),
                "{} {e:#}",
                paint::paint(paint::ERROR, "error:")
            );
            if is_bad_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// clap prints a rejected value as it was typed: a newline, a NUL or a terminal escape sequence
/// would reach the terminal. The same message, with the value escaped.
fn escaped_value_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (
        context(ContextKind::InvalidArg),
        context(ContextKind::InvalidValue),
    ) else {
        return e.to_string();
    };
    let rule = std::error::Error::source(e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!(
        "error: invalid value {value:?} for '{arg}'{rule}\n\nFor more information, try '--help'."
    )
}

fn is_bad_input(e: &anyhow::Error) -> bool {
    e.is::<BadInput>() || e.is::<write::WriteError>() || e.is::<config::ConfigError>()
}

/// `--quiet`: [`say`] prints nothing, [`advise`] still does.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a line to stdout, unless `--quiet`; a closed pipe (`certgen ... | head`) is not an
/// error.
pub(crate) fn say(line: impl std::fmt::Display) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        advise(line);
    }
}

/// Prints a line that asks the user to act, `--quiet` or not.
pub(crate) fn advise(line: impl std::fmt::Display) {
    let _ = writeln!(anstream::stdout(), "{line}");
}

/// Colour for diffs and summaries. Written through anstream, which keeps it on a terminal and
/// strips it for pipes and files, with `NO_COLOR` set, or `CLICOLOR=0` (`CLICOLOR_FORCE=1`
/// keeps it anyway).
pub(crate) mod paint {
    use anstyle::{AnsiColor, Style};

    pub const ADDED: Style = AnsiColor::Green.on_default();
    pub const CHANGED: Style = AnsiColor::Yellow.on_default();
    pub const REMOVED: Style = AnsiColor::Red.on_default();
    pub const HUNK: Style = AnsiColor::Cyan.on_default();
    pub const BOLD: Style = Style::new().bold();
    pub const ERROR: Style = AnsiColor::Red.on_default().bold();

    pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
        format!("{style}{text}{style:#}")
    }

    /// A unified diff, line by line: headers bold, hunks cyan, removals red, additions green.
    pub fn diff(text: &str) -> String {
        text.split_inclusive('\n')
            .map(|line| {
                let style = if line.starts_with("---") || line.starts_with("+++") {
                    BOLD
                } else if line.starts_with("@@") {
                    HUNK
                } else if line.starts_with('-') {
                    REMOVED
                } else if line.starts_with('+') {
                    ADDED
                } else {
                    return line.to_string();
                };
                let body = line.trim_end_matches('\n');
                format!("{}{}", paint(style, body), &line[body.len()..])
            })
            .collect()
    }

    /// `label` in the colour of a file's verb (create, change, remove).
    pub fn verb_as(verb: &str, label: &str) -> String {
        let style = match verb {
            "create" => ADDED,
            "remove" => REMOVED,
            _ => CHANGED,
        };
        paint(style, label)
    }
}
