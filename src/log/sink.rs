//! A log destination that can be reopened in place (logrotate + USR1).
//!
//! The descriptor number never changes: reopening opens the path again and `dup2`s
//! the new file over the old descriptor, so every clone of the sink follows.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
struct Inner {
    fd: RawFd,
    path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

impl Sink {
    pub fn stdout() -> Sink {
        Sink::from_fd(1, None)
    }

    pub fn stderr() -> Sink {
        Sink::from_fd(2, None)
    }

    /// Opens (creating) `path` for appending; its directory is created too.
    pub fn file(path: &Path) -> io::Result<Sink> {
        let fd = open_append(path)?;
        Ok(Sink::from_fd(fd, Some(path.to_path_buf())))
    }

    fn from_fd(fd: RawFd, path: Option<PathBuf>) -> Sink {
        Sink {
            inner: Arc::new(Inner { fd, path }),
        }
    }

    /// Writes one whole line (the caller includes the newline). `O_APPEND` and a
    /// single write keep concurrent writers' lines intact.
    pub fn write_line(&self, line: &[u8]) {
        let mut rest = line;
        while !rest.is_empty() {
            // SAFETY: writing a valid buffer to a descriptor we keep open.
            let n = unsafe { libc::write(self.inner.fd, rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return; // nowhere left to report a logging failure
            }
            rest = &rest[n as usize..];
        }
    }

    /// Reopens the file after rotation; a no-op for stdout/stderr.
    pub fn reopen(&self) -> io::Result<()> {
        let Some(path) = &self.inner.path else {
            return Ok(());
        };
        let fresh = open_append(path)?;
        // SAFETY: both descriptors are open; dup3 atomically replaces ours.
        let r = unsafe { libc::dup3(fresh, self.inner.fd, libc::O_CLOEXEC) };
        let err = io::Error::last_os_error();
        // SAFETY: `fresh` is ours and no longer needed.
        unsafe { libc::close(fresh) };
        if r < 0 {
            return Err(err);
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<RawFd> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    let _ = file.as_raw_fd();
    Ok(file.into_raw_fd())
}
