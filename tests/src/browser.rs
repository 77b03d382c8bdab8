//! The web UI in a real browser: Debian's Chromium, driven through
//! chromedriver (WebDriver), against the real host serving the demo
//! organisation with the first-party plugins and the built Yew app. Each
//! test saves screenshots under `<target>/screenshots/`.
//!
//! Chromium and chromedriver come from `cargo xtask test` (Debian's
//! `chromium` and `chromium-driver`); without them these tests fail and
//! say what to install, never skip.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use greenroom_upstreams::Upstreams;
use greenroom_web_build::browser::{Browser, WAIT};
use serde_json::{Value, json};

use crate::demo::live_demo_config;
use crate::support::Portal;

const ADMIN_TOKEN: &str = "browser-test-admin";

/// WebDriver's key codes.
const ENTER: &str = "\u{E007}";
const ARROW_DOWN: &str = "\u{E015}";

/// Saves a PNG of what the browser shows under `<target>/screenshots/`.
async fn screenshot(b: &Browser, name: &str) -> PathBuf {
    let png = b.client.screenshot().await.unwrap();
    let dir = screenshots();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

async fn browser(width: u32, height: u32) -> Browser {
    Browser::start(width, height)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `<target>/screenshots`: the web build is `<target>/web-dist`.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("GREENROOM_TEST_WEB"))
        .parent()
        .unwrap()
        .join("screenshots")
}

/// The demo as `cargo xtask demo` runs it, serving the built web UI; with
/// more plugins, and a catalog file of more entities.
async fn portal(upstream: &Upstreams, extra_plugins: &[&str], extra_yaml: Option<&str>) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let mut plugins = vec!["hello", "github", "sentry", "coverage", "techdocs"];
    plugins.extend_from_slice(extra_plugins);
    let mut config = live_demo_config(dir.path(), &plugins, upstream);
    config
        .plugins
        .allow_actions
        .extend(extra_plugins.iter().map(|p| p.to_string()));
    if let Some(yaml) = extra_yaml {
        let file = dir.path().join("extra.yaml");
        std::fs::write(&file, yaml).unwrap();
        config
            .catalog
            .locations
            .push(greenroom::config::LocationConfig {
                kind: "file".into(),
                target: file.display().to_string(),
            });
    }
    config.web.dir = Some(PathBuf::from(env!("GREENROOM_TEST_WEB")));
    config.server.admin_token_env = "GREENROOM_BROWSER_TEST_ADMIN".into();
    // SAFETY: every test sets the same value.
    unsafe { std::env::set_var("GREENROOM_BROWSER_TEST_ADMIN", ADMIN_TOKEN) };
    let p = Portal::start_with(dir, config).await;
    // What the serve loops would gather within minutes: facts (health)
    // and events (deployments) from the plugins, and the search index.
    let insights = p.state.insights.clone();
    let store = p.state.store.clone();
    tokio::task::spawn_blocking(move || {
        insights.poll_facts();
        insights.poll_events();
        // And the campaign and scorecard history the recorder keeps.
        greenroom::campaigns::history::record_all(&store, greenroom::store::now_ms()).unwrap();
    })
    .await
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while p.ok("/healthz").await["search"]["documents"].as_u64() < Some(100) {
        assert!(Instant::now() < deadline, "the search index was not built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p
}

/// The demo's "who are you", answered: `user` kept in local storage.
async fn choose_user(b: &Browser, p: &Portal, user: &str) {
    b.client.goto(&format!("{}/", p.base)).await.unwrap();
    b.find("#home-search").await;
    b.client
        .execute(
            &format!("localStorage.setItem('greenroom.user', '{user}')"),
            vec![],
        )
        .await
        .unwrap();
}

async fn upstream() -> Upstreams {
    Upstreams::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A new user: chooses who they are, sees their team's services, searches
/// for a service with the keyboard, opens it (owner, plugin cards), reads
/// its docs and finds the report-issue link.
#[tokio::test]
async fn a_new_user_finds_a_service_its_cards_and_its_docs() {
    let up = upstream().await;
    let p = portal(&up, &[], None).await;
    let b = browser(1280, 1000).await;
    b.client.goto(&format!("{}/", p.base)).await.unwrap();

    // Nobody is chosen yet: the homepage asks.
    b.find("#whoami-select option[value='user:default/daniel.kim']")
        .await;
    assert!(b.text().await.contains("Who are you?"));
    screenshot(&b, "home-new-user").await;
    b.find("#whoami-select")
        .await
        .select_by_value("user:default/daniel.kim")
        .await
        .unwrap();
    b.until("document.body.innerText.includes(\"My teams' services\")")
        .await;
    // daniel.kim is in team-checkout: its services, with health from facts.
    b.until("document.querySelector('.team-services a[href=\"/catalog/default/component/order-service\"]')")
        .await;
    let team = b
        .eval("document.querySelector('.team-services h3').innerText")
        .await;
    assert_eq!(team, "team-checkout");
    b.until("document.querySelectorAll('.team-services .badge').length > 0")
        .await;
    assert_eq!(
        b.eval("localStorage.getItem('greenroom.user')").await,
        "user:default/daniel.kim"
    );
    screenshot(&b, "home").await;

    // `/` focuses the search box (and types nothing into it); typing and
    // Enter searches.
    b.client
        .execute("document.activeElement.blur()", vec![])
        .await
        .unwrap();
    let slash = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: '/' })
        .then(KeyAction::Up { value: '/' });
    b.client.perform_actions(slash).await.unwrap();
    assert_eq!(b.eval("document.activeElement.id").await, "home-search");
    assert_eq!(
        b.eval("document.querySelector('#home-search').value").await,
        ""
    );
    b.find("#home-search")
        .await
        .send_keys(&format!("order service{ENTER}"))
        .await
        .unwrap();
    b.until("document.querySelector('a.result-link')").await;
    assert_eq!(b.path().await, "/search?query=order+service");
    let groups = b
        .eval("[...document.querySelectorAll('.result-group h2')].map(h => h.innerText)")
        .await;
    assert!(
        groups[0]
            .as_str()
            .unwrap()
            .starts_with("Services and components"),
        "{groups}"
    );
    let first = b
        .eval("document.querySelector('a.result-link').getAttribute('href')")
        .await;
    assert_eq!(first, "/catalog/default/component/order-service");
    // Arrow keys move through the results.
    b.find("#search-page-input")
        .await
        .send_keys(ARROW_DOWN)
        .await
        .unwrap();
    assert_eq!(
        b.eval("document.activeElement.getAttribute('href')").await,
        first
    );
    screenshot(&b, "search").await;
    b.client
        .execute("document.activeElement.click()", vec![])
        .await
        .unwrap();

    // The entity page: header with its owner, cards from each plugin.
    b.until("location.pathname === '/catalog/default/component/order-service'")
        .await;
    b.until("document.querySelector('h1') && document.querySelector('h1').innerText === 'order-service'")
        .await;
    let owner = b
        .eval("[...document.querySelectorAll('.meta-item')].find(m => m.querySelector('dt').innerText.toLowerCase() === 'owner').querySelector('a').getAttribute('href')")
        .await;
    assert_eq!(owner, "/catalog/default/group/team-checkout");
    for plugin in ["coverage", "github", "sentry", "hello"] {
        b.find(&format!(".card[data-plugin='{plugin}']")).await;
    }
    let coverage = b
        .eval("document.querySelector(\".card[data-plugin='coverage']\").innerText")
        .await;
    assert!(
        coverage.as_str().unwrap().contains("Least covered files"),
        "{coverage}"
    );
    assert!(
        b.eval("document.querySelector(\".card[data-plugin='github'] .card-source\").innerText")
            .await
            .as_str()
            .unwrap()
            .starts_with("from plugin github")
    );
    // Its facts, from the plugins polled above, each with its source.
    b.until("document.querySelectorAll('#entity-facts tbody tr').length > 0")
        .await;
    let facts = b
        .eval("document.querySelector('#entity-facts').innerText")
        .await;
    let facts = facts.as_str().unwrap();
    assert!(
        facts.contains("coverage.lines") && facts.contains("plugin:coverage"),
        "{facts}"
    );
    screenshot(&b, "entity").await;

    // Its docs, in the Docs tab, with the report-issue link.
    b.find("a.tab[href='/catalog/default/component/order-service/docs']")
        .await
        .click()
        .await
        .unwrap();
    b.until("document.querySelector('.docs-page h1')").await;
    let report = b
        .eval("[...document.querySelectorAll('a')].find(a => a.innerText === 'Report an issue with this page').href")
        .await;
    let report = report.as_str().unwrap();
    assert!(
        report.starts_with("https://github.com/northwind/order-service/issues/new?"),
        "{report}"
    );
    assert!(report.contains("title="), "{report}");
    // The docs reader on its own route, with navigation and contents.
    b.client
        .goto(&format!("{}/docs/default/component/order-service", p.base))
        .await
        .unwrap();
    b.until("document.querySelector('.docs-nav a') && document.querySelector('.toc a')")
        .await;
    screenshot(&b, "docs").await;

    // Someone else at this browser: "Switch user" brings the chooser back.
    b.client
        .execute(
            "[...document.querySelectorAll('.whoami button')].find(x => x.innerText === 'Switch user').click()",
            vec![],
        )
        .await
        .unwrap();
    b.until("location.pathname === '/' && document.querySelector('#whoami-select')")
        .await;
    assert_eq!(
        b.eval("localStorage.getItem('greenroom.user')").await,
        Value::Null
    );
}

/// The catalog filters by owner on the server, keeps the filter in the URL
/// (shareable, back button), sorts and pages; and says how fast its first
/// rows came.
#[tokio::test]
async fn the_catalog_filters_by_owner_in_the_url() {
    let up = upstream().await;
    let p = portal(&up, &[], None).await;
    let b = browser(1280, 900).await;
    b.client.goto(&format!("{}/catalog", p.base)).await.unwrap();
    let rendered = b
        .until("document.querySelector('#catalog-table') && document.querySelector('#catalog-table').dataset.renderedMs")
        .await;
    println!("catalog: first rows {rendered} ms after navigation (demo, debug host)");
    let total: usize = b
        .eval("document.querySelector('#catalog-count').innerText")
        .await
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total > 100, "{total}");
    // One page of rows, never the whole catalog.
    let rows = b
        .eval("document.querySelectorAll('#catalog-table tbody tr').length")
        .await;
    assert_eq!(rows, 25);

    b.find("#facet-owner option[value='team-checkout']").await;
    b.find("#facet-owner")
        .await
        .select_by_value("team-checkout")
        .await
        .unwrap();
    b.until("location.search.includes('owner=team-checkout') && document.querySelector('#catalog-count').innerText.startsWith('10 ')")
        .await;
    let owners = b
        .eval("[...document.querySelectorAll('#catalog-table tbody tr td:nth-child(4)')].map(td => td.innerText)")
        .await;
    let owners = owners.as_array().unwrap();
    assert_eq!(owners.len(), 10);
    assert!(owners.iter().all(|o| o == "team-checkout"), "{owners:?}");
    screenshot(&b, "catalog-by-owner").await;

    // Sorting by name, descending, from the column header.
    b.client
        .execute(
            "[...document.querySelectorAll('th button.sort')][0].click()",
            vec![],
        )
        .await
        .unwrap();
    b.until("location.search.includes('order=metadata.name%2Cdesc')")
        .await;
    b.until("document.querySelector('th[aria-sort=\"descending\"]')")
        .await;

    // A shared link opens the same view.
    let shared = b.path().await;
    b.client.goto(&format!("{}{shared}", p.base)).await.unwrap();
    b.until("document.querySelector('#catalog-count') && document.querySelector('#catalog-count').innerText.startsWith('10 ')")
        .await;
    assert_eq!(
        b.eval("document.querySelector('#facet-owner').value").await,
        "team-checkout"
    );

    // Back twice: the unfiltered catalog again.
    b.client.back().await.unwrap();
    b.client.back().await.unwrap();
    b.until(&format!(
        "document.querySelector('#catalog-count') && document.querySelector('#catalog-count').innerText === '{total} entities'"
    ))
    .await;

    // A text filter that matches nothing says so.
    b.client
        .goto(&format!("{}/catalog?q=zzzz-nothing-matches", p.base))
        .await
        .unwrap();
    b.until("document.querySelector('.results .empty') && document.querySelector('.results .empty').innerText === 'No entities match these filters.'")
        .await;
    // A link to an entity that is not there explains itself.
    b.client
        .goto(&format!(
            "{}/catalog/default/component/does-not-exist",
            p.base
        ))
        .await
        .unwrap();
    let error = b
        .until("document.querySelector('.error-box') && document.querySelector('.error-box').innerText")
        .await;
    assert!(
        error
            .as_str()
            .unwrap()
            .starts_with("No component named does-not-exist here"),
        "{error}"
    );
}

/// A team's page: members, the team around it, what it owns with health,
/// its campaign tasks. Then the plugins admin: health and capabilities,
/// and disabling a plugin with the admin token.
#[tokio::test]
async fn a_team_page_and_the_plugins_admin() {
    let up = upstream().await;
    let p = portal(&up, &[], None).await;
    let b = browser(1280, 1100).await;
    b.client
        .goto(&format!("{}/catalog/default/group/team-checkout", p.base))
        .await
        .unwrap();
    b.until("document.querySelector('#owned-title') && document.querySelectorAll('.panel table tbody tr').length > 3")
        .await;
    let text = b.text().await;
    assert!(text.contains("Members ("), "{text}");
    assert!(
        b.eval("!!document.querySelector('a[href=\"/catalog/default/user/daniel.kim\"]')")
            .await
            == true
    );
    assert!(
        b.eval("!!document.querySelector('a[href=\"/catalog/default/component/order-service\"]')")
            .await
            == true
    );
    // Each thing it owns once: entities, not their docs pages.
    assert_eq!(
        b.eval("(() => { const h = [...document.querySelectorAll('#owned-title + * a')].map(a => a.getAttribute('href')); return h.length > 5 && new Set(h).size === h.length; })()")
            .await,
        true
    );
    // The demo's campaigns have targets for team-checkout to do.
    b.until("document.querySelectorAll('.tasks li').length > 0")
        .await;
    screenshot(&b, "team").await;

    b.client.goto(&format!("{}/plugins", p.base)).await.unwrap();
    b.find("section.plugin[data-plugin='github']").await;
    let ids = b
        .eval("[...document.querySelectorAll('section.plugin')].map(s => s.dataset.plugin).sort()")
        .await;
    assert_eq!(
        ids,
        json!(["coverage", "github", "hello", "sentry", "techdocs"])
    );
    // Requested against granted: GitHub asks for hosts and its token.
    let github = b
        .eval("document.querySelector(\"section.plugin[data-plugin='github']\").innerText")
        .await;
    assert!(
        github.as_str().unwrap().contains("GITHUB_TOKEN"),
        "{github}"
    );
    screenshot(&b, "plugins").await;

    // Without the token the change is refused and says why.
    let disable = "[...document.querySelector(\"section.plugin[data-plugin='hello']\").querySelectorAll('button')].find(x => x.innerText === 'Disable').click()";
    b.client.execute(disable, vec![]).await.unwrap();
    b.until("document.querySelector('.error-box') && document.querySelector('.error-box').innerText.includes('Bearer')")
        .await;
    b.find("#admin-token")
        .await
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    b.client.execute(disable, vec![]).await.unwrap();
    b.until("document.querySelector(\"section.plugin[data-plugin='hello'] .badge\").innerText === 'disabled'")
        .await;
    let listed = p.ok("/api/plugins").await;
    let hello = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "hello")
        .unwrap()
        .clone();
    assert_eq!(hello["state"], "disabled", "{hello}");

    // Coverage asks for any host: grant it one origin, then revoke it.
    let coverage = "section.plugin[data-plugin='coverage']";
    b.find("#grant-origin-coverage")
        .await
        .send_keys("https://coverage.example.com")
        .await
        .unwrap();
    b.client
        .execute(
            &format!("document.querySelector(\"{coverage} form button\").click()"),
            vec![],
        )
        .await
        .unwrap();
    let row = format!(
        "[...document.querySelectorAll(\"{coverage} tbody tr\")].find(r => r.innerText.includes('https://coverage.example.com'))"
    );
    b.until(&format!("{row} && {row}.innerText.includes('granted')"))
        .await;
    let granted = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "coverage")
            .unwrap()["granted"]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        granted(&p.ok("/api/plugins").await),
        ["https://coverage.example.com"]
    );
    screenshot(&b, "plugins-granted").await;
    b.client
        .execute(&format!("{row}.querySelector('button').click()"), vec![])
        .await
        .unwrap();
    b.until(&format!("!{row}")).await;
    assert!(granted(&p.ok("/api/plugins").await).is_empty());

    // The audit trail, with the same token: the disable refused without a
    // token, then done with it, newest first.
    b.client.goto(&format!("{}/audit", p.base)).await.unwrap();
    b.until("document.querySelector('table.audit tbody tr')")
        .await;
    let first = b
        .eval("document.querySelector('table.audit tbody tr').innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(first.contains("POST /api/plugins/{id}/grants"), "{first}");
    let all = b
        .eval("document.querySelector('table.audit').innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        all.contains("/api/plugins/hello/disable")
            && all.contains("denied 401")
            && all.contains("allowed 200"),
        "{all}"
    );
    assert!(all.contains("token:admin"), "{all}");
    screenshot(&b, "audit").await;
}

/// Every card node type of the WIT renders, text stays text, and links to
/// anything but http(s) or the portal are not followed (all of it under
/// the host's Content-Security-Policy, which `web.rs` checks); an orphan
/// is flagged; the dark theme holds across reloads and a phone's width
/// does not overflow.
#[tokio::test]
async fn every_card_node_renders_safely_in_both_themes_and_widths() {
    let up = upstream().await;
    let p = portal(
        &up,
        &["everything"],
        Some("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: gallery\n  annotations:\n    test/gallery: 'yes'\nspec:\n  type: service\n  lifecycle: production\n  owner: team-checkout\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: stray\nspec:\n  type: service\n  lifecycle: experimental\n  owner: team-nobody\n"),
    )
    .await;
    let b = browser(1280, 1400).await;
    b.client
        .goto(&format!("{}/catalog/default/component/gallery", p.base))
        .await
        .unwrap();
    let card = ".card[aria-label='Gallery']";
    b.find(card).await;
    for (what, css) in [
        ("heading", "h4"),
        ("text", "p"),
        ("markdown", ".markdown strong"),
        ("field", ".field"),
        ("link", "a[href='https://example.com/docs']"),
        ("badge", ".badge.tone-warning"),
        ("progress", ".bar svg rect.bar-fill"),
        ("sparkline", "svg.sparkline polyline"),
        ("table", "table tbody tr td"),
        ("code", "pre.code code"),
        ("divider", "hr"),
    ] {
        let found = b
            .eval(&format!(
                "!!document.querySelector(\"{card}\").querySelector(\"{css}\")"
            ))
            .await;
        assert_eq!(found, true, "{what} ({css}) not rendered");
    }
    let html = b
        .eval(&format!("document.querySelector(\"{card}\").innerHTML"))
        .await;
    let html = html.as_str().unwrap();
    // Text is text: the script tag shows as characters.
    assert!(
        b.text()
            .await
            .contains("<script>window.injected = 1</script> stays text")
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("data:text/html"), "{html}");
    assert_eq!(b.eval("typeof window.injected").await, "undefined");
    // The bar is 3 of 4.
    assert_eq!(
        b.eval(&format!(
            "document.querySelector(\"{card} rect.bar-fill\").getAttribute('width')"
        ))
        .await,
        "75.0"
    );
    screenshot(&b, "cards-gallery").await;

    // An entity whose owner is nobody says so in its header.
    b.client
        .goto(&format!("{}/catalog/default/component/stray", p.base))
        .await
        .unwrap();
    let warning = b
        .until("document.querySelector('.entity-header .warning') && document.querySelector('.entity-header .warning').innerText")
        .await;
    assert!(
        warning.as_str().unwrap().starts_with("Orphan")
            && warning.as_str().unwrap().contains("does not resolve"),
        "{warning}"
    );

    // Homepage widgets, for whoever is chosen (once the people are in).
    b.client.goto(&format!("{}/", p.base)).await.unwrap();
    b.find("#whoami-select option[value='user:default/daniel.kim']")
        .await;
    b.find("#whoami-select")
        .await
        .select_by_value("user:default/daniel.kim")
        .await
        .unwrap();
    b.until("document.querySelector('#widgets')?.parentElement.querySelector(\".card[aria-label='Welcome']\")?.innerText.includes('Hello, user:default/daniel.kim')")
        .await;

    // A plugin's whole tab joins the entity's tabs; its text stays text.
    b.client
        .goto(&format!("{}/catalog/default/component/gallery", p.base))
        .await
        .unwrap();
    b.until(
        "!![...document.querySelectorAll('nav.tabs a')].find(a => a.innerText === 'Everything')",
    )
    .await;
    b.client
        .execute(
            "[...document.querySelectorAll('nav.tabs a')].find(a => a.innerText === 'Everything').click()",
            vec![],
        )
        .await
        .unwrap();
    b.until("location.pathname.endsWith('/gallery/everything.everything') && document.querySelector('.plugin-tab')?.innerText.includes('All about gallery')")
        .await;
    assert!(b.text().await.contains("<b>a tab</b> stays text"));
    assert_eq!(
        b.eval("document.querySelector('.plugin-tab b')").await,
        Value::Null
    );
    screenshot(&b, "plugin-tab").await;

    // An action's form: drawn from its fields, sent typed, checked by the
    // host; the plugin learns who acted.
    b.client
        .goto(&format!(
            "{}/catalog/default/component/gallery/actions",
            p.base
        ))
        .await
        .unwrap();
    let label = open_first_action(&b).await;
    assert_eq!(label, "Greet gallery");
    assert_eq!(
        b.eval("document.querySelector('#action-input-greeting').value")
            .await,
        "hello"
    );
    assert_eq!(
        b.eval(
            "[...document.querySelectorAll('#action-input-tone option')].map(o => o.value).join()"
        )
        .await,
        ",warm,cool"
    );
    b.client
        .execute(
            "document.querySelector('#action-input-greeting').value = 'hi there'; document.querySelector('#action-input-loud').checked = true;",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&b, "action-form").await;
    confirm(&b).await;
    let said = b
        .until("document.querySelector('.actions-tab .notice')?.innerText")
        .await;
    assert_eq!(
        said,
        "greeting=text:hi there times=number:1 loud=flag:true greets gallery by user:default/daniel.kim"
    );
    open_first_action(&b).await;
    b.client
        .execute(
            "document.querySelector('#action-input-times').value = '7';",
            vec![],
        )
        .await
        .unwrap();
    confirm(&b).await;
    let refused = b
        .until("document.querySelector('.actions-tab .error-box')?.innerText")
        .await;
    assert!(
        refused
            .as_str()
            .unwrap()
            .contains("'TIMES' (times) must be at most 3, not 7"),
        "{refused}"
    );

    // Dark theme from the button, kept across reloads; phone width.
    b.client.set_window_size(390, 844).await.unwrap();
    b.client.goto(&format!("{}/", p.base)).await.unwrap();
    b.find("button[aria-label^='Theme']").await;
    for _ in 0..2 {
        b.client
            .execute(
                "document.querySelector(\"button[aria-label^='Theme']\").click()",
                vec![],
            )
            .await
            .unwrap();
    }
    b.until("document.documentElement.dataset.theme === 'dark'")
        .await;
    b.client.refresh().await.unwrap();
    b.until("document.documentElement.dataset.theme === 'dark' && document.querySelector('#home-search')")
        .await;
    let background = b
        .eval("getComputedStyle(document.documentElement).backgroundColor")
        .await;
    assert_eq!(background, "rgb(13, 17, 23)");
    // Nothing wider than the phone's screen.
    assert_eq!(
        b.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    screenshot(&b, "home-phone-dark").await;
}

/// An API's definition shown readably, a service's dependency graph, a
/// plugin action run with confirmation, campaigns with their burndown, and
/// the poorest coverage.
#[tokio::test]
async fn apis_dependencies_actions_campaigns_and_facts() {
    let up = upstream().await;
    let p = portal(&up, &[], None).await;
    let b = browser(1280, 1000).await;
    choose_user(&b, &p, "user:default/daniel.kim").await;

    // OpenAPI: its operations, each with method and path.
    b.client
        .goto(&format!("{}/catalog/default/api/orders-api/api", p.base))
        .await
        .unwrap();
    b.until("document.querySelectorAll('.api-definition tbody tr').length > 0")
        .await;
    let first = b
        .eval("document.querySelector('.api-definition tbody tr').innerText")
        .await;
    assert!(first.as_str().unwrap().contains("/orders"), "{first}");
    assert!(
        b.eval(
            "document.querySelector('.api-definition details pre').textContent.includes('openapi')"
        )
        .await
            == true
    );
    screenshot(&b, "api-definition").await;

    // Dependencies: what order-service needs, grouped by kind.
    b.client
        .goto(&format!(
            "{}/catalog/default/component/order-service/dependencies",
            p.base
        ))
        .await
        .unwrap();
    b.until("document.querySelector('svg.graph')").await;
    let nodes = b
        .eval(
            "[...document.querySelectorAll('svg.graph a')].map(a => a.getAttribute('href')).sort()",
        )
        .await;
    for expected in [
        "/catalog/default/resource/orders-db/dependencies",
        "/catalog/default/api/payments-api/dependencies",
        "/catalog/default/api/orders-api/dependencies",
    ] {
        assert!(
            nodes.as_array().unwrap().iter().any(|n| n == expected),
            "{expected} not in {nodes}"
        );
    }
    // Each edge runs from the entity to its own neighbour: one end on
    // the entity's node, the other on a neighbour's, every neighbour once.
    let joined = b
        .eval(
            "(() => {
                const g = document.querySelector('svg.graph');
                const current = g.querySelector('rect.current').getBBox();
                const boxes = [...g.querySelectorAll('a rect.graph-node')].map(r => r.getBBox());
                const on = (p, b) => p.x >= b.x - 1 && p.x <= b.x + b.width + 1
                    && p.y >= b.y - 1 && p.y <= b.y + b.height + 1;
                const met = boxes.map(() => 0);
                for (const edge of g.querySelectorAll('path.graph-edge')) {
                    const ends = [edge.getPointAtLength(0), edge.getPointAtLength(edge.getTotalLength())];
                    const i = boxes.findIndex(b => ends.some(p => on(p, b)));
                    if (ends.filter(p => on(p, current)).length !== 1 || i < 0) return false;
                    met[i] += 1;
                }
                return met.length > 0 && met.every(n => n === 1);
            })()",
        )
        .await;
    assert_eq!(
        joined, true,
        "an edge does not join the entity to its own neighbour"
    );
    let groups = b
        .eval("[...document.querySelectorAll('svg.graph .graph-group')].map(t => t.textContent)")
        .await;
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g.as_str().unwrap().starts_with("api (")),
        "{groups}"
    );
    screenshot(&b, "dependencies").await;

    // An action, confirmed first, run as the chosen user.
    b.client
        .goto(&format!(
            "{}/catalog/default/component/order-service/actions",
            p.base
        ))
        .await
        .unwrap();
    let label = open_first_action(&b).await;
    screenshot(&b, "action-confirm").await;
    let runs_before = p.ok("/api/actions/runs").await["items"]
        .as_array()
        .unwrap()
        .len();
    confirm(&b).await;
    b.until(
        "document.querySelector('.notice') || document.querySelector('.actions-tab .error-box')",
    )
    .await;
    let runs = p.ok("/api/actions/runs").await;
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), runs_before + 1, "{runs}");
    assert_eq!(items[0]["user"], "user:default/daniel.kim", "{runs}");
    assert_eq!(items[0]["label"], label, "{runs}");

    // Campaigns: progress, then one with its burndown and teams.
    b.client
        .goto(&format!("{}/campaigns", p.base))
        .await
        .unwrap();
    b.until("document.querySelectorAll('.panel.campaign').length === 3")
        .await;
    b.client
        .execute(
            "document.querySelector('.panel.campaign h2 a').click()",
            vec![],
        )
        .await
        .unwrap();
    b.until("document.querySelector('.burndown polyline') && document.querySelectorAll('#teams-title + * tbody tr').length > 0")
        .await;
    // Each team's own burndown, this week's movers and the nudge log.
    b.until("document.querySelectorAll('#teams-title + * tbody .team-spark').length > 0 && document.querySelector('#movers-done') && document.querySelector('#movers-regressed') && document.querySelector('#nudges-title')")
        .await;
    screenshot(&b, "campaign").await;

    // A campaign drafted on the list page counts as its predicate is typed.
    b.client
        .goto(&format!("{}/campaigns", p.base))
        .await
        .unwrap();
    b.find("#draft-done")
        .await
        .send_keys("annotation backstage.io/techdocs-ref exists")
        .await
        .unwrap();
    // The demo's 32 services (29 from files, 3 discovered), 14 with docs.
    b.until("document.querySelector('#draft-result .bar-label') && document.querySelector('#draft-result .bar-label').innerText === '14 of 32 done (43.8%)'")
        .await;
    // A typo in a fact's name: it still counts, and says what is wrong.
    b.find("#draft-done").await.clear().await.unwrap();
    b.find("#draft-done")
        .await
        .send_keys("fact coverage.line >= 70")
        .await
        .unwrap();
    b.until("document.querySelector('#draft-result .warning-box') && document.querySelector('#draft-result .warning-box').innerText.includes('coverage.line is unknown')")
        .await;
    screenshot(&b, "campaign-editor").await;

    // The production readiness scorecard: levels per entity, with reasons,
    // and the level on an entity's own page.
    b.client
        .goto(&format!("{}/scorecards/production-readiness", p.base))
        .await
        .unwrap();
    b.until("document.querySelectorAll('#scorecard-entities tbody tr').length === 32")
        .await;
    b.until(
        "document.querySelector('#scorecard-entities').innerText.includes('coverage (silver)')",
    )
    .await;
    screenshot(&b, "scorecard").await;
    b.client
        .goto(&format!(
            "{}/catalog/default/component/payment-gateway",
            p.base
        ))
        .await
        .unwrap();
    let level = b
        .until("document.querySelector('.entity-level .badge') && document.querySelector('.entity-level .badge').innerText")
        .await;
    assert_eq!(level, "gold");
    // Levels in the catalog table and on search hits.
    b.client
        .goto(&format!("{}/catalog?kind=component", p.base))
        .await
        .unwrap();
    b.until("document.querySelectorAll('#catalog-table td.levels .badge').length > 0")
        .await;
    // The Level facet: its gold count, then only gold entities listed.
    let gold = b
        .until("[...document.querySelectorAll('#facet-level option')].map(o => o.value === 'production-readiness:gold' && o.innerText).find(t => t)")
        .await;
    let gold: u64 = gold
        .as_str()
        .and_then(|t| t.strip_prefix("gold ("))
        .and_then(|t| t.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("gold option: {gold}"));
    assert!(gold > 0);
    b.client
        .execute(
            "const s = document.querySelector('#facet-level'); s.value = 'production-readiness:gold'; s.dispatchEvent(new Event('change'))",
            vec![],
        )
        .await
        .unwrap();
    b.until(&format!("document.querySelector('#catalog-count') && document.querySelector('#catalog-count').innerText === '{gold} entities'"))
        .await;
    b.until("[...document.querySelectorAll('#catalog-table td.levels')].every(td => td.innerText.includes('gold')) && document.querySelectorAll('#catalog-table td.levels').length > 0")
        .await;
    b.client
        .goto(&format!("{}/search?query=payment%20gateway", p.base))
        .await
        .unwrap();
    b.until("document.querySelector('.result .level-badges .badge')")
        .await;

    // The poorest coverage first.
    b.client.goto(&format!("{}/facts", p.base)).await.unwrap();
    b.until("document.querySelectorAll('#facts-table tbody tr').length === 10")
        .await;
    let values = b
        .eval("[...document.querySelectorAll('#facts-table tbody td:last-child')].map(td => parseFloat(td.innerText))")
        .await;
    let values: Vec<f64> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert_eq!(
        b.eval("document.querySelector('#fact-name').value").await,
        "coverage.lines"
    );
    screenshot(&b, "facts").await;
}

/// Opens the confirmation of the first action that may run; its label.
async fn open_first_action(b: &Browser) -> Value {
    let first = "document.querySelector('.actions button:not([disabled])')";
    b.until(first).await;
    let label = b.eval(&format!("{first}.innerText")).await;
    b.client
        .execute(&format!("{first}.click()"), vec![])
        .await
        .unwrap();
    b.find("[role='alertdialog']").await;
    label
}

/// Confirms the open action.
async fn confirm(b: &Browser) {
    b.client
        .execute(
            "[...document.querySelectorAll('[role=alertdialog] button')].find(x => x.innerText === 'Confirm').click()",
            vec![],
        )
        .await
        .unwrap();
}

/// Signs in through the provider's own login form as `login`.
async fn provider_login(b: &Browser, login: &str) {
    let field = b.find("input[name=login]").await;
    field.send_keys(login).await.unwrap();
    b.find("input[name=password]")
        .await
        .send_keys("any password")
        .await
        .unwrap();
    b.find("button[type=submit]").await.click().await.unwrap();
}

/// Signing in with the company's identity provider (a real one:
/// oidc-provider, through its login form): the sign-in page first, back
/// where one was going, one's name in the top bar, an action on a service
/// one's team owns runs as oneself; signed out and in as someone of
/// another team, the same action is refused with why.
#[tokio::test]
async fn people_sign_in_with_their_provider_and_act_only_on_what_they_own() {
    use crate::signin::RealProvider;
    let upstream = upstream().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = RealProvider::start(
        &format!("{base}/auth/callback"),
        "browser-oidc-secret",
        &json!({
            "daniel.kim": "daniel.kim@northwind.example",
            "amara.okafor": "amara.okafor@northwind.example",
        }),
    )
    .await;
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("GREENROOM_BROWSER_OIDC_SECRET", "browser-oidc-secret") };
    let dir = tempfile::tempdir().unwrap();
    let mut config = live_demo_config(
        dir.path(),
        &["hello", "github", "sentry", "coverage", "techdocs"],
        &upstream,
    );
    config.web.dir = Some(PathBuf::from(env!("GREENROOM_TEST_WEB")));
    config.server.public_url = Some(base.clone());
    config.auth = greenroom::config::AuthConfig {
        mode: greenroom::config::AuthMode::Oidc,
        oidc: Some(greenroom::config::OidcConfig {
            issuer: provider.issuer.clone(),
            client_id: "greenroom".into(),
            client_secret_env: "GREENROOM_BROWSER_OIDC_SECRET".into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            name: "Northwind SSO".into(),
        }),
        ..greenroom::config::AuthConfig::default()
    };
    let p = Portal::start_on(dir, listener, config).await;
    let runs = || async {
        p.admin_get("/api/actions/runs").await["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    let actions = format!("{base}/catalog/default/component/order-service/actions");

    let b = browser(1280, 900).await;
    b.client.goto(&actions).await.unwrap();
    b.until("document.querySelector('#sign-in')").await;
    let button = b.find("#sign-in").await;
    assert_eq!(button.text().await.unwrap(), "Sign in with Northwind SSO");
    screenshot(&b, "sign-in").await;
    button.click().await.unwrap();
    provider_login(&b, "daniel.kim").await;
    b.until(&format!(
        "location.href === {:?} && document.querySelector('.whoami a')?.innerText === 'daniel.kim'",
        actions
    ))
    .await;
    screenshot(&b, "signed-in").await;

    // Daniel's team owns order-service: his action runs, as him.
    let before = runs().await.len();
    open_first_action(&b).await;
    confirm(&b).await;
    b.until("document.querySelector('.notice')").await;
    let after = runs().await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[0]["user"], "user:default/daniel.kim", "{after:?}");

    // Signing out ends the session; the provider's own session is its
    // business, so the test forgets it to sign in as someone else.
    b.find("#sign-out").await.click().await.unwrap();
    b.find("#sign-in").await;
    assert_eq!(
        p.admin_get("/api/sessions").await["items"],
        json!([]),
        "no live session after signing out"
    );
    b.client.delete_all_cookies().await.unwrap();
    b.client.goto(&actions).await.unwrap();
    b.find("#sign-in").await.click().await.unwrap();
    provider_login(&b, "amara.okafor").await;
    b.until("document.querySelector('.whoami a')?.innerText === 'amara.okafor'")
        .await;
    open_first_action(&b).await;
    confirm(&b).await;
    let refused = b
        .until("document.querySelector('.actions-tab .error-box')?.innerText")
        .await;
    assert!(
        refused
            .as_str()
            .unwrap()
            .contains("user:default/amara.okafor may not run actions on this entity"),
        "{refused}"
    );
    screenshot(&b, "action-refused").await;
    assert_eq!(runs().await.len(), before + 1, "nothing ran for Amara");
}

/// A team's unclaimed software (the demo's `northwind-labs` organisation,
/// discovered through the GitHub plugin): the homepage says how much
/// waits, and on the page a member accepts one (it joins the catalog),
/// merges one into the entity it is, and dismisses one.
#[tokio::test]
async fn unclaimed_software_is_accepted_merged_and_dismissed() {
    let up = upstream().await;
    let p = portal(&up, &[], None).await;
    let b = browser(1280, 1000).await;
    choose_user(&b, &p, "user:default/daniel.kim").await;
    b.client.goto(&format!("{}/", p.base)).await.unwrap();
    // daniel.kim is in team-checkout, which CODEOWNERS gives three.
    let count = b
        .until("document.querySelector('#unclaimed-count') && document.querySelector('#unclaimed-count').innerText")
        .await;
    assert!(count.as_str().unwrap().starts_with("3 found"), "{count}");

    b.client
        .goto(&format!("{}/suggestions", p.base))
        .await
        .unwrap();
    b.until("document.querySelectorAll('table.suggestions tbody tr').length === 3")
        .await;
    screenshot(&b, "unclaimed-software").await;
    let row = |name: &str| format!("tr[data-ref=\"component:default/{name}\"]");
    let decide = |name: &str, button: &str| {
        format!(
            "(document.querySelector('{} .decide-{button}').click(), true)",
            row(name)
        )
    };
    let outcome = |text: &str| {
        format!(
            "document.querySelector('#suggestion-outcome') && document.querySelector('#suggestion-outcome').innerText.includes('{text}')"
        )
    };

    // Accepted with the owner CODEOWNERS suggested: in the catalog.
    b.eval(&decide("price-experiments", "accept")).await;
    b.until(&outcome("price-experiments is in the catalog"))
        .await;
    let accepted = p.entity("component", "price-experiments").await.unwrap();
    assert_eq!(accepted["spec"]["owner"], "group:default/team-checkout");
    // Merged into the entity it is.
    b.until("document.querySelectorAll('table.suggestions tbody tr').length === 2")
        .await;
    b.eval(
        "(document.getElementById('into-component-default-checkout-web-v2').value = 'checkout-web', true)",
    )
    .await;
    b.eval(&decide("checkout-web-v2", "merge")).await;
    b.until(&outcome(
        "checkout-web-v2 is recorded as component:default/checkout-web",
    ))
    .await;
    // Dismissed: nothing left for the team.
    b.until("document.querySelectorAll('table.suggestions tbody tr').length === 1")
        .await;
    b.eval(&decide("checkout-load-tests", "dismiss")).await;
    b.until(&outcome("checkout-load-tests is dismissed")).await;
    b.until("document.body.innerText.includes('Nothing is waiting to be claimed.')")
        .await;
    // The decisions, newest first, with who took them.
    b.until("document.querySelectorAll('ul.decisions li').length === 3")
        .await;
    let first = b
        .eval("document.querySelector('ul.decisions li').innerText")
        .await;
    assert!(
        first
            .as_str()
            .unwrap()
            .contains("user:default/daniel.kim (demo) dismissed"),
        "{first}"
    );
    let log = p.ok("/api/suggestions/decisions").await;
    let merged = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision"] == "merged")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(merged["into"], "component:default/checkout-web");
    // Everyone's list still holds the other teams'.
    let everyone = p.ok("/api/suggestions").await;
    assert_eq!(everyone["total"], 3, "{everyone}");
    // Coverage of what the providers see, with the teams most behind.
    // Three files and the one accepted in the catalog, one merged, three
    // waiting (the dismissed one does not count): 5 of 8.
    b.until("document.querySelector('#coverage') && document.querySelector('#coverage').innerText.includes('62.5% (5 of 8)')")
        .await;
    let coverage = b
        .eval("document.querySelector('#coverage').innerText")
        .await;
    assert!(
        coverage.as_str().unwrap().contains("github/northwind-labs"),
        "{coverage}"
    );
    screenshot(&b, "unclaimed-software-decided").await;
}
