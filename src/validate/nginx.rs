//! Values placed in nginx's configuration: sizes, durations, route prefixes, response headers.

use super::{invalid, matching, patterns, Invalid};

validated_string! {
    /// A size in nginx's syntax: a number of bytes, or of `k`, `m` or `g` (kibi-, mebi-,
    /// gibibytes). `0` means no limit where nginx allows it (`client_max_body_size`).
    pub struct NginxSize for "max_body_size";
    schema: "A size in nginx's syntax: bytes, or a number of k, m or g; 0 for no limit.";
    pattern: patterns::SIZE;
}

impl NginxSize {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let size = regex!("^[0-9]{1,6}[kmg]?$");
        let lower = input.to_ascii_lowercase();
        if !size.is_match(&lower) {
            return invalid(
                input,
                "a size is a number with an optional unit k, m or g, like 100m or 2g (0 = no limit)",
            );
        }
        Ok(NginxSize(lower))
    }
}

validated_string! {
    /// A duration in nginx's syntax: a number of seconds, or of `ms`, `s`, `m`, `h` or `d`.
    pub struct NginxTime for "timeout";
    schema: "A duration in nginx's syntax: seconds, or a number of ms, s, m, h or d.";
    pattern: patterns::TIME;
}

impl NginxTime {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let time = regex!("^([0-9]{1,6})(ms|s|m|h|d)?$");
        let Some(caps) = time.captures(input) else {
            return invalid(
                input,
                "a timeout is a number with an optional unit ms, s, m, h or d, like 60s or 1h",
            );
        };
        if &caps[1] == "0" || caps[1].bytes().all(|b| b == b'0') {
            return invalid(
                input,
                "a timeout of 0 would fail every request; give at least 1s",
            );
        }
        Ok(NginxTime(input.to_string()))
    }

    pub fn seconds(&self) -> f64 {
        let digits = self.0.trim_end_matches(char::is_alphabetic);
        let n: f64 = digits.parse().expect("validated");
        n * match &self.0[digits.len()..] {
            "ms" => 0.001,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => 1.0,
        }
    }
}

validated_string! {
    /// A path prefix that a route sends to its own upstream: `/api/`. nginx matches it as a prefix
    /// of the request path (the longest matching prefix wins), and passes the whole path on.
    #[derive(PartialOrd, Ord, Hash)]
    pub struct PathPrefix for "routes";
    schema: "A path prefix starting and ending with /, like /api/.";
    pattern: patterns::PATH_PREFIX;
}

impl PathPrefix {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        const RULE: &str = "a route is a path prefix like /api/: it starts with /, and holds \
                            letters, digits and / . _ ~ - only";
        if input == "/" {
            return invalid(
                input,
                "/ is the certificate's own `upstream`; routes are for other prefixes, like /api/",
            );
        }
        let ok = input.starts_with('/')
            && input.len() <= 200
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b));
        if !ok {
            return invalid(input, RULE);
        }
        if input.contains("//") || input.split('/').any(|c| c == "." || c == "..") {
            return invalid(input, "a route cannot contain //, . or .. components");
        }
        Ok(PathPrefix(input.to_string()))
    }
}

validated_string! {
    /// The name of a response header a site adds (`headers`): letters, digits and `-`.
    #[derive(PartialOrd, Ord, Hash)]
    pub struct HeaderName for "headers";
    schema: "A response header's name: letters, digits and -, like X-Frame-Options; not Strict-Transport-Security (hsts sets it).";
    pattern: patterns::HEADER_NAME;
}

impl HeaderName {
    /// Headers a site cannot set: HSTS comes from `hsts` (a second header would confuse browsers
    /// and could not turn it off), the framing headers are nginx's.
    const RESERVED: [&'static str; 4] = [
        "strict-transport-security",
        "content-length",
        "transfer-encoding",
        "connection",
    ];

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if !regex!(patterns::HEADER_NAME).is_match(input) {
            return invalid(
                input,
                "a header name is letters, digits and -, at most 64, like X-Frame-Options",
            );
        }
        let lower = input.to_ascii_lowercase();
        if lower == Self::RESERVED[0] {
            return invalid(
                input,
                "HSTS comes from the hsts key (hsts.max_age: 0 sends none)",
            );
        }
        if Self::RESERVED.contains(&lower.as_str()) {
            return invalid(input, "nginx sets this header itself");
        }
        Ok(HeaderName(input.to_string()))
    }
}

validated_string! {
    /// The value of a response header a site adds: printable ASCII, placed in nginx's double
    /// quotes, so without `"`, `\` or `$` (which nginx would read as a variable).
    pub struct HeaderValue for "headers";
    schema: "A response header's value: printable ASCII without \" \\ or $, at most 1024 characters.";
    pattern: patterns::HEADER_VALUE;
}

impl HeaderValue {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if let Some(c) = unquotable(input) {
            return invalid(
                input,
                format!(
                    "{c:?} cannot be in a header value: printable ASCII only, without \" \\ or $ \
                     (nginx would read $ as a variable)"
                ),
            );
        }
        if input.trim().is_empty() || input.len() > 1024 {
            return invalid(input, "a header value has 1 to 1024 characters");
        }
        Ok(HeaderValue(input.to_string()))
    }
}

/// The first character of `input` that cannot stand in nginx's double quotes: anything but
/// printable ASCII, and `"`, `\` or `$` (which nginx would read as a variable).
fn unquotable(input: &str) -> Option<char> {
    input
        .chars()
        .find(|c| !(' '..='~').contains(c) || matches!(c, '"' | '\\' | '$'))
}

validated_string! {
    /// The name a browser shows when it asks for the password (`auth.realm`), in nginx's quotes.
    pub struct AuthRealm for "auth.realm";
    schema: "What the browser's password prompt names: printable ASCII without \" \\ or $, at most 64 characters.";
    pattern: patterns::AUTH_REALM;
}

impl AuthRealm {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if let Some(c) = unquotable(input) {
            return invalid(
                input,
                format!("{c:?} cannot be in a realm: printable ASCII only, without \" \\ or $"),
            );
        }
        if input.trim().is_empty() || input.len() > 64 {
            return invalid(input, "a realm has 1 to 64 characters");
        }
        Ok(AuthRealm(input.to_string()))
    }
}

validated_string! {
    /// A password file of the site's basic auth (`auth.users`): its name in the server's
    /// `secrets/auth/` folder, which stays on the server.
    pub struct UsersFile for "auth.users";
    schema: "The name of the password file in the server's secrets/auth/ folder: lowercase letters, digits, . _ -, like staff.";
    pattern: patterns::USERS_FILE;
}

impl UsersFile {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let rule = "users names a file in the server's secrets/auth/ folder: 1 to 64 lowercase \
                    letters, digits, . _ -, starting with a letter or digit (not a path)";
        matching(input, regex!(patterns::USERS_FILE), rule).map(UsersFile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn response_headers_are_safe_in_nginx_quotes() {
        check::accepted::<HeaderName>(&["X-Frame-Options", "Permissions-Policy", "x-robots-tag"]);
        check::refused::<HeaderName>(&[
            "",
            "X Frame",
            "X-Frame:",
            "X_Frame",
            "Strict-Transport-Security",
            "content-length",
            "-X",
        ]);
        check::accepted::<HeaderValue>(&[
            "DENY",
            "default-src 'self'; img-src *",
            "noindex, nofollow",
        ]);
        check::refused::<HeaderValue>(&[
            "", " ", "a\"b", "a\\b", "$host", "a\nb", "a\u{7f}", "\u{e9}",
        ]);
        let err = HeaderName::parse("strict-transport-security").unwrap_err();
        assert!(err.rule.contains("hsts"), "{err}");
    }

    #[test]
    fn basic_auth_takes_a_quotable_realm_and_a_file_name() {
        check::accepted::<AuthRealm>(&["Staff only", "example.com admin"]);
        check::refused::<AuthRealm>(&["", " ", "a\"b", "$realm", "a\nb", &"r".repeat(65)]);
        check::accepted::<UsersFile>(&["staff", "ops.htpasswd", "team-1"]);
        check::refused::<UsersFile>(&["", "../staff", "a/b", ".htpasswd", "Staff", "a b", "-x"]);
    }

    #[test]
    fn sizes_are_nginx_sizes_in_lowercase() {
        assert_eq!(NginxSize::parse("100M").unwrap().as_str(), "100m");
        assert!(NginxSize::parse("0").is_ok());
        check::refused::<NginxSize>(&["", "20 MB", "1t", "-1", "1234567", "1m;"]);
    }

    #[test]
    fn timeouts_are_nginx_durations_above_zero() {
        assert_eq!(NginxTime::parse("90s").unwrap().seconds(), 90.0);
        assert_eq!(NginxTime::parse("2m").unwrap().seconds(), 120.0);
        assert_eq!(NginxTime::parse("500ms").unwrap().seconds(), 0.5);
        assert!(NginxTime::parse("0s")
            .unwrap_err()
            .rule
            .contains("at least 1s"));
        check::refused::<NginxTime>(&["", "1 s", "1w", "s", "60s;"]);
    }

    #[test]
    fn routes_are_plain_path_prefixes() {
        assert!(PathPrefix::parse("/api/").is_ok());
        assert!(PathPrefix::parse("/")
            .unwrap_err()
            .rule
            .contains("`upstream`"));
        check::refused::<PathPrefix>(&["api/", "/a b/", "/a//b/", "/../", "/a;b/", "/$x/"]);
    }
}
