//! The preflight check's report (`--check`): one row per thing checked, its verdict and how to
//! fix it, rendered as a table or JSON; and the exit code it implies. Pure: the binaries gather
//! the rows by reading the remotes.

use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Works.
    Ok,
    /// Works, but something is worth a look (does not fail the check).
    Warn,
    /// Broken: afk cannot do its work until this is fixed.
    Fail,
    /// Not checked, with the reason (e.g. depends on a failed row, or cannot be probed).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "skip",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRow {
    /// What was checked (`tracker token`, `bot permission`, …).
    pub check: String,
    /// Where (a repo, a URL, a file path; never a secret).
    pub target: String,
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do about it; empty when nothing is to be done.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

impl CheckRow {
    pub fn new(
        check: impl Into<String>,
        target: impl Into<String>,
        status: CheckStatus,
        detail: impl Into<String>,
    ) -> CheckRow {
        CheckRow {
            check: check.into(),
            target: target.into(),
            status,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> CheckRow {
        self.fix = fix.into();
        self
    }
}

/// The whole report of one `--check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// `afk-poll` or `afk-watch`.
    pub binary: String,
    pub rows: Vec<CheckRow>,
}

impl CheckReport {
    pub fn new(binary: impl Into<String>) -> CheckReport {
        CheckReport {
            binary: binary.into(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: CheckRow) {
        self.rows.push(row);
    }

    /// Rows that failed.
    pub fn failures(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.status == CheckStatus::Fail)
            .count()
    }

    /// True when nothing failed (warnings and skips do not fail the check).
    pub fn passed(&self) -> bool {
        self.failures() == 0
    }

    /// The JSON object: `{binary, ok, failures, rows: [{check, target, status, detail, fix?}]}`.
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "binary": self.binary,
            "ok": self.passed(),
            "failures": self.failures(),
            "rows": self.rows,
        });
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A plain table: one line per row with aligned columns, the fix indented under a failing
    /// or warning row, then a summary line.
    pub fn render_text(&self) -> String {
        let wc = self
            .rows
            .iter()
            .map(|r| r.check.chars().count())
            .max()
            .unwrap_or(0)
            .max("CHECK".len());
        let wt = self
            .rows
            .iter()
            .map(|r| r.target.chars().count())
            .max()
            .unwrap_or(0)
            .max("TARGET".len());
        let mut out = format!("{} --check\n", self.binary);
        out.push_str(&format!(
            "{:<wc$}  {:<wt$}  {:<6}  DETAIL\n",
            "CHECK", "TARGET", "STATUS"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<wc$}  {:<wt$}  {:<6}  {}\n",
                r.check,
                r.target,
                r.status.as_str(),
                one_line(&r.detail)
            ));
            if !r.fix.is_empty() {
                out.push_str(&format!(
                    "{:<wc$}  {:<wt$}  {:<6}  fix: {}\n",
                    "",
                    "",
                    "",
                    one_line(&r.fix)
                ));
            }
        }
        let warn = self
            .rows
            .iter()
            .filter(|r| r.status == CheckStatus::Warn)
            .count();
        if self.passed() {
            out.push_str(&format!(
                "all {} checks passed ({warn} warning(s))\n",
                self.rows.len()
            ));
        } else {
            out.push_str(&format!(
                "{} of {} checks FAILED ({warn} warning(s)); fix them and run --check again\n",
                self.failures(),
                self.rows.len()
            ));
        }
        out
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> CheckReport {
        let mut r = CheckReport::new("afk-poll");
        r.push(CheckRow::new(
            "secret file",
            "/run/secrets/token",
            CheckStatus::Ok,
            "readable",
        ));
        r.push(
            CheckRow::new(
                "bot permission",
                "acme/web",
                CheckStatus::Fail,
                "afk-bot has read on acme/web",
            )
            .with_fix("give afk-bot write access to acme/web"),
        );
        r
    }

    #[test]
    fn a_failing_row_fails_the_report_and_shows_its_fix() {
        let r = report();
        assert!(!r.passed());
        assert_eq!(r.failures(), 1);
        let text = r.render_text();
        assert!(text.contains("bot permission  acme/web"), "{text}");
        assert!(text.contains("FAIL"), "{text}");
        assert!(
            text.contains("fix: give afk-bot write access to acme/web"),
            "{text}"
        );
        assert!(text.contains("1 of 2 checks FAILED"), "{text}");
    }

    #[test]
    fn warnings_and_skips_pass() {
        let mut r = CheckReport::new("afk-watch");
        r.push(CheckRow::new(
            "slack",
            "f",
            CheckStatus::Warn,
            "not contacted",
        ));
        r.push(CheckRow::new(
            "kube",
            "-",
            CheckStatus::Skip,
            "no deploy target",
        ));
        assert!(r.passed());
        assert!(
            r.render_text()
                .contains("all 2 checks passed (1 warning(s))")
        );
    }

    #[test]
    fn json_lists_rows_with_lowercase_status_and_no_empty_fix() {
        let v: serde_json::Value =
            serde_json::from_str(&report().to_json()).expect("report JSON parses");
        assert_eq!(v["ok"], false);
        assert_eq!(v["failures"], 1);
        assert_eq!(v["rows"][0]["status"], "ok");
        assert!(v["rows"][0].get("fix").is_none());
        assert_eq!(v["rows"][1]["status"], "fail");
        assert_eq!(v["rows"][1]["target"], "acme/web");
    }
}
