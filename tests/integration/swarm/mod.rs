//! A generated `engine: swarm` tree on a real two-node Docker Swarm, built on this
//! machine from two docker-in-docker nodes (the `certgen-ci/swarm-node` image of .ci/setup:
//! Debian's dockerd, this machine's Docker CLI and compose plugin). The manager holds the tree
//! and runs the generated scripts unmodified, in the tree's folder as its README says; every
//! name points at the other node, so the ACME challenge is answered through it. Pebble and the
//! apps run on this machine, on the nodes' network.
//!
//! Runs when `CERTGEN_E2E=1`, as root, after `.ci/setup`, one end-to-end suite at a time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use certgen::config::{Auth, Certificate, Challenge, Config, Dns, DnsProvider, Route, RouteAuth};
use certgen::validate::{DomainName, ImageRef, PathPrefix, Upstream, UsersFile};

use crate::helpers::{certgen, run};
use crate::world::load::{Kind, Load, LoadResult};
use crate::world::{
    output_text, pebble_with_profiles, read_config, sh, sh_out, spawn, succeeded, tsig_key,
    wait_for, wait_up_to, write_and_render, Spawned, Stages, APP_SCRIPT, CERTBOT_IMAGE, DNS_IMAGE,
    NGINX_IMAGE, STANDIN_IMAGES,
};

mod faults;
mod rollout;
mod start;

use start::proxy_version;

const NODE_IMAGE: &str = "certgen-ci/swarm-node:bookworm";

const NETWORK: &str = "certgen-e2e-swarm";

const SUBNET: &str = "10.213.7.0/24";

/// This machine on the nodes' network: Pebble and the apps listen here.
const HOST: &str = "10.213.7.1";

/// The manager, which holds the tree, and the worker, at which every name points.
const MANAGER: Node = Node {
    name: "certgen-e2e-node1",
    address: "10.213.7.11",
};

const WORKER: Node = Node {
    name: "certgen-e2e-node2",
    address: "10.213.7.12",
};

const NODES: [Node; 2] = [MANAGER, WORKER];

/// Where the manager has the infra folder (a bind mount of this suite's scratch folder).
const INFRA: &str = "/srv/infra";

const SERVER: &str = "edge";

/// The certificates, by folder, and a name each is asked for: two over HTTP-01, and a wildcard
/// (e2e.test, *.e2e.test) over DNS-01.
const SITES: [(&str, &str); 3] = [
    ("app.test", "app.test"),
    ("img.test", "img.test"),
    ("e2e.test", "anything.e2e.test"),
];
const PEBBLE_PORT: u16 = 14100;
const PEBBLE_MANAGEMENT: u16 = 15100;
/// BIND, authoritative for test. (every name), updated with a TSIG key: by certbot's rfc2136
/// plugin for DNS-01, by the suite to point names elsewhere.
const BIND_PORT: u16 = 8154;
const APP_PORT: u16 = 18180;
const API_PORT: u16 = 18181;

#[derive(Clone, Copy)]
struct Node {
    name: &'static str,
    address: &'static str,
}

impl Node {
    /// The node's state as the manager sees it: ready, down.
    fn state(&self) -> String {
        let format = [
            "node",
            "inspect",
            "--format",
            "{{.Status.State}}",
            self.name,
        ];
        MANAGER.docker_out(&format).trim().to_string()
    }

    /// `docker ARGS` on this node's own dockerd.
    fn docker(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.name, "docker"];
        all.extend_from_slice(args);
        run("docker", &all)
    }

    fn docker_out(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.docker(args).stdout).into_owned()
    }

    /// The serial of the certificate this node's proxy presents for `name`.
    fn serial(&self, name: &str) -> String {
        sh_out(&format!(
            "echo | openssl s_client -connect {}:443 -servername {name} 2>/dev/null | openssl x509 -noout -serial",
            self.address
        ))
        .trim()
        .to_string()
    }

    /// The logs of this node's proxy containers, the stopped ones too.
    fn proxy_logs(&self) -> String {
        let ids = self.docker_out(&["ps", "-aq", "--filter", "name=certgen-edge_nginx"]);
        ids.split_whitespace()
            .map(|id| output_text(&self.docker(&["logs", id])))
            .collect()
    }
}

#[test]
#[ignore = "the end-to-end suite on a two-node Docker Swarm (dockerd, Pebble; as root, after .ci/setup): CERTGEN_E2E=1 cargo test -- --include-ignored"]
fn a_swarm_tree_works_end_to_end() {
    let Some(mut stages) = Stages::begin(
        "swarm",
        "the swarm end-to-end suite (two docker-in-docker nodes, Pebble)",
    ) else {
        return;
    };
    let mut swarm = Swarm::start();
    stages.run(
        "First issuance as the README says (labels, ./apply.sh, nginx-for-cert/run.sh): HTTP-01 answered through the worker, a wildcard over DNS-01 (BIND); both nodes serve verified TLS for every name; port 80 redirects",
        || swarm.first_issuance(),
    );
    stages.run(
        "Renewal when due rolled out one node at a time: each node then serves the new serial; a client alternating between the nodes (falling back on a refused connection) sees no failed request",
        || swarm.renewal_under_load(),
    );
    stages.run(
        "A render that adds a route behind basic auth (its password file a Swarm secret), then ./apply.sh: rolled out the same way, both nodes ask for the password and serve with it, no failed request",
        || swarm.render_rollout(),
    );
    stages.run(
        "A custom file that fails nginx -t: ./apply.sh checks it on the manager and rolls nothing out (exit 1), no failed request",
        || swarm.refused_config(),
    );
    stages.run(
        "An nginx image the worker cannot get (the check on the manager passes): Swarm rolls every node back, apply.sh exits 1 saying so, both nodes serve again; rendered back, ./apply.sh succeeds and leaves only the configs the proxies use",
        || swarm.rollback(),
    );
    stages.run(
        "A node down during a renewal: renew/run.sh rolls out to the other and reports the node missing (exit 1); back up, the node serves the new certificate, and the next run and status.sh are clean",
        || swarm.node_down_during_renewal(),
    );
    stages.run(
        "The worker's Docker stopped once the renewal's rollout reaches it: renew/run.sh ends within its limit, naming the node down (exit 1), the lock free, the manager serving the new certificate, nothing rolled back; the worker back, the next run brings it the new certificate",
        || swarm.node_lost_mid_rollout(),
    );
    stages.run(
        "A link planted at a live/ key (to a file of the manager): ./apply.sh refuses to send it to the proxies, naming it; nothing is deployed",
        || swarm.planted_link(),
    );
    stages.run(
        "No key anywhere but the manager's certifications/: not in the nodes' disks, images or logs, nor in the tree; in the proxies, only in memory (tmpfs)",
        || swarm.keys_stay_home(),
    );
    swarm.figures.print();
    stages.finish();
}

/// Everything the swarm pass starts, removed again when it is dropped.
struct Swarm {
    scratch: tempfile::TempDir,
    /// The infra folder on this machine (the manager's INFRA).
    out: PathBuf,
    root: PathBuf,
    /// The TSIG key's secret, for nsupdate.
    secret: String,
    _helpers: Spawned,
    figures: Figures,
}

#[derive(Default)]
struct Figures {
    first_rollout: Option<f64>,
    renewal: Option<(f64, LoadResult)>,
    render: Option<(f64, LoadResult)>,
    rollback: Option<LoadResult>,
}

impl Figures {
    fn print(&self) {
        let show = |what: &str, figures: &Option<(f64, LoadResult)>| match figures {
            Some((seconds, t)) => say(&format!(
                "  {what}: rollout to two nodes {seconds:.1} s; {}",
                t.summary()
            )),
            None => say(&format!("  {what}: n/a")),
        };
        say("swarm figures:");
        match self.first_rollout {
            Some(s) => say(&format!(
                "  first issuance: rollout of the certificates to two nodes {s:.1} s"
            )),
            None => say("  first issuance: n/a"),
        }
        show("renewal", &self.renewal);
        show("render (a new route)", &self.render);
        if let Some(t) = &self.rollback {
            say(&format!("  a rollout Swarm rolled back: {}", t.summary()));
        }
    }
}

/// A line on stderr past the test harness's capture, as the e2e suite's stage lines.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The seconds the scripts' log gives for the last deploy of the stack.
fn rollout_seconds(log: &str) -> Option<f64> {
    let rest = log.rsplit("the stack is deployed (in ").next()?;
    rest.split(' ').next()?.parse().ok()
}

/// HTTP/2 requests to app.test, alternately to the two nodes (a refused or unprocessed request
/// is tried once on the other node, as a browser does with a name of two addresses).
fn load_on_both_nodes(root: PathBuf) -> Load {
    let addresses = NODES.iter().map(|n| n.address.to_string()).collect();
    Load::across(root, "app.test", addresses, &[Kind::Http2])
}

/// Ok when enough requests were sent (a rollout takes seconds) and none failed.
fn none_failed(load: &LoadResult) -> Result<(), String> {
    say(&format!("swarm: {}", load.summary()));
    if load.sent < 20 {
        return Err(format!("only {} requests were sent", load.sent));
    }
    load.none_failed()
}
