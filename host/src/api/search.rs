//! `GET /api/search?q=&kind=&owner=&type=&doc=&limit=&cursor=`: global search
//! over entities and plugin documents, each hit with its owner and, for
//! entities, their facts and the last day's events, so that during an
//! incident one query answers who owns it, what was deployed and how it
//! is doing.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, blocking};
use crate::search::{Hit, SearchQuery};
use crate::store::{EventQuery, Store, now_ms};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/search", get(search))
        .route("/api/search/rebuild", post(rebuild))
}

/// Builds the index afresh from the store (admin): for after changing
/// plugins that contribute documents, or to time a full build.
async fn rebuild(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let search = state.search.clone();
    let started = std::time::Instant::now();
    let documents = blocking(move || search.build().map_err(ApiError::Internal)).await?;
    Ok(Json(json!({
        "documents": documents,
        "tookMs": started.elapsed().as_millis() as u64,
    })))
}

#[derive(serde::Deserialize)]
struct Params {
    q: Option<String>,
    kind: Option<String>,
    owner: Option<String>,
    #[serde(rename = "type")]
    spec_type: Option<String>,
    /// `entity` for catalog entities only.
    doc: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Facts and events shown per entity hit.
const FACTS: usize = 8;
const EVENTS: usize = 3;

async fn search(
    State(state): State<AppState>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let query = search_query(p)?;
    let (search, store) = (state.search.clone(), state.store.clone());
    let body = blocking(move || {
        let found = search.index.search(&query).map_err(ApiError::Internal)?;
        let items = found
            .hits
            .iter()
            .map(|hit| with_context(&store, hit))
            .collect::<Result<Vec<_>, _>>()?;
        let next = query.offset + found.hits.len();
        Ok(json!({
            "query": query.text,
            "total": found.total,
            "items": items,
            "facets": found.facets,
            "nextCursor": (next < found.total).then(|| next.to_string()),
        }))
    })
    .await?;
    Ok(Json(body))
}

/// The query the parameters ask, with its paging checked.
fn search_query(p: Params) -> Result<SearchQuery, ApiError> {
    let offset = match p.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= 10_000)
            .ok_or_else(|| {
                ApiError::BadRequest(format!("cursor '{c}' is not one this API gave"))
            })?,
    };
    let owner = match p.owner.as_deref() {
        None | Some("") => None,
        Some(o) => Some(super::owner_ref(o)?),
    };
    let lower = |v: Option<String>| v.filter(|v| !v.is_empty()).map(|v| v.to_lowercase());
    Ok(SearchQuery {
        text: p.q.unwrap_or_default(),
        kind: lower(p.kind),
        owner,
        spec_type: lower(p.spec_type),
        doc_type: p.doc.filter(|d| !d.is_empty()),
        limit: p.limit.unwrap_or(20).clamp(1, 100),
        offset,
    })
}

/// A hit as JSON; an entity's with its first facts and its events of the
/// last day, so a search during an incident shows what just happened.
fn with_context(store: &Store, hit: &Hit) -> Result<Value, ApiError> {
    let mut v = json!(hit);
    if hit.doc_type == "entity" {
        let facts: Vec<Value> = store
            .facts
            .entity_facts(&hit.entity_ref)?
            .into_iter()
            .take(FACTS)
            .map(|f| json!({"name": f.name, "value": f.value, "url": f.url}))
            .collect();
        let events = store.events.events(&EventQuery {
            since_ms: now_ms() - 24 * 3_600_000,
            entity_ref: Some(hit.entity_ref.clone()),
            limit: EVENTS,
            ..Default::default()
        })?;
        v["facts"] = Value::Array(facts);
        v["recentEvents"] = json!(events);
    }
    Ok(v)
}
