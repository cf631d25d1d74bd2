//! `afk-poll`: one poll tick — choose ready issues of enrolled repos and dispatch them.

fn main() -> std::process::ExitCode {
    afk::program::main(afk_core::plan::TickKind::Poll)
}
