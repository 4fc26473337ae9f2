//! certgen's integration tests: one crate, one small helper for running the binary.
//!
//! - `snapshots`: every `examples/NAME.yaml` renders to exactly `snapshots/NAME/`.
//! - `init`: the command line, run in temporary folders.
//! - `real_tools`: shellcheck, `nginx -t` and `docker compose config` on every snapshot
//!   (when `CERTGEN_REAL_TOOLS=1`).
//! - `e2e`: a generated tree taken through issuance, proxy and renewal against Pebble
//!   (when `CERTGEN_E2E=1`).

mod claims;
mod e2e;
mod helpers;
mod hostile;
mod init;
mod properties;
mod real_tools;
mod render;
mod scripts;
mod snapshots;
