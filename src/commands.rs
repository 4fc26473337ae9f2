//! The commands: `init` writes a config and its tree, `render` moves the tree to what the config
//! says, `check` reports where it differs. All three render in memory and plan before writing.

use std::fs;
use std::io::Write;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{CheckArgs, InitArgs, RenderArgs, WriteArgs};
use crate::config::{
    Certificate, Challenge, Config, Dns, Engine, HttpMode, Server, DEFAULT_UPSTREAM,
};
use crate::names::{
    APPLY_SCRIPT, CERTIFICATE_STORE, CONFIG_FILE, CUSTOM_DIR, ISSUE_SCRIPT, RENEW_SCRIPT,
    SCHEMA_FILE, SITES, STACK_FILE, STATUS_SCRIPT,
};
use crate::paint;
use crate::render::{self, GeneratedFile, Tree};
use crate::validate::{AcmeServer, CronSchedule, DomainName, ServerName, Upstream};
use crate::write::{self, Change, Plan, WriteError};
use crate::{advise, say, BadInput};

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let (config, yaml) = match &args.config {
        Some(path) => {
            let text = read_config(path)?;
            (Config::from_yaml(&text, path)?, text)
        }
        None => {
            let config = config_from_args(&args)?;
            let yaml = config.to_yaml();
            (config, yaml)
        }
    };
    if !args.write.force && args.out.join(CONFIG_FILE).exists() {
        return Err(WriteError::ConfigExists {
            out: args.out.display().to_string(),
        }
        .into());
    }
    let mut tree = render_tree(&config)?;
    tree.insert(
        PathBuf::from(CONFIG_FILE),
        GeneratedFile {
            contents: yaml,
            executable: false,
        },
    );
    let plan = write::plan(&args.out, &tree)?;
    let Some(plan) = carry_out(plan, &args.out, &args.write)? else {
        return Ok(ExitCode::SUCCESS);
    };
    summarize(&plan, &tree, &args.out);

    let out = args.out.display();
    for server in &config.servers {
        let s = &server.name;
        say(format!(
            "Next: commit {out}; then on server {s}, in that folder (details: {s}/README.md):"
        ));
        for (command, why) in [
            (format!("{s}/{ISSUE_SCRIPT}"), "obtain the certificates"),
            (
                format!("{s}/{APPLY_SCRIPT}"),
                "start the proxy (later: apply each re-rendered tree)",
            ),
            (
                format!("{s}/{RENEW_SCRIPT} --install-cron"),
                "have root's cron renew them, with the path the tree has there",
            ),
            (
                format!("{s}/{STATUS_SCRIPT}"),
                "days left, what is served, the last renewal",
            ),
        ] {
            say(format!("  {command}\n      # {why}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let config = config_path(args.tree.config.as_deref(), args.tree.out.as_deref());
    let (out, tree, plan) = load(&config, args.tree.out.as_deref())?;
    let Some(plan) = carry_out(plan, &out, &args.write)? else {
        return Ok(ExitCode::SUCCESS);
    };
    summarize(&plan, &tree, &out);
    suggest_schema_line(&plan, &config);
    report_strays(&plan, &out);
    report_removed_certificates(&plan, &tree);
    report_removed_servers(&plan, &tree);
    Ok(ExitCode::SUCCESS)
}

/// certgen never edits the user's config: when it first writes the schema beside one that does
/// not point to it, it says which line to add.
fn suggest_schema_line(plan: &Plan, config: &Path) {
    let created = plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::Create { .. }) && c.path() == Path::new(SCHEMA_FILE));
    let text = fs::read_to_string(config).unwrap_or_default();
    if created && !text.contains("yaml-language-server:") {
        say(format!(
            "tip: make this the first line of {} so that editors complete its keys and flag typos:\n  \
             # yaml-language-server: $schema=./{}",
            config.display(),
            SCHEMA_FILE
        ));
    }
}

/// A server that left certgen.yaml (removed, or renamed) still runs on its machine until someone
/// stops it: its compose projects hold ports 80 and 443, and its cron line calls a script that
/// is gone. The commands that stop them, by project name (the compose files are gone too).
fn report_removed_servers(plan: &Plan, tree: &Tree) {
    let mut gone: Vec<&std::ffi::OsStr> = plan
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Remove { .. }))
        .filter_map(|c| c.path().components().next())
        .map(|c| c.as_os_str())
        .filter(|server| !tree.keys().any(|p| p.starts_with(server)))
        .collect();
    gone.dedup();
    for server in gone {
        let Ok(name) = ServerName::parse(&server.to_string_lossy()) else {
            continue;
        };
        let slug = name.project_slug();
        let was_swarm = plan.changes.iter().any(|c| {
            matches!(c, Change::Remove { .. }) && c.path() == Path::new(server).join(STACK_FILE)
        });
        advise(format!(
            "server {name} left certgen.yaml: on that machine, stop what it still runs (its proxy \
             holds ports 80 and 443, its cron line calls a script that is gone):"
        ));
        if was_swarm {
            advise(format!(
                "  docker stack rm certgen-{slug}; for p in for-cert renew; do docker compose -p certgen-{slug}-$p down; done"
            ));
        } else {
            advise(format!(
                "  for p in ssl for-cert renew; do docker compose -p certgen-{slug}-$p down; done"
            ));
        }
        advise(format!(
            "  crontab -l | grep -vF '/{name}/{RENEW_SCRIPT}' | crontab -"
        ));
    }
}

/// Names each certificate that left a server that stays: certgen never deletes a certificate,
/// renewal skips it, and the server's script deletes it.
fn report_removed_certificates(plan: &Plan, tree: &Tree) {
    for change in &plan.changes {
        let Change::Remove { path, .. } = change else {
            continue;
        };
        let mut parts = path.components();
        let Some(server) = parts.next().map(|c| Path::new(c.as_os_str())) else {
            continue;
        };
        let Some(name) = parts
            .as_path()
            .strip_prefix(SITES)
            .ok()
            .and_then(|file| file.to_str()?.strip_suffix(".conf"))
        else {
            continue;
        };
        let server_stays = tree.keys().any(|p| p.starts_with(server));
        if server_stays {
            let server = server.display();
            advise(format!(
                "certificate {name} left server {server}: its key and certificate stay in \
                 {server}/{CERTIFICATE_STORE}/ on that server, and {RENEW_SCRIPT} skips it. Delete \
                 them there with: {server}/{ISSUE_SCRIPT} --delete {name}"
            ));
        }
    }
}

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = config_path(args.tree.config.as_deref(), args.tree.out.as_deref());
    let (out, _, plan) = load(&config, args.tree.out.as_deref())?;
    report_strays(&plan, &out);
    if plan.is_empty() && plan.strays.is_empty() {
        say(format!(
            "certgen check: {} matches {}",
            out.display(),
            config.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    for change in &plan.changes {
        let what = match change {
            Change::Create { .. } => "missing",
            Change::Update { .. } => "changed",
            Change::Remove { .. } => "extra (generated earlier, no longer in the config)",
        };
        advise(format!(
            "{}: {}",
            paint::verb_as(change.verb(), what),
            change.path().display()
        ));
        advise(paint::diff(&change.diff()));
    }
    if !plan.changes.is_empty() {
        advise(format!(
            "certgen check: {} file(s) in {} differ from what {} renders; run `certgen render` (or fix the config)",
            plan.changes.len(),
            out.display(),
            config.display()
        ));
    }
    Ok(ExitCode::FAILURE)
}

/// Names each file that nginx would load although certgen.yaml does not produce it.
fn report_strays(plan: &Plan, out: &Path) {
    for stray in &plan.strays {
        advise(format!(
            "not generated: {}: nginx loads every file in that folder, so the proxy would run \
             configuration certgen.yaml does not show. Move it to {}/ (README there), or delete it",
            out.join(stray).display(),
            out.join(stray.components().next().expect("a server folder"))
                .join(CUSTOM_DIR)
                .display(),
        ));
    }
}

/// The config: `--config`, or `certgen.yaml` in `--out`, or in the working folder.
fn config_path(config: Option<&Path>, out: Option<&Path>) -> PathBuf {
    match (config, out) {
        (Some(config), _) => config.to_path_buf(),
        (None, Some(out)) => out.join(CONFIG_FILE),
        (None, None) => PathBuf::from(CONFIG_FILE),
    }
}

/// Reads and renders the config, and plans the move of its folder (or `out`) to the result.
fn load(config: &Path, out: Option<&Path>) -> anyhow::Result<(PathBuf, Tree, Plan)> {
    let out = out_folder(config, out);
    let tree = render_tree(&Config::from_yaml(&read_config(config)?, config)?)?;
    let plan = write::plan(&out, &tree)?;
    Ok((out, tree, plan))
}

fn read_config(path: &Path) -> Result<String, BadInput> {
    fs::read_to_string(path)
        .map_err(|e| BadInput(format!("{}: cannot read the config: {e}", path.display())))
}

/// The infra folder: `--out`, or the folder holding the config.
fn out_folder(config: &Path, out: Option<&Path>) -> PathBuf {
    match out {
        Some(out) => out.to_path_buf(),
        None => match config.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    }
}

fn render_tree(config: &Config) -> anyhow::Result<Tree> {
    render::render(config).map_err(|e| {
        anyhow::anyhow!(
            "rendering the templates failed: {e:#}\n{}",
            e.display_debug_info()
        )
    })
}

/// Writes `plan` into `out` as `--force`, `--dry-run` and `--verbose` say: a dry run prints it
/// and writes nothing (None); a plan that would lose work (a hand edit, a file certgen did not
/// write) is refused without `--force`. The plan written, for the summary.
fn carry_out(plan: Plan, out: &Path, write: &WriteArgs) -> anyhow::Result<Option<Plan>> {
    if write.dry_run {
        print_plan(&plan, out, write.force, write.verbose);
        return Ok(None);
    }
    if !plan.conflicts.is_empty() && !write.force {
        return Err(WriteError::WouldLoseWork(plan.conflicts).into());
    }
    write::apply(out, &plan)?;
    Ok(Some(plan))
}

/// A dry run: each file that would be created, changed or removed, with the diff of each change
/// and removal (of new files too with `verbose`), then what `--force` would be needed for.
fn print_plan(plan: &Plan, out: &Path, force: bool, verbose: bool) {
    if plan.is_empty() {
        say(format!(
            "certgen: {} is up to date; nothing would change",
            out.display()
        ));
        return;
    }
    for change in &plan.changes {
        say(format!(
            "{} {}",
            paint::verb_as(change.verb(), change.verb()),
            out.join(change.path()).display()
        ));
        if verbose || !matches!(change, Change::Create { .. }) {
            say(paint::diff(&change.diff()));
        }
    }
    for conflict in &plan.conflicts {
        let verb = if force {
            "--force would replace"
        } else {
            "would need --force"
        };
        say(format!("{verb}:\n{conflict}"));
    }
    say(format!(
        "certgen: dry run, nothing was written ({} change(s))",
        plan.changes.len()
    ));
}

fn summarize(plan: &Plan, tree: &Tree, out: &Path) {
    let count = |verb: &str| plan.changes.iter().filter(|c| c.verb() == verb).count();
    let (created, changed, removed) = (count("create"), count("change"), count("remove"));
    for change in &plan.changes {
        say(format!(
            "{} {}",
            paint::verb_as(change.verb(), &format!("{:<7}", change.verb())),
            out.join(change.path()).display()
        ));
    }
    say(format!(
        "certgen: {created} created, {changed} changed, {removed} removed, {} unchanged in {}",
        tree.len() - created - changed,
        out.display()
    ));
    for store in &plan.kept_certificate_stores {
        advise(format!(
            "kept {}: it holds that server's keys and certificates; delete it yourself once you are sure",
            out.join(store).display()
        ));
    }
}

/// The config that `init`'s flags describe: one server, every choice written out.
pub fn config_from_args(args: &InitArgs) -> anyhow::Result<Config> {
    let first = args.domains[0].names[0].clone();
    let server_name = args
        .server
        .clone()
        .unwrap_or_else(|| ServerName::from(&first));
    let deploy_path = args.deploy_path.clone();
    let upstream = args
        .upstream
        .clone()
        .unwrap_or_else(|| Upstream::parse(DEFAULT_UPSTREAM).expect("valid default"));
    let acme_server = match (&args.acme_server, args.staging) {
        (Some(url), _) => url.clone(),
        (None, true) => AcmeServer::lets_encrypt_staging(),
        (None, false) => AcmeServer::lets_encrypt(),
    };
    let certificates = args
        .domains
        .iter()
        .map(|cert| {
            let upstream = cert.upstream.clone().unwrap_or_else(|| upstream.clone());
            let mut c = Certificate::new(cert.names.clone(), upstream);
            if args.dns.is_some() {
                c.challenge = Challenge::Dns01;
            }
            c
        })
        .collect();
    let mut server = Server::new(server_name.clone(), deploy_path, certificates);
    server.engine = args.engine;
    // An explicit --http on-demand with --engine swarm: check() refuses it, saying why.
    server.http = args
        .http
        .filter(|h| args.engine == Engine::Swarm && *h == HttpMode::OnDemand);
    let schedule = CronSchedule::twice_daily(&schedule_seed(&server_name, &first));
    let mut config = Config::new(schedule, vec![server]);
    config.email = args.email.clone();
    config.acme_server = acme_server;
    config.acme_ca_bundle = args.acme_ca_bundle.clone();
    // A swarm's proxies hold port 80 (the challenge reaches any node).
    config.http = match args.engine {
        Engine::Swarm => HttpMode::Redirect,
        Engine::Compose => args.http.unwrap_or_default(),
    };
    config.profile = args.profile.clone();
    config.dns = args.dns.map(|provider| Dns {
        provider,
        propagation_seconds: None,
        image: None,
    });
    if let Some(nginx) = &args.nginx_image {
        config.images.nginx = nginx.clone();
    }
    if let Some(certbot) = &args.certbot_image {
        config.images.certbot = certbot.clone();
    }
    config.check()?;
    Ok(config)
}

/// The renewal time is spread over the day by the server and its first name, so that the same
/// flags always give the same schedule.
fn schedule_seed(server: &ServerName, first: &DomainName) -> String {
    format!("{server}/{first}")
}

/// The completion script for `shell`, from the command line's own declaration.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "certgen", &mut script);
    print_all(&script)
}

/// The JSON Schema of certgen.yaml.
pub fn schema() -> anyhow::Result<ExitCode> {
    print_all(Config::json_schema().as_bytes())
}

/// The man page, from the command line's own declaration.
pub fn man() -> anyhow::Result<ExitCode> {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .context("writing the man page")?;
    print_all(&page)
}

/// Writes a whole document to stdout. A reader that closes the pipe early (`certgen man | grep
/// -q .TH`) has what it wanted: not an error.
fn print_all(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
