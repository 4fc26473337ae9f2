//! Writes a rendered tree to disk without losing anything.
//!
//! Everything is checked before the first byte is written: files that would be overwritten
//! (refused without `--force`), links that lead out of the tree. Each file is then written
//! atomically (a temporary file beside it, renamed over it) with its mode. Anything under a
//! `certifications/` folder (certbot's keys, certificates and account) is never written, moved or
//! deleted: only a missing `.gitkeep` there is created.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::render::{Tree, CONFIG_FILE};

/// Why a tree was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "{out} already has a {CONFIG_FILE}; nothing was written. Pass --force to generate the tree again \
         (certificates and files certgen does not generate are never touched)"
    )]
    ConfigExists { out: String },
    #[error(
        "these files exist and differ from what certgen would write; nothing was written. Pass --force to \
         replace them:\n  {}",
        .0.join("\n  ")
    )]
    WouldOverwrite(Vec<String>),
    #[error("{path} is a link that leads out of {out}; certgen does not write through it. Nothing was written")]
    LinkOutOfTree { path: String, out: String },
    #[error("{0} is a symbolic link; certgen writes only regular files. Nothing was written")]
    Link(String),
    #[error("{0} exists and is not a folder")]
    NotADirectory(String),
}

/// What writing a tree did, for the summary.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created: Vec<PathBuf>,
    pub replaced: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
}

/// Is `rel` (relative to OUT) inside a server's certificate store, `SERVER/certifications/`?
pub fn is_certificate_store(rel: &Path) -> bool {
    rel.components().nth(1) == Some(Component::Normal("certifications".as_ref()))
}

enum Action {
    Create,
    Replace,
    Keep,
}

/// Writes `tree` under `out`; refuses (writing nothing) when that would lose a file.
pub fn write_tree(out: &Path, tree: &Tree, force: bool) -> anyhow::Result<Outcome> {
    if out.exists() && !out.is_dir() {
        return Err(WriteError::NotADirectory(out.display().to_string()).into());
    }
    if !force && out.join(CONFIG_FILE).exists() {
        return Err(WriteError::ConfigExists {
            out: out.display().to_string(),
        }
        .into());
    }
    let plan = plan(out, tree, force)?;
    let mut outcome = Outcome::default();
    for (rel, action) in plan {
        let file = &tree[&rel];
        match action {
            Action::Keep => outcome.unchanged.push(rel),
            Action::Create | Action::Replace => {
                write_atomically(
                    &out.join(&rel),
                    file.contents.as_bytes(),
                    mode(file.executable),
                )?;
                match action {
                    Action::Create => outcome.created.push(rel),
                    _ => outcome.replaced.push(rel),
                }
            }
        }
    }
    Ok(outcome)
}

fn mode(executable: bool) -> u32 {
    if executable {
        0o755
    } else {
        0o644
    }
}

fn plan(out: &Path, tree: &Tree, force: bool) -> anyhow::Result<Vec<(PathBuf, Action)>> {
    let root = first_existing_ancestor(out)?;
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for (rel, file) in tree {
        let target = out.join(rel);
        check_links(out, rel, &root)?;
        let meta = match fs::symlink_metadata(&target) {
            Ok(m) => m,
            Err(_) => {
                plan.push((rel.clone(), Action::Create));
                continue;
            }
        };
        if meta.file_type().is_symlink() {
            return Err(WriteError::Link(target.display().to_string()).into());
        }
        if is_certificate_store(rel) {
            plan.push((rel.clone(), Action::Keep));
            continue;
        }
        let same = fs::read(&target).is_ok_and(|b| b == file.contents.as_bytes())
            && meta.permissions().mode() & 0o777 == mode(file.executable);
        if same {
            plan.push((rel.clone(), Action::Keep));
        } else if force {
            plan.push((rel.clone(), Action::Replace));
        } else {
            conflicts.push(target.display().to_string());
        }
    }
    if !conflicts.is_empty() {
        return Err(WriteError::WouldOverwrite(conflicts).into());
    }
    Ok(plan)
}

/// The canonical form of `out`, or of its nearest existing ancestor when it does not exist yet.
fn first_existing_ancestor(out: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(out)?;
    let mut p = absolute.as_path();
    loop {
        if let Ok(c) = p.canonicalize() {
            return Ok(c.join(absolute.strip_prefix(p).expect("p is an ancestor")));
        }
        p = p.parent().unwrap_or(Path::new("/"));
    }
}

/// Refuses a folder inside the tree that is a link leading outside it.
fn check_links(out: &Path, rel: &Path, root: &Path) -> anyhow::Result<()> {
    let mut dir = out.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for component in parents {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                let resolved = dir.canonicalize().unwrap_or_default();
                if !resolved.starts_with(root) {
                    return Err(WriteError::LinkOutOfTree {
                        path: dir.display().to_string(),
                        out: out.display().to_string(),
                    }
                    .into());
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn write_atomically(target: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = target.parent().expect("a file in the tree has a folder");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".certgen-")
        .tempfile_in(dir)
        .with_context(|| format!("writing in {}", dir.display()))?;
    tmp.write_all(contents)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(target)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}
