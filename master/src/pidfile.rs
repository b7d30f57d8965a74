//! The pidfile: written after the listeners are bound, removed on exit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::kill;
use nix::unistd::Pid;

#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Writes our pid to `path`. Refuses when the file names another live process,
    /// so two masters never fight over one pidfile; a stale file is replaced.
    pub fn create(path: &Path, pid: i32) -> io::Result<Pidfile> {
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(old) = text.trim().parse::<i32>() {
                if old != pid && old > 0 && kill(Pid::from_raw(old), None).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("pidfile {} names running process {old}", path.display()),
                    ));
                }
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, format!("{pid}\n"))?;
        fs::rename(&tmp, path)?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }

    pub fn remove(&self) {
        // Only remove it if it is still ours (a newer master may have taken over).
        let ours = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            == Some(std::process::id() as i32);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}
