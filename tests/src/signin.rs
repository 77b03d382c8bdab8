//! Signing in with OpenID Connect (issue 12), against a provider on
//! loopback that this module scripts: it signs ID tokens with a real RSA
//! key, checks PKCE and the client secret like any provider, and can be
//! told to answer wrongly (a tampered, expired or misaddressed token, the
//! wrong nonce), which no well-behaved provider would do on request. The
//! real provider (oidc-provider) and its login form are in `oidc_real`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde_json::{Value, json};
use sha2::Digest;

use crate::support::{Portal, component, group};

const KEY: &str = include_str!("../fixtures/oidc/test-signing-key.pem");
const CLIENT_ID: &str = "greenroom";
const CLIENT_SECRET: &str = "scripted-client-secret";

/// How the provider answers the next token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Good,
    /// The ID token's payload changed after signing.
    Tampered,
    Expired,
    WrongNonce,
    /// Issued to another client.
    WrongAudience,
}

struct Grant {
    nonce: String,
    challenge: String,
    redirect: String,
    login: String,
}

#[derive(Clone)]
struct Provider {
    issuer: String,
    answer: Arc<Mutex<Answer>>,
    /// Who signs in at the next authorization request.
    login: Arc<Mutex<String>>,
    grants: Arc<Mutex<HashMap<String, Grant>>>,
}

/// A running scripted provider.
pub struct Scripted {
    pub issuer: String,
    state: Provider,
}

impl Scripted {
    pub async fn start() -> Scripted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Provider {
            issuer: issuer.clone(),
            answer: Arc::new(Mutex::new(Answer::Good)),
            login: Arc::new(Mutex::new("jane".into())),
            grants: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Scripted { issuer, state }
    }

    pub fn answer(&self, a: Answer) {
        *self.state.answer.lock().unwrap() = a;
    }

    pub fn sign_in_as(&self, login: &str) {
        *self.state.login.lock().unwrap() = login.into();
    }
}

async fn discovery(State(p): State<Provider>) -> Json<Value> {
    let i = &p.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

fn key() -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(KEY, Some(JsonWebKeyId::new("k1".into()))).unwrap()
}

async fn jwks() -> Json<Value> {
    let set = CoreJsonWebKeySet::new(vec![key().as_verification_key()]);
    Json(serde_json::to_value(set).unwrap())
}

/// Signs in whoever is set at once (as a provider with a session does)
/// and sends the browser back with a code.
async fn authorize(
    State(p): State<Provider>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256", "PKCE is always used");
    let code = uuid::Uuid::new_v4().to_string();
    p.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect: q["redirect_uri"].clone(),
            login: p.login.lock().unwrap().clone(),
        },
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        q["redirect_uri"],
        form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
    ))
    .into_response()
}

/// The token endpoint: the client's secret, the code (once), its redirect
/// and its PKCE verifier are checked before anything is signed.
async fn token(
    State(p): State<Provider>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {basic}"));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(grant) = p.grants.lock().unwrap().remove(&f["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(f["code_verifier"].as_bytes()))
        == grant.challenge;
    if !verified || f["redirect_uri"] != grant.redirect {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let answer = *p.answer.lock().unwrap();
    let now = chrono::Utc::now();
    let (issued, expires) = match answer {
        Answer::Expired => (
            now - chrono::Duration::hours(2),
            now - chrono::Duration::hours(1),
        ),
        _ => (now, now + chrono::Duration::minutes(5)),
    };
    let audience = match answer {
        Answer::WrongAudience => "another-app",
        _ => CLIENT_ID,
    };
    let nonce = match answer {
        Answer::WrongNonce => "a-nonce-from-another-sign-in".to_string(),
        _ => grant.nonce,
    };
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(p.issuer.clone()).unwrap(),
        vec![Audience::new(audience.into())],
        expires,
        issued,
        StandardClaims::new(SubjectIdentifier::new(format!("sub-{}", grant.login)))
            .set_email(Some(EndUserEmail::new(format!(
                "{}@example.com",
                grant.login
            ))))
            .set_email_verified(Some(true)),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(nonce)));
    let access = AccessToken::new(uuid::Uuid::new_v4().to_string());
    let signed = CoreIdToken::new(
        claims,
        &key(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&access),
        None,
    )
    .unwrap();
    let mut jwt = serde_json::to_value(&signed)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    if answer == Answer::Tampered {
        // Someone between changes who it is; the signature stays.
        let parts: Vec<&str> = jwt.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let changed = String::from_utf8(payload)
            .unwrap()
            .replace(&format!("{}@example.com", grant.login), "root@example.com");
        jwt = format!(
            "{}.{}.{}",
            parts[0],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(changed),
            parts[2]
        );
    }
    Json(json!({
        "access_token": access.secret(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": jwt,
    }))
    .into_response()
}

/// A client that keeps cookies per name and follows no redirect by
/// itself, so each step of a sign-in can be looked at.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
    }

    /// A request with the cookies (and the body when given); returns
    /// status, `Location` and body.
    pub async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, Value) {
        self.send_json(method, url, headers, None).await
    }

    pub async fn send_json(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Option<String>, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        (status, location, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&mut self, url: &str) -> (u16, Option<String>, Value) {
        self.send("GET", url, &[]).await
    }
}

/// A portal signing people in at `issuer`, served at its public URL.
pub async fn oidc_portal(issuer: &str, secret_env: &str, extra: &str) -> Portal {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    oidc_portal_on(listener, "http", issuer, secret_env, extra).await
}

/// The same on a listener bound beforehand (the provider must know the
/// callback before the portal starts).
pub async fn oidc_portal_on(
    listener: tokio::net::TcpListener,
    scheme: &str,
    issuer: &str,
    secret_env: &str,
    extra: &str,
) -> Portal {
    // An https address is only what the portal is told it is served at
    // (behind a TLS proxy); the tests speak http to it.
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_files(dir.path(), &[("catalog.yaml", &catalog("checkout"))]);
    let path = dir.path().join("greenroom.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ndata_dir = \"data\"\npublic_url = \"{base}\"\n[[catalog.locations]]\ntarget = \"catalog.yaml\"\n[auth]\nmode = \"oidc\"\nadmins = [\"group:default/platform\"]\n{extra}[auth.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"{secret_env}\"\nname = \"Scripted\"\n"
        ),
    )
    .unwrap();
    let config = greenroom::config::Config::load(&path).unwrap();
    Portal::start_on(dir, listener, config).await
}

/// Jane in platform (the administrators), Dan in `dan_in`, and svc owned
/// by checkout.
fn catalog(dan_in: &str) -> String {
    let people = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: jane\nspec:\n  profile:\n    email: jane@example.com\n  memberOf: [platform]\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: dan\nspec:\n  profile:\n    email: dan@example.com\n  memberOf: [{dan_in}]\n"
    );
    [
        group("platform"),
        group("checkout"),
        people,
        component("svc", "checkout"),
    ]
    .join("---\n")
}

/// Goes through a sign-in in `browser`: the portal's redirect to the
/// provider, the provider's back, and the callback's answer.
async fn sign_in(p: &Portal, browser: &mut Browser) -> (u16, Option<String>, Value) {
    let (status, to_provider, _) = browser
        .get(&format!("{}/auth/sign-in?return=/catalog", p.base))
        .await;
    assert_eq!(status, 303);
    let to_provider = to_provider.unwrap();
    assert!(to_provider.contains("code_challenge="), "{to_provider}");
    let (status, back, _) = browser.get(&to_provider).await;
    assert_eq!(status, 303, "the provider sends the browser back");
    browser.get(&back.unwrap()).await
}

async fn audit(p: &Portal) -> Vec<Value> {
    p.admin_get("/api/audit?limit=1000").await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn people_sign_in_with_the_provider_and_their_session_can_be_ended() {
    let provider = Scripted::start().await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_A", CLIENT_SECRET) };
    let p = oidc_portal(&provider.issuer, "GREENROOM_TEST_OIDC_SECRET_A", "").await;
    let mut browser = Browser::new();
    // Nobody yet: reading needs a sign-in, and the app's page still loads.
    let (status, _, body) = browser
        .get(&format!("{}/api/catalog/entities", p.base))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(p.fetch("/catalog").await.status().as_u16(), 200);
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    assert_eq!(me["caller"], Value::Null);
    assert_eq!(me["signIn"]["url"], "/auth/sign-in");
    assert_eq!(me["signIn"]["provider"], "Scripted");

    let (status, back_to, _) = sign_in(&p, &mut browser).await;
    assert_eq!(status, 303);
    assert_eq!(
        back_to.as_deref(),
        Some("/catalog"),
        "back where they were going"
    );
    assert!(browser.cookies.contains_key("greenroom-session"));
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    assert_eq!(me["caller"]["userRef"], "user:default/jane", "{me}");
    assert_eq!(me["admin"], true);
    let csrf = me["csrf"].as_str().unwrap().to_string();
    let (status, _, _) = browser
        .get(&format!("{}/api/catalog/entities", p.base))
        .await;
    assert_eq!(status, 200);
    let metrics = p.fetch("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("greenroom_sessions_live 1"), "{metrics}");

    // Writes with the cookie need the page's anti-forgery token and a
    // same-origin request.
    let refresh = format!("{}/api/catalog/refresh", p.base);
    let svc = json!({"entityRef": "component:default/svc"});
    let evil: &[(&str, &str)] = &[("origin", "https://evil.example"), ("x-csrf-token", &csrf)];
    let cross: &[(&str, &str)] = &[("sec-fetch-site", "cross-site"), ("x-csrf-token", &csrf)];
    let no_token: &[(&str, &str)] = &[("origin", &p.base)];
    let own: &[(&str, &str)] = &[
        ("origin", &p.base),
        ("sec-fetch-site", "same-origin"),
        ("x-csrf-token", &csrf),
    ];
    for (headers, status, says) in [
        (evil, 403, "Origin is https://evil.example"),
        (cross, 403, "Sec-Fetch-Site is cross-site"),
        (no_token, 403, "no X-CSRF-Token"),
        (own, 200, ""),
    ] {
        let (got, _, body) = browser
            .send_json("POST", &refresh, headers, Some(&svc))
            .await;
        assert_eq!(got, status, "{headers:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{headers:?}: {body}");
    }

    // An administrator ends the session: the cookie stops working at once.
    let sessions = p.admin_get("/api/sessions").await;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{sessions}");
    assert_eq!(items[0]["userRef"], "user:default/jane");
    assert!(items[0].get("csrf").is_none(), "no secret in the list");
    let id = items[0]["id"].as_str().unwrap();
    let ended = p
        .http
        .delete(format!("{}/api/sessions/{id}", p.base))
        .bearer_auth(Portal::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status().as_u16(), 204);
    let (status, _, body) = browser
        .get(&format!("{}/api/catalog/entities", p.base))
        .await;
    assert_eq!(status, 401);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("your session ended"), "{body}");
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    assert_eq!(me["caller"], Value::Null, "who-am-I answers for nobody");

    // Signing in again, and out: the session ends server-side too.
    sign_in(&p, &mut browser).await;
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    let csrf = me["csrf"].as_str().unwrap().to_string();
    let kept = browser.cookies["greenroom-session"].clone();
    let (status, _, body) = browser
        .send(
            "POST",
            &format!("{}/auth/sign-out", p.base),
            &[("origin", &p.base), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(!browser.cookies.contains_key("greenroom-session"));
    browser.cookies.insert("greenroom-session".into(), kept);
    let (status, _, _) = browser
        .get(&format!("{}/api/catalog/entities", p.base))
        .await;
    assert_eq!(status, 401, "a signed-out cookie kept aside is dead");

    let lines = audit(&p).await;
    let signed_in: Vec<_> = lines.iter().filter(|l| l["action"] == "sign-in").collect();
    assert_eq!(signed_in.len(), 2, "{lines:?}");
    assert!(
        signed_in
            .iter()
            .all(|l| l["actor"] == "user:default/jane" && l["outcome"] == "allowed")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "POST /auth/sign-out" && l["actor"] == "user:default/jane")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "DELETE /api/sessions/{id}" && l["outcome"] == "allowed")
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["action"] == "POST /api/catalog/refresh" && l["outcome"] == "denied")
            .count(),
        3,
        "the forged writes are recorded"
    );
}

#[tokio::test]
async fn bad_tokens_wrong_state_and_replays_are_refused_and_recorded() {
    let provider = Scripted::start().await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_B", CLIENT_SECRET) };
    let p = oidc_portal(&provider.issuer, "GREENROOM_TEST_OIDC_SECRET_B", "").await;
    for (answer, says) in [
        (Answer::Tampered, "signature"),
        (Answer::Expired, "expired"),
        (Answer::WrongNonce, "nonce"),
        (Answer::WrongAudience, "audience"),
    ] {
        provider.answer(answer);
        let mut browser = Browser::new();
        let (status, _, body) = sign_in(&p, &mut browser).await;
        assert_eq!(status, 401, "{answer:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(
            message.contains("id token is not valid"),
            "{answer:?}: {message}"
        );
        assert!(message.contains(says), "{answer:?}: {message}");
        assert!(
            !browser.cookies.contains_key("greenroom-session"),
            "{answer:?}"
        );
    }
    provider.answer(Answer::Good);

    // A callback this browser did not start (its state is not the cookie's).
    let mut browser = Browser::new();
    let (_, to_provider, _) = browser.get(&format!("{}/auth/sign-in", p.base)).await;
    let (_, back, _) = browser.get(&to_provider.unwrap()).await;
    let back = back.unwrap();
    let mut stranger = Browser::new();
    let (status, _, body) = stranger.get(&back).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not started in this browser")
    );
    // The real one works once; replaying the same callback finds nothing.
    let flow = browser.cookies.clone();
    let (status, _, _) = browser.get(&back).await;
    assert_eq!(status, 303);
    let mut replay = Browser::new();
    replay.cookies = flow;
    let (status, _, body) = replay.get(&back).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );

    // Someone the catalog does not know, with unknown people refused.
    let strict = oidc_portal(
        &provider.issuer,
        "GREENROOM_TEST_OIDC_SECRET_B",
        "allow_unknown_people = false\n",
    )
    .await;
    provider.sign_in_as("mallory");
    let mut browser = Browser::new();
    let (status, _, body) = sign_in(&strict, &mut browser).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mallory@example.com has no User")
    );

    let lines = audit(&p).await;
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| l["action"] == "sign-in" && l["outcome"] != "allowed")
        .collect();
    assert_eq!(
        failed.len(),
        6,
        "four bad tokens, a stranger, a replay: {lines:?}"
    );
    assert!(failed.iter().all(|l| l["address"] == "127.0.0.1"));
    assert!(
        audit(&strict)
            .await
            .iter()
            .any(|l| l["actor"] == "person:mallory@example.com" && l["outcome"] == "denied")
    );
}

#[tokio::test]
async fn people_make_personal_tokens_that_never_exceed_their_rights() {
    let provider = Scripted::start().await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_C", CLIENT_SECRET) };
    let p = oidc_portal(&provider.issuer, "GREENROOM_TEST_OIDC_SECRET_C", "").await;
    provider.sign_in_as("dan");
    let mut browser = Browser::new();
    sign_in(&p, &mut browser).await;
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    assert_eq!(me["caller"]["userRef"], "user:default/dan");
    let csrf = me["csrf"].as_str().unwrap().to_string();
    let make = |scopes: Value| {
        let http = reqwest::Client::new();
        let url = format!("{}/api/tokens", p.base);
        let cookie = format!("greenroom-session={}", browser.cookies["greenroom-session"]);
        let (origin, csrf) = (p.base.clone(), csrf.clone());
        async move {
            let resp = http
                .post(url)
                .header("cookie", cookie)
                .header("origin", origin)
                .header("x-csrf-token", csrf)
                .json(&json!({"name": "laptop", "scopes": scopes, "expires": "30d"}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = make(json!(["facts:write"])).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may grant read, campaigns:write")
    );
    let (status, body) = make(json!(["read", "campaigns:write"])).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["record"]["person"], "user:default/dan");
    let secret = body["token"].as_str().unwrap().to_string();

    // The token reads, and changes only campaigns its person may.
    let http = reqwest::Client::new();
    let read = http
        .get(format!("{}/api/catalog/entities", p.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
    let campaign = |owner: &str| json!({"name": format!("py3-{}", owner.replace([':', '/'], "-")), "owner": owner, "targets": ["kind=component"], "doneWhen": "fact runtime.python >= \"3\""});
    let own = http
        .post(format!("{}/api/campaigns", p.base))
        .bearer_auth(&secret)
        .json(&campaign("group:default/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 201, "{}", own.text().await.unwrap());
    let other = http
        .post(format!("{}/api/campaigns", p.base))
        .bearer_auth(&secret)
        .json(&campaign("group:default/platform"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 403);
    assert!(
        other
            .text()
            .await
            .unwrap()
            .contains("acts for user:default/dan")
    );
    // Never an action, never administration.
    let grant = http
        .post(format!("{}/api/search/rebuild", p.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status().as_u16(), 403);
    // Dan sees his own token only; an administrator sees all.
    let (_, _, mine) = browser.get(&format!("{}/api/tokens", p.base)).await;
    let mine = mine["items"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["name"], "laptop");

    // Dan moves to platform: his session and his token follow at once.
    p.write("catalog.yaml", &catalog("platform"));
    p.refresh().await;
    let (_, _, me) = browser.get(&format!("{}/api/whoami", p.base)).await;
    assert_eq!(me["caller"]["groups"], json!(["group:default/platform"]));
    assert_eq!(me["admin"], true, "{me}");
    let moved = http
        .post(format!("{}/api/campaigns", p.base))
        .bearer_auth(&secret)
        .json(&campaign("group:default/platform"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        moved.status().as_u16(),
        201,
        "{}",
        moved.text().await.unwrap()
    );
}

/// The real provider, oidc-provider on Node (`tests/oidc/provider.mjs`),
/// stopped when dropped. `cargo xtask test` installs its packages.
pub struct RealProvider {
    pub issuer: String,
    child: std::process::Child,
}

impl Drop for RealProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealProvider {
    /// Starts it for a portal whose callback is `redirect`, knowing
    /// `people` (`{"login": "email"}`).
    pub async fn start(redirect: &str, secret: &str, people: &Value) -> RealProvider {
        use std::io::BufRead;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test identity provider is not installed: `cargo xtask test` runs `npm ci` in {}",
            dir.display()
        );
        let port = greenroom_web_build::browser::free_port();
        let mut child = std::process::Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(redirect)
            .arg(secret)
            .arg(people.to_string())
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (Node.js 20 or later is needed for the test identity provider): {e}"));
        // Its output is read to the end (a closed pipe would stop it).
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .expect("the test identity provider did not start within 30 s")
            .unwrap();
        let issuer = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the test identity provider said {line:?}"))
            .to_string();
        RealProvider { issuer, child }
    }
}

impl Browser {
    /// Follows redirects from `url` (resolving relative ones) until a page
    /// that is not one; returns its address, status and text.
    pub async fn follow(&mut self, url: &str) -> (String, u16, String) {
        let mut url = reqwest::Url::parse(url).unwrap();
        for _ in 0..20 {
            let resp = self
                .http
                .get(url.clone())
                .header("cookie", self.cookie_header())
                .send()
                .await
                .unwrap();
            self.keep(&resp);
            let status = resp.status().as_u16();
            match resp.headers().get("location") {
                Some(l) if (300..400).contains(&status) => {
                    url = url.join(l.to_str().unwrap()).unwrap();
                }
                _ => return (url.to_string(), status, resp.text().await.unwrap()),
            }
        }
        panic!("more than 20 redirects from {url}");
    }

    /// Submits a form (`application/x-www-form-urlencoded`) and follows
    /// where it leads.
    pub async fn submit(&mut self, url: &str, fields: &[(&str, &str)]) -> (String, u16, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let status = resp.status().as_u16();
        match resp.headers().get("location") {
            Some(l) if (300..400).contains(&status) => {
                let next = reqwest::Url::parse(url)
                    .unwrap()
                    .join(l.to_str().unwrap())
                    .unwrap();
                Box::pin(self.follow(next.as_str())).await
            }
            _ => (url.to_string(), status, resp.text().await.unwrap()),
        }
    }
}

/// Through the real provider's own login form, over HTTP: discovery, the
/// code flow with PKCE, a client secret, the profile from its userinfo
/// (oidc-provider keeps the email out of the ID token by default).
#[tokio::test]
async fn people_sign_in_through_a_real_provider_login_form() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = RealProvider::start(
        &format!("{base}/auth/callback"),
        "real-provider-secret",
        &json!({"jane": "jane@example.com", "dan": "dan@example.com"}),
    )
    .await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_REAL", "real-provider-secret") };
    let p = oidc_portal_on(
        listener,
        "http",
        &provider.issuer,
        "GREENROOM_TEST_OIDC_SECRET_REAL",
        "",
    )
    .await;
    let mut browser = Browser::new();
    let (at, status, page) = browser
        .follow(&format!("{base}/auth/sign-in?return=/docs"))
        .await;
    assert_eq!(status, 200, "{at}: {page}");
    assert!(at.starts_with(&provider.issuer), "at the provider: {at}");
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|a| a.split('"').next())
        .unwrap_or_else(|| panic!("no login form in {page}"));
    let action = reqwest::Url::parse(&at).unwrap().join(action).unwrap();
    let (at, status, page) = browser
        .submit(
            action.as_str(),
            &[("prompt", "login"), ("login", "dan"), ("password", "any")],
        )
        .await;
    assert_eq!(
        at,
        format!("{base}/docs"),
        "back where they were going ({status}): {page}"
    );
    let (_, _, me) = browser.get(&format!("{base}/api/whoami")).await;
    assert_eq!(me["caller"]["userRef"], "user:default/dan", "{me}");
    assert_eq!(me["caller"]["groups"], json!(["group:default/checkout"]));
    let lines = audit(&p).await;
    assert!(
        lines.iter().any(|l| l["action"] == "sign-in"
            && l["actor"] == "user:default/dan"
            && l["outcome"] == "allowed"),
        "{lines:?}"
    );
}

/// A session idle longer than `auth.session_idle` is over; sign-in starts
/// and failed sign-ins from one address are limited, each answered 429
/// with when to try again.
#[tokio::test]
async fn idle_sessions_end_and_sign_in_floods_are_turned_away() {
    let provider = Scripted::start().await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_D", CLIENT_SECRET) };
    let p = oidc_portal(
        &provider.issuer,
        "GREENROOM_TEST_OIDC_SECRET_D",
        "session_idle = \"1s\"\n",
    )
    .await;
    let mut browser = Browser::new();
    sign_in(&p, &mut browser).await;
    let entities = format!("{}/api/catalog/entities", p.base);
    assert_eq!(browser.get(&entities).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, body) = browser.get(&entities).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idle too long"),
        "{body}"
    );

    // Sign-in starts: 60 a minute from one address (each keeps a flow).
    let mut starts = std::collections::BTreeMap::new();
    for _ in 0..100 {
        let (status, _, _) = Browser::new()
            .get(&format!("{}/auth/sign-in", p.base))
            .await;
        *starts.entry(status).or_insert(0) += 1;
    }
    // The two flows of the sign-in above count too.
    assert_eq!(starts.get(&303), Some(&58), "{starts:?}");
    assert_eq!(starts.get(&429), Some(&42), "{starts:?}");

    // Failed sign-ins: after 20 in a minute, even a good one is turned
    // away (on a fresh portal, so the starts above do not count).
    let q = oidc_portal(&provider.issuer, "GREENROOM_TEST_OIDC_SECRET_D", "").await;
    let mut stranger = Browser::new();
    for _ in 0..20 {
        let (status, _, _) = stranger
            .get(&format!("{}/auth/callback?code=x&state=forged", q.base))
            .await;
        assert_eq!(status, 400);
    }
    let resp = reqwest::get(format!("{}/auth/callback?code=x&state=forged", q.base))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // (Read from the store: this address is turned away for a minute.)
    let lines = q
        .state
        .store
        .access
        .audit_lines(&greenroom::store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let denied = lines
        .iter()
        .filter(|l| l.action == "sign-in" && l.outcome == "error")
        .count();
    assert_eq!(denied, 20, "each forged callback is recorded");
}

/// Served over https (behind a TLS proxy), the cookies are `Secure` and
/// carry the `__Host-` prefix, and the session works under that name.
#[tokio::test]
async fn over_https_cookies_are_secure_host_cookies() {
    let provider = Scripted::start().await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_TEST_OIDC_SECRET_E", CLIENT_SECRET) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = oidc_portal_on(
        listener,
        "https",
        &provider.issuer,
        "GREENROOM_TEST_OIDC_SECRET_E",
        "",
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = http
        .get(format!("{}/auth/sign-in", p.base))
        .send()
        .await
        .unwrap();
    let flow = start.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        flow.starts_with("__Host-greenroom-signin=") && flow.contains("; Secure"),
        "{flow}"
    );
    let to_provider = start.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_provider.contains("redirect_uri=https%3A%2F%2F127.0.0.1"),
        "{to_provider}"
    );
    let back = http.get(&to_provider).send().await.unwrap();
    let back = back.headers()["location"]
        .to_str()
        .unwrap()
        .replacen("https://", "http://", 1);
    let pair = flow.split(';').next().unwrap();
    let done = http.get(&back).header("cookie", pair).send().await.unwrap();
    assert_eq!(done.status().as_u16(), 303);
    let session = done
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-greenroom-session="))
        .expect("a __Host- session cookie");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    let me = http
        .get(format!("{}/api/whoami", p.base))
        .header("cookie", session.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(me["caller"]["userRef"], "user:default/jane", "{me}");
}
