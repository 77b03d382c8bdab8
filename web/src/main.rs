//! Greenroom's web UI: a Yew single-page app. It talks only to the host's
//! JSON API on the same origin; the host serves it for every UI path, with
//! URLs that follow Backstage's so shared links keep working.

mod api;
mod cards;
mod pages;
mod ui;

use wasm_bindgen::JsCast;
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Routable, Clone, PartialEq, Debug)]
pub enum Route {
    #[at("/")]
    Home,
    #[at("/catalog")]
    Catalog,
    #[at("/catalog/:namespace/:kind/:name")]
    Entity {
        namespace: String,
        kind: String,
        name: String,
    },
    #[at("/catalog/:namespace/:kind/:name/:tab")]
    EntityTab {
        namespace: String,
        kind: String,
        name: String,
        tab: String,
    },
    #[at("/docs")]
    DocsIndex,
    #[at("/docs/:namespace/:kind/:name")]
    DocsHome {
        namespace: String,
        kind: String,
        name: String,
    },
    #[at("/docs/:namespace/:kind/:name/*path")]
    Docs {
        namespace: String,
        kind: String,
        name: String,
        path: String,
    },
    #[at("/search")]
    Search,
    #[at("/campaigns")]
    Campaigns,
    #[at("/campaigns/:name")]
    Campaign { name: String },
    #[at("/scorecards")]
    Scorecards,
    #[at("/scorecards/:name")]
    Scorecard { name: String },
    #[at("/facts")]
    Facts,
    #[at("/plugins")]
    Plugins,
    #[at("/audit")]
    Audit,
    #[at("/suggestions")]
    Suggestions,
    #[at("/sign-in")]
    SignIn,
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// Who I am, until sign-in lands: a catalog User chosen once and kept in
/// local storage.
pub type Me = UseStateHandle<Option<String>>;

/// How people sign in here (`/api/whoami`): in the demo (guest mode with
/// `auth.demo_people`) a visitor picks a person; otherwise who I am comes
/// from the sign-in, and a guest only reads.
#[derive(Clone, PartialEq)]
pub struct Session {
    pub demo_people: bool,
    /// The signed-in person's User ref, or their login without one.
    pub signed_in: Option<String>,
    /// Known yet: nothing is decided from a session still loading.
    pub known: bool,
    /// Reading needs a sign-in here.
    pub require_sign_in: bool,
    /// Where to sign in and with what (`auth.mode = "oidc"`).
    pub sign_in: Option<SignInWith>,
    /// The caller administers this portal.
    pub admin: bool,
}

#[derive(Clone, PartialEq)]
pub struct SignInWith {
    pub url: String,
    pub provider: String,
}

const ME_KEY: &str = "greenroom.user";
const THEME_KEY: &str = "greenroom.theme";

fn switch(route: Route) -> Html {
    use pages::*;
    match route {
        Route::Home => html! { <home::Home /> },
        Route::Catalog => html! { <catalog::Catalog /> },
        Route::Entity {
            namespace,
            kind,
            name,
        } => html! { <entity::EntityPage {namespace} {kind} {name} tab="overview" /> },
        Route::EntityTab {
            namespace,
            kind,
            name,
            tab,
        } => html! { <entity::EntityPage {namespace} {kind} {name} {tab} /> },
        Route::DocsIndex => html! { <docs::DocsIndex /> },
        Route::DocsHome {
            namespace,
            kind,
            name,
        } => html! { <docs::DocsReader {namespace} {kind} {name} path="" /> },
        Route::Docs {
            namespace,
            kind,
            name,
            path,
        } => html! { <docs::DocsReader {namespace} {kind} {name} {path} /> },
        Route::Search => html! { <search::SearchPage /> },
        Route::Campaigns => html! { <campaigns::CampaignList /> },
        Route::Campaign { name } => html! { <campaigns::CampaignPage {name} /> },
        Route::Scorecards => html! { <scorecards::ScorecardList /> },
        Route::Scorecard { name } => html! { <scorecards::ScorecardPage {name} /> },
        Route::Facts => html! { <campaigns::FactsPage /> },
        Route::Plugins => html! { <plugins::PluginsAdmin /> },
        Route::Audit => html! { <audit::AuditPage /> },
        Route::Suggestions => html! { <suggestions::SuggestionsPage /> },
        Route::SignIn => html! { <home::SignIn /> },
        Route::NotFound => html! {
            <main id="main" class="page">
                <h1>{ "Page not found" }</h1>
                <p>{ "Nothing lives at this address. " }<Link<Route> to={Route::Home}>{ "Go to the homepage" }</Link<Route>></p>
            </main>
        },
    }
}

fn apply_theme(theme: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", theme);
    }
}

#[component]
fn Header() -> Html {
    let theme = use_state(|| ui::stored(THEME_KEY).unwrap_or_else(|| "system".into()));
    {
        let theme = theme.clone();
        use_effect_with((*theme).clone(), move |t| apply_theme(t));
    }
    let cycle = {
        let theme = theme.clone();
        Callback::from(move |_| {
            let next = match theme.as_str() {
                "system" => "light",
                "light" => "dark",
                _ => "system",
            };
            ui::store(THEME_KEY, Some(next));
            theme.set(next.to_string());
        })
    };
    let navigator = use_navigator();
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        if let Some(nav) = navigator.as_ref() {
            let q = ui::input_value("global-search").unwrap_or_default();
            let _ = nav.push_with_query(&Route::Search, &[("query", q.as_str())]);
        }
    });
    // `/` focuses the search box from anywhere but a text field.
    use_effect_with((), |_| {
        let document = web_sys::window().and_then(|w| w.document());
        let listener = document.map(|d| {
            // Not passive: it must stop the `/` from being typed.
            let options = gloo_events::EventListenerOptions::enable_prevent_default();
            gloo_events::EventListener::new_with_options(&d, "keydown", options, move |e| {
                let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() else {
                    return;
                };
                if e.key() != "/" || e.ctrl_key() || e.meta_key() || e.alt_key() {
                    return;
                }
                let document = web_sys::window().and_then(|w| w.document());
                let typing = document
                    .as_ref()
                    .and_then(|d| d.active_element())
                    .is_some_and(|a| {
                        matches!(a.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                    });
                if typing {
                    return;
                }
                // The homepage's own search box comes first.
                if let Some(input) = document
                    .and_then(|d| {
                        d.get_element_by_id("home-search")
                            .or_else(|| d.get_element_by_id("global-search"))
                    })
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    e.prevent_default();
                    let _ = input.focus();
                }
            })
        });
        move || drop(listener)
    });
    let theme_label = format!("Theme: {}", *theme);
    html! {
        <header class="topbar">
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <Link<Route> to={Route::Home} classes="brand">{ "Greenroom" }</Link<Route>>
            <nav aria-label="Main">
                <Link<Route> to={Route::Catalog}>{ "Catalog" }</Link<Route>>
                <Link<Route> to={Route::DocsIndex}>{ "Docs" }</Link<Route>>
                <Link<Route> to={Route::Campaigns}>{ "Campaigns" }</Link<Route>>
                <Link<Route> to={Route::Scorecards}>{ "Scorecards" }</Link<Route>>
                <Link<Route> to={Route::Facts}>{ "Facts" }</Link<Route>>
                <Link<Route> to={Route::Suggestions}>{ "Unclaimed" }</Link<Route>>
                <Link<Route> to={Route::Plugins}>{ "Plugins" }</Link<Route>>
                <Link<Route> to={Route::Audit}>{ "Audit" }</Link<Route>>
            </nav>
            <form class="topsearch" role="search" {onsubmit}>
                <label for="global-search" class="visually-hidden">{ "Search the portal" }</label>
                <input id="global-search" type="search" placeholder="Search (press /)" autocomplete="off" />
            </form>
            <pages::home::WhoAmI />
            <button type="button" class="ghost" onclick={cycle} aria-label={theme_label.clone()} title={theme_label}>
                { match theme.as_str() { "light" => "☀", "dark" => "☾", _ => "◐" } }
            </button>
        </header>
    }
}

#[component]
fn App() -> Html {
    let me: Me = use_state(|| ui::stored(ME_KEY));
    let whoami = api::use_json(Some("/api/whoami".to_string()));
    let session = match &whoami {
        api::Load::Ready(w) => {
            api::set_csrf(w["csrf"].as_str());
            Session {
                demo_people: w["demoPeople"] == true,
                signed_in: w["caller"]["userRef"]
                    .as_str()
                    .or_else(|| w["caller"]["login"].as_str())
                    .map(str::to_string),
                known: true,
                require_sign_in: w["requireSignIn"] == true,
                sign_in: w["signIn"]["url"].as_str().map(|url| SignInWith {
                    url: url.to_string(),
                    provider: w["signIn"]["provider"].as_str().unwrap_or("").to_string(),
                }),
                admin: w["admin"] == true,
            }
        }
        _ => Session {
            demo_people: false,
            signed_in: None,
            known: false,
            require_sign_in: false,
            sign_in: None,
            admin: false,
        },
    };
    // Nothing to read before signing in: the sign-in page, wherever one
    // was going (and back there after).
    let must_sign_in = session.known
        && session.require_sign_in
        && session.signed_in.is_none()
        && session.sign_in.is_some();
    {
        // Outside the demo, who I am is the sign-in's, never a choice.
        let me = me.clone();
        use_effect_with(session.clone(), move |s| {
            if s.known && !s.demo_people && *me != s.signed_in {
                me.set(s.signed_in.clone());
            }
        });
    }
    {
        use_effect_with((*me).clone(), |me| ui::store(ME_KEY, me.as_deref()));
    }
    html! {
        <BrowserRouter>
            <ContextProvider<Session> context={session}>
                <ContextProvider<Me> context={me}>
                    <Header />
                    if must_sign_in {
                        <pages::home::SignIn />
                    } else {
                        <Switch<Route> render={switch} />
                    }
                </ContextProvider<Me>>
            </ContextProvider<Session>>
        </BrowserRouter>
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
