//! `If-Modified-Since` for GitHub answers that carry a `Last-Modified` but no `ETag`, against a
//! minimal HTTP fixture that answers the way GitHub's REST docs describe ("Best practices for
//! using the REST API", "Use conditional requests if appropriate": many endpoints return a
//! `last-modified` header; sent back as `if-modified-since`, an unchanged resource is answered
//! `304 Not Modified`). The strict GitHub simulator always sends an `ETag`, which afk prefers.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use afk_core::model::RepoName;
use afk_remotes::github::GitHub;
use afk_remotes::http::{RetryPolicy, SecretFile};
use afk_remotes::tracker::IssueState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the fixture saw it: its target and its `If-Modified-Since`, if any.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

const MODIFIED: &str = "Tue, 01 Dec 2026 10:00:00 GMT";
const LATER: &str = "Wed, 02 Dec 2026 08:00:00 GMT";
const SOON_AFTER: &str = "Tue, 01 Dec 2026 10:00:30 GMT";

/// Serves `[]` for every issue listing with `Last-Modified: MODIFIED` and no `ETag`; `Date`
/// is `LATER`, except for the label `fresh`, whose `Date` is only 30 seconds after its
/// `Last-Modified` (too close for a strong validator). `If-Modified-Since` equal to the
/// `Last-Modified` is answered `304`.
async fn fixture() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_owned();
            let ims = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("if-modified-since")
                    .then(|| v.trim().to_owned())
            });
            let date = if target.contains("labels=fresh") {
                SOON_AFTER
            } else {
                LATER
            };
            let unchanged = ims.as_deref() == Some(MODIFIED);
            if let Ok(mut l) = log.lock() {
                l.push((target, ims));
            }
            let (status, body) = if unchanged {
                ("304 Not Modified", "")
            } else {
                ("200 OK", "[]")
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json; charset=utf-8\r\n\
                 last-modified: {MODIFIED}\r\ndate: {date}\r\nx-ratelimit-limit: 5000\r\n\
                 x-ratelimit-remaining: 4999\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    (url, seen)
}

fn client(url: &str, token: &tempfile::NamedTempFile) -> GitHub {
    let policy = RetryPolicy {
        max_retries: 0,
        timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    GitHub::new(url, SecretFile::new(token.path()), policy).expect("client")
}

#[tokio::test]
async fn a_last_modified_answer_is_revalidated_with_if_modified_since() {
    let (url, seen) = fixture().await;
    let mut token = tempfile::NamedTempFile::new().expect("tempfile");
    writeln!(token, "ghp-fixture-token").expect("writes");
    let gh = client(&url, &token);
    let repo: RepoName = "acme/app".parse().expect("repo");

    for _ in 0..2 {
        let issues = gh
            .list_issues(&repo, "ready", IssueState::Open)
            .await
            .expect("lists");
        assert!(issues.is_empty());
    }
    assert_eq!(gh.requests_made(), 1, "the second read was a free 304");
    assert_eq!(gh.requests_not_modified(), 1);

    // The next tick, from the persisted cache.
    let next = client(&url, &token).with_etag_cache(gh.etag_cache());
    next.list_issues(&repo, "ready", IssueState::Open)
        .await
        .expect("lists");
    assert_eq!(next.requests_not_modified(), 1);

    // A Last-Modified less than a minute before the answer's Date is no validator.
    for _ in 0..2 {
        gh.list_issues(&repo, "fresh", IssueState::Open)
            .await
            .expect("lists");
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let ims: Vec<Option<&str>> = seen.iter().map(|(_, i)| i.as_deref()).collect();
    assert_eq!(
        ims,
        vec![None, Some(MODIFIED), Some(MODIFIED), None, None],
        "{seen:?}"
    );
}
