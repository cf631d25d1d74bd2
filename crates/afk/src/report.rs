//! `afk-watch --report`: the fleet view. Reads the live runs (issues with the lock label) and
//! the recent verdicts (bounded: see [`RecentBound`]) from the tracker, renders them with the
//! core, and prints text or JSON. Writes nothing anywhere.

use afk_core::comment::{CommentFacts, RecordLookup, latest_record};
use afk_core::config::Config;
use afk_core::model::{Login, RepoName, Timestamp};
use afk_core::plan::TickKind;
use afk_core::record::RunRecord;
use afk_core::report::{
    FleetReport, LiveRun, RecentBound, RecentVerdict, live_run, recent_verdict,
};
use afk_remotes::error::RemoteError;
use afk_remotes::tracker::IssueState;
use futures::StreamExt;

use crate::cli::{Args, Outcome, Output};
use crate::remotes::Remotes;

/// Runs the report and prints it.
pub async fn run(tick: TickKind, args: &Args) -> Outcome {
    if tick != TickKind::Watch {
        eprintln!(
            "afk: --report is afk-watch's (afk-poll has no fleet view); run afk-watch --report"
        );
        return Outcome::ConfigError;
    }
    let setup = crate::load_config(args).and_then(|c| crate::now().map(|n| (c, n.now)));
    let (config, now) = match setup {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "nothing was read");
            eprintln!("afk: {e}");
            return Outcome::ConfigError;
        }
    };
    let bound = RecentBound::default();
    if config.allowlist.is_empty() {
        let report = FleetReport::new(now, vec![], vec![], vec![], bound);
        print(&report, args.output);
        return Outcome::Completed;
    }
    let deadline = std::time::Instant::now() + config.limits.tick_deadline;
    // The report reads no rollout: build the clients as the poll does (no Kubernetes client).
    let remotes = match Remotes::build(&config, TickKind::Poll, deadline).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "nothing was read");
            eprintln!("afk: {e}");
            return Outcome::ConfigError;
        }
    };
    let per_repo: Vec<RepoPart> = futures::stream::iter(config.allowlist.iter())
        .map(|repo| read_repo(&config, &remotes, repo, now, bound))
        .buffered(usize::from(args.concurrency))
        .collect()
        .await;
    let mut live = Vec::new();
    let mut recent = Vec::new();
    let mut errors = Vec::new();
    for part in per_repo {
        live.extend(part.live);
        recent.extend(part.recent);
        errors.extend(part.errors);
    }
    for e in &errors {
        tracing::error!(error = %e, "report incomplete");
    }
    let report = FleetReport::new(now, live, recent, errors, bound);
    print(&report, args.output);
    if report.errors.is_empty() {
        Outcome::Completed
    } else {
        Outcome::PartialFailure
    }
}

fn print(report: &FleetReport, output: Output) {
    use std::io::Write;
    let text = match output {
        Output::Json => report.to_json(),
        Output::Text => report.render_text(),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}

#[derive(Default)]
struct RepoPart {
    live: Vec<LiveRun>,
    recent: Vec<RecentVerdict>,
    errors: Vec<String>,
}

fn bot(config: &Config) -> Login {
    Login::new(
        config
            .tracker
            .as_ref()
            .map(|t| t.bot_login.clone())
            .unwrap_or_default(),
    )
}

/// afk's newest record on the issue (`Ok(None)`: none, or unreadable — said in `errors`).
async fn record_of(
    config: &Config,
    remotes: &Remotes,
    repo: &RepoName,
    number: u64,
    errors: &mut Vec<String>,
) -> Result<Option<RunRecord>, RemoteError> {
    let comments = remotes.tracker.list_comments(repo, number).await?;
    let facts: Vec<CommentFacts> = comments.iter().map(CommentFacts::from).collect();
    Ok(match latest_record(&facts, &bot(config)) {
        RecordLookup::Found { record, .. } => Some(*record),
        RecordLookup::None => None,
        RecordLookup::Corrupt { comment_id, error } => {
            errors.push(format!(
                "{repo}#{number}: afk's record in comment {comment_id} cannot be read: {error}"
            ));
            None
        }
    })
}

async fn read_repo(
    config: &Config,
    remotes: &Remotes,
    repo: &RepoName,
    now: Timestamp,
    bound: RecentBound,
) -> RepoPart {
    let mut part = RepoPart::default();
    let lock = &config.labels.in_progress;
    let web = config.t3.as_ref().map(|t| t.web_url.as_str()).unwrap_or("");
    match remotes
        .tracker
        .list_issues(repo, lock, IssueState::All)
        .await
    {
        Ok(issues) => {
            for issue in issues.iter().filter(|i| !i.is_pull_request) {
                match record_of(config, remotes, repo, issue.number, &mut part.errors).await {
                    Ok(record) => part.live.push(live_run(
                        repo,
                        issue.number,
                        &issue.html_url,
                        record.as_ref(),
                        web,
                        now,
                    )),
                    Err(e) => part.errors.push(format!("{repo}#{}: {e}", issue.number)),
                }
            }
        }
        Err(e) => part.errors.push(format!("{repo}: live runs: {e}")),
    }
    let since = now - chrono::Duration::days(i64::from(bound.days));
    match remotes
        .tracker
        .recently_updated(repo, since, bound.issues_per_repo)
        .await
    {
        Ok(issues) => {
            for issue in issues.iter().filter(|i| {
                !i.is_pull_request && i.comments != Some(0) && !i.labels.iter().any(|l| l == lock)
            }) {
                match record_of(config, remotes, repo, issue.number, &mut part.errors).await {
                    Ok(Some(record)) => {
                        if let Some(v) = recent_verdict(&record, &issue.html_url) {
                            part.recent.push(v);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => part.errors.push(format!("{repo}#{}: {e}", issue.number)),
                }
            }
        }
        Err(e) => part.errors.push(format!("{repo}: recent verdicts: {e}")),
    }
    part
}
