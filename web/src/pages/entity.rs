//! An entity's page: a header with ownership and warnings, then tabs as
//! sub-paths (`/catalog/:ns/:kind/:name/:tab`): overview with relations
//! and plugin cards, docs, API definition, dependencies and actions.
//! Groups and Users get a team and person overview.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{Value, json};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{Load, enc, use_json};
use crate::pages::home::{CampaignTasks, service_table};
use crate::ui::{Ref, badge, empty, error_box, loaded, loading, out_link, ref_link, s};
use crate::{Me, Route};

#[derive(Properties, PartialEq)]
pub struct EntityProps {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub tab: String,
}

const TECHDOCS: &str = "backstage.io/techdocs-ref";

/// The targets of an entity's relations of one type.
fn related(e: &Value, kind: &str) -> Vec<String> {
    e["relations"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["type"] == kind)
                .filter_map(|r| r["targetRef"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ref_list(refs: &[String], default_kind: &str) -> Html {
    html! {
        <ul class="inline-list">
            { for refs.iter().map(|r| html! { <li>{ ref_link(r, default_kind) }</li> }) }
        </ul>
    }
}

#[component]
pub fn EntityPage(props: &EntityProps) -> Html {
    let r = Ref {
        kind: props.kind.to_lowercase(),
        namespace: props.namespace.clone(),
        name: props.name.clone(),
    };
    let entity = use_json(Some(format!(
        "/api/catalog/entities/by-name/{}",
        r.api_path()
    )));
    // Tabs plugins contribute: listed once they answer, and until then
    // (or if they fail) the page has its own tabs only.
    let plugin_tabs = use_json(Some(format!("/api/tabs/{}", r.api_path())));
    let plugin_tabs: Vec<Value> = match &plugin_tabs {
        Load::Ready(v) => v["tabs"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    let body = match &entity {
        Load::Loading => loading("the entity"),
        Load::Failed(e) => html! {
            <>
                <h1>{ r.short() }</h1>
                { error_box(&format!("No {} named {} here", r.kind, r.short()), e) }
                <p><Link<Route> to={Route::Catalog}>{ "Back to the catalog" }</Link<Route>></p>
            </>
        },
        Load::Ready(e) => page(e.clone(), &r, &props.tab, &plugin_tabs),
    };
    html! { <main id="main" class="page entity">{ body }</main> }
}

/// A plugin tab's path segment: `<plugin>.<id>`.
fn plugin_tab_id(t: &Value) -> String {
    format!("{}.{}", s(t, "plugin"), s(t, "id"))
}

fn page(e: Rc<Value>, r: &Ref, tab: &str, plugin_tabs: &[Value]) -> Html {
    let mut tabs: Vec<(String, String)> = vec![("overview".into(), "Overview".into())];
    if e["metadata"]["annotations"][TECHDOCS].is_string() {
        tabs.push(("docs".into(), "Docs".into()));
    }
    if r.kind == "api" {
        tabs.push(("api".into(), "Definition".into()));
    }
    if !matches!(r.kind.as_str(), "group" | "user") {
        tabs.push(("dependencies".into(), "Dependencies".into()));
        tabs.push(("actions".into(), "Actions".into()));
    }
    // A plugin that failed shows its error on the overview's cards, not
    // as a tab.
    let plugin_tabs: Vec<&Value> = plugin_tabs
        .iter()
        .filter(|t| t["error"].is_null())
        .collect();
    for t in &plugin_tabs {
        tabs.push((plugin_tab_id(t), s(t, "title").to_string()));
    }
    let tab = if tabs.iter().any(|(t, _)| t == tab) {
        tab
    } else {
        "overview"
    };
    let from_plugin = plugin_tabs.iter().find(|t| plugin_tab_id(t) == tab);
    let content = match (tab, r.kind.as_str()) {
        _ if from_plugin.is_some() => plugin_tab(from_plugin.copied().unwrap_or(&Value::Null)),
        ("docs", _) => html! {
            <crate::pages::docs::DocsReader namespace={r.namespace.clone()} kind={r.kind.clone()} name={r.name.clone()} path="" embedded=true />
        },
        ("api", _) => html! { <ApiDefinition entity={r.to_string()} /> },
        ("dependencies", _) => dependency_graph(&e, r),
        ("actions", _) => html! { <Actions entity={r.to_string()} /> },
        (_, "group") => group_overview(&e, r),
        (_, "user") => user_overview(&e),
        _ => overview(&e, r),
    };
    html! {
        <>
            { header(&e, r) }
            <nav class="tabs" aria-label="Entity sections">
                { for tabs.iter().map(|(id, label)| {
                    let route = if id == "overview" { r.route() } else { r.tab(id) };
                    let current = id == tab;
                    html! {
                        <Link<Route> to={route} classes={classes!("tab", current.then_some("current"))}>
                            { label.clone() }
                        </Link<Route>>
                    }
                }) }
            </nav>
            <section class="tab-body" aria-label={tab.to_string()}>{ content }</section>
        </>
    }
}

fn header(e: &Value, r: &Ref) -> Html {
    let meta = &e["metadata"];
    let spec = &e["spec"];
    let title = meta["title"]
        .as_str()
        .unwrap_or(s(meta, "name"))
        .to_string();
    let owner = related(e, "ownedBy")
        .into_iter()
        .next()
        .or_else(|| spec["owner"].as_str().map(str::to_string));
    let system = related(e, "partOf")
        .into_iter()
        .find(|p| p.starts_with("system:"));
    let domain = related(e, "partOf")
        .into_iter()
        .find(|p| p.starts_with("domain:"))
        .or_else(|| spec["domain"].as_str().map(|d| format!("domain:{d}")));
    let warnings: Vec<Value> = e["status"]["items"].as_array().cloned().unwrap_or_default();
    let links: Vec<Value> = meta["links"].as_array().cloned().unwrap_or_default();
    let field = |label: &str, value: Html| {
        html! { <div class="meta-item"><dt>{ label.to_string() }</dt><dd>{ value }</dd></div> }
    };
    html! {
        <header class="entity-header">
            <p class="eyebrow">{ badge(s(e, "kind"), "info") }{ " " }{ s(spec, "type") }</p>
            <h1>{ title }</h1>
            if meta["title"].is_string() { <p class="muted">{ r.to_string() }</p> }
            if let Some(d) = meta["description"].as_str() { <p class="lead">{ d }</p> }
            <dl class="meta">
                if let Some(o) = &owner { { field("Owner", ref_link(o, "group")) } }
                if let Some(sys) = &system { { field("System", ref_link(sys, "system")) } }
                if let Some(d) = &domain { { field("Domain", ref_link(d, "domain")) } }
                if let Some(l) = spec["lifecycle"].as_str() { { field("Lifecycle", badge(l, if l == "production" { "good" } else { "neutral" })) } }
                if let Some(tags) = meta["tags"].as_array() {
                    { field("Tags", html! { <>{ for tags.iter().map(|t| html! { <span class="tag">{ t.as_str().unwrap_or("") }</span> }) }</> }) }
                }
            </dl>
            if r.kind == "group" {
                <crate::pages::scorecards::TeamLevels team={r.to_string()} />
            } else {
                <crate::pages::scorecards::EntityLevels kind={r.kind.clone()} namespace={r.namespace.clone()} name={r.name.clone()} />
            }
            if !links.is_empty() {
                <ul class="links" aria-label="Links">
                    { for links.iter().map(|l| html! {
                        <li>{ out_link(l["title"].as_str().unwrap_or(s(l, "url")), s(l, "url")) }</li>
                    }) }
                </ul>
            }
            { for warnings.iter().map(|w| html! {
                <div class={classes!("warning", format!("level-{}", s(w, "level")))} role="alert">
                    <strong>{ if s(w, "type").ends_with("orphan-owner") { "Orphan" } else { "Problem" } }</strong>
                    { " " }{ w["message"].as_str().or(w["error"]["message"].as_str()).unwrap_or("") }
                </div>
            }) }
        </header>
    }
}

/// Relations other than ownership, grouped by type.
fn relations(e: &Value) -> Html {
    let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rel in e["relations"].as_array().into_iter().flatten() {
        let t = s(rel, "type");
        if t != "ownedBy" {
            by_type
                .entry(t.to_string())
                .or_default()
                .push(s(rel, "targetRef").to_string());
        }
    }
    if by_type.is_empty() {
        return empty("No relations.");
    }
    html! {
        <dl class="relations">
            { for by_type.iter().map(|(t, refs)| html! {
                <div><dt>{ t.clone() }</dt><dd>{ ref_list(refs, "component") }</dd></div>
            }) }
        </dl>
    }
}

fn overview(e: &Value, r: &Ref) -> Html {
    html! {
        <div class="grid overview">
            <section class="panel" aria-labelledby="relations-title">
                <h2 id="relations-title">{ "Relations" }</h2>
                { relations(e) }
            </section>
            <section class="panel" aria-labelledby="facts-title">
                <h2 id="facts-title">{ "Facts" }</h2>
                <Facts entity={r.to_string()} />
            </section>
            <Cards entity={r.to_string()} />
        </div>
    }
}

/// The entity's facts, each with where it came from (a plugin or a push).
#[component]
fn Facts(props: &RefProps) -> Html {
    let r = Ref::parse(&props.entity, "component");
    let facts = use_json(Some(format!("/api/entities/{}/facts", r.api_path())));
    loaded(&facts, "facts", |v| {
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return empty(
                "No facts yet: plugins report them on their interval, CI with `greenroom facts push`.",
            );
        }
        html! {
            <table id="entity-facts">
                <thead><tr><th>{ "Fact" }</th><th>{ "Value" }</th><th>{ "From" }</th></tr></thead>
                <tbody>
                    { for items.iter().map(|f| {
                        let name = s(f, "name").to_string();
                        let value = match &f["value"] {
                            Value::String(t) => t.clone(),
                            Value::Number(n) => match n.as_f64() {
                                Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
                                _ => n.to_string(),
                            },
                            other => other.to_string(),
                        };
                        html! {
                            <tr>
                                <td>{ match f["url"].as_str() {
                                    Some(url) => out_link(&name, url),
                                    None => html! { { name.clone() } },
                                } }</td>
                                <td>{ value }</td>
                                <td>{ s(f, "source").to_string() }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        }
    })
}

fn group_overview(e: &Value, r: &Ref) -> Html {
    let members = related(e, "hasMember");
    let parents = related(e, "childOf");
    let children = related(e, "parentOf");
    let profile = &e["spec"]["profile"];
    html! {
        <div class="grid overview">
            <section class="panel" aria-labelledby="team-title">
                <h2 id="team-title">{ "Team" }</h2>
                if let Some(email) = profile["email"].as_str() {
                    <p><a href={format!("mailto:{email}")}>{ email }</a></p>
                }
                <h3>{ format!("Members ({})", members.len()) }</h3>
                if members.is_empty() { { empty("No members.") } } else { { ref_list(&members, "user") } }
                if !parents.is_empty() { <h3>{ "Parent" }</h3>{ ref_list(&parents, "group") } }
                if !children.is_empty() { <h3>{ "Teams within" }</h3>{ ref_list(&children, "group") } }
            </section>
            <section class="panel" aria-labelledby="owned-title">
                <h2 id="owned-title">{ "Owned by this team" }</h2>
                <Owned owner={r.to_string()} />
            </section>
            <section class="panel" aria-labelledby="tasks-title">
                <h2 id="tasks-title">{ "Campaign tasks" }</h2>
                <CampaignTasks owners={Rc::new(vec![r.to_string()])} />
            </section>
        </div>
    }
}

fn user_overview(e: &Value) -> Html {
    let groups = related(e, "memberOf");
    let profile = &e["spec"]["profile"];
    let r = Ref::of(e);
    html! {
        <div class="grid overview">
            <section class="panel" aria-labelledby="person-title">
                <h2 id="person-title">{ profile["displayName"].as_str().unwrap_or(&r.name).to_string() }</h2>
                if let Some(email) = profile["email"].as_str() {
                    <p><a href={format!("mailto:{email}")}>{ email }</a></p>
                }
                <h3>{ "Teams" }</h3>
                if groups.is_empty() { { empty("In no team.") } } else { { ref_list(&groups, "group") } }
            </section>
            <section class="panel" aria-labelledby="owned-title">
                <h2 id="owned-title">{ "Owned" }</h2>
                <Owned owner={r.to_string()} />
            </section>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct OwnerProps {
    owner: String,
}

/// Everything an owner owns, with health, from search.
#[component]
fn Owned(props: &OwnerProps) -> Html {
    let owned = use_json(Some(format!(
        "/api/search?owner={}&doc=entity&limit=100",
        enc(&props.owner)
    )));
    loaded(&owned, "what this team owns", |v| service_table(v))
}

/// A whole tab from a plugin: its nodes, and which plugin drew them.
fn plugin_tab(t: &Value) -> Html {
    let nodes: Html = t["nodes"]
        .as_array()
        .map(|n| n.iter().map(crate::cards::node).collect())
        .unwrap_or_default();
    html! {
        <div class="plugin-tab" data-plugin={s(t, "plugin").to_string()}>
            { nodes }
            <footer class="card-source">{ format!("from plugin {} {}", s(t, "plugin"), s(t, "pluginVersion")) }</footer>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct RefProps {
    pub entity: String,
}

/// Plugin cards: a placeholder while plugins answer, an error card (naming
/// the plugin) for each that failed.
#[component]
pub fn Cards(props: &RefProps) -> Html {
    let r = Ref::parse(&props.entity, "component");
    let cards = use_json(Some(format!("/api/cards/{}", r.api_path())));
    let body = match &cards {
        Load::Loading => html! {
            <>
                <div class="card skeleton" aria-hidden="true"></div>
                <div class="card skeleton" aria-hidden="true"></div>
                { loading("plugin cards") }
            </>
        },
        Load::Failed(e) => error_box("Could not load plugin cards", e),
        Load::Ready(v) => {
            let list = v["cards"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                empty("No plugin has a card for this entity.")
            } else {
                html! { <>{ for list.iter().map(crate::cards::card) }</> }
            }
        }
    };
    html! { <div class="cards" aria-label="Plugin cards">{ body }</div> }
}

/// An API's definition, shown readably: OpenAPI operations, AsyncAPI
/// channels, and the raw text.
#[component]
fn ApiDefinition(props: &RefProps) -> Html {
    let r = Ref::parse(&props.entity, "api");
    let def = use_json(Some(format!("/api/entities/{}/definition", r.api_path())));
    loaded(&def, "the definition", |v| {
        let doc = &v["document"];
        let info = &doc["info"];
        let readable = match s(v, "format") {
            "openapi" => openapi(doc),
            "asyncapi" => asyncapi(doc),
            _ => html! {},
        };
        html! {
            <div class="api-definition">
                if let Some(e) = v["error"].as_str() { { error_box("The definition could not be read", e) } }
                if info.is_object() {
                    <h2>{ format!("{} {}", s(info, "title"), s(info, "version")) }</h2>
                    if let Some(d) = info["description"].as_str() { <p>{ d }</p> }
                }
                { readable }
                <details>
                    <summary>{ format!("Raw definition ({})", s(v, "type")) }</summary>
                    <pre class="code"><code>{ s(v, "text") }</code></pre>
                </details>
            </div>
        }
    })
}

fn openapi(doc: &Value) -> Html {
    const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];
    let servers: Vec<String> = doc["servers"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["url"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for m in METHODS {
                if let Some(op) = item.get(m) {
                    rows.push(html! {
                        <tr>
                            <td>{ badge(&m.to_uppercase(), method_tone(m)) }</td>
                            <td><code>{ path.clone() }</code></td>
                            <td>{ op["summary"].as_str().or(op["description"].as_str()).unwrap_or("") }</td>
                        </tr>
                    });
                }
            }
        }
    }
    html! {
        <>
            if !servers.is_empty() { <p>{ "Servers: " }{ for servers.iter().map(|s| html! { <code>{ s.clone() }</code> }) }</p> }
            <h3>{ format!("Operations ({})", rows.len()) }</h3>
            <div class="table-wrap">
                <table>
                    <thead><tr><th scope="col">{ "Method" }</th><th scope="col">{ "Path" }</th><th scope="col">{ "Summary" }</th></tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
            </div>
        </>
    }
}

fn method_tone(m: &str) -> &'static str {
    match m {
        "get" => "info",
        "post" => "good",
        "delete" => "critical",
        _ => "warning",
    }
}

fn asyncapi(doc: &Value) -> Html {
    let channels: Vec<(String, Value)> = doc["channels"]
        .as_object()
        .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    html! {
        <>
            <h3>{ format!("Channels ({})", channels.len()) }</h3>
            <div class="table-wrap">
                <table>
                    <thead><tr><th scope="col">{ "Channel" }</th><th scope="col">{ "Operations" }</th><th scope="col">{ "Description" }</th></tr></thead>
                    <tbody>
                        { for channels.iter().map(|(name, c)| {
                            let ops: Vec<&str> = ["publish", "subscribe"].into_iter().filter(|o| c.get(*o).is_some()).collect();
                            html! {
                                <tr>
                                    <td><code>{ c["address"].as_str().unwrap_or(name).to_string() }</code></td>
                                    <td>{ for ops.iter().map(|o| badge(o, "info")) }</td>
                                    <td>{ s(c, "description") }</td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            </div>
        </>
    }
}

/// Relations that make up the dependency graph: (type, the other entity
/// needs this one).
const DEPENDENCY_RELATIONS: [(&str, bool); 6] = [
    ("dependsOn", false),
    ("consumesApi", false),
    ("providesApi", false),
    ("dependencyOf", true),
    ("apiConsumedBy", true),
    ("apiProvidedBy", true),
];

/// A layered graph: what depends on this entity on the left, what it
/// depends on on the right, each column grouped by kind, so that it stays
/// readable with 50 and more neighbours.
fn dependency_graph(e: &Value, r: &Ref) -> Html {
    let mut left: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut right: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for rel in e["relations"].as_array().into_iter().flatten() {
        let t = s(rel, "type");
        let Some((_, incoming)) = DEPENDENCY_RELATIONS.iter().find(|(k, _)| *k == t) else {
            continue;
        };
        let target = s(rel, "targetRef").to_string();
        let kind = Ref::parse(&target, "component").kind;
        let side = if *incoming { &mut left } else { &mut right };
        side.entry(kind).or_default().push((target, t.to_string()));
    }
    if left.is_empty() && right.is_empty() {
        return empty("No dependencies recorded in either direction.");
    }
    const ROW: f64 = 30.0;
    const HEAD: f64 = 26.0;
    const WIDTH: f64 = 900.0;
    const NODE_W: f64 = 240.0;
    let column_height = |c: &BTreeMap<String, Vec<(String, String)>>| {
        c.values().map(|v| HEAD + v.len() as f64 * ROW).sum::<f64>()
    };
    let height = column_height(&left)
        .max(column_height(&right))
        .max(ROW * 3.0)
        + 20.0;
    let center_y = height / 2.0;
    let center_x = WIDTH / 2.0 - NODE_W / 2.0;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for (column, x) in [(&left, 10.0), (&right, WIDTH - NODE_W - 10.0)] {
        let mut y = 10.0;
        for (kind, refs) in column.iter() {
            nodes.push(html! {
                <text class="graph-group" x={format!("{x}")} y={format!("{}", y + 16.0)}>{ format!("{kind} ({})", refs.len()) }</text>
            });
            y += HEAD;
            for (target, rel) in refs {
                let t = Ref::parse(target, "component");
                let href = t.tab("dependencies").to_path();
                // From the node on the left to the one on the right: each
                // edge joins the entity to its own neighbour.
                let ny = y + ROW / 2.0 - 2.0;
                let ((x1, y1), (x2, y2)) = if x < center_x {
                    ((x + NODE_W, ny), (center_x, center_y))
                } else {
                    ((center_x + NODE_W, center_y), (x, ny))
                };
                edges.push(html! {
                    <path class="graph-edge" d={format!("M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}", mx = (x1 + x2) / 2.0)}>
                        <title>{ rel.clone() }</title>
                    </path>
                });
                nodes.push(html! {
                    <a href={href}>
                        <rect class="graph-node" x={format!("{x}")} y={format!("{y}")} width={format!("{NODE_W}")} height={format!("{}", ROW - 4.0)} rx="6" />
                        <text x={format!("{}", x + 10.0)} y={format!("{}", y + 18.0)}>{ t.short() }</text>
                        <title>{ format!("{rel} {target}") }</title>
                    </a>
                });
                y += ROW;
            }
        }
    }
    let label = format!(
        "Dependencies of {}: {} depend on it, it depends on {}",
        r.short(),
        left.values().map(Vec::len).sum::<usize>(),
        right.values().map(Vec::len).sum::<usize>()
    );
    html! {
        <div class="graph-wrap">
            <p class="muted">{ "Left: what needs this entity. Right: what it needs. Select a node to follow it." }</p>
            <svg class="graph" viewBox={format!("0 0 {WIDTH} {height}")} width={format!("{WIDTH}")} height={format!("{height}")} role="img" aria-label={label}>
                { for edges }
                <rect class="graph-node current" x={format!("{center_x}")} y={format!("{}", center_y - 16.0)} width={format!("{NODE_W}")} height="32" rx="8" />
                <text class="graph-current" x={format!("{}", center_x + 12.0)} y={format!("{}", center_y + 5.0)}>{ r.short() }</text>
                { for nodes }
            </svg>
        </div>
    }
}

/// Plugin actions with a confirmation step; run as the chosen user.
#[component]
fn Actions(props: &RefProps) -> Html {
    let me = use_context::<Me>().expect("Me context");
    let demo = use_context::<crate::Session>().is_some_and(|s| s.demo_people);
    let r = Ref::parse(&props.entity, "component");
    let actions = use_json(Some(format!("/api/actions/{}", r.api_path())));
    let pending = use_state(|| None::<Value>);
    let outcome = use_state(|| None::<Result<String, String>>);
    let run = {
        let (pending, outcome, me, r) = (pending.clone(), outcome.clone(), me.clone(), r.clone());
        Callback::from(move |_| {
            let Some(action) = (*pending).clone() else {
                return;
            };
            pending.set(None);
            let (outcome, user, r) = (outcome.clone(), (*me).clone(), r.clone());
            // The form's values as typed; the host checks them.
            let input = form_values(&action);
            wasm_bindgen_futures::spawn_local(async move {
                let url = format!(
                    "/api/actions/{}/{}/{}",
                    r.api_path(),
                    enc(s(&action, "plugin")),
                    enc(s(&action, "id"))
                );
                // Only the demo names who acts; otherwise the sign-in does.
                let body = if demo {
                    json!({"user": user, "confirmed": true, "input": input})
                } else {
                    json!({"confirmed": true, "input": input})
                };
                let result = crate::api::post(&url, &body, None).await.map(|v| {
                    v["message"]
                        .as_str()
                        .or(v["run"]["message"].as_str())
                        .unwrap_or("done")
                        .to_string()
                });
                outcome.set(Some(result));
            });
        })
    };
    let cancel = {
        let pending = pending.clone();
        Callback::from(move |_| pending.set(None))
    };
    let list = loaded(&actions, "actions", |v| {
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let errors = v["errors"].as_array().cloned().unwrap_or_default();
        html! {
            <>
                { for errors.iter().map(|e| error_box(&format!("Plugin {} could not list its actions", s(e, "plugin")), s(e, "error"))) }
                if items.is_empty() { { empty("No plugin offers actions on this entity.") } }
                <ul class="actions">
                    { for items.iter().map(|a| {
                        let onclick = { let (pending, a) = (pending.clone(), a.clone()); Callback::from(move |_| pending.set(Some(a.clone()))) };
                        let allowed = a["allowed"].as_bool().unwrap_or(false) && me.is_some();
                        html! {
                            <li>
                                <button type="button" {onclick} disabled={!allowed}>{ s(a, "label") }</button>
                                <span class="muted">{ format!(" {} (plugin {})", s(a, "description"), s(a, "plugin")) }</span>
                                if !a["allowed"].as_bool().unwrap_or(false) { <span class="muted">{ " — turned off by the operator" }</span> }
                            </li>
                        }
                    }) }
                </ul>
            </>
        }
    });
    html! {
        <div class="actions-tab">
            if me.is_none() { <p class="warning">{ if demo { "Choose who you are on the homepage to run actions." } else { "Sign in to run actions." } }</p> }
            { list }
            if let Some(a) = &*pending {
                <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="confirm-title">
                    <h2 id="confirm-title">{ format!("{}?", s(a, "label")) }</h2>
                    <p>{ format!("{} on {}, as {}.", s(a, "description"), r.short(), me.as_deref().unwrap_or("")) }</p>
                    { action_form(a) }
                    <div class="row">
                        <button type="button" class="primary" onclick={run}>{ "Confirm" }</button>
                        <button type="button" class="ghost" onclick={cancel}>{ "Cancel" }</button>
                    </div>
                </div>
            }
            { match &*outcome {
                Some(Ok(m)) => html! { <p class="notice" role="status">{ m.clone() }</p> },
                Some(Err(e)) => error_box("The action failed", e),
                None => html! {},
            } }
        </div>
    }
}

/// The element id of an action form's field.
fn field_id(field: &Value) -> String {
    format!("action-input-{}", s(field, "name"))
}

/// An action's form, from the fields its plugin declared: a text line or
/// area, a number, a list of choices, a checkbox; defaults filled in and
/// the browser told the bounds (the host checks them again).
fn action_form(action: &Value) -> Html {
    let fields = action["inputs"].as_array().cloned().unwrap_or_default();
    if fields.is_empty() {
        return html! {};
    }
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(t) => t.clone(),
        // 1.0 reads 1 in a number box.
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    html! {
        <div class="action-form">
            { for fields.iter().map(|f| {
                let id = field_id(f);
                let required = f["required"].as_bool().unwrap_or(false);
                let default = text(&f["default"]);
                let input = match s(f, "type") {
                    "number" => html! {
                        <input id={id.clone()} type="number" value={default}
                            min={f["min"].as_f64().map(|m| m.to_string())}
                            max={f["max"].as_f64().map(|m| m.to_string())}
                            step={if f["integer"].as_bool().unwrap_or(false) { "1" } else { "any" }}
                            {required} />
                    },
                    "choice" => html! {
                        <select id={id.clone()} {required}>
                            if !required || default.is_empty() { <option value="" selected={default.is_empty()}>{ "—" }</option> }
                            { for f["options"].as_array().cloned().unwrap_or_default().iter().map(|o| html! {
                                <option value={s(o, "value").to_string()} selected={s(o, "value") == default}>{ s(o, "label") }</option>
                            }) }
                        </select>
                    },
                    "flag" => html! {
                        <input id={id.clone()} type="checkbox" checked={f["default"].as_bool().unwrap_or(false)} />
                    },
                    _ if f["multiline"].as_bool().unwrap_or(false) => html! {
                        <textarea id={id.clone()} rows="4" value={default}
                            maxlength={f["maxLength"].as_u64().map(|m| m.to_string())} {required} />
                    },
                    _ => html! {
                        <input id={id.clone()} type="text" value={default}
                            maxlength={f["maxLength"].as_u64().map(|m| m.to_string())}
                            pattern={f["pattern"].as_str().map(str::to_string)} {required} />
                    },
                };
                html! {
                    <p class="form-field">
                        <label for={id.clone()}>{ s(f, "label") }{ if required { " *" } else { "" } }</label>
                        { input }
                        if let Some(help) = f["help"].as_str() { <span class="muted">{ help }</span> }
                    </p>
                }
            }) }
        </div>
    }
}

/// What the person entered in an action's form, by field name.
fn form_values(action: &Value) -> Value {
    use wasm_bindgen::JsCast;
    let mut out = serde_json::Map::new();
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return Value::Object(out);
    };
    for f in action["inputs"].as_array().cloned().unwrap_or_default() {
        let Some(element) = document.get_element_by_id(&field_id(&f)) else {
            continue;
        };
        let value = if let Some(i) = element.dyn_ref::<web_sys::HtmlInputElement>() {
            if s(&f, "type") == "flag" {
                Value::Bool(i.checked())
            } else {
                Value::String(i.value())
            }
        } else if let Some(t) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            Value::String(t.value())
        } else if let Some(c) = element.dyn_ref::<web_sys::HtmlSelectElement>() {
            Value::String(c.value())
        } else {
            continue;
        };
        out.insert(s(&f, "name").to_string(), value);
    }
    Value::Object(out)
}
