//! The pidfile: written after the listeners are bound, removed on exit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::kill;
use nix::unistd::Pid;

#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    /// Where our pid is now: `path`, or `path.oldbin` during a binary upgrade.
    current: PathBuf,
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
            current: path.to_path_buf(),
        })
    }

    /// `PATH.oldbin`, as nginx and gunicorn name an upgrading master's pidfile.
    fn oldbin(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".oldbin");
        PathBuf::from(name)
    }

    /// Binary upgrade: `PATH` becomes `PATH.oldbin`, leaving `PATH` to the new master.
    pub fn move_to_oldbin(&mut self) -> io::Result<()> {
        let old = self.oldbin();
        fs::rename(&self.current, &old)?;
        self.current = old;
        Ok(())
    }

    /// The upgrade failed: take `PATH` back, unless it names a live master other
    /// than the dead `successor` (which may have written it before it died).
    pub fn restore(&mut self, successor: Option<i32>) {
        if self.current == self.path {
            return;
        }
        let owner = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        let free = match owner {
            None => true,
            Some(pid) => Some(pid) == successor || kill(Pid::from_raw(pid), None).is_err(),
        };
        if free && fs::rename(&self.current, &self.path).is_ok() {
            self.current = self.path.clone();
        }
    }

    pub fn remove(&self) {
        // Only remove it if it is still ours (a newer master may have taken over).
        let ours = fs::read_to_string(&self.current)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            == Some(std::process::id() as i32);
        if ours {
            let _ = fs::remove_file(&self.current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldbin_rename_and_restore() {
        let dir = std::env::temp_dir().join(format!("blitz-pid-{}", std::process::id()));
        let path = dir.join("blitz.pid");
        let mut p = Pidfile::create(&path, std::process::id() as i32).unwrap();
        p.move_to_oldbin().unwrap();
        assert!(!path.exists());
        assert!(dir.join("blitz.pid.oldbin").exists());
        p.restore(None);
        assert!(path.exists());
        // A dead successor's pid in PATH does not keep the old master out.
        p.move_to_oldbin().unwrap();
        fs::write(&path, "999999999\n").unwrap();
        p.restore(Some(999_999_999));
        assert_eq!(
            fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        p.move_to_oldbin().unwrap();
        p.remove();
        assert!(!dir.join("blitz.pid.oldbin").exists());
        let _ = fs::remove_dir_all(dir);
    }
}
