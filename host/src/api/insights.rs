//! Facts and the activity feed over HTTP.
//!
//! - `POST /api/facts` (scope `facts:write`): facts pushed by CI, with
//!   `at` when backfilling values measured earlier.
//! - `GET /api/facts/:name/top?order=asc&limit=10&kind=component`: "the 10
//!   services with the poorest coverage".
//! - `GET /api/entities/:kind/:namespace/:name/facts`: an entity's facts
//!   with their recent history.
//! - `POST /api/events` (scope `events:write`): a deploy script announces
//!   itself.
//! - `GET /api/events?since=30m&owner=&kind=&entity=&limit=`: "what was
//!   deployed in the last 30 minutes".
//!
//! A write is checked whole before anything is stored: one bad item
//! refuses the request, naming the item and field.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::identity::Caller;
use super::{ApiError, ApiJson, AppState, blocking};
use crate::catalog::EntityRef;
use crate::insights;
use crate::store::{EventQuery, EventRecord, FactRecord, FactValue, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/facts", post(push_facts).get(fact_names))
        .route("/api/facts/{name}/top", get(top))
        .route(
            "/api/entities/{kind}/{namespace}/{name}/facts",
            get(entity_facts),
        )
        .route("/api/events", post(push_events).get(events))
}

/// Most facts or events in one request.
const MAX_ITEMS: usize = 1000;

/// Points of history served per fact.
const HISTORY: usize = 30;

/// The request's items: the body itself, or its `items` list.
fn items(body: &Value) -> Result<Vec<(String, &Value)>, ApiError> {
    match body.get("items") {
        Some(Value::Array(list)) => {
            if list.len() > MAX_ITEMS {
                return Err(ApiError::BadRequest(format!(
                    "at most {MAX_ITEMS} items per request; got {}",
                    list.len()
                )));
            }
            Ok(list
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("items[{i}]"), v))
                .collect())
        }
        Some(_) => Err(ApiError::BadRequest("items must be a list".into())),
        None if body.is_object() => Ok(vec![("body".into(), body)]),
        None => Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        )),
    }
}

fn text_field<'a>(item: &'a Value, at: &str, field: &str) -> Result<Option<&'a str>, ApiError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{at}.{field}: expected text, got {other}"
        ))),
    }
}

/// A broken rule of item `at`, as a 400.
fn broken(at: &str, b: insights::Broken) -> ApiError {
    ApiError::BadRequest(format!("{at}.{}: {}", b.field, b.message))
}

/// Checks that every entity named exists; 422 naming the first that
/// does not.
async fn require_entities(state: &AppState, refs: Vec<(String, String)>) -> Result<(), ApiError> {
    let store = state.store.clone();
    let names: Vec<String> = refs.iter().map(|(_, r)| r.clone()).collect();
    let found = blocking(move || {
        let borrowed: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(store.catalog.existing_refs(&borrowed)?)
    })
    .await?;
    if let Some(((at, r), _)) = refs.iter().zip(found).find(|(_, ok)| !ok) {
        return Err(ApiError::Unprocessable(format!(
            "{at}.entityRef: no entity {r} in the catalog; nothing was stored"
        )));
    }
    Ok(())
}

fn entity_ref_of(item: &Value, at: &str) -> Result<String, ApiError> {
    let text = text_field(item, at, "entityRef")?
        .ok_or_else(|| ApiError::BadRequest(format!("{at}.entityRef is missing")))?;
    EntityRef::parse(text, Some("component"), "default")
        .map(|r| r.to_string())
        .map_err(|e| ApiError::BadRequest(format!("{at}.entityRef '{text}': {e}")))
}

async fn push_facts(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let source = format!("push:{}", caller.source_name());
    let mut facts = Vec::new();
    let mut refs = Vec::new();
    for (at, item) in items(&body)? {
        let entity_ref = entity_ref_of(item, &at)?;
        facts.extend(pushed_facts(item, &at, &entity_ref, &source, now)?);
        refs.push((at, entity_ref));
    }
    require_entities(&state, refs).await?;
    let store = state.store.clone();
    let stored = blocking(move || {
        insights::put_pushed_facts(&store, &facts).map_err(|e| match e {
            insights::Refused::Store(e) => e.into(),
            refused => ApiError::Unprocessable(refused.to_string()),
        })
    })
    .await?;
    Ok(Json(json!({"stored": stored.0, "changed": stored.1})))
}

/// The facts of one pushed item (`at` names it in errors), each checked by
/// the fact rules of `insights`.
fn pushed_facts(
    item: &Value,
    at: &str,
    entity_ref: &str,
    source: &str,
    now: i64,
) -> Result<Vec<FactRecord>, ApiError> {
    let url = insights::check_url(text_field(item, at, "url")?).map_err(|b| broken(at, b))?;
    // Backfills say when a value was measured; never in the future.
    let at_ms = time_of(item, at, now)?;
    if at_ms > now + 60_000 {
        return Err(ApiError::BadRequest(format!("{at}.at is in the future")));
    }
    let Some(Value::Object(values)) = item.get("facts") else {
        return Err(ApiError::BadRequest(format!(
            "{at}.facts must be an object of name: value"
        )));
    };
    if values.is_empty() {
        return Err(ApiError::BadRequest(format!("{at}.facts is empty")));
    }
    let mut facts = Vec::with_capacity(values.len());
    for (name, value) in values {
        insights::check_fact_name(name).map_err(|b| broken(at, b))?;
        let parsed = match value {
            Value::Number(n) => n.as_f64().map(FactValue::Number),
            Value::Bool(b) => Some(FactValue::Flag(*b)),
            Value::String(s) => Some(FactValue::Text(s.clone())),
            _ => None,
        };
        let checked = parsed
            .ok_or_else(|| insights::bad_fact_value(name))
            .and_then(|v| insights::check_fact_value(name, &v).map(|()| v));
        let value = checked.map_err(|b| {
            ApiError::BadRequest(format!("{at}.{}: {}, got {value}", b.field, b.message))
        })?;
        facts.push(FactRecord {
            entity_ref: entity_ref.to_string(),
            name: name.clone(),
            value,
            source: source.to_string(),
            url: url.clone(),
            at_ms,
        });
    }
    Ok(facts)
}

/// `GET /api/facts`: the fact names known, with their type and how many
/// entities have each.
async fn fact_names(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let names = blocking(move || Ok(store.facts.fact_names()?)).await?;
    let items: Vec<Value> = names
        .into_iter()
        .map(|(name, kind, n)| json!({"name": name, "type": kind, "entities": n}))
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(serde::Deserialize)]
struct TopQuery {
    order: Option<String>,
    limit: Option<usize>,
    kind: Option<String>,
}

async fn top(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<TopQuery>,
) -> Result<Json<Value>, ApiError> {
    if insights::check_fact_name(&name).is_err() {
        return Err(ApiError::BadRequest(format!(
            "'{name}' is not a fact name (lower-case dotted words)"
        )));
    }
    let ascending = match q.order.as_deref() {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "order '{other}': use asc (lowest first) or desc"
            )));
        }
    };
    let limit = q.limit.unwrap_or(10).clamp(1, 500);
    let kind = q.kind.map(|k| k.to_lowercase());
    let store = state.store.clone();
    let key = name.clone();
    let items = blocking(move || {
        if let Some(t) = store.facts.fact_type(&key)?.filter(|t| t != "number") {
            return Err(ApiError::BadRequest(format!(
                "fact {key} holds {t} values; only numbers rank"
            )));
        }
        Ok(store
            .facts
            .top_facts(&key, ascending, limit, kind.as_deref())?)
    })
    .await?;
    Ok(Json(json!({
        "name": name,
        "order": if ascending { "asc" } else { "desc" },
        "items": items,
    })))
}

async fn entity_facts(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name).to_string();
    let store = state.store.clone();
    let key = r.clone();
    let items = blocking(move || {
        if !store.catalog.existing_refs(&[key.as_str()])?[0] {
            return Err(ApiError::NotFound(format!("No entity {key} found")));
        }
        let facts = store.facts.entity_facts(&key)?;
        let mut out = Vec::with_capacity(facts.len());
        for fact in facts {
            let history: Vec<Value> = store
                .facts
                .fact_history(&key, &fact.name, HISTORY)?
                .into_iter()
                .map(|(at, value, _)| json!([at, value]))
                .collect();
            let mut v = json!(fact);
            v["history"] = Value::Array(history);
            out.push(v);
        }
        Ok(out)
    })
    .await?;
    Ok(Json(json!({"entityRef": r, "items": items})))
}

/// `at`: RFC 3339 text or milliseconds since the epoch.
pub(super) fn time_of(item: &Value, at: &str, now: i64) -> Result<i64, ApiError> {
    match item.get("at") {
        None | Some(Value::Null) => Ok(now),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| ApiError::BadRequest(format!("{at}.at: {n} is not a time in ms"))),
        Some(Value::String(s)) => humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{at}.at: '{s}' is not an RFC 3339 time like 2026-11-26T14:05:00Z"
                ))
            }),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{at}.at: expected RFC 3339 text or ms, got {other}"
        ))),
    }
}

async fn push_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let mut events = Vec::new();
    let mut refs = Vec::new();
    for (at, item) in items(&body)? {
        let entity_ref = match item.get("entityRef") {
            None | Some(Value::Null) => None,
            Some(_) => Some(entity_ref_of(item, &at)?),
        };
        if let Some(r) = &entity_ref {
            refs.push((at.clone(), r.clone()));
        }
        let text = |field| text_field(item, &at, field);
        let event = EventRecord {
            source: format!("push:{}", caller.source_name()),
            id: match text("id")? {
                Some(id) => id.to_string(),
                None => uuid::Uuid::new_v4().to_string(),
            },
            kind: text("kind")?.unwrap_or_default().to_string(),
            entity_ref,
            title: text("title")?.unwrap_or_default().to_string(),
            url: text("url")?.map(str::to_string),
            at_ms: time_of(item, &at, now)?,
            tone: text("tone")?.unwrap_or("info").to_string(),
            actor: text("actor")?.map(str::to_string),
            owner: None,
        };
        events.push(insights::check_event(event).map_err(|b| broken(&at, b))?);
    }
    require_entities(&state, refs).await?;
    let store = state.store.clone();
    let count = events.len();
    let added = blocking(move || Ok(store.events.put_events(&events)?)).await?;
    Ok(Json(json!({"received": count, "added": added})))
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    since: Option<String>,
    owner: Option<String>,
    kind: Option<String>,
    /// A kind to leave out.
    except: Option<String>,
    entity: Option<String>,
    limit: Option<usize>,
}

/// `30m`, `24h`, `7d` ago, or an RFC 3339 time.
fn since_ms(text: &str, now: i64) -> Result<i64, ApiError> {
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(now - d.as_millis() as i64);
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "since '{text}': a duration like 30m or 7d, or a time like 2026-11-26T14:00:00Z"
            ))
        })
}

async fn events(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let parse_ref = |text: &str, kind: &str, what: &str| {
        EntityRef::parse(text, Some(kind), "default")
            .map(|r| r.to_string())
            .map_err(|e| ApiError::BadRequest(format!("{what} '{text}': {e}")))
    };
    let query = EventQuery {
        since_ms: since_ms(q.since.as_deref().unwrap_or("24h"), now)?,
        owner: q
            .owner
            .as_deref()
            .map(|o| parse_ref(o, "group", "owner"))
            .transpose()?,
        kind: q.kind.map(|k| k.to_lowercase()),
        except_kind: q.except.map(|k| k.to_lowercase()),
        entity_ref: q
            .entity
            .as_deref()
            .map(|e| parse_ref(e, "component", "entity"))
            .transpose()?,
        limit: q.limit.unwrap_or(50).clamp(1, 500),
    };
    let store = state.store.clone();
    let items = blocking(move || Ok(store.events.events(&query)?)).await?;
    Ok(Json(json!({"items": items})))
}
