//! `afk-poll`: one poll tick — choose ready issues and dispatch them (SPEC §3).

fn main() -> std::process::ExitCode {
    afk::cli::main(afk_core::plan::TickKind::Poll)
}
