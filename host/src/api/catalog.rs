//! Backstage-compatible catalog routes (`/api/catalog/...`), so existing
//! Backstage scripts and catalog clients keep working, plus Greenroom's
//! `problems` and `orphans`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, AppState, blocking};
use crate::catalog::EntityRef;
use crate::service::locations;
use crate::store::{Filter, ListQuery, Order, PageQuery, Store};
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/entities", get(list_entities))
        .route("/entities/by-query", get(query_entities))
        .route("/entities/by-name/{kind}/{namespace}/{name}", get(by_name))
        .route("/entities/by-uid/{uid}", get(by_uid))
        .route("/entities/by-refs", post(by_refs))
        .route("/entity-facets", get(facets))
        .route("/locations", get(list_locations).post(add_location))
        .route("/locations/{id}", get(get_location).delete(delete_location))
        .route(
            "/locations/by-entity/{kind}/{namespace}/{name}",
            get(location_by_entity),
        )
        .route("/validate-entity", post(validate_entity))
        .route("/refresh", post(refresh))
        .route("/problems", get(problems))
        .route("/orphans", get(orphans))
        .route("/coverage", get(super::suggestions::coverage))
}

/// Decoded query parameters, repeats kept (`filter=` may repeat).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn new(raw: Option<String>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn one<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.all(key).last()
    }

    pub(super) fn number(&self, key: &str) -> Result<Option<usize>, ApiError> {
        self.one(key)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::BadRequest(format!("{key} must be a non-negative integer, got '{v}'"))
                })
            })
            .transpose()
    }

    /// `fields=a,b&fields=c` → `[a, b, c]`.
    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.all(key)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn json_text(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn join_array(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// `GET /entities`: a JSON array. Without `limit` the whole selection is
/// streamed, never held in memory at once.
async fn list_entities(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::new(raw);
    let query = ListQuery {
        filter: Filter::parse(p.all("filter"))?,
        order: p
            .all("order")
            .map(Order::parse_prefixed)
            .collect::<Result<_, _>>()?,
        limit: p.number("limit")?,
        offset: p.number("offset")?.unwrap_or(0),
        fields: p.list("fields"),
    };
    let store = state.store.clone();
    if query.limit.is_some() {
        let items = blocking(move || Ok(store.catalog.list(&query)?)).await?;
        return Ok(json_text(StatusCode::OK, join_array(&items)));
    }
    Ok(stream_entities(store, query))
}

/// Every entity `query` matches as one JSON array, streamed in chunks of
/// 64 KiB from a cursor, so memory stays bounded whatever the catalog's
/// size. A failure half-way ends the body early (logged).
fn stream_entities(store: Arc<Store>, query: ListQuery) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut buf = String::from("[");
        let mut first = true;
        let result = store.catalog.list_each(&query, &mut |entity| {
            if !first {
                buf.push(',');
            }
            first = false;
            buf.push_str(&entity);
            if buf.len() >= 64 * 1024 {
                return tx
                    .blocking_send(Ok(Bytes::from(std::mem::take(&mut buf))))
                    .is_ok();
            }
            true
        });
        match result {
            Ok(()) => {
                buf.push(']');
                let _ = tx.blocking_send(Ok(Bytes::from(buf)));
            }
            Err(e) => {
                tracing::error!(error = %e, "streaming entities failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /entities/by-query`: cursor paging with totals.
async fn query_entities(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::new(raw);
    let term = p
        .one("fullTextFilterTerm")
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let query = PageQuery {
        filter: Filter::parse(p.all("filter"))?,
        order: p.one("orderField").map(Order::parse_suffixed).transpose()?,
        full_text: term.map(|t| {
            let term: String = t.chars().take(200).collect();
            crate::store::FullText::new(&term, &p.list("fullTextFilterFields"))
        }),
        limit: p.number("limit")?.unwrap_or(20),
        cursor: p.one("cursor").map(str::to_string),
        fields: p.list("fields"),
    };
    let store = state.store.clone();
    let page = blocking(move || Ok(store.catalog.page(&query)?)).await??;
    let mut page_info = serde_json::Map::new();
    if let Some(c) = page.next_cursor {
        page_info.insert("nextCursor".into(), Value::String(c));
    }
    if let Some(c) = page.prev_cursor {
        page_info.insert("prevCursor".into(), Value::String(c));
    }
    let text = format!(
        "{{\"items\":{},\"totalItems\":{},\"pageInfo\":{}}}",
        join_array(&page.items),
        page.total_items,
        Value::Object(page_info)
    );
    Ok(json_text(StatusCode::OK, text))
}

async fn by_name(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let fields = Params::new(raw).list("fields");
    let r = EntityRef::new(&kind, &namespace, &name);
    let store = state.store.clone();
    let lookup = r.clone();
    match blocking(move || Ok(store.catalog.entity_by_ref(&lookup, &fields)?)).await? {
        Some(e) => Ok(json_text(StatusCode::OK, e)),
        None => Err(ApiError::NotFound(format!(
            "No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
        ))),
    }
}

async fn by_uid(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let fields = Params::new(raw).list("fields");
    let store = state.store.clone();
    let key = uid.clone();
    match blocking(move || Ok(store.catalog.entity_by_uid(&key, &fields)?)).await? {
        Some(e) => Ok(json_text(StatusCode::OK, e)),
        None => Err(ApiError::NotFound(format!("No entity with uid {uid}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

async fn by_refs(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ApiJson(body): ApiJson<ByRefs>,
) -> Result<Response, ApiError> {
    if body.entity_refs.len() > 10_000 {
        return Err(ApiError::BadRequest(
            "at most 10000 entityRefs per request".into(),
        ));
    }
    let mut fields = body.fields;
    fields.extend(Params::new(raw).list("fields"));
    let refs: Vec<Option<EntityRef>> = body
        .entity_refs
        .iter()
        .map(|r| EntityRef::parse(r, None, crate::catalog::DEFAULT_NAMESPACE).ok())
        .collect();
    let store = state.store.clone();
    let items = blocking(move || Ok(store.catalog.entities_by_refs(&refs, &fields)?)).await?;
    let items: Vec<String> = items
        .into_iter()
        .map(|i| i.unwrap_or_else(|| "null".into()))
        .collect();
    Ok(json_text(
        StatusCode::OK,
        format!("{{\"items\":{}}}", join_array(&items)),
    ))
}

/// `GET /entity-facets`. Answers are cached until the catalog changes; a
/// client that sends `Cache-Control: no-cache` gets them computed afresh.
async fn facets(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::new(raw);
    let facets: Vec<String> = p.all("facet").map(str::to_string).collect();
    if facets.is_empty() {
        return Err(ApiError::BadRequest(
            "give at least one facet, e.g. ?facet=kind".into(),
        ));
    }
    let filter = Filter::parse(p.all("filter"))?;
    let store = state.store.clone();
    let fresh = super::wants_fresh(&headers);
    let result = blocking(move || {
        Ok(if fresh {
            store.catalog.facets_uncached(&facets, &filter)?
        } else {
            store.catalog.facets(&facets, &filter)?
        })
    })
    .await?;
    let facets: serde_json::Map<String, Value> = result
        .into_iter()
        .map(|(k, counts)| {
            let list = counts
                .into_iter()
                .map(|(value, count)| json!({"value": value, "count": count}))
                .collect();
            (k, Value::Array(list))
        })
        .collect();
    Ok(Json(json!({ "facets": facets })))
}

async fn list_locations(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let locations = blocking(move || Ok(store.locations.locations()?)).await?;
    Ok(Json(Value::Array(
        locations
            .into_iter()
            .map(|l| json!({ "data": l }))
            .collect(),
    )))
}

async fn get_location(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let key = id.clone();
    let (location, problems) = blocking(move || {
        Ok((
            store.locations.location(&key)?,
            store.locations.problems(Some(&key))?,
        ))
    })
    .await?;
    let location =
        location.ok_or_else(|| ApiError::NotFound(format!("Found no location with ID {id}")))?;
    let mut value = serde_json::to_value(location).map_err(|e| ApiError::Internal(e.into()))?;
    value["problems"] = serde_json::to_value(problems).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct NewLocation {
    #[serde(rename = "type", default = "url")]
    kind: String,
    target: String,
}

fn url() -> String {
    "url".into()
}

async fn add_location(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ApiJson(body): ApiJson<NewLocation>,
) -> Result<Response, ApiError> {
    let params = Params::new(raw);
    let dry_run = params.one("dryRun").is_some_and(|v| v == "true");
    let wait = params.one("wait").is_some_and(|v| v == "true");
    let ingestor = state.refresher.ingestor().clone();
    locations::check(&state.config.catalog, &ingestor, &body.kind, &body.target)?;
    let store = state.store.clone();
    if dry_run {
        let (kind, target) = (body.kind.clone(), body.target.clone());
        let found =
            blocking(move || Ok(locations::preview(&store, &ingestor, &kind, &target)?)).await?;
        let answer = json!({
            "location": {"id": "", "type": body.kind, "target": body.target},
            "entities": found.entities,
            "exists": found.exists,
            "problems": found.problems,
        });
        return Ok((StatusCode::CREATED, Json(answer)).into_response());
    }
    let location =
        blocking(move || Ok(locations::register(&store, &body.kind, &body.target)?)).await?;
    // Read in the background, as Backstage does, so that registrations in
    // a row commit together; `wait=true` answers once it has been read.
    if !wait {
        state.refresher.queue(location.clone(), None);
        let answer = json!({"location": location, "entities": [], "refresh": "queued"});
        return Ok((StatusCode::CREATED, Json(answer)).into_response());
    }
    let summary = state.refresher.queue_and_wait(location.clone()).await?;
    let answer = json!({"location": location, "entities": [], "summary": summary});
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn delete_location(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let key = id.clone();
    if blocking(move || Ok(store.locations.delete_location(&key)?)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "Found no location with ID {id}"
        )))
    }
}

async fn location_by_entity(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let store = state.store.clone();
    let lookup = r.clone();
    let found = blocking(move || Ok(store.catalog.location_of_entity(&lookup)?)).await?;
    found
        .map(|l| Json(json!(l)))
        .ok_or_else(|| ApiError::NotFound(format!("No entity {r} found")))
}

#[derive(Deserialize)]
struct ValidateRequest {
    entity: Value,
    #[allow(dead_code)]
    #[serde(default)]
    location: Option<String>,
}

async fn validate_entity(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Result<Response, ApiError> {
    let kinds = state.refresher.ingestor().kinds.clone();
    match kinds.validate(body.entity) {
        Ok(_) => Ok((StatusCode::OK, Json(json!({"errors": []}))).into_response()),
        Err(invalid) => {
            let errors: Vec<Value> = invalid
                .problems
                .iter()
                .map(|p| {
                    let field = p.field.to_string();
                    json!({"name": "InputError", "message": p.message, "field": field})
                })
                .collect();
            Ok((StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response())
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshRequest {
    entity_ref: String,
}

/// Re-reads the location an entity came from, now.
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    let r = EntityRef::parse(&body.entity_ref, None, crate::catalog::DEFAULT_NAMESPACE)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let store = state.store.clone();
    let lookup = r.clone();
    let location = blocking(move || Ok(store.catalog.location_of_entity(&lookup)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No entity {r} found")))?;
    state.refresher.refresh(location).await?;
    Ok(StatusCode::OK)
}

async fn problems(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let location = Params::new(raw).one("location").map(str::to_string);
    let store = state.store.clone();
    let items = blocking(move || Ok(store.locations.problems(location.as_deref())?)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn orphans(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let items = blocking(move || Ok(store.catalog.orphans()?)).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|(entity, owner)| json!({"entityRef": entity, "ownerRef": owner}))
        .collect();
    Ok(Json(json!({ "items": items })))
}
