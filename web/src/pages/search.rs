//! Search results (`/search?query=`): grouped by kind, each entity with its
//! owner and key facts; arrow keys move between results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_bindgen::JsCast;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::{enc, use_json};
use crate::ui::{Ref, empty, health, loaded, ref_link, s};

#[derive(Serialize, Deserialize, Default, Clone, PartialEq)]
struct SearchQuery {
    #[serde(default)]
    query: String,
}

/// How a group of results is headed, in the order groups are shown.
fn group_of(hit: &Value) -> (u8, String) {
    if s(hit, "type") != "entity" {
        return (9, "Docs pages".into());
    }
    match s(hit, "kind").to_lowercase().as_str() {
        "component" => (0, "Services and components".into()),
        "api" => (1, "APIs".into()),
        "group" => (2, "Teams".into()),
        "user" => (3, "People".into()),
        "system" | "domain" => (4, "Systems and domains".into()),
        other => (5, format!("{}{}", other[..1].to_uppercase(), &other[1..])),
    }
}

/// Moves focus between result links with the arrow keys.
fn move_focus(e: &KeyboardEvent) {
    let step: i32 = match e.key().as_str() {
        "ArrowDown" => 1,
        "ArrowUp" => -1,
        _ => return,
    };
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(links) = document.query_selector_all("a.result-link") else {
        return;
    };
    let active = document.active_element();
    let mut index: i32 = -1;
    for i in 0..links.length() {
        if let (Some(node), Some(a)) = (links.item(i), active.as_ref())
            && node.is_same_node(Some(a))
        {
            index = i as i32;
        }
    }
    let next = (index + step).clamp(0, links.length() as i32 - 1);
    if let Some(el) = links
        .item(next as u32)
        .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
    {
        e.prevent_default();
        let _ = el.focus();
    }
}

#[component]
pub fn SearchPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query = location
        .as_ref()
        .and_then(|l| l.query::<SearchQuery>().ok())
        .unwrap_or_default();
    let text = query.query.trim().to_string();
    let results =
        use_json((!text.is_empty()).then(|| format!("/api/search?q={}&limit=50", enc(&text))));
    let refs: Vec<String> = match &results {
        crate::api::Load::Ready(v) => v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| s(h, "type") == "entity")
            .map(|h| s(h, "entityRef").to_string())
            .collect(),
        _ => Vec::new(),
    };
    let levels = crate::pages::scorecards::use_levels(refs);
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let q = crate::ui::input_value("search-page-input").unwrap_or_default();
        if let Some(nav) = &navigator {
            let _ = nav.push_with_query(&Route::Search, &SearchQuery { query: q });
        }
    });
    let onkeydown = Callback::from(|e: KeyboardEvent| move_focus(&e));
    let body = if text.is_empty() {
        empty("Type what you are looking for: a service, an API, a team or words from the docs.")
    } else {
        loaded(&results, "results", |v| {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return empty(&format!(
                    "Nothing matches “{text}”. Try fewer or other words."
                ));
            }
            let mut groups: BTreeMap<(u8, String), Vec<Value>> = BTreeMap::new();
            for hit in items {
                groups.entry(group_of(&hit)).or_default().push(hit);
            }
            html! {
                <>
                    <p class="muted" id="search-count">{ format!("{} results for “{text}”", v["total"].as_u64().unwrap_or(0)) }</p>
                    { for groups.iter().map(|((_, title), hits)| html! {
                        <section class="result-group" aria-label={title.clone()}>
                            <h2>{ format!("{title} ({})", hits.len()) }</h2>
                            <ul class="results">{ for hits.iter().map(|h| result(h, &levels)) }</ul>
                        </section>
                    }) }
                </>
            }
        })
    };
    html! {
        <main id="main" class="page search" {onkeydown}>
            <h1>{ "Search" }</h1>
            <form role="search" class="hero-search" {onsubmit}>
                <label for="search-page-input" class="visually-hidden">{ "Search" }</label>
                <input id="search-page-input" type="search" value={text.clone()} autocomplete="off" />
                <button type="submit">{ "Search" }</button>
            </form>
            <p class="muted small">{ "↑ and ↓ move between results; Enter opens one." }</p>
            { body }
        </main>
    }
}

fn result(hit: &Value, levels: &crate::pages::scorecards::Levels) -> Html {
    let is_entity = s(hit, "type") == "entity";
    let r = Ref::parse(s(hit, "entityRef"), "component");
    let title = match s(hit, "title") {
        "" => s(hit, "name").to_string(),
        t => t.to_string(),
    };
    html! {
        <li class="result">
            {
                // A docs page opens at its own route; an entity at its page.
                match hit["location"].as_str() {
                    Some(l) if !is_entity && crate::ui::is_portal_path(l) => {
                        match Route::recognize(l).filter(|r| *r != Route::NotFound) {
                            Some(route) => html! { <Link<Route> to={route} classes="result-link">{ title }</Link<Route>> },
                            None => html! { <a class="result-link" href={l.to_string()}>{ title }</a> },
                        }
                    }
                    _ => html! { <Link<Route> to={r.route()} classes="result-link">{ title }</Link<Route>> },
                }
            }
            <span class="muted">{ format!(" {}", if is_entity { s(hit, "kind").to_string() } else { format!("in {}", r.short()) }) }</span>
            // The snippet is the host's escaped text with <b> highlights.
            <p class="snippet">{ Html::from_html_unchecked(s(hit, "snippet").to_string().into()) }</p>
            <p class="result-meta">
                if !s(hit, "owner").is_empty() { { "Owner: " }{ ref_link(s(hit, "owner"), "group") }{ " " } }
                if is_entity { { health(&hit["facts"]) }{ crate::pages::scorecards::level_badges(levels, s(hit, "entityRef")) } }
            </p>
        </li>
    }
}
