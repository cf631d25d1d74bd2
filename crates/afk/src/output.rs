//! Prints the plan on stdout, as text or as the JSON object of INTERFACES §3.

use std::io::Write;

use afk_core::plan::Plan;

use crate::cli::Output;

pub fn print(plan: &Plan, output: Output) {
    let text = match output {
        Output::Json => plan.to_json(),
        Output::Text => afk_core::plan::render_text(plan),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = out.flush();
}
