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

use super::bindings::v0_1::exports::greenroom::plugin as v0_1_exports;
use super::bindings::v0_2::exports::greenroom::plugin::{
    actions, cards, docs, events, facts, providers, search, tabs, webhooks, widgets,
};
use super::bindings::v0_2::greenroom::plugin::types;
use super::bindings::{v0_1, v0_2};
use super::host::{CallContext, HostState};
use super::manifest::Manifest;
use super::v0_1::Convert;

/// The newest version of `greenroom:plugin`: what the Rust SDK builds and
/// `plugin new` writes.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Every version of `greenroom:plugin` this host loads, newest first.
pub const CONTRACT_VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// A component's exported and imported interface names, and the contract
/// version they belong to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Interfaces {
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    pub contract: &'static str,
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
        // Every supported version at once: their interface names differ
        // by version, so a component links against the one it was built
        // for.
        v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
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
        let contract = contract_of(imports.iter().chain(&exports))?;
        if imports
            .iter()
            .any(|i| i.starts_with("greenroom:plugin/http@"))
            && manifest.hosts.is_empty()
        {
            anyhow::bail!(
                "imports greenroom:plugin/http but its manifest declares no hosts: declare the origins it calls (\"hosts\": [\"https://api.example.com\"]), or build it against a world without import-http"
            );
        }
        Ok(Interfaces {
            exports,
            imports,
            contract,
        })
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

/// The one contract version a component's `greenroom:plugin` interfaces
/// name (the newest when it names none: it has nothing to call).
fn contract_of<'a>(names: impl Iterator<Item = &'a String>) -> anyhow::Result<&'static str> {
    let mut found: Option<&'static str> = None;
    for name in names {
        let Some(rest) = name.strip_prefix("greenroom:plugin/") else {
            continue;
        };
        let version = rest.split_once('@').map_or("", |(_, v)| v);
        let Some(known) = CONTRACT_VERSIONS.iter().find(|v| **v == version) else {
            anyhow::bail!(
                "is built against {name}, a version of the plugin contract this host does not know (it loads greenroom:plugin@{}); rebuild it against one of those, or upgrade Greenroom",
                CONTRACT_VERSIONS.join(", @")
            );
        };
        match found {
            Some(other) if other != *known => anyhow::bail!(
                "mixes two versions of the plugin contract ({other} and {known}); build it against one"
            ),
            _ => found = Some(known),
        }
    }
    Ok(found.unwrap_or(CONTRACT_VERSION))
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

/// Where a component's exports are, by the contract version it was built
/// against. Each call converts a 0.1.0 plugin's answer into the host's
/// types (`super::v0_1`).
enum Guest {
    V0_2 {
        cards: Option<cards::GuestIndices>,
        facts: Option<facts::GuestIndices>,
        events: Option<events::GuestIndices>,
        search: Option<search::GuestIndices>,
        actions: Option<actions::GuestIndices>,
        docs: Option<docs::GuestIndices>,
        tabs: Option<tabs::GuestIndices>,
        widgets: Option<widgets::GuestIndices>,
        providers: Option<providers::GuestIndices>,
        webhooks: Option<webhooks::GuestIndices>,
    },
    V0_1 {
        cards: Option<v0_1_exports::cards::GuestIndices>,
        facts: Option<v0_1_exports::facts::GuestIndices>,
        events: Option<v0_1_exports::events::GuestIndices>,
        search: Option<v0_1_exports::search::GuestIndices>,
        actions: Option<v0_1_exports::actions::GuestIndices>,
        docs: Option<v0_1_exports::docs::GuestIndices>,
    },
}

/// The export `$field` of either version, or `NotExported`.
macro_rules! export {
    ($indices:expr, $field:ident) => {
        $indices
            .as_ref()
            .ok_or(CallError::NotExported(stringify!($field)))
    };
}

/// Calls `$call(entity, args...)` of export `$export` in whichever
/// contract version the plugin speaks; a 0.1.0 plugin gets the entity in
/// its types and its answer is converted into the host's.
macro_rules! entity_call {
    ($self:ident, $export:ident, $subject:expr, $limits:expr, $entity:expr, $size:expr, $call:ident $(, $arg:expr)*) => {
        match &$self.guest {
            Guest::V0_2 { $export, .. } => {
                let i = export!($export, $export)?;
                $self.call(Some(&$subject), $limits, |s, inst| {
                    i.load(&mut *s, inst)?.$call(&mut *s, $entity $(, $arg)*)
                }, $size)
            }
            Guest::V0_1 { $export, .. } => {
                let i = export!($export, $export)?;
                let entity = $entity.clone().convert();
                $self.call(Some(&$subject), $limits, |s, inst| {
                    Ok(i.load(&mut *s, inst)?.$call(&mut *s, &entity $(, $arg)*)?.convert())
                }, $size)
            }
        }
    };
}

/// A plugin ready to call.
pub struct Loaded {
    pub manifest: Manifest,
    pub file: PathBuf,
    pub hash: String,
    /// Exported interfaces, e.g. `greenroom:plugin/cards@0.1.0`.
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The contract version it was built against, e.g. `0.2.0`.
    pub contract: &'static str,
    pre: InstancePre<HostState>,
    guest: Guest,
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
        let Interfaces {
            exports,
            imports,
            contract,
        } = runtime.interfaces(&manifest, component)?;
        let pre = runtime.prepare(component)?;
        let guest = if contract == "0.1.0" {
            use v0_1_exports as x;
            Guest::V0_1 {
                cards: x::cards::GuestIndices::new(&pre).ok(),
                facts: x::facts::GuestIndices::new(&pre).ok(),
                events: x::events::GuestIndices::new(&pre).ok(),
                search: x::search::GuestIndices::new(&pre).ok(),
                actions: x::actions::GuestIndices::new(&pre).ok(),
                docs: x::docs::GuestIndices::new(&pre).ok(),
            }
        } else {
            Guest::V0_2 {
                cards: cards::GuestIndices::new(&pre).ok(),
                facts: facts::GuestIndices::new(&pre).ok(),
                events: events::GuestIndices::new(&pre).ok(),
                search: search::GuestIndices::new(&pre).ok(),
                actions: actions::GuestIndices::new(&pre).ok(),
                docs: docs::GuestIndices::new(&pre).ok(),
                tabs: tabs::GuestIndices::new(&pre).ok(),
                widgets: widgets::GuestIndices::new(&pre).ok(),
                providers: providers::GuestIndices::new(&pre).ok(),
                webhooks: webhooks::GuestIndices::new(&pre).ok(),
            }
        };
        Ok(Loaded {
            manifest,
            file,
            hash,
            exports,
            imports,
            contract,
            pre,
            guest,
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
        self.applies(entity)?;
        let subject = format!("cards {}", entity.entity_ref);
        let size = |cards: &Vec<types::Card>| cards.iter().map(card_size).sum();
        entity_call!(self, cards, subject, limits, entity, size, call_cards)
    }

    /// "Not applicable", without running the plugin, for an entity its
    /// manifest's `applies_to` leaves out.
    fn applies(&self, entity: &types::Entity) -> Result<(), CallError> {
        if self.manifest.applies_to.matches(&entity.kind, &entity.json) {
            Ok(())
        } else {
            Err(CallError::NotApplicable)
        }
    }

    /// Whether the plugin exports `name` (`cards`, `facts`, ...).
    fn exports(&self, name: &str) -> bool {
        match &self.guest {
            Guest::V0_2 {
                cards,
                facts,
                events,
                search,
                actions,
                docs,
                tabs,
                widgets,
                providers,
                webhooks,
            } => match name {
                "cards" => cards.is_some(),
                "facts" => facts.is_some(),
                "events" => events.is_some(),
                "search" => search.is_some(),
                "actions" => actions.is_some(),
                "docs" => docs.is_some(),
                "tabs" => tabs.is_some(),
                "widgets" => widgets.is_some(),
                "providers" => providers.is_some(),
                "webhooks" => webhooks.is_some(),
                _ => false,
            },
            Guest::V0_1 {
                cards,
                facts,
                events,
                search,
                actions,
                docs,
            } => match name {
                "cards" => cards.is_some(),
                "facts" => facts.is_some(),
                "events" => events.is_some(),
                "search" => search.is_some(),
                "actions" => actions.is_some(),
                "docs" => docs.is_some(),
                _ => false,
            },
        }
    }

    pub fn exports_cards(&self) -> bool {
        self.exports("cards")
    }

    pub fn exports_facts(&self) -> bool {
        self.exports("facts")
    }

    pub fn exports_events(&self) -> bool {
        self.exports("events")
    }

    pub fn exports_search(&self) -> bool {
        self.exports("search")
    }

    pub fn exports_actions(&self) -> bool {
        self.exports("actions")
    }

    pub fn exports_docs(&self) -> bool {
        self.exports("docs")
    }

    pub fn exports_tabs(&self) -> bool {
        self.exports("tabs")
    }

    pub fn exports_widgets(&self) -> bool {
        self.exports("widgets")
    }

    pub fn exports_providers(&self) -> bool {
        self.exports("providers")
    }

    pub fn exports_webhooks(&self) -> bool {
        self.exports("webhooks")
    }

    /// The plugin's facts about an entity.
    pub fn facts(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Fact>, CallError> {
        self.applies(entity)?;
        let subject = format!("facts {}", entity.entity_ref);
        let size = |facts: &Vec<types::Fact>| {
            facts
                .iter()
                .map(|f| f.name.len() + opt_len(&f.url) + value_size(&f.value))
                .sum()
        };
        entity_call!(self, facts, subject, limits, entity, size, call_facts)
    }

    /// Events at or after `since_ms`.
    pub fn events(
        &self,
        since_ms: u64,
        limits: &CallLimits,
    ) -> Result<Vec<types::Event>, CallError> {
        let size = |events: &Vec<types::Event>| {
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
        };
        match &self.guest {
            Guest::V0_2 { events, .. } => {
                let i = export!(events, events)?;
                self.call(
                    None,
                    limits,
                    |s, inst| i.load(&mut *s, inst)?.call_events(&mut *s, since_ms),
                    size,
                )
            }
            Guest::V0_1 { events, .. } => {
                let i = export!(events, events)?;
                self.call(
                    None,
                    limits,
                    |s, inst| {
                        Ok(i.load(&mut *s, inst)?
                            .call_events(&mut *s, since_ms)?
                            .convert())
                    },
                    size,
                )
            }
        }
    }

    /// Search documents for an entity.
    pub fn search_documents(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::SearchDocument>, CallError> {
        self.applies(entity)?;
        let subject = format!("search {}", entity.entity_ref);
        let size = |docs: &Vec<types::SearchDocument>| {
            docs.iter()
                .map(|d| d.id.len() + d.title.len() + d.text.len() + d.location.len())
                .sum()
        };
        entity_call!(self, search, subject, limits, entity, size, call_documents)
    }

    /// Actions available on an entity.
    pub fn actions(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Action>, CallError> {
        self.applies(entity)?;
        let subject = format!("actions {}", entity.entity_ref);
        let size = |actions: &Vec<types::Action>| actions.iter().map(action_size).sum();
        match &self.guest {
            Guest::V0_2 { actions, .. } => {
                let i = export!(actions, actions)?;
                self.call(
                    Some(&subject),
                    limits,
                    |s, inst| {
                        Ok(Ok(i
                            .load(&mut *s, inst)?
                            .call_available(&mut *s, entity)?))
                    },
                    size,
                )
            }
            Guest::V0_1 { actions, .. } => {
                let i = export!(actions, actions)?;
                let entity = entity.clone().convert();
                self.call(
                    Some(&subject),
                    limits,
                    |s, inst| {
                        Ok(Ok(i
                            .load(&mut *s, inst)?
                            .call_available(&mut *s, &entity)?
                            .convert()))
                    },
                    size,
                )
            }
        }
    }

    /// Runs action `id` for `actor` with the form's values, checked against
    /// the action's fields (`inputs`), and returns its message. A 0.1.0
    /// plugin declares no fields: it receives the request's input as JSON
    /// text (`raw`) and is not told who acted.
    pub fn run_action(
        &self,
        id: &str,
        entity: &types::Entity,
        inputs: &[types::Input],
        raw: &serde_json::Value,
        actor: &str,
        limits: &CallLimits,
    ) -> Result<String, CallError> {
        self.applies(entity)?;
        let subject = format!("run {id} {}", entity.entity_ref);
        match &self.guest {
            Guest::V0_2 { actions, .. } => {
                let i = export!(actions, actions)?;
                self.call(
                    Some(&subject),
                    limits,
                    |s, inst| {
                        i.load(&mut *s, inst)?
                            .call_run(&mut *s, id, entity, inputs, actor)
                    },
                    String::len,
                )
            }
            Guest::V0_1 { actions, .. } => {
                let i = export!(actions, actions)?;
                let entity = entity.clone().convert();
                let input = raw.to_string();
                self.call(
                    Some(&subject),
                    limits,
                    |s, inst| {
                        Ok(i.load(&mut *s, inst)?
                            .call_run(&mut *s, id, &entity, &input)?
                            .convert())
                    },
                    String::len,
                )
            }
        }
    }

    /// A documentation page.
    pub fn doc_page(
        &self,
        entity: &types::Entity,
        path: &str,
        limits: &CallLimits,
    ) -> Result<types::DocPage, CallError> {
        self.applies(entity)?;
        let subject = format!("docs {}", entity.entity_ref);
        let size = |page: &types::DocPage| {
            page.path.len()
                + page.title.len()
                + page.markdown.len()
                + page
                    .nav
                    .iter()
                    .map(|l| l.label.len() + l.href.len())
                    .sum::<usize>()
        };
        entity_call!(self, docs, subject, limits, entity, size, call_page, path)
    }

    /// The plugin's tabs for an entity's page (0.2.0 on).
    pub fn tabs(
        &self,
        entity: &types::Entity,
        limits: &CallLimits,
    ) -> Result<Vec<types::Tab>, CallError> {
        self.applies(entity)?;
        let Guest::V0_2 { tabs, .. } = &self.guest else {
            return Err(CallError::NotExported("tabs"));
        };
        let i = export!(tabs, tabs)?;
        self.call(
            Some(&format!("tabs {}", entity.entity_ref)),
            limits,
            |s, inst| i.load(&mut *s, inst)?.call_tabs(&mut *s, entity),
            |tabs| {
                tabs.iter()
                    .map(|t| {
                        t.id.len() + t.title.len() + t.nodes.iter().map(node_size).sum::<usize>()
                    })
                    .sum()
            },
        )
    }

    /// The plugin's homepage widgets for `viewer` (0.2.0 on).
    pub fn widgets(
        &self,
        viewer: Option<&str>,
        limits: &CallLimits,
    ) -> Result<Vec<types::Card>, CallError> {
        let Guest::V0_2 { widgets, .. } = &self.guest else {
            return Err(CallError::NotExported("widgets"));
        };
        let i = export!(widgets, widgets)?;
        self.call(
            Some(&format!("widgets {}", viewer.unwrap_or("-"))),
            limits,
            |s, inst| i.load(&mut *s, inst)?.call_widgets(&mut *s, viewer),
            |cards| cards.iter().map(card_size).sum(),
        )
    }

    /// The page of provider location `name` (settings `config`, JSON
    /// text) from `cursor` (0.2.0 on).
    pub fn discover(
        &self,
        name: &str,
        config: &str,
        cursor: Option<&str>,
        limits: &CallLimits,
    ) -> Result<types::ProviderPage, CallError> {
        let Guest::V0_2 { providers, .. } = &self.guest else {
            return Err(CallError::NotExported("providers"));
        };
        let i = export!(providers, providers)?;
        self.call(
            Some(&format!("discover {name}")),
            limits,
            |s, inst| {
                i.load(&mut *s, inst)?
                    .call_discover(&mut *s, name, config, cursor)
            },
            |page| {
                page.entities.iter().map(String::len).sum::<usize>()
                    + page
                        .files
                        .iter()
                        .map(|f| f.url.len() + f.text.len())
                        .sum::<usize>()
                    + page
                        .suggestions
                        .iter()
                        .map(|s| s.entity.len() + s.reason.len())
                        .sum::<usize>()
                    + page.next.as_ref().map_or(0, String::len)
            },
        )
    }

    /// What the verified webhook delivery `event` (`payload`, its body)
    /// changes (0.2.0 on).
    pub fn webhook(
        &self,
        event: &str,
        payload: &str,
        limits: &CallLimits,
    ) -> Result<types::WebhookOutcome, CallError> {
        let Guest::V0_2 { webhooks, .. } = &self.guest else {
            return Err(CallError::NotExported("webhooks"));
        };
        let i = export!(webhooks, webhooks)?;
        self.call(
            Some(&format!("webhook {event}")),
            limits,
            |s, inst| i.load(&mut *s, inst)?.call_handle(&mut *s, event, payload),
            |out| {
                out.files
                    .iter()
                    .map(|f| f.url.len() + f.text.len())
                    .sum::<usize>()
                    + out.gone.iter().map(String::len).sum::<usize>()
                    + out
                        .events
                        .iter()
                        .map(|e| e.id.len() + e.title.len() + 64)
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
    card.id.len() + card.title.len() + card.nodes.iter().map(node_size).sum::<usize>()
}

/// Approximate bytes of a node.
fn node_size(node: &types::Node) -> usize {
    use types::{Cell, Node};
    let cell = |c: &Cell| match c {
        Cell::Text(t) => t.len(),
        Cell::Link(l) => l.label.len() + l.href.len(),
        Cell::Badge(b) => b.label.len(),
    };
    match node {
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
    }
}

/// Approximate bytes of an action and its form.
fn action_size(action: &types::Action) -> usize {
    use types::InputKind;
    action.id.len()
        + action.label.len()
        + action.description.len()
        + action
            .inputs
            .iter()
            .map(|f| {
                f.name.len()
                    + f.label.len()
                    + opt_len(&f.help)
                    + match &f.kind {
                        InputKind::Text(t) => opt_len(&t.default) + opt_len(&t.pattern) + 8,
                        InputKind::Number(_) => 32,
                        InputKind::Choice(c) => {
                            opt_len(&c.default)
                                + c.options
                                    .iter()
                                    .map(|o| o.value.len() + o.label.len())
                                    .sum::<usize>()
                        }
                        InputKind::Flag(_) => 1,
                    }
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
    }

    /// The Rust SDK builds against the newest contract, from a copy it
    /// carries (so it builds outside this repository).
    #[test]
    fn the_rust_sdk_carries_the_newest_contract() {
        let newest = include_str!("../../../wit/0.2.0/greenroom-plugin.wit");
        assert!(newest.contains(&format!(
            "package greenroom:plugin@{};",
            super::CONTRACT_VERSION
        )));
        assert_eq!(
            include_str!("../../../plugin-sdk/wit/greenroom-plugin.wit"),
            newest,
            "the Rust SDK carries a copy of the contract it builds against"
        );
    }

    #[test]
    fn a_component_names_one_known_contract_version() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let of = |list: &[&str]| super::contract_of(names(list).iter());
        assert_eq!(
            of(&["wasi:io/streams@0.2.0", "greenroom:plugin/cards@0.1.0"]).unwrap(),
            "0.1.0"
        );
        assert_eq!(
            of(&["greenroom:plugin/http@0.2.0", "greenroom:plugin/tabs@0.2.0"]).unwrap(),
            "0.2.0"
        );
        // Nothing of ours: nothing to call, read as the newest.
        assert_eq!(of(&["wasi:cli/run@0.2.0"]).unwrap(), "0.2.0");
        let unknown = of(&["greenroom:plugin/cards@0.9.0"])
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("greenroom:plugin/cards@0.9.0") && unknown.contains("0.2.0, @0.1.0"),
            "{unknown}"
        );
        let mixed = of(&["greenroom:plugin/log@0.1.0", "greenroom:plugin/cards@0.2.0"])
            .unwrap_err()
            .to_string();
        assert!(mixed.contains("mixes two versions"), "{mixed}");
    }
}
