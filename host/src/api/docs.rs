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
use crate::docs::{self, Links, TechDocsSource};
use crate::plugins::CallError;
use crate::plugins::host::{beside_entity, read_beside};

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
    let plugins: Vec<_> = state
        .plugins
        .enabled()
        .into_iter()
        .filter(|p| p.exports_docs())
        .collect();
    let limits = state.plugins.limits();
    let (call_entity, call_path) = (entity.clone(), path.clone());
    let (served_by, page, failures) = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for plugin in plugins {
            match plugin.doc_page(&call_entity, &call_path, &limits) {
                Ok(page) => return (Some(plugin), Some(page), failures),
                Err(CallError::NotApplicable) => {}
                Err(e) => failures.push(format!("{} {e}", plugin.label())),
            }
        }
        (None, None, failures)
    })
    .await?;
    let (Some(plugin), Some(page)) = (served_by, page) else {
        if !failures.is_empty() {
            return Err(ApiError::Upstream(failures.join("; ")));
        }
        return Err(ApiError::NotFound(format!(
            "{r} has no docs page '{path}'; docs come from a docs plugin (TechDocs reads backstage.io/techdocs-ref)"
        )));
    };
    let pages = format!("/docs/{}/{}/{}", r.namespace, r.kind, r.name);
    let assets = format!("/api/docs/{}/{}/{}", r.kind, r.namespace, r.name);
    let address = docs::address(&page.path);
    let folder = page
        .path
        .rsplit_once('/')
        .map_or("", |(f, _)| f)
        .to_string();
    // The public address of the page, for the issue's body.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let slash = if address.is_empty() { "" } else { "/" };
    let page_url = format!("{scheme}://{host}{pages}{slash}{address}");
    let github_web = state
        .config
        .plugins
        .settings("github")
        .remove("web_url")
        .unwrap_or_else(|| "https://github.com".into());
    let store = state.store.clone();
    let reader = state.plugins.clone();
    let entity_ref = r.to_string();
    let selection = query.selection.unwrap_or_default();
    let body = blocking(move || {
        let rendered = docs::render(
            &page.markdown,
            &Links {
                pages: &pages,
                assets: &assets,
                folder: &folder,
            },
        );
        let nav: Vec<(String, String)> = page
            .nav
            .iter()
            .map(|l| (l.label.clone(), l.href.clone()))
            .collect();
        let entity_json: Value = serde_json::from_str(&entity.json).unwrap_or(Value::Null);
        let source = techdocs_source(&store, &reader, &entity_ref, &entity_json);
        let mut issue_body = format!("Page: {page_url}\n\n");
        let selection: String = selection.chars().take(2000).collect();
        if !selection.trim().is_empty() {
            for line in selection.lines() {
                issue_body.push_str(&format!("> {line}\n"));
            }
            issue_body.push('\n');
        }
        issue_body.push_str("What is wrong or missing?\n");
        let report = docs::report_issue_url(
            &entity_json,
            source.as_ref().and_then(|s| s.repo_url.as_deref()),
            &github_web,
            &format!("Docs: {}", page.title),
            &issue_body,
        );
        Ok(json!({
            "entityRef": entity_ref,
            "plugin": plugin.manifest.id,
            "path": address,
            "source": page.path,
            "title": page.title,
            "html": rendered.html,
            "toc": rendered.toc,
            "nav": docs::nav_tree(&nav, &pages),
            "url": page_url,
            "reportIssueUrl": report,
        }))
    })
    .await?;
    Ok(Json(body).into_response())
}

/// Where an entity's TechDocs are, from its mkdocs.yml beside its catalog
/// file (read within the plugins' limits).
fn techdocs_source(
    store: &crate::store::Store,
    plugins: &crate::plugins::Plugins,
    entity_ref: &str,
    entity: &Value,
) -> Option<TechDocsSource> {
    let deadline = std::time::Instant::now() + plugins.limits().timeout;
    TechDocsSource::of(entity, |p| {
        let bytes = read_beside(store, plugins.reader(), entity_ref, p, deadline).ok()?;
        String::from_utf8(bytes).ok()
    })
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
    let content_type = docs::asset_type(&path).ok_or_else(|| {
        ApiError::NotFound(format!("'{path}' is not a docs page or a known asset type"))
    })?;
    let store = state.store.clone();
    let plugins = state.plugins.clone();
    let entity_ref = r.to_string();
    let bytes = blocking(move || {
        let entity: Value = serde_json::from_str(&entity_json).unwrap_or(Value::Null);
        let source = techdocs_source(&store, &plugins, &entity_ref, &entity).ok_or_else(|| {
            ApiError::NotFound(format!(
                "{entity_ref} has no TechDocs (backstage.io/techdocs-ref)"
            ))
        })?;
        let file = format!("{}/{path}", source.docs);
        // An asset is read within a plugin call's time.
        let deadline = std::time::Instant::now() + plugins.limits().timeout;
        beside_entity(&store, &entity_ref, &file).map_err(ApiError::BadRequest)?;
        read_beside(&store, plugins.reader(), &entity_ref, &file, deadline)
            .map_err(ApiError::NotFound)
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
