//! Migration campaigns (progress overall and per team, whom to chase, a
//! burndown) and fact rankings such as "the poorest coverage".

use serde::{Deserialize, Serialize};
use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::{Load, enc, use_json};
use crate::ui::{badge, bar, empty, fact_text, fact_tone, loaded, out_link, ref_link, s};

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
        </main>
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
                                        <thead><tr><th scope="col">{ "Team" }</th><th scope="col">{ "Progress" }</th></tr></thead>
                                        <tbody>{ for teams.iter().map(|t| html! {
                                            <tr>
                                                <td>{ t["owner"].as_str().map(|o| ref_link(o, "group")).unwrap_or_else(|| html! { "(no owner)" }) }</td>
                                                <td>{ progress(&t["progress"]) }</td>
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
                                    <ul>{ for t["targets"].as_array().into_iter().flatten().map(|x| html! {
                                        <li>{ ref_link(s(x, "entityRef"), "component") }{ " " }<span class="muted">{ s(x, "reason") }</span></li>
                                    }) }</ul>
                                </div>
                            }) }
                            if c["chaseMore"].as_u64().unwrap_or(0) > 0 {
                                <p class="muted">{ format!("…and {} more teams; the CSV has them all.", c["chaseMore"]) }</p>
                            }
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
