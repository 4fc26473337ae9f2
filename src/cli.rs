//! The command line, declared with clap's derive API. Each value is parsed into its validated
//! type here, so a bad value is a usage error (exit 2) before anything else happens.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::config::{Ci, DnsProvider, Engine, HttpMode};
use crate::validate::{
    AcmeServer, CertificateNames, DeployPath, EabKid, Email, ImageRef, Invalid, PemBundle,
    ProfileName, ServerName, Upstream,
};

const INIT_EXAMPLES: &str = "\
Examples:
  # One site, forwarded to a port published on the Docker host:
  certgen init --domain example.com,www.example.com --email ops@example.com --out infra

  # The blog's setup: one proxy behind one public IP, four names, two machines behind it:
  certgen init --server edge --out infra --email ops@example.com \\
    --domain example.com=http://192.168.10.11:3000 --domain img.example.com=http://192.168.10.12:8080 \\
    --domain dev.example.com=http://192.168.10.21:3000 --domain img-dev.example.com=http://192.168.10.22:8080

  # Try it against Let's Encrypt's staging server first, with the proxy holding port 80:
  certgen init --domain example.com --staging --http redirect --out infra

  # A wildcard, proven through DNS (RFC 2136 updates to your DNS server): no port 80 at all:
  certgen init --domain 'example.com,*.example.com' --dns rfc2136 --out infra

  # A proxy on every node of a Docker Swarm, fed from the manager that holds the tree:
  certgen init --domain example.com --engine swarm --out infra";

const RENDER_EXAMPLES: &str = "\
Examples:
  certgen render                      # ./certgen.yaml into its folder
  certgen render --out infra          # infra/certgen.yaml into infra/
  certgen render --dry-run            # what would change, with diffs; nothing written";

const CHECK_EXAMPLES: &str = "\
Examples:
  certgen check --out infra           # in CI: exit 1, with diffs, when the tree drifted";

#[derive(Debug, Parser)]
#[command(
    name = "certgen",
    version,
    about = "Generate a reviewable HTTPS tree: Let's Encrypt with Docker Compose, nginx and certbot"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How much `init`, `render` and `check` print.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print nothing on success but what needs acting on (files nginx would load behind
    /// certgen.yaml's back, certificates or servers left behind, drift); errors as always
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write certgen.yaml and the tree for one server into OUT
    #[command(
        after_help = INIT_EXAMPLES,
        override_usage = "certgen init --domain NAMES[=UPSTREAM] [--domain ...] [OPTIONS]\n       \
                          certgen init --config FILE [--out DIR] [--force] [--dry-run]"
    )]
    Init(Box<InitArgs>),
    /// Render every server's tree from certgen.yaml: update what changed, remove what the config no longer produces
    #[command(after_help = RENDER_EXAMPLES)]
    Render(RenderArgs),
    /// Exit 1, with a diff per file, when the tree differs from what certgen.yaml renders (for CI)
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// check, then the tools that will read the tree: shellcheck, docker compose config, and nginx -t in each server's nginx image with throwaway certificates (for CI)
    Verify(CheckArgs),
    /// Print the shell completion script for SHELL (bash: source it, or put it in bash-completion's folder)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print certgen's man page (roff): certgen man > certgen.1; with --dir, write one page per subcommand there
    Man {
        /// Write certgen.1 and certgen-SUBCOMMAND.1 for each subcommand into DIR
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of certgen.yaml (init and render also write it beside the config, as certgen.schema.json)
    Schema,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub tree: TreeArgs,

    /// Print certgen.yaml with every key, certgen's defaults included, as certgen reads it; write nothing
    #[arg(long, conflicts_with_all = ["force", "dry_run"])]
    pub explain: bool,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// Which config, and which tree: `render` and `check`.
#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(flatten)]
    pub output: OutputArgs,

    /// The config [default: OUT/certgen.yaml with --out, else ./certgen.yaml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The infra folder [default: the config's folder]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// How `init` and `render` write the tree.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Replace files in the way: generated files edited by hand, files certgen did not generate, and (init) an existing certgen.yaml; never certificates
    #[arg(long)]
    pub force: bool,

    /// Print what would be created, changed and removed, with diffs of changes; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: the contents of new files too
    #[arg(long, short, requires = "dry_run")]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub tree: TreeArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub output: OutputArgs,

    /// One certificate: a name, or several comma-separated (the first names the certificate), optionally =UPSTREAM for where its site forwards. Repeat for more certificates
    #[arg(long = "domain", value_name = "NAMES[=UPSTREAM]", required_unless_present = "config", conflicts_with = "config", value_parser = parse::<CertificateNames>)]
    pub domains: Vec<CertificateNames>,

    /// Contact address for the ACME account (policy and incident mail). Without it, the account has no contact
    #[arg(long, value_name = "ADDR", value_parser = parse::<Email>, conflicts_with = "config")]
    pub email: Option<Email>,

    /// The server this tree is for; its folder under OUT [default: the first domain]
    #[arg(long, value_name = "NAME", value_parser = parse::<ServerName>, conflicts_with = "config")]
    pub server: Option<ServerName>,

    /// The infra folder to write certgen.yaml and the server's tree into
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Where the proxy forwards the sites without an =UPSTREAM of their own [default: http://host.docker.internal:8080]
    #[arg(long, value_name = "URL", value_parser = parse::<Upstream>, conflicts_with = "config")]
    pub upstream: Option<Upstream>,

    /// Who answers on port 80: on-demand (only while certbot orders a certificate) or redirect (the proxy, always: ACME challenges, and a redirect to HTTPS for everything else) [default: on-demand; redirect with --engine swarm, which refuses on-demand]
    #[arg(long, value_name = "MODE", value_enum, conflicts_with = "config")]
    pub http: Option<HttpMode>,

    /// What runs the proxy: compose (this machine) or swarm (a proxy on every node of a Docker Swarm labelled certgen.proxy=true, deployed from a manager; port 80 is the proxies': --http redirect)
    #[arg(long, value_name = "ENGINE", value_enum, default_value_t = Engine::Compose, conflicts_with = "config")]
    pub engine: Engine,

    /// The ACME profile to order with, as the CA lists it (Let's Encrypt: classic, tlsserver, shortlived; IP addresses need shortlived) [default: the CA's]
    #[arg(long, value_name = "NAME", value_parser = parse::<ProfileName>, conflicts_with = "config")]
    pub profile: Option<ProfileName>,

    /// Prove every certificate's names with a TXT record through this DNS provider's certbot plugin (DNS-01): wildcards, and no port 80. Its credentials go in SERVER/secrets/dns-PROVIDER.ini on the server
    #[arg(long, value_name = "PROVIDER", value_enum, conflicts_with = "config")]
    pub dns: Option<DnsProvider>,

    /// The absolute path OUT will have on the server, for the crontab file and the README [default: none: the tree works wherever it is cloned]
    #[arg(long, value_name = "ABS_DIR", value_parser = parse::<DeployPath>, conflicts_with = "config")]
    pub deploy_path: Option<DeployPath>,

    /// Use Let's Encrypt's staging server (untrusted certificates, generous limits) to try things out
    #[arg(long, conflicts_with_all = ["acme_server", "config"])]
    pub staging: bool,

    /// The ACME directory URL, or a short name: letsencrypt, letsencrypt-staging, zerossl, google, google-staging, sslcom [default: Let's Encrypt production]
    #[arg(long, value_name = "URL", value_parser = parse::<AcmeServer>, conflicts_with = "config")]
    pub acme_server: Option<AcmeServer>,

    /// The key id of the ACME server's External Account Binding (ZeroSSL, Google, SSL.com require it); its HMAC key goes on the server, in SERVER/secrets/eab-hmac-key
    #[arg(long, value_name = "KID", value_parser = parse::<EabKid>, conflicts_with = "config")]
    pub eab_kid: Option<EabKid>,

    /// A PEM file of CA certificates that certbot must trust for the ACME server (step-ca, Pebble)
    #[arg(long, value_name = "PEM_FILE", value_parser = parse_bundle, conflicts_with = "config")]
    pub acme_ca_bundle: Option<PemBundle>,

    /// The nginx image, pinned to a tag or digest [default: nginx:1.30]
    #[arg(long, value_name = "REF", value_parser = parse::<ImageRef>, conflicts_with = "config")]
    pub nginx_image: Option<ImageRef>,

    /// The certbot image, pinned to a tag or digest [default: certbot/certbot:v5.8.0]
    #[arg(long, value_name = "REF", value_parser = parse::<ImageRef>, conflicts_with = "config")]
    pub certbot_image: Option<ImageRef>,

    /// A check of the infra repo to write: github or gitlab (CI: certgen verify on every push), pre-commit (certgen check before each commit). Repeat for several
    #[arg(long, value_name = "CI", conflicts_with = "config")]
    pub ci: Vec<Ci>,

    /// Start from this certgen.yaml instead of the flags above (it is copied to OUT/certgen.yaml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// clap already names the flag and the value; the message adds the rule.
fn parse<T: FromStr<Err = Invalid>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: Invalid| e.rule)
}

fn parse_bundle(s: &str) -> Result<PemBundle, String> {
    PemBundle::from_file(s).map_err(|e| e.rule)
}
