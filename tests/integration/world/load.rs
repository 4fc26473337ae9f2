//! The load client of both end-to-end suites: requests in a loop on a thread while a stage
//! renews, reloads or rolls out, each on a new connection (a new TLS handshake), verified
//! against Pebble's root. Bounded: at most 20,000 requests or 5 minutes, to this machine only.
//!
//! Two answers are retried once, as browsers do, and counted apart:
//! - an HTTP/2 request a stopping nginx worker sent back unprocessed (GOAWAY, NO_ERROR, last
//!   stream 0: RFC 9113 6.8 lets the client retry it; curl does not);
//! - with several addresses (a swarm's nodes), a refused connection, on the next address.
//!
//! Anything else is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// One kind of request: HTTPS over HTTP/1.1 or HTTP/2, or plain HTTP on port 80, which must
/// answer with the redirect to HTTPS.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Http1,
    Http2,
    Plain,
}

pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<LoadResult>,
}

#[derive(Clone, Default)]
pub(crate) struct LoadResult {
    pub sent: u32,
    /// Per address: connections refused, and requests sent back unprocessed; each was retried.
    pub refused: Vec<u32>,
    pub unprocessed: Vec<u32>,
    pub failures: Vec<String>,
}

enum Answer {
    Ok,
    Refused,
    Unprocessed,
    Failed(String),
}

impl LoadResult {
    /// Ok when requests were sent and none failed.
    pub fn none_failed(&self) -> Result<(), String> {
        if self.failures.is_empty() && self.sent > 0 {
            return Ok(());
        }
        Err(format!(
            "{} of {} requests failed:\n{}",
            self.failures.len(),
            self.sent,
            self.failures[..self.failures.len().min(20)].join("\n")
        ))
    }

    /// Requests sent back unprocessed and retried, at every address.
    pub fn retried(&self) -> u32 {
        self.unprocessed.iter().sum()
    }

    /// One line for a stage or a figure: the counts, per address where there are several.
    pub fn summary(&self) -> String {
        let per = |counts: &[u32]| {
            counts
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" / ")
        };
        format!(
            "{} requests, {} failed; retried: refused {}, sent back unprocessed (HTTP/2 GOAWAY) {}",
            self.sent,
            self.failures.len(),
            per(&self.refused),
            per(&self.unprocessed)
        )
    }
}

impl Load {
    /// Requests to `name` on this machine (127.0.0.1), cycling through `kinds`.
    pub fn start(root: PathBuf, name: &'static str, kinds: &'static [Kind]) -> Load {
        Load::across(root, name, vec!["127.0.0.1".into()], kinds)
    }

    /// Requests to `name` at each of `addresses` in turn, cycling through `kinds`.
    pub fn across(
        root: PathBuf,
        name: &'static str,
        addresses: Vec<String>,
        kinds: &'static [Kind],
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut result = LoadResult {
                refused: vec![0; addresses.len()],
                unprocessed: vec![0; addresses.len()],
                ..LoadResult::default()
            };
            while !flag.load(Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(300)
                && result.sent < 20_000
            {
                let turn = result.sent as usize;
                let kind = kinds[turn % kinds.len()];
                let first = turn % addresses.len();
                let next = (first + 1) % addresses.len();
                result.sent += 1;
                let answer = match request(&root, name, &addresses[first], kind) {
                    Answer::Refused if addresses.len() > 1 => {
                        result.refused[first] += 1;
                        request(&root, name, &addresses[next], kind)
                    }
                    Answer::Unprocessed => {
                        result.unprocessed[first] += 1;
                        request(&root, name, &addresses[next], kind)
                    }
                    answer => answer,
                };
                let why = match answer {
                    Answer::Ok => continue,
                    Answer::Refused => "connection refused".to_string(),
                    Answer::Unprocessed => "sent back unprocessed twice".to_string(),
                    Answer::Failed(why) => why,
                };
                result.failures.push(format!(
                    "at {:.2} s: {why}",
                    started.elapsed().as_secs_f64()
                ));
            }
            result
        });
        Load { stop, thread }
    }

    pub fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn request(root: &Path, name: &str, address: &str, kind: Kind) -> Answer {
    let mut cmd = Command::new("curl");
    cmd.args(["-sSv", "--connect-timeout", "2", "--max-time", "5"]);
    let expected = match kind {
        Kind::Plain => {
            cmd.args(["--resolve", &format!("{name}:80:{address}")])
                .arg(format!("http://{name}/load?n=1"));
            format!("301 https://{name}/load?n=1")
        }
        Kind::Http1 | Kind::Http2 => {
            cmd.arg("--cacert")
                .arg(root)
                .arg(if matches!(kind, Kind::Http2) {
                    "--http2"
                } else {
                    "--http1.1"
                })
                .args(["--resolve", &format!("{name}:443:{address}")])
                .arg(format!("https://{name}/"));
            "200 ".to_string()
        }
    };
    let out = cmd
        .args(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"])
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && code == expected {
        return Answer::Ok;
    }
    let verbose = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(7) {
        return Answer::Refused;
    }
    if matches!(kind, Kind::Http2) && verbose.contains("GOAWAY, error=0, last_stream=0") {
        return Answer::Unprocessed;
    }
    let last = verbose
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .join(" | ");
    Answer::Failed(format!(
        "{address}: exit {:?}, got {code:?}, {last}",
        out.status.code()
    ))
}
