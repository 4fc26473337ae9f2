//! The JSON Schema of certgen.yaml flags the values certgen refuses, and never one it accepts:
//! a corpus of good and bad values per kind, checked both ways.

use std::str::FromStr;

use certgen::config::Config;
use certgen::validate::{
    AcmeServer, CronSchedule, DomainName, Email, Invalid, NetworkName, NginxSize, NginxTime,
    NodeLabel, PathPrefix, ProfileName, ServerName, Upstream,
};

/// Whether the schema's definition `name` accepts `value` (`PathPrefix`: as a key of `routes`).
fn schema_accepts(name: &str, value: &str) -> bool {
    let mut schema: serde_json::Value = serde_json::from_str(&Config::json_schema()).unwrap();
    let (reference, value) = match name {
        "PathPrefix" => (
            "#/definitions/Certificate/properties/routes".to_string(),
            serde_json::json!({ value: "http://app:80" }),
        ),
        _ => (
            format!("#/definitions/{name}"),
            serde_json::Value::from(value),
        ),
    };
    schema["$ref"] = reference.into();
    for key in [
        "properties",
        "required",
        "type",
        "additionalProperties",
        "title",
    ] {
        schema.as_object_mut().unwrap().remove(key);
    }
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator.is_valid(&value)
}

/// For each value: the schema accepts it exactly when certgen does. `strict` values are ones
/// certgen refuses for a reason no pattern can say (a weekly schedule the schema says is not
/// daily is in the corpus; a name without a public suffix is not): the schema may accept those.
#[track_caller]
fn agree<T: FromStr<Err = Invalid>>(name: &str, values: &[&str]) {
    for value in values {
        let certgen = T::from_str(value).is_ok();
        assert_eq!(
            schema_accepts(name, value),
            certgen,
            "{name} {value:?}: certgen {}",
            if certgen { "accepts it" } else { "refuses it" }
        );
    }
}

#[test]
fn the_schema_and_certgen_agree_on_each_kind_of_value() {
    agree::<DomainName>(
        "DomainName",
        &[
            "example.com",
            "Example.COM",
            "*.example.com",
            "xn--bcher-kva.example",
            "127.0.0.1",
            "2001:db8::1",
            "bücher.example",
            "exa mple.com",
            "example.com;reboot",
            "https://example.com/",
            "-a.example.com",
            "com",
        ],
    );
    agree::<Email>(
        "Email",
        &[
            "ops@example.com",
            "a.b+c_d-e@example.com",
            "a b@example.com",
            "a,b@example.com",
            "-x@example.com",
            "ops",
            "ops@",
        ],
    );
    agree::<ServerName>(
        "ServerName",
        &["prod", "web-1.eu", "Prod", "../etc", "a b", "-a"],
    );
    agree::<Upstream>(
        "Upstream",
        &[
            "http://app:8080",
            "https://10.0.0.5",
            "http://[2001:db8::1]:81",
            "http://app:8080/",
            "app:8080",
            "ftp://app",
            "http://app/x",
            "http://app;",
        ],
    );
    agree::<AcmeServer>(
        "AcmeServer",
        &[
            "https://acme-v02.api.letsencrypt.org/directory",
            "letsencrypt-staging",
            "http://ca.example/dir",
            "https://a.com/$(id)",
        ],
    );
    agree::<ProfileName>("ProfileName", &["classic", "shortlived", "Short Lived", ""]);
    agree::<NginxSize>("NginxSize", &["100m", "2G", "0", "20 MB", "1t", "-1"]);
    agree::<NginxTime>("NginxTime", &["60s", "500ms", "1h", "0s", "1 s", "1w"]);
    agree::<PathPrefix>("PathPrefix", &["/api/", "/static", "api/", "/a b/", "/$x/"]);
    agree::<NetworkName>("NetworkName", &["apps", "my_net.1", "-x", "a b"]);
    agree::<NodeLabel>("NodeLabel", &["certgen.proxy", "edge", "Edge_Proxy", "a."]);
    agree::<CronSchedule>(
        "CronSchedule",
        &[
            "17 4,16 * * *",
            "*/30 * * * *",
            "0 3 * * 1",
            "0 0 31 2 *",
            "0 3 * *",
            "every day",
        ],
    );
}
