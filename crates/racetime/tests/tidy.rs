//! Tidy: the architecture's rules, checked on the tree (rust-analyzer's "tidy" idea).

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `[dependencies]` names of a crate's manifest.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            deps.push(line.split(['=', '.', ' ']).next().unwrap().trim().to_string());
        }
    }
    deps
}

#[test]
fn the_pure_crates_stay_pure() {
    // No async runtime, no storage, no network stack in the functional core.
    let forbidden =
        ["tokio", "tokio-serial", "tokio-modbus", "rusqlite", "axum", "tokio-tungstenite", "hyper", "reqwest", "mio"];
    for krate in ["timing-core", "reader-protocol", "event-config", "race-sim", "results-export", "timing-wire"] {
        let deps = dependencies(&repo().join("crates").join(krate).join("Cargo.toml"));
        for d in &deps {
            assert!(!forbidden.contains(&d.as_str()), "{krate} depends on {d}");
        }
        if krate == "timing-core" {
            assert!(!deps.iter().any(|d| d == "serde"), "timing-core types are not a wire format");
        }
    }
}

#[test]
fn the_core_never_reads_the_clock() {
    for krate in ["timing-core", "reader-protocol", "event-config", "race-sim"] {
        for file in rust_files(&repo().join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in [
                "SystemTime::now",
                "Instant::now",
                "Utc::now",
                "Local::now",
                "std::fs::",
                "std::net::",
                "thread::sleep",
            ] {
                if text.contains(needle) && !file.to_string_lossy().contains("tests") {
                    panic!("{} uses {needle}", file.display());
                }
            }
        }
    }
}

#[test]
fn every_library_says_what_it_is_and_nothing_is_left_unfinished() {
    for entry in std::fs::read_dir(repo().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let lib = dir.join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(text.starts_with("//!"), "{} lacks //! docs", lib.display());
        }
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in ["todo!(", "unimplemented!(", "dbg!("] {
                assert!(!text.contains(needle), "{} contains {needle}", file.display());
            }
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                out.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tidy.rs") {
            out.push(path);
        }
    }
    out
}
