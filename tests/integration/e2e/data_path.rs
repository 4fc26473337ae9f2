//! The data path: the proxy's side towards the apps (kept-alive connections, names re-resolved
//! while nginx runs, WebSocket through both), and HTTP/3 towards the clients.

use super::*;

/// The app container of down.test (`http://no-such-app:9000`), which does not exist until this
/// stage starts it: an nginx that answers with its connection's serial number and how many
/// requests that connection carried.
const LATE_APP: &str = "no-such-app";

/// What takes the late app's old address while it is recreated, so that it comes back on a new one.
const PLACEHOLDER: &str = "certgen-e2e-placeholder";

impl World {
    /// The body of `https://NAME/PATH` through the proxy, if it answered 200.
    fn body(&self, name: &str, path: &str) -> Result<String, String> {
        match self.request(name, path, &[]) {
            (200, _, body) => Ok(body),
            (code, head, body) => Err(format!("{name}{path}: {code}\n{head}{body}")),
        }
    }

    /// The connections the app saw for `count` requests to `https://NAME/PATH`, each request from
    /// a new client connection: (the app's largest count of requests on one connection, the
    /// number of connections).
    fn upstream_connections(
        &self,
        name: &str,
        path: &str,
        count: usize,
    ) -> Result<(u32, usize), String> {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..count {
            let body = self.body(name, path)?;
            let (conn, requests) = body
                .trim()
                .split_once(' ')
                .ok_or(format!("unexpected answer: {body:?}"))?;
            let requests: u32 = requests.parse().map_err(|_| format!("{body:?}"))?;
            let most = seen.entry(conn.to_string()).or_insert(0);
            *most = requests.max(*most);
        }
        Ok((seen.values().copied().max().unwrap_or(0), seen.len()))
    }

    fn late_app_address(&self) -> String {
        sh_out(&format!(
            "docker inspect --format '{{{{(index .NetworkSettings.Networks \"{APPS_NETWORK}\").IPAddress}}}}' {LATE_APP}"
        ))
        .trim()
        .to_string()
    }

    fn start_late_app(&self) {
        let conf = "server { listen 9000; location / { return 200 \"$connection $connection_requests\\n\"; } }";
        sh(&format!(
            "docker run -d --name {LATE_APP} --network {APPS_NETWORK} {NGINX_IMAGE} sh -c \
             'echo '\\''{conf}'\\'' > /etc/nginx/conf.d/late.conf && exec nginx -g \"daemon off;\"' >/dev/null"
        ));
    }

    pub(super) fn upstream_connections_kept(&mut self) -> Result<(), String> {
        // An app on a fixed address (host.docker.internal): 20 requests, each from a new client
        // connection, reach it over far fewer connections, each carrying several.
        let (most, connections) = self.upstream_connections("app.test", "/connection", 20)?;
        if most < 4 || connections > 8 {
            return Err(format!(
                "app.test: {connections} upstream connections for 20 requests, at most {most} on one"
            ));
        }
        // A WebSocket upgrade on a site whose other requests share kept-alive connections.
        let client = self.scratch.path().join("ws_client.py");
        fs::write(&client, crate::world::WS_CLIENT_SCRIPT).unwrap();
        let echo = run(
            "python3",
            &[
                client.to_str().unwrap(),
                "127.0.0.1",
                "app.test",
                self.root.to_str().unwrap(),
                "/ws",
                "certgen echo",
            ],
        );
        let said = output_text(&echo);
        if !echo.status.success() || said.trim() != "certgen echo" {
            return Err(format!("the WebSocket echo through the proxy: {said}"));
        }
        Ok(())
    }

    pub(super) fn upstream_started_late(&mut self) -> Result<(), String> {
        if self.https(DOWN) != Ok(502) {
            return Err(format!(
                "{DOWN} answers before its app exists: {:?}",
                self.https(DOWN)
            ));
        }
        let (reloads, started) = (self.reloads(), self.proxy_started_at());
        let _ = run("docker", &["rm", "-f", LATE_APP, PLACEHOLDER]);
        self.start_late_app();
        let result = self.late_app_found(reloads, &started);
        let _ = run("docker", &["rm", "-f", LATE_APP, PLACEHOLDER]);
        result
    }

    fn late_app_found(&mut self, reloads: usize, started: &str) -> Result<(), String> {
        // Found through Docker's DNS within the resolver's 10 s, with no reload.
        wait_until(&format!("{DOWN} served once its app starts"), || {
            self.https(DOWN) == Ok(200)
        })?;
        let (most, connections) = self.upstream_connections(DOWN, "/", 20)?;
        if most < 4 {
            return Err(format!(
                "{DOWN}: {connections} upstream connections for 20 requests, at most {most} on one"
            ));
        }
        // Recreated on another address: found again.
        let before = self.late_app_address();
        sh(&format!("docker rm -f {LATE_APP} >/dev/null"));
        sh(&format!(
            "docker run -d --name {PLACEHOLDER} --network {APPS_NETWORK} {NGINX_IMAGE} sleep 600 >/dev/null"
        ));
        self.start_late_app();
        let after = self.late_app_address();
        if after == before || after.is_empty() {
            return Err(format!(
                "the app came back on the same address, {before}: the stage tests nothing"
            ));
        }
        wait_until(
            &format!("{DOWN} served from the app's new address {after}"),
            || self.https(DOWN) == Ok(200),
        )?;
        if self.reloads() != reloads || self.proxy_started_at() != started {
            return Err(
                "the proxy was reloaded or restarted: it should find the app on its own".into(),
            );
        }
        Ok(())
    }

    /// app.test has `http3: true`, img.test not.
    pub(super) fn http3(&mut self) -> Result<(), String> {
        let client = self.scratch.path().join("h3_client.py");
        fs::write(&client, crate::world::H3_CLIENT_SCRIPT).unwrap();
        let got = run(
            crate::world::AIOQUIC_PYTHON,
            &[
                client.to_str().unwrap(),
                "127.0.0.1",
                "app.test",
                self.root.to_str().unwrap(),
                "/",
            ],
        );
        let said = output_text(&got);
        if !got.status.success()
            || said.lines().next() != Some("200")
            || !said.contains("hello from the app")
        {
            return Err(format!("HTTP/3 to app.test (aioquic):\n{said}"));
        }
        let (_, head, _) = self.request("app.test", "/", &["--http2"]);
        if !head.contains("alt-svc: h3=\":443\"; ma=86400") {
            return Err(format!("no Alt-Svc on app.test's HTTP/2 answer:\n{head}"));
        }
        let (_, head, _) = self.request(IMG, "/", &["--http2"]);
        if head.to_lowercase().contains("alt-svc") {
            return Err(format!("{IMG} has no http3, yet announces it:\n{head}"));
        }
        Ok(())
    }

    pub(super) fn rate_limited(&mut self) -> Result<(), String> {
        let url = format!("https://{IMG}/");
        let mut args = vec![
            "-s".to_string(),
            "--parallel".into(),
            "--parallel-max".into(),
            "150".into(),
            "--cacert".into(),
            self.root.to_str().unwrap().into(),
            "--resolve".into(),
            format!("{IMG}:443:127.0.0.1"),
        ];
        for _ in 0..150 {
            args.extend([
                "-o".into(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code}\\n".into(),
                url.clone(),
            ]);
        }
        let out = Command::new("curl").args(&args).output().unwrap();
        let codes = String::from_utf8_lossy(&out.stdout).into_owned();
        let count = |code: &str| codes.lines().filter(|l| *l == code).count();
        let (ok, limited) = (count("200"), count("429"));
        if ok < 40 || limited == 0 || ok + limited != 150 {
            return Err(format!(
                "150 requests at once: {ok} got 200, {limited} got 429:\n{codes}"
            ));
        }
        // The allowance refills at the rate: a request two seconds later gets through.
        thread::sleep(Duration::from_secs(2));
        if self.https(IMG) != Ok(200) {
            return Err(format!("{IMG} after the burst: {:?}", self.https(IMG)));
        }
        Ok(())
    }
}
