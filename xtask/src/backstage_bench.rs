//! `cargo xtask bench catalog --part backstage`: the catalog as Backstage
//! clients use it. An organisation shaped like Backstage's (1 % groups,
//! 10 % users, domains, 1 % systems, 60 % components of which half are
//! services, 12 % APIs, resources; ownership, membership, system, API and
//! dependency relations; names of two of 40 words, titles in mixed case)
//! in files of 500 entities, each registered through
//! `POST /api/catalog/locations` (*ingest* ends when the catalog holds
//! them all: registrations are read in the background), then the queries the Backstage
//! frontend's catalog page and scripts send, over one keep-alive
//! connection: the filtered page with its total, full text with and
//! without fields, by-name and facets.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{
    Rng, append_row, create_token, measure, peak_rss_mib, prepare, start, wait_health, wait_ready,
    wait_searchable, work_so_far,
};
use crate::http::Conn;
use crate::tools;

const WORDS: [&str; 40] = [
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "iris", "jade",
    "kelp", "lumen", "maple", "nova", "onyx", "pearl", "quill", "raven", "sable", "tidal", "umber",
    "vale", "willow", "xenon", "yarrow", "zephyr", "atlas", "beacon", "cobalt", "dune", "echo",
    "flint", "grove", "helix", "indigo", "juniper", "kestrel", "lotus", "meadow", "nimbus",
];

/// `word-word-i`, with a title in mixed case.
fn name(rng: &mut Rng, i: usize) -> (String, String) {
    let (a, b) = (WORDS[rng.below(40)], WORDS[rng.below(40)]);
    let title = format!(
        "{}{} {} {i}",
        a[..1].to_uppercase(),
        &a[1..],
        b.to_uppercase()
    );
    (format!("{a}-{b}-{i}"), title)
}

/// Writes the organisation as files of 500 entities (`part-NNNNN.yaml`).
fn generate(dir: &Path, n: usize) -> anyhow::Result<()> {
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let groups = (n / 100).max(1);
    let users = n / 10;
    let domains = (n / 1000).max(1);
    let systems = (n / 100).max(1);
    let components = n * 60 / 100;
    let apis = n * 12 / 100;
    let resources = n - groups - users - domains - systems - components - apis;
    let mut rng = Rng(0x5EED_BAC5_7A6E);
    let mut docs: Vec<String> = Vec::with_capacity(n);
    let owner = |rng: &mut Rng| format!("group-{}", rng.below(groups));
    for i in 0..groups {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("  parent: group-{}\n", (i - 1) / 8)
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: group-{i}\n  title: Group {i}\nspec:\n  type: team\n  profile:\n    displayName: Group {i}\n{parent}  children: []\n"
        ));
    }
    for i in 0..users {
        let (name, title) = name(&mut rng, i);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: user-{name}\nspec:\n  profile:\n    displayName: {title}\n    email: {name}@example.com\n  memberOf: [group-{}]\n",
            rng.below(groups)
        ));
    }
    for i in 0..domains {
        let o = owner(&mut rng);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Domain\nmetadata:\n  name: domain-{i}\nspec:\n  owner: {o}\n"
        ));
    }
    for i in 0..systems {
        let o = owner(&mut rng);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: system-{i}\nspec:\n  owner: {o}\n  domain: domain-{}\n",
            i % domains
        ));
    }
    for i in 0..apis {
        let (name, title) = name(&mut rng, i);
        let o = owner(&mut rng);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: api-{name}\n  title: {title} API\nspec:\n  type: openapi\n  lifecycle: production\n  owner: {o}\n  system: system-{}\n  definition: \"openapi: 3.0.0\"\n",
            rng.below(systems)
        ));
    }
    for i in 0..resources {
        let o = owner(&mut rng);
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: resource-{i}\nspec:\n  type: database\n  owner: {o}\n  system: system-{}\n",
            rng.below(systems)
        ));
    }
    // Components provide and consume the APIs written above, by name.
    let api_refs: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            d.strip_prefix("apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: ")
        })
        .filter_map(|d| d.split('\n').next())
        .map(str::to_string)
        .collect();
    for i in 0..components {
        let (name, title) = name(&mut rng, i);
        let o = owner(&mut rng);
        let ty = if i % 2 == 0 {
            "service"
        } else {
            ["website", "library"][rng.below(2)]
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  title: {title}\n  tags: [{}]\nspec:\n  type: {ty}\n  lifecycle: {}\n  owner: {o}\n  system: system-{}\n  providesApis: [{}]\n  consumesApis: [{}]\n  dependsOn: [resource:resource-{}]\n",
            WORDS[rng.below(40)],
            ["production", "experimental"][rng.below(2)],
            rng.below(systems),
            api_refs[rng.below(api_refs.len())],
            api_refs[rng.below(api_refs.len())],
            rng.below(resources.max(1))
        ));
    }
    for (i, chunk) in docs.chunks(500).enumerate() {
        std::fs::write(dir.join(format!("part-{i:05}.yaml")), chunk.join("---\n"))?;
    }
    std::fs::write(done, n.to_string())?;
    Ok(())
}

pub fn run(n: usize, requests: usize) -> anyhow::Result<()> {
    let (bin, config, dir) = prepare(
        &format!("backstage-{n}"),
        |org| generate(org, n),
        "allow_file_locations_from_api = true\n",
    )?;
    let org = dir.join("org");
    // An admin token for the registrations.
    let auth = format!(
        "Authorization: Bearer {}\r\n",
        create_token(&bin, &config, "admin")?
    );

    let server = start(&bin, &config)?;
    let mut conn = Conn::open(server.addr)?;
    wait_ready(&mut conn, Duration::from_secs(60))?;
    let mut files: Vec<_> = std::fs::read_dir(&org)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let before = work_so_far(server.pid())?;
    let started = Instant::now();
    for file in &files {
        let body = serde_json::json!({"type": "file", "target": file.to_string_lossy()});
        let (status, answer) =
            conn.post_json("/api/catalog/locations", &auth, body.to_string().as_bytes())?;
        if status != 201 {
            bail!(
                "registering {} answered {status}: {}",
                file.display(),
                String::from_utf8_lossy(&answer)
            );
        }
    }
    // Registrations are answered at once and read in the background (as
    // Backstage does): ingest ends when the catalog holds them all.
    wait_health(
        &mut conn,
        Duration::from_secs(1800),
        "holding every entity",
        |h| h["catalog"]["entities"].as_u64() == Some(n as u64),
    )?;
    let ingest = started.elapsed();
    let (cpu_before, written_before) = before;
    let (cpu, written) = work_so_far(server.pid())?;
    let (cpu, written) = (cpu - cpu_before, written - written_before);
    // Queries are measured in the steady state, as in the other part.
    // The search index follows an import once it ends: how long until it
    // holds everything is measured too.
    wait_searchable(&mut conn, n)?;
    let searchable = started.elapsed();
    eprintln!(
        "xtask: {} registrations, {n} entities in {:.1} s",
        files.len(),
        ingest.as_secs_f64()
    );

    let filtered = measure(&mut conn, requests, |_| {
        "/api/catalog/entities/by-query?limit=50&filter=kind=component,spec.type=service".into()
    })?;
    let mut rng = Rng(7);
    let text_fields = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-query?fullTextFilterTerm={}&fullTextFilterFields=metadata.name,metadata.title&limit=20",
            WORDS[rng.below(40)]
        )
    })?;
    let mut rng = Rng(8);
    let text_default = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-query?fullTextFilterTerm={}&limit=20",
            WORDS[rng.below(40)]
        )
    })?;
    let mut rng = Rng(9);
    let by_name = measure(&mut conn, requests, |_| {
        format!(
            "/api/catalog/entities/by-name/group/default/group-{}",
            rng.below(n / 100)
        )
    })?;
    let facets = measure(&mut conn, requests, |_| {
        "/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.owner".into()
    })?;
    // The total of the filtered page, checked once against the shape.
    let (_, page) =
        conn.get("/api/catalog/entities/by-query?limit=1&filter=kind=component,spec.type=service")?;
    let page: serde_json::Value = serde_json::from_slice(&page)?;
    let total = page["totalItems"].as_u64().context("no totalItems")?;
    let expected = (n * 60 / 100).div_ceil(2) as u64;
    if total != expected {
        bail!("the filtered page's total is {total}, expected {expected}");
    }
    let rss = peak_rss_mib(server.pid())?;
    drop(server);

    let fmt = |(p50, p99): (f64, f64)| format!("{p50:.2} / {p99:.2}");
    println!("entities                     {n} in {} files", files.len());
    println!("ingest through the API       {:.1} s", ingest.as_secs_f64());
    println!("  server CPU, bytes written  {cpu:.1} s, {written:.0} MiB");
    println!(
        "searchable after             {:.1} s",
        searchable.as_secs_f64()
    );
    println!("filtered page + total        {} ms", fmt(filtered));
    println!("full text, name+title        {} ms", fmt(text_fields));
    println!("full text, default fields    {} ms", fmt(text_default));
    println!("by-name                      {} ms", fmt(by_name));
    println!("facets                       {} ms", fmt(facets));
    println!("server peak RSS              {rss:.0} MiB");
    append_row(
        &tools::workspace_root()?.join("BENCHMARKS.md"),
        "## Backstage clients' queries",
        &format!(
            "| {} | {n} | {:.1} s | {} | {} | {} | {} | {} | {rss:.0} MiB | {cpu:.1} s, {written:.0} MiB | {:.1} s |\n",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
            ingest.as_secs_f64(),
            fmt(filtered),
            fmt(text_fields),
            fmt(text_default),
            fmt(by_name),
            fmt(facets),
            searchable.as_secs_f64(),
        ),
    )
}
