//! Shared by the black-box suites: the `afk-poll` and `afk-watch` binaries they run.
//!
//! The suites live in their own workspace member so they depend on the binaries only as a user
//! does. Cargo hands `CARGO_BIN_EXE_*` only to a package's own tests, so the binaries are found
//! (and, in a source tree, built with cargo into the same target folder first, so a test never
//! runs stale ones) the way `afk-sim demo` finds them.

use std::sync::OnceLock;

use afk_sim::driver::Binaries;

/// The built binaries, built once per test process.
pub fn binaries() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| match Binaries::beside_current_exe() {
        Ok(b) => b,
        Err(e) => panic!("afk-poll and afk-watch are not available to the tests: {e:#}"),
    })
    .clone()
}
