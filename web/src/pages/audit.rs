//! The audit trail, for administrators: every write and every refusal,
//! newest last, filtered by who and by target. Reading it needs an
//! administrator; here, the admin token kept for this tab (as on the
//! plugins page) or an administrator's sign-in.

use serde_json::Value;
use yew::prelude::*;

use crate::api::Load;
use crate::ui::{badge, empty, error_box, loading, s};

#[component]
pub fn AuditPage() -> Html {
    let actor = use_state(String::new);
    let target = use_state(String::new);
    let token = crate::pages::plugins::session_token();
    let lines = use_state(|| Load::<Value>::Loading);
    {
        let lines = lines.clone();
        let key = ((*actor).clone(), (*target).clone(), token.clone());
        use_effect_with(key, move |(actor, target, token)| {
            let mut url = "/api/audit?limit=500".to_string();
            if !actor.is_empty() {
                url.push_str(&format!("&actor={}", crate::api::enc(actor)));
            }
            if !target.is_empty() {
                url.push_str(&format!("&target={}", crate::api::enc(target)));
            }
            let token = token.clone();
            wasm_bindgen_futures::spawn_local(async move {
                lines.set(match crate::api::get_with_token(&url, &token).await {
                    Ok(v) => Load::Ready(v),
                    Err(e) => Load::Failed(e),
                });
            });
        });
    }
    let field = |state: UseStateHandle<String>| {
        Callback::from(move |e: InputEvent| {
            if let Some(t) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                state.set(t.value());
            }
        })
    };
    let body = match &*lines {
        Load::Loading => loading("the audit trail"),
        Load::Failed(e) => error_box(
            "The audit trail is for administrators: enter the admin token on the Plugins page, or sign in as an administrator",
            e,
        ),
        Load::Ready(v) => {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                empty("Nothing recorded matches.")
            } else {
                html! {
                    <table class="audit">
                        <thead><tr>
                            <th scope="col">{ "When" }</th><th scope="col">{ "Who" }</th>
                            <th scope="col">{ "What" }</th><th scope="col">{ "Target" }</th>
                            <th scope="col">{ "From" }</th><th scope="col">{ "Outcome" }</th>
                        </tr></thead>
                        <tbody>
                            { for items.iter().rev().map(|l| html! {
                                <tr>
                                    <td>{ crate::ui::ago(l["atMs"].as_f64().unwrap_or(0.0)) }</td>
                                    <td>{ s(l, "actor") }</td>
                                    <td><code>{ s(l, "action") }</code></td>
                                    <td><code>{ s(l, "target") }</code></td>
                                    <td>{ s(l, "address") }</td>
                                    <td>{ badge(&format!("{} {}", s(l, "outcome"), l["status"]), match s(l, "outcome") {
                                        "allowed" => "good",
                                        "denied" => "warning",
                                        _ => "critical",
                                    }) }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                }
            }
        }
    };
    html! {
        <main id="main" class="page audit-page">
            <h1>{ "Audit trail" }</h1>
            <p class="muted">{ "Every change and every refusal, with who, what, from where and how it ended. Export: GET /api/audit?format=jsonl with an administrator's token." }</p>
            <div class="row">
                <label for="audit-actor">{ "Who" }</label>
                <input id="audit-actor" type="search" placeholder="user:default/jane, token:ci" oninput={field(actor.clone())} />
                <label for="audit-target">{ "Target contains" }</label>
                <input id="audit-target" type="search" placeholder="/api/plugins" oninput={field(target.clone())} />
            </div>
            { body }
        </main>
    }
}
