//! wasmtime: one engine, compiled components cached on disk by content
//! hash, an `InstancePre` per plugin, a fresh `Store` per call with a
//! deadline (epoch interruption) and a memory cap.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::bindings::exports::greenroom::plugin::{actions, cards, docs, events, facts, search};
use super::bindings::greenroom::plugin::types;
use super::host::{CallContext, HostState};
use super::manifest::Manifest;

/// The version of `greenroom:plugin` this host speaks.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A component's exported and imported interface names.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Interfaces {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

/// How often the epoch advances; deadlines are counted in these ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine and linker every plugin shares.
pub struct Runtime {
    pub engine: Engine,
    linker: Linker<HostState>,
    /// Where compiled components are kept; `None` keeps nothing (a
    /// command that only inspects a file leaves no trace).
    cache_dir: Option<PathBuf>,
}

impl Runtime {
    /// `memory_bytes` is the per-call memory cap; instances come from a
    /// pool sized for `concurrency` calls at once, which makes a fresh
    /// instance per call cheap (no mmap per call).
    pub fn new(
        cache_dir: Option<&Path>,
        memory_bytes: usize,
        concurrency: u32,
    ) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.max_wasm_stack(512 * 1024);
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(concurrency)
            .total_core_instances(concurrency * 8)
            .total_memories(concurrency * 2)
            .total_tables(concurrency * 8)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_core_instances_per_component(16)
            // Above the per-call cap, so that the StoreLimits check (which
            // traps with a clear message) is the one that fires.
            .max_memory_size(memory_bytes.saturating_mul(2));
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        // Reserve address space for what a plugin may use, not wasmtime's
        // 4 GiB default per memory: a pool holds hundreds of memories.
        config.memory_reservation(memory_bytes.saturating_mul(2) as u64);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        bindings::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        // The ticker stops once the engine is gone.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("greenroom-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(Runtime {
            engine,
            linker,
            cache_dir: cache_dir.map(Path::to_path_buf),
        })
    }

    /// Compiles a component, or loads its compiled form from the cache.
    pub fn compile(&self, bytes: &[u8]) -> anyhow::Result<(Component, String)> {
        let hash = hex(&Sha256::digest(bytes));
        let Some(cache_dir) = &self.cache_dir else {
            return Ok((Component::new(&self.engine, bytes)?, hash));
        };
        let cached = cache_dir.join(format!("{hash}.cwasm"));
        if cached.exists() {
            // SAFETY: the cache holds only what `serialize` below wrote for
            // this engine configuration; wasmtime checks the engine matches.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok((c, hash)),
                Err(e) => {
                    tracing::warn!(file = %cached.display(), error = %e, "compiled plugin cache entry unusable; recompiling")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            let tmp = cached.with_extension("tmp");
            if std::fs::write(&tmp, serialized)
                .and_then(|()| std::fs::rename(&tmp, &cached))
                .is_err()
            {
                tracing::warn!(file = %cached.display(), "cannot write the compiled plugin cache");
            }
        }
        Ok((component, hash))
    }

    /// What a component exports and imports, refused when its imports go
    /// beyond what its manifest declares or it speaks an unknown contract.
    pub fn interfaces(
        &self,
        manifest: &Manifest,
        component: &Component,
    ) -> anyhow::Result<Interfaces> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        if imports
            .iter()
            .any(|i| i.starts_with("greenroom:plugin/http"))
            && manifest.hosts.is_empty()
        {
            anyhow::bail!("imports greenroom:plugin/http but its manifest declares no hosts");
        }
        if let Some(other) = imports.iter().chain(exports.iter()).find(|n| {
            n.starts_with("greenroom:plugin/") && !n.ends_with(&format!("@{CONTRACT_VERSION}"))
        }) {
            anyhow::bail!(
                "is built against {other}, a version of the plugin contract this host does not know (it speaks greenroom:plugin@{CONTRACT_VERSION})"
            );
        }
        Ok(Interfaces { exports, imports })
    }

    /// What the host would load from `bytes`: its manifest and interfaces,
    /// or why it would refuse it.
    pub fn inspect(&self, bytes: &[u8]) -> anyhow::Result<(Manifest, Interfaces)> {
        let manifest = Manifest::from_wasm(bytes)?;
        let (component, _) = self.compile(bytes)?;
        let interfaces = self.interfaces(&manifest, &component)?;
        self.prepare(&component)?;
        Ok((manifest, interfaces))
    }

    pub fn prepare(&self, component: &Component) -> anyhow::Result<InstancePre<HostState>> {
        Ok(self.linker.instantiate_pre(component)?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Limits applied to every call.
#[derive(Debug, Clone)]
pub struct CallLimits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_output_bytes: usize,
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("has nothing for this entity")]
    NotApplicable,
    #[error("{0}")]
    Plugin(String),
    #[error("did not answer within {0:?} and was stopped")]
    Timeout(Duration),
    #[error("exceeded its memory limit of {0} MiB")]
    Memory(usize),
    #[error("returned {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("crashed: {0}")]
    Trap(String),
    #[error("is backing off after {failures} failures in a row; next try in {wait:?}")]
    BackingOff { failures: u32, wait: Duration },
    #[error("ran out of time on this entity {times} time(s) in a row and is not called for it again for {}", whole_seconds(*wait))]
    StuckOnEntity { times: u32, wait: Duration },
    #[error("ran out of time {times} times in the last minute and is paused for {}", whole_seconds(*wait))]
    TooManyTimeouts { times: usize, wait: Duration },
    #[error("does not export {0}")]
    NotExported(&'static str),
}

impl CallError {
    /// The host did not call the plugin: it is backing off or paused.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CallError::BackingOff { .. }
                | CallError::StuckOnEntity { .. }
                | CallError::TooManyTimeouts { .. }
        )
    }
}

/// Calls, errors and recent latencies of one plugin.
#[derive(Debug, Default)]
pub struct Health {
    pub calls: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    failures_in_a_row: u32,
    backoff_until: Option<Instant>,
    latencies_us: Vec<u64>,
    /// Per call subject (an export and an entity): timeouts in a row and
    /// until when it is not called for that subject. A timed-out call burnt
    /// a core for the whole deadline, and asking again would burn another.
    stuck: HashMap<String, (u32, Instant)>,
    /// When recent calls timed out, whatever their subject: a plugin that
    /// times out on many entities in turn is paused as a whole.
    recent_timeouts: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// How long a subject is left alone after its first timeout; doubled on
/// each further one, up to [`STUCK_MAX`].
const STUCK_FIRST: Duration = Duration::from_secs(30);
const STUCK_MAX: Duration = Duration::from_secs(30 * 60);
/// Subjects remembered per plugin; past it, expired ones are forgotten
/// and new ones are not recorded (the plugin-wide pause still holds).
const STUCK_SUBJECTS: usize = 10_000;
/// Timeouts within [`TIMEOUT_WINDOW`] that pause the plugin for as long.
const TIMEOUTS_PER_WINDOW: usize = 3;
const TIMEOUT_WINDOW: Duration = Duration::from_secs(60);

fn whole_seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64().ceil() as u64)
}

impl Health {
    /// Records a call. `misbehaved` is a fault of the plugin itself (a
    /// trap, a timeout, an internal error): those back it off. An upstream
    /// or configuration problem the plugin reported cleanly is counted as an
    /// error but backs nothing off, since it concerns one entity's data.
    fn record(
        &mut self,
        took: Duration,
        error: Option<&CallError>,
        misbehaved: bool,
        subject: Option<&str>,
    ) {
        self.calls += 1;
        if matches!(error, Some(CallError::Timeout(_))) {
            self.timed_out(subject);
        } else if let Some(subject) = subject {
            self.stuck.remove(subject);
        }
        if self.latencies_us.len() == 256 {
            self.latencies_us.remove(0);
        }
        self.latencies_us.push(took.as_micros() as u64);
        match error {
            Some(e) => {
                self.errors += 1;
                self.last_error = Some(e.to_string());
                if !misbehaved {
                    return;
                }
                self.failures_in_a_row += 1;
                if self.failures_in_a_row >= 3 {
                    let secs = (5u64 << (self.failures_in_a_row - 3).min(6)).min(300);
                    self.backoff_until = Some(Instant::now() + Duration::from_secs(secs));
                }
            }
            None => {
                self.failures_in_a_row = 0;
                self.backoff_until = None;
            }
        }
    }

    fn timed_out(&mut self, subject: Option<&str>) {
        let now = Instant::now();
        while self
            .recent_timeouts
            .front()
            .is_some_and(|t| now.duration_since(*t) > TIMEOUT_WINDOW)
        {
            self.recent_timeouts.pop_front();
        }
        self.recent_timeouts.push_back(now);
        if self.recent_timeouts.len() >= TIMEOUTS_PER_WINDOW {
            self.paused_until = Some(now + TIMEOUT_WINDOW);
        }
        let Some(subject) = subject else {
            return;
        };
        if self.stuck.len() >= STUCK_SUBJECTS && !self.stuck.contains_key(subject) {
            self.stuck.retain(|_, (_, until)| *until > now);
            if self.stuck.len() >= STUCK_SUBJECTS {
                return;
            }
        }
        let (times, until) = self.stuck.entry(subject.to_string()).or_insert((0, now));
        *times += 1;
        *until = now
            + STUCK_FIRST
                .saturating_mul(1 << (*times - 1).min(6))
                .min(STUCK_MAX);
    }

    fn check_backoff(&self, subject: Option<&str>) -> Result<(), CallError> {
        let now = Instant::now();
        if let Some(until) = self.backoff_until.filter(|u| *u > now) {
            return Err(CallError::BackingOff {
                failures: self.failures_in_a_row,
                wait: until - now,
            });
        }
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Err(CallError::TooManyTimeouts {
                times: self.recent_timeouts.len(),
                wait: until - now,
            });
        }
        match subject.and_then(|s| self.stuck.get(s)) {
            Some((times, until)) if *until > now => Err(CallError::StuckOnEntity {
                times: *times,
                wait: *until - now,
            }),
            _ => Ok(()),
        }
    }

    /// p50 and p95 of recent calls, in milliseconds.
    pub fn percentiles(&self) -> (f64, f64) {
        if self.latencies_us.is_empty() {
            return (0.0, 0.0);
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.5), at(0.95))
    }
}

/// A plugin ready to call.
pub struct Loaded {
    pub manifest: Manifest,
    pub file: PathBuf,
    pub hash: String,
    /// Exported interfaces, e.g. `greenroom:plugin/cards@0.1.0`.
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pre: InstancePre<HostState>,
    cards: Option<cards::GuestIndices>,
    facts: Option<facts::GuestIndices>,
    events: Option<events::GuestIndices>,
    search: Option<search::GuestIndices>,
    actions: Option<actions::GuestIndices>,
    docs: Option<docs::GuestIndices>,
    pub ctx: CallContext,
    pub health: Mutex<Health>,
    /// An administrator switched it off: listed, never called.
    pub disabled: bool,
}

impl Loaded {
    pub fn new(
        runtime: &Runtime,
        manifest: Manifest,
        file: PathBuf,
        component: &Component,
        hash: String,
        ctx: CallContext,
    ) -> anyhow::Result<Loaded> {
        let Interfaces { exports, imports } = runtime.interfaces(&manifest, component)?;
        let pre = runtime.prepare(component)?;
        let cards = cards::GuestIndices::new(&pre).ok();
        let facts = facts::GuestIndices::new(&pre).ok();
        let events = events::GuestIndices::new(&pre).ok();
        let search = search::GuestIndices::new(&pre).ok();
        let actions = actions::GuestIndices::new(&pre).ok();
        let docs = docs::GuestIndices::new(&pre).ok();
        Ok(Loaded {
            manifest,
            file,
            hash,
            exports,
            imports,
            pre,
            cards,
            facts,
            events,
            search,
            actions,
            docs,
            ctx,
            health: Mutex::new(Health::default()),
            disabled: false,
        })
    }

    pub fn label(&self) -> String {
        format!("plugin {} {}", self.manifest.id, self.manifest.version)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a fresh instance with the call limits; records health.
    /// `subject` names what the call is about (an export and an entity):
    /// a subject the plugin ran out of time on is left alone for a while.
    fn call<R>(
        &self,
        subject: Option<&str>,
        limits: &CallLimits,
        f: impl FnOnce(
            &mut wasmtime::Store<HostState>,
            &wasmtime::component::Instance,
        ) -> wasmtime::Result<Result<R, types::PluginError>>,
        size: impl FnOnce(&R) -> usize,
    ) -> Result<R, CallError> {
        self.health().check_backoff(subject)?;
        let started = Instant::now();
        let mut store =
            wasmtime::Store::new(self.pre.engine(), HostState::new(&self.ctx, limits.timeout));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline((limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64);
        store.epoch_deadline_trap();
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| f(&mut store, &instance));
        for (stream, pipe) in [
            ("stdout", &store.data().stdout),
            ("stderr", &store.data().stderr),
        ] {
            let text = pipe.contents();
            if !text.is_empty() {
                tracing::info!(plugin = %self.manifest.id, stream, "{}", String::from_utf8_lossy(&text).trim_end());
            }
        }
        let mut reported = false;
        let result = match outcome {
            Ok(Ok(value)) => {
                let n = size(&value);
                if n > limits.max_output_bytes {
                    Err(CallError::TooLarge {
                        size: n,
                        limit: limits.max_output_bytes,
                    })
                } else {
                    Ok(value)
                }
            }
            Ok(Err(types::PluginError::NotApplicable)) => Err(CallError::NotApplicable),
            Ok(Err(e)) => {
                reported = !matches!(e, types::PluginError::Internal(_));
                Err(CallError::Plugin(plugin_error_text(&e)))
            }
            Err(e) => Err(classify(&e, limits)),
        };
        let took = started.elapsed();
        let fault = result
            .as_ref()
            .err()
            .filter(|e| !matches!(e, CallError::NotApplicable));
        self.health().record(took, fault, !reported, subject);
        let outcome = match &result {
            Ok(_) | Err(CallError::NotApplicable) => "ok",
            Err(CallError::Timeout(_)) => "timeout",
            Err(CallError::Memory(_)) => "memory",
            Err(CallError::Plugin(_)) => "plugin_error",
            Err(_) => "trap",
        };
        crate::metrics::plugin_call(&self.manifest.id, outcome, took.as_secs_f64());
        result
    }

    /// The plugin's cards for an entity.
    pub fn cards(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Card>, CallError> {
        let Some(indices) = &self.cards else {
            return Err(CallError::NotExported("cards"));
        };
        self.call(
            Some(&format!("cards {}", entity.entity_ref)),
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_cards(&mut *store, entity)
            },
            |cards| cards.iter().map(card_size).sum(),
        )
    }

    pub fn exports_cards(&self) -> bool {
        self.cards.is_some()
    }

    pub fn exports_facts(&self) -> bool {
        self.facts.is_some()
    }

    pub fn exports_events(&self) -> bool {
        self.events.is_some()
    }

    pub fn exports_search(&self) -> bool {
        self.search.is_some()
    }

    pub fn exports_actions(&self) -> bool {
        self.actions.is_some()
    }

    pub fn exports_docs(&self) -> bool {
        self.docs.is_some()
    }

    /// The plugin's facts about an entity.
    pub fn facts(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Fact>, CallError> {
        let indices = self.facts.as_ref().ok_or(CallError::NotExported("facts"))?;
        self.call(
            Some(&format!("facts {}", entity.entity_ref)),
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_facts(&mut *store, entity)
            },
            |facts| {
                facts
                    .iter()
                    .map(|f| {
                        f.name.len() + f.url.as_ref().map_or(0, String::len) + value_size(&f.value)
                    })
                    .sum()
            },
        )
    }

    /// Events at or after `since_ms`.
    pub fn events(
        &self,
        since_ms: u64,
        limits: &CallLimits,
    ) -> Result<Vec<types::Event>, CallError> {
        let indices = self
            .events
            .as_ref()
            .ok_or(CallError::NotExported("events"))?;
        self.call(
            None,
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_events(&mut *store, since_ms)
            },
            |events| {
                events
                    .iter()
                    .map(|e| {
                        e.id.len()
                            + e.kind.len()
                            + e.title.len()
                            + opt_len(&e.entity_ref)
                            + opt_len(&e.url)
                            + opt_len(&e.actor)
                            + 16
                    })
                    .sum()
            },
        )
    }

    /// Search documents for an entity.
    pub fn search_documents(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::SearchDocument>, CallError> {
        let indices = self
            .search
            .as_ref()
            .ok_or(CallError::NotExported("search"))?;
        self.call(
            Some(&format!("search {}", entity.entity_ref)),
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_documents(&mut *store, entity)
            },
            |docs| {
                docs.iter()
                    .map(|d| d.id.len() + d.title.len() + d.text.len() + d.location.len())
                    .sum()
            },
        )
    }

    /// Actions available on an entity.
    pub fn actions(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Action>, CallError> {
        let indices = self
            .actions
            .as_ref()
            .ok_or(CallError::NotExported("actions"))?;
        self.call(
            Some(&format!("actions {}", entity.entity_ref)),
            limits,
            |store, instance| {
                Ok(Ok(indices
                    .load(&mut *store, instance)?
                    .call_available(&mut *store, entity)?))
            },
            |actions| {
                actions
                    .iter()
                    .map(|a| a.id.len() + a.label.len() + a.description.len())
                    .sum()
            },
        )
    }

    /// Runs action `id` with `input` (JSON text); returns its message.
    pub fn run_action(
        &self,
        id: &str,
        entity: &types::Entity,
        input: &str,
        limits: &CallLimits,
    ) -> Result<String, CallError> {
        let indices = self
            .actions
            .as_ref()
            .ok_or(CallError::NotExported("actions"))?;
        self.call(
            Some(&format!("run {id} {}", entity.entity_ref)),
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_run(&mut *store, id, entity, input)
            },
            String::len,
        )
    }

    /// A documentation page.
    pub fn doc_page(
        &self,
        entity: &types::Entity,
        path: &str,
        limits: &CallLimits,
    ) -> Result<types::DocPage, CallError> {
        let indices = self.docs.as_ref().ok_or(CallError::NotExported("docs"))?;
        self.call(
            Some(&format!("docs {}", entity.entity_ref)),
            limits,
            |store, instance| {
                indices
                    .load(&mut *store, instance)?
                    .call_page(&mut *store, entity, path)
            },
            |page| {
                page.path.len()
                    + page.title.len()
                    + page.markdown.len()
                    + page
                        .nav
                        .iter()
                        .map(|l| l.label.len() + l.href.len())
                        .sum::<usize>()
            },
        )
    }
}

fn plugin_error_text(e: &types::PluginError) -> String {
    match e {
        types::PluginError::NotApplicable => "has nothing for this entity".into(),
        types::PluginError::Upstream(m) => format!("upstream error: {m}"),
        types::PluginError::Config(m) => format!("configuration error: {m}"),
        types::PluginError::Internal(m) => format!("internal error: {m}"),
    }
}

fn classify(e: &wasmtime::Error, limits: &CallLimits) -> CallError {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => CallError::Timeout(limits.timeout),
            wasmtime::Trap::UnreachableCodeReached => {
                CallError::Trap("panicked (wasm `unreachable` executed)".into())
            }
            wasmtime::Trap::StackOverflow => CallError::Trap("stack overflow".into()),
            // Rust and C keep their stack in linear memory: running off its
            // end shows up as an access below address zero.
            wasmtime::Trap::MemoryOutOfBounds => CallError::Trap(
                "out-of-bounds memory access (a stack overflow or memory bug in the plugin)".into(),
            ),
            other => CallError::Trap(other.to_string()),
        };
    }
    let text = format!("{e:#}");
    if text.contains("growing memory") || text.contains("memory minimum size") {
        return CallError::Memory(limits.memory_bytes / (1024 * 1024));
    }
    CallError::Trap(text)
}

fn opt_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::len)
}

fn value_size(v: &types::FactValue) -> usize {
    match v {
        types::FactValue::Text(t) => t.len(),
        _ => 8,
    }
}

/// Approximate bytes of a card (text it carries).
fn card_size(card: &types::Card) -> usize {
    use types::{Cell, Node};
    let cell = |c: &Cell| match c {
        Cell::Text(t) => t.len(),
        Cell::Link(l) => l.label.len() + l.href.len(),
        Cell::Badge(b) => b.label.len(),
    };
    card.id.len()
        + card.title.len()
        + card
            .nodes
            .iter()
            .map(|n| match n {
                Node::Heading(t) | Node::Text(t) | Node::Markdown(t) | Node::Code(t) => t.len(),
                Node::Field(f) => f.label.len() + f.value.len(),
                Node::Link(l) => l.label.len() + l.href.len(),
                Node::Badge(b) => b.label.len(),
                Node::Progress(p) => 16 + p.label.as_ref().map_or(0, String::len),
                Node::Sparkline(v) => v.len() * 8,
                Node::Table(t) => {
                    t.columns.iter().map(String::len).sum::<usize>()
                        + t.rows.iter().flatten().map(cell).sum::<usize>()
                }
                Node::Divider => 1,
            })
            .sum::<usize>()
}

/// Shared between loaded plugins: cheap to clone.
pub type SharedLoaded = Arc<Loaded>;

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// A released contract never changes: plugins built against it must
    /// keep loading. A change belongs in a new version's folder.
    #[test]
    fn the_released_contract_is_frozen() {
        let text = include_str!("../../../wit/0.1.0/greenroom-plugin.wit");
        assert!(text.contains("package greenroom:plugin@0.1.0;"));
        assert_eq!(
            super::hex(&Sha256::digest(text.as_bytes())),
            "493becce90215caf4a6915ff20a311323150e838388df23e1b943d80e34392b0",
            "wit/0.1.0 is released and frozen: put changes in a new version folder"
        );
        assert_eq!(
            include_str!("../../../plugin-sdk/wit/greenroom-plugin.wit"),
            text,
            "the Rust SDK carries a copy of the contract it builds against"
        );
    }
}
