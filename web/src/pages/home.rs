//! The homepage: search, what was just deployed, my teams' services with
//! their health, my campaign tasks, and quick links. Who I am comes from
//! the sign-in; in the demo only, it is a catalog User chosen here and kept
//! in local storage.

use std::rc::Rc;

use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{Load, enc, use_json};
use crate::ui::{Ref, ago, badge, empty, health, loaded, out_link, ref_link, s};
use crate::{Me, Route, Session};

/// Who I am, in the top bar, with a way to choose someone else.
#[component]
pub fn WhoAmI() -> Html {
    let me = use_context::<Me>().expect("Me context");
    let session = use_context::<Session>().expect("Session context");
    let navigator = use_navigator();
    let Some(user) = (*me).clone() else {
        return match &session.sign_in {
            Some(with) if session.known && !session.demo_people => html! {
                <a class="whoami" id="sign-in-link" href={sign_in_href(&with.url)}>{ "Sign in" }</a>
            },
            _ if session.known && !session.demo_people => html! {
                <span class="whoami muted" title="Reading as a guest: sign in through your company's sign-in to act">{ "Guest" }</span>
            },
            _ => html! {},
        };
    };
    if !session.demo_people {
        let r = Ref::parse(&user, "user");
        // Ends the session on the server, then starts afresh.
        let sign_out = Callback::from(|_| {
            wasm_bindgen_futures::spawn_local(async {
                let _ = crate::api::post("/auth/sign-out", &serde_json::Value::Null, None).await;
                if let Some(w) = web_sys::window() {
                    let _ = w.location().assign("/");
                }
            });
        });
        return html! {
            <span class="whoami">
                if user.contains(':') {
                    <Link<Route> to={r.route()}>{ r.short() }</Link<Route>>
                } else {
                    { user.clone() }
                }
                if session.sign_in.is_some() {
                    <button type="button" id="sign-out" class="ghost small" onclick={sign_out}>{ "Sign out" }</button>
                }
            </span>
        };
    }
    let r = Ref::parse(&user, "user");
    // Forgetting who I am brings back the chooser on the homepage.
    let switch = Callback::from(move |_| {
        me.set(None);
        if let Some(nav) = &navigator {
            nav.push(&Route::Home);
        }
    });
    html! {
        <span class="whoami">
            <Link<Route> to={r.route()}>{ r.short() }</Link<Route>>
            <span class="badge warning" title="Demo only: anyone may act as anyone here">{ "demo" }</span>
            <button type="button" class="ghost small" onclick={switch}>{ "Switch user" }</button>
        </span>
    }
}

/// The provider's sign-in, returning to the page shown now.
fn sign_in_href(url: &str) -> String {
    let here = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .filter(|p| p != "/sign-in")
        .unwrap_or_else(|| "/".into());
    format!("{url}?return={}", enc(&here))
}

/// Signing in: one button to the company's identity provider.
#[component]
pub fn SignIn() -> Html {
    let session = use_context::<Session>().expect("Session context");
    let Some(with) = &session.sign_in else {
        return html! {
            <main id="main" class="page">
                <h1>{ "Sign in" }</h1>
                <p>{ "This portal has no sign-in page of its own: people sign in through the company's sign-in proxy, and scripts use tokens." }</p>
            </main>
        };
    };
    html! {
        <main id="main" class="page sign-in">
            <h1>{ "Sign in to Greenroom" }</h1>
            <p>{ "Sign in to see your team's services and act on what you own." }</p>
            <a class="button" id="sign-in" href={sign_in_href(&with.url)}>
                { format!("Sign in with {}", with.provider) }
            </a>
        </main>
    }
}

/// Chooses who I am among the catalog's Users.
#[component]
pub fn UserChooser() -> Html {
    let me = use_context::<Me>().expect("Me context");
    let filter = use_state(String::new);
    let url = format!(
        "/api/catalog/entities/by-query?filter=kind=user&limit=50&orderField=metadata.name,asc&fields=metadata.name,metadata.namespace,spec.profile.displayName{}",
        if filter.is_empty() {
            String::new()
        } else {
            format!("&fullTextFilterTerm={}", enc(&filter))
        }
    );
    let users = use_json(Some(url));
    let oninput = {
        let filter = filter.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                filter.set(t.value());
            }
        })
    };
    let onchange = Callback::from(move |e: Event| {
        if let Some(t) = e.target_dyn_into::<web_sys::HtmlSelectElement>() {
            let v = t.value();
            if !v.is_empty() {
                me.set(Some(v));
            }
        }
    });
    let options: Html = match &users {
        Load::Ready(v) => v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|u| {
                        let r = Ref::of(&json_with_kind(u, "user"));
                        let name = u["spec"]["profile"]["displayName"]
                            .as_str()
                            .map(|d| format!("{d} ({})", r.short()))
                            .unwrap_or_else(|| r.short());
                        html! { <option value={r.to_string()}>{ name }</option> }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => html! {},
    };
    html! {
        <section class="panel whoami-chooser" aria-labelledby="whoami-title">
            <h2 id="whoami-title">{ "Who are you?" }</h2>
            <p class="muted">{ "Pick yourself from the catalog's users; the portal remembers it in this browser until sign-in arrives." }</p>
            <div class="row">
                <label for="whoami-filter" class="visually-hidden">{ "Filter users" }</label>
                <input id="whoami-filter" type="search" placeholder="Filter by name" value={(*filter).clone()} {oninput} />
                <label for="whoami-select" class="visually-hidden">{ "User" }</label>
                <select id="whoami-select" {onchange}>
                    <option value="" selected=true>{ "Choose a user…" }</option>
                    { options }
                </select>
            </div>
            { if let Load::Failed(e) = &users { crate::ui::error_box("Could not load users", e) } else { html!{} } }
        </section>
    }
}

/// `fields=` projections drop `kind`; put it back.
fn json_with_kind(v: &Value, kind: &str) -> Value {
    let mut v = v.clone();
    v["kind"] = Value::String(kind.to_string());
    v
}

/// The groups a user belongs to, from the user's relations.
pub fn groups_of(user: &Value) -> Vec<String> {
    user["relations"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["type"] == "memberOf")
                .filter_map(|r| r["targetRef"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn event_list(items: &Value, empty_text: &str) -> Html {
    let list = items["items"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return empty(empty_text);
    }
    html! {
        <ul class="events">
            { for list.iter().map(|e| html! {
                <li>
                    { badge(s(e, "kind"), s(e, "tone")) }
                    <span class="event-title">{
                        match e["url"].as_str() {
                            Some(u) => out_link(s(e, "title"), u),
                            None => html! { { s(e, "title") } },
                        }
                    }</span>
                    { e["entityRef"].as_str().map(|r| ref_link(r, "component")).unwrap_or_default() }
                    <time class="muted">{ ago(e["atMs"].as_f64().unwrap_or(0.0)) }</time>
                </li>
            }) }
        </ul>
    }
}

#[component]
pub fn Home() -> Html {
    let me = use_context::<Me>().expect("Me context");
    let session = use_context::<Session>().expect("Session context");
    let deployed = use_json(Some(
        "/api/events?since=30m&kind=deployment&limit=20".into(),
    ));
    // Deployments have their own panel beside it.
    let recent = use_json(Some(
        "/api/events?since=24h&except=deployment&limit=12".into(),
    ));
    // Plugins' widgets for whoever is signed in (asked again when that
    // changes).
    let widgets = use_json(Some(match (&*me, session.demo_people) {
        (Some(person), true) => format!("/api/widgets?for={}", crate::api::enc(person)),
        _ => format!("/api/widgets?signed-in={}", me.is_some()),
    }));
    let user = use_json(me.as_ref().map(|u| {
        let r = Ref::parse(u, "user");
        format!("/api/catalog/entities/by-name/{}", r.api_path())
    }));
    let navigator = use_navigator();
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let q = crate::ui::input_value("home-search").unwrap_or_default();
        if let Some(nav) = &navigator {
            let _ = nav.push_with_query(&Route::Search, &[("query", q.as_str())]);
        }
    });
    let mine = match (&*me, &user) {
        // Asked above, before anything else.
        (None, _) => html! {},
        (Some(_), Load::Failed(e)) => html! {
            <>
                { crate::ui::error_box("You are not in the catalog any more", e) }
                <UserChooser />
            </>
        },
        (Some(_), Load::Loading) => crate::ui::loading("your teams"),
        (Some(_), Load::Ready(u)) => {
            let groups = groups_of(u);
            html! {
                <>
                    <section class="panel" aria-labelledby="my-services">
                        <h2 id="my-services">{ "My teams' services" }</h2>
                        if groups.is_empty() {
                            { empty("You are in no team in the catalog.") }
                        }
                        { for groups.iter().map(|g| html! { <TeamServices group={g.clone()} /> }) }
                    </section>
                    <section class="panel" aria-labelledby="my-tasks">
                        <h2 id="my-tasks">{ "My campaign tasks" }</h2>
                        <CampaignTasks owners={Rc::new(groups.clone())} />
                    </section>
                    <crate::pages::suggestions::WaitingForMyTeams owners={Rc::new(groups)} />
                </>
            }
        }
    };
    html! {
        <main id="main" class="page home">
            <section class="hero">
                <h1>{ "Good to see you" }</h1>
                <form role="search" class="hero-search" {onsubmit}>
                    <label for="home-search" class="visually-hidden">{ "Search services, APIs, teams and docs" }</label>
                    <input id="home-search" name="q" type="search" placeholder="Search services, APIs, teams and docs" autocomplete="off" />
                    <button type="submit">{ "Search" }</button>
                </form>
                <nav class="quick-links" aria-label="Quick links">
                    <Link<Route> to={Route::Catalog}>{ "Browse the catalog" }</Link<Route>>
                    <Link<Route> to={Route::DocsIndex}>{ "Read the docs" }</Link<Route>>
                    <Link<Route> to={Route::Campaigns}>{ "Migration campaigns" }</Link<Route>>
                    <Link<Route> to={Route::Facts}>{ "Facts and rankings" }</Link<Route>>
                </nav>
            </section>
            if me.is_none() && session.demo_people { <UserChooser /> }
            <div class="grid two">
                <section class="panel" aria-labelledby="deployed">
                    <h2 id="deployed">{ "Deployed in the last 30 minutes" }</h2>
                    { loaded(&deployed, "deployments", |v| event_list(v, "Nothing was deployed in the last 30 minutes.")) }
                </section>
                <section class="panel" aria-labelledby="recent">
                    <h2 id="recent">{ "Recent activity" }</h2>
                    { loaded(&recent, "activity", |v| event_list(v, "Nothing but deployments happened in the last day.")) }
                </section>
            </div>
            { mine }
            if session.admin { <crate::pages::suggestions::CoveragePanel /> }
            { match &widgets {
                Load::Ready(v) if v["widgets"].as_array().is_some_and(|w| !w.is_empty()) => html! {
                    <section class="panel" aria-labelledby="widgets">
                        <h2 id="widgets">{ "From plugins" }</h2>
                        <div class="cards">
                            { for v["widgets"].as_array().cloned().unwrap_or_default().iter().map(crate::cards::card) }
                        </div>
                    </section>
                },
                _ => html! {},
            } }
        </main>
    }
}

#[derive(Properties, PartialEq)]
pub struct GroupProps {
    pub group: String,
}

/// A team's components with their health, from search (which carries
/// each hit's facts).
#[component]
pub fn TeamServices(props: &GroupProps) -> Html {
    let services = use_json(Some(format!(
        "/api/search?owner={}&kind=component&doc=entity&limit=50",
        enc(&props.group)
    )));
    html! {
        <div class="team-services">
            <h3>{ ref_link(&props.group, "group") }</h3>
            { loaded(&services, "services", |v| service_table(v)) }
        </div>
    }
}

/// Search hits as a table of services with their health.
pub fn service_table(v: &Value) -> Html {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return empty("No services.");
    }
    html! {
        <div class="table-wrap">
            <table>
                <thead><tr><th scope="col">{ "Service" }</th><th scope="col">{ "Health" }</th></tr></thead>
                <tbody>
                    { for items.iter().map(|h| html! {
                        <tr>
                            <td>{ ref_link(s(h, "entityRef"), "component") }</td>
                            <td>{ health(&h["facts"]) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct TasksProps {
    pub owners: Rc<Vec<String>>,
}

/// For every campaign, the targets these owners have still to do.
#[component]
pub fn CampaignTasks(props: &TasksProps) -> Html {
    let campaigns = use_json(Some(format!(
        "/api/campaigns?owner={}",
        enc(&props.owners.join(","))
    )));
    loaded(&campaigns, "campaign tasks", |v| {
        let mine: Vec<&Value> = v["items"]
            .as_array()
            .map(|i| {
                i.iter()
                    .filter(|c| c["tasksTodo"].as_u64().unwrap_or(0) > 0)
                    .collect()
            })
            .unwrap_or_default();
        if mine.is_empty() {
            return empty("Nothing to do for any campaign.");
        }
        html! {
            <ul class="tasks">
                { for mine.iter().map(|c| {
                    let title = c["title"].as_str().unwrap_or(s(c, "name")).to_string();
                    let more = c["tasksTodo"].as_u64().unwrap_or(0) as usize
                        - c["tasks"].as_array().map_or(0, Vec::len);
                    html! {
                        <li>
                            <Link<Route> to={Route::Campaign { name: s(c, "name").to_string() }}>{ title }</Link<Route>>
                            { format!(" — {} to do", c["tasksTodo"]) }
                            <ul>
                                { for c["tasks"].as_array().into_iter().flatten().map(|t| html! {
                                    <li>
                                        { ref_link(s(t, "entityRef"), "component") }
                                        { " — " }<span class="muted">{ s(t, "reason") }</span>
                                    </li>
                                }) }
                                if more > 0 { <li class="muted">{ format!("…and {more} more") }</li> }
                            </ul>
                        </li>
                    }
                }) }
            </ul>
        }
    })
}
