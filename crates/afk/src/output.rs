//! Prints the plan on stdout, as text or as one JSON object on one line.

use std::io::Write;

use afk_core::plan::Plan;

use crate::cli::Output;

pub fn print(plan: &Plan, output: Output) {
    let text = match output {
        // One line: with JSON logs on stderr, every line of the process's output is JSON.
        Output::Json => plan.to_json_line(),
        Output::Text => afk_core::plan::render_text(plan),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}
