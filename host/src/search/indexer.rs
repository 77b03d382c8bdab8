//! Keeping the search index in step with the catalog: a full build when
//! the index is new, then every few hundred milliseconds the entities
//! named in `entity_changes` are indexed again (with the documents plugins
//! give for them) or removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{SearchDoc, SearchIndex};
use crate::catalog::EntityRef;
use crate::plugins::host::entity_record;
use crate::plugins::{CallError, Plugins};
use crate::store::Store;

/// How often the catalog's changes are picked up.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);

/// Entities read per page during a full build.
const PAGE: usize = 1000;

/// Changes behind past which the index is built again (or past a quarter
/// of the documents, when more).
const REBUILD_AFTER: u64 = 20_000;

/// How long the catalog's changes wait for a refresh to end, at most.
pub const MAX_DEFER: Duration = Duration::from_secs(30);

pub struct Indexer {
    pub index: SearchIndex,
    store: Arc<Store>,
    plugins: Arc<Plugins>,
    /// The last `entity_changes` row reflected in the index.
    last_seq: AtomicI64,
    /// A build and an update never interleave.
    busy: std::sync::Mutex<()>,
    /// Where the loop builds and updates, at low priority.
    background: super::background::Background,
    /// Whether the catalog's writer is busy (a refresh under way).
    writer_busy: std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
}

/// When following the catalog waits for its writer. On two cores,
/// indexing a large import as each group of it committed slowed the
/// writer by a quarter even at low priority (100,000 entities through the
/// API: 11.8 and 12.1 s with it switched off, 14.6 to 17.2 s with it),
/// and every other write waits for that writer. So changes wait while a
/// refresh runs and until the writer has been idle for [`SETTLE`] (the
/// gap between two groups of an import is not the end of it), for at
/// most [`MAX_DEFER`] at a time; a large import is then indexed once,
/// from pages, when it ends.
#[derive(Debug, Default)]
pub struct Deferral {
    /// Since when changes have waited.
    since: Option<Instant>,
    /// When the writer was last seen busy.
    busy_at: Option<Instant>,
}

/// How long the writer stays idle before changes are followed again.
pub const SETTLE: Duration = Duration::from_secs(1);

impl Deferral {
    /// Whether to leave the changes for later, the writer being `busy`
    /// at `now`.
    pub fn defer(&mut self, busy: bool, now: Instant, max: Duration) -> bool {
        if busy {
            self.busy_at = Some(now);
        }
        let settled = self
            .busy_at
            .is_none_or(|at| now.duration_since(at) >= SETTLE);
        match self.since {
            _ if settled => {
                self.since = None;
                false
            }
            None => {
                self.since = Some(now);
                true
            }
            Some(since) if now.duration_since(since) < max => true,
            // Waited long enough: follow now, and wait again after.
            Some(_) => {
                self.since = None;
                false
            }
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// An entity as a search document: what people type to find it.
pub fn entity_doc(entity: &Value) -> Option<SearchDoc> {
    let kind = entity["kind"].as_str()?;
    let meta = &entity["metadata"];
    let name = meta["name"].as_str()?;
    let namespace = meta["namespace"].as_str().unwrap_or("default");
    let r = EntityRef::new(kind, namespace, name);
    let spec = &entity["spec"];
    let owner = spec["owner"]
        .as_str()
        .and_then(|o| EntityRef::parse(o, Some("group"), namespace).ok())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let mut body = Vec::new();
    for key in ["system", "domain", "lifecycle", "type"] {
        if let Some(v) = spec[key].as_str() {
            body.push(v.to_string());
        }
    }
    if let Some(links) = meta["links"].as_array() {
        for l in links {
            body.push(text(&l["title"]));
            body.push(text(&l["url"]));
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        for (k, v) in annotations {
            // Where an entity came from is noise in search.
            if !k.starts_with("backstage.io/managed-by")
                && !k.starts_with("backstage.io/view-url")
                && !k.starts_with("backstage.io/edit-url")
            {
                body.push(text(v));
            }
        }
    }
    if let Some(profile) = spec["profile"].as_object() {
        for v in profile.values() {
            body.push(text(v));
        }
    }
    Some(SearchDoc {
        id: format!("entity:{r}"),
        doc_type: "entity".into(),
        entity_ref: r.to_string(),
        kind: r.kind.clone(),
        owner,
        spec_type: spec["type"].as_str().unwrap_or_default().to_lowercase(),
        name: name.to_string(),
        title: text(&meta["title"]),
        tags: meta["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        description: text(&meta["description"]),
        body: body.join(" "),
        location: format!("/catalog/{}/{}/{}", r.namespace, r.kind, r.name),
    })
}

impl Indexer {
    pub fn new(
        index: SearchIndex,
        store: Arc<Store>,
        plugins: Arc<Plugins>,
    ) -> std::io::Result<Arc<Indexer>> {
        Ok(Arc::new(Indexer {
            index,
            store,
            plugins,
            last_seq: AtomicI64::new(0),
            busy: std::sync::Mutex::new(()),
            background: super::background::Background::start("search-index")?,
            writer_busy: std::sync::OnceLock::new(),
        }))
    }

    /// Lets following the catalog wait while `busy` says its writer is
    /// (see [`Deferral`]). Set once, when the portal is put together.
    pub fn yield_to(&self, busy: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.writer_busy.set(Box::new(busy));
    }

    fn writer_is_busy(&self) -> bool {
        self.writer_busy.get().is_some_and(|busy| busy())
    }

    /// Indexes one entity (stored JSON) and the documents plugins give for
    /// it. Returns how many documents were added.
    fn add_entity(&self, json: String) -> usize {
        let Ok(value) = serde_json::from_str::<Value>(&json) else {
            return 0;
        };
        let Some(doc) = entity_doc(&value) else {
            return 0;
        };
        let mut added = usize::from(self.index.add(&doc).is_ok());
        let Some(record) = entity_record(json) else {
            return added;
        };
        let limits = self.plugins.limits();
        for plugin in self
            .plugins
            .enabled()
            .into_iter()
            .filter(|p| p.exports_search())
        {
            match plugin.search_documents(&record, &limits) {
                Ok(documents) => {
                    for d in documents {
                        let page = SearchDoc {
                            id: format!(
                                "plugin:{}:{}:{}",
                                plugin.manifest.id, doc.entity_ref, d.id
                            ),
                            doc_type: "document".into(),
                            entity_ref: doc.entity_ref.clone(),
                            kind: "document".into(),
                            owner: doc.owner.clone(),
                            spec_type: plugin.manifest.id.clone(),
                            name: d.title.clone(),
                            title: d.title,
                            tags: Vec::new(),
                            description: String::new(),
                            body: d.text,
                            location: d.location,
                        };
                        added += usize::from(self.index.add(&page).is_ok());
                    }
                }
                Err(CallError::NotApplicable) => {}
                Err(e) => {
                    tracing::debug!(plugin = %plugin.manifest.id, entity = %doc.entity_ref, error = %e, "search documents failed");
                }
            }
        }
        added
    }

    /// Catalog changes not in the index yet.
    pub fn lag(&self) -> anyhow::Result<i64> {
        let newest = self.store.changes.last_entity_change()?;
        Ok((newest - self.last_seq.load(Ordering::Acquire)).max(0))
    }

    /// Indexes the whole catalog afresh. Blocking.
    pub fn build(&self) -> anyhow::Result<usize> {
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let seq = self.store.changes.last_entity_change()?;
        self.index.remove_all()?;
        let mut added = 0;
        self.store
            .catalog
            .each_entity(PAGE, &mut |json| added += self.add_entity(json))?;
        self.index.commit()?;
        self.last_seq.store(seq, Ordering::Release);
        self.store.changes.forget_entity_changes(seq)?;
        tracing::info!(
            documents = added,
            took_ms = started.elapsed().as_millis() as u64,
            "search index built"
        );
        Ok(added)
    }

    /// Reflects the catalog's changes since the last call. Blocking.
    pub fn sync(&self) -> anyhow::Result<usize> {
        if self.last_seq.load(Ordering::Acquire) < self.store.changes.forgotten_through()? {
            // Other processes let the feed move past this index.
            tracing::info!(
                "the change feed no longer has what this index missed; building it again"
            );
            return self.build();
        }
        // A change of much of the catalog (a first import) is read whole,
        // in pages, rather than entity by entity: at 100,000 entities
        // that is one read per thousand instead of one each, and one
        // commit instead of ten.
        if self.lag()? as u64 > REBUILD_AFTER.max(self.index.documents() / 4) {
            return self.build();
        }
        let _busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let from = self.last_seq.load(Ordering::Acquire);
        let changes = self.store.changes.entity_changes_after(from, 10_000)?;
        let Some(&(last, _)) = changes.last() else {
            return Ok(0);
        };
        let mut refs: Vec<String> = changes.into_iter().map(|(_, r)| r).collect();
        refs.sort();
        refs.dedup();
        for r in &refs {
            self.index.remove_entity(r);
            let Ok(er) = EntityRef::parse(r, None, "default") else {
                continue;
            };
            if let Some(json) = self.store.catalog.entity_by_ref(&er, &[])? {
                self.add_entity(json);
            }
        }
        self.index.commit()?;
        self.last_seq.store(last, Ordering::Release);
        self.store.changes.forget_entity_changes(last)?;
        Ok(refs.len())
    }

    /// Builds the index if `fresh`, then follows the catalog until the
    /// task is dropped, building it again every `rebuild_every` (zero:
    /// never).
    pub fn spawn(
        self: &Arc<Self>,
        fresh: bool,
        rebuild_every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            if fresh {
                let me = this.clone();
                match this.background.run(move || me.build()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "search index build failed"),
                    Err(e) => tracing::error!(error = %e, "search index build failed"),
                    Ok(Ok(_)) => {}
                }
            }
            // Otherwise the changes not yet reflected (also those made
            // while the server was down) are still in the table; and the
            // facet values of what is indexed are the store's.
            if !fresh {
                let store = this.store.clone();
                if let Ok(Ok(values)) =
                    tokio::task::spawn_blocking(move || store.catalog.facet_values()).await
                {
                    this.index
                        .facet_names
                        .remember(values.iter().map(String::as_str));
                }
                let ids: Vec<String> = this
                    .plugins
                    .loaded()
                    .iter()
                    .map(|p| p.manifest.id.clone())
                    .collect();
                this.index
                    .facet_names
                    .remember(ids.iter().map(String::as_str).chain(["document"]));
            }
            let mut built = tokio::time::Instant::now();
            let mut deferral = Deferral::default();
            loop {
                if !rebuild_every.is_zero() && built.elapsed() >= rebuild_every {
                    built = tokio::time::Instant::now();
                    let me = this.clone();
                    if let Ok(Err(e)) = this.background.run(move || me.build()).await {
                        tracing::error!(error = %e, "search index rebuild failed");
                    }
                }
                if deferral.defer(this.writer_is_busy(), Instant::now(), MAX_DEFER) {
                    tokio::time::sleep(SYNC_EVERY).await;
                    continue;
                }
                let me = this.clone();
                match this.background.run(move || me.sync()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "search index update failed"),
                    Err(e) => tracing::error!(error = %e, "search index update failed"),
                    Ok(Ok(_)) => {}
                }
                tokio::time::sleep(SYNC_EVERY).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_wait_for_a_busy_writer_at_most_max_defer_at_a_time() {
        let max = Duration::from_secs(30);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = Deferral::default();
        assert!(!d.defer(false, at(0), max), "an idle writer: follow now");
        assert!(d.defer(true, at(1_000), max), "a refresh began");
        assert!(d.defer(false, at(1_200), max), "a gap between two groups");
        assert!(d.defer(true, at(1_400), max));
        assert!(d.defer(true, at(30_999), max));
        assert!(!d.defer(true, at(31_000), max), "30 s waited: follow now");
        assert!(d.defer(true, at(31_200), max), "then wait again");
        assert!(d.defer(false, at(32_100), max), "idle, not yet for long");
        assert!(!d.defer(false, at(32_200), max), "idle for a second");
        assert!(d.defer(true, at(40_000), max), "a new refresh: a new wait");
        assert!(!d.defer(true, at(70_000), max));
    }
}
