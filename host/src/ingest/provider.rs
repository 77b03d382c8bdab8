//! Entity provider locations (`provider:<plugin>/<name>`): a plugin's
//! `providers` export says, page by page, what a source knows of; each
//! entity goes through the same checks as one from a catalog file
//! (validation, the first location to claim a name keeps it, an entity
//! that turns invalid keeps its last good version).
//!
//! Two rules are the provider's own:
//! - **A discovery that fails keeps the last good set**: an error on any
//!   page keeps every entity the location holds, with the error as the
//!   location's problem.
//! - **An entity the provider stops returning goes after a grace period**
//!   (`[[catalog.providers]] grace`, default 1 h): a source that briefly
//!   forgets something does not empty the catalog of it. When each entity
//!   was last returned is kept in the store (host key/value state under
//!   [`LAST_SEEN`]), so the period holds across restarts and replicas.
//!
//! Each entity is its own source (`provider:<plugin>/<name>#<ref>`), which
//! is what lets one be kept while another goes.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::{Sink, annotate};
use crate::catalog::{EntityRef, FieldPath};
use crate::store::{ProblemRecord, Store, StoreError};

/// The location kind of provider locations.
pub const KIND: &str = "provider";

/// The key/value owner under which the host keeps when each provider
/// entity was last returned (one key per location).
pub const LAST_SEEN: &str = "greenroom.providers";

/// Most pages one discovery asks for.
pub const MAX_PAGES: usize = 10_000;

/// One page a provider gave.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Backstage entities as JSON text.
    pub entities: Vec<String>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
}

/// Who answers provider locations: the plugins, wired in at start-up.
pub trait Providers: Send + Sync {
    /// The page of provider location `target` (`<plugin>/<name>`) that
    /// starts at `cursor`, or why there is none.
    fn page(&self, target: &str, cursor: Option<&str>) -> Result<Page, String>;

    /// How long an entity the location stopped returning stays.
    fn grace(&self, target: &str) -> Duration;
}

/// The source an entity of location `location` is kept under.
fn source_of(location: &str, entity_ref: &str) -> String {
    format!("{location}#{entity_ref}")
}

/// When each entity of a location was last returned, in ms.
type LastSeen = HashMap<String, i64>;

fn last_seen(store: &Store, location_id: &str) -> LastSeen {
    store
        .plugin_state
        .kv_get(LAST_SEEN, location_id)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Reads provider location `target` into `sink`. Every page is asked for
/// before anything is written (the sink holds them all), so no plugin is
/// called under the store's write lock.
pub(super) fn walk(
    providers: Option<&dyn Providers>,
    kinds: &crate::catalog::Kinds,
    target: &str,
    location_id: &str,
    sink: &mut dyn Sink,
    now_ms: i64,
) -> Result<(), StoreError> {
    let location = format!("{KIND}:{target}");
    let problem = |source: &str, entity_ref: Option<String>, message: String| ProblemRecord {
        location_id: location_id.to_string(),
        source: source.to_string(),
        line: None,
        column: None,
        entity_ref,
        field: None,
        message,
    };
    let Some(providers) = providers else {
        sink.problem(problem(
            &location,
            None,
            format!("{location}: entity providers are asked by a running portal, not here"),
        ));
        return Ok(());
    };
    let store = sink.store();
    let mut seen = store
        .as_ref()
        .map(|s| last_seen(s, location_id))
        .unwrap_or_default();
    let mut returned = Vec::new();
    let mut cursor: Option<String> = None;
    let mut failed = None;
    for page_no in 1.. {
        if page_no > MAX_PAGES {
            failed = Some(format!("more than {MAX_PAGES} pages; the rest is not read"));
            break;
        }
        let page = match providers.page(target, cursor.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                failed = Some(format!("page {page_no}: {e}"));
                break;
            }
        };
        for (i, text) in page.entities.iter().enumerate() {
            let at = format!("{location} page {page_no}, entity {}", i + 1);
            let mut value: Value = match serde_json::from_str(text) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    sink.problem(problem(&location, None, format!("{at}: not a JSON object")));
                    continue;
                }
                Err(e) => {
                    sink.problem(problem(&location, None, format!("{at}: not JSON: {e}")));
                    continue;
                }
            };
            annotate(&mut value, &location, &location);
            match kinds.validate(value) {
                Ok(valid) => {
                    let r = valid.entity_ref.to_string();
                    sink.entity(valid, &source_of(&location, &r), i + 1)?;
                    returned.push(r);
                }
                Err(invalid) => {
                    let r = invalid.entity_ref.as_ref().map(EntityRef::to_string);
                    let source = r
                        .as_deref()
                        .map_or(location.clone(), |r| source_of(&location, r));
                    let records = invalid
                        .problems
                        .into_iter()
                        .map(|p| ProblemRecord {
                            field: (p.field != FieldPath::default()).then(|| p.field.to_string()),
                            ..problem(&source, r.clone(), format!("{at}: {}", p.message))
                        })
                        .collect();
                    sink.invalid(invalid.entity_ref.as_ref(), records)?;
                    if let Some(r) = r {
                        returned.push(r);
                    }
                }
            }
        }
        match page.next {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    if let Some(why) = failed {
        sink.problem(problem(
            &location,
            None,
            format!("{location}: discovery failed ({why}); the entities it gave before are kept"),
        ));
        for r in seen.keys() {
            sink.keep_source(&source_of(&location, r));
        }
        return Ok(());
    }
    let grace = i64::try_from(providers.grace(target).as_millis()).unwrap_or(i64::MAX);
    for r in returned {
        seen.insert(r, now_ms);
    }
    seen.retain(|r, at| {
        let within = now_ms.saturating_sub(*at) < grace;
        if within && *at != now_ms {
            sink.keep_source(&source_of(&location, r));
        }
        within
    });
    if let Some(store) = store
        && let Ok(bytes) = serde_json::to_vec(&seen)
    {
        store
            .plugin_state
            .kv_set(LAST_SEEN, location_id, &bytes, None, u64::MAX)?;
    }
    Ok(())
}
