//! Tests of everything afk-core renders: the status comment and its record block, the agent's
//! prompts, the doorbell notices and the text/JSON plan.

mod comment;
mod comment_props;
mod fixtures;
mod notice;
mod plan;
mod prompt;
mod report;
