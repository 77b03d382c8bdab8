//! Polling plugins for facts and events: every `plugins.facts_interval`
//! each plugin that exports `facts` is asked about every entity, and every
//! `plugins.events_interval` each plugin that exports `events` is asked
//! what happened since its last answer. Each call has the plugin's
//! deadline; intervals get up to 10% jitter so plugins and upstreams are
//! not hit in lockstep. A failing plugin costs only its own calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::plugins::bindings::greenroom::plugin::types;
use crate::plugins::host::entity_record;
use crate::plugins::{CallError, Plugins};
use crate::store::{FactRecord, FactValue, Store, now_ms};

/// Entities read per page while polling facts.
const PAGE: usize = 500;

/// How far back the first events poll of a plugin reaches, and how much
/// each later poll overlaps the previous one (events that arrive late).
const FIRST_LOOK: Duration = Duration::from_secs(24 * 3600);
const OVERLAP: Duration = Duration::from_secs(300);

pub struct Insights {
    store: Arc<Store>,
    plugins: Arc<Plugins>,
    /// Per plugin id: the time its last events poll started.
    last_events: Mutex<HashMap<String, u64>>,
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    pub calls: usize,
    pub stored: usize,
    pub failures: usize,
}

impl Insights {
    pub fn new(store: Arc<Store>, plugins: Arc<Plugins>) -> Arc<Insights> {
        Arc::new(Insights {
            store,
            plugins,
            last_events: Mutex::new(HashMap::new()),
        })
    }

    /// Asks every facts plugin about every entity and stores the answers.
    /// Blocking: run it on a blocking thread.
    pub fn poll_facts(&self) -> PollSummary {
        self.poll_facts_of(None)
    }

    /// Like [`Insights::poll_facts`], for plugin `only` alone when given.
    pub fn poll_facts_of(&self, only: Option<&str>) -> PollSummary {
        let plugins: Vec<_> = self
            .plugins
            .enabled()
            .into_iter()
            .filter(|p| p.exports_facts() && only.is_none_or(|id| p.manifest.id == id))
            .collect();
        let mut summary = PollSummary::default();
        if plugins.is_empty() {
            return summary;
        }
        let limits = self.plugins.limits();
        let walked = self.store.catalog.each_entity(PAGE, &mut |json| {
            let Some(entity) = entity_record(json) else {
                return;
            };
            for plugin in &plugins {
                summary.calls += 1;
                match plugin.facts(&entity, &limits) {
                    Ok(facts) => {
                        summary.stored += self.store_facts(&plugin.manifest.id, &entity, facts);
                    }
                    Err(CallError::NotApplicable) => {}
                    Err(e) => {
                        summary.failures += 1;
                        tracing::debug!(plugin = %plugin.manifest.id, entity = %entity.entity_ref, error = %e, "facts call failed");
                    }
                }
            }
        });
        if let Err(e) = walked {
            tracing::error!(error = %e, "facts poll cannot read the catalog");
        }
        summary
    }

    /// A plugin's facts about `entity`, stored by the rules every fact
    /// obeys (`crate::insights`).
    fn store_facts(&self, plugin: &str, entity: &types::Entity, facts: Vec<types::Fact>) -> usize {
        let now = now_ms();
        let records = facts
            .into_iter()
            .map(|f| FactRecord {
                entity_ref: entity.entity_ref.clone(),
                name: f.name,
                value: match f.value {
                    types::FactValue::Number(n) => FactValue::Number(n),
                    types::FactValue::Text(t) => FactValue::Text(t),
                    types::FactValue::Flag(b) => FactValue::Flag(b),
                },
                source: format!("plugin:{plugin}"),
                url: f.url,
                at_ms: now,
            })
            .collect();
        crate::insights::put_plugin_facts(&self.store, plugin, records)
    }

    /// Asks every events plugin what happened since its last poll (with
    /// some overlap) and stores what is new. Blocking.
    pub fn poll_events(&self) -> PollSummary {
        self.poll_events_of(None)
    }

    /// Like [`Insights::poll_events`], for plugin `only` alone when given.
    pub fn poll_events_of(&self, only: Option<&str>) -> PollSummary {
        let limits = self.plugins.limits();
        let mut summary = PollSummary::default();
        for plugin in self
            .plugins
            .enabled()
            .into_iter()
            .filter(|p| p.exports_events() && only.is_none_or(|id| p.manifest.id == id))
        {
            let id = plugin.manifest.id.clone();
            let started = now_ms() as u64;
            let since = self
                .last_events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .map(|t| t.saturating_sub(OVERLAP.as_millis() as u64))
                .unwrap_or(started - FIRST_LOOK.as_millis() as u64);
            summary.calls += 1;
            match plugin.events(since, &limits) {
                Ok(events) => {
                    let records = events
                        .into_iter()
                        .map(|e| crate::plugins::event_record(&id, e))
                        .collect();
                    summary.stored += crate::insights::put_plugin_events(&self.store, &id, records);
                    self.last_events
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, started);
                }
                Err(CallError::NotApplicable) => {}
                Err(e) => {
                    summary.failures += 1;
                    tracing::warn!(plugin = %id, error = %e, "events call failed");
                }
            }
        }
        summary
    }

    /// Polls on the intervals, starting once the catalog has been read
    /// (plugins asked before would see no entities), until the task is
    /// dropped. A zero interval turns that poll off.
    pub fn spawn(
        self: &Arc<Self>,
        refresher: Arc<super::Refresher>,
        facts_every: Duration,
        events_every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            while !refresher.is_ready() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // A year away stands for "never".
            let never = || tokio::time::Instant::now() + Duration::from_secs(365 * 86_400);
            let start = |every: Duration| {
                if every.is_zero() {
                    never()
                } else {
                    tokio::time::Instant::now()
                }
            };
            let mut next_facts = start(facts_every);
            let mut next_events = start(events_every);
            loop {
                if !super::holds_background(&this.store).await {
                    // Another process polls; ask again later.
                    tokio::time::sleep(super::LEASE_CHECK).await;
                    continue;
                }
                let now = tokio::time::Instant::now();
                if now >= next_events && !events_every.is_zero() {
                    let me = this.clone();
                    let s = tokio::task::spawn_blocking(move || me.poll_events())
                        .await
                        .unwrap_or_default();
                    tracing::debug!(?s, "events polled");
                    next_events = tokio::time::Instant::now() + jitter(events_every);
                }
                if now >= next_facts && !facts_every.is_zero() {
                    let me = this.clone();
                    let s = tokio::task::spawn_blocking(move || me.poll_facts())
                        .await
                        .unwrap_or_default();
                    tracing::debug!(?s, "facts polled");
                    next_facts = tokio::time::Instant::now() + jitter(facts_every);
                }
                tokio::time::sleep_until(next_facts.min(next_events)).await;
            }
        })
    }
}

/// `every` plus up to 10% more, so pollers do not march in step.
fn jitter(every: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    every + every.mul_f64(f64::from(nanos % 1000) / 10_000.0)
}
