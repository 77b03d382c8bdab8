//! Plugins admin: what is installed, its state and exports, requested
//! against granted capabilities (grant and revoke), health, and
//! disable/enable. Changes need the admin token, kept for this tab only.

use std::rc::Rc;

use serde_json::{Value, json};
use yew::prelude::*;

use crate::api::use_json;
use crate::ui::{badge, empty, error_box, loaded, s};

const TOKEN_KEY: &str = "greenroom.adminToken";

/// The admin token kept for this tab (the plugins and audit pages).
pub fn session_token() -> String {
    web_sys::window()
        .and_then(|w| w.session_storage().ok().flatten())
        .and_then(|s| s.get_item(TOKEN_KEY).ok().flatten())
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn state_tone(state: &str) -> &'static str {
    match state {
        "loaded" | "ready" | "enabled" => "good",
        "disabled" => "neutral",
        "backing-off" | "backoff" => "warning",
        _ => "critical",
    }
}

#[component]
pub fn PluginsAdmin() -> Html {
    // Bumped after every change, to load the list again.
    let version = use_state(|| 0u32);
    let list = use_json(Some(format!("/api/plugins?v={}", *version)));
    let token = use_state(session_token);
    let message = use_state(|| None::<Result<String, String>>);
    let change: Callback<(String, &'static str, Value)> = {
        let (version, token, message) = (version.clone(), token.clone(), message.clone());
        Callback::from(move |(id, what, body): (String, &'static str, Value)| {
            let (version, token, message) = (version.clone(), (*token).clone(), message.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let url = format!("/api/plugins/{}/{what}", crate::api::enc(&id));
                match crate::api::post(&url, &body, Some(&token)).await {
                    Ok(_) => message.set(Some(Ok(format!("{id}: {what} saved")))),
                    Err(e) => message.set(Some(Err(e))),
                }
                version.set(*version + 1);
            });
        })
    };
    let on_token = {
        let token = token.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                let v = t.value();
                if let Some(s) = web_sys::window().and_then(|w| w.session_storage().ok().flatten())
                {
                    let _ = s.set_item(TOKEN_KEY, &v);
                }
                token.set(v);
            }
        })
    };
    let table = loaded(&list, "plugins", |v| {
        let items = v["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return empty(
                "No plugin is installed. Drop a component's .wasm into the plugins folder and it loads within seconds.",
            );
        }
        html! { <>{ for items.iter().map(|p| plugin_row(Rc::new(p.clone()), change.clone())) }</> }
    });
    html! {
        <main id="main" class="page plugins">
            <h1>{ "Plugins" }</h1>
            <div class="row">
                <label for="admin-token">{ "Admin token" }</label>
                <input id="admin-token" type="password" autocomplete="off" value={(*token).clone()} oninput={on_token}
                    placeholder="needed to grant, revoke, disable or enable" />
            </div>
            { match &*message {
                Some(Ok(m)) => html! { <p class="notice" role="status">{ m.clone() }</p> },
                Some(Err(e)) => error_box("The change was refused", e),
                None => html! {},
            } }
            { table }
        </main>
    }
}

fn plugin_row(p: Rc<Value>, change: Callback<(String, &'static str, Value)>) -> Html {
    let id = p["id"].as_str().unwrap_or(s(&p, "file")).to_string();
    let state = s(&p, "state").to_string();
    let requested_hosts = strings(&p["requested"]["hosts"]);
    let requested_secrets = strings(&p["requested"]["secrets"]);
    let granted_hosts = strings(&p["granted"]["hosts"]);
    let granted_secrets = strings(&p["granted"]["secrets"]);
    let configured_hosts = strings(&p["configured"]["hosts"]);
    let configured_secrets = strings(&p["configured"]["secrets"]);
    // What the API may change: the grants beyond greenroom.toml's.
    let stored = |granted: &[String], configured: &[String]| -> Vec<String> {
        granted
            .iter()
            .filter(|g| !configured.contains(g))
            .cloned()
            .collect()
    };
    let stored_hosts = stored(&granted_hosts, &configured_hosts);
    let stored_secrets = stored(&granted_secrets, &configured_secrets);
    let disabled = p["granted"]["disabled"].as_bool().unwrap_or(false) || state == "disabled";
    let toggle = {
        let (change, id) = (change.clone(), id.clone());
        Callback::from(move |_| {
            change.emit((
                id.clone(),
                if disabled { "enable" } else { "disable" },
                json!({}),
            ))
        })
    };
    // A plugin asking for any host ("*") reaches the origins granted to
    // it: those are its rows, and a form grants more.
    let any_host = requested_hosts.iter().any(|h| h == "*");
    let host_rows: Vec<String> = requested_hosts
        .iter()
        .filter(|h| *h != "*")
        .chain(
            granted_hosts
                .iter()
                .filter(|h| any_host && !requested_hosts.contains(h)),
        )
        .cloned()
        .collect();
    let origin_input = format!("grant-origin-{id}");
    let grant_origin = {
        let (change, id, input) = (change.clone(), id.clone(), origin_input.clone());
        let (hosts, secrets) = (stored_hosts.clone(), stored_secrets.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let origin = crate::ui::input_value(&input).unwrap_or_default();
            let origin = origin.trim();
            if origin.is_empty() {
                return;
            }
            let mut hosts = hosts.clone();
            hosts.push(origin.to_string());
            change.emit((
                id.clone(),
                "grants",
                json!({"hosts": hosts, "secrets": secrets}),
            ))
        })
    };
    // One row per requested capability: granted in greenroom.toml (not
    // changeable here), granted here (revoke) or not granted (grant).
    let capability = |what: &'static str, item: &String| {
        let (configured, granted) = if what == "host" {
            (
                configured_hosts.contains(item),
                granted_hosts.contains(item),
            )
        } else {
            (
                configured_secrets.contains(item),
                granted_secrets.contains(item),
            )
        };
        let (change, id) = (change.clone(), id.clone());
        let (mut hosts, mut secrets) = (stored_hosts.clone(), stored_secrets.clone());
        let list = if what == "host" {
            &mut hosts
        } else {
            &mut secrets
        };
        if granted {
            list.retain(|x| x != item);
        } else {
            list.push(item.clone());
        }
        let onclick = Callback::from(move |_| {
            change.emit((
                id.clone(),
                "grants",
                json!({"hosts": hosts, "secrets": secrets}),
            ))
        });
        html! {
            <tr>
                <td>{ what }</td>
                <td><code>{ item.clone() }</code></td>
                <td>{
                    if configured { badge("granted in greenroom.toml", "good") }
                    else if granted { badge("granted", "good") }
                    else { badge("not granted", "warning") }
                }</td>
                <td>
                    if !configured {
                        <button type="button" class="small" {onclick}>{ if granted { "Revoke" } else { "Grant" } }</button>
                    }
                </td>
            </tr>
        }
    };
    let health = &p["health"];
    html! {
        <section class="panel plugin" aria-label={format!("Plugin {id}")} data-plugin={id.clone()}>
            <header class="plugin-head">
                <h2>{ p["name"].as_str().unwrap_or(&id).to_string() }{ " " }<span class="muted small">{ format!("{id} {}", s(&p, "version")) }</span></h2>
                { badge(&state, state_tone(&state)) }
                <button type="button" onclick={toggle}>{ if disabled { "Enable" } else { "Disable" } }</button>
            </header>
            <p>{ s(&p, "description") }</p>
            if let Some(e) = p["error"].as_str() { { error_box("Could not load", e) } }
            <p class="muted small">{ format!("File {} · contract {} · exports: {}", s(&p, "file"), s(&p, "contract"), strings(&p["exports"]).join(", ")) }</p>
            if health.is_object() {
                <dl class="meta">
                    <div class="meta-item"><dt>{ "Calls" }</dt><dd>{ health["calls"].to_string() }</dd></div>
                    <div class="meta-item"><dt>{ "Errors" }</dt><dd>{ health["errors"].to_string() }</dd></div>
                    <div class="meta-item"><dt>{ "p50" }</dt><dd>{ format!("{:.1} ms", health["p50Ms"].as_f64().unwrap_or(0.0)) }</dd></div>
                    <div class="meta-item"><dt>{ "p95" }</dt><dd>{ format!("{:.1} ms", health["p95Ms"].as_f64().unwrap_or(0.0)) }</dd></div>
                </dl>
                if let Some(e) = health["lastError"].as_str() { <p class="muted small">{ format!("Last error: {e}") }</p> }
            }
            if !host_rows.is_empty() || !requested_secrets.is_empty() {
                <div class="table-wrap">
                    <table>
                        <caption>{ "Capabilities: requested by the plugin, granted by you" }</caption>
                        <thead><tr><th scope="col">{ "Kind" }</th><th scope="col">{ "Requested" }</th><th scope="col">{ "State" }</th><th scope="col"><span class="visually-hidden">{ "Change" }</span></th></tr></thead>
                        <tbody>
                            { for host_rows.iter().map(|h| capability("host", h)) }
                            { for requested_secrets.iter().map(|h| capability("secret", h)) }
                        </tbody>
                    </table>
                </div>
            }
            if any_host {
                <form class="row" onsubmit={grant_origin}>
                    <label for={origin_input.clone()}>{ "The plugin may reach any origin you grant:" }</label>
                    <input id={origin_input.clone()} type="text" placeholder="https://api.example.com" />
                    <button type="submit" class="small">{ "Grant origin" }</button>
                </form>
            }
        </section>
    }
}
