//! The LLRP emulator against an independent client: sllurp (PyPI, pinned in
//! `tests/interop/requirements.txt`) runs `tests/interop/llrp_client.py` with the interpreter
//! named by `RACETIME_INTEROP_PYTHON`. Without it the test fails under CI (`CI` set) and is
//! skipped with a notice otherwise.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use event_config::edge::Protocol;
use firmware_sim::readers::Endpoint;

use crate::common::*;

const PYTHON_VAR: &str = "RACETIME_INTEROP_PYTHON";

/// The interpreter to run; a relative path with a directory in it is taken from the workspace
/// root (tests run in the package directory), a bare name is looked up in `PATH`.
fn interop_python() -> Option<PathBuf> {
    match std::env::var_os(PYTHON_VAR) {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            Some(if p.is_relative() && p.components().count() > 1 { workspace_root().join(p) } else { p })
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("{PYTHON_VAR} is not set: CI must run the sllurp interop test (scripts/test sets it up)")
        }
        _ => {
            eprintln!(
                "notice: skipping the sllurp LLRP interop test: set {PYTHON_VAR} to a python with sllurp==3.0.5 \
                 (python3 -m venv /tmp/venv-emu && /tmp/venv-emu/bin/pip install -r tests/interop/requirements.txt)"
            );
            None
        }
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sllurp_configures_a_rospec_and_receives_the_tag_reports() {
    let Some(python) = interop_python() else {
        return;
    };
    let script = workspace_root().join("tests/interop/llrp_client.py");
    assert!(script.exists(), "{} is missing", script.display());
    let clock = manual(t0() + ms(60_000));
    let h =
        start(spec("finish-llrp", Protocol::Llrp, Endpoint::Listen(localhost()), reader_clock(0, 0.0)), &clock).await;
    let port = h.local_addr().expect("listening").port();
    let epcs = ["E2001018860B01290700D0D8", "E2001018860B01290700D0D9", "300833B2DDD9014000000000ABCD0001"];

    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--port", &port.to_string(), "--expect", &epcs.join(",")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({PYTHON_VAR}): {e}", python.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");

    // The script prints "ready" once sllurp is inventorying; everything it prints is kept.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let lines = tokio::task::spawn_blocking(move || {
        let mut ready_tx = Some(ready_tx);
        let mut out = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready"
                && let Some(tx) = ready_tx.take()
            {
                let _ = tx.send(());
            }
            out.push(line);
        }
        out
    });
    let errors = tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let ready = tokio::time::timeout(WAIT * 3, ready_rx).await;
    if !matches!(ready, Ok(Ok(()))) {
        let _ = child.kill();
        let out = lines.await.unwrap_or_default();
        panic!("sllurp never started inventorying\nstdout: {out:?}\nstderr: {}", errors.await.unwrap_or_default());
    }
    for (n, epc) in epcs.iter().enumerate() {
        h.detect(det(epc, t0() + ms(1000 * n as i64), 1 + (n % 2) as u16, -600));
    }
    let status = tokio::time::timeout(WAIT * 3, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("sllurp finishes in time")
        .expect("joined")
        .expect("waited");
    let out = lines.await.expect("stdout read");
    let err = errors.await.expect("stderr read");
    assert!(status.success(), "sllurp client failed ({status})\nstdout: {out:#?}\nstderr: {err}");
    assert!(out.iter().any(|l| l.starts_with("ok: 3 tag reports")), "{out:?}");
    let stats = h.stats();
    assert_eq!((stats.records_stored, stats.records_sent), (3, 3));
    assert!(stats.commands_received >= 8, "sllurp's whole flow went through: {stats:?}");
    h.shutdown().await;
}
