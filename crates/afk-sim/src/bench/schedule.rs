//! The shipped tick schedules: how many poll and watch ticks an hour the CronJobs in
//! `deploy/` run, read from their manifest, so the bench's hourly cost model follows the
//! schedule afk actually ships.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

/// The CronJob manifest of the source tree this afk-sim was built from.
pub fn shipped_cronjobs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/base/cronjobs.yaml")
}

/// The two ticks' schedules and their rates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Schedules {
    /// The manifest they were read from.
    pub source: String,
    pub poll: String,
    pub poll_ticks_per_hour: f64,
    pub watch: String,
    pub watch_ticks_per_hour: f64,
}

/// Reads the `afk-poll` and `afk-watch` CronJobs' schedules from the manifest at `path`.
pub fn read_schedules(path: &Path) -> anyhow::Result<Schedules> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the CronJobs at {} (pass --cronjobs PATH, or --no-fit)",
            path.display()
        )
    })?;
    let rate = |name: &str| -> anyhow::Result<(String, f64)> {
        let schedule = cronjob_schedule(&text, name)
            .with_context(|| format!("reading the {name} schedule from {}", path.display()))?;
        let per_hour = ticks_per_hour(&schedule).with_context(|| {
            format!(
                "the {name} schedule {schedule:?} in {} has no hourly rate",
                path.display()
            )
        })?;
        Ok((schedule, per_hour))
    };
    let (poll, poll_ticks_per_hour) = rate("afk-poll")?;
    let (watch, watch_ticks_per_hour) = rate("afk-watch")?;
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let source = path.strip_prefix(&tree).unwrap_or(path);
    Ok(Schedules {
        source: source.display().to_string(),
        poll,
        poll_ticks_per_hour,
        watch,
        watch_ticks_per_hour,
    })
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v)
}

/// The `spec.schedule` of the CronJob named `name` in a multi-document manifest written in
/// block style (`kind`, `metadata.name` and `spec.schedule` on lines of their own, nested by
/// two spaces), as the shipped one is. Anything else is refused rather than guessed.
pub fn cronjob_schedule(text: &str, name: &str) -> anyhow::Result<String> {
    let mut found: Vec<Option<String>> = Vec::new();
    let mut docs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(Vec::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push(line);
        }
    }
    for doc in docs {
        let (mut kind, mut doc_name, mut schedule) = (None, None, None);
        let mut section = "";
        for line in doc {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let Some((key, value)) = t.split_once(':') else {
                continue;
            };
            match (indent, section, key.trim()) {
                (0, _, k) => {
                    section = k;
                    if k == "kind" {
                        kind = Some(unquote(value));
                    }
                }
                (2, "metadata", "name") => doc_name = Some(unquote(value)),
                (2, "spec", "schedule") => schedule = Some(unquote(value).to_owned()),
                _ => {}
            }
        }
        if kind == Some("CronJob") && doc_name == Some(name) {
            found.push(schedule);
        }
    }
    match found.as_slice() {
        [Some(s)] => Ok(s.clone()),
        [None] => bail!("the CronJob {name} has no spec.schedule"),
        [] => bail!("there is no CronJob named {name}"),
        more => bail!("{} CronJobs are named {name}", more.len()),
    }
}

/// Runs an hour of a five-field cron schedule (Kubernetes CronJob syntax, "Schedule syntax" in
/// the Kubernetes CronJob docs), averaged over a day. Only the minute and hour fields may be
/// restricted: a schedule limited to some days or months has no single hourly rate.
pub fn ticks_per_hour(expr: &str) -> anyhow::Result<f64> {
    match expr.trim() {
        "@hourly" => return Ok(1.0),
        "@daily" | "@midnight" => return Ok(1.0 / 24.0),
        _ => {}
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = fields.as_slice() else {
        bail!("a cron schedule has five fields, this one {}", fields.len());
    };
    for (what, f) in [
        ("day of month", day),
        ("month", month),
        ("day of week", weekday),
    ] {
        if !matches!(*f, "*" | "?") {
            bail!("its {what} field {f:?} restricts the days it runs");
        }
    }
    let minutes = field_values(minute, 0, 59).context("the minute field")?;
    let hours = field_values(hour, 0, 23).context("the hour field")?;
    Ok((minutes.len() * hours.len()) as f64 / 24.0)
}

/// The values a cron field selects: `*`, `N`, `A-B`, each with an optional `/STEP`, joined by
/// commas.
fn field_values(field: &str, min: u32, max: u32) -> anyhow::Result<BTreeSet<u32>> {
    let mut values = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().with_context(|| format!("step {s:?}"))?;
                (r, Some(step))
            }
            None => (part, None),
        };
        let num = |s: &str| -> anyhow::Result<u32> {
            let n: u32 = s
                .parse()
                .with_context(|| format!("{s:?} is not a number"))?;
            if !(min..=max).contains(&n) {
                bail!("{n} is outside {min}-{max}");
            }
            Ok(n)
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else if step.is_some() {
            (num(range)?, max)
        } else {
            let n = num(range)?;
            (n, n)
        };
        if lo > hi {
            bail!("the range {lo}-{hi} is empty");
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            bail!("a step of 0");
        }
        values.extend((lo..=hi).step_by(step as usize));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_rates_of_cron_schedules() {
        for (expr, want) in [
            ("*/5 * * * *", 12.0),
            ("*/3 * * * *", 20.0),
            ("*/2 * * * *", 30.0),
            ("* * * * *", 60.0),
            ("0 * * * *", 1.0),
            ("0,30 * * * *", 2.0),
            ("0-9/5 * * * *", 2.0),
            ("7/20 * * * *", 3.0),
            ("*/10 8-19 * * *", 3.0),
            ("@hourly", 1.0),
        ] {
            let got = ticks_per_hour(expr).expect(expr);
            assert!((got - want).abs() < 1e-9, "{expr}: {got} != {want}");
        }
        for bad in [
            "*/5 * * *",
            "*/0 * * * *",
            "60 * * * *",
            "5-1 * * * *",
            "*/5 * * * 1-5",
            "*/5 * 1 * *",
            "x * * * *",
        ] {
            assert!(ticks_per_hour(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn the_schedule_of_a_named_cronjob() {
        let manifest = "\
# two jobs
apiVersion: batch/v1
kind: CronJob
metadata:
  name: afk-poll
spec:
  schedule: \"*/3 * * * *\"
  jobTemplate:
    spec:
      schedule: ignored
---
kind: ConfigMap
metadata:
  name: afk-watch
---
kind: CronJob
metadata:
  name: afk-watch
spec:
  schedule: '*/2 * * * *'
";
        assert_eq!(
            cronjob_schedule(manifest, "afk-poll").expect("poll"),
            "*/3 * * * *"
        );
        assert_eq!(
            cronjob_schedule(manifest, "afk-watch").expect("watch"),
            "*/2 * * * *"
        );
        let missing = cronjob_schedule(manifest, "afk-other").expect_err("no such job");
        assert!(missing.to_string().contains("afk-other"), "{missing}");
        let twice = format!(
            "{manifest}---\n{}",
            &manifest[manifest.find("kind").unwrap_or(0)..]
        );
        assert!(cronjob_schedule(&twice, "afk-poll").is_err());
    }

    #[test]
    fn the_shipped_cronjobs_have_hourly_rates() {
        let s = read_schedules(&shipped_cronjobs()).expect("the shipped CronJobs parse");
        assert!(s.poll_ticks_per_hour >= 1.0, "{s:?}");
        assert!(s.watch_ticks_per_hour >= 1.0, "{s:?}");
        assert_eq!(s.source, "deploy/base/cronjobs.yaml");
    }
}
