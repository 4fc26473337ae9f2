//! What the commands tell the user after planning: the plan, the summary, what check found, what
//! render left behind, and what to run on each server next.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use crate::names::{
    APPLY_SCRIPT, CERTIFICATE_STORE, CUSTOM_DIR, ISSUE_SCRIPT, LIB_SH, RENEW_SCRIPT, SCHEMA_FILE,
    SECRETS_DIR, SITES, STACK_FILE,
};
use crate::paint;
use crate::render::{self, Tree};
use crate::validate::ServerName;
use crate::write::{Change, Plan};
use crate::{advise, say};

/// What to run on each server the change touches, in order, exactly: after `git pull` in its
/// clone, `./apply.sh` (it recreates or reloads the proxy and updates the cron line), then
/// `nginx-for-cert/run.sh` when a certificate is new or the ACME server or key type changed (it
/// orders each certificate once anew), and `--delete` for each certificate that left.
pub(super) fn report_next_steps(plan: &Plan, tree: &Tree) {
    let mut servers: Vec<&Path> = Vec::new();
    for change in &plan.changes {
        let Some(server) = change
            .path()
            .components()
            .next()
            .map(|c| Path::new(c.as_os_str()))
        else {
            continue;
        };
        let stays = tree.keys().any(|p| p.starts_with(server) && p != server);
        if stays && change.path().components().count() > 1 && !servers.contains(&server) {
            servers.push(server);
        }
    }
    if servers.is_empty() {
        return;
    }
    say("Next: commit and push; then on each server, in its clone of the repo, after `git pull`:");
    for server in servers {
        let s = server.display();
        let in_server = |change: &&Change| change.path().starts_with(server);
        // The certificates whose site file the change creates (verb "create") or removes.
        let sites = |verb: &str| -> Vec<String> {
            plan.changes
                .iter()
                .filter(|c| c.verb() == verb && c.path().starts_with(server))
                .filter_map(|c| {
                    let rel = c
                        .path()
                        .strip_prefix(server)
                        .ok()?
                        .strip_prefix(SITES)
                        .ok()?;
                    rel.to_str()?.strip_suffix(".conf").map(str::to_string)
                })
                .collect()
        };
        let (new, gone) = (sites("create"), sites("remove"));
        // run.sh's settings at its top: a new ACME server or key type means ordering anew.
        let reorder = plan.changes.iter().filter(in_server).any(|c| match c {
            Change::Update { path, old, new } if path.ends_with(ISSUE_SCRIPT) => {
                let settings = |text: &str| -> Vec<String> {
                    text.lines()
                        .filter(|l| l.starts_with("acme_server=") || l.starts_with("key_type="))
                        .map(str::to_string)
                        .collect()
                };
                settings(old) != settings(&new.contents)
            }
            _ => false,
        });
        // lib.sh names the secrets the scripts need (basic auth's password files, the HMAC keys of
        // External Account Binding): a new one must be on the server first.
        let secrets = |text: &str| -> Vec<String> {
            let mut found = Vec::new();
            for line in text.lines() {
                if let Some(files) = line
                    .strip_prefix("users_files=(")
                    .and_then(|l| l.strip_suffix(')'))
                {
                    found.extend(files.split(' ').map(|f| format!("auth/{f}")));
                } else if let Some(file) = line.strip_prefix("  eab_key ") {
                    found.extend(file.split(' ').nth(1).map(str::to_string));
                }
            }
            found
        };
        let new_secrets: Vec<String> = plan
            .changes
            .iter()
            .filter(in_server)
            .filter(|c| c.path().ends_with(LIB_SH))
            .flat_map(|c| match c {
                Change::Create { new, .. } => secrets(&new.contents),
                Change::Update { old, new, .. } => {
                    let before = secrets(old);
                    let mut added = secrets(&new.contents);
                    added.retain(|f| !before.contains(f));
                    added
                }
                Change::Remove { .. } => Vec::new(),
            })
            .collect();
        for file in new_secrets {
            let what = match file.strip_prefix("auth/") {
                Some(_) => format!("basic auth's users (README.md, Secrets): {APPLY_SCRIPT} refuses to start the proxy without it"),
                None => format!("an External Account Binding HMAC key (README.md, Secrets): {ISSUE_SCRIPT} stops without it until the account is registered"),
            };
            say(format!("  # first: {s}/{SECRETS_DIR}/{file}, {what}"));
        }
        say(format!("  {s}/{APPLY_SCRIPT}"));
        if reorder {
            say(format!(
                "  {s}/{ISSUE_SCRIPT}      # the ACME server or key type changed: orders each certificate once anew"
            ));
        } else if !new.is_empty() {
            say(format!(
                "  {s}/{ISSUE_SCRIPT}      # obtains {}",
                new.join(", ")
            ));
        }
        for name in gone {
            say(format!("  {s}/{ISSUE_SCRIPT} --delete {name}"));
        }
    }
}

/// certgen never edits the user's config: when it first writes the schema beside one that does
/// not point to it, it says which line to add.
pub(super) fn suggest_schema_line(plan: &Plan, config: &Path) {
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
pub(super) fn report_removed_servers(plan: &Plan, tree: &Tree) {
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
                "  docker stack rm certgen-{slug}; docker compose -p certgen-{slug}-for-cert down"
            ));
        } else {
            advise(format!(
                "  for p in ssl for-cert; do docker compose -p certgen-{slug}-$p down; done"
            ));
        }
        advise(format!(
            "  crontab -l | grep -vF '/{name}/{RENEW_SCRIPT}' | crontab -"
        ));
    }
}

/// Names each certificate that left a server that stays: certgen never deletes a certificate,
/// renewal skips it, and the server's script deletes it.
pub(super) fn report_removed_certificates(plan: &Plan, tree: &Tree) {
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

/// What `check` says of `plan` (the tree in `out` against what `config` renders), and its
/// exit code.
pub(super) fn report_check(plan: &Plan, out: &Path, config: &Path) -> ExitCode {
    report_strays(plan, out);
    if plan.is_empty() && plan.strays.is_empty() {
        say(format!(
            "certgen check: {} matches {}",
            out.display(),
            config.display()
        ));
        return ExitCode::SUCCESS;
    }
    if let (Some(then), false) = (&plan.written_by_another, plan.changes.is_empty()) {
        advise(format!(
            "certgen check: {} was generated by {then}; this is {}: `certgen render` upgrades it \
             (with the changes below, some of which may be this version's), or check with the \
             certgen that generated it",
            out.display(),
            render::generator()
        ));
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
    ExitCode::FAILURE
}

/// Names each file that nginx would load although certgen.yaml does not produce it.
pub(super) fn report_strays(plan: &Plan, out: &Path) {
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

/// A dry run: each file that would be created, changed or removed, with the diff of each change
/// and removal (of new files too with `verbose`), then what `--force` would be needed for.
pub(super) fn print_plan(plan: &Plan, out: &Path, force: bool, verbose: bool) {
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

pub(super) fn summarize(plan: &Plan, tree: &Tree, out: &Path) {
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
