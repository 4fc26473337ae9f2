//! Docker values: image references (and the nginx version a tag names), networks, node labels.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::{invalid, patterns, Invalid};

validated_string! {
    /// A container image reference in Docker's grammar: `[registry[:port]/]path[:tag][@digest]`.
    pub struct ImageRef for "image";
    schema: "A container image, pinned by tag or digest: [registry[:port]/]path:tag[@digest].";
}

/// Docker's reference grammar (distribution/reference), anchored.
static IMAGE_REF: LazyLock<Regex> = LazyLock::new(|| {
    let alnum = "[a-z0-9]+";
    let sep = "(?:[._]|__|[-]+)";
    let component = format!("{alnum}(?:{sep}{alnum})*");
    let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
    let host = format!("(?:{domain_component}(?:\\.{domain_component})*|{ipv6})");
    let domain = format!("{host}(?::[0-9]+)?");
    let path = format!("{component}(?:/{component})*");
    let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!("^(?:{domain}/)?{path}(?::{tag})?(?:@{digest})?$")).expect("valid regex")
});

impl ImageRef {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.len() > 255 || !IMAGE_REF.is_match(input) {
            return invalid(
                input,
                "an image reference is [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST] in Docker's grammar, \
                 with a lowercase name, like nginx:1.30 or registry.example.com/certbot/certbot:v5.8.0",
            );
        }
        if input.ends_with(":latest") || !has_tag_or_digest(input) {
            return invalid(input, "pin a version: give a tag other than latest, or a digest (latest changes under you)");
        }
        Ok(ImageRef(input.to_string()))
    }

    /// The nginx version an image's tag names: `nginx:1.28`, `mirror.example/nginx:1.29.3-alpine`
    /// (an image named nginx, a tag that starts with the version). None for anything else (a
    /// digest alone, `stable`, another image's name): what it runs is known only by running it.
    /// A series tag (`1.28`) counts as its first release, the oldest it may be.
    pub fn nginx_version(&self) -> Option<NginxVersion> {
        let version = regex!(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-[a-z0-9.-]+)?$");
        let name = self.0.split('@').next()?;
        let (path, tag) = name.rsplit_once(':')?;
        if path.rsplit('/').next()? != "nginx" {
            return None;
        }
        let caps = version.captures(tag)?;
        let number = |i| caps.get(i).map_or(Some(0), |m| m.as_str().parse().ok());
        Some(NginxVersion(number(1)?, number(2)?, number(3)?))
    }
}

/// An nginx release, as (major, minor, patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NginxVersion(pub u32, pub u32, pub u32);

impl fmt::Display for NginxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn has_tag_or_digest(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':') || last.contains('@')
}

validated_string! {
    /// A Docker network the proxy joins, created outside certgen (`docker network create`, or an
    /// app's compose project).
    pub struct NetworkName for "networks";
    schema: "An existing Docker network the proxy joins.";
    pattern: patterns::NETWORK;
}

impl NetworkName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let name = regex!(super::patterns::NETWORK);
        if !name.is_match(input) {
            return invalid(
                input,
                "a Docker network name is 1-128 letters, digits and _ . -, starting with a letter or digit",
            );
        }
        match input {
            "host" | "none" => invalid(
                input,
                "the proxy publishes its ports on its own network; join the network your apps are on instead",
            ),
            "bridge" => invalid(
                input,
                "Docker's default bridge network does not resolve container names; create a network \
                 (docker network create NAME) and attach the apps to it",
            ),
            "default" => invalid(input, "`default` is the proxy's own network already; name the apps' network"),
            _ => Ok(NetworkName(input.to_string())),
        }
    }
}

validated_string! {
    /// `engine: swarm`: the label of the nodes that run a proxy, set on each with
    /// `docker node update --label-add LABEL=true NODE`. Docker's convention for label keys:
    /// lowercase letters, digits, `.` and `-`, reverse-DNS style.
    pub struct NodeLabel for "node_label";
    schema: "engine: swarm: the node label that puts a proxy on a node (docker node update --label-add LABEL=true NODE).";
    pattern: patterns::NODE_LABEL;
}

impl NodeLabel {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let label = regex!(super::patterns::NODE_LABEL);
        if !label.is_match(input) || input.contains("..") {
            return invalid(
                input,
                "a node label is 1-100 lowercase letters, digits, . and -, starting and ending \
                 with a letter or digit, like certgen.proxy",
            );
        }
        Ok(NodeLabel(input.to_string()))
    }

    /// The label when certgen.yaml names none.
    pub fn default_label() -> NodeLabel {
        NodeLabel("certgen.proxy".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn image_refs_follow_dockers_grammar_and_are_pinned() {
        for good in [
            "nginx:1.30",
            "certbot/certbot:v5.8.0",
            "registry.example.com:5000/team/nginx:1.30-alpine",
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(ImageRef::parse(good).is_ok(), "{good:?} should be accepted");
        }
        check::refused::<ImageRef>(&[
            "nginx",
            "nginx:latest",
            "Nginx:1",
            "nginx:1 ; rm",
            "nginx:$(id)",
            "",
            "nginx:",
        ]);
    }

    // The nginx an image's tag names, and only where the tag says it.
    #[test]
    fn nginx_versions_come_from_nginx_tags_only() {
        let version = |s: &str| ImageRef::parse(s).unwrap().nginx_version();
        assert_eq!(version("nginx:1.30"), Some(NginxVersion(1, 30, 0)));
        assert_eq!(version("nginx:1.29.3-alpine"), Some(NginxVersion(1, 29, 3)));
        assert_eq!(
            version("registry.example.com:5000/mirror/nginx:1.28.1@sha256:0123456789012345678901234567890123456789012345678901234567890123"),
            Some(NginxVersion(1, 28, 1))
        );
        for unknown in [
            "nginx:stable",
            "nginx:mainline-alpine",
            "nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "myorg/proxy:1.26",
            "registry.example.com:5000/nginx-custom:1.30",
        ] {
            assert_eq!(version(unknown), None, "{unknown}");
        }
    }
}
