//! certgen's integration tests: one crate, one small helper for running the binary.
//!
//! - `snapshots`: every `examples/NAME.yaml` renders to exactly `snapshots/NAME/`, every file of
//!   which git tracks.
//! - `init`, `render`, `claims`: the command line, run in temporary folders; `claims` holds one
//!   test per claim of the README.
//! - `hostile`, `properties`: hostile input for every flag and key; property tests.
//! - `scripts`: the generated scripts run against a stand-in `docker` (no Docker needed).
//! - `real_tools`: shellcheck, `nginx -t` and `docker compose config` on every snapshot
//!   (`#[ignore]`d; `CERTGEN_REAL_TOOLS=1 cargo test -- --include-ignored`).
//! - `e2e`: a generated tree taken through issuance, proxy and renewal against Pebble
//!   (`#[ignore]`d; `CERTGEN_E2E=1 cargo test -- --include-ignored`).
//! - `swarm`: an `engine: swarm` tree on a two-node Docker Swarm of docker-in-docker nodes
//!   (the same switch; it runs after or before `e2e`, never beside it).
//!
//! The breakages and the test each one fails (checked by making each in a copy, re-blessing
//! the snapshots, and running the fast tier):
//!
//! | breakage | fails |
//! |---|---|
//! | the ACME URL no longer shell-quoted | `scripts::issuance::accepted_values_reach_certbot_unchanged`, `scripts::issuance::issuance_passes_exact_arguments_and_opens_port_80_only_when_asked` |
//! | `nginx -t` removed before the reload (now in `proxy.sh`) | e2e stage 22 (only a real nginx shows it) |
//! | the start-of-run cleanup of a killed run removed | `scripts::issuance::issuance_passes_exact_arguments...`, `scripts::issuance::what_a_killed_run_left_is_removed_before_certbot_runs`; e2e stage 18 (SIGKILL) |
//! | the lock dropped | `scripts::issuance::a_second_run_waits_for_the_first` |
//! | the reload marker dropped when the reload fails | `scripts::issuance::a_failed_reload_keeps_the_marker_and_the_next_run_reloads` |
//! | writes in place instead of atomic | `claims::a_write_that_fails_part_way_leaves_no_half_written_file` |
//! | errors printed unescaped | `claims::values_in_errors_are_escaped`, `hostile` |
//! | every error exiting 2 | `claims::a_write_that_fails_part_way_leaves_no_half_written_file` (exit 1) |
//! | `init` ignoring `--upstream`, `--nginx-image`, `--certbot-image` (any flag) | `claims::every_init_flag_lands_in_the_tree` |
//! | `render`/`check` ignoring `--config` or `--out` | `claims::render_and_check_find_the_config_and_the_folder_by_default` |
//! | the `deploy_path: /` branch | `claims::a_deploy_path_of_root_gives_single_slashed_paths` |
//! | a new template not picked up | `src/build.rs` rebuilds; `snapshots::every_example_renders_to_its_snapshot` then sees it |
//! | a generated `.gitignore` hiding snapshot files | `snapshots::git_would_track_every_snapshot_file` |
//! | skipped tests reported as passed | they are `#[ignore]`d with a reason; `CERTGEN_E2E=true` is an error |
//! | an error "naming the key" by a substring of the rule | `hostile::every_config_key_rejects_hostile_values_and_writes_nothing` checks file:line:column and `KEY "value"` |

mod claims;
mod e2e;
mod fixture;
mod helpers;
mod hostile;
mod init;
mod properties;
mod real_tools;
mod render;
mod schema;
mod scripts;
mod snapshots;
mod swarm;
mod world;
