//! The host's JSON API, and hooks that load from it. The app talks to
//! nothing else: every URL here is same-origin.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_net::http::{Request, Response};
use serde_json::Value;
use yew::prelude::*;

/// What a page shows while it waits, once it has data, or when it failed.
#[derive(Clone, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// The error message of a failed response: the API's own
/// `{"error": {"message"}}` where there is one.
async fn failure(response: Response) -> String {
    let status = response.status();
    match response.json::<Value>().await {
        // A failed plugin action answers with its recorded run.
        Ok(v) => match v["error"]["message"]
            .as_str()
            .or(v["run"]["message"].as_str())
        {
            Some(m) => m.to_string(),
            None => format!("the server answered {status}"),
        },
        Err(_) => format!("the server answered {status}"),
    }
}

pub async fn get(url: &str) -> Result<Value, String> {
    let request = Request::get(url)
        .header("Accept", "application/json")
        .build()
        .map_err(|e| e.to_string())?;
    send(request).await
}

/// A GET with a bearer token (an administrator's), when one is given.
pub async fn get_with_token(url: &str, token: &str) -> Result<Value, String> {
    let mut request = Request::get(url).header("Accept", "application/json");
    if !token.is_empty() {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    send(request.build().map_err(|e| e.to_string())?).await
}

thread_local! {
    /// The session's anti-forgery token (from `/api/whoami`), sent back on
    /// every write so the portal knows the write comes from its own page.
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn set_csrf(token: Option<&str>) {
    CSRF.with(|c| *c.borrow_mut() = token.map(str::to_string));
}

/// A POST with a JSON body, and the admin token when one is given.
pub async fn post(url: &str, body: &Value, token: Option<&str>) -> Result<Value, String> {
    let mut request = Request::post(url).header("Accept", "application/json");
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        request = request.header("Authorization", &format!("Bearer {t}"));
    }
    if let Some(csrf) = CSRF.with(|c| c.borrow().clone()) {
        request = request.header("X-CSRF-Token", &csrf);
    }
    send(request.json(body).map_err(|e| e.to_string())?).await
}

/// Sends a request and reads its JSON answer, or the error it carries.
async fn send(request: gloo_net::http::Request) -> Result<Value, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach the portal: {e}"))?;
    if !response.ok() {
        return Err(failure(response).await);
    }
    if response.status() == 204 {
        return Ok(Value::Null);
    }
    response
        .json::<Value>()
        .await
        .map_err(|e| format!("the portal sent something unreadable: {e}"))
}

/// Loads `url` (again whenever it changes) and returns its state. `None`
/// loads nothing and stays `Loading`. An answer to an older URL is dropped.
#[hook]
pub fn use_json(url: Option<String>) -> Load<Rc<Value>> {
    let state = use_state(|| (None::<String>, Load::Loading));
    let latest = use_mut_ref(|| None::<String>);
    {
        let state = state.clone();
        use_effect_with(url.clone(), move |url| {
            *latest.borrow_mut() = url.clone();
            if let Some(url) = url.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let result = match get(&url).await {
                        Ok(v) => Load::Ready(Rc::new(v)),
                        Err(e) => Load::Failed(e),
                    };
                    if latest.borrow().as_deref() == Some(url.as_str()) {
                        state.set((Some(url), result));
                    }
                });
            }
        });
    }
    match &state.1 {
        _ if state.0 != url || url.is_none() => Load::Loading,
        other => other.clone(),
    }
}

/// Escapes a query value or a path segment.
pub fn enc(text: &str) -> String {
    js_sys::encode_uri_component(text).into()
}
