//! Nudging on the clock: every `nudges.check_interval`, on the holder of
//! the background lease, the nudges due are sent (`campaigns::notify`).

use std::sync::Arc;
use std::time::Duration;

use crate::campaigns::notify::Notifier;
use crate::store::{Store, now_ms};

/// Checks for nudges due every `check_interval` ("0s": never) once the
/// catalog has been read, while this process holds the background lease.
pub fn spawn(
    store: Arc<Store>,
    notifier: Arc<Notifier>,
    refresher: Arc<super::Refresher>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = notifier.check_interval();
        if every.is_zero() {
            return;
        }
        while !refresher.is_ready() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        loop {
            if !super::holds_background(&store).await {
                tokio::time::sleep(super::LEASE_CHECK).await;
                continue;
            }
            match notifier.run_due(now_ms()).await {
                Ok(sent) if !sent.is_empty() => tracing::info!(nudges = sent.len(), "nudges sent"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot send nudges"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
