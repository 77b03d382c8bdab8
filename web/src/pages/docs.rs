//! The docs reader (`/docs/:ns/:kind/:name/*path`): navigation tree, the
//! page the host rendered and sanitised, its table of contents, and
//! "Report an issue with this page" (with the selected text, if any).

use serde_json::Value;
use wasm_bindgen::JsCast;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::{Load, enc, use_json};
use crate::ui::{Ref, empty, error_box, loaded, loading, out_link, s};

#[derive(Properties, PartialEq)]
pub struct DocsProps {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub path: String,
    /// Inside an entity's Docs tab, which has its own `<main>`.
    #[prop_or_default]
    pub embedded: bool,
}

/// Every entity with TechDocs.
#[component]
pub fn DocsIndex() -> Html {
    let list = use_json(Some(
        "/api/catalog/entities/by-query?filter=metadata.annotations.backstage.io/techdocs-ref&limit=100&orderField=metadata.name,asc&fields=kind,metadata.name,metadata.namespace,metadata.title,metadata.description,spec.owner".into(),
    ));
    html! {
        <main id="main" class="page">
            <h1>{ "Documentation" }</h1>
            { loaded(&list, "documentation", |v| {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    return empty("No entity has TechDocs yet: add a backstage.io/techdocs-ref annotation beside an mkdocs.yml.");
                }
                html! {
                    <ul class="doc-list">
                        { for items.iter().map(|e| {
                            let r = Ref::of(e);
                            let title = e["metadata"]["title"].as_str().map(str::to_string).unwrap_or_else(|| r.short());
                            html! {
                                <li>
                                    <Link<Route> to={Route::DocsHome { namespace: r.namespace.clone(), kind: r.kind.clone(), name: r.name.clone() }}>{ title }</Link<Route>>
                                    <span class="muted">{ format!(" {}", s(&e["metadata"], "description")) }</span>
                                </li>
                            }
                        }) }
                    </ul>
                }
            }) }
        </main>
    }
}

fn nav(nodes: &Value, base: &str, current: &str) -> Html {
    let list = nodes.as_array().cloned().unwrap_or_default();
    html! {
        <ul>
            { for list.iter().map(|n| {
                let title = s(n, "title");
                let link = match (n["path"].as_str(), n["url"].as_str()) {
                    (Some(p), _) => {
                        let href = if p.is_empty() { base.to_string() } else { format!("{base}/{p}") };
                        let here = p == current;
                        html! { <a href={href} aria-current={here.then_some("page")}>{ title }</a> }
                    }
                    (None, Some(u)) => out_link(title, u),
                    (None, None) => html! { <span class="nav-section">{ title }</span> },
                };
                html! {
                    <li>
                        { link }
                        if n["children"].is_array() { { nav(&n["children"], base, current) } }
                    </li>
                }
            }) }
        </ul>
    }
}

fn selected_text() -> String {
    web_sys::window()
        .and_then(|w| w.get_selection().ok().flatten())
        .and_then(|s| s.to_string().as_string())
        .unwrap_or_default()
}

#[component]
pub fn DocsReader(props: &DocsProps) -> Html {
    let r = Ref {
        kind: props.kind.to_lowercase(),
        namespace: props.namespace.clone(),
        name: props.name.clone(),
    };
    let api = match props.path.as_str() {
        "" => format!("/api/docs/{}", r.api_path()),
        path => format!("/api/docs/{}/{path}", r.api_path()),
    };
    let page = use_json(Some(api.clone()));
    let report = use_state(|| None::<(String, String)>);
    let navigator = use_navigator();
    // Links to the portal's pages (other docs pages, entities) stay in
    // the app; anchors and other sites load as usual.
    let onclick = Callback::from(move |e: MouseEvent| {
        let anchor = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|el| el.closest("a").ok().flatten());
        let Some(href) = anchor.and_then(|a| a.get_attribute("href")) else {
            return;
        };
        if !crate::ui::is_portal_path(&href) || href.contains('#') {
            return;
        }
        let route = Route::recognize(&href).filter(|r| *r != Route::NotFound);
        if let (Some(route), Some(nav)) = (route, &navigator) {
            e.prevent_default();
            nav.push(&route);
        }
    });
    // Selecting text puts it into the issue the link opens.
    let onmouseup = {
        let (report, api) = (report.clone(), api.clone());
        Callback::from(move |_: MouseEvent| {
            let text: String = selected_text().trim().chars().take(500).collect();
            if text.is_empty() {
                return;
            }
            let (report, url) = (report.clone(), format!("{api}?selection={}", enc(&text)));
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(v) = crate::api::get(&url).await
                    && let Some(u) = v["reportIssueUrl"].as_str()
                {
                    report.set(Some((url, u.to_string())));
                }
            });
        })
    };
    let base = Route::DocsHome {
        namespace: r.namespace.clone(),
        kind: r.kind.clone(),
        name: r.name.clone(),
    }
    .to_path();
    let body = match &page {
        Load::Loading => loading("the page"),
        Load::Failed(e) => error_box("This page could not be shown", e),
        Load::Ready(v) => {
            let report_url = match &*report {
                Some((from, u)) if from.starts_with(&api) => Some(u.clone()),
                _ => v["reportIssueUrl"].as_str().map(str::to_string),
            };
            let toc = v["toc"].as_array().cloned().unwrap_or_default();
            html! {
                <div class="docs-layout">
                    <nav class="docs-nav" aria-label="Documentation">
                        <p class="nav-title"><Link<Route> to={r.route()}>{ r.short() }</Link<Route>></p>
                        { nav(&v["nav"], &base, s(v, "path")) }
                    </nav>
                    <article class="docs-page markdown" {onclick} {onmouseup}>
                        { Html::from_html_unchecked(s(v, "html").to_string().into()) }
                    </article>
                    <aside class="docs-aside" aria-label="On this page">
                        if !toc.is_empty() {
                            <h2>{ "On this page" }</h2>
                            <ul class="toc">
                                { for toc.iter().map(|t| html! {
                                    <li class={format!("toc-{}", t["level"].as_u64().unwrap_or(2))}>
                                        <a href={format!("#{}", s(t, "id"))}>{ s(t, "text") }</a>
                                    </li>
                                }) }
                            </ul>
                        }
                        if let Some(u) = report_url {
                            <p>{ out_link("Report an issue with this page", &u) }</p>
                            <p class="muted small">{ "Select text on the page first to quote it in the issue." }</p>
                        }
                        if let Some(u) = v["url"].as_str() { <p>{ out_link("View source", u) }</p> }
                    </aside>
                </div>
            }
        }
    };
    if props.embedded {
        html! { <div class="docs">{ body }</div> }
    } else {
        html! { <main id="main" class="page docs">{ body }</main> }
    }
}
