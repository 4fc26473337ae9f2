//! The server side: the infra folder's path and the renewal's cron schedule.

use super::{first_outside, invalid, patterns, Invalid};

validated_string! {
    /// Where the infra folder lives on the server: an absolute path, used in the crontab line.
    pub struct DeployPath for "deploy_path";
    schema: "The absolute path of the infra folder (the one holding certgen.yaml) on the server.";
}

impl DeployPath {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        absolute_path(input, "deploy path", "/srv/infra").map(DeployPath)
    }
}

validated_string! {
    /// A folder on the server that node_exporter's textfile collector reads: `renew/run.sh`
    /// writes the certificates' metrics there after every run.
    pub struct MetricsDir for "metrics_dir";
    schema: "An absolute folder on the server (node_exporter's --collector.textfile.directory) that renew/run.sh writes certgen-SERVER.prom into.";
}

impl MetricsDir {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        absolute_path(input, "metrics folder", "/var/lib/node_exporter/textfile").map(MetricsDir)
    }
}

/// An absolute path of the server that a script or crontab line holds unquoted: letters,
/// digits and `/ . _ + @ -`, no `.` or `..` component, without its trailing `/`.
fn absolute_path(input: &str, what: &str, example: &str) -> Result<String, Invalid> {
    if !input.starts_with('/') {
        return invalid(
            input,
            format!("the {what} must be absolute, like {example}"),
        );
    }
    if let Some(c) = input.chars().find(|c| c.is_control()) {
        return invalid(
            input,
            format!("{c:?}: a {what} cannot hold control characters"),
        );
    }
    if let Some(c) = first_outside(input, "/._+@-") {
        return invalid(
            input,
            format!("{c:?}: a {what} holds letters, digits and / . _ + @ - only"),
        );
    }
    let components: Vec<&str> = input.trim_end_matches('/').split('/').skip(1).collect();
    if components
        .iter()
        .any(|c| *c == "." || *c == ".." || c.is_empty() && input != "/")
    {
        return invalid(
            input,
            format!("a {what} cannot contain . or .. components or //"),
        );
    }
    if components.iter().any(|c| c.len() > 255) {
        return invalid(input, "a folder name in a path has at most 255 characters");
    }
    let trimmed = input.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

validated_string! {
    /// A cron schedule (five fields, as in a crontab line) that runs `renew/run.sh` at least once
    /// every day: a schedule that never runs, or skips days, lets certificates expire quietly.
    pub struct CronSchedule for "renew_schedule";
    schema: "A five-field cron schedule that runs every day, like 17 4,16 * * *.";
    pattern: patterns::SCHEDULE;
}

/// The five fields of a crontab schedule: name and allowed range.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

impl CronSchedule {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let fields: Vec<&str> = input.split(' ').collect();
        if fields.len() != 5 || fields.iter().any(|f| f.is_empty()) {
            return invalid(input, "a schedule is five cron fields separated by single spaces (minute hour day-of-month month day-of-week), like \"17 4,16 * * *\"");
        }
        let mut sets = Vec::new();
        for (field, (name, low, high)) in fields.iter().zip(CRON_FIELDS) {
            let set = cron_field(field, low, high).map_err(|why| Invalid {
                what: "",
                value: input.to_string(),
                rule: format!("the {name} field {field:?} {why}"),
            })?;
            sets.push(set);
        }
        let (dom, month, dow) = (&sets[2], &sets[3], &sets[4]);
        let every = |set: &Vec<u32>, low: u32, high: u32| (low..=high).all(|v| set.contains(&v));
        let every_month = every(month, 1, 12);
        // Vixie cron: when both day fields are restricted, either one matching is enough;
        // when one is `*`, the other decides alone.
        let every_dom = every(dom, 1, 31);
        let every_dow = every(dow, 0, 6) || (every(dow, 1, 6) && dow.contains(&7));
        let dom_star = fields[2].starts_with('*');
        let dow_star = fields[4].starts_with('*');
        let every_day = match (dom_star, dow_star) {
            (true, true) => true,
            (true, false) => every_dow,
            (false, true) => every_dom,
            (false, false) => every_dom || every_dow,
        };
        if !every_month || !every_day {
            return invalid(
                input,
                "renewal must run at least once every day (a failed run is then retried within a \
                 day); keep the day-of-month, month and day-of-week fields *, like \"17 4,16 * * *\"",
            );
        }
        Ok(CronSchedule(input.to_string()))
    }

    /// Twice a day, 12 hours apart, at a minute and hour derived from `seed`: the same config
    /// always gets the same schedule, and different users spread over the day.
    pub fn twice_daily(seed: &str) -> Self {
        let h = fnv1a(seed.as_bytes());
        let minute = h % 60;
        let hour = (h / 60) % 12;
        CronSchedule(format!("{minute} {hour},{} * * *", hour + 12))
    }
}

/// The values one cron field selects: a comma-separated list of `*`, `N`, `N-M`, each
/// optionally `/STEP`. No names (`mon`) or macros (`@daily`): digits only.
fn cron_field(field: &str, low: u32, high: u32) -> Result<Vec<u32>, String> {
    let number = |s: &str| -> Result<u32, String> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "has {s:?} where a number from {low} to {high} goes"
            ));
        }
        let n: u32 = s.parse().expect("digits");
        if n < low || n > high {
            return Err(format!("has {n}, outside {low}-{high}"));
        }
        Ok(n)
    };
    let mut values = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = match step.parse() {
                    Ok(n)
                        if (1..=high).contains(&n) && step.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        n
                    }
                    _ => {
                        return Err(format!(
                            "has the step {step:?}; a step is a number from 1 to {high}"
                        ))
                    }
                };
                (range, step)
            }
            None => (part, 1),
        };
        let (first, last) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("has the range {a}-{b}, which runs backwards"));
            }
            (a, b)
        } else {
            let n = number(range)?;
            (n, if step > 1 { high } else { n })
        };
        values.extend((first..=last).step_by(step as usize));
    }
    Ok(values)
}

/// FNV-1a, 64 bits: tiny, and stable across Rust versions (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::check;

    #[test]
    fn deploy_paths_are_absolute() {
        assert_eq!(
            DeployPath::parse("/srv/infra/").unwrap().as_str(),
            "/srv/infra"
        );
        assert!(DeployPath::parse("/").is_ok());
        let long = format!("/{}", "a".repeat(256));
        check::refused::<DeployPath>(&[
            "srv",
            "",
            "/srv/../etc",
            "/srv/\nx",
            "/a/./b",
            "/a//b",
            "/srv/$(reboot)",
            "/srv/a b",
            "/srv/50%",
            long.as_str(),
        ]);
    }

    // The metrics folder goes into renew/run.sh unquoted by the shell's rules: the same as a
    // deploy path, with its own name in the error.
    #[test]
    fn metrics_folders_are_absolute_paths() {
        check::canonical::<MetricsDir>(&[("/var/lib/node_exporter/", "/var/lib/node_exporter")]);
        check::refused::<MetricsDir>(&["textfile", "/var/$(id)", "/var/a b", "/var/../etc"]);
        let err = MetricsDir::parse("textfile").unwrap_err();
        assert!(
            err.rule.contains("the metrics folder must be absolute"),
            "{err}"
        );
    }

    #[test]
    fn schedules_are_stable_and_twice_daily() {
        let a = CronSchedule::twice_daily("example.com");
        assert_eq!(a, CronSchedule::twice_daily("example.com"));
        let fields: Vec<&str> = a.as_str().split(' ').collect();
        let hours: Vec<u64> = fields[1].split(',').map(|h| h.parse().unwrap()).collect();
        assert_eq!(hours[1], hours[0] + 12);
        assert!(CronSchedule::parse(a.as_str()).is_ok());
        assert!(CronSchedule::parse("* * * *").is_err());
        assert!(CronSchedule::parse("@daily").is_err());
    }

    // A schedule that never runs, or skips days, is refused naming the field.
    #[test]
    fn schedules_must_run_every_day() {
        for good in [
            "17 4,16 * * *",
            "0 */6 * * *",
            "*/30 0-23/2 * * *",
            "5 3 * * 0-6",
            "5 3 * * 1-7",
            "5 3 1-31 * 1",
            "0 0 * 1-12 *",
        ] {
            assert!(
                CronSchedule::parse(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
        for (bad, says) in [
            ("0 0 31 2 *", "at least once every day"),
            ("0 0 * * 1-5", "at least once every day"),
            ("0 0 1 * *", "at least once every day"),
            ("0 0 * 6 *", "at least once every day"),
            (
                "99 99 99 99 99",
                "the minute field \"99\" has 99, outside 0-59",
            ),
            ("0 24 * * *", "the hour field \"24\" has 24, outside 0-23"),
            ("0 0 0 * *", "the day of month field"),
            ("0 0 * 13 *", "the month field"),
            ("0 0 * * 8", "the day of week field"),
            ("0 5-3 * * *", "runs backwards"),
            ("*/0 * * * *", "a step is a number"),
            ("0 0 * * mon", "the day of week field"),
            ("0  0 * * *", "five cron fields"),
        ] {
            let err = CronSchedule::parse(bad).unwrap_err();
            assert!(err.rule.contains(says), "{bad:?}: {err}");
        }
    }
}
