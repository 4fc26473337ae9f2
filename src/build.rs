//! The build script (Cargo.toml names it): `include_dir!` in `render.rs` embeds `templates/`,
//! but cargo only sees the files it embedded at the last build. Watching the folder makes a new
//! or removed template rebuild the crate, so tests and blessing never run a stale template set.
fn main() {
    println!("cargo:rerun-if-changed=templates");
}
