//! Records the git commit in the binary for `blitz --version`, and fetches the
//! price chart's library into `OUT_DIR` for `include_bytes!`
//! (`src/http/pages/assets.rs`).
//!
//! The library (TradingView's lightweight-charts, Apache-2.0) is not kept in the
//! repository. `src/http/pages/vendor/package-lock.json` pins its version, tarball
//! URL and sha512 integrity; this script downloads that tarball, refuses it unless
//! its digest is the pinned one, and extracts the one file the binary serves. So
//! cargo alone builds the product: no Node.js or npm is needed.

use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha512};

const LOCK: &str = "src/http/pages/vendor/package-lock.json";
const PACKAGE: &str = "lightweight-charts";
/// The file the pages embed, as it is named inside the npm tarball.
const MEMBER: &str = "package/dist/lightweight-charts.standalone.production.js";
/// Its name in `OUT_DIR`; `assets.rs` includes it from there.
const OUT_FILE: &str = "lightweight-charts.standalone.production.js";
/// A tarball already downloaded, for a build without network. It is checked
/// against the pinned integrity like a download.
const OFFLINE_VAR: &str = "BLITZ_CHART_TARBALL";
/// Far above the real sizes (~0.6 MB packed, ~3.4 MB unpacked): a runaway
/// download or a gzip bomb stops here instead of filling memory.
const MAX_BYTES: u64 = 64 << 20;

fn main() {
    git_sha();
    if let Err(e) = chart_library() {
        eprintln!("error: the price chart's library ({PACKAGE}): {e}");
        process::exit(1);
    }
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

/// What the lock file pins.
struct Pin {
    version: String,
    url: String,
    /// The `integrity` text (`sha512-<base64>`), kept beside the extracted file so a
    /// changed pin is fetched again and an unchanged one never is.
    integrity: String,
    sha512: Vec<u8>,
}

/// Puts the library into `OUT_DIR`, downloading it only when the pin changed.
fn chart_library() -> Result<(), String> {
    println!("cargo:rerun-if-changed={LOCK}");
    println!("cargo:rerun-if-env-changed={OFFLINE_VAR}");
    let pin = read_pin(Path::new(LOCK))?;
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let out = out_dir.join(OUT_FILE);
    let stamp = out_dir.join(format!("{OUT_FILE}.integrity"));
    if out.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == pin.integrity) {
        return Ok(());
    }
    let tarball = match env::var_os(OFFLINE_VAR) {
        Some(path) => fs::read(&path).map_err(|e| {
            format!(
                "cannot read {OFFLINE_VAR}={}: {e}",
                Path::new(&path).display()
            )
        })?,
        None => download(&pin)?,
    };
    verify(&tarball, &pin)?;
    let file = extract(&tarball, MEMBER)?;
    fs::write(&out, file).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    fs::write(&stamp, &pin.integrity).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// Reads the package's entry of the npm lock file. npm may be set to leave out
/// `resolved`; then the tarball is where npm itself would look for it.
fn read_pin(lock: &Path) -> Result<Pin, String> {
    let text = fs::read_to_string(lock).map_err(|e| format!("cannot read {LOCK}: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{LOCK} is not JSON: {e}"))?;
    let entry = &json["packages"][format!("node_modules/{PACKAGE}")];
    let field = |name: &str| entry[name].as_str().map(str::to_string);
    let version = field("version").ok_or(format!("{LOCK} pins no version"))?;
    let url = field("resolved").unwrap_or_else(|| {
        format!("https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{version}.tgz")
    });
    let integrity = field("integrity").ok_or(format!("{LOCK} has no integrity"))?;
    let sha512 = integrity
        .strip_prefix("sha512-")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|d| d.len() == 64)
        .ok_or(format!(
            "{LOCK}: the integrity `{integrity}` is not sha512-<base64>"
        ))?;
    Ok(Pin {
        version,
        url,
        integrity,
        sha512,
    })
}

fn download(pin: &Pin) -> Result<Vec<u8>, String> {
    let offline = || {
        format!(
            "to build without network, download {} elsewhere and set {OFFLINE_VAR} \
             to its path",
            pin.url
        )
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .try_proxy_from_env(true)
        .build();
    let response = agent.get(&pin.url).call().map_err(|e| {
        format!(
            "cannot download version {} ({e}); {}",
            pin.version,
            offline()
        )
    })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| format!("the download of {} broke off ({e}); {}", pin.url, offline()))?;
    Ok(body)
}

/// Refuses any tarball but the pinned one: the script is served to every user.
fn verify(tarball: &[u8], pin: &Pin) -> Result<(), String> {
    let digest = Sha512::digest(tarball);
    if digest.as_slice() == pin.sha512.as_slice() {
        return Ok(());
    }
    let got = base64::engine::general_purpose::STANDARD.encode(digest);
    Err(format!(
        "integrity mismatch: {LOCK} pins {} but the tarball is sha512-{got}; \
         refusing it (a tampered or wrong download, or a wrong {OFFLINE_VAR})",
        pin.integrity
    ))
}

/// The contents of `member` in a gzipped tar archive (ustar, as npm packs).
fn extract(tgz: &[u8], member: &str) -> Result<Vec<u8>, String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tgz)
        .take(MAX_BYTES)
        .read_to_end(&mut tar)
        .map_err(|e| format!("the tarball is not gzip: {e}"))?;
    let mut at = 0;
    while let Some(header) = tar.get(at..at + 512) {
        if header.iter().all(|&b| b == 0) {
            break; // the end-of-archive blocks
        }
        let size = octal(&header[124..136]).ok_or("a tar header has a bad size")?;
        let body = at + 512;
        let end = body.checked_add(size).filter(|&e| e <= tar.len());
        let end = end.ok_or("the tarball is truncated")?;
        let regular = matches!(header[156], b'0' | 0);
        if regular && entry_path(header) == member {
            return Ok(tar[body..end].to_vec());
        }
        at = body + size.div_ceil(512) * 512;
    }
    Err(format!("the tarball has no {member}"))
}

/// An entry's path: ustar's prefix (when set) joined to its name.
fn entry_path(header: &[u8]) -> String {
    let text = |b: &[u8]| {
        let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..len]).into_owned()
    };
    let name = text(&header[0..100]);
    let prefix = if &header[257..262] == b"ustar" {
        text(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// A tar numeric field: octal digits, padded with spaces or NULs.
fn octal(field: &[u8]) -> Option<usize> {
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| *b != b' ' && *b != 0)
        .collect();
    let text = std::str::from_utf8(&digits).ok()?;
    usize::from_str_radix(if text.is_empty() { "0" } else { text }, 8).ok()
}
