//! Migration campaigns (progress overall and per team, whom to chase, a
//! burndown) and fact rankings such as "the poorest coverage".

use serde::{Deserialize, Serialize};
use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::{Load, enc, use_json};
use crate::ui::{ago, badge, bar, empty, fact_text, fact_tone, loaded, out_link, ref_link, s};
use yew::hook;

fn progress(p: &Value) -> Html {
    let (done, total) = (
        p["done"].as_f64().unwrap_or(0.0),
        p["total"].as_f64().unwrap_or(0.0),
    );
    bar(
        done,
        total,
        &format!(
            "{done} of {total} done ({}%)",
            p["percent"].as_f64().unwrap_or(0.0)
        ),
    )
}

#[component]
pub fn CampaignList() -> Html {
    let list = use_json(Some("/api/campaigns".into()));
    html! {
        <main id="main" class="page">
            <h1>{ "Campaigns" }</h1>
            <p class="muted">{ "Migrations and standards across the catalog, checked against facts, annotations and specs." }</p>
            { loaded(&list, "campaigns", |v| {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    return empty("No campaign is running. Add a Campaign entity to the catalog, or POST one to /api/campaigns.");
                }
                html! {
                    <div class="grid two">
                        { for items.iter().map(|c| html! {
                            <section class="panel campaign">
                                <h2><Link<Route> to={Route::Campaign { name: s(c, "name").to_string() }}>{ c["title"].as_str().unwrap_or(s(c, "name")).to_string() }</Link<Route>></h2>
                                <p>{ s(c, "description") }</p>
                                { progress(&c["progress"]) }
                                <p class="muted small">
                                    if let Some(d) = c["deadline"].as_str() { { format!("Deadline {d}. ") } }
                                    { "Done when " }<code>{ s(c, "doneWhen") }</code>
                                </p>
                            </section>
                        }) }
                    </div>
                }
            }) }
            <CampaignEditor />
        </main>
    }
}

/// The value of a text field or area that fired `e`.
fn event_text(e: &InputEvent) -> Option<String> {
    if let Some(t) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
        return Some(t.value());
    }
    e.target_dyn_into::<web_sys::HtmlTextAreaElement>()
        .map(|t| t.value())
}

/// Posts `body` to `url` 300 ms after the last change, and keeps the
/// newest answer: an editor's live dry run.
#[hook]
pub fn use_dry_run(url: &'static str, body: Option<Value>) -> Load<Value> {
    let answer = use_state(|| Load::Ready(Value::Null));
    let pending = use_mut_ref(|| None::<gloo_timers::callback::Timeout>);
    let asked = use_mut_ref(|| 0u64);
    {
        let answer = answer.clone();
        use_effect_with(body, move |body| {
            *asked.borrow_mut() += 1;
            let mine = *asked.borrow();
            let body = body.clone();
            *pending.borrow_mut() = body.map(|body| {
                gloo_timers::callback::Timeout::new(300, move || {
                    wasm_bindgen_futures::spawn_local(async move {
                        let result = crate::api::post(url, &body, None).await;
                        if *asked.borrow() == mine {
                            answer.set(match result {
                                Ok(v) => Load::Ready(v),
                                Err(e) => Load::Failed(e),
                            });
                        }
                    });
                })
            });
        });
    }
    (*answer).clone()
}

/// A campaign drafted in the page: how many targets, how many done, which
/// teams, as the predicate is typed; nothing is saved.
#[component]
pub fn CampaignEditor() -> Html {
    let targets = use_state(|| "kind=component,spec.type=service".to_string());
    let done_when = use_state(String::new);
    let body = (!done_when.trim().is_empty()).then(|| {
        serde_json::json!({"targets": targets.split(';').map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>(), "doneWhen": *done_when})
    });
    let answer = use_dry_run("/api/campaigns/dry-run", body);
    let set = |state: UseStateHandle<String>| {
        Callback::from(move |e: InputEvent| {
            if let Some(v) = event_text(&e) {
                state.set(v);
            }
        })
    };
    html! {
        <section class="panel editor" aria-labelledby="editor-title">
            <h2 id="editor-title">{ "Try a campaign" }</h2>
            <p class="muted small">{ "See what a campaign would count before anyone saves it. Targets: a catalog filter (several separated by ;). Done when: facts, annotations, labels, spec, e.g. " }<code>{ "fact coverage.lines >= 70" }</code></p>
            <label for="draft-targets">{ "Targets" }</label>
            <input id="draft-targets" type="text" value={(*targets).clone()} oninput={set(targets.clone())} />
            <label for="draft-done">{ "Done when" }</label>
            <input id="draft-done" type="text" placeholder="annotation backstage.io/techdocs-ref exists" value={(*done_when).clone()} oninput={set(done_when.clone())} />
            <div id="draft-result" aria-live="polite">
                { match &answer {
                    Load::Loading => html! {},
                    Load::Failed(e) => html! { <p class="error-box" role="alert">{ e.clone() }</p> },
                    Load::Ready(v) if v.is_null() => empty("Type a predicate to see its progress."),
                    Load::Ready(v) => html! {
                        <>
                            { warnings(&v["warnings"]) }
                            { progress(&v["progress"]) }
                            <ul class="draft-teams">{ for v["teams"].as_array().into_iter().flatten().take(10).map(|t| html! {
                                <li>{ s(t, "owner").to_string() }{ format!(": {} of {} done", t["progress"]["done"], t["progress"]["total"]) }</li>
                            }) }</ul>
                        </>
                    },
                } }
            </div>
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct CampaignProps {
    pub name: String,
}

fn contact(c: &Value) -> Html {
    html! {
        <span class="contact">
            { c["name"].as_str().unwrap_or("").to_string() }
            if let Some(email) = c["email"].as_str() {
                { " · " }<a href={format!("mailto:{email}")}>{ email }</a>
            }
            { for c["links"].as_array().into_iter().flatten().map(|l| html! {
                <>{ " · " }{ out_link(l["title"].as_str().unwrap_or(s(l, "url")), s(l, "url")) }</>
            }) }
        </span>
    }
}

/// Targets left to do per day, as a line over the last days.
fn burndown(points: &[Value]) -> Html {
    if points.len() < 2 {
        return empty("Not enough history for a burndown yet.");
    }
    let left: Vec<f64> = points
        .iter()
        .map(|p| p["total"].as_f64().unwrap_or(0.0) - p["done"].as_f64().unwrap_or(0.0))
        .collect();
    let max = left.iter().cloned().fold(1.0, f64::max);
    let (w, h) = (600.0, 160.0);
    let step = w / (left.len() - 1) as f64;
    let line: String = left
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1} ", i as f64 * step, h - v / max * (h - 10.0)))
        .collect();
    let first = s(&points[0], "day").to_string();
    let last = s(&points[points.len() - 1], "day").to_string();
    let label = format!(
        "Targets left to do, from {} on {first} to {} on {last}",
        left[0],
        left[left.len() - 1]
    );
    html! {
        <figure class="burndown">
            <svg viewBox={format!("0 -10 {w} {}", h + 30.0)} role="img" aria-label={label.clone()}>
                <line class="axis" x1="0" y1={format!("{h}")} x2={format!("{w}")} y2={format!("{h}")} />
                <polyline class="burn" points={line} fill="none" />
                <text class="axis-label" x="0" y={format!("{}", h + 18.0)}>{ first }</text>
                <text class="axis-label end" x={format!("{w}")} y={format!("{}", h + 18.0)}>{ last }</text>
                <text class="axis-label" x="4" y="4">{ format!("{max} left") }</text>
            </svg>
            <figcaption class="muted small">{ label }</figcaption>
        </figure>
    }
}

/// Days of a burndown (`done` and `total`) as a small line of what is
/// left.
pub fn sparkline(points: &[Value]) -> Html {
    let left: Vec<f64> = points
        .iter()
        .map(|p| p["total"].as_f64().unwrap_or(0.0) - p["done"].as_f64().unwrap_or(0.0))
        .collect();
    left_line(&left)
}

/// What was left each day (oldest first) as a small line, for the
/// per-team table.
fn left_line(left: &[f64]) -> Html {
    if left.len() < 2 {
        return html! {};
    }
    let max = left.iter().cloned().fold(1.0, f64::max);
    let (w, h) = (120.0, 24.0);
    let step = w / (left.len() - 1) as f64;
    let line: String = left
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1} ", i as f64 * step, h - v / max * (h - 2.0)))
        .collect();
    let label = format!(
        "{} left {} days ago, {} now",
        left[0],
        left.len() - 1,
        left[left.len() - 1]
    );
    html! {
        <svg class="team-spark" viewBox={format!("0 0 {w} {h}")} role="img" aria-label={label}>
            <polyline class="burn" points={line} fill="none" />
        </svg>
    }
}

/// Targets done, and targets open again, in the last week.
fn movers(m: &Value) -> Html {
    let list = |items: &Value, none: &str, tone: &str, word: &str| {
        let items = items.as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return empty(none);
        }
        html! {
            <ul class="movers">{ for items.iter().map(|x| html! {
                <li>
                    { badge(word, tone) }{ " " }{ ref_link(s(x, "entityRef"), "component") }
                    if let Some(o) = x["owner"].as_str() { <span class="muted">{ " · " }{ ref_link(o, "group") }</span> }
                    if let Some(at) = x["atMs"].as_f64() { <span class="muted small">{ format!(" · {}", ago(at)) }</span> }
                    if let Some(r) = x["reason"].as_str() { <span class="muted small">{ format!(" · {r}") }</span> }
                </li>
            }) }</ul>
        }
    };
    html! {
        <div class="grid two">
            <div id="movers-done">
                <h3>{ "Done this week" }</h3>
                { list(&m["done"], "Nothing finished this week.", "good", "done") }
            </div>
            <div id="movers-regressed">
                <h3>{ "Regressed this week" }</h3>
                { list(&m["regressed"], "Nothing slipped back this week.", "critical", "regressed") }
            </div>
        </div>
    }
}

/// How a team is reached, or that it cannot be.
fn channels(list: &Value) -> Html {
    let list = list.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return html! { <span class="no-channel">{ badge("no channel", "warning") }<span class="muted small">{ " add slack.com/channel or spec.profile.email to its Group" }</span></span> };
    }
    html! { <span class="channels">{ for list.iter().map(|c| html! { <>{ badge(s(c, "kind"), "info") }{ format!(" {} ", s(c, "to")) }</> }) }</span> }
}

/// Every nudge sent (or not), newest first, and the teams snoozed.
pub fn nudge_log(c: &Value) -> Html {
    let nudges = c["nudges"].as_array().cloned().unwrap_or_default();
    let snoozes = c["snoozes"].as_array().cloned().unwrap_or_default();
    html! {
        <>
            if !snoozes.is_empty() {
                <p class="muted">{ "Snoozed: " }{ for snoozes.iter().map(|z| html! {
                    <>{ ref_link(s(z, "team"), "group") }{ format!(" until {} by {}; ", day_of(z["untilMs"].as_f64().unwrap_or(0.0)), s(z, "by")) }</>
                }) }</p>
            }
            if nudges.is_empty() {
                { empty("No nudge sent yet.") }
            } else {
                <div class="table-wrap">
                    <table id="nudge-log">
                        <thead><tr>
                            <th scope="col">{ "When" }</th><th scope="col">{ "Team" }</th><th scope="col">{ "Channel" }</th>
                            <th scope="col">{ "Outcome" }</th><th scope="col">{ "Targets" }</th><th scope="col">{ "Detail" }</th>
                        </tr></thead>
                        <tbody>{ for nudges.iter().map(|n| {
                            let tone = match s(n, "status") { "sent" => "good", "failed" => "critical", _ => "warning" };
                            html! {
                                <tr>
                                    <td>{ ago(n["atMs"].as_f64().unwrap_or(0.0)) }</td>
                                    <td>{ ref_link(s(n, "team"), "group") }</td>
                                    <td>{ s(n, "channel") }</td>
                                    <td>{ badge(s(n, "status"), tone) }{ format!(" ({} attempts)", n["attempts"]) }</td>
                                    <td>{ n["targets"].as_array().map_or(0, Vec::len) }</td>
                                    <td class="small">{ s(n, "detail") }</td>
                                </tr>
                            }
                        }) }</tbody>
                    </table>
                </div>
            }
        </>
    }
}

/// `YYYY-MM-DD` of a time in ms.
fn day_of(ms: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    d.to_iso_string()
        .as_string()
        .unwrap_or_default()
        .chars()
        .take(10)
        .collect()
}

/// Problems worth knowing about a definition that reads.
pub fn warnings(list: &Value) -> Html {
    let list = list.as_array().cloned().unwrap_or_default();
    html! {
        { for list.iter().map(|w| html! { <p class="warning-box" role="note">{ w.as_str().unwrap_or("").to_string() }</p> }) }
    }
}

#[component]
pub fn CampaignPage(props: &CampaignProps) -> Html {
    let detail = use_json(Some(format!("/api/campaigns/{}", enc(&props.name))));
    let csv = format!("/api/campaigns/{}/targets.csv", enc(&props.name));
    html! {
        <main id="main" class="page campaign">
            { loaded(&detail, "the campaign", |c| {
                let teams = c["teams"].as_array().cloned().unwrap_or_default();
                let chase = c["chase"].as_array().cloned().unwrap_or_default();
                html! {
                    <>
                        <h1>{ c["title"].as_str().unwrap_or(s(c, "name")).to_string() }</h1>
                        <p class="lead">{ s(c, "description") }</p>
                        <p class="muted">
                            if let Some(o) = c["owner"].as_str() { { "Run by " }{ ref_link(o, "group") }{ ". " } }
                            if let Some(d) = c["deadline"].as_str() { { format!("Deadline {d}. ") } }
                            { "Done when " }<code>{ s(c, "doneWhen") }</code>
                        </p>
                        { warnings(&c["warnings"]) }
                        { progress(&c["progress"]) }
                        <p><a href={csv.clone()} download="targets.csv">{ "Download every target as CSV" }</a></p>
                        <div class="grid two">
                            <section class="panel" aria-labelledby="burndown-title">
                                <h2 id="burndown-title">{ "Burndown" }</h2>
                                { burndown(c["burndown"].as_array().map(Vec::as_slice).unwrap_or(&[])) }
                            </section>
                            <section class="panel" aria-labelledby="teams-title">
                                <h2 id="teams-title">{ "Per team" }</h2>
                                <div class="table-wrap">
                                    <table>
                                        <thead><tr><th scope="col">{ "Team" }</th><th scope="col">{ "Progress" }</th><th scope="col">{ "Left, last 30 days" }</th></tr></thead>
                                        <tbody>{ for teams.iter().map(|t| html! {
                                            <tr>
                                                <td>{ t["owner"].as_str().filter(|o| o.contains(':')).map(|o| ref_link(o, "group")).unwrap_or_else(|| html! { "(no owner)" }) }</td>
                                                <td>{ progress(&t["progress"]) }</td>
                                                <td>{ left_line(&t["left"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect::<Vec<_>>()) }</td>
                                            </tr>
                                        }) }</tbody>
                                    </table>
                                </div>
                            </section>
                        </div>
                        <section class="panel" aria-labelledby="chase-title">
                            <h2 id="chase-title">{ "Teams to chase" }</h2>
                            if chase.is_empty() { { empty("Nobody to chase: every target is done.") } }
                            { for chase.iter().map(|t| html! {
                                <div class="chase">
                                    <h3>{ t["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_default() }{ format!(" — {} to do", t["todo"]) }</h3>
                                    <p>{ contact(&t["contact"]) }</p>
                                    <p class="small">{ "Nudged through: " }{ channels(&t["channels"]) }</p>
                                    <ul>{ for t["targets"].as_array().into_iter().flatten().map(|x| html! {
                                        <li>{ ref_link(s(x, "entityRef"), "component") }{ " " }<span class="muted">{ s(x, "reason") }</span></li>
                                    }) }</ul>
                                </div>
                            }) }
                            if c["chaseMore"].as_u64().unwrap_or(0) > 0 {
                                <p class="muted">{ format!("…and {} more teams; the CSV has them all.", c["chaseMore"]) }</p>
                            }
                        </section>
                        <section class="panel" aria-labelledby="movers-title">
                            <h2 id="movers-title">{ "Movers" }</h2>
                            { movers(&c["movers"]) }
                        </section>
                        <section class="panel" aria-labelledby="nudges-title">
                            <h2 id="nudges-title">{ "Nudges" }</h2>
                            if let Some(every) = c["nudge"]["every"].as_str() {
                                <p class="muted">{ format!("Teams with open targets are told every {every}, and as the deadline nears.") }</p>
                            } else {
                                <p class="muted">{ "This campaign nudges nobody on a schedule (set spec.nudge.every)." }</p>
                            }
                            { nudge_log(c) }
                        </section>
                    </>
                }
            }) }
        </main>
    }
}

#[derive(Serialize, Deserialize, Default, Clone, PartialEq)]
struct FactsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<String>,
}

/// Rankings: the N entities with the lowest (or highest) value of a fact.
#[component]
pub fn FactsPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query = location
        .as_ref()
        .and_then(|l| l.query::<FactsQuery>().ok())
        .unwrap_or_default();
    let names = use_json(Some("/api/facts".into()));
    let name = query.name.clone().or_else(|| match &names {
        Load::Ready(v) => v["items"]
            .as_array()
            .and_then(|i| {
                i.iter()
                    .find(|f| f["name"] == "coverage.lines")
                    .or_else(|| i.iter().find(|f| f["type"] == "number"))
            })
            .map(|f| s(f, "name").to_string()),
        _ => None,
    });
    let order = query.order.clone().unwrap_or_else(|| "asc".into());
    let top = use_json(
        name.as_ref()
            .map(|n| format!("/api/facts/{}/top?order={order}&limit=10", enc(n))),
    );
    let go = {
        let (navigator, query) = (navigator.clone(), query.clone());
        Callback::from(move |(key, value): (&'static str, String)| {
            let mut q = query.clone();
            match key {
                "name" => q.name = Some(value),
                _ => q.order = Some(value),
            }
            if let Some(nav) = &navigator {
                let _ = nav.push_with_query(&Route::Facts, &q);
            }
        })
    };
    let on_name = {
        let go = go.clone();
        Callback::from(move |e: Event| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
                go.emit(("name", t.value()));
            }
        })
    };
    let on_order = Callback::from(move |e: Event| {
        if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
            go.emit(("order", t.value()));
        }
    });
    let options: Html = match &names {
        Load::Ready(v) => {
            html! { <>{ for v["items"].as_array().into_iter().flatten().filter(|f| f["type"] == "number").map(|f| {
                let n = s(f, "name").to_string();
                html! { <option value={n.clone()} selected={Some(&n) == name.as_ref()}>{ format!("{n} ({} entities)", f["entities"]) }</option> }
            }) }</> }
        }
        _ => html! {},
    };
    let fact = name.clone().unwrap_or_default();
    html! {
        <main id="main" class="page facts">
            <h1>{ "Facts" }</h1>
            <div class="row">
                <label for="fact-name">{ "Fact" }</label>
                <select id="fact-name" onchange={on_name}>{ options }</select>
                <label for="fact-order">{ "Show" }</label>
                <select id="fact-order" onchange={on_order}>
                    <option value="asc" selected={order == "asc"}>{ "lowest first" }</option>
                    <option value="desc" selected={order == "desc"}>{ "highest first" }</option>
                </select>
            </div>
            if name.is_none() && matches!(names, Load::Ready(_)) {
                { empty("No numeric facts yet: plugins and CI report them.") }
            }
            if name.is_some() {
                { loaded(&top, "the ranking", |v| {
                    let items = v["items"].as_array().cloned().unwrap_or_default();
                    if items.is_empty() { return empty("No entity has this fact."); }
                    html! {
                        <div class="table-wrap">
                            <table id="facts-table">
                                <thead><tr><th scope="col">{ "#" }</th><th scope="col">{ "Entity" }</th><th scope="col">{ "Owner" }</th><th scope="col">{ fact.clone() }</th></tr></thead>
                                <tbody>{ for items.iter().enumerate().map(|(i, f)| html! {
                                    <tr>
                                        <td>{ i + 1 }</td>
                                        <td>{ ref_link(s(f, "entityRef"), "component") }</td>
                                        <td>{ f["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_default() }</td>
                                        <td>{ badge(&fact_text(&fact, &f["value"]), fact_tone(&fact, &f["value"])) }</td>
                                    </tr>
                                }) }</tbody>
                            </table>
                        </div>
                    }
                }) }
            }
        </main>
    }
}
