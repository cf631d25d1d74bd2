//! afk-core does no I/O and reads no clock: its sources and its manifest.

use crate::source::{code_only, crate_dir, first_ident, rust_files};

/// Code that does I/O or reads a clock, and what it is.
const CORE_BANNED: [(&str, &str); 14] = [
    ("tokio", "an async runtime"),
    ("reqwest", "an HTTP client"),
    ("std::fs", "the filesystem"),
    ("std::net", "sockets"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("SystemTime", "the system clock"),
    ("Instant::now", "the monotonic clock"),
    ("Utc::now", "the clock"),
    ("Local::now", "the clock"),
    ("TcpStream", "sockets"),
    ("TcpListener", "sockets"),
    ("UdpSocket", "sockets"),
    ("ToSocketAddrs", "name resolution"),
];

/// What afk-core may take from `std::net`: addresses are values, parsed without I/O.
const NET_VALUES: [&str; 6] = [
    "IpAddr",
    "Ipv4Addr",
    "Ipv6Addr",
    "SocketAddr",
    "SocketAddrV4",
    "SocketAddrV6",
];

/// Whether `rest` (what follows `std::net`) names only an address type.
fn net_value(rest: &str) -> bool {
    let Some(name) = rest.strip_prefix("::").and_then(first_ident) else {
        return false;
    };
    NET_VALUES.contains(&name.as_str())
}

/// `std::{fs, net}` grouped imports, spelled out as paths.
const STD_GROUPED: [&str; 4] = ["fs", "net", "process", "env"];

fn io_in_source(rel: &str, src: &str) -> Vec<String> {
    let code = code_only(src);
    let mut found = Vec::new();
    for (line_no, line) in code.lines().enumerate() {
        for (needle, what) in CORE_BANNED {
            let mut from = 0;
            while let Some(at) = line[from..].find(needle) {
                let start = from + at;
                let end = start + needle.len();
                let boundary_before = line[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let boundary_after = line[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                let address = needle == "std::net" && net_value(&line[end..]);
                if boundary_before && boundary_after && !address {
                    found.push(format!("{rel}:{}: {needle} ({what})", line_no + 1));
                }
                from = end;
            }
        }
    }
    // `use std::{fs, …}` (possibly over several lines).
    let mut rest = code.as_str();
    while let Some(at) = rest.find("std::{") {
        let group = &rest[at + "std::{".len()..];
        let inner = group.split('}').next().unwrap_or("");
        for name in inner.split(',').filter_map(first_ident) {
            if STD_GROUPED.contains(&name.as_str()) {
                found.push(format!("{rel}: std::{{{name}}} ({})", "I/O"));
            }
        }
        rest = group;
    }
    found
}

/// Crates of afk-core's `[dependencies]` (not dev) that do I/O.
fn io_in_manifest(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if !(section == "[dependencies]"
            || section.starts_with("[target.") && section.ends_with(".dependencies]"))
        {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or("")
            .trim_matches('"');
        if [
            "tokio",
            "reqwest",
            "hyper",
            "kube",
            "axum",
            "mio",
            "afk-remotes",
        ]
        .contains(&name)
        {
            found.push(format!("afk-core's [dependencies] name {name}"));
        }
    }
    found
}

#[test]
fn afk_core_sources_and_manifest_do_no_io_and_read_no_clock() {
    let core = crate_dir("afk-core");
    let sources = rust_files(&core.join("src"));
    assert!(
        sources.iter().any(|(p, _)| p == "machine.rs") && sources.len() > 20,
        "afk-core's sources were read"
    );
    let mut found: Vec<String> = sources
        .iter()
        .flat_map(|(rel, text)| io_in_source(rel, text))
        .collect();
    let manifest =
        std::fs::read_to_string(core.join("Cargo.toml")).expect("read afk-core's Cargo.toml");
    found.extend(io_in_manifest(&manifest));
    assert!(
        found.is_empty(),
        "afk-core must do no I/O and read no clock (take `now` and facts as arguments; do I/O \
         in crates/afk):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_io_check_catches_code_and_spares_comments_and_strings() {
    let src = "//! no tokio here, no std::fs either\n\
               use std::fs::read;\n\
               fn f() { let _ = std::time::SystemTime::now(); }\n\
               const S: &str = \"reqwest\";\n\
               fn g() { let _ = std::time::Instant::now(); }\n\
               use std::{collections::BTreeMap,\n    net};\n\
               fn h() { tokio::spawn(async {}); }\n\
               fn my_tokio_like() {}\n\
               fn ok(h: &str) -> bool { h.parse::<std::net::IpAddr>().is_ok() }\n\
               fn bad() { let _ = std::net::TcpStream::connect(\"x:1\"); }\n";
    let found = io_in_source("x.rs", src);
    assert_eq!(
        found,
        [
            "x.rs:2: std::fs (the filesystem)",
            "x.rs:3: SystemTime (the system clock)",
            "x.rs:5: Instant::now (the monotonic clock)",
            "x.rs:8: tokio (an async runtime)",
            "x.rs:11: std::net (sockets)",
            "x.rs:11: TcpStream (sockets)",
            "x.rs: std::{net} (I/O)",
        ]
    );
    let manifest = "[dependencies]\nchrono.workspace = true\ntokio = \"1\"\n\n[dev-dependencies]\nreqwest = \"0.12\"\n";
    assert_eq!(
        io_in_manifest(manifest),
        ["afk-core's [dependencies] name tokio"]
    );
}
