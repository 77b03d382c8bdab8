//! Recording campaigns' history: every `campaigns.record_interval`, on
//! the holder of the background lease, each campaign's targets are
//! evaluated and what changed is recorded, but only when the catalog's
//! change feed or the fact history moved since the last look (or a day
//! passed). Once a day the history is pruned to `campaigns.history_days`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::campaigns::history;
use crate::store::{Store, StoreError, now_ms};

const DAY_MS: i64 = 86_400_000;

/// What the recorder saw last, so an unchanged store costs two reads.
#[derive(Default)]
struct Seen {
    /// The change feed's and the fact history's heads.
    heads: Option<(i64, i64)>,
    recorded_ms: i64,
    pruned_day: i64,
}

pub struct Recorder {
    store: Arc<Store>,
    keep_days: u32,
    seen: Mutex<Seen>,
}

impl Recorder {
    pub fn new(store: Arc<Store>, keep_days: u32) -> Arc<Recorder> {
        Arc::new(Recorder {
            store,
            keep_days,
            seen: Mutex::new(Seen::default()),
        })
    }

    /// Records every campaign's changes if the catalog or a fact moved
    /// (or a day passed) since the last look, and prunes once a day;
    /// answers how many targets changed. Blocking.
    pub fn tick(&self, now: i64) -> Result<usize, StoreError> {
        let heads = (
            self.store.changes.last_entity_change()?,
            self.store.facts.fact_history_head()?,
        );
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = 0;
        if seen.heads != Some(heads) || now - seen.recorded_ms >= DAY_MS {
            changed = history::record_all(&self.store, now)?;
            seen.heads = Some(heads);
            seen.recorded_ms = now;
        }
        if seen.pruned_day != now / DAY_MS {
            let removed = history::prune(&self.store, self.keep_days, now)?;
            tracing::debug!(removed, "campaign history pruned");
            seen.pruned_day = now / DAY_MS;
        }
        Ok(changed)
    }

    /// Ticks every `every` ("0s": never) once the catalog has been read,
    /// while this process holds the background lease.
    pub fn spawn(
        self: &Arc<Self>,
        refresher: Arc<super::Refresher>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            if every.is_zero() {
                return;
            }
            while !refresher.is_ready() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            loop {
                if !super::holds_background(&this.store).await {
                    tokio::time::sleep(super::LEASE_CHECK).await;
                    continue;
                }
                let me = this.clone();
                match tokio::task::spawn_blocking(move || me.tick(now_ms())).await {
                    Ok(Ok(changed)) if changed > 0 => {
                        tracing::info!(changed, "campaign history recorded");
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot record campaign history"),
                    Err(e) => tracing::warn!(error = %e, "recording campaign history panicked"),
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
