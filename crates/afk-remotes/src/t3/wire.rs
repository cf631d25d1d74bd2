//! T3 read models as afk decodes them: borrowed, minimal structs that keep only what afk needs
//! and skip the rest without building a value tree, so a fully hydrated pre-0.0.32 `/snapshot`
//! of a large fleet parses in one pass with little memory beyond the document itself.
//!
//! Message and activity arrays are folded while they are read ([`Messages`], [`Activities`]):
//! nothing per message or activity is kept except the message id, the newest user message time,
//! open approval / user-input requests, and the latest token counters.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use afk_core::evidence::{TokenUsage, TurnFacts, TurnState};
use afk_core::model::Timestamp;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Implements the non-map, non-string visits of a lenient visitor: the value is skipped and
/// `$default` returned.
macro_rules! forward_ignored {
    ($default:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

/// `OrchestrationReadModel` and `OrchestrationShellSnapshot` share this outline.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReadModel<'a> {
    #[serde(default)]
    pub snapshot_sequence: u64,
    #[serde(borrow, default)]
    pub projects: Vec<ProjectW<'a>>,
    #[serde(borrow, default)]
    pub threads: Vec<ThreadW<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProjectW<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub workspace_root: Option<Cow<'a, str>>,
    #[serde(default)]
    pub deleted_at: Option<IgnoredAny>,
}

/// `OrchestrationThreadDetailSnapshot`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DetailW<'a> {
    #[serde(borrow)]
    pub thread: ThreadW<'a>,
}

/// A thread from any read: snapshot (full or light), shell, or detail.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadW<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub project_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub branch: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub worktree_path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub latest_turn: Option<TurnW<'a>>,
    #[serde(default)]
    pub archived_at: Option<IgnoredAny>,
    #[serde(default)]
    pub deleted_at: Option<IgnoredAny>,
    #[serde(borrow, default)]
    pub session: Option<SessionW<'a>>,
    /// Shell only.
    #[serde(borrow, default)]
    pub latest_user_message_at: Option<Cow<'a, str>>,
    #[serde(default)]
    pub has_pending_approvals: Option<bool>,
    #[serde(default)]
    pub has_pending_user_input: Option<bool>,
    /// Snapshot and detail only (`[]` on a light snapshot).
    #[serde(borrow, default)]
    pub messages: Option<Messages<'a>>,
    #[serde(borrow, default)]
    pub activities: Option<Activities<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TurnW<'a> {
    #[serde(borrow)]
    pub turn_id: Cow<'a, str>,
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    #[serde(borrow, default)]
    pub requested_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub completed_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionW<'a> {
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub last_error: Option<Cow<'a, str>>,
}

/// An RFC 3339 timestamp; `None` (with a warning) when absent or unreadable.
pub(super) fn timestamp(s: Option<&str>) -> Option<Timestamp> {
    let s = s?;
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&chrono::Utc)),
        Err(_) => {
            tracing::warn!(remote = "t3", value = s, "unreadable timestamp ignored");
            None
        }
    }
}

impl TurnW<'_> {
    pub fn facts(&self) -> TurnFacts {
        let state = match &*self.state {
            "running" => TurnState::Running,
            "completed" => TurnState::Completed,
            "interrupted" => TurnState::Interrupted,
            "error" => TurnState::Error,
            other => {
                // A newer literal: treat as still running, which only makes afk wait.
                tracing::warn!(
                    remote = "t3",
                    state = other,
                    "unknown turn state read as running"
                );
                TurnState::Running
            }
        };
        TurnFacts {
            turn_id: self.turn_id.to_string(),
            state,
            requested_at: timestamp(self.requested_at.as_deref()),
            completed_at: timestamp(self.completed_at.as_deref()),
        }
    }
}

/// The folded `messages` array.
#[derive(Default)]
pub(super) struct Messages<'a> {
    pub ids: Vec<Cow<'a, str>>,
    pub latest_user_at: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageW<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Messages<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(Fold::<Messages<'a>>(PhantomData))
    }
}

/// One open request: its id and what to show a person.
pub(super) struct OpenRequest<'a> {
    pub request_id: Cow<'a, str>,
    pub text: Cow<'a, str>,
}

/// The folded `activities` array.
#[derive(Default)]
pub(super) struct Activities<'a> {
    pub approvals: Vec<OpenRequest<'a>>,
    pub user_inputs: Vec<OpenRequest<'a>>,
    /// Every `context-window.updated` that carries token counters, oldest first. Each describes
    /// one model request (T3 fills `inputTokens`/`cachedInputTokens`/`outputTokens` from the
    /// provider's last request: `lastClaudeUsageIteration` in `ClaudeAdapter.ts`,
    /// `tokenUsage.last` in `CodexAdapter.ts`); only `totalProcessedTokens` is cumulative.
    pub tokens: Vec<TokenUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityW<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    turn_id: Option<LooseStr<'a>>,
    #[serde(borrow, default)]
    summary: Option<LooseStr<'a>>,
    #[serde(borrow, default)]
    payload: Option<Payload<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Activities<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(Fold::<Activities<'a>>(PhantomData))
    }
}

/// Folds a sequence element by element.
struct Fold<T>(PhantomData<T>);

impl<'de: 'a, 'a> Visitor<'de> for Fold<Messages<'a>> {
    type Value = Messages<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Messages::default();
        while let Some(m) = seq.next_element::<MessageW<'de>>()? {
            if m.role.as_deref() == Some("user")
                && let Some(at) = timestamp(m.created_at.as_deref())
                && out.latest_user_at.is_none_or(|l| at > l)
            {
                out.latest_user_at = Some(at);
            }
            out.ids.push(m.id);
        }
        Ok(out)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Fold<Activities<'a>> {
    type Value = Activities<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of activities")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Activities::default();
        while let Some(a) = seq.next_element::<ActivityW<'de>>()? {
            let Some(kind) = a.kind else { continue };
            let payload = a.payload.unwrap_or_default();
            let summary = a.summary.and_then(|s| s.0);
            match &*kind {
                "approval.requested" | "user-input.requested" => {
                    let Some(request_id) = payload.request_id else {
                        continue;
                    };
                    let (list, text) = if kind == "approval.requested" {
                        (&mut out.approvals, summary)
                    } else {
                        (&mut out.user_inputs, payload.question.or(summary))
                    };
                    list.push(OpenRequest {
                        request_id,
                        text: text.unwrap_or(Cow::Borrowed("")),
                    });
                }
                "approval.resolved" | "user-input.resolved" => {
                    let Some(id) = payload.request_id else {
                        continue;
                    };
                    let list = if kind == "approval.resolved" {
                        &mut out.approvals
                    } else {
                        &mut out.user_inputs
                    };
                    list.retain(|r| r.request_id != id);
                }
                "context-window.updated" => {
                    // The request's counters; the `last*` twins carry the same numbers and
                    // stand in when a provider sends only those.
                    let input = payload.input.or(payload.last_input);
                    let cached = payload.cached_input.or(payload.last_cached_input);
                    let output = payload.output.or(payload.last_output);
                    if input.is_none() && cached.is_none() && output.is_none() {
                        continue;
                    }
                    out.tokens.push(TokenUsage {
                        input: input.unwrap_or(0),
                        cached_input: cached.unwrap_or(0),
                        output: output.unwrap_or(0),
                        total_processed: payload.total_processed,
                        turn_id: a.turn_id.and_then(|t| t.0).map(Cow::into_owned),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The few payload fields afk reads; the payload is `unknown` upstream, so anything else
/// (other keys, other shapes) is skipped.
#[derive(Default)]
struct Payload<'a> {
    request_id: Option<Cow<'a, str>>,
    /// The first question's text (`user-input.requested`).
    question: Option<Cow<'a, str>>,
    input: Option<u64>,
    cached_input: Option<u64>,
    output: Option<u64>,
    last_input: Option<u64>,
    last_cached_input: Option<u64>,
    last_output: Option<u64>,
    total_processed: Option<u64>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PayloadVisitor(PhantomData))
    }
}

struct PayloadVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for PayloadVisitor<'a> {
    type Value = Payload<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an activity payload")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = Payload::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::RequestId => p.request_id = map.next_value::<LooseStr<'de>>()?.0,
                Key::Questions => p.question = map.next_value::<FirstQuestion<'de>>()?.0,
                Key::InputTokens => p.input = map.next_value::<LooseU64>()?.0,
                Key::CachedInputTokens => p.cached_input = map.next_value::<LooseU64>()?.0,
                Key::OutputTokens => p.output = map.next_value::<LooseU64>()?.0,
                Key::LastInputTokens => p.last_input = map.next_value::<LooseU64>()?.0,
                Key::LastCachedInputTokens => {
                    p.last_cached_input = map.next_value::<LooseU64>()?.0;
                }
                Key::LastOutputTokens => p.last_output = map.next_value::<LooseU64>()?.0,
                Key::TotalProcessedTokens => p.total_processed = map.next_value::<LooseU64>()?.0,
                Key::Question | Key::Id | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }
    forward_ignored!(Payload::default());
}

/// Payload and question keys afk reads, matched without allocating.
enum Key {
    RequestId,
    Questions,
    Question,
    Id,
    InputTokens,
    CachedInputTokens,
    OutputTokens,
    LastInputTokens,
    LastCachedInputTokens,
    LastOutputTokens,
    TotalProcessedTokens,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "requestId" => Key::RequestId,
                    "questions" => Key::Questions,
                    "question" => Key::Question,
                    "id" => Key::Id,
                    "inputTokens" => Key::InputTokens,
                    "cachedInputTokens" => Key::CachedInputTokens,
                    "outputTokens" => Key::OutputTokens,
                    "lastInputTokens" => Key::LastInputTokens,
                    "lastCachedInputTokens" => Key::LastCachedInputTokens,
                    "lastOutputTokens" => Key::LastOutputTokens,
                    "totalProcessedTokens" => Key::TotalProcessedTokens,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string if the value is one, else `None` (the value is skipped).
struct LooseStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LooseStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = LooseStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Borrowed(v))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(v))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A non-negative integer if the value is a number, else `None`.
struct LooseU64(Option<u64>);

impl<'de> Deserialize<'de> for LooseU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseU64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseU64, E> {
                Ok(LooseU64(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseU64, E> {
                Ok(LooseU64(Some(u64::try_from(v).unwrap_or(0))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseU64, E> {
                Ok(LooseU64((v.is_finite() && v >= 0.0).then_some(v as u64)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LooseU64, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseU64(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LooseU64, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseU64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The text of the first question of `questions` (`question`, else `id`), if any.
struct FirstQuestion<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstQuestion<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstQuestion<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("questions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(q) = seq.next_element::<QuestionW<'de>>()? {
                    if first.is_none() {
                        first = q.0;
                    }
                }
                Ok(FirstQuestion(first))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FirstQuestion(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(FirstQuestion(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One question: its `question` text, else its `id` (Claude uses the text as the id).
struct QuestionW<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for QuestionW<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = QuestionW<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a question")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut question = None;
                let mut id = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Question => question = map.next_value::<LooseStr<'de>>()?.0,
                        Key::Id => id = map.next_value::<LooseStr<'de>>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(QuestionW(question.or(id)))
            }
            forward_ignored!(QuestionW(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}
