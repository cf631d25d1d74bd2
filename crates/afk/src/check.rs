//! `--check`: the preflight. Validates the config, reads every secret file and reaches every
//! configured remote with reads only, then prints one row per check (text or JSON).
//!
//! It never writes anywhere: every request below is a GET (the end-to-end tests count the
//! simulators' non-GET requests). It is not a tick: it runs its reads even with the kill switch
//! on, so an operator can check a deployment before arming it (the kill switch row says it is
//! on). Exit 0 when nothing failed, 1 when a check failed, 2 when the config is invalid.

use std::path::Path;

use afk_core::config::{CiProvider, Config, TrackerAuth, TrackerConfig, TrackerKind};
use afk_core::facts::Permission;
use afk_core::plan::TickKind;
use afk_core::preflight::{CheckReport, CheckRow, CheckStatus};
use afk_remotes::http::SecretFile;
use afk_remotes::tracker::Tracker;

use crate::cli::{Args, Outcome, Output};
use crate::remotes::Remotes;

const FAIL: CheckStatus = CheckStatus::Fail;
const OK: CheckStatus = CheckStatus::Ok;
const WARN: CheckStatus = CheckStatus::Warn;
const SKIP: CheckStatus = CheckStatus::Skip;

fn binary(tick: TickKind) -> &'static str {
    match tick {
        TickKind::Poll => "afk-poll",
        TickKind::Watch => "afk-watch",
    }
}

/// Runs the preflight and prints its report.
pub async fn run(tick: TickKind, args: &Args) -> Outcome {
    let config = match crate::load_config(args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the config is invalid");
            eprintln!("afk: {e}");
            return Outcome::ConfigError;
        }
    };
    if let Err(e) = config.armed() {
        tracing::error!(error = %e, "the config is incomplete");
        eprintln!("afk: invalid configuration: {e}");
        return Outcome::ConfigError;
    }
    let mut report = CheckReport::new(binary(tick));
    gates(&config, &mut report);
    secrets(&config, &mut report);
    let deadline = std::time::Instant::now() + config.limits.tick_deadline;
    match Remotes::build(&config, tick, deadline).await {
        Ok(remotes) => {
            let reads = async {
                tracker(&config, &remotes, &mut report).await;
                t3(&remotes, &config, &mut report).await;
                if tick == TickKind::Watch {
                    woodpecker(&config, &remotes, &mut report).await;
                    kube(&config, &remotes, &mut report).await;
                }
                notifiers(&config, &remotes, &mut report).await;
            };
            if tokio::time::timeout(config.limits.tick_deadline, reads)
                .await
                .is_err()
            {
                report.push(
                    CheckRow::new(
                        "deadline",
                        "-",
                        FAIL,
                        "the checks did not finish within limits.tick_deadline",
                    )
                    .with_fix("a remote is too slow or unreachable; the rows above show how far the check got"),
                );
            }
        }
        Err(e) => report.push(
            CheckRow::new("clients", "-", FAIL, e.to_string())
                .with_fix("fix the remote settings named above in the config"),
        ),
    }
    print(&report, args.output);
    if report.passed() {
        Outcome::Completed
    } else {
        Outcome::PartialFailure
    }
}

fn print(report: &CheckReport, output: Output) {
    use std::io::Write;
    let text = match output {
        Output::Json => report.to_json(),
        Output::Text => report.render_text(),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}

fn gates(config: &Config, report: &mut CheckReport) {
    report.push(CheckRow::new("config", "-", OK, "parsed and valid"));
    if config.kill_switch {
        report.push(
            CheckRow::new(
                "kill switch",
                "kill_switch",
                WARN,
                "on: afk-poll dispatches nothing and makes no request",
            )
            .with_fix("set kill_switch = false (or AFK_KILL_SWITCH=false) once every check passes"),
        );
    } else {
        report.push(CheckRow::new(
            "kill switch",
            "kill_switch",
            OK,
            "off (armed)",
        ));
    }
    if config.allowlist.is_empty() {
        report.push(
            CheckRow::new("allowlist", "allowlist", WARN, "no repo is enrolled")
                .with_fix("add owner/name entries to allowlist (or AFK_ALLOWLIST)"),
        );
    } else {
        let names: Vec<String> = config.allowlist.iter().map(ToString::to_string).collect();
        report.push(CheckRow::new(
            "allowlist",
            "allowlist",
            OK,
            format!("{} repo(s): {}", names.len(), names.join(", ")),
        ));
    }
}

/// Every configured secret file: readable and not empty. Only the path is ever printed.
fn secrets(config: &Config, report: &mut CheckReport) {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if let Some(t) = &config.tracker {
        match &t.auth {
            TrackerAuth::Token { token_file } => files.push(("tracker.token_file", token_file)),
            TrackerAuth::GithubApp {
                private_key_file, ..
            } => files.push(("tracker.private_key_file", private_key_file)),
        }
    }
    if let Some(t) = &config.t3 {
        files.push(("t3.token_file", &t.token_file));
    }
    if let Some(w) = &config.woodpecker {
        files.push(("ci.woodpecker.token_file", &w.token_file));
    }
    if let Some(n) = &config.notify.ntfy
        && let Some(f) = &n.token_file
    {
        files.push(("notify.ntfy.token_file", f));
    }
    if let Some(s) = &config.notify.slack {
        files.push(("notify.slack.webhook_url_file", &s.webhook_url_file));
    }
    for (key, path) in files {
        let row = match SecretFile::new(path).read("config") {
            Ok(_) => CheckRow::new("secret file", path.display().to_string(), OK, key),
            Err(e) => CheckRow::new(
                "secret file",
                path.display().to_string(),
                FAIL,
                format!("{key}: {e}"),
            )
            .with_fix(format!(
                "mount the Secret so that {} holds the value, or fix {key}",
                path.display()
            )),
        };
        report.push(row);
    }
}

/// A GitHub App: the installation token can be minted (the one request `--check` sends that is
/// not a GET: it changes nothing on GitHub), and `bot_login` has the App bot's form. The token
/// is never shown. `false`: stop checking the tracker.
async fn github_app(
    t: &TrackerConfig,
    remotes: &Remotes,
    app_id: u64,
    installation_id: u64,
    report: &mut CheckReport,
) -> bool {
    let Tracker::GitHub(gh) = &remotes.tracker else {
        return false;
    };
    match gh.installation_token_ready().await {
        Ok(_) => report.push(CheckRow::new(
            "tracker app",
            &t.api_url,
            OK,
            format!(
                "obtained an installation token for installation {installation_id} of GitHub App {app_id}"
            ),
        )),
        Err(e) => {
            report.push(
                CheckRow::new("tracker app", &t.api_url, FAIL, e.to_string()).with_fix(
                    "check tracker.app_id, tracker.installation_id and that tracker.private_key_file holds the App's current private key (PEM)",
                ),
            );
            return false;
        }
    }
    if t.bot_login.ends_with("[bot]") {
        report.push(CheckRow::new(
            "tracker app",
            &t.bot_login,
            OK,
            "bot_login names an App bot (<app-slug>[bot])",
        ));
    } else {
        report.push(
            CheckRow::new(
                "tracker app",
                &t.bot_login,
                FAIL,
                "a GitHub App comments as <app-slug>[bot]: afk would not trust its own records",
            )
            .with_fix("set tracker.bot_login = \"<app-slug>[bot]\" (the slug is in the App's public page URL)"),
        );
    }
    true
}

async fn tracker(config: &Config, remotes: &Remotes, report: &mut CheckReport) {
    let Some(t) = &config.tracker else { return };
    let kind = match t.kind {
        TrackerKind::Github => "github",
        TrackerKind::Forgejo => "forgejo",
    };
    let app = match &t.auth {
        TrackerAuth::GithubApp {
            app_id,
            installation_id,
            ..
        } => Some((*app_id, *installation_id)),
        TrackerAuth::Token { .. } => None,
    };
    if let Some((app_id, installation_id)) = app {
        if !github_app(t, remotes, app_id, installation_id, report).await {
            return;
        }
    } else {
        let account = match remotes.tracker.whoami().await {
            Ok(a) => a,
            Err(e) => {
                report.push(
                    CheckRow::new("tracker token", &t.api_url, FAIL, e.to_string()).with_fix(
                        format!(
                            "check tracker.api_url and that {} holds a valid {kind} token",
                            t.token_file()
                                .map(|f| f.display().to_string())
                                .unwrap_or_default()
                        ),
                    ),
                );
                return;
            }
        };
        if account.login.eq_ignore_ascii_case(&t.bot_login) {
            report.push(CheckRow::new(
                "tracker token",
                &t.api_url,
                OK,
                format!("authenticates as {}", account.login),
            ));
        } else {
            report.push(
                CheckRow::new(
                    "tracker token",
                    &t.api_url,
                    FAIL,
                    format!(
                        "authenticates as {}, but tracker.bot_login is {}: afk would not trust its own records",
                        account.login, t.bot_login
                    ),
                )
                .with_fix(format!(
                    "set tracker.bot_login = {:?} or use the {}'s token",
                    account.login, t.bot_login
                )),
            );
        }
        report.push(scopes_row(&t.api_url, account.scopes.as_deref()));
    }
    for repo in &config.allowlist {
        let target = repo.to_string();
        if let Err(e) = remotes.tracker.default_branch(repo).await {
            report.push(
                CheckRow::new("repo readable", &target, FAIL, e.to_string()).with_fix(format!(
                    "check that {target} exists and that {} can see it",
                    t.bot_login
                )),
            );
            continue;
        }
        report.push(CheckRow::new(
            "repo readable",
            &target,
            OK,
            "the token reads it",
        ));
        if app.is_none() {
            // An App's bot is no collaborator: its access is the installation's permissions.
            let row = match remotes.tracker.permission(repo, &t.bot_login).await {
                Ok(p) => permission_row(&target, &t.bot_login, &p),
                Err(e) => CheckRow::new("bot permission", &target, FAIL, e.to_string()),
            };
            report.push(row);
        }
        let row = match remotes.tracker.repo_labels(repo).await {
            Ok(have) => labels_row(config, &target, &have),
            Err(e) => CheckRow::new("labels", &target, FAIL, e.to_string()),
        };
        report.push(row);
    }
}

fn scopes_row(api: &str, scopes: Option<&[String]>) -> CheckRow {
    let Some(scopes) = scopes else {
        return CheckRow::new(
            "token scopes",
            api,
            OK,
            "not reported (fine-grained, app or Forgejo token): access is checked per repo below",
        );
    };
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let list = if scopes.is_empty() {
        "none".to_owned()
    } else {
        scopes.join(", ")
    };
    if has("repo") {
        CheckRow::new("token scopes", api, OK, format!("classic token: {list}"))
    } else if has("public_repo") {
        CheckRow::new(
            "token scopes",
            api,
            WARN,
            format!("classic token: {list}; private repos are out of reach"),
        )
        .with_fix("grant the repo scope if any enrolled repo is private")
    } else {
        CheckRow::new(
            "token scopes",
            api,
            FAIL,
            format!("classic token without repo or public_repo: {list}"),
        )
        .with_fix("create a token with the repo scope (or a fine-grained token with issues and contents access)")
    }
}

fn permission_row(target: &str, bot: &str, p: &Permission) -> CheckRow {
    let (status, detail) = match p {
        Permission::Owner | Permission::Admin | Permission::Maintain | Permission::Write => {
            (OK, format!("{bot} has {p:?}").to_lowercase())
        }
        Permission::Triage => (
            WARN,
            format!(
                "{bot} has triage: it can label and comment, but cannot read labellers' permissions on GitHub"
            ),
        ),
        Permission::Read | Permission::None => (
            FAIL,
            format!("{bot} has {p:?} access: it cannot label, comment or close").to_lowercase(),
        ),
        Permission::Unknown(why) => (FAIL, why.clone()),
    };
    let row = CheckRow::new("bot permission", target, status, detail);
    if status == OK {
        row
    } else {
        row.with_fix(format!(
            "give {bot} write access to {target} (admin on Forgejo, which shows permissions only to admins)"
        ))
    }
}

fn labels_row(config: &Config, target: &str, have: &[String]) -> CheckRow {
    let l = &config.labels;
    let missing: Vec<&str> = [&l.ready, &l.in_progress, &l.human]
        .into_iter()
        .filter(|want| !have.iter().any(|h| h == *want))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return CheckRow::new(
            "labels",
            target,
            OK,
            format!("{}, {}, {} exist", l.ready, l.in_progress, l.human),
        );
    }
    let status = if missing.contains(&l.ready.as_str()) {
        FAIL
    } else {
        WARN
    };
    CheckRow::new(
        "labels",
        target,
        status,
        format!("missing: {}", missing.join(", ")),
    )
    .with_fix(format!(
        "create the label(s) {} in {target} (afk creates the others it needs on first use; people need {} to arm issues)",
        missing.join(", "),
        l.ready
    ))
}

async fn t3(remotes: &Remotes, config: &Config, report: &mut CheckReport) {
    let Some(t) = &config.t3 else { return };
    let env = match remotes.t3.environment().await {
        Ok(env) => env,
        Err(e) => {
            report.push(
                CheckRow::new("t3 server", &t.base_url, FAIL, e.to_string())
                    .with_fix("check t3.base_url and that the T3 Code server is up"),
            );
            return;
        }
    };
    report.push(CheckRow::new(
        "t3 server",
        &t.base_url,
        OK,
        format!("T3 Code {}", env.server_version),
    ));
    let row = match remotes.t3.fleet(&env).await {
        Ok(f) => CheckRow::new(
            "t3 auth",
            &t.base_url,
            OK,
            format!(
                "the token reads the fleet ({} project(s), {} thread(s))",
                f.projects.len(),
                f.threads.len()
            ),
        ),
        Err(e) => CheckRow::new("t3 auth", &t.base_url, FAIL, e.to_string()).with_fix(format!(
            "check that {} holds a valid T3 token",
            t.token_file.display()
        )),
    };
    report.push(row);
}

async fn woodpecker(config: &Config, remotes: &Remotes, report: &mut CheckReport) {
    let users: Vec<_> = config
        .allowlist
        .iter()
        .filter(|r| config.ci_providers(r).contains(&CiProvider::Woodpecker))
        .collect();
    if users.is_empty() {
        return;
    }
    let Some(wp) = &remotes.woodpecker else {
        report.push(
            CheckRow::new(
                "woodpecker",
                "-",
                FAIL,
                "a repo uses woodpecker CI but [ci.woodpecker] is not configured",
            )
            .with_fix("add [ci.woodpecker] api_url and token_file"),
        );
        return;
    };
    for repo in users {
        let row = match wp.repo_id(repo).await {
            Ok(id) => CheckRow::new(
                "woodpecker repo",
                repo.to_string(),
                OK,
                format!("activated (id {id})"),
            ),
            Err(e) => CheckRow::new("woodpecker repo", repo.to_string(), FAIL, e.to_string())
                .with_fix(format!(
                    "activate {repo} in Woodpecker and check ci.woodpecker.api_url and token_file"
                )),
        };
        report.push(row);
    }
}

async fn kube(config: &Config, remotes: &Remotes, report: &mut CheckReport) {
    for repo in &config.allowlist {
        let Some(target) = config.repo(repo).deploy else {
            continue;
        };
        let what = format!("{}/{}", target.namespace, target.deployment);
        let row = match &remotes.kube {
            None => CheckRow::new("kube rollout read", &what, FAIL, "no Kubernetes client"),
            Some(k) => match k.check_target(&target).await {
                Ok(_) => CheckRow::new(
                    "kube rollout read",
                    &what,
                    OK,
                    format!("{repo}: deployment readable, container {} present", target.container),
                ),
                Err(e) => CheckRow::new("kube rollout read", &what, FAIL, format!("{repo}: {e}"))
                    .with_fix(format!(
                        "check [repos.\"{repo}\".deploy] and that afk's service account may get deployments in {}",
                        target.namespace
                    )),
            },
        };
        report.push(row);
    }
}

async fn notifiers(config: &Config, remotes: &Remotes, report: &mut CheckReport) {
    if let (Some(n), Some(ntfy)) = (&config.notify.ntfy, &remotes.ntfy) {
        let target = format!("{} topic {}", n.url, n.topic);
        let row = match ntfy.probe().await {
            Ok(()) => CheckRow::new(
                "ntfy",
                &target,
                OK,
                if n.token_file.is_some() {
                    "server healthy, token accepted (nothing published)"
                } else {
                    "server healthy (nothing published)"
                },
            ),
            Err(e) => CheckRow::new("ntfy", &target, FAIL, e.to_string())
                .with_fix("check notify.ntfy.url and token_file"),
        };
        report.push(row);
    }
    if let (Some(s), Some(slack)) = (&config.notify.slack, &remotes.slack) {
        let target = s.webhook_url_file.display().to_string();
        let row = match slack.check_webhook_file() {
            Ok(true) => CheckRow::new(
                "slack",
                &target,
                SKIP,
                "an https://hooks.slack.com/ URL; not contacted (a webhook cannot be probed without posting)",
            ),
            Ok(false) => CheckRow::new(
                "slack",
                &target,
                WARN,
                "a URL, but not https://hooks.slack.com/; not contacted (a webhook cannot be probed without posting)",
            )
            .with_fix("put the incoming-webhook URL Slack gave you in the file"),
            Err(e) => CheckRow::new("slack", &target, FAIL, e.to_string())
                .with_fix("put the incoming-webhook URL Slack gave you in the file"),
        };
        report.push(row);
    }
}
