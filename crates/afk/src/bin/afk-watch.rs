//! `afk-watch`: one watch tick — drive every live run one step toward its verdict.

fn main() -> std::process::ExitCode {
    afk::program::main(afk_core::plan::TickKind::Watch)
}
