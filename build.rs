//! Records the git commit in the binary for `blitz --version`, and makes sure the
//! price chart's library (`src/http/pages/vendor`, installed from npm at the pinned
//! version of its package-lock.json) is present for `include_bytes!`.

use std::path::Path;
use std::process::Command;

/// The file the pages embed (`src/http/pages/assets.rs`).
const CHART_LIB: &str =
    "src/http/pages/vendor/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js";

fn main() {
    git_sha();
    chart_library();
}

fn git_sha() {
    let sha = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BLITZ_GIT_SHA={sha}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// A fresh clone has no `node_modules`: run `npm ci` once. The library is not kept
/// in the repository, so without npm the build cannot embed it and says so.
fn chart_library() {
    println!("cargo:rerun-if-changed=src/http/pages/vendor/package-lock.json");
    println!("cargo:rerun-if-changed={CHART_LIB}");
    if Path::new(CHART_LIB).exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir("src/http/pages/vendor")
        .status();
    match status {
        Ok(s) if s.success() && Path::new(CHART_LIB).exists() => {}
        Ok(s) => panic!(
            "`npm ci` in src/http/pages/vendor failed ({s}): the price chart's library \
             (lightweight-charts) is installed from the npm registry at build time; \
             check the network or install it by hand there"
        ),
        Err(e) => panic!(
            "npm is needed to build Blitz once ({e}): it installs the price chart's \
             library (lightweight-charts) into src/http/pages/vendor/node_modules. \
             Install Node.js and npm (Debian: `apt-get install nodejs npm`), then build again"
        ),
    }
}
