//! GitHub Apps in the simulated GitHub: registered Apps with their public keys, installations on
//! sets of repos, the JWT check of `POST /app/installations/{id}/access_tokens`, and the
//! installation access tokens it issues.
//!
//! Modelled on GitHub's docs:
//! - "Generating a JSON Web Token (JWT) for a GitHub App": the JWT is signed with RS256 by the
//!   App's private key; `iss` is the App's id (the key that verifies the signature is looked up
//!   by it), `iat` when it was made (GitHub recommends 60 s in the past against clock drift),
//!   `exp` no more than 10 minutes into the future. A JWT is used only on the `/app` endpoints.
//! - "Create an installation access token for an app" (`POST /app/installations/
//!   {installation_id}/access_tokens`, JWT auth): `201` with `token`, `expires_at`,
//!   `permissions` and `repository_selection`; an installation that is not the App's is `404`.
//! - "Authenticating as a GitHub App installation": the token lasts one hour and reaches only
//!   the installation's repositories; it acts as the App's bot, `<app-slug>[bot]`.
//!
//! The messages of a refused JWT are GitHub's own (as its API answers them): "A JSON web token
//! could not be decoded", "'Expiration time' claim ('exp') is too far in the future", "'Expiration
//! time' claim ('exp') must be a numeric value representing the future time at which the
//! assertion expires", "'Issued at' claim ('iat') must be an Integer representing the time that
//! the assertion was issued".
//!
//! Clock: a client signs its JWT with its own wall clock, so JWTs and installation tokens are
//! checked against the wall clock here (plus [`Apps::clock_skew_secs`], to model a client whose
//! clock drifts), not against the scenario's simulated clock.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// A test-only RSA key pair for a simulated App (never used anywhere real).
pub const TEST_APP_PRIVATE_KEY: &str = include_str!("../../fixtures/test-app-private-key.pem");
pub const TEST_APP_PUBLIC_KEY: &str = include_str!("../../fixtures/test-app-public-key.pem");
/// A test-only RSA private key that belongs to no App (a wrong key).
pub const TEST_OTHER_PRIVATE_KEY: &str = include_str!("../../fixtures/test-other-private-key.pem");

/// How long an installation token lasts (GitHub: one hour).
pub const TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(1);
/// The longest a JWT may live (GitHub: `exp` no more than 10 minutes ahead).
const JWT_MAX_LIFETIME_SECS: i64 = 600;
/// How far in the future `iat` may be, for clock drift between the client and GitHub.
const IAT_DRIFT_SECS: i64 = 60;

pub const UNDECODABLE: &str = "A JSON web token could not be decoded";
pub const EXP_TOO_FAR: &str = "'Expiration time' claim ('exp') is too far in the future";
pub const EXPIRED: &str = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
pub const IAT_INVALID: &str = "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";

#[derive(Debug, Clone)]
struct App {
    slug: String,
    public_key: DecodingKey,
}

#[derive(Debug, Clone)]
struct Installation {
    app_id: u64,
    /// Lowercase `owner/name`.
    repos: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct IssuedToken {
    installation_id: u64,
    expires_at: DateTime<Utc>,
}

/// What an installation token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationAccess {
    /// `<app-slug>[bot]`.
    pub login: String,
    /// Lowercase `owner/name` of the repos it reaches.
    pub repos: BTreeSet<String>,
}

/// A bearer credential as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Not an installation token this GitHub issued.
    Unknown,
    /// An installation token past its hour.
    Expired,
    Valid(InstallationAccess),
}

/// The registered Apps, their installations and the tokens issued.
#[derive(Debug, Default)]
pub struct Apps {
    apps: BTreeMap<u64, App>,
    installations: BTreeMap<u64, Installation>,
    tokens: BTreeMap<String, IssuedToken>,
    issued: u64,
    /// Seconds added to the wall clock for the JWT and token checks.
    pub clock_skew_secs: i64,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Value,
    iat: Value,
    exp: Value,
}

impl Apps {
    /// GitHub's clock for App auth: the wall clock plus the configured skew.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::seconds(self.clock_skew_secs)
    }

    /// Registers (or replaces) an App with its public key (PEM).
    pub fn register(
        &mut self,
        app_id: u64,
        slug: &str,
        public_key_pem: &str,
    ) -> anyhow::Result<()> {
        if slug.is_empty() || !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("app slug {slug:?} must be ASCII letters, digits and '-'");
        }
        let public_key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .context("the App's public key is not an RSA public key in PEM form")?;
        self.apps.insert(
            app_id,
            App {
                slug: slug.to_owned(),
                public_key,
            },
        );
        Ok(())
    }

    /// Installs App `app_id` on `repos` (`owner/name`) as installation `installation_id`.
    pub fn install(
        &mut self,
        installation_id: u64,
        app_id: u64,
        repos: &[String],
    ) -> anyhow::Result<()> {
        if !self.apps.contains_key(&app_id) {
            bail!("no simulated GitHub App {app_id}; register it first");
        }
        let repos = repos
            .iter()
            .map(|r| {
                r.split_once('/')
                    .filter(|(o, n)| !o.is_empty() && !n.is_empty())
                    .map(|_| r.to_ascii_lowercase())
                    .ok_or_else(|| anyhow!("repo {r:?} is not owner/name"))
            })
            .collect::<anyhow::Result<BTreeSet<_>>>()?;
        self.installations
            .insert(installation_id, Installation { app_id, repos });
        Ok(())
    }

    /// The App bot's login, `<app-slug>[bot]`.
    pub fn bot_login(&self, app_id: u64) -> Option<String> {
        self.apps.get(&app_id).map(|a| format!("{}[bot]", a.slug))
    }

    /// Checks a JWT as GitHub does; the App's id, or the refusal (status and message).
    pub fn verify_jwt(&self, jwt: &str) -> Result<u64, (StatusCode, &'static str)> {
        let refuse = |msg| (StatusCode::UNAUTHORIZED, msg);
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| refuse(UNDECODABLE))?;
        if header.alg != Algorithm::RS256 {
            return Err(refuse(UNDECODABLE));
        }
        // `iss` names the App whose key verifies the signature: read it before verifying.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Claims>(jwt)
            .map_err(|_| refuse(UNDECODABLE))?;
        let app_id = match &unverified.claims.iss {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| refuse(UNDECODABLE))?;
        let app = self.apps.get(&app_id).ok_or_else(|| refuse(UNDECODABLE))?;
        let mut strict = Validation::new(Algorithm::RS256);
        strict.validate_exp = false;
        strict.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(jwt, &app.public_key, &strict)
            .map_err(|_| refuse(UNDECODABLE))?
            .claims;
        let now = self.now().timestamp();
        let iat = claims.iat.as_i64().ok_or_else(|| refuse(IAT_INVALID))?;
        let exp = claims.exp.as_i64().ok_or_else(|| refuse(EXPIRED))?;
        if iat > now + IAT_DRIFT_SECS {
            return Err(refuse(IAT_INVALID));
        }
        if exp <= now {
            return Err(refuse(EXPIRED));
        }
        if exp - iat > JWT_MAX_LIFETIME_SECS || exp > now + JWT_MAX_LIFETIME_SECS {
            return Err(refuse(EXP_TOO_FAR));
        }
        Ok(app_id)
    }

    /// `POST /app/installations/{id}/access_tokens` with a verified App id: the 201 body.
    pub fn issue_token(
        &mut self,
        app_id: u64,
        installation_id: u64,
    ) -> Result<Value, (StatusCode, &'static str)> {
        let installation = self
            .installations
            .get(&installation_id)
            .filter(|i| i.app_id == app_id)
            .ok_or((StatusCode::NOT_FOUND, "Not Found"))?;
        let selection = if installation.repos.is_empty() {
            "all"
        } else {
            "selected"
        };
        self.issued += 1;
        let token = format!("ghs_sim{installation_id:06}x{:010}", self.issued);
        let expires_at = self.now() + TOKEN_LIFETIME;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                installation_id,
                expires_at,
            },
        );
        Ok(json!({
            "token": token,
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": {
                "issues": "write",
                "contents": "write",
                "metadata": "read",
                "checks": "read",
                "statuses": "read",
                "actions": "read",
            },
            "repository_selection": selection,
        }))
    }

    /// What a bearer token is to the API.
    pub fn check_token(&self, token: &str) -> TokenCheck {
        let Some(issued) = self.tokens.get(token) else {
            return TokenCheck::Unknown;
        };
        if self.now() >= issued.expires_at {
            return TokenCheck::Expired;
        }
        let Some(installation) = self.installations.get(&issued.installation_id) else {
            return TokenCheck::Unknown;
        };
        match self.bot_login(installation.app_id) {
            Some(login) => TokenCheck::Valid(InstallationAccess {
                login,
                repos: installation.repos.clone(),
            }),
            None => TokenCheck::Unknown,
        }
    }

    /// Whether `token` has the shape of a JWT (three base64url parts), which GitHub refuses
    /// outside the `/app` endpoints.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.starts_with("eyJ") && token.split('.').count() == 3
    }

    /// Installation tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.issued
    }
}

impl super::state::State {
    /// Registers App `app_id` (`slug`, public key PEM) and installs it on `repos` as
    /// `installation_id`. The installation's reach into each repo (private ones included) is
    /// modelled as write access of its bot, `<slug>[bot]`. Returns the bot's login.
    pub fn install_app(
        &mut self,
        app_id: u64,
        slug: &str,
        public_key_pem: &str,
        installation_id: u64,
        repos: &[String],
    ) -> anyhow::Result<String> {
        self.apps.register(app_id, slug, public_key_pem)?;
        self.apps.install(installation_id, app_id, repos)?;
        let login = format!("{slug}[bot]");
        self.add_user(&login);
        for repo in repos {
            self.set_collaborator(repo, &login, super::model::Role::Write)?;
        }
        Ok(login)
    }
}

/// `POST /app/installations/{installation_id}/access_tokens`: the App's JWT in
/// `Authorization: Bearer`, an optional JSON object body; `201` with the token.
pub async fn create_installation_token(
    axum::extract::State(world): axum::extract::State<std::sync::Arc<crate::world::World>>,
    axum::extract::Path(installation_id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use super::wire::{json_response, message};
    let jwt = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let mut st = crate::infra::lock(&world.github);
    let app_id = match st.apps.verify_jwt(jwt) {
        Ok(id) => id,
        Err((status, msg)) => return message(status, msg),
    };
    if !body.is_empty() && !serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object()) {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    }
    let Ok(installation_id) = installation_id.parse::<u64>() else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    match st.apps.issue_token(app_id, installation_id) {
        Ok(token) => json_response(StatusCode::CREATED, &token),
        Err((status, msg)) => message(status, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn apps() -> Apps {
        let mut a = Apps::default();
        a.register(42, "afk-app", TEST_APP_PUBLIC_KEY).expect("app");
        a.install(7, 42, &["acme/app".to_owned()]).expect("install");
        a
    }

    fn jwt(key: &str, iss: Value, iat: i64, exp: i64) -> String {
        let key = EncodingKey::from_rsa_pem(key.as_bytes()).expect("key");
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &json!({"iss": iss, "iat": iat, "exp": exp}),
            &key,
        )
        .expect("jwt")
    }

    #[test]
    fn a_jwt_as_github_asks_for_it_is_accepted_and_mints_an_hour_token() {
        let mut a = apps();
        let now = Utc::now().timestamp();
        let ok = jwt(TEST_APP_PRIVATE_KEY, json!(42), now - 60, now + 540);
        assert_eq!(a.verify_jwt(&ok), Ok(42));
        let ok_str_iss = jwt(TEST_APP_PRIVATE_KEY, json!("42"), now - 60, now + 540);
        assert_eq!(a.verify_jwt(&ok_str_iss), Ok(42));
        let body = a.issue_token(42, 7).expect("token");
        let token = body["token"].as_str().expect("token").to_owned();
        assert_eq!(body["repository_selection"], "selected");
        let expires: DateTime<Utc> = body["expires_at"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("expires_at");
        assert!((expires - Utc::now() - TOKEN_LIFETIME).num_seconds().abs() <= 2);
        match a.check_token(&token) {
            TokenCheck::Valid(access) => {
                assert_eq!(access.login, "afk-app[bot]");
                assert!(access.repos.contains("acme/app"));
            }
            other => panic!("expected a valid token, got {other:?}"),
        }
        a.clock_skew_secs = 3601;
        assert_eq!(a.check_token(&token), TokenCheck::Expired);
        assert_eq!(a.check_token("ghs_unknown"), TokenCheck::Unknown);
    }

    #[test]
    fn bad_jwts_are_refused_with_githubs_messages() {
        let a = apps();
        let now = Utc::now().timestamp();
        let refused = |j: &str| a.verify_jwt(j).map_err(|(s, m)| (s.as_u16(), m));
        assert_eq!(
            refused(&jwt(TEST_OTHER_PRIVATE_KEY, json!(42), now - 60, now + 540)),
            Err((401, UNDECODABLE)),
            "signed with another key"
        );
        assert_eq!(
            refused(&jwt(TEST_APP_PRIVATE_KEY, json!(43), now - 60, now + 540)),
            Err((401, UNDECODABLE)),
            "an App GitHub does not know"
        );
        assert_eq!(
            refused(&jwt(TEST_APP_PRIVATE_KEY, json!(42), now - 600, now - 1)),
            Err((401, EXPIRED))
        );
        assert_eq!(
            refused(&jwt(TEST_APP_PRIVATE_KEY, json!(42), now, now + 660)),
            Err((401, EXP_TOO_FAR))
        );
        assert_eq!(
            refused(&jwt(TEST_APP_PRIVATE_KEY, json!(42), now - 120, now + 540)),
            Err((401, EXP_TOO_FAR)),
            "exp more than 10 minutes after iat"
        );
        assert_eq!(
            refused(&jwt(TEST_APP_PRIVATE_KEY, json!(42), now + 120, now + 500)),
            Err((401, IAT_INVALID)),
            "iat in the future beyond drift"
        );
        assert_eq!(refused("not-a-jwt"), Err((401, UNDECODABLE)));
    }

    #[test]
    fn an_installation_of_another_app_is_not_found() {
        let mut a = apps();
        a.register(50, "other", TEST_APP_PUBLIC_KEY).expect("app");
        assert_eq!(a.issue_token(50, 7).map_err(|(s, _)| s.as_u16()), Err(404));
        assert_eq!(a.issue_token(42, 8).map_err(|(s, _)| s.as_u16()), Err(404));
    }
}
