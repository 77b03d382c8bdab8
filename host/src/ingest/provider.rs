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
use crate::yaml;

/// The location kind of provider locations.
pub const KIND: &str = "provider";

/// The key/value owner under which the host keeps when each provider
/// entity was last returned (one key per location).
pub const LAST_SEEN: &str = "greenroom.providers";

/// The owner a suggestion without one is checked with.
const OWNERLESS: &str = "group:default/greenroom-unassigned";

/// Most pages one discovery asks for.
pub const MAX_PAGES: usize = 10_000;

/// The key/value owner under which the host keeps each provider
/// location's suggestions (one key per location), as [`Suggestion`]s.
pub const SUGGESTIONS: &str = "greenroom.suggestions";

/// One page a provider gave.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Backstage entities as JSON text.
    pub entities: Vec<String>,
    /// Catalog files the source holds: (where people read it, its text).
    pub files: Vec<(String, String)>,
    /// Entities for a person to accept: (entity as JSON text, why).
    pub suggestions: Vec<(String, String)>,
    /// Catalog files that are gone (their urls): a partial refresh drops
    /// what they gave.
    pub gone: Vec<String>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
}

/// Software a provider suggests for the catalog, as kept between
/// discoveries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub entity_ref: String,
    /// The suggested owner's ref, when the provider found one.
    pub owner: Option<String>,
    /// The entity as it would be stored (checked like any other), with
    /// its suggested owner.
    pub entity: Value,
    pub reason: String,
}

/// The key/value owner under which the host keeps the decisions people
/// took on each provider location's suggestions (one key per location).
pub const DECISIONS: &str = "greenroom.suggestions.decided";

/// What a person decided about a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// Into the catalog, with the owner chosen.
    Accepted,
    /// The same software as an entity already in the catalog.
    Merged,
    /// Not software the catalog should hold.
    Dismissed,
    /// Accepted by a pull request adding its catalog file: in the catalog
    /// once that is merged.
    Proposed,
}

/// A decision on a suggestion, as recorded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub entity_ref: String,
    pub decision: Choice,
    /// Accepted: the owner chosen.
    pub owner: Option<String>,
    /// Merged: the entity it is.
    pub into: Option<String>,
    /// Proposed: what the plugin said of the pull request it opened.
    #[serde(default)]
    pub pull_request: Option<String>,
    /// Why, in the person's words.
    pub note: Option<String>,
    pub by: String,
    pub at_ms: i64,
}

/// The decisions taken on location `location_id`'s suggestions, oldest
/// first (the latest per ref stands).
pub fn decisions(store: &Store, location_id: &str) -> Vec<Decision> {
    store
        .plugin_state
        .kv_get(DECISIONS, location_id)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Records `decision` for location `location_id`, replacing any earlier
/// one on the same ref. Callers serialise decisions (one at a time per
/// process).
pub fn record_decision(
    store: &Store,
    location_id: &str,
    decision: Decision,
) -> Result<(), StoreError> {
    let mut all = decisions(store, location_id);
    all.retain(|d| d.entity_ref != decision.entity_ref);
    all.push(decision);
    let bytes = serde_json::to_vec(&all).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .plugin_state
        .kv_set(DECISIONS, location_id, &bytes, None, u64::MAX)
        .map(drop)
}

/// The key/value owner under which the host keeps each provider
/// location's coverage per day (one key per location).
pub const COVERAGE: &str = "greenroom.coverage";

/// Days of coverage trend kept.
const TREND_DAYS: usize = 90;

/// One day of a provider location's coverage: what it gave the catalog
/// and what waited to be claimed, at its last discovery that day.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub in_catalog: usize,
    pub waiting: usize,
}

fn trend(store: &Store, location_id: &str) -> Vec<Point> {
    store
        .plugin_state
        .kv_get(COVERAGE, location_id)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn record_trend(
    store: &Store,
    location_id: &str,
    now_ms: i64,
    in_catalog: usize,
    waiting: usize,
) -> Result<(), StoreError> {
    let day = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64),
    )
    .to_string()[..10]
        .to_string();
    let mut points = trend(store, location_id);
    points.retain(|p| p.day != day);
    points.push(Point {
        day,
        in_catalog,
        waiting,
    });
    let old = points.len().saturating_sub(TREND_DAYS);
    points.drain(..old);
    let bytes = serde_json::to_vec(&points).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .plugin_state
        .kv_set(COVERAGE, location_id, &bytes, None, u64::MAX)
        .map(drop)
}

/// How much of what one provider location sees is in the catalog.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// `<plugin>/<name>`, e.g. `github/acme` (an organisation).
    pub provider: String,
    /// Entities in the catalog from it (its files, its entities, the
    /// suggestions accepted).
    pub in_catalog: usize,
    /// Suggestions merged into an entity the catalog had: covered too.
    pub merged: usize,
    /// Suggestions nobody decided yet.
    pub waiting: usize,
    /// Suggestions dismissed: not counted.
    pub dismissed: usize,
    /// Suggestions accepted by a pull request not merged yet: counted as
    /// waiting.
    pub proposed: usize,
    /// Covered (in the catalog or merged) of everything it sees, in %.
    pub percent: f64,
    pub teams: Vec<TeamCoverage>,
    /// Per day, oldest first.
    pub trend: Vec<Point>,
}

/// One owner's share of a provider location's coverage.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamCoverage {
    /// `None`: suggestions without an owner.
    pub owner: Option<String>,
    pub in_catalog: usize,
    pub waiting: usize,
    pub percent: f64,
}

/// `covered` of `covered + waiting`, in % to one decimal (100 of none).
pub fn percent(covered: usize, waiting: usize) -> f64 {
    match covered + waiting {
        0 => 100.0,
        all => (covered as f64 * 1000.0 / all as f64).round() / 10.0,
    }
}

/// Coverage of every provider location, by target. Blocking.
pub fn coverage(store: &Store) -> Result<Vec<Coverage>, StoreError> {
    let waiting_all = suggestions(store)?;
    let mut out = Vec::new();
    let mut locations: Vec<crate::store::Location> = store
        .locations
        .locations()?
        .into_iter()
        .filter(|l| l.kind == KIND)
        .collect();
    locations.sort_by(|a, b| a.target.cmp(&b.target));
    for location in locations {
        let origin = format!("{KIND}:{}", location.target);
        let filter = crate::store::Filter(vec![crate::store::FilterSet::from_pairs([(
            "metadata.annotations.backstage.io/managed-by-origin-location",
            origin.as_str(),
        )])]);
        let mut teams: std::collections::BTreeMap<Option<String>, (usize, usize)> =
            Default::default();
        let entities = store.catalog.filter_refs(&filter)?;
        for (_, _, owner) in &entities {
            teams.entry(owner.clone()).or_default().0 += 1;
        }
        let waiting: Vec<&Suggestion> = waiting_all
            .iter()
            .filter(|(t, _)| *t == location.target)
            .map(|(_, s)| s)
            .collect();
        for s in &waiting {
            teams.entry(s.owner.clone()).or_default().1 += 1;
        }
        let decided = decisions(store, &location.id);
        let count = |c: Choice| decided.iter().filter(|d| d.decision == c).count();
        let (merged, proposed) = (count(Choice::Merged), count(Choice::Proposed));
        out.push(Coverage {
            provider: location.target.clone(),
            in_catalog: entities.len(),
            merged,
            waiting: waiting.len(),
            dismissed: count(Choice::Dismissed),
            proposed,
            percent: percent(entities.len() + merged, waiting.len() + proposed),
            teams: teams
                .into_iter()
                .map(|(owner, (in_catalog, waiting))| TeamCoverage {
                    owner,
                    in_catalog,
                    waiting,
                    percent: percent(in_catalog, waiting),
                })
                .collect(),
            trend: trend(store, &location.id),
        });
    }
    Ok(out)
}

/// The provider location of plugin `plugin` a catalog file at `url`
/// belongs in: the one that gave it before, else the plugin's first (by
/// target); `None` when the plugin has none.
pub fn location_for_file(
    store: &Store,
    plugin: &str,
    url: &str,
) -> Result<Option<crate::store::Location>, StoreError> {
    let mut mine: Vec<crate::store::Location> = store
        .locations
        .locations()?
        .into_iter()
        .filter(|l| l.kind == KIND && l.target.split('/').next() == Some(plugin))
        .collect();
    mine.sort_by(|a, b| a.target.cmp(&b.target));
    let key = format!("url:{url}");
    let holder = mine
        .iter()
        .position(|l| last_seen(store, &l.id).contains_key(&key));
    Ok(match holder {
        Some(i) => Some(mine.swap_remove(i)),
        None => mine.into_iter().next(),
    })
}

/// Every provider location's suggestions that are not in the catalog
/// (someone may have added a catalog file since), by location target.
pub fn suggestions(store: &Store) -> Result<Vec<(String, Suggestion)>, StoreError> {
    let mut out = Vec::new();
    for location in store.locations.locations()? {
        if location.kind != KIND {
            continue;
        }
        let Some(bytes) = store.plugin_state.kv_get(SUGGESTIONS, &location.id)? else {
            continue;
        };
        let kept: Vec<Suggestion> = serde_json::from_slice(&bytes).unwrap_or_default();
        let decided: std::collections::HashSet<String> = decisions(store, &location.id)
            .into_iter()
            .map(|d| d.entity_ref)
            .collect();
        for s in kept
            .into_iter()
            .filter(|s| !decided.contains(&s.entity_ref))
        {
            let in_catalog = EntityRef::parse(&s.entity_ref, None, "default")
                .ok()
                .map(|r| store.catalog.entity_origin(&r))
                .transpose()?
                .flatten()
                .is_some();
            if !in_catalog {
                out.push((location.target.clone(), s));
            }
        }
    }
    Ok(out)
}

/// Who answers provider locations: the plugins, wired in at start-up.
pub trait Providers: Send + Sync {
    /// The page of provider location `target` (`<plugin>/<name>`) that
    /// starts at `cursor`, or why there is none.
    fn page(&self, target: &str, cursor: Option<&str>) -> Result<Page, String>;

    /// How long an entity the location stopped returning stays.
    fn grace(&self, target: &str) -> Duration;
}

/// The source what location `location` gave under `key` is kept under:
/// an entity's ref, or `url:<url>` for a catalog file's entities.
fn source_of(location: &str, key: &str) -> String {
    format!("{location}#{key}")
}

/// When each source key of a location (see [`source_of`]) was last
/// returned, in ms.
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

/// Which provider location a walk reads, and when.
pub(super) struct At<'a> {
    /// `<plugin>/<name>`.
    pub target: &'a str,
    pub location_id: &'a str,
    pub now_ms: i64,
}

/// Reads provider location `at.target` into `sink`. Every page is asked
/// for before anything is written (the sink holds them all), so no plugin
/// is called under the store's write lock. With `pinned`, reads only that
/// page (the provider is not asked) and keeps everything else the
/// location holds: a partial refresh.
pub(super) fn walk(
    providers: Option<&dyn Providers>,
    kinds: &crate::catalog::Kinds,
    at: At<'_>,
    pinned: Option<Page>,
    sink: &mut dyn Sink,
) -> Result<(), StoreError> {
    let location = format!("{KIND}:{}", at.target);
    let Some(providers) = providers else {
        sink.problem(problem_at(
            at.location_id,
            &location,
            None,
            format!("{location}: entity providers are asked by a running portal, not here"),
        ));
        return Ok(());
    };
    let store = sink.store();
    let mut walk = Walk {
        kinds,
        location: location.clone(),
        location_id: at.location_id,
        decided: store
            .as_ref()
            .map(|s| decisions(s, at.location_id))
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.entity_ref.clone(), d))
            .collect(),
        returned: Vec::new(),
        suggested: Vec::new(),
        entities: 0,
    };
    let mut seen = store
        .as_ref()
        .map(|s| last_seen(s, at.location_id))
        .unwrap_or_default();
    let partial = pinned.is_some();
    let mut failed = None;
    let mut gone = Vec::new();
    if let Some(page) = pinned {
        walk.page(&page, 1, sink)?;
        gone = page.gone;
    } else {
        let mut cursor: Option<String> = None;
        for page_no in 1.. {
            if page_no > MAX_PAGES {
                failed = Some(format!("more than {MAX_PAGES} pages; the rest is not read"));
                break;
            }
            let page = match providers.page(at.target, cursor.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    failed = Some(format!("page {page_no}: {e}"));
                    break;
                }
            };
            walk.page(&page, page_no, sink)?;
            match page.next {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
    }
    if let Some(why) = failed {
        sink.problem(problem_at(
            at.location_id,
            &location,
            None,
            format!("{location}: discovery failed ({why}); the entities it gave before are kept"),
        ));
        for key in seen.keys() {
            sink.keep_source(&source_of(&location, key));
        }
        return Ok(());
    }
    let returned: std::collections::HashSet<String> = walk.returned.into_iter().collect();
    if partial {
        // Everything the page did not name stays as it was; what it says
        // is gone goes.
        let gone: std::collections::HashSet<String> =
            gone.iter().map(|url| format!("url:{url}")).collect();
        seen.retain(|key, _| !gone.contains(key));
        for key in seen.keys().filter(|k| !returned.contains(*k)) {
            sink.keep_source(&source_of(&location, key));
        }
    }
    for key in returned {
        seen.insert(key, at.now_ms);
    }
    if !partial {
        let grace = i64::try_from(providers.grace(at.target).as_millis()).unwrap_or(i64::MAX);
        seen.retain(|key, when| {
            let within = at.now_ms.saturating_sub(*when) < grace;
            if within && *when != at.now_ms {
                sink.keep_source(&source_of(&location, key));
            }
            within
        });
    }
    if let Some(store) = store {
        if let Ok(bytes) = serde_json::to_vec(&seen) {
            store
                .plugin_state
                .kv_set(LAST_SEEN, at.location_id, &bytes, None, u64::MAX)?;
        }
        if !partial && let Ok(bytes) = serde_json::to_vec(&walk.suggested) {
            store
                .plugin_state
                .kv_set(SUGGESTIONS, at.location_id, &bytes, None, u64::MAX)?;
            let waiting = walk
                .suggested
                .iter()
                .filter(|s| !walk.decided.contains_key(&s.entity_ref))
                .count();
            record_trend(&store, at.location_id, at.now_ms, walk.entities, waiting)?;
        }
    }
    Ok(())
}

fn problem_at(
    location_id: &str,
    source: &str,
    entity_ref: Option<String>,
    message: String,
) -> ProblemRecord {
    ProblemRecord {
        location_id: location_id.to_string(),
        source: source.to_string(),
        line: None,
        column: None,
        entity_ref,
        field: None,
        message,
    }
}

/// What a walk has read so far.
struct Walk<'a> {
    kinds: &'a crate::catalog::Kinds,
    /// `provider:<plugin>/<name>`.
    location: String,
    location_id: &'a str,
    /// Decisions people took on this location's suggestions, by ref.
    decided: HashMap<String, Decision>,
    /// The source keys given (see [`source_of`]).
    returned: Vec<String>,
    suggested: Vec<Suggestion>,
    /// Valid entities given (for the coverage trend).
    entities: usize,
}

impl Walk<'_> {
    fn page(&mut self, page: &Page, page_no: usize, sink: &mut dyn Sink) -> Result<(), StoreError> {
        let location = self.location.clone();
        for (url, text) in &page.files {
            let key = format!("url:{url}");
            self.entities += file(
                self.kinds,
                (&location, self.location_id),
                (&key, text),
                sink,
            )?;
            self.returned.push(key);
        }
        for (i, (text, reason)) in page.suggestions.iter().enumerate() {
            let at = format!("{location} page {page_no}, suggestion {}", i + 1);
            match suggestion(self.kinds, &location, text, reason) {
                Ok(s) => match self.decided.get(&s.entity_ref) {
                    Some(d) if d.decision == Choice::Accepted => {
                        self.accepted(s, d.owner.clone(), &at, sink)?;
                    }
                    _ => self.suggested.push(s),
                },
                Err(why) => sink.problem(problem_at(
                    self.location_id,
                    &location,
                    None,
                    format!("{at}: {why}"),
                )),
            }
        }
        for (i, text) in page.entities.iter().enumerate() {
            let at = format!("{location} page {page_no}, entity {}", i + 1);
            let value: Value = match serde_json::from_str(text) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    let message = format!("{at}: not a JSON object");
                    sink.problem(problem_at(self.location_id, &location, None, message));
                    continue;
                }
                Err(e) => {
                    let message = format!("{at}: not JSON: {e}");
                    sink.problem(problem_at(self.location_id, &location, None, message));
                    continue;
                }
            };
            self.entity(value, &at, i + 1, sink)?;
        }
        Ok(())
    }

    /// An accepted suggestion, as an entity of the location with the
    /// owner the person chose.
    fn accepted(
        &mut self,
        s: Suggestion,
        owner: Option<String>,
        at: &str,
        sink: &mut dyn Sink,
    ) -> Result<(), StoreError> {
        let mut value = s.entity;
        if let Some(owner) = owner.or(s.owner) {
            value["spec"]["owner"] = Value::String(owner);
        }
        self.entity(value, &format!("{at} (accepted)"), 1, sink)
    }

    /// One entity, checked, under its own source.
    fn entity(
        &mut self,
        mut value: Value,
        at: &str,
        line: usize,
        sink: &mut dyn Sink,
    ) -> Result<(), StoreError> {
        let location = &self.location;
        annotate(&mut value, location, location);
        match self.kinds.validate(value) {
            Ok(valid) => {
                let r = valid.entity_ref.to_string();
                sink.entity(valid, &source_of(location, &r), line)?;
                self.returned.push(r);
                self.entities += 1;
            }
            Err(invalid) => {
                let r = invalid.entity_ref.as_ref().map(EntityRef::to_string);
                let source = r
                    .as_deref()
                    .map_or(location.clone(), |r| source_of(location, r));
                let records = invalid
                    .problems
                    .into_iter()
                    .map(|p| ProblemRecord {
                        field: (p.field != FieldPath::default()).then(|| p.field.to_string()),
                        ..problem_at(
                            self.location_id,
                            &source,
                            r.clone(),
                            format!("{at}: {}", p.message),
                        )
                    })
                    .collect();
                sink.invalid(invalid.entity_ref.as_ref(), records)?;
                if let Some(r) = r {
                    self.returned.push(r);
                }
            }
        }
        Ok(())
    }
}

/// A catalog file a provider read (`key` = `url:<url>`, and its text),
/// read like one of the host's own: each document checked, problems on
/// their lines. All its entities are kept under one source, so a file
/// that stops parsing keeps what it gave before. Its Location entities
/// are stored but not followed: their targets are the provider's to read.
fn file(
    kinds: &crate::catalog::Kinds,
    (location, location_id): (&str, &str),
    (key, text): (&str, &str),
    sink: &mut dyn Sink,
) -> Result<usize, StoreError> {
    let source = source_of(location, key);
    let docs = match yaml::parse_documents(text) {
        Ok(d) => d,
        Err(e) => {
            sink.problem(super::syntax_problem(&e, location_id, key));
            sink.keep_source(&source);
            return Ok(0);
        }
    };
    let mut valid_ones = 0;
    for (index, doc) in docs.into_iter().enumerate() {
        let mut value = doc.value;
        annotate(&mut value, key, location);
        match kinds.validate(value) {
            Ok(valid) => {
                sink.entity(valid, &source, doc.line)?;
                valid_ones += 1;
            }
            Err(invalid) => {
                let at = super::DocumentAt {
                    text,
                    index,
                    line: doc.line,
                    location_id,
                    source: key,
                };
                let records = at.records(invalid.problems, invalid.entity_ref.as_ref());
                sink.invalid(invalid.entity_ref.as_ref(), records)?;
            }
        }
    }
    Ok(valid_ones)
}

/// A suggested entity checked as the catalog would check it, or why not.
fn suggestion(
    kinds: &crate::catalog::Kinds,
    location: &str,
    text: &str,
    reason: &str,
) -> Result<Suggestion, String> {
    let mut value: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err("not a JSON object".into()),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    annotate(&mut value, location, location);
    // A suggestion may come without an owner (the person accepting it
    // chooses one): checked with a stand-in owner, kept without.
    let ownerless = value["spec"].is_object() && value["spec"].get("owner").is_none();
    if ownerless {
        value["spec"]["owner"] = Value::String(OWNERLESS.into());
    }
    match kinds.validate(value) {
        Ok(valid) => {
            let mut entity = valid.value;
            if ownerless && let Some(spec) = entity["spec"].as_object_mut() {
                spec.remove("owner");
            }
            Ok(Suggestion {
                entity_ref: valid.entity_ref.to_string(),
                owner: valid.owner.filter(|_| !ownerless).map(|o| o.to_string()),
                entity,
                reason: reason.to_string(),
            })
        }
        Err(invalid) => Err(invalid
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}
