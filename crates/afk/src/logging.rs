//! Structured logs on stderr: JSON by default, one object per line, with `repo`, `issue` and
//! `run` fields on every line about a run. stdout is reserved for the plan.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. `verbosity` is -1 (quiet), 0 or more (`-v` count).
pub fn init(format: LogFormat, verbosity: i8) {
    let default = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env(crate::env::RUST_LOG).unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},hyper=warn,reqwest=warn,rustls=warn,kube=warn,tower=warn,octocrab=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
