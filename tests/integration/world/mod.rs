//! What both end-to-end suites share: the stand-in images, Pebble and BIND helpers, the stand-in
//! app, processes they start, the stage runner, and the load client ([`load`]).

pub(crate) mod load;

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::helpers::run;

pub(crate) const NGINX_IMAGE: &str = "certgen-standin/nginx:1.30";

/// `init`'s flags that pin the stand-in images.
pub(crate) const STANDIN_IMAGES: [&str; 4] = [
    "--nginx-image",
    NGINX_IMAGE,
    "--certbot-image",
    CERTBOT_IMAGE,
];

/// The certgen.yaml at `path`, to edit as the user would before rendering again.
pub(crate) fn read_config(path: &Path) -> certgen::config::Config {
    certgen::config::Config::from_yaml(&fs::read_to_string(path).unwrap(), path).unwrap()
}

/// Writes `config` to `path` and renders it, as the user does after an edit.
#[track_caller]
pub(crate) fn write_and_render(path: &Path, config: &certgen::config::Config) {
    fs::write(path, config.to_yaml()).unwrap();
    crate::helpers::certgen()
        .args(["render", "--config"])
        .args([path])
        .succeeds();
}

pub(crate) const CERTBOT_IMAGE: &str = "certgen-standin/certbot:5.8.0";

/// The DNS-01 pass: a third server, `wild`, whose names BIND holds (zone e2e.test, updated with
/// a TSIG key), ordered from a second Pebble that resolves through that BIND.
pub(crate) const DNS_IMAGE: &str = "certgen-standin/dns-rfc2136:5.8.0";

/// Pebble 2.10, with ACME profiles, as .ci/setup unpacks it from Debian sid.
pub(crate) fn pebble_with_profiles() -> PathBuf {
    let setup = std::env::var("CERTGEN_SETUP_DIR").unwrap_or_else(|_| "/var/tmp/certgen-ci".into());
    let pebble = Path::new(&setup).join("pebble-sid/usr/bin/pebble");
    assert!(
        pebble.exists(),
        "{} is missing: run .ci/setup",
        pebble.display()
    );
    pebble
}

/// The stand-in app: GET answers "hello from NAME" (and the request's headers at /headers),
/// POST reads the whole body and says how many bytes arrived.
pub(crate) const APP_SCRIPT: &str = r#"
import http.server, json, sys
port, bind, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/headers":
            self.answer(json.dumps({k.lower(): v for k, v in self.headers.items()}))
        elif self.path == "/connection":
            # The proxy's connection to this app (its port) and how many requests it carried.
            self.requests = getattr(self, "requests", 0) + 1
            self.answer(f"{self.client_address[1]} {self.requests}\n")
        elif self.path == "/missing":
            self.send_error(404)
        elif self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket_echo()
        else:
            self.answer(f"hello from {name}\n")
    def do_POST(self):
        left, got = int(self.headers.get("Content-Length", "0")), 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            got, left = got + len(chunk), left - len(chunk)
        self.answer(f"{name} received {got} bytes\n")
    def websocket_echo(self):
        """RFC 6455: the handshake, then one text message (masked, under 126 bytes) echoed."""
        import base64, hashlib
        key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
        self.end_headers()
        head = self.rfile.read(2)
        mask = self.rfile.read(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(head[1] & 0x7F)))
        self.wfile.write(bytes([0x81, len(data)]) + data)
        self.close_connection = True
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((bind, port), App)
if len(sys.argv) > 5:
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// A WebSocket client: `ws_client.py HOST NAME CA PATH MESSAGE` connects to HOST:443 with SNI
/// NAME (verified against CA), upgrades PATH, sends MESSAGE and prints the message it gets back.
pub(crate) const WS_CLIENT_SCRIPT: &str = r#"
import base64, hashlib, os, socket, ssl, sys
host, name, ca, path, message = sys.argv[1:6]
context = ssl.create_default_context(cafile=ca)
sock = context.wrap_socket(socket.create_connection((host, 443), timeout=10), server_hostname=name)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = sock.recv(1)
    if not chunk:
        sys.exit(f"closed during the handshake: {head!r}")
    head += chunk
accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
if not head.startswith(b"HTTP/1.1 101") or accept.encode() not in head:
    sys.exit(f"no upgrade: {head!r}")
data, mask = message.encode(), os.urandom(4)
sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
frame = sock.recv(2)
print(sock.recv(frame[1] & 0x7F).decode())
"#;

/// An HTTP/3 client (aioquic, in the venv .ci/setup makes): `h3_client.py HOST NAME CA PATH`
/// sends one GET over QUIC to HOST:443 with SNI NAME, verified against CA, and prints the
/// status, then the body.
pub(crate) const H3_CLIENT_SCRIPT: &str = r#"
import asyncio, sys
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3, self.status, self.body = H3Connection(self._quic), None, b""
        self.done = asyncio.get_running_loop().create_future()
    def quic_event_received(self, event):
        for e in self.h3.handle_event(event):
            if isinstance(e, HeadersReceived):
                self.status = dict(e.headers).get(b":status", b"").decode()
            elif isinstance(e, DataReceived):
                self.body += e.data
            if getattr(e, "stream_ended", False) and not self.done.done():
                self.done.set_result(None)
    async def get(self, name, path):
        stream = self._quic.get_next_available_stream_id()
        self.h3.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"),
                                      (b":authority", name.encode()), (b":path", path.encode())], end_stream=True)
        self.transmit()
        await asyncio.wait_for(self.done, 10)

async def main(host, name, ca, path):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=name)
    configuration.load_verify_locations(ca)
    async with connect(host, 443, configuration=configuration, create_protocol=Client) as client:
        await client.get(name, path)
        print(client.status)
        print(client.body.decode(), end="")

asyncio.run(asyncio.wait_for(main(*sys.argv[1:5]), 20))
"#;

/// The Python with aioquic that .ci/setup installs (a venv, linked here).
pub(crate) const AIOQUIC_PYTHON: &str = "/usr/local/bin/certgen-aioquic-python";

/// The PASS/FAIL lines, printed as they happen (past the test harness's capture), one per stage,
/// numbered in the order the stages run: `e2e: PASS stage 12: NAME (3.1 s)`.
pub(crate) struct Stages {
    suite: &'static str,
    count: usize,
    failed: Vec<String>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Stages {
    /// The stages of an end-to-end suite, when CERTGEN_E2E=1 asks for it (None, with a note,
    /// otherwise); they hold the lock that keeps the suites from running at once.
    pub(crate) fn begin(suite: &'static str, what: &str) -> Option<Stages> {
        if !crate::helpers::opted_in("CERTGEN_E2E", what) {
            return None;
        }
        Some(Stages {
            suite,
            count: 0,
            failed: Vec::new(),
            _one_at_a_time: crate::helpers::end_to_end_lock(),
        })
    }

    pub(crate) fn run(&mut self, name: &str, stage: impl FnOnce() -> Result<(), String>) {
        self.count += 1;
        let (suite, number) = (self.suite, self.count);
        let _ = writeln!(std::io::stderr(), "{suite}: stage {number}: {name}");
        let start = Instant::now();
        let result = stage();
        let secs = start.elapsed().as_secs_f64();
        let line = match &result {
            Ok(()) => format!("{suite}: PASS stage {number} ({secs:.1} s)"),
            Err(why) => format!("{suite}: FAIL stage {number} ({secs:.1} s): {name}: {why}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
        if let Err(why) = result {
            self.failed.push(format!("stage {number} ({name}): {why}"));
        }
    }

    #[track_caller]
    pub(crate) fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "{} stages failed:\n{}",
            self.suite,
            self.failed.join("\n")
        );
    }
}

/// Child processes that are killed when this is dropped, so a panic anywhere (in
/// `World::start` too) leaves none of them running.
pub(crate) struct Spawned(pub(crate) Vec<Child>);

impl Spawned {
    pub(crate) fn stop(&mut self) {
        for mut child in self.0.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the certificate of renewal settings `path` due for renewal now (certbot's
/// renew_before_expiry), or not; a certificate not obtained has no such file.
pub(crate) fn set_due(path: &Path, due: bool) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("renew_before_expiry"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = if due {
        format!("renew_before_expiry = 3650 days\n{without}")
    } else {
        without
    };
    fs::write(path, text).unwrap();
}

/// A new TSIG key `certgen-e2e` for BIND's updates: its named.conf block and its secret.
pub(crate) fn tsig_key() -> Result<(String, String), String> {
    let key = sh_out("tsig-keygen -a hmac-sha256 certgen-e2e");
    let secret = key
        .split("secret \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or(format!("tsig-keygen: {key}"))?
        .to_string();
    Ok((key, secret))
}

/// A CA (`DIR/pebble-ca.pem`, `ca.key`) and Pebble's own TLS certificate from it
/// (`pebble.pem`, `pebble.key`), valid for `san` (`IP:127.0.0.1,IP:...`): certbot connects to
/// Pebble at one of those addresses and trusts the CA (acme_ca_bundle).
pub(crate) fn pebble_certificate(dir: &Path, san: &str) {
    sh(&format!(
        "cd {d} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
         -subj '/CN=certgen e2e pebble CA' -keyout ca.key -out pebble-ca.pem 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=pebble \
         -keyout pebble.key -out pebble.csr 2>/dev/null && \
         printf 'subjectAltName={san}\\n' > san.cnf && \
         openssl x509 -req -in pebble.csr -CA pebble-ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile san.cnf -out pebble.pem 2>/dev/null",
        d = dir.display()
    ));
}

pub(crate) fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let file = fs::File::create(log).unwrap();
    cmd.stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (run .ci/setup)"))
}

pub(crate) fn listening_on(host: &str, port: u16) -> bool {
    let addr = format!("{host}:{port}").parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

#[track_caller]
pub(crate) fn wait_for(what: &str, ready: impl Fn() -> bool) {
    if let Err(e) = wait_until(what, ready) {
        panic!("{e}");
    }
}

pub(crate) fn wait_until(what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    wait_up_to(30, what, ready)
}

/// `ready` polled for at most `seconds`.
pub(crate) fn wait_up_to(seconds: u64, what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(200));
    }
    Err(format!("timed out waiting for {what}"))
}

pub(crate) fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The output of a run that must have exited 0.
pub(crate) fn succeeded(out: &Output) -> Result<String, String> {
    let text = output_text(out);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("exit {:?}:\n{text}", out.status.code()))
    }
}

#[track_caller]
pub(crate) fn sh(script: &str) {
    let out = run("sh", &["-c", script]);
    assert!(out.status.success(), "{script}\n{}", output_text(&out));
}

pub(crate) fn sh_out(script: &str) -> String {
    String::from_utf8_lossy(&run("sh", &["-c", script]).stdout).into_owned()
}
