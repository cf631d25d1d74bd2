//! GitHub credentials on octocrab: a token read from its file for every request (a personal
//! access token), or a GitHub App installation whose tokens octocrab mints and refreshes.
//!
//! App auth follows GitHub's docs ("Generating a JSON Web Token (JWT) for a GitHub App",
//! "Authenticating as a GitHub App installation", "Create an installation access token for an
//! app"): octocrab signs an RS256 JWT (`iss` the App id, `iat` 60 s in the past, `exp` 9 minutes
//! ahead) with the App's private key and trades it at
//! `POST /app/installations/{installation_id}/access_tokens` for an installation token that
//! lasts an hour; the token is cached and minted again once less than 30 s of it is left.

use std::sync::Arc;

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use octocrab::secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::transport::REMOTE;
use crate::error::{ErrorKind, RemoteError, Result};
use crate::http::SecretFile;

/// A GitHub App installation afk acts as: its tokens act as `<app-slug>[bot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The App's private key (PEM), read when the first request of a client needs it.
    pub private_key: SecretFile,
}

/// How the GitHub client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubAuth {
    /// A personal access token (or any bearer token), re-read from its file for every request.
    Token(SecretFile),
    App(GitHubApp),
}

/// The octocrab clients of one GitHub client, built on first use (building one starts a task
/// on the running Tokio runtime and, for an App, reads the private key).
#[derive(Debug, Clone)]
pub(super) struct Clients {
    auth: GitHubAuth,
    /// The API base (`https://api.github.com`, `https://host/api/v3`).
    api: String,
    /// The scheme and host alone, for paths outside the API base (GitHub Enterprise Server's
    /// GraphQL endpoint is `/api/graphql`, beside `/api/v3`).
    origin: String,
    api_path: String,
    /// Anonymous for a token, the installation for an App; requests go through a copy with the
    /// current token as its access token.
    base: Arc<OnceCell<Octocrab>>,
    outside: Arc<OnceCell<Octocrab>>,
    /// Held while an installation token is looked up, so concurrent requests mint one token.
    minting: Arc<tokio::sync::Mutex<()>>,
}

fn builder_error(what: &str, e: impl std::fmt::Display) -> ErrorKind {
    ErrorKind::Local(format!("cannot build the GitHub client for {what}: {e}"))
}

fn anonymous(base_uri: &str) -> std::result::Result<Octocrab, ErrorKind> {
    Octocrab::builder()
        .base_uri(base_uri)
        .map_err(|e| builder_error(base_uri, e))?
        .add_header(
            http::header::ACCEPT,
            "application/vnd.github+json".to_owned(),
        )
        .build()
        .map_err(|e| builder_error(base_uri, e))
}

impl Clients {
    pub fn new(auth: GitHubAuth, api: &str, origin: &str) -> Clients {
        let api_path = api
            .strip_prefix(origin)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_owned();
        Clients {
            auth,
            api: api.to_owned(),
            origin: origin.to_owned(),
            api_path,
            base: Arc::new(OnceCell::new()),
            outside: Arc::new(OnceCell::new()),
            minting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn auth(&self) -> &GitHubAuth {
        &self.auth
    }

    /// The client to send `path` (below the origin) with, authenticated with the current token.
    pub async fn for_path(&self, path: &str) -> std::result::Result<Octocrab, ErrorKind> {
        let base = self.base().await?;
        let token = self.bearer(base).await?;
        let inside = self.api_path.is_empty()
            || path
                .strip_prefix(&self.api_path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
        let crab = if inside {
            base
        } else {
            self.outside
                .get_or_try_init(|| async { anonymous(&self.origin) })
                .await?
        };
        crab.user_access_token(token)
            .map_err(|e| builder_error(&self.api, e))
    }

    async fn base(&self) -> std::result::Result<&Octocrab, ErrorKind> {
        self.base
            .get_or_try_init(|| async {
                match &self.auth {
                    GitHubAuth::Token(_) => anonymous(&self.api),
                    GitHubAuth::App(app) => self.installation(app),
                }
            })
            .await
    }

    fn installation(&self, app: &GitHubApp) -> std::result::Result<Octocrab, ErrorKind> {
        let file = app.private_key.path().display();
        let pem = std::fs::read(app.private_key.path()).map_err(|e| {
            ErrorKind::Local(format!(
                "GitHub App auth: cannot read the App's private key file {file} ({}); check tracker.private_key_file and the mounted Secret",
                e.kind()
            ))
        })?;
        let key = octocrab::EncodingKey::from_rsa_pem(&pem).map_err(|_| {
            ErrorKind::Local(format!(
                "GitHub App auth: the private key file {file} holds no RSA private key in PEM form; download the App's private key (.pem) from its settings and mount it as tracker.private_key_file"
            ))
        })?;
        Octocrab::builder()
            .base_uri(self.api.as_str())
            .map_err(|e| builder_error(&self.api, e))?
            .add_header(
                http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            )
            .app(AppId(app.app_id), key)
            .build()
            .map_err(|e| builder_error(&self.api, e))?
            .installation(InstallationId(app.installation_id))
            .map_err(|e| builder_error(&self.api, e))
    }

    /// The bearer token: the file's content, or the installation token (minted or refreshed
    /// by octocrab when needed).
    async fn bearer(&self, base: &Octocrab) -> std::result::Result<String, ErrorKind> {
        let token = match &self.auth {
            GitHubAuth::Token(file) => {
                let token = file.read(REMOTE).map_err(|e| e.kind)?;
                if http::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                    return Err(ErrorKind::Local(format!(
                        "the token file {} holds characters not allowed in a header",
                        file.path().display()
                    )));
                }
                token
            }
            GitHubAuth::App(app) => {
                let _one_at_a_time = self.minting.lock().await;
                base.installation_token()
                    .await
                    .map_err(|e| installation_error(app, e))?
                    .expose_secret()
                    .to_owned()
            }
        };
        Ok(token)
    }
}

/// Why minting an installation token failed, naming the step and what to check. GitHub's
/// refusal (401 for a JWT it cannot verify, 404 for an installation the App does not have) is
/// a configuration problem; a server error or a broken connection is transient.
fn installation_error(app: &GitHubApp, e: octocrab::Error) -> ErrorKind {
    let step = format!(
        "GitHub App auth: exchanging the App's JWT for an installation token (POST /app/installations/{}/access_tokens)",
        app.installation_id
    );
    let check = format!(
        "check tracker.app_id ({}), tracker.private_key_file (the App's current private key), tracker.installation_id ({}) and that this machine's clock is right",
        app.app_id, app.installation_id
    );
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let message = crate::error::excerpt(source.message.as_bytes());
            if status >= 500 || status == 429 {
                ErrorKind::Transport(format!("{step} answered HTTP {status}: {message}"))
            } else {
                ErrorKind::Local(format!(
                    "{step} was refused with HTTP {status}: {message}; {check}"
                ))
            }
        }
        octocrab::Error::JWT { .. } => ErrorKind::Local(format!(
            "GitHub App auth: signing the JWT with the private key failed; {check}"
        )),
        octocrab::Error::Serde { .. } | octocrab::Error::Json { .. } => {
            ErrorKind::Decode(format!("{step}: the answer is not an installation token"))
        }
        other => ErrorKind::Transport(format!("{step} failed: {}", chain(&other))),
    }
}

/// An error with its causes, `a: b: c`.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let next = s.to_string();
        if !msg.ends_with(&next) {
            msg.push_str(": ");
            msg.push_str(&next);
        }
        src = s.source();
    }
    msg
}

impl RemoteError {
    /// An App auth error outside a request (for the preflight).
    pub(super) fn app_auth(kind: ErrorKind) -> RemoteError {
        RemoteError::new(REMOTE, "GitHub App installation token", kind)
    }
}

impl Clients {
    /// Mints (or reuses) the installation token, for the preflight: `Ok(false)` for a token
    /// file, which has nothing to mint.
    pub async fn installation_token_ready(&self) -> Result<bool> {
        if matches!(self.auth, GitHubAuth::Token(_)) {
            return Ok(false);
        }
        self.installation_token().await.map(drop)?;
        Ok(true)
    }

    /// The current bearer token (for an App, the installation token).
    pub async fn installation_token(&self) -> Result<String> {
        let base = self.base().await.map_err(RemoteError::app_auth)?;
        self.bearer(base).await.map_err(RemoteError::app_auth)
    }
}
