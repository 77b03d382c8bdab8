//! Unclaimed software: what the entity providers found that no catalog
//! file describes (a repository without `catalog-info.yaml`), each with a
//! suggested owner and why. A member of the owner (or an administrator)
//! accepts it into the catalog (choosing the owner), says it is an entity
//! the catalog already has, or dismisses it; the decisions taken are
//! listed below.

use serde_json::{Value, json};
use yew::prelude::*;

use crate::api::{Load, enc, use_json};
use crate::pages::home::groups_of;
use crate::ui::{Ref, empty, error_box, loaded, out_link, ref_link, s};
use crate::{Me, Session};

/// The value of input `id` on the page, trimmed.
fn field(id: &str) -> String {
    crate::ui::input_value(id)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// An id-safe form of a ref, for the inputs of its row.
fn slug(entity_ref: &str) -> String {
    entity_ref
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[component]
pub fn SuggestionsPage() -> Html {
    let me = use_context::<Me>().expect("Me context");
    let session = use_context::<Session>().expect("Session context");
    // Whose suggestions: "" every one, "mine" my teams' (when I am
    // someone), "none" ownerless.
    let scope = {
        let mine = me.is_some();
        use_state(move || if mine { "mine" } else { "" }.to_string())
    };
    let reload = use_state(|| 0u32);
    let outcome = use_state(|| None::<Result<String, String>>);
    let user = use_json(me.as_ref().map(|u| {
        format!(
            "/api/catalog/entities/by-name/{}",
            Ref::parse(u, "user").api_path()
        )
    }));
    let groups: Vec<String> = match &user {
        Load::Ready(u) => groups_of(u),
        _ => Vec::new(),
    };
    let owner = match scope.as_str() {
        "mine" if !groups.is_empty() => format!("&owner={}", enc(&groups.join(","))),
        "none" => "&owner=none".to_string(),
        _ => String::new(),
    };
    let list = use_json(Some(format!(
        "/api/suggestions?limit=200{owner}&v={}",
        *reload
    )));
    let log = use_json(Some(format!(
        "/api/suggestions/decisions?limit=20&v={}",
        *reload
    )));
    let decide = {
        let (reload, outcome, me) = (reload.clone(), outcome.clone(), me.clone());
        let demo = session.demo_people;
        Callback::from(move |(entity_ref, decision): (String, &'static str)| {
            let id = slug(&entity_ref);
            let mut body = json!({"entityRef": entity_ref, "decision": decision});
            match decision {
                "accept" => {
                    let owner = field(&format!("owner-{id}"));
                    if !owner.is_empty() {
                        body["owner"] = json!(owner);
                    }
                }
                "merge" => body["into"] = json!(field(&format!("into-{id}"))),
                _ => {}
            }
            if demo && let Some(person) = &*me {
                body["user"] = json!(person);
            }
            let (reload, outcome) = (reload.clone(), outcome.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let answer = crate::api::post("/api/suggestions/decide", &body, None).await;
                // The portal says what happened (in the catalog, or a
                // pull request opened).
                outcome.set(Some(answer.map(|v| format!("{}.", s(&v, "message")))));
                reload.set(*reload + 1);
            });
        })
    };
    let choose = {
        let scope = scope.clone();
        Callback::from(move |e: Event| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
                scope.set(t.value());
            }
        })
    };
    html! {
        <main id="main" class="page suggestions-page">
            <h1>{ "Unclaimed software" }</h1>
            <p class="muted">{ "What the catalog's providers found that no catalog file describes. Accept it (it joins the catalog with the owner you choose), say which entity it already is, or dismiss it." }</p>
            <div class="row">
                <label for="suggestion-scope">{ "Show" }</label>
                <select id="suggestion-scope" onchange={choose}>
                    <option value="mine" selected={*scope == "mine"}>{ "My teams'" }</option>
                    <option value="" selected={scope.is_empty()}>{ "Everyone's" }</option>
                    <option value="none" selected={*scope == "none"}>{ "Without an owner" }</option>
                </select>
            </div>
            { match &*outcome {
                Some(Ok(text)) => html! { <p class="notice good" role="status" id="suggestion-outcome">{ text.clone() }</p> },
                Some(Err(e)) => error_box("Not done", e),
                None => html! {},
            } }
            { loaded(&list, "suggestions", |v| table(v, &decide)) }
            <CoveragePanel version={*reload} />
            <section class="panel" aria-labelledby="decisions-title">
                <h2 id="decisions-title">{ "Decisions" }</h2>
                { loaded(&log, "decisions", |v| decisions(v)) }
            </section>
        </main>
    }
}

/// The suggestions with a form per row.
fn table(v: &Value, decide: &Callback<(String, &'static str)>) -> Html {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return empty("Nothing is waiting to be claimed.");
    }
    html! {
        <>
            <p class="muted" id="suggestion-total">{ format!("{} waiting", v["total"]) }</p>
            <div class="table-wrap">
                <table class="suggestions">
                    <thead><tr>
                        <th scope="col">{ "Software" }</th>
                        <th scope="col">{ "Why" }</th>
                        <th scope="col">{ "Owner" }</th>
                        <th scope="col">{ "Decide" }</th>
                    </tr></thead>
                    <tbody>{ for items.iter().map(|item| row(item, decide)) }</tbody>
                </table>
            </div>
        </>
    }
}

fn row(item: &Value, decide: &Callback<(String, &'static str)>) -> Html {
    let entity_ref = s(item, "entityRef").to_string();
    let id = slug(&entity_ref);
    let e = &item["entity"];
    let name = Ref::parse(&entity_ref, "component").name;
    let repository = e["metadata"]["links"][0]["url"]
        .as_str()
        .unwrap_or_default();
    let button = |label: &'static str, decision: &'static str| {
        let (decide, r) = (decide.clone(), entity_ref.clone());
        let onclick = Callback::from(move |_| decide.emit((r.clone(), decision)));
        html! { <button type="button" class={format!("decide-{decision}")} {onclick}>{ label }</button> }
    };
    html! {
        <tr data-ref={entity_ref.clone()}>
            <td>
                <strong>{ name }</strong>
                if !repository.is_empty() { { " " }{ out_link("repository", repository) } }
                <br /><span class="muted small">{ e["metadata"]["description"].as_str().unwrap_or_default().to_string() }</span>
            </td>
            <td class="small">{ s(item, "reason").to_string() }</td>
            <td>
                <label class="visually-hidden" for={format!("owner-{id}")}>{ format!("Owner of {entity_ref}") }</label>
                <input id={format!("owner-{id}")} type="text" size="22" placeholder="group:default/team"
                    value={item["owner"].as_str().unwrap_or_default().to_string()} />
            </td>
            <td class="decide">
                { button("Accept", "accept") }
                <label class="visually-hidden" for={format!("into-{id}")}>{ format!("Entity {entity_ref} already is") }</label>
                <input id={format!("into-{id}")} type="text" size="18" placeholder="component:default/…" />
                { button("Merge", "merge") }
                { button("Dismiss", "dismiss") }
            </td>
        </tr>
    }
}

/// The decisions taken, newest first.
fn decisions(v: &Value) -> Html {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return empty("No decision taken yet.");
    }
    html! {
        <ul class="decisions">
            { for items.iter().map(|d| html! {
                <li>
                    { crate::ui::ago(d["atMs"].as_f64().unwrap_or(0.0)) }{ " · " }
                    { s(d, "by").to_string() }{ format!(" {} ", s(d, "decision")) }
                    <code>{ s(d, "entityRef").to_string() }</code>
                    if let Some(into) = d["into"].as_str() { { " into " }{ ref_link(into, "component") } }
                    if let Some(owner) = d["owner"].as_str() { { " for " }{ ref_link(owner, "group") } }
                    if let Some(note) = d["note"].as_str() { <span class="muted">{ format!(" — {note}") }</span> }
                </li>
            }) }
        </ul>
    }
}

/// On the homepage: how much software waits for the person's teams.
#[derive(Properties, PartialEq)]
pub struct WaitingProps {
    pub owners: std::rc::Rc<Vec<String>>,
}

#[component]
pub fn WaitingForMyTeams(props: &WaitingProps) -> Html {
    let list = use_json((!props.owners.is_empty()).then(|| {
        format!(
            "/api/suggestions?limit=5&owner={}",
            enc(&props.owners.join(","))
        )
    }));
    let Load::Ready(v) = &list else {
        return html! {};
    };
    let total = v["total"].as_u64().unwrap_or(0);
    if total == 0 {
        return html! {};
    }
    html! {
        <section class="panel" aria-labelledby="unclaimed-title">
            <h2 id="unclaimed-title">{ "Unclaimed software for my teams" }</h2>
            <p id="unclaimed-count">{ format!("{total} found by the catalog's providers, waiting for your teams to claim: ") }
                <yew_router::prelude::Link<crate::Route> to={crate::Route::Suggestions}>{ "review them" }</yew_router::prelude::Link<crate::Route>>
            </p>
            <ul>{ for v["items"].as_array().into_iter().flatten().map(|i| html! {
                <li><strong>{ Ref::parse(s(i, "entityRef"), "component").name }</strong>{ " — " }<span class="muted small">{ s(i, "reason").to_string() }</span></li>
            }) }</ul>
        </section>
    }
}

/// How much of what the providers see is in the catalog: per provider
/// (an organisation), its teams furthest behind, and the trend.
#[derive(Properties, PartialEq)]
pub struct CoverageProps {
    /// Loaded again when this changes (after a decision).
    #[prop_or_default]
    pub version: u32,
}

#[component]
pub fn CoveragePanel(props: &CoverageProps) -> Html {
    let coverage = use_json(Some(format!("/api/catalog/coverage?v={}", props.version)));
    let Load::Ready(v) = &coverage else {
        return html! {};
    };
    let providers = v["providers"].as_array().cloned().unwrap_or_default();
    if providers.is_empty() {
        return html! {};
    }
    html! {
        <section class="panel" aria-labelledby="coverage-title" id="coverage">
            <h2 id="coverage-title">{ "Catalog coverage" }</h2>
            <p class="muted">{ format!("{}% of the software the providers see is in the catalog; {} waiting to be claimed.", v["total"]["percent"], v["total"]["waiting"]) }</p>
            { for providers.iter().map(|c| {
                let covered = c["inCatalog"].as_f64().unwrap_or(0.0) + c["merged"].as_f64().unwrap_or(0.0);
                let all = covered + c["waiting"].as_f64().unwrap_or(0.0);
                let mut behind: Vec<&Value> = c["teams"].as_array().into_iter().flatten().filter(|t| t["waiting"].as_u64().unwrap_or(0) > 0).collect();
                behind.sort_by(|a, b| b["waiting"].as_u64().cmp(&a["waiting"].as_u64()));
                let trend: Vec<String> = c["trend"].as_array().into_iter().flatten().map(|p| format!("{}: {} in, {} waiting", s(p, "day"), p["inCatalog"], p["waiting"])).collect();
                html! {
                    <div class="coverage-provider">
                        <h3>{ s(c, "provider").to_string() }</h3>
                        { crate::ui::bar(covered, all.max(1.0), &format!("{}% ({covered} of {all})", c["percent"])) }
                        if !behind.is_empty() {
                            <p class="small">{ "Most waiting: " }{ for behind.iter().take(5).enumerate().map(|(i, t)| html! {
                                <span class="coverage-team">
                                    if i > 0 { { " · " } }
                                    { t["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_else(|| html! { "(no owner)" }) }{ format!(" {}", t["waiting"]) }
                                </span>
                            }) }</p>
                        }
                        if trend.len() > 1 { <p class="muted small">{ trend.join("; ") }</p> }
                    </div>
                }
            }) }
        </section>
    }
}
