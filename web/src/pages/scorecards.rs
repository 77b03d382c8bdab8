//! Scorecards: how many entities stand at each level, per team and
//! domain, each entity's level and the checks it fails, each level's
//! history, the nudges sent, and an editor that dry-runs a scorecard as
//! it is typed.

use serde_json::{Value, json};
use yew::prelude::*;
use yew_router::prelude::*;

use super::campaigns::{nudge_log, sparkline, use_dry_run, warnings};
use crate::Route;
use crate::api::{Load, enc, use_json};
use crate::ui::{badge, empty, loaded, ref_link, s};

/// A level's badge; `none` when no level is reached.
pub fn level_badge(level: Option<&str>) -> Html {
    match level {
        Some(l) => {
            let tone = match l.to_ascii_lowercase().as_str() {
                "gold" | "platinum" => "good",
                "silver" => "info",
                _ => "neutral",
            };
            html! { <span class="level">{ badge(l, tone) }</span> }
        }
        None => html! { <span class="level">{ badge("no level", "warning") }</span> },
    }
}

/// How many stand at each level: `none 1 · bronze 1 · silver 0 · gold 1`.
fn rollup(r: &Value) -> Html {
    html! {
        <span class="rollup">
            { format!("{} below every level", r["none"]) }
            { for r["levels"].as_array().into_iter().flatten().map(|l| html! {
                <>{ " · " }{ badge(l[0].as_str().unwrap_or(""), "neutral") }{ format!(" {}", l[1]) }</>
            }) }
        </span>
    }
}

#[component]
pub fn ScorecardList() -> Html {
    let list = use_json(Some("/api/scorecards".into()));
    html! {
        <main id="main" class="page">
            <h1>{ "Scorecards" }</h1>
            <p class="muted">{ "Standards as levels: each entity reaches a level when it passes every check of it and of the levels below." }</p>
            { loaded(&list, "scorecards", |v| {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    return empty("No scorecard yet. Add a Scorecard entity (greenroom.dev/v1alpha1) to the catalog.");
                }
                html! {
                    <div class="grid two">
                        { for items.iter().map(|c| html! {
                            <section class="panel scorecard">
                                <h2><Link<Route> to={Route::Scorecard { name: s(c, "name").to_string() }}>{ c["title"].as_str().unwrap_or(s(c, "name")).to_string() }</Link<Route>></h2>
                                <p>{ s(c, "description") }</p>
                                <p>{ rollup(&c["rollup"]) }</p>
                            </section>
                        }) }
                    </div>
                }
            }) }
            <ScorecardEditor />
        </main>
    }
}

/// `level name: predicate` lines as a scorecard's levels and checks.
fn parse_checks(text: &str) -> Value {
    let mut levels: Vec<String> = Vec::new();
    let mut checks = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (head, when) = line.split_once(':').unwrap_or((line, ""));
        let mut words = head.split_whitespace();
        let (level, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if !levels.iter().any(|l| l == level) {
            levels.push(level.to_string());
        }
        checks.push(json!({"name": name, "level": level, "when": when.trim()}));
    }
    json!({"levels": levels, "checks": checks})
}

/// A scorecard drafted in the page, counted as it is typed.
#[component]
pub fn ScorecardEditor() -> Html {
    let targets = use_state(|| "kind=component,spec.type=service".to_string());
    let checks = use_state(String::new);
    let body = (!checks.trim().is_empty()).then(|| {
        let mut body = parse_checks(&checks);
        body["targets"] = json!(*targets);
        body
    });
    let answer = use_dry_run("/api/scorecards/dry-run", body);
    let on_targets = {
        let targets = targets.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                targets.set(t.value());
            }
        })
    };
    let on_checks = {
        let checks = checks.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlTextAreaElement>() {
                checks.set(t.value());
            }
        })
    };
    html! {
        <section class="panel editor" aria-labelledby="scorecard-editor-title">
            <h2 id="scorecard-editor-title">{ "Try a scorecard" }</h2>
            <p class="muted small">{ "One check per line, lowest level first: " }<code>{ "bronze docs: annotation backstage.io/techdocs-ref exists" }</code></p>
            <label for="scorecard-targets">{ "Targets" }</label>
            <input id="scorecard-targets" type="text" value={(*targets).clone()} oninput={on_targets} />
            <label for="scorecard-checks">{ "Checks" }</label>
            <textarea id="scorecard-checks" rows="5" value={(*checks).clone()} oninput={on_checks} />
            <div id="scorecard-draft" aria-live="polite">
                { match &answer {
                    Load::Loading => html! {},
                    Load::Failed(e) => html! { <p class="error-box" role="alert">{ e.clone() }</p> },
                    Load::Ready(v) if v.is_null() => empty("Type a check to see who passes."),
                    Load::Ready(v) => html! {
                        <>
                            { warnings(&v["warnings"]) }
                            <p>{ rollup(&v["rollup"]) }</p>
                            <ul>{ for v["checks"].as_array().into_iter().flatten().map(|c| html! {
                                <li>{ format!("{} ({}): {} pass, {} fail", s(c, "name"), s(c, "level"), c["passing"], c["failing"]) }</li>
                            }) }</ul>
                        </>
                    },
                } }
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct ScorecardProps {
    pub name: String,
}

#[component]
pub fn ScorecardPage(props: &ScorecardProps) -> Html {
    let detail = use_json(Some(format!("/api/scorecards/{}", enc(&props.name))));
    let csv = format!("/api/scorecards/{}/entities.csv", enc(&props.name));
    html! {
        <main id="main" class="page scorecard">
            { loaded(&detail, "the scorecard", |c| {
                let items = c["items"].as_array().cloned().unwrap_or_default();
                let groups = |list: &Value, key: &str, kind: &str| html! {
                    <table>
                        <tbody>{ for list.as_array().into_iter().flatten().map(|t| html! {
                            <tr>
                                <td>{ if s(t, key).contains(':') { ref_link(s(t, key), kind) } else { html! { { s(t, key).to_string() } } } }</td>
                                <td>{ rollup(&t["rollup"]) }</td>
                            </tr>
                        }) }</tbody>
                    </table>
                };
                html! {
                    <>
                        <h1>{ c["title"].as_str().unwrap_or(s(c, "name")).to_string() }</h1>
                        <p class="lead">{ s(c, "description") }</p>
                        { warnings(&c["warnings"]) }
                        <p id="scorecard-rollup">{ rollup(&c["rollup"]) }</p>
                        <p><a href={csv.clone()} download="entities.csv">{ "Download every entity as CSV" }</a></p>
                        <div class="grid two">
                            <section class="panel" aria-labelledby="checks-title">
                                <h2 id="checks-title">{ "Checks" }</h2>
                                <table>
                                    <thead><tr><th scope="col">{ "Level" }</th><th scope="col">{ "Check" }</th><th scope="col">{ "Passing" }</th></tr></thead>
                                    <tbody>{ for c["checks"].as_array().into_iter().flatten().map(|k| html! {
                                        <tr>
                                            <td>{ level_badge(k["level"].as_str()) }</td>
                                            <td>{ s(k, "title").to_string() }<br /><code class="small">{ s(k, "when").to_string() }</code></td>
                                            <td>{ format!("{} of {}", k["passing"], k["passing"].as_u64().unwrap_or(0) + k["failing"].as_u64().unwrap_or(0)) }</td>
                                        </tr>
                                    }) }</tbody>
                                </table>
                            </section>
                            <section class="panel" aria-labelledby="history-title">
                                <h2 id="history-title">{ "At each level, over time" }</h2>
                                <ul class="level-history">{ for c["history"].as_array().into_iter().flatten().map(|h| {
                                    // Entities not yet at the level: a line going down is progress.
                                    let days = h["days"].as_array().cloned().unwrap_or_default();
                                    let now = days.last().map(|d| format!(" {} of {}", d["done"], d["total"])).unwrap_or_default();
                                    html! { <li>{ level_badge(h["level"].as_str()) }{ now }{ " " }{ sparkline(&days) }</li> }
                                }) }</ul>
                            </section>
                        </div>
                        <div class="grid two">
                            <section class="panel" aria-labelledby="teams-title">
                                <h2 id="teams-title">{ "Per team" }</h2>
                                { groups(&c["teams"], "owner", "group") }
                            </section>
                            <section class="panel" aria-labelledby="domains-title">
                                <h2 id="domains-title">{ "Per domain" }</h2>
                                { groups(&c["domains"], "domain", "domain") }
                            </section>
                        </div>
                        <section class="panel" aria-labelledby="entities-title">
                            <h2 id="entities-title">{ "Entities" }</h2>
                            <div class="table-wrap">
                                <table id="scorecard-entities">
                                    <thead><tr><th scope="col">{ "Entity" }</th><th scope="col">{ "Owner" }</th><th scope="col">{ "Level" }</th><th scope="col">{ "Failing" }</th></tr></thead>
                                    <tbody>{ for items.iter().map(|e| html! {
                                        <tr>
                                            <td>{ ref_link(s(e, "entityRef"), "component") }</td>
                                            <td>{ e["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_default() }</td>
                                            <td>{ level_badge(e["level"].as_str()) }</td>
                                            <td class="small">{ for e["failing"].as_array().into_iter().flatten().map(|f| html! {
                                                <div>{ format!("{} ({}): {}", s(f, "check"), s(f, "level"), s(f, "reason")) }</div>
                                            }) }</td>
                                        </tr>
                                    }) }</tbody>
                                </table>
                            </div>
                            if c["itemsTotal"].as_u64().unwrap_or(0) > items.len() as u64 {
                                <p class="muted">{ format!("The first {} of {}; the CSV has every one.", items.len(), c["itemsTotal"]) }</p>
                            }
                        </section>
                        <section class="panel" aria-labelledby="nudges-title">
                            <h2 id="nudges-title">{ "Nudges" }</h2>
                            { nudge_log(c) }
                        </section>
                    </>
                }
            }) }
        </main>
    }
}

/// An entity's levels on every scorecard that targets it.
#[derive(Properties, PartialEq)]
pub struct EntityLevelsProps {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[component]
pub fn EntityLevels(props: &EntityLevelsProps) -> Html {
    let url = format!(
        "/api/entities/{}/{}/{}/scorecards",
        enc(&props.kind),
        enc(&props.namespace),
        enc(&props.name)
    );
    let levels = use_json(Some(url));
    let Load::Ready(v) = &levels else {
        return html! {};
    };
    let items = v["items"].as_array().cloned().unwrap_or_default();
    html! {
        <div class="entity-levels">
            { for items.iter().map(|i| {
                let failing: Vec<String> = i["checks"].as_array().into_iter().flatten()
                    .filter(|c| c["passed"] == false)
                    .map(|c| format!("{}: {}", s(c, "title"), s(c, "reason")))
                    .collect();
                html! {
                    <span class="entity-level" title={failing.join("\n")}>
                        <Link<Route> to={Route::Scorecard { name: s(i, "scorecard").to_string() }}>{ s(i, "title").to_string() }</Link<Route>>
                        { " " }{ level_badge(i["level"].as_str()) }
                    </span>
                }
            }) }
        </div>
    }
}

/// A team's standing on every scorecard: how many of its entities stand
/// at each level.
#[derive(Properties, PartialEq)]
pub struct TeamLevelsProps {
    pub team: String,
}

#[component]
pub fn TeamLevels(props: &TeamLevelsProps) -> Html {
    let levels = use_json(Some(format!("/api/scorecards?owner={}", enc(&props.team))));
    let Load::Ready(v) = &levels else {
        return html! {};
    };
    html! {
        <div class="entity-levels team-levels">
            { for v["items"].as_array().into_iter().flatten().filter(|i| i["team"]["total"].as_u64().unwrap_or(0) > 0).map(|i| html! {
                <span class="entity-level">
                    <Link<Route> to={Route::Scorecard { name: s(i, "name").to_string() }}>{ s(i, "title").to_string() }</Link<Route>>
                    { ": " }{ rollup(&i["team"]) }
                </span>
            }) }
        </div>
    }
}

/// Each entity's levels: (scorecard title, level) by entity ref.
pub type Levels = std::rc::Rc<std::collections::HashMap<String, Vec<(String, Option<String>)>>>;

/// The levels of `refs` on every scorecard, asked in one request once
/// they are known (a page of the catalog, of search hits).
#[hook]
pub fn use_levels(refs: Vec<String>) -> Levels {
    let levels = use_state(Levels::default);
    {
        let levels = levels.clone();
        use_effect_with(refs, move |refs| {
            if !refs.is_empty() {
                let body = json!({ "entityRefs": refs });
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(v) = crate::api::post("/api/scorecards/levels", &body, None).await {
                        let map = v["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|i| {
                                let list = i["levels"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .map(|l| {
                                        (
                                            s(l, "title").to_string(),
                                            l["level"].as_str().map(str::to_string),
                                        )
                                    })
                                    .collect();
                                (s(i, "entityRef").to_lowercase(), list)
                            })
                            .collect();
                        levels.set(std::rc::Rc::new(map));
                    }
                });
            }
        });
    }
    (*levels).clone()
}

/// An entity's level badges, each titled with its scorecard.
pub fn level_badges(levels: &Levels, entity_ref: &str) -> Html {
    let Some(list) = levels.get(&entity_ref.to_lowercase()) else {
        return html! {};
    };
    html! {
        <span class="level-badges">{ for list.iter().map(|(title, level)| html! {
            <span class="level" title={title.clone()}>{ level_badge(level.as_deref()) }</span>
        }) }</span>
    }
}
