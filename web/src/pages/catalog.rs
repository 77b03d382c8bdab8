//! The catalog: a table of entities with facets, a text filter, sorting
//! and server-side cursor paging. Every filter lives in the URL, so a view
//! can be shared and the back button works. Only one page of entities is
//! ever requested.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::{enc, use_json};
use crate::ui::{Ref, empty, loaded, ref_link, s};

const PAGE: usize = 25;

/// The facets offered, as (API field, URL key, label).
const FACETS: [(&str, &str, &str); 5] = [
    ("kind", "kind", "Kind"),
    ("spec.type", "type", "Type"),
    ("spec.owner", "owner", "Owner"),
    ("spec.lifecycle", "lifecycle", "Lifecycle"),
    ("metadata.tags", "tag", "Tag"),
];

/// The sortable columns, as (API field, label).
const COLUMNS: [(&str, &str); 5] = [
    ("metadata.name", "Name"),
    ("kind", "Kind"),
    ("spec.type", "Type"),
    ("spec.owner", "Owner"),
    ("spec.lifecycle", "Lifecycle"),
];

const FIELDS: &str = "kind,metadata.name,metadata.namespace,metadata.title,metadata.description,metadata.tags,spec.type,spec.owner,spec.lifecycle";

/// The catalog view as the URL holds it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default, Debug)]
pub struct CatalogQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub spec_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `<scorecard>:<level>` (or `<scorecard>:none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `field,asc` or `field,desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl CatalogQuery {
    fn get(&self, key: &str) -> Option<&String> {
        match key {
            "kind" => self.kind.as_ref(),
            "type" => self.spec_type.as_ref(),
            "owner" => self.owner.as_ref(),
            "lifecycle" => self.lifecycle.as_ref(),
            "tag" => self.tag.as_ref(),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: Option<String>) {
        let value = value.filter(|v| !v.is_empty());
        match key {
            "kind" => self.kind = value,
            "type" => self.spec_type = value,
            "owner" => self.owner = value,
            "lifecycle" => self.lifecycle = value,
            "tag" => self.tag = value,
            "level" => self.level = value,
            "q" => self.q = value,
            "order" => self.order = value,
            _ => {}
        }
        // A new view starts on its first page.
        self.cursor = None;
    }

    /// Backstage's `filter=` for the chosen facets, leaving out `except`.
    fn filter(&self, except: Option<&str>) -> Option<String> {
        let parts: Vec<String> = FACETS
            .iter()
            .filter(|(_, key, _)| Some(*key) != except)
            .filter_map(|(field, key, _)| {
                self.get(key)
                    .map(|v| format!("{field}={}", v.replace(',', "")))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }

    /// The chosen scorecard level, as (scorecard, level).
    fn level(&self) -> Option<(&str, &str)> {
        self.level.as_deref().and_then(|l| l.split_once(':'))
    }

    fn entities_url(&self) -> String {
        if let Some((card, level)) = self.level() {
            // The scorecard's own listing: the other facets apply, paged
            // by offset, in entity-ref order.
            let mut url = format!(
                "/api/scorecards/{}/entities?level={}&limit={PAGE}&fields={FIELDS}",
                enc(card),
                enc(level)
            );
            if let Some(f) = self.filter(None) {
                url.push_str(&format!("&filter={}", enc(&f)));
            }
            if let Some(c) = &self.cursor {
                url.push_str(&format!("&cursor={}", enc(c)));
            }
            return url;
        }
        let mut url = format!("/api/catalog/entities/by-query?limit={PAGE}&fields={FIELDS}");
        if let Some(c) = &self.cursor {
            url.push_str(&format!("&cursor={}", enc(c)));
            return url;
        }
        if let Some(f) = self.filter(None) {
            url.push_str(&format!("&filter={}", enc(&f)));
        }
        url.push_str(&format!(
            "&orderField={}",
            enc(self.order.as_deref().unwrap_or("metadata.name,asc"))
        ));
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            url.push_str(&format!("&fullTextFilterTerm={}", enc(q)));
        }
        url
    }

    /// Facet counts under the chosen kind: types and owners of components
    /// when components are shown.
    fn facets_url(&self) -> String {
        let mut url = String::from("/api/catalog/entity-facets?");
        for (field, _, _) in FACETS {
            url.push_str(&format!("facet={field}&"));
        }
        if let Some(kind) = &self.kind {
            url.push_str(&format!("filter={}", enc(&format!("kind={kind}"))));
        }
        url
    }

    /// Level counts of every scorecard under the other chosen facets.
    fn level_facet_url(&self) -> String {
        match self.filter(None) {
            Some(f) => format!("/api/scorecards/facet?filter={}", enc(&f)),
            None => "/api/scorecards/facet".to_string(),
        }
    }
}

/// The Level facet: one option per scorecard level with its count.
fn level_facet(
    facet: &crate::api::Load<std::rc::Rc<Value>>,
    query: &CatalogQuery,
    go: &Callback<CatalogQuery>,
) -> Html {
    let crate::api::Load::Ready(v) = facet else {
        return Html::default();
    };
    let cards = v["items"].as_array().cloned().unwrap_or_default();
    if cards.is_empty() {
        return Html::default();
    }
    let current = query.level.clone().unwrap_or_default();
    let onchange = {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |e: Event| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
                let mut q = query.clone();
                q.set("level", Some(t.value()));
                go.emit(q);
            }
        })
    };
    let groups = cards.iter().map(|c| {
        let card = s(c, "scorecard").to_string();
        let option = |value: String, label: String| {
            html! { <option value={value.clone()} selected={value == current}>{ label }</option> }
        };
        html! {
            <optgroup label={s(c, "title").to_string()}>
                { for c["levels"].as_array().into_iter().flatten().rev().map(|l| option(
                    format!("{card}:{}", s(l, "level")),
                    format!("{} ({})", s(l, "level"), l["count"].as_u64().unwrap_or(0)),
                )) }
                { option(format!("{card}:none"), format!("no level ({})", c["none"].as_u64().unwrap_or(0))) }
            </optgroup>
        }
    });
    html! {
        <div class="facet">
            <label for="facet-level">{ "Level" }</label>
            <select id="facet-level" {onchange}>
                <option value="" selected={current.is_empty()}>{ "All" }</option>
                { for groups }
            </select>
        </div>
    }
}

#[component]
pub fn Catalog() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query: CatalogQuery = location
        .as_ref()
        .and_then(|l| l.query::<CatalogQuery>().ok())
        .unwrap_or_default();
    let entities = use_json(Some(query.entities_url()));
    let facets = use_json(Some(query.facets_url()));
    let level_facet_counts = use_json(Some(query.level_facet_url()));
    let go = {
        let navigator = navigator.clone();
        Callback::from(move |q: CatalogQuery| {
            if let Some(nav) = &navigator {
                let _ = nav.push_with_query(&Route::Catalog, &q);
            }
        })
    };
    let facet_controls: Html = FACETS
        .iter()
        .map(|(field, key, label)| {
            let values: Vec<(String, u64)> = match &facets {
                crate::api::Load::Ready(v) => v["facets"][*field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|f| (s(f, "value").to_string(), f["count"].as_u64().unwrap_or(0)))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let current = query.get(key).cloned().unwrap_or_default();
            let onchange = {
                let (go, query, key) = (go.clone(), query.clone(), key.to_string());
                Callback::from(move |e: Event| {
                    if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
                        let mut q = query.clone();
                        q.set(&key, Some(t.value()));
                        go.emit(q);
                    }
                })
            };
            let id = format!("facet-{key}");
            let has_current = values.iter().any(|(v, _)| *v == current);
            html! {
                <div class="facet">
                    <label for={id.clone()}>{ *label }</label>
                    <select {id} {onchange}>
                        <option value="" selected={current.is_empty()}>{ "All" }</option>
                        if !current.is_empty() && !has_current {
                            <option value={current.clone()} selected=true>{ current.clone() }</option>
                        }
                        { for values.iter().map(|(v, n)| html! {
                            <option value={v.clone()} selected={*v == current}>{ format!("{v} ({n})") }</option>
                        }) }
                    </select>
                </div>
            }
        })
        .collect();
    let onsearch = {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let mut q = query.clone();
            q.set("q", crate::ui::input_value("catalog-filter"));
            go.emit(q);
        })
    };
    let clear = {
        let go = go.clone();
        Callback::from(move |_| go.emit(CatalogQuery::default()))
    };
    let filtered = query != CatalogQuery::default();
    let refs: Vec<String> = match &entities {
        crate::api::Load::Ready(v) => v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| Ref::of(e).to_string())
            .collect(),
        _ => Vec::new(),
    };
    let levels = crate::pages::scorecards::use_levels(refs);
    let table = loaded(&entities, "entities", |v| {
        entity_table(v, &query, &go, &levels)
    });
    html! {
        <main id="main" class="page catalog">
            <h1>{ "Catalog" }</h1>
            <div class="catalog-layout">
                <aside class="filters" aria-label="Filters">
                    <form role="search" onsubmit={onsearch}>
                        <label for="catalog-filter">{ "Text filter" }</label>
                        <input id="catalog-filter" type="search" value={query.q.clone().unwrap_or_default()} placeholder="name, title, description" />
                    </form>
                    { facet_controls }
                    { level_facet(&level_facet_counts, &query, &go) }
                    if filtered {
                        <button type="button" class="ghost" onclick={clear}>{ "Clear filters" }</button>
                    }
                </aside>
                <section class="results" aria-live="polite">{ table }</section>
            </div>
        </main>
    }
}

fn entity_table(
    v: &Value,
    query: &CatalogQuery,
    go: &Callback<CatalogQuery>,
    levels: &crate::pages::scorecards::Levels,
) -> Html {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let total = v["totalItems"].as_u64().unwrap_or(0);
    if items.is_empty() {
        return empty("No entities match these filters.");
    }
    let (order_field, order_dir) = query
        .order
        .as_deref()
        .and_then(|o| o.split_once(','))
        .unwrap_or(("metadata.name", "asc"));
    let headers: Html = COLUMNS
        .iter()
        .map(|(field, label)| {
            let active = *field == order_field;
            let next_dir = if active && order_dir == "asc" { "desc" } else { "asc" };
            let onclick = {
                let (go, query) = (go.clone(), query.clone());
                let order = format!("{field},{next_dir}");
                Callback::from(move |_| {
                    let mut q = query.clone();
                    q.set("order", Some(order.clone()));
                    go.emit(q);
                })
            };
            let sort = match (active, order_dir) {
                (false, _) => "none",
                (true, "desc") => "descending",
                _ => "ascending",
            };
            html! {
                <th scope="col" aria-sort={sort}>
                    <button type="button" class="sort" {onclick}>
                        { *label }{ match sort { "ascending" => " ▲", "descending" => " ▼", _ => "" } }
                    </button>
                </th>
            }
        })
        .collect();
    let page_button = |label: &str, cursor: Option<&str>| -> Html {
        match cursor {
            Some(c) => {
                let (go, query, c) = (go.clone(), query.clone(), c.to_string());
                let onclick = Callback::from(move |_| {
                    let mut q = query.clone();
                    q.cursor = Some(c.clone());
                    go.emit(q);
                });
                html! { <button type="button" {onclick}>{ label.to_string() }</button> }
            }
            None => html! { <button type="button" disabled=true>{ label.to_string() }</button> },
        }
    };
    // Time from navigation to the first rows, for the browser tests and
    // the benchmark (performance.now() counts from navigation start).
    let rendered = web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| format!("{:.0}", p.now()))
        .unwrap_or_default();
    html! {
        <>
            <p class="muted" id="catalog-count">{ format!("{total} entities") }</p>
            if query.level.is_some() {
                <p class="muted">{ "At this level as last recorded, in reference order; the text filter and sorting apply to the whole catalog only." }</p>
            }
            <div class="table-wrap">
                <table id="catalog-table" data-rendered-ms={rendered}>
                    <thead><tr>{ headers }<th scope="col">{ "Level" }</th><th scope="col">{ "Description" }</th><th scope="col">{ "Tags" }</th></tr></thead>
                    <tbody>
                        { for items.iter().map(|e| {
                            let r = Ref::of(e);
                            let title = e["metadata"]["title"].as_str().map(str::to_string).unwrap_or_else(|| r.short());
                            html! {
                                <tr>
                                    <td><Link<Route> to={r.route()}>{ title }</Link<Route>></td>
                                    <td>{ s(e, "kind") }</td>
                                    <td>{ s(&e["spec"], "type") }</td>
                                    <td>{ e["spec"]["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_default() }</td>
                                    <td>{ s(&e["spec"], "lifecycle") }</td>
                                    <td class="levels">{ crate::pages::scorecards::level_badges(levels, &r.to_string()) }</td>
                                    <td class="description">{ s(&e["metadata"], "description") }</td>
                                    <td>{ for e["metadata"]["tags"].as_array().into_iter().flatten().map(|t| html! {
                                        <span class="tag">{ t.as_str().unwrap_or("") }</span>
                                    }) }</td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            </div>
            <nav class="pager" aria-label="Pages">
                { page_button("Previous", v["pageInfo"]["prevCursor"].as_str()) }
                { page_button("Next", v["pageInfo"]["nextCursor"].as_str()) }
            </nav>
        </>
    }
}
