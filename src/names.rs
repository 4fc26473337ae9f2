//! The fixed names of the output tree, declared once: rendering, writing, the commands and
//! validation all use these, so a name cannot be known to one and missed by another (a server
//! named like a file certgen writes beside the server folders would collide with it).

/// The config file, beside the servers' folders.
pub const CONFIG_FILE: &str = "certgen.yaml";
/// The JSON Schema of `certgen.yaml`, beside it: editors complete keys and flag typos with it.
pub const SCHEMA_FILE: &str = "certgen.schema.json";
/// What certgen generated, with each file's hash (see `write`).
pub const MANIFEST: &str = ".certgen-manifest";
/// The repo's ignore file, whose certgen block keeps secrets and certificates out of git.
pub const GITIGNORE: &str = ".gitignore";
/// Every name certgen writes at the top of a tree: no server may take one.
pub const TOP_LEVEL: &[&str] = &[CONFIG_FILE, SCHEMA_FILE, MANIFEST, GITIGNORE];

/// A server's folder for the secrets its scripts use (DNS credentials, the monitor's ping URL):
/// created on the server, mode 700, ignored by git; certgen never writes or reads it.
pub const SECRETS_DIR: &str = "secrets";
/// The file in [`SECRETS_DIR`] that holds the monitor's ping URL.
pub const NOTIFY_URL_FILE: &str = "notify-url";
/// The files in [`SECRETS_DIR`] that hold the HMAC keys of External Account Binding, at
/// `acme_server` and at `fallback_acme_server`.
pub const EAB_KEY_FILE: &str = "eab-hmac-key";
pub const FALLBACK_EAB_KEY_FILE: &str = "fallback-eab-hmac-key";

/// A server's certificate store: certbot's `/etc/letsencrypt` (keys, certificates, the ACME
/// account). certgen never writes, changes or removes anything in it.
pub const CERTIFICATE_STORE: &str = "certifications";
/// Where a server's tree holds one proxy site per certificate, `<certificate>.conf`.
pub const SITES: &str = "nginx-ssl/nginx/sites";
/// The folders of a server's tree whose every file nginx loads (directly, or once proxy.sh
/// enables it). A file certgen did not generate there is reported by `check`; hand-written
/// configuration belongs in `nginx-ssl/nginx/custom/`, which certgen never reads.
pub const NGINX_LOADS: &[&str] = &[
    "nginx-ssl/nginx/conf.d",
    SITES,
    "nginx-for-cert/nginx/conf.d",
];
/// The functions the scripts share: sourced by them, not run (the one `.sh` file that is not
/// executable).
pub const LIB_SH: &str = "lib.sh";
/// The swarm stack file: a server's tree holds it when its engine is swarm.
pub const STACK_FILE: &str = "nginx-ssl/stack.yml";
/// The scripts of a server's tree, relative to its folder: what the commands tell the user to run.
pub const ISSUE_SCRIPT: &str = "nginx-for-cert/run.sh";
pub const APPLY_SCRIPT: &str = "apply.sh";
pub const RENEW_SCRIPT: &str = "renew/run.sh";
pub const STATUS_SCRIPT: &str = "status.sh";
/// Where hand-written nginx configuration goes; certgen never reads or writes it.
pub const CUSTOM_DIR: &str = "nginx-ssl/nginx/custom";
