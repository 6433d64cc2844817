//! A real browser for page tests: chromedriver and headless Chromium, driven over WebDriver by
//! fantoccini. Include it from a test file with
//! `#[path = "support/browser.rs"] mod browser;`.
//!
//! The browser is named by two environment variables (`scripts/test` sets both, after installing
//! Debian's `chromium` and `chromium-driver`):
//! - `RACETIME_CHROMEDRIVER`: the chromedriver binary (`/usr/bin/chromedriver`);
//! - `RACETIME_CHROMIUM`: the browser binary (`/usr/bin/chromium`).
//!
//! Without them a browser test prints that it is skipped and why, and passes (under `CI` it
//! fails instead, as the interop tests do); with them every step must really run, and a missing
//! binary fails the test.
//! Synchronisation is by polling the page for a condition until a deadline, never by sleeping a
//! fixed time.

// Each test binary that includes this uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;

/// The screen a page is tested on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Device {
    /// A phone in portrait, 390×844 CSS pixels (an iPhone 12 to 15), by Chromium's mobile
    /// emulation (a headless window is never narrower than 500 px), with touch.
    Phone,
    /// A small laptop screen, 1280×800.
    Laptop,
}

impl Device {
    /// The viewport in CSS pixels.
    pub(crate) fn size(self) -> (u32, u32) {
        match self {
            Device::Phone => (390, 844),
            Device::Laptop => (1280, 800),
        }
    }
}

/// How long a condition may take before the test fails, unless a test says otherwise.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// The binaries a browser test runs.
#[derive(Debug, Clone)]
pub(crate) struct BrowserPaths {
    pub(crate) chromedriver: PathBuf,
    pub(crate) chromium: PathBuf,
}

/// The browser from the environment, or `None` after printing why `test` is skipped.
///
/// # Panics
/// If only one of the variables is set, or one names no file: a browser was asked for and
/// cannot run, which is a failure, not a skip. Under `CI`, if neither is set.
pub(crate) fn from_env(test: &str) -> Option<BrowserPaths> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match (var("RACETIME_CHROMEDRIVER"), var("RACETIME_CHROMIUM")) {
        (None, None) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RACETIME_CHROMEDRIVER and RACETIME_CHROMIUM are not set: under CI {test} must run (scripts/test sets them)"
            );
            eprintln!(
                "notice: skipping {test}: no browser. To run it: apt-get install chromium chromium-driver, then \
                 RACETIME_CHROMEDRIVER=/usr/bin/chromedriver RACETIME_CHROMIUM=/usr/bin/chromium cargo test \
                 (scripts/test does both)"
            );
            None
        }
        (Some(chromedriver), Some(chromium)) => {
            for (name, path) in [("RACETIME_CHROMEDRIVER", &chromedriver), ("RACETIME_CHROMIUM", &chromium)] {
                assert!(path.is_file(), "{name}={} is not a file", path.display());
            }
            Some(BrowserPaths { chromedriver, chromium })
        }
        (driver, browser) => {
            panic!("set both RACETIME_CHROMEDRIVER and RACETIME_CHROMIUM (got {driver:?} and {browser:?})")
        }
    }
}

/// A headless Chromium session with its own chromedriver and an empty profile; the driver, the
/// browser and all its helper processes end when this is dropped, even after a panic.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("chromedriver_pid", &self.driver.id()).finish_non_exhaustive()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills chromedriver and everything it started: it leads its own process group (see
/// [`start_chromedriver`]), and a browser whose driver died (a test that panicked, a killed
/// chromedriver) would otherwise run on with its profile.
fn kill_group(driver: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", driver.id())]).status();
    let _ = driver.kill();
    let _ = driver.wait();
}

impl Browser {
    /// Starts chromedriver on a free port and a headless browser session on `device`.
    pub(crate) async fn launch(paths: &BrowserPaths, device: Device) -> anyhow::Result<Browser> {
        let (mut driver, port) = start_chromedriver(&paths.chromedriver)?;
        let profile = tempfile::tempdir().context("creating the browser profile directory")?;
        let (width, height) = device.size();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--lang=en-US".into(),
            format!("--window-size={},{}", width.max(500), height),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = serde_json::json!({ "binary": paths.chromium, "args": args });
        if device == Device::Phone {
            options["mobileEmulation"] =
                serde_json::json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 } });
        }
        let capabilities = serde_json::json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let Value::Object(capabilities) = capabilities else { unreachable!("an object literal") };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                kill_group(&mut driver);
                bail!("starting a browser session through chromedriver: {e}");
            }
        };
        let browser = Browser { client, driver, _profile: profile };
        if device == Device::Laptop {
            // The window includes whatever frame the browser draws: make the viewport the size.
            let frame = browser
                .js("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
                .await?;
            let (dx, dy) = (frame[0].as_u64().unwrap_or(0) as u32, frame[1].as_u64().unwrap_or(0) as u32);
            if dx > 0 || dy > 0 {
                browser.client.set_window_size(width + dx, height + dy).await.context("resizing the window")?;
            }
        }
        // A phone lays out a page without a viewport meta tag (about:blank) 980 px wide; its
        // screen is what is emulated.
        let got = match device {
            Device::Phone => browser.js("return [screen.width, screen.height];").await?,
            Device::Laptop => browser.js("return [window.innerWidth, window.innerHeight];").await?,
        };
        if got != serde_json::json!([width, height]) {
            bail!("asked for a {device:?} viewport of {width}×{height}, got {got}");
        }
        Ok(browser)
    }

    pub(crate) async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await.with_context(|| format!("opening {url}"))
    }

    /// Runs `script` (a function body: `return ...;`) in the page and returns its value.
    pub(crate) async fn js(&self, script: &str) -> anyhow::Result<Value> {
        self.client.execute(script, Vec::new()).await.with_context(|| format!("running {script:?}"))
    }

    /// Polls `script` until it returns something other than `null`, `undefined` or `false`, and
    /// returns that; fails after `within` with `what` and the page's visible text.
    pub(crate) async fn wait_until(&self, what: &str, within: Duration, script: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.js(script).await?;
            if !matches!(value, Value::Null | Value::Bool(false)) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body ? document.body.innerText : '';").await.unwrap_or_default();
                let text = text.as_str().unwrap_or_default();
                bail!(
                    "{what}: not within {within:?}; the page shows:\n{}",
                    text.chars().take(3000).collect::<String>()
                );
            }
            // A pause between polls of the page, not a wait for anything in particular.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until an element matching `css` is in the page.
    pub(crate) async fn wait_for_element(
        &self,
        css: &str,
        within: Duration,
    ) -> anyhow::Result<fantoccini::elements::Element> {
        let deadline = Instant::now() + within;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => return Ok(e),
                Err(e) if Instant::now() > deadline => bail!("no element {css:?} within {within:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Saves what the viewport shows as a PNG.
    pub(crate) async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        println!("screenshot: {}", path.display());
        Ok(())
    }

    /// Ends the session (the processes end on drop).
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        self.client.clone().close().await.context("closing the browser session")
    }
}

/// Where screenshots go: the directory `RACETIME_SCREENSHOTS` names (relative to the repository),
/// else `fallback` (the test's temporary directory).
pub(crate) fn screenshot_dir(repo: &Path, fallback: &Path) -> PathBuf {
    match std::env::var_os("RACETIME_SCREENSHOTS").filter(|v| !v.is_empty()) {
        Some(dir) => repo.join(dir),
        None => fallback.to_path_buf(),
    }
}

/// Starts chromedriver and returns it with its port: `--port=0` and the port it reports; where
/// a chromedriver does not pick a port itself, a free port found here (tried a few times, in case
/// another process takes it in between). It leads a process group of its own, which the browser
/// joins, so that [`kill_group`] ends them all.
fn start_chromedriver(path: &Path) -> anyhow::Result<(Child, u16)> {
    let mut tried = Vec::new();
    for attempt in 0..4 {
        let port = if attempt == 0 { 0 } else { free_port()? };
        let mut child = Command::new(path)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--log-level=SEVERE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", path.display()))?;
        let stdout = child.stdout.take().context("chromedriver stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads chromedriver's stdout to the end, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once nobody listens any more, this keeps draining.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        let started = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let port = started_port(&line);
                    lines.push(line);
                    if let Some(p) = port {
                        break Some(p);
                    }
                }
                Err(_) => break None,
            }
        };
        match started {
            Some(p) if p != 0 => return Ok((child, p)),
            _ => {
                kill_group(&mut child);
                tried.push(format!("--port={port}: {}", lines.join(" | ")));
            }
        }
    }
    bail!("chromedriver did not start:\n{}", tried.join("\n"))
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 40821." line.
fn started_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim().trim_end_matches('.').parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
