//! `afk-sim`: serve the simulators, run the demo, run the bench.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
