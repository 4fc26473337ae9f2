//! Golden trees: `examples/NAME.yaml` renders to exactly `snapshots/NAME/`, compared both ways
//! (missing files, extra files, contents, executable bits). `CERTGEN_BLESS=1 cargo test
//! snapshots` rewrites the snapshots; review their diff like code, it is the product.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use certgen::config::Config;
use certgen::render::{render, Tree};

use crate::helpers::{files_under, repo};

/// Every example config, by name.
pub fn examples() -> Vec<(String, PathBuf)> {
    let mut out: Vec<_> = fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

pub fn render_example(path: &Path) -> Tree {
    let text = fs::read_to_string(path).unwrap();
    let config = Config::from_yaml(&text, path).unwrap_or_else(|e| panic!("{e:#}"));
    render(&config).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The differences between a rendered tree and a folder, readable in a test failure. Files in
/// the folder named in `ignore` (such as certgen.yaml) are not compared.
pub fn tree_differences(expected_dir: &Path, tree: &Tree, ignore: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let on_disk = files_under(expected_dir);
    for rel in &on_disk {
        if !tree.contains_key(rel) && !ignore.iter().any(|i| rel == Path::new(i)) {
            problems.push(format!(
                "extra file in {}: {}",
                expected_dir.display(),
                rel.display()
            ));
        }
    }
    for (rel, file) in tree {
        let path = expected_dir.join(rel);
        let Ok(expected) = fs::read_to_string(&path) else {
            problems.push(format!("missing file: {}", path.display()));
            continue;
        };
        if expected != file.contents {
            let diff = similar::TextDiff::from_lines(&expected, &file.contents)
                .unified_diff()
                .header(
                    &format!("{} (snapshot)", rel.display()),
                    &format!("{} (rendered)", rel.display()),
                )
                .to_string();
            problems.push(diff);
        }
        let executable = fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0;
        if executable != file.executable {
            problems.push(format!(
                "{}: executable is {executable}, rendered {}",
                rel.display(),
                file.executable
            ));
        }
    }
    problems
}

fn bless(dir: &Path, tree: &Tree) {
    let _ = fs::remove_dir_all(dir);
    for (rel, file) in tree {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &file.contents).unwrap();
        let mode = if file.executable { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Is CERTGEN_BLESS=1 set?
fn blessing() -> bool {
    crate::helpers::switched_on("CERTGEN_BLESS", "rewrite the snapshots")
}

#[test]
fn every_example_renders_to_its_snapshot() {
    let examples = examples();
    assert!(
        examples.len() >= 4,
        "examples/ should hold the documented configs"
    );
    let mut failures = Vec::new();
    for (name, path) in examples {
        let tree = render_example(&path);
        let dir = repo().join("snapshots").join(&name);
        if blessing() {
            bless(&dir, &tree);
            continue;
        }
        for p in tree_differences(&dir, &tree, &[]) {
            failures.push(format!("[{name}] {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "snapshots differ (CERTGEN_BLESS=1 cargo test snapshots rewrites them):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_snapshot_has_an_example() {
    let names: Vec<String> = examples().into_iter().map(|(n, _)| n).collect();
    for entry in fs::read_dir(repo().join("snapshots")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(&name),
            "snapshots/{name} has no examples/{name}.yaml"
        );
    }
}

// The blog's one public IP: one proxy terminates TLS for all four names and forwards
// to the dev and prod machines.
#[test]
fn the_blog_setup_is_one_proxy_with_four_sites() {
    let tree = render_example(&repo().join("examples/blog.yaml"));
    let servers: std::collections::BTreeSet<_> = tree
        .keys()
        .filter(|p| p.components().count() > 1)
        .map(|p| p.components().next().unwrap())
        .collect();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let sites: Vec<_> = tree
        .iter()
        .filter(|(p, _)| p.starts_with("edge/nginx-ssl/nginx/sites"))
        .collect();
    assert_eq!(sites.len(), 4, "{sites:?}");
    for machine in [
        "192.168.10.11",
        "192.168.10.12",
        "192.168.10.21",
        "192.168.10.22",
    ] {
        assert!(
            sites.iter().any(|(_, f)| f.contents.contains(machine)),
            "no site forwards to {machine}"
        );
    }
}

// Each snapshot holds the .gitignore certgen generates, and git applies it inside
// snapshots/ too: a generated file it ignores would never be committed, and a fresh clone
// would fail the snapshot test. Every rendered file must be one git tracks.
#[test]
fn git_would_track_every_snapshot_file() {
    let mut paths = Vec::new();
    for (name, path) in examples() {
        for rel in render_example(&path).keys() {
            paths.push(format!("snapshots/{name}/{}", rel.display()));
        }
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo())
        .args(["check-ignore", "--no-index", "-v"])
        .args(&paths)
        .output()
        .expect("git runs");
    // `-v` prints `SOURCE:LINE:PATTERN<TAB>PATH`, negated patterns (`!...`, not ignored) too.
    let listed = String::from_utf8_lossy(&out.stdout);
    let ignored: Vec<&str> = listed
        .lines()
        .filter(|l| {
            let pattern = l.split('\t').next().unwrap_or("").splitn(3, ':').nth(2);
            !pattern.unwrap_or("").starts_with('!')
        })
        .collect();
    let ignored = ignored.join("\n");
    assert!(
        ignored.trim().is_empty(),
        "git ignores these generated files, so they would never be committed:\n{ignored}"
    );
}

// Catches: a server's tree carrying shell it never runs (the DNS queue in an HTTP-01 tree, a
// mode's branch in another's): every function a server's scripts define is called by them.
#[test]
fn every_shell_function_a_server_defines_is_called() {
    let definition = regex::Regex::new(r"(?m)^([a-z_][a-z0-9_]*)\(\) \{").unwrap();
    let mut unused = Vec::new();
    for (name, path) in examples() {
        let tree = render_example(&path);
        let servers: std::collections::BTreeSet<&Path> = tree
            .keys()
            .filter(|rel| rel.components().count() > 1)
            .filter_map(|rel| rel.iter().next().map(Path::new))
            .collect();
        for server in servers {
            // The server's shell, without its comments.
            let code: String = tree
                .iter()
                .filter(|(rel, _)| {
                    rel.starts_with(server) && rel.extension() == Some("sh".as_ref())
                })
                .flat_map(|(_, file)| file.contents.lines())
                .filter(|line| !line.trim_start().starts_with('#'))
                .map(|line| format!("{line}\n"))
                .collect();
            for function in definition.captures_iter(&code).map(|c| c[1].to_string()) {
                let mention =
                    regex::Regex::new(&format!(r"(^|[^\w-]){function}([^\w-]|$)")).unwrap();
                let calls = code
                    .lines()
                    .filter(|line| {
                        mention.is_match(line) && !line.starts_with(&format!("{function}()"))
                    })
                    .count();
                if calls == 0 {
                    unused.push(format!("{name}: {}: {function}", server.display()));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "functions defined and never called:\n{}",
        unused.join("\n")
    );
}

// Catches: the README's figure of what a reviewer reads drifting from the tree (.ci/count-tree
// counts the same: the blog's server folder, its README and the schema left out).
#[test]
fn the_readme_gives_the_blog_trees_size() {
    let server = repo().join("snapshots/blog/edge");
    let lines = |rel: &Path| {
        fs::read_to_string(server.join(rel))
            .unwrap()
            .matches('\n')
            .count()
    };
    let files = files_under(&server);
    let shell: usize = files
        .iter()
        .filter(|f| f.extension() == Some("sh".as_ref()))
        .map(|f| lines(f))
        .sum();
    let all: usize = files
        .iter()
        .filter(|f| *f != Path::new("README.md"))
        .map(|f| lines(f))
        .sum();
    let thousands = |n: usize| match n {
        1000.. => format!("{},{:03}", n / 1000, n % 1000),
        _ => n.to_string(),
    };
    let figure = format!("{shell} lines of shell and {} in all", thousands(all));
    let readme = fs::read_to_string(repo().join("README.md"))
        .unwrap()
        .replace('\n', " ");
    assert!(
        readme.contains(&figure),
        "the README should say: {figure} (.ci/count-tree)"
    );
}
