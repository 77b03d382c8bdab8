//! Implements every export of the contract with answers derived from its
//! input, so the host's tests can check each call path end to end.

use greenroom_plugin_sdk::{
    Action, Badge, Card, CardBuilder, Cell, Choice, ChoiceInput, DocPage, Entity, Event, Fact,
    FactValue, Input, InputField, InputKind, InputValue, Link, NumberInput, Plugin, PluginError,
    ProviderFile, ProviderPage, SearchDocument, Suggestion, Tab, TextInput, Tone, WebhookOutcome,
    host, manifest, register_plugin,
};

manifest!(
    r#"{"id": "everything", "name": "Everything", "version": "0.1.0", "hosts": ["*"], "secrets": ["TOKEN"]}"#
);

struct Everything;

impl Plugin for Everything {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let mut card = CardBuilder::new("all", "All").text(&entity.entity_ref);
        // With an upstream named, fetch it with a secret the host injects.
        if let Some(url) = entity.annotation("test/url") {
            let r = host::get(&url, &[("Authorization", "Bearer {{secret:TOKEN}}")])
                .map_err(|e| PluginError::Upstream(format!("{e:?}")))?;
            let body = String::from_utf8_lossy(&r.body);
            card = card.field("Upstream", &format!("{} {body}", r.status), None);
        }
        let mut cards = vec![card.build()];
        if entity.annotation("test/gallery").is_some() {
            cards.push(gallery());
        }
        Ok(cards)
    }

    fn facts(entity: Entity) -> Result<Vec<Fact>, PluginError> {
        Ok(vec![
            Fact {
                name: "test.name_length".into(),
                value: FactValue::Number(entity.name.len() as f64),
                url: None,
            },
            Fact {
                name: "test.kind".into(),
                value: FactValue::Text(entity.kind),
                url: Some("https://example.com".into()),
            },
        ])
    }

    fn events(since_ms: u64) -> Result<Vec<Event>, PluginError> {
        Ok(vec![Event {
            id: format!("deploy-{since_ms}"),
            kind: "deployment".into(),
            entity_ref: Some("component:default/checkout".into()),
            title: "Deployed checkout".into(),
            url: None,
            at_ms: since_ms + 1,
            tone: Tone::Good,
            actor: Some("ada".into()),
        }])
    }

    fn search_documents(entity: Entity) -> Result<Vec<SearchDocument>, PluginError> {
        Ok(vec![SearchDocument {
            id: entity.name.clone(),
            title: format!("About {}", entity.name),
            text: "searchable text".into(),
            location: format!("/docs/{}", entity.name),
        }])
    }

    fn actions(entity: Entity) -> Vec<Action> {
        let field = |name: &str, required: bool, kind: InputKind| InputField {
            name: name.into(),
            label: name.to_uppercase(),
            help: Some(format!("the {name}")),
            required,
            kind,
        };
        vec![Action {
            id: "greet".into(),
            label: format!("Greet {}", entity.name),
            description: "Says hello".into(),
            confirm: true,
            inputs: vec![
                field(
                    "greeting",
                    true,
                    InputKind::Text(TextInput {
                        default: Some("hello".into()),
                        max_length: Some(20),
                        pattern: Some("[a-z ]+".into()),
                        multiline: false,
                    }),
                ),
                field(
                    "times",
                    false,
                    InputKind::Number(NumberInput {
                        default: Some(1.0),
                        min: Some(1.0),
                        max: Some(3.0),
                        integer: true,
                    }),
                ),
                field(
                    "tone",
                    false,
                    InputKind::Choice(ChoiceInput {
                        options: vec![
                            Choice {
                                value: "warm".into(),
                                label: "Warm".into(),
                            },
                            Choice {
                                value: "cool".into(),
                                label: "Cool".into(),
                            },
                        ],
                        default: None,
                    }),
                ),
                field("loud", false, InputKind::Flag(false)),
            ],
        }]
    }

    fn run_action(
        id: String,
        entity: Entity,
        inputs: Vec<Input>,
        actor: String,
    ) -> Result<String, PluginError> {
        match id.as_str() {
            // Says back every value it received, in order and typed, and who asked.
            "greet" => {
                let values: Vec<String> = inputs
                    .iter()
                    .map(|i| match &i.value {
                        InputValue::Text(t) => format!("{}=text:{t}", i.name),
                        InputValue::Number(n) => format!("{}=number:{n}", i.name),
                        InputValue::Flag(b) => format!("{}=flag:{b}", i.name),
                    })
                    .collect();
                Ok(format!(
                    "{} greets {} by {actor}",
                    values.join(" "),
                    entity.name
                ))
            }
            other => Err(PluginError::Config(format!("no action {other}"))),
        }
    }

    fn tabs(entity: Entity) -> Result<Vec<Tab>, PluginError> {
        if entity.annotation("test/no-tabs").is_some() {
            return Err(PluginError::NotApplicable);
        }
        Ok(vec![Tab {
            id: "everything".into(),
            title: "Everything".into(),
            nodes: CardBuilder::new("tab", "tab")
                .heading(&format!("All about {}", entity.name))
                .text("<b>a tab</b> stays text")
                .build()
                .nodes,
        }])
    }

    fn widgets(viewer: Option<String>) -> Result<Vec<Card>, PluginError> {
        Ok(vec![
            CardBuilder::new("welcome", "Welcome")
                .text(&format!(
                    "Hello, {}",
                    viewer.as_deref().unwrap_or("stranger")
                ))
                .build(),
        ])
    }

    /// A delivery as one event naming it, and the payload (when it is
    /// `{"file": {"url", "text"}}`) as a catalog file to read again.
    fn webhook(event: String, payload: String) -> Result<WebhookOutcome, PluginError> {
        let body: serde_json::Value = serde_json::from_str(&payload)
            .map_err(|e| PluginError::Upstream(format!("not JSON: {e}")))?;
        Ok(WebhookOutcome {
            files: body["file"]["url"]
                .as_str()
                .map(|url| ProviderFile {
                    url: url.to_string(),
                    text: body["file"]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                })
                .into_iter()
                .collect(),
            gone: Vec::new(),
            events: vec![Event {
                id: format!("webhook:{event}"),
                kind: "webhook".into(),
                entity_ref: None,
                title: format!("{event} delivered"),
                url: None,
                at_ms: host::now_ms(),
                tone: Tone::Info,
                actor: None,
            }],
        })
    }

    /// Serves the provider location's pages from the loopback server its
    /// config names (`{"url": ...}`), asking `url?name=&cursor=`: the
    /// answer is `{"entities": [...], "next": "..."}`.
    fn discover(
        name: String,
        config: String,
        cursor: Option<String>,
    ) -> Result<ProviderPage, PluginError> {
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| PluginError::Config(e.to_string()))?;
        let Some(base) = config["url"].as_str() else {
            return Err(PluginError::Config(
                "set url in the provider's config".into(),
            ));
        };
        let url = match &cursor {
            Some(c) => format!("{base}?name={name}&cursor={c}"),
            None => format!("{base}?name={name}"),
        };
        let r = host::get(&url, &[]).map_err(|e| PluginError::Upstream(format!("{e:?}")))?;
        if r.status != 200 {
            return Err(PluginError::Upstream(format!(
                "{url} answered {}",
                r.status
            )));
        }
        let page: serde_json::Value =
            serde_json::from_slice(&r.body).map_err(|e| PluginError::Upstream(e.to_string()))?;
        Ok(ProviderPage {
            entities: page["entities"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .collect(),
            files: page["files"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| ProviderFile {
                    url: f["url"].as_str().unwrap_or_default().to_string(),
                    text: f["text"].as_str().unwrap_or_default().to_string(),
                })
                .collect(),
            suggestions: page["suggestions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Suggestion {
                    entity: s["entity"].to_string(),
                    reason: s["reason"].as_str().unwrap_or_default().to_string(),
                })
                .collect(),
            next: page["next"].as_str().map(str::to_string),
        })
    }

    fn doc_page(entity: Entity, path: String) -> Result<DocPage, PluginError> {
        Ok(DocPage {
            path: path.clone(),
            title: format!("{} / {path}", entity.name),
            markdown: "# Title".into(),
            nav: vec![Link {
                label: "Home".into(),
                href: "index.md".into(),
            }],
        })
    }
}

register_plugin!(Everything);

/// Every node type of the contract, with text that must stay text and
/// links that must not be followed, for the web UI's tests.
fn gallery() -> Card {
    CardBuilder::new("gallery", "Gallery")
        .heading("Every node")
        .text("<script>window.injected = 1</script> stays text")
        .markdown(
            "**Bold** and <img src=x onerror=\"window.injected=2\"> and [bad](javascript:alert(1))",
        )
        .field("Status", "green", Some(Tone::Good))
        .field("Plain", "just a value", None)
        .link("Safe link", "https://example.com/docs")
        .link("Hostile link", "javascript:window.injected=3")
        .badge("beta", Tone::Warning)
        .progress(3.0, 4.0, Some("3 of 4 checks"))
        .sparkline(vec![1.0, 3.0, 2.0, 5.0])
        .table(
            &["Name", "Where", "State"],
            vec![vec![
                Cell::Text("row one".into()),
                Cell::Link(Link {
                    label: "cell link".into(),
                    href: "data:text/html,<b>x</b>".into(),
                }),
                Cell::Badge(Badge {
                    label: "failing".into(),
                    tone: Tone::Critical,
                }),
            ]],
        )
        .code("fn main() {}\n<b>not bold</b>")
        .divider()
        .build()
}
