//! Background work on a clock: refreshing every catalog location, on an
//! interval and on demand.
//!
//! Refreshes run on blocking threads (they read files and write SQLite) and
//! one at a time, so the API never waits on the writer for long and two
//! refreshes never contend.
//!
//! Of several processes sharing one store, only the holder of the
//! [`BACKGROUND`] lease refreshes on the clock and polls plugins; the
//! others ask for the lease every [`LEASE_CHECK`] and take over when its
//! holder dies. A refresh someone asks for runs where it was asked.

pub mod insights;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};

use crate::ingest::Ingestor;
use crate::store::{Location, RefreshSummary, Store};

/// The lease on refreshing and polling on the clock.
pub const BACKGROUND: &str = "background";

/// How often a process without the lease asks for it.
pub const LEASE_CHECK: Duration = Duration::from_secs(5);

/// Whether this process holds the [`BACKGROUND`] lease (taking it when it
/// is free); a store that cannot say is taken as a no.
pub async fn holds_background(store: &Arc<Store>) -> bool {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.leases.holds(BACKGROUND)).await {
        Ok(Ok(held)) => held,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot ask for the background lease; leaving background work to others");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "asking for the background lease panicked");
            false
        }
    }
}

/// Refreshes locations; shared by the loop and the API.
pub struct Refresher {
    store: Arc<Store>,
    ingestor: Arc<Ingestor>,
    running: Mutex<()>,
    wake: Notify,
    ready: AtomicBool,
    /// Whether this process held the background lease at its last check.
    leading: AtomicBool,
}

impl Refresher {
    pub fn new(store: Arc<Store>, ingestor: Arc<Ingestor>) -> Arc<Self> {
        Arc::new(Refresher {
            store,
            ingestor,
            running: Mutex::new(()),
            wake: Notify::new(),
            ready: AtomicBool::new(false),
            leading: AtomicBool::new(false),
        })
    }

    /// True once every location has been read at least once, or once
    /// another process is found reading them.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether this process does the background work of its store.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
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
        // The first read of a location is its arrival, not a change.
        let first = location.last_refresh_ms.is_none();
        let location_id = location.id.clone();
        let summary = tokio::task::spawn_blocking(move || ingestor.refresh(&store, &location))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r.map_err(anyhow::Error::from));
        crate::metrics::refresh(started.elapsed().as_secs_f64(), summary.is_err());
        let summary = summary?;
        if !first {
            self.record_change(&location_id, &target, &summary).await;
        }
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

    /// Puts a catalog change in the activity feed: "Catalog: 2 added,
    /// 1 changed in services/payments/catalog-info.yaml".
    async fn record_change(&self, location_id: &str, target: &str, summary: &RefreshSummary) {
        let parts: Vec<String> = [
            (summary.added, "added"),
            (summary.updated, "changed"),
            (summary.removed, "removed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            return;
        }
        let at = crate::store::now_ms();
        let event = crate::store::EventRecord {
            source: "catalog".into(),
            id: format!("{location_id}:{at}"),
            kind: "catalog".into(),
            entity_ref: None,
            title: format!("Catalog: {} in {target}", parts.join(", ")),
            url: None,
            at_ms: at,
            tone: if summary.removed > 0 {
                "warning"
            } else {
                "info"
            }
            .into(),
            actor: None,
            owner: None,
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.events.put_events(&[event])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a catalog change"),
            Err(e) => tracing::warn!(error = %e, "recording a catalog change panicked"),
        }
    }

    /// Refreshes every location once, logging (not returning) failures so one
    /// bad location never stops the others.
    pub async fn refresh_all(&self) {
        let locations = {
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.locations.locations()).await {
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

    /// Runs forever: a full refresh now, then every `interval` while this
    /// process holds the background lease, and on [`Refresher::wake`].
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut asked = false;
            loop {
                let leading = holds_background(&this.store).await;
                this.leading.store(leading, Ordering::Release);
                if leading || asked {
                    this.refresh_all().await;
                } else {
                    // Another process refreshes; this one serves what it
                    // stored.
                    this.ready.store(true, Ordering::Release);
                }
                let wait = if leading {
                    interval
                } else {
                    interval.min(LEASE_CHECK)
                };
                asked = tokio::select! {
                    _ = tokio::time::sleep(wait) => false,
                    _ = this.wake.notified() => true,
                };
            }
        })
    }
}
