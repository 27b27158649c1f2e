//! The runtime of the background pieces, on its own thread.

use std::time::Duration;

use crate::TelemetryError;

/// A current-thread Tokio runtime on its own thread: serves the admin listener and drives the gRPC
/// exporters, independent of the application's runtime (or its absence).
pub(crate) struct BackgroundRuntime {
    pub handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundRuntime {
    pub(crate) fn start() -> Result<Self, TelemetryError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("telemetry-rt")
            .build()
            .map_err(TelemetryError::Runtime)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("telemetry-rt".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(TelemetryError::Runtime)?;
        Ok(BackgroundRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(super) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}
