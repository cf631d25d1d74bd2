//! The clients one tick uses, built from the config. Building reads no secret and makes no
//! request: secrets are read from their files at each use.

use std::path::PathBuf;
use std::time::Instant;

use afk_core::config::{Config, TrackerAuth, TrackerKind};
use afk_core::plan::TickKind;
use afk_remotes::error::RemoteError;
use afk_remotes::forgejo::Forgejo;
use afk_remotes::github::{EtagStore, GitHub, GitHubApp, GitHubAuth};
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::kube::Kube;
use afk_remotes::ntfy::Ntfy;
use afk_remotes::slack::Slack;
use afk_remotes::t3::T3;
use afk_remotes::tracker::Tracker;
use afk_remotes::woodpecker::Woodpecker;
use afk_remotes::workspace::{GitCredential, Workspaces};

/// Every client a tick may need.
#[derive(Clone)]
pub struct Remotes {
    pub tracker: Tracker,
    pub t3: T3,
    pub woodpecker: Option<Woodpecker>,
    /// Built only for the watch (the only tick that checks rollouts), and only when some
    /// enrolled repo has a deploy target.
    pub kube: Option<Kube>,
    pub ntfy: Option<Ntfy>,
    pub slack: Option<Slack>,
    pub workspaces: Workspaces,
    /// Where the GitHub tracker's conditional-request cache persists between ticks; set by
    /// [`Remotes::with_persistent_cache`] (ticks only: `--check` and `--report` read live).
    pub etag_store: Option<EtagStore>,
}

/// Why the clients could not be built (a configuration problem).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(String);

impl From<RemoteError> for BuildError {
    fn from(e: RemoteError) -> Self {
        BuildError(e.to_string())
    }
}

impl Remotes {
    pub async fn build(
        config: &Config,
        tick: TickKind,
        deadline: Instant,
    ) -> Result<Remotes, BuildError> {
        let armed = config.armed().map_err(|e| BuildError(e.to_string()))?;
        let policy = RetryPolicy {
            deadline: Some(deadline),
            max_body_bytes: config.network.max_response_bytes(),
            ..RetryPolicy::default()
        };
        let (tracker_auth, tracker_token) = match &armed.tracker.auth {
            TrackerAuth::Token { token_file } => {
                let file = SecretFile::new(token_file.clone());
                (GitHubAuth::Token(file.clone()), Some(file))
            }
            TrackerAuth::GithubApp {
                app_id,
                installation_id,
                private_key_file,
            } => (
                GitHubAuth::App(GitHubApp {
                    app_id: *app_id,
                    installation_id: *installation_id,
                    private_key: SecretFile::new(private_key_file.clone()),
                }),
                None,
            ),
        };
        let tracker = match (armed.tracker.kind, &tracker_token) {
            (TrackerKind::Github, _) => Tracker::GitHub(GitHub::with_auth(
                &armed.tracker.api_url,
                tracker_auth,
                RetryPolicy {
                    default_rate_limit_wait: afk_remotes::github::SECONDARY_RATE_LIMIT_WAIT,
                    ..policy.clone()
                },
            )?),
            (TrackerKind::Forgejo, Some(token)) => Tracker::Forgejo(Forgejo::new(
                &armed.tracker.api_url,
                token.clone(),
                policy.clone(),
            )?),
            (TrackerKind::Forgejo, None) => {
                return Err(BuildError(
                    "a forgejo tracker authenticates with tracker.token_file only".to_owned(),
                ));
            }
        };
        let t3 = T3::new(
            &armed.t3.base_url,
            SecretFile::new(armed.t3.token_file.clone()),
            RetryPolicy {
                max_body_bytes: config.network.t3_max_response_bytes(),
                ..policy.clone()
            },
        )?;
        let woodpecker = match &config.woodpecker {
            Some(w) => Some(Woodpecker::new(
                &w.api_url,
                SecretFile::new(w.token_file.clone()),
                policy.clone(),
            )?),
            None => None,
        };
        let needs_kube = tick == TickKind::Watch
            && config
                .allowlist
                .iter()
                .any(|r| config.repo(r).deploy.is_some());
        let kube = if needs_kube {
            let settings = config.kube.clone().unwrap_or_default();
            let client = match &settings.api_url {
                Some(url) => Kube::for_url(url)?,
                None => Kube::from_env(settings.context.as_deref()).await?,
            };
            Some(client.with_policy(policy.clone()))
        } else {
            None
        };
        let ntfy = match &config.notify.ntfy {
            Some(n) => Some(Ntfy::new(
                &n.url,
                &n.topic,
                n.token_file.clone().map(SecretFile::new),
                policy.clone(),
            )?),
            None => None,
        };
        let slack = match &config.notify.slack {
            Some(s) => Some(Slack::new(
                SecretFile::new(s.webhook_url_file.clone()),
                policy.clone(),
            )?),
            None => None,
        };
        let workspaces = Workspaces::new(
            PathBuf::from(&config.workspace.root),
            &config.workspace.clone_url_template,
            // The tracker token goes only to the tracker's own git host unless the config
            // says otherwise (workspace.send_tracker_token).
            if config.workspace.send_tracker_token {
                match &tracker {
                    Tracker::GitHub(gh) if tracker_token.is_none() => {
                        Some(GitCredential::GitHubApp(Box::new(gh.clone())))
                    }
                    _ => tracker_token.map(GitCredential::File),
                }
            } else {
                None
            },
        );
        Ok(Remotes {
            tracker,
            t3,
            woodpecker,
            kube,
            ntfy,
            slack,
            workspaces,
            etag_store: None,
        })
    }

    /// Loads the GitHub tracker's conditional-request cache of this tick kind from the
    /// workspace volume (a cache that cannot be used is logged and costs only requests), so
    /// an unchanged listing answers `304 Not Modified` on every later tick too. Keyed by the
    /// API URL and the configured identity (answers differ by who asks), never the token.
    pub fn with_persistent_cache(mut self, config: &Config, tick: TickKind) -> Remotes {
        let Tracker::GitHub(gh) = &self.tracker else {
            return self;
        };
        let Some(tracker) = &config.tracker else {
            return self;
        };
        let bot = tracker.bot_login.to_ascii_lowercase();
        let app = match &tracker.auth {
            TrackerAuth::GithubApp {
                app_id,
                installation_id,
                ..
            } => Some((app_id.to_string(), installation_id.to_string())),
            TrackerAuth::Token { .. } => None,
        };
        let mut identity = vec![("bot_login", bot.as_str())];
        if let Some((app_id, installation_id)) = &app {
            identity.push(("app_id", app_id));
            identity.push(("installation_id", installation_id));
        }
        let store = EtagStore::new(
            &config.workspace.root,
            gh.api_url(),
            &identity,
            tick.as_str(),
        );
        self.tracker = Tracker::GitHub(gh.clone().with_etag_cache(store.load()));
        self.etag_store = Some(store);
        self
    }

    /// Saves the conditional-request cache for the next tick (after every tick, errors or
    /// not); a failure is a warning: the next tick only makes more requests.
    pub fn save_persistent_cache(&self) {
        if let (Some(store), Tracker::GitHub(gh)) = (&self.etag_store, &self.tracker)
            && let Err(why) = store.save(&gh.etag_cache())
        {
            tracing::warn!(remote = "github", path = %store.path().display(), why = %why, "conditional-request cache not saved (the next tick makes more requests)");
        }
    }
}
