//! Child processes that are stopped when dropped, with their output in a log file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::StackError;
use crate::poll::{eventually, wait_until};

/// A running child process. Dropping it sends SIGTERM, then SIGKILL after 5 s.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Spawns `cmd` with stdin closed and stdout + stderr appended to `log`, in its own process group (so a
    /// Ctrl-C meant for the test runner does not reach it before the runner can stop it in order).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Process, StackError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(StackError::io(format!("opening {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(StackError::io(format!("opening {}", log.display())))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(StackError::io(format!("starting {name}")))?;
        Ok(Process {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// A handle that owns no process (stopping it does nothing).
    pub fn none(name: &str) -> Process {
        Process {
            name: name.to_string(),
            child: None,
            log: PathBuf::new(),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it is still running; `Some(status)` text once it exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            None => Some("stopped".into()),
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(e.to_string()),
        }
    }

    /// Kills it at once (SIGKILL) and reaps it: a crash, as far as its peers can tell.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we own; no memory is passed.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if wait_until(grace, Duration::from_millis(50), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Leaves it running after this handle is gone and returns its pid (for `stack up`).
    pub fn detach(mut self) -> u32 {
        let pid = self.pid();
        self.child = None;
        pid
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The last `lines` lines of a file (at most its last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound and released; the OS does not hand it out again right away).
pub fn free_port() -> Result<u16, StackError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(StackError::io("binding a free loopback port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(StackError::io("reading a bound port"))
}

/// A free TCP port on 127.0.0.1 below the kernel's ephemeral range (`ip_local_port_range`), for a
/// listener that starts later or starts again: every component of the stacks and the app under test.
///
/// A port from [`free_port`] is an ephemeral one: between its release and the component's bind (or while a
/// killed component is down), any outgoing connection on the host (a readiness poll, a load generator, an
/// exporter retrying, another test) may get it as its local port and keep it, and the component then fails
/// with "address already in use". The kernel never picks a port below that range for an outgoing
/// connection. Candidates are drawn at random from 20000 up to the range's start and checked by binding;
/// when none is free, [`free_port`]'s answer is returned.
pub fn listener_port() -> Result<u16, StackError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32768);
    let low = 20000;
    if ephemeral_start <= low + 100 {
        return free_port();
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    for _ in 0..200 {
        // splitmix64 of (seed, draw number): a different candidate each draw, in this process and across
        // processes started at the same time.
        let mut z = seed.wrapping_add(
            DRAWS
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let port = (low + z % (ephemeral_start - low)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    free_port()
}

/// Resident set size of a process in bytes (from /proc), if it is running.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Polls `url` until it answers 2xx, the process exits, or `timeout` passes.
pub fn wait_ready(
    process: &mut Process,
    url: &str,
    timeout: Duration,
) -> Result<Duration, StackError> {
    let start = Instant::now();
    let client = crate::http::client_with_timeout(Duration::from_secs(2))?;
    let mut last = String::new();
    let ready = eventually(timeout, Duration::from_millis(100), || {
        if let Some(status) = process.exited() {
            return Some(Err(format!("exited while starting ({status})")));
        }
        last = match client.get(url).send() {
            Ok(resp) if resp.status().is_success() => return Some(Ok(start.elapsed())),
            Ok(resp) => format!("{url} answered {}", resp.status()),
            Err(e) => format!("{url}: {e}"),
        };
        None
    })
    .unwrap_or_else(|| Err(format!("not ready after {timeout:?}: {last}")));
    ready.map_err(|reason| StackError::NotReady {
        name: process.name().to_string(),
        reason,
        log: process.log().to_path_buf(),
        tail: process.log_tail(30),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_port_is_free_and_below_the_ephemeral_range() {
        let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let a = listener_port().expect("a port");
        let b = listener_port().expect("another port");
        assert!(a < start && b < start, "{a}, {b} not below {start}");
        assert!(std::net::TcpListener::bind(("127.0.0.1", a)).is_ok());
    }
}
