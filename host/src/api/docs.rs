//! Documentation: `GET /api/docs/:kind/:namespace/:name/*path` answers a
//! page (sanitised HTML, title, table of contents, navigation, and a
//! prefilled "report an issue" link) from the first docs plugin that has
//! it, or an image or other asset of the entity's TechDocs from the same
//! origin.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::plugins::entity_of;
use super::{ApiError, AppState, blocking};
use crate::catalog::EntityRef;
use crate::service::docs;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/docs/{kind}/{namespace}/{name}", get(home))
        // The same home page with a trailing slash, as Backstage links it.
        .route("/api/docs/{kind}/{namespace}/{name}/", get(home))
        .route(
            "/api/entities/{kind}/{namespace}/{name}/definition",
            get(definition),
        )
        .route("/api/docs/{kind}/{namespace}/{name}/{*path}", get(page))
}

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    /// Text the reader selected, quoted in the report-an-issue link.
    selection: Option<String>,
}

async fn home(
    state: State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
    query: Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    page(
        state,
        Path((kind, namespace, name, String::new())),
        query,
        headers,
    )
    .await
}

async fn page(
    State(state): State<AppState>,
    Path((kind, namespace, name, path)): Path<(String, String, String, String)>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if path.contains('\\') || path.split('/').any(|p| p == "..") {
        return Err(ApiError::BadRequest(format!(
            "docs path '{path}' may not contain '..' or '\\'"
        )));
    }
    let (r, entity) = entity_of(&state, &kind, &namespace, &name).await?;
    let last = path.rsplit('/').next().unwrap_or("");
    if last.contains('.') && !last.ends_with(".md") {
        return asset(state, r, entity.json.clone(), path).await;
    }
    let request = docs::PageRequest {
        entity_ref: r,
        entity,
        path,
        origin: public_origin(&headers),
        selection: query.selection.unwrap_or_default(),
        github_web: state
            .config
            .plugins
            .settings("github")
            .remove("web_url")
            .unwrap_or_else(|| "https://github.com".into()),
    };
    let (store, plugins) = (state.store.clone(), state.plugins.clone());
    let body = blocking(move || Ok(docs::page(&store, &plugins, request)?)).await?;
    Ok(Json(body).into_response())
}

/// `scheme://host` as the reader sees the portal (https only when a proxy
/// in front says so).
fn public_origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// An image or other file of the entity's TechDocs, same origin, with a
/// content type from an allow-list and headers that keep an SVG from
/// running script.
async fn asset(
    state: AppState,
    r: EntityRef,
    entity_json: String,
    path: String,
) -> Result<Response, ApiError> {
    let content_type = crate::docs::asset_type(&path).ok_or_else(|| {
        ApiError::NotFound(format!("'{path}' is not a docs page or a known asset type"))
    })?;
    let (store, plugins) = (state.store.clone(), state.plugins.clone());
    let bytes = blocking(move || {
        Ok(docs::asset(
            &store,
            &plugins,
            &r.to_string(),
            &entity_json,
            &path,
        )?)
    })
    .await?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// `GET /api/entities/:kind/:ns/:name/definition`: an API's
/// `spec.definition` as text and, when it is YAML or JSON, as a document,
/// with `format` telling OpenAPI from AsyncAPI so the UI can show it
/// readably. A definition that does not parse is still served as text,
/// with the parse error and its line.
async fn definition(
    State(state): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let store = state.store.clone();
    let lookup = r.clone();
    let fields = ["spec.type".to_string(), "spec.definition".to_string()];
    let json = blocking(move || Ok(store.catalog.entity_by_ref(&lookup, &fields)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No entity {r} found")))?;
    let entity: Value = serde_json::from_str(&json)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored entity {r}: {e}")))?;
    let Some(text) = entity["spec"]["definition"].as_str() else {
        return Err(ApiError::NotFound(format!(
            "{r} has no spec.definition; only API entities carry one"
        )));
    };
    let (document, error) = match crate::yaml::parse_documents(text) {
        Ok(mut docs) if !docs.is_empty() => (docs.swap_remove(0).value, None),
        Ok(_) => (Value::Null, None),
        Err(e) => (
            Value::Null,
            Some(format!("line {}, column {}: {}", e.line, e.col, e.message)),
        ),
    };
    let format = if document.get("openapi").is_some() || document.get("swagger").is_some() {
        "openapi"
    } else if document.get("asyncapi").is_some() {
        "asyncapi"
    } else {
        "other"
    };
    Ok(Json(json!({
        "entityRef": r.to_string(),
        "type": entity["spec"]["type"],
        "format": format,
        "text": text,
        "document": document,
        "error": error,
    })))
}
