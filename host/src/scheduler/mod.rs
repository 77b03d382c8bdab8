//! Background work on a clock: refreshing every catalog location, on an
//! interval and on demand.
//!
//! Refreshes run on blocking threads (they read files and write SQLite) and
//! one at a time, so the API never waits on the writer for long and two
//! refreshes never contend.

pub mod insights;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};

use crate::ingest::Ingestor;
use crate::store::{Location, RefreshSummary, Store};

/// Refreshes locations; shared by the loop and the API.
pub struct Refresher {
    store: Arc<Store>,
    ingestor: Arc<Ingestor>,
    running: Mutex<()>,
    wake: Notify,
    ready: AtomicBool,
}

impl Refresher {
    pub fn new(store: Arc<Store>, ingestor: Arc<Ingestor>) -> Arc<Self> {
        Arc::new(Refresher {
            store,
            ingestor,
            running: Mutex::new(()),
            wake: Notify::new(),
            ready: AtomicBool::new(false),
        })
    }

    /// True once every location has been read at least once.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn ingestor(&self) -> &Arc<Ingestor> {
        &self.ingestor
    }

    /// Refreshes one location now.
    pub async fn refresh(&self, location: Location) -> anyhow::Result<RefreshSummary> {
        let _guard = self.running.lock().await;
        let store = self.store.clone();
        let ingestor = self.ingestor.clone();
        let started = Instant::now();
        let target = location.target.clone();
        let summary =
            tokio::task::spawn_blocking(move || ingestor.refresh(&store, &location)).await??;
        tracing::info!(
            location = %target,
            added = summary.added,
            updated = summary.updated,
            unchanged = summary.unchanged,
            removed = summary.removed,
            kept_invalid = summary.kept_invalid,
            problems = summary.problems,
            ms = started.elapsed().as_millis() as u64,
            "refreshed location"
        );
        Ok(summary)
    }

    /// Refreshes every location once, logging (not returning) failures so one
    /// bad location never stops the others.
    pub async fn refresh_all(&self) {
        let locations = {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.locations()).await {
                Ok(Ok(l)) => l,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot list locations");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "listing locations panicked");
                    return;
                }
            }
        };
        for location in locations {
            let target = location.target.clone();
            if let Err(e) = self.refresh(location).await {
                tracing::error!(location = %target, error = %e, "refresh failed; the previous state stays served");
            }
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Asks the loop to run a full refresh soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs forever: a full refresh now, then every `interval` or on
    /// [`Refresher::wake`].
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                this.refresh_all().await;
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = this.wake.notified() => {}
                }
            }
        })
    }
}
