//! Background work on a clock: refreshing every catalog location, on an
//! interval and on demand.
//!
//! Refreshes run on blocking threads (they read files and write SQLite) and
//! one at a time, so the API never waits on the writer for long and two
//! refreshes never contend. Locations registered through the API are
//! queued and read by one task in groups ([`Refresher::queue`]): a client
//! registering 200 files in a row gets each answer at once, and the store
//! commits them a few times rather than 200.
//!
//! Of several processes sharing one store, only the holder of the
//! [`BACKGROUND`] lease refreshes on the clock and polls plugins; the
//! others ask for the lease every [`LEASE_CHECK`] and take over when its
//! holder dies. A refresh someone asks for runs where it was asked.

pub mod history;
pub mod insights;
pub mod nudges;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, oneshot};

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
    /// Registered locations waiting for their first read, each with whom
    /// to tell how it went.
    queued: std::sync::Mutex<Vec<(Location, Option<Reply>)>>,
    /// Partial refreshes that landed while a refresh held `running`: that
    /// refresh may have read their files before the change and commit
    /// after them, so it applies them again before it lets go.
    landed: std::sync::Mutex<Vec<(Location, crate::ingest::Page)>>,
}

/// Where a queued refresh's outcome goes.
pub type Reply = oneshot::Sender<Result<RefreshSummary, String>>;

impl Refresher {
    pub fn new(store: Arc<Store>, ingestor: Arc<Ingestor>) -> Arc<Self> {
        Arc::new(Refresher {
            store,
            ingestor,
            running: Mutex::new(()),
            wake: Notify::new(),
            ready: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            queued: std::sync::Mutex::new(Vec::new()),
            landed: std::sync::Mutex::new(Vec::new()),
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
        let mut done = self.refresh_group(vec![location]).await;
        self.apply_landed().await;
        done.pop().expect("one location, one outcome")
    }

    /// Refreshes part of a provider location now: what `page` holds
    /// replaces what it gave under the same keys, the rest is kept, and
    /// the provider is not asked (`Ingestor::refresh_page`). For an
    /// accepted suggestion or a file a webhook named: in the catalog (and
    /// the change feed search follows) when this answers, without waiting
    /// for a full refresh that may be running. Such a refresh may have
    /// read the file before the change and commit after this, so it is
    /// told to apply the page again when it ends.
    pub async fn refresh_page(
        &self,
        location: Location,
        page: crate::ingest::Page,
    ) -> anyhow::Result<RefreshSummary> {
        if self.running.try_lock().is_err() {
            self.landed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((location.clone(), page.clone()));
        }
        let summary = self.apply_page(location.clone(), page).await?;
        self.record_change(&location.id, &location.target, &summary)
            .await;
        Ok(summary)
    }

    async fn apply_page(
        &self,
        location: Location,
        page: crate::ingest::Page,
    ) -> anyhow::Result<RefreshSummary> {
        let (store, ingestor) = (self.store.clone(), self.ingestor.clone());
        let started = Instant::now();
        let summary =
            tokio::task::spawn_blocking(move || ingestor.refresh_page(&store, &location, &page))
                .await
                .map_err(|e| anyhow::anyhow!("the refresh panicked: {e}"))?;
        crate::metrics::refresh(started.elapsed().as_secs_f64(), summary.is_err());
        Ok(summary?)
    }

    /// Applies again the partial refreshes that landed while the caller
    /// (holding `running`) refreshed.
    async fn apply_landed(&self) {
        let landed = std::mem::take(&mut *self.landed.lock().unwrap_or_else(|p| p.into_inner()));
        for (location, page) in landed {
            if let Err(e) = self.apply_page(location.clone(), page).await {
                tracing::warn!(location = %location.target, error = %e, "cannot apply a change again after a refresh");
            }
        }
    }

    /// Queues a registered location for its first read and answers at
    /// once; `reply`, when given, hears how it went. One task reads what
    /// is queued, in groups that commit together.
    pub fn queue(self: &Arc<Self>, location: Location, reply: Option<Reply>) {
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((location, reply));
        let this = self.clone();
        tokio::spawn(async move {
            // Whoever gets the lock first takes everything queued by then;
            // the tasks after it find the queue empty.
            let _guard = this.running.lock().await;
            let queued =
                std::mem::take(&mut *this.queued.lock().unwrap_or_else(|p| p.into_inner()));
            if queued.is_empty() {
                return;
            }
            let (locations, replies): (Vec<_>, Vec<_>) = queued.into_iter().unzip();
            let targets: Vec<String> = locations.iter().map(|l| l.target.clone()).collect();
            let done = this.refresh_group(locations).await;
            this.apply_landed().await;
            for ((outcome, reply), target) in done.into_iter().zip(replies).zip(targets) {
                match (outcome, reply) {
                    (outcome, Some(reply)) => {
                        let _ = reply.send(outcome.map_err(|e| format!("{e:#}")));
                    }
                    (Err(e), None) => {
                        tracing::error!(location = %target, error = %e, "cannot read a registered location; it is read again at the next refresh");
                    }
                    (Ok(_), None) => {}
                }
            }
        });
    }

    /// Queues a registered location (as [`Refresher::queue`]) and answers
    /// once it has been read, with the others queued meanwhile.
    pub async fn queue_and_wait(
        self: &Arc<Self>,
        location: Location,
    ) -> anyhow::Result<RefreshSummary> {
        let (reply, read) = oneshot::channel();
        self.queue(location, Some(reply));
        read.await
            .map_err(|_| anyhow::anyhow!("the refresh of the new location was dropped"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Refreshes `locations` in groups that commit together (the caller
    /// holds `running`); each location's outcome, in order.
    async fn refresh_group(&self, locations: Vec<Location>) -> Vec<anyhow::Result<RefreshSummary>> {
        let store = self.store.clone();
        let ingestor = self.ingestor.clone();
        let started = Instant::now();
        let count = locations.len();
        let (locations, done) = match tokio::task::spawn_blocking(move || {
            let done = ingestor.refresh_group(&store, &locations);
            (locations, done)
        })
        .await
        {
            Ok(both) => both,
            Err(e) => {
                let why = format!("the refresh panicked: {e}");
                return (0..count)
                    .map(|_| Err(anyhow::anyhow!(why.clone())))
                    .collect();
            }
        };
        // A location read with others is counted with its share of the
        // time.
        let each = started.elapsed().as_secs_f64() / count.max(1) as f64;
        let mut out = Vec::with_capacity(count);
        for (location, summary) in locations.into_iter().zip(done) {
            crate::metrics::refresh(each, summary.is_err());
            let Ok(summary) = summary else {
                out.push(summary.map_err(anyhow::Error::from));
                continue;
            };
            // The first read of a location is its arrival, not a change.
            if location.last_refresh_ms.is_some() {
                self.record_change(&location.id, &location.target, &summary)
                    .await;
            }
            tracing::info!(
                location = %location.target,
                added = summary.added,
                updated = summary.updated,
                unchanged = summary.unchanged,
                removed = summary.removed,
                kept_invalid = summary.kept_invalid,
                problems = summary.problems,
                ms = started.elapsed().as_millis() as u64,
                group = count,
                "refreshed location"
            );
            out.push(Ok(summary));
        }
        out
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
        let targets: Vec<String> = locations.iter().map(|l| l.target.clone()).collect();
        let done = {
            let _guard = self.running.lock().await;
            let done = self.refresh_group(locations).await;
            self.apply_landed().await;
            done
        };
        for (outcome, target) in done.into_iter().zip(targets) {
            if let Err(e) = outcome {
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
