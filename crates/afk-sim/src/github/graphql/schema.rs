//! The part of GitHub's GraphQL schema the simulator answers, as a table the validation and
//! the cost model walk. A field outside the table is refused the way GitHub refuses an unknown
//! field (`undefinedField`), so a client cannot come to rely on anything the simulator does
//! not model.
//!
//! The types and fields follow GitHub's public schema ("Objects" in the GraphQL API reference:
//! `Repository.issue`, `Issue.lastEditedAt`, `Issue.blockedBy`, `RateLimit`); `blockedBy` is a
//! connection (`IssueConnection`), so it needs `first` or `last` like every connection.

/// What a field returns, as far as validation and cost are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A scalar or enum: no selection allowed.
    Leaf,
    /// One object: a selection is required.
    Object,
    /// A list of objects inside a connection (`nodes`, `edges`): each is one of the
    /// connection's page.
    List,
    /// A connection: paginated with `first`/`last`, one request per parent object.
    Connection,
}

/// One row: `(type, field, result type, kind, arguments)`. An argument ending in `!` is
/// required.
pub type Row = (
    &'static str,
    &'static str,
    &'static str,
    Kind,
    &'static [&'static str],
);

/// Arguments every connection takes (GitHub's connections: `first`, `last`, `after`, `before`).
pub const PAGE_ARGS: &[&str] = &["first", "last", "after", "before"];

/// The simulated GitHub schema.
pub const GITHUB: &[Row] = &[
    (
        "Query",
        "repository",
        "Repository",
        Kind::Object,
        &["owner!", "name!"],
    ),
    ("Query", "rateLimit", "RateLimit", Kind::Object, &[]),
    ("Repository", "nameWithOwner", "String", Kind::Leaf, &[]),
    ("Repository", "issue", "Issue", Kind::Object, &["number!"]),
    ("Issue", "number", "Int", Kind::Leaf, &[]),
    ("Issue", "state", "IssueState", Kind::Leaf, &[]),
    ("Issue", "lastEditedAt", "DateTime", Kind::Leaf, &[]),
    ("Issue", "repository", "Repository", Kind::Object, &[]),
    (
        "Issue",
        "blockedBy",
        "IssueConnection",
        Kind::Connection,
        PAGE_ARGS,
    ),
    ("IssueConnection", "totalCount", "Int", Kind::Leaf, &[]),
    ("IssueConnection", "nodes", "Issue", Kind::List, &[]),
    ("RateLimit", "cost", "Int", Kind::Leaf, &[]),
    ("RateLimit", "limit", "Int", Kind::Leaf, &[]),
    ("RateLimit", "remaining", "Int", Kind::Leaf, &[]),
    ("RateLimit", "resetAt", "DateTime", Kind::Leaf, &[]),
    ("RateLimit", "used", "Int", Kind::Leaf, &[]),
    ("RateLimit", "nodeCount", "Int", Kind::Leaf, &[]),
];

/// A schema: its rows, less the fields a server of this version lacks.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub rows: &'static [Row],
    /// `(type, field)` pairs this server does not have (e.g. `Issue.blockedBy` on a GitHub
    /// Enterprise Server version before issue dependencies).
    pub without: &'static [(&'static str, &'static str)],
}

/// What a field resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    pub ty: &'static str,
    pub kind: Kind,
    pub args: &'static [&'static str],
}

impl Schema {
    /// GitHub as the simulator models it; `without_blocked_by` drops `Issue.blockedBy`.
    pub fn github(without_blocked_by: bool) -> Schema {
        Schema {
            rows: GITHUB,
            without: if without_blocked_by {
                &[("Issue", "blockedBy")]
            } else {
                &[]
            },
        }
    }

    pub fn field(&self, ty: &str, name: &str) -> Option<FieldDef> {
        if self.without.iter().any(|(t, f)| *t == ty && *f == name) {
            return None;
        }
        self.rows
            .iter()
            .find(|(t, f, ..)| *t == ty && *f == name)
            .map(|&(_, _, ty, kind, args)| FieldDef { ty, kind, args })
    }
}
