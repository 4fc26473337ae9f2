//! `certgen init`: builds a [`Config`] from flags, renders it and writes `certgen.yaml` with the
//! server's tree.

use crate::cli::InitArgs;
use crate::config::{Certificate, Config, Images, KeyType, Server, DEFAULT_UPSTREAM};
use crate::validate::{AcmeServer, CronSchedule, DeployPath, DomainName, ServerName, Upstream};
use crate::{render, say, write, BadInput};

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let config = config_from_args(&args)?;
    let tree = render::render(&config)
        .map_err(|e| anyhow::anyhow!("rendering the templates failed: {e:#}"))?;
    let outcome = write::write_tree(&args.out, &tree, args.force)?;

    let out = args.out.display();
    say(format!(
        "certgen: wrote {} files in {out} ({} new, {} replaced, {} unchanged)",
        outcome.created.len() + outcome.replaced.len(),
        outcome.created.len(),
        outcome.replaced.len(),
        outcome.unchanged.len()
    ));
    let server = &config.servers[0].name;
    say(format!(
        "Next: commit {out}, then on server {server} follow {out}/{server}/README.md:"
    ));
    say(format!(
        "  {server}/nginx-for-cert/run.sh                    obtain the certificates"
    ));
    say(format!(
        "  docker compose -f {server}/nginx-ssl/docker-compose.yml up -d   start the proxy on :443"
    ));
    say(format!(
        "  install {server}/renew/crontab                    renew twice a day"
    ));
    Ok(())
}

/// The config that `init`'s flags describe: one server, every choice written out.
pub fn config_from_args(args: &InitArgs) -> anyhow::Result<Config> {
    let first = args.domains[0].0[0].clone();
    let server_name = args
        .server
        .clone()
        .unwrap_or_else(|| ServerName::from(&first));
    let deploy_path = match &args.deploy_path {
        Some(p) => p.clone(),
        None => default_deploy_path(&args.out)?,
    };
    let upstream = args
        .upstream
        .clone()
        .unwrap_or_else(|| Upstream::parse(DEFAULT_UPSTREAM).expect("valid default"));
    let acme_server = match (&args.acme_server, args.staging) {
        (Some(url), _) => url.clone(),
        (None, true) => AcmeServer::lets_encrypt_staging(),
        (None, false) => AcmeServer::lets_encrypt(),
    };
    let defaults = Images::default();
    let config = Config {
        email: args.email.clone(),
        acme_server,
        acme_ca_bundle: args.acme_ca_bundle.clone(),
        key_type: KeyType::Ecdsa,
        images: Images {
            nginx: args.nginx_image.clone().unwrap_or(defaults.nginx),
            certbot: args.certbot_image.clone().unwrap_or(defaults.certbot),
        },
        renew_schedule: CronSchedule::twice_daily(&schedule_seed(&server_name, &first)),
        servers: vec![Server {
            name: server_name,
            deploy_path,
            certificates: args
                .domains
                .iter()
                .map(|names| Certificate {
                    names: names.0.clone(),
                    upstream: upstream.clone(),
                })
                .collect(),
        }],
    };
    config.check()?;
    Ok(config)
}

fn default_deploy_path(out: &std::path::Path) -> anyhow::Result<DeployPath> {
    let absolute = std::path::absolute(out)?;
    let text = absolute.to_str().ok_or_else(|| {
        BadInput(format!(
            "--out {:?}: the path is not UTF-8; pass --deploy-path",
            absolute
        ))
    })?;
    DeployPath::parse(text).map_err(|e| BadInput(format!("--out: {e}; pass --deploy-path")).into())
}

/// The renewal time is spread over the day by the server and its first name, so that the same
/// flags always give the same schedule.
fn schedule_seed(server: &ServerName, first: &DomainName) -> String {
    format!("{server}/{first}")
}
