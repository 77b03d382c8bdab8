//! The host side of the WIT imports: what a plugin can reach, per call.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::greenroom::plugin::{catalog, config, http, kv, log, source, types};
use super::http::{Allowed, Error as HttpError, Request};
use crate::catalog::EntityRef;
use crate::ingest::{Reader, Target};
use crate::store::Store as Db;

/// The state of one call into one plugin. A fresh one per call, so nothing
/// leaks between calls.
pub struct HostState {
    pub plugin_id: String,
    pub limits: MemoryBudget,
    wasi: WasiCtx,
    table: ResourceTable,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    db: Arc<Db>,
    kv_quota: u64,
    http: Arc<Allowed>,
    reader: Reader,
    settings: Arc<std::collections::HashMap<String, String>>,
    /// When the call must be over: host imports that wait (HTTP) stop
    /// before then, since the epoch deadline only interrupts running
    /// WebAssembly, and a little early, so that the plugin has time to
    /// report the timeout in its own words.
    pub deadline: std::time::Instant,
    http_deadline: std::time::Instant,
}

/// What every call's state is made from.
pub struct CallContext {
    pub plugin_id: String,
    pub memory_bytes: usize,
    pub db: Arc<Db>,
    pub kv_quota: u64,
    pub http: Arc<Allowed>,
    pub reader: Reader,
    /// The operator's `[plugins.config.<id>]`.
    pub settings: Arc<std::collections::HashMap<String, String>>,
}

impl HostState {
    pub fn new(ctx: &CallContext, timeout: std::time::Duration) -> HostState {
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let stderr = MemoryOutputPipe::new(64 * 1024);
        // No preopened directories, no environment, no arguments, no stdin,
        // no network: the WASI interfaces standard toolchains import are
        // linked, and answer with errors.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            plugin_id: ctx.plugin_id.clone(),
            limits: MemoryBudget {
                cap: ctx.memory_bytes,
                used: 0,
            },
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
            db: ctx.db.clone(),
            kv_quota: ctx.kv_quota,
            http: ctx.http.clone(),
            reader: ctx.reader.clone(),
            settings: ctx.settings.clone(),
            deadline: std::time::Instant::now() + timeout,
            http_deadline: std::time::Instant::now() + timeout
                - (timeout / 10).min(std::time::Duration::from_millis(100)),
        }
    }
}

/// The memory cap of one call, counted over all of the instance's linear
/// memories together: a component may define several, and a cap per memory
/// would let it take the cap several times over.
#[derive(Debug)]
pub struct MemoryBudget {
    pub cap: usize,
    pub used: usize,
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called when a memory is made (from 0) and on every growth.
        let used = self.used + desired.saturating_sub(current);
        if used > self.cap {
            // An error, not `Ok(false)`: the call traps at once with this
            // reason instead of the plugin seeing a failed grow.
            return Err(wasmtime::Error::msg(format!(
                "growing memory to {used} bytes over all memories, past the cap of {} bytes",
                self.cap
            )));
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = self.plugin_id.as_str();
        let message: String = message.chars().take(4096).collect();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }
}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.db
            .plugin_state
            .kv_get(&self.plugin_id, &key)
            .unwrap_or_else(|e| {
                tracing::error!(plugin = %self.plugin_id, error = %e, "kv get failed");
                None
            })
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_seconds: Option<u32>) -> Result<(), String> {
        match self
            .db
            .plugin_state
            .kv_set(&self.plugin_id, &key, &value, ttl_seconds, self.kv_quota)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("kv quota of {} bytes exceeded", self.kv_quota)),
            Err(e) => {
                tracing::error!(plugin = %self.plugin_id, error = %e, "kv set failed");
                Err("kv store unavailable".into())
            }
        }
    }

    fn delete(&mut self, key: String) {
        if let Err(e) = self.db.plugin_state.kv_delete(&self.plugin_id, &key) {
            tracing::error!(plugin = %self.plugin_id, error = %e, "kv delete failed");
        }
    }
}

/// Converts a served entity (JSON text) to the WIT record.
pub fn entity_record(json: String) -> Option<types::Entity> {
    let v: serde_json::Value = serde_json::from_str(&json).ok()?;
    let kind = v["kind"].as_str()?.to_string();
    let namespace = v["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = v["metadata"]["name"].as_str()?.to_string();
    Some(types::Entity {
        entity_ref: EntityRef::new(&kind, &namespace, &name).to_string(),
        kind,
        namespace,
        name,
        json,
    })
}

/// The etag of an entity record (empty when absent): a version to cache
/// answers against.
pub fn entity_etag(entity: &types::Entity) -> String {
    serde_json::from_str::<serde_json::Value>(&entity.json)
        .ok()
        .and_then(|v| v["metadata"]["etag"].as_str().map(str::to_string))
        .unwrap_or_default()
}

impl catalog::Host for HostState {
    fn get_entity(&mut self, entity_ref: String) -> Option<types::Entity> {
        let r = EntityRef::parse(&entity_ref, Some("component"), "default").ok()?;
        self.db
            .catalog
            .entity_by_ref(&r, &[])
            .ok()
            .flatten()
            .and_then(entity_record)
    }

    fn query(&mut self, filter: String, limit: u32) -> Vec<types::Entity> {
        let Ok(filter) = crate::store::Filter::parse([filter.as_str()]) else {
            return Vec::new();
        };
        let q = crate::store::ListQuery {
            filter,
            limit: Some(limit.min(500) as usize),
            ..Default::default()
        };
        self.db
            .catalog
            .list(&q)
            .map(|list| list.into_iter().filter_map(entity_record).collect())
            .unwrap_or_default()
    }
}

/// Where `path` (relative to the entity's catalog file) is, refusing paths
/// that leave the catalog file's folder (lexically or through links).
/// Returns the target and the catalog file it must stay beside.
pub fn beside_entity(db: &Db, entity_ref: &str, path: &str) -> Result<(Target, Target), String> {
    let r =
        EntityRef::parse(entity_ref, Some("component"), "default").map_err(|e| e.to_string())?;
    let (_, origin) = db
        .catalog
        .entity_origin(&r)
        .map_err(|_| "catalog unavailable".to_string())?
        .ok_or_else(|| format!("no entity {r}"))?;
    let catalog_file = match origin.split_once(':') {
        Some(("file", p)) => Target::File(p.into()),
        Some(("url", u)) => Target::Url(u.parse().map_err(|_| "bad source URL".to_string())?),
        _ => return Err("the entity's source is unknown".into()),
    };
    if path.starts_with('/') || path.contains("://") {
        return Err(format!(
            "'{path}' must be relative to the entity's catalog file"
        ));
    }
    let target = catalog_file.join(path).map_err(|e| e.to_string())?;
    if !target.is_within(&catalog_file) {
        return Err(format!("'{path}' leaves the entity's folder"));
    }
    if !target.is_within_through_links(&catalog_file) {
        return Err(format!(
            "'{path}' leaves the entity's folder (through a link)"
        ));
    }
    Ok((target, catalog_file))
}

/// Reads `path` beside the entity's catalog file before `deadline`; a URL
/// is re-checked against the folder on every redirect hop.
pub fn read_beside(
    db: &Db,
    reader: &Reader,
    entity_ref: &str,
    path: &str,
    deadline: std::time::Instant,
) -> Result<Vec<u8>, String> {
    let (target, catalog_file) = beside_entity(db, entity_ref, path)?;
    reader
        .read_bytes_within(&target, &[&catalog_file], Some(deadline))
        .map_err(|e| format!("{path}: {e}"))
}

/// Most names `list-dir` returns.
const MAX_LISTED: usize = 10_000;

impl source::Host for HostState {
    fn read_file(&mut self, entity_ref: String, path: String) -> Result<String, String> {
        // Within the call's time, like plugin HTTP: a slow server cannot
        // keep the call past its deadline.
        let bytes = read_beside(
            &self.db,
            &self.reader,
            &entity_ref,
            &path,
            self.http_deadline,
        )?;
        String::from_utf8(bytes).map_err(|_| format!("{path}: is not UTF-8 text"))
    }

    fn list_dir(&mut self, entity_ref: String, path: String) -> Result<Vec<String>, String> {
        let folder = match beside_entity(&self.db, &entity_ref, &path)?.0 {
            Target::File(folder) => folder,
            Target::Url(_) => {
                return Err("the entity was read from a URL; its folders cannot be listed".into());
            }
        };
        let entries = std::fs::read_dir(&folder).map_err(|e| format!("{path}: {e}"))?;
        let mut names = Vec::new();
        for entry in entries.flatten().take(MAX_LISTED) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Symlinks are not followed out of the folder: only real
            // folders are listed as folders.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            names.push(if is_dir { format!("{name}/") } else { name });
        }
        names.sort();
        Ok(names)
    }
}

impl http::Host for HostState {
    fn fetch(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        let req = Request {
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body,
        };
        let allowed = self.http.clone();
        let result = match crate::ingest::source::io_runtime() {
            Ok(rt) => rt.block_on(
                allowed.fetch_within(
                    req,
                    self.http_deadline
                        .saturating_duration_since(std::time::Instant::now()),
                ),
            ),
            Err(e) => Err(HttpError::Transport(e.to_string())),
        };
        match result {
            Ok(r) => Ok(http::Response {
                status: r.status,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(name, value)| http::Header { name, value })
                    .collect(),
                body: r.body,
            }),
            Err(e) => {
                tracing::debug!(plugin = %self.plugin_id, error = ?e, "plugin http request refused or failed");
                Err(match e {
                    HttpError::NotGranted(m) => http::HttpError::NotGranted(m),
                    HttpError::Refused(m) => http::HttpError::Refused(m),
                    HttpError::Timeout => http::HttpError::Timeout,
                    HttpError::TooLarge => http::HttpError::TooLarge,
                    HttpError::Transport(m) => http::HttpError::Transport(m),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_together() {
        const MIB: usize = 1024 * 1024;
        let mut budget = MemoryBudget {
            cap: 64 * MIB,
            used: 0,
        };
        // A first memory made at 40 MiB, a second at 20: 60 in all.
        assert!(budget.memory_growing(0, 40 * MIB, None).unwrap());
        assert!(budget.memory_growing(0, 20 * MIB, None).unwrap());
        // Growing either past 64 MiB in all is refused with the reason,
        // though each alone is under the cap.
        let err = budget.memory_growing(20 * MIB, 30 * MIB, None).unwrap_err();
        assert!(err.to_string().contains("growing memory"), "{err}");
        assert!(budget.memory_growing(40 * MIB, 44 * MIB, None).unwrap());
        assert_eq!(budget.used, 64 * MIB);
    }
}
