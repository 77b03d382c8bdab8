//! Serving an entity's docs: a page from the first docs plugin that has it
//! (rendered and sanitised, with its navigation and a prefilled "report an
//! issue" link), or a file of its TechDocs read beside the entity.

use std::sync::Arc;

use serde_json::{Value, json};

use super::ServiceError;
use crate::catalog::EntityRef;
use crate::docs::{self, Links, TechDocsSource};
use crate::plugins::bindings::greenroom::plugin::types;
use crate::plugins::host::{beside_entity, read_beside};
use crate::plugins::{CallError, Plugins};
use crate::store::Store;

/// A docs page as a reader asks for it.
pub struct PageRequest {
    pub entity_ref: EntityRef,
    pub entity: Arc<types::Entity>,
    /// The page's path under the entity's docs ("" for the home page).
    pub path: String,
    /// `scheme://host` as the reader sees the portal, for the page's
    /// public address in the issue.
    pub origin: String,
    /// Text the reader selected, quoted in the issue.
    pub selection: String,
    /// The GitHub web address issues are opened on.
    pub github_web: String,
}

/// The page as JSON: `html`, `toc`, `nav`, `title`, `url`,
/// `reportIssueUrl`, and which plugin served it from which file.
pub fn page(store: &Store, plugins: &Plugins, request: PageRequest) -> Result<Value, ServiceError> {
    let r = &request.entity_ref;
    let (plugin, page) = first_page(plugins, &request.entity, &request.path)?.ok_or_else(|| {
        ServiceError::NotFound(format!(
            "{r} has no docs page '{}'; docs come from a docs plugin (TechDocs reads backstage.io/techdocs-ref)",
            request.path
        ))
    })?;
    let pages = format!("/docs/{}/{}/{}", r.namespace, r.kind, r.name);
    let assets = format!("/api/docs/{}/{}/{}", r.kind, r.namespace, r.name);
    let address = docs::address(&page.path);
    let folder = page.path.rsplit_once('/').map_or("", |(f, _)| f);
    let slash = if address.is_empty() { "" } else { "/" };
    let page_url = format!("{}{pages}{slash}{address}", request.origin);
    let rendered = docs::render(
        &page.markdown,
        &Links {
            pages: &pages,
            assets: &assets,
            folder,
        },
    );
    let nav: Vec<(String, String)> = page
        .nav
        .iter()
        .map(|l| (l.label.clone(), l.href.clone()))
        .collect();
    let entity_ref = r.to_string();
    let entity: Value = serde_json::from_str(&request.entity.json).unwrap_or(Value::Null);
    let source = techdocs_source(store, plugins, &entity_ref, &entity);
    let report = docs::report_issue_url(
        &entity,
        source.as_ref().and_then(|s| s.repo_url.as_deref()),
        &request.github_web,
        &format!("Docs: {}", page.title),
        &issue_body(&page_url, &request.selection),
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
}

/// The first enabled docs plugin that has the page, with the page. When
/// none has it and some failed, the failures, naming each plugin.
fn first_page(
    plugins: &Plugins,
    entity: &types::Entity,
    path: &str,
) -> Result<Option<(Arc<crate::plugins::Loaded>, types::DocPage)>, ServiceError> {
    let limits = plugins.limits();
    let mut failures = Vec::new();
    for plugin in plugins.enabled().into_iter().filter(|p| p.exports_docs()) {
        match plugin.doc_page(entity, path, &limits) {
            Ok(page) => return Ok(Some((plugin, page))),
            Err(CallError::NotApplicable) => {}
            Err(e) => failures.push(format!("{} {e}", plugin.label())),
        }
    }
    if failures.is_empty() {
        Ok(None)
    } else {
        Err(ServiceError::Plugin(failures.join("; ")))
    }
}

/// The issue's text: the page's address, the selection quoted (at most
/// 2,000 characters), and the question.
fn issue_body(page_url: &str, selection: &str) -> String {
    let mut body = format!("Page: {page_url}\n\n");
    let selection: String = selection.chars().take(2000).collect();
    if !selection.trim().is_empty() {
        for line in selection.lines() {
            body.push_str(&format!("> {line}\n"));
        }
        body.push('\n');
    }
    body.push_str("What is wrong or missing?\n");
    body
}

/// Where an entity's TechDocs are, from its mkdocs.yml beside its catalog
/// file (read within the plugins' limits).
fn techdocs_source(
    store: &Store,
    plugins: &Plugins,
    entity_ref: &str,
    entity: &Value,
) -> Option<TechDocsSource> {
    let deadline = std::time::Instant::now() + plugins.limits().timeout;
    TechDocsSource::of(entity, |p| {
        let bytes = read_beside(store, plugins.reader(), entity_ref, p, deadline).ok()?;
        String::from_utf8(bytes).ok()
    })
}

/// A file of the entity's TechDocs (`path` under its docs folder), read
/// beside the entity within a plugin call's time.
pub fn asset(
    store: &Store,
    plugins: &Plugins,
    entity_ref: &str,
    entity_json: &str,
    path: &str,
) -> Result<Vec<u8>, ServiceError> {
    let entity: Value = serde_json::from_str(entity_json).unwrap_or(Value::Null);
    let source = techdocs_source(store, plugins, entity_ref, &entity).ok_or_else(|| {
        ServiceError::NotFound(format!(
            "{entity_ref} has no TechDocs (backstage.io/techdocs-ref)"
        ))
    })?;
    let file = format!("{}/{path}", source.docs);
    let deadline = std::time::Instant::now() + plugins.limits().timeout;
    beside_entity(store, entity_ref, &file).map_err(ServiceError::BadInput)?;
    read_beside(store, plugins.reader(), entity_ref, &file, deadline)
        .map_err(ServiceError::NotFound)
}
