//! A batching line writer: callers append whole lines to a shared buffer (a short lock and a copy),
//! a background thread writes the buffer out in large chunks, at least every 100 ms.
//!
//! Why not tracing-appender's non-blocking writer: it sends each line through a channel and wakes
//! the writer thread for it, a futex system call per line when the service logs a line per request.
//! In the server-layer benchmark that wake-up was the largest single cost of a request
//! (docs/BENCHMARKS.md). Here a caller never makes a system call unless the buffer crosses the
//! flush threshold, and the writer makes one `write` per chunk.
//!
//! Lines are appended whole and the buffer is written out whole, so a line is never split, and a
//! rotating file (`otelbricks_logfiles::RotatingFile` rotates before a write that would exceed the
//! limit) rotates between chunks. When the buffer holds `capacity` bytes the writer is behind: lossless writers make the
//! caller wait for room; lossy ones drop the line and count it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::json::LineSink;

/// Bytes after which the writer is woken at once instead of at its next tick.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Longest a line waits in memory.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

struct State {
    buf: Vec<u8>,
    /// Set when the owner is dropped: write what is left and stop.
    closing: bool,
    /// A writer pass is in progress (so `flush` can wait for it).
    writing: bool,
    /// Number of completed passes, to let `flush` wait for one that started after it was called.
    passes: u64,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when data crosses the threshold or on close.
    data: Condvar,
    /// Signalled after each pass (room in the buffer, flush progress).
    done: Condvar,
    capacity: usize,
    lossy: bool,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    stopped: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this module; the buffer
        // is still a valid Vec, so carry on with it rather than poison every later log call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writing end; cheap to clone, shared by every thread that logs.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("capacity", &self.shared.capacity)
            .field("lossy", &self.shared.lossy)
            .finish()
    }
}

/// Owns the writer thread: flushes and joins it when dropped (bounded by `close`'s timeout).
pub struct BatchWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for BatchWriterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriterGuard").finish_non_exhaustive()
    }
}

impl BatchWriter {
    /// Starts a writer thread named `name` writing to `out`. `capacity` bounds the bytes held in
    /// memory; `lossy` chooses between waiting and dropping when it is reached.
    pub fn spawn<W: Write + Send + 'static>(
        name: &str,
        out: W,
        capacity: usize,
        lossy: bool,
    ) -> std::io::Result<(BatchWriter, BatchWriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(FLUSH_THRESHOLD * 2),
                closing: false,
                writing: false,
                passes: 0,
            }),
            data: Condvar::new(),
            done: Condvar::new(),
            capacity: capacity.max(FLUSH_THRESHOLD * 2),
            lossy,
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(worker, out))?;
        Ok((
            BatchWriter {
                shared: shared.clone(),
            },
            BatchWriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Lines dropped because the buffer was full (lossy writers only) or the writer had stopped.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Failed `write` calls of the writer thread (e.g. a full disk); their bytes are lost.
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }

    /// Waits until everything appended before this call has been written, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        // Wait for a pass that starts after now: the one running may have taken an older buffer.
        let target = st.passes + if st.writing { 2 } else { 1 };
        self.shared.data.notify_one();
        while st.passes < target && !self.shared.stopped.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.shared.data.notify_one();
            st = match self.shared.done.wait_timeout(st, left.min(FLUSH_INTERVAL)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

impl LineSink for BatchWriter {
    fn write_line(&self, line: &[u8]) {
        let shared = &*self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut st = shared.lock();
        while st.buf.len() + line.len() > shared.capacity && !st.buf.is_empty() {
            if shared.lossy || st.closing {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            shared.data.notify_one();
            st = match shared.done.wait_timeout(st, FLUSH_INTERVAL) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
            if shared.stopped.load(Ordering::Acquire) {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let before = st.buf.len();
        st.buf.extend_from_slice(line);
        if before < FLUSH_THRESHOLD && st.buf.len() >= FLUSH_THRESHOLD {
            shared.data.notify_one();
        }
    }
}

fn run<W: Write>(shared: Arc<Shared>, mut out: W) {
    let mut spare: Vec<u8> = Vec::with_capacity(FLUSH_THRESHOLD * 2);
    loop {
        let closing = {
            let mut st = shared.lock();
            if st.buf.len() < FLUSH_THRESHOLD && !st.closing {
                st = match shared.data.wait_timeout(st, FLUSH_INTERVAL) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            std::mem::swap(&mut st.buf, &mut spare);
            st.writing = true;
            st.closing
        };
        if !spare.is_empty() {
            if out.write_all(&spare).is_err() {
                shared.write_errors.fetch_add(1, Ordering::Relaxed);
            }
            spare.clear();
            if spare.capacity() > shared.capacity {
                spare = Vec::with_capacity(FLUSH_THRESHOLD * 2);
            }
        }
        let _ = out.flush();
        {
            let mut st = shared.lock();
            st.writing = false;
            st.passes += 1;
            let finished = closing && st.buf.is_empty();
            if finished {
                shared.stopped.store(true, Ordering::Release);
            }
            shared.done.notify_all();
            if finished {
                return;
            }
        }
    }
}

impl BatchWriterGuard {
    /// Writes what is buffered and stops the thread, waiting at most `timeout` for it.
    pub fn close(mut self, timeout: Duration) -> bool {
        self.close_inner(timeout)
    }

    fn close_inner(&mut self, timeout: Duration) -> bool {
        let Some(thread) = self.thread.take() else {
            return true;
        };
        {
            let mut st = self.shared.lock();
            st.closing = true;
            self.shared.data.notify_one();
        }
        let deadline = Instant::now() + timeout;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                return false; // the thread finishes on its own; the process may exit first
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Dropping the writer (e.g. a `RotatingFile`) inside the thread waited for its compression.
        thread.join().is_ok()
    }
}

impl Drop for BatchWriterGuard {
    fn drop(&mut self) {
        self.close_inner(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Mem(Arc<Mutex<Vec<u8>>>);
    impl Write for Mem {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lossless_writer_keeps_every_line_from_many_threads_in_one_piece() {
        let mem = Mem::default();
        let (w, guard) = BatchWriter::spawn("t", mem.clone(), 0, false).expect("spawn");
        std::thread::scope(|s| {
            for t in 0..4 {
                let w = w.clone();
                s.spawn(move || {
                    for i in 0..20_000 {
                        w.write_line(format!("{t}:{i}:{}\n", "x".repeat(i % 50)).as_bytes());
                    }
                });
            }
        });
        assert!(guard.close(Duration::from_secs(10)));
        let data = mem.0.lock().expect("lock").clone();
        let text = String::from_utf8(data).expect("utf8");
        let mut count = 0;
        for line in text.lines() {
            let mut parts = line.split(':');
            let (_, i, pad) = (
                parts.next(),
                parts.next().expect("i"),
                parts.next().expect("pad"),
            );
            let i: usize = i.parse().expect("number");
            assert_eq!(pad.len(), i % 50, "line split or merged: {line}");
            count += 1;
        }
        assert_eq!(count, 80_000);
        assert_eq!(w.dropped_lines(), 0);
    }

    #[test]
    fn flush_waits_until_earlier_lines_are_written() {
        let mem = Mem::default();
        let (w, _guard) = BatchWriter::spawn("t", mem.clone(), 0, false).expect("spawn");
        w.write_line(b"one\n");
        assert!(w.flush(Duration::from_secs(5)));
        assert_eq!(mem.0.lock().expect("lock").as_slice(), b"one\n");
    }

    #[test]
    fn lossy_writer_drops_and_counts_when_the_writer_is_stuck() {
        struct Stuck(Arc<AtomicBool>);
        impl Write for Stuck {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                while !self.0.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let release = Arc::new(AtomicBool::new(false));
        let (w, guard) = BatchWriter::spawn("t", Stuck(release.clone()), 0, true).expect("spawn");
        let line = vec![b'x'; 1023];
        for _ in 0..10_000 {
            w.write_line(&line);
        }
        assert!(w.dropped_lines() > 0, "a full buffer drops in lossy mode");
        release.store(true, Ordering::Relaxed);
        assert!(guard.close(Duration::from_secs(10)));
    }
}
