//! Bad input, one test each: a clear error naming the file, line and field
//! (location problems and entity status), other entities unaffected, and
//! nothing already stored lost.

use serde_json::Value;

use crate::support::{FileServer, Portal, component, group};

const TWO_FILES: &str =
    "[[catalog.locations]]\ntarget = \"a.yaml\"\n[[catalog.locations]]\ntarget = \"b.yaml\"\n";

fn problem_for<'a>(problems: &'a [Value], file: &str) -> &'a Value {
    problems
        .iter()
        .find(|p| p["source"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("no problem for {file}: {problems:?}"))
}

async fn two_files() -> Portal {
    let a = format!("{}---\n{}", group("team-a"), component("alpha", "team-a"));
    let b = component("beta", "team-a");
    Portal::start(TWO_FILES, &[("a.yaml", &a), ("b.yaml", &b)]).await
}

#[tokio::test]
async fn malformed_yaml_keeps_the_files_entities_and_names_the_line() {
    let p = two_files().await;
    p.write(
        "a.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [alpha\nspec: {}\n",
    );
    p.write(
        "b.yaml",
        &format!(
            "{}---\n{}",
            component("beta", "team-a"),
            component("gamma", "team-a")
        ),
    );
    p.refresh().await;
    let problems = p.problems().await;
    let pr = problem_for(&problems, "a.yaml");
    assert!(
        pr["message"]
            .as_str()
            .unwrap()
            .starts_with("YAML syntax error"),
        "{pr}"
    );
    assert!(pr["line"].as_u64().unwrap() >= 4, "{pr}");
    assert!(
        p.entity("component", "alpha").await.is_some(),
        "last good version of a broken file stays"
    );
    assert!(p.entity("group", "team-a").await.is_some());
    assert!(
        p.entity("component", "gamma").await.is_some(),
        "other files still refresh"
    );
}

#[tokio::test]
async fn wrong_field_types_keep_the_last_good_version_with_its_error() {
    let p = two_files().await;
    let broken = format!(
        "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: alpha\n  title: New title\nspec:\n  type: [1, 2]\n  lifecycle: production\n  owner: team-a\n",
        group("team-a")
    );
    p.write("a.yaml", &broken);
    p.refresh().await;
    let alpha = p.entity("component", "alpha").await.unwrap();
    assert!(
        alpha["metadata"].get("title").is_none(),
        "the invalid version is not served"
    );
    let status = &alpha["status"]["items"][0];
    assert_eq!(status["type"], "backstage.io/catalog-processing");
    assert!(
        status["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.type must be a non-empty string"),
        "{status}"
    );
    let problems = p.problems().await;
    let pr = problem_for(&problems, "a.yaml");
    assert_eq!(pr["field"], "spec.type");
    assert_eq!(pr["line"], 15);
    assert_eq!(pr["entityRef"], "component:default/alpha");
    assert!(
        p.entity("component", "beta")
            .await
            .unwrap()
            .get("status")
            .is_none()
    );

    // Fixing the file clears the error.
    p.write("a.yaml", &broken.replace("type: [1, 2]", "type: service"));
    p.refresh().await;
    let alpha = p.entity("component", "alpha").await.unwrap();
    assert_eq!(alpha["metadata"]["title"], "New title");
    assert!(alpha.get("status").is_none());
    assert!(p.problems().await.is_empty());
}

#[tokio::test]
async fn missing_owner_and_invalid_names_are_refused_with_positions() {
    let text = format!(
        "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: no-owner\nspec:\n  type: service\n  lifecycle: production\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Bad Name!\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n",
        group("team-a")
    );
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        &[("a.yaml", &text)],
    )
    .await;
    let problems = p.problems().await;
    assert_eq!(problems.len(), 2, "{problems:?}");
    let owner = problems
        .iter()
        .find(|p| p["field"] == "spec.owner")
        .unwrap();
    assert!(
        owner["message"]
            .as_str()
            .unwrap()
            .contains("spec.owner is required")
    );
    assert_eq!(owner["line"], 13, "points at spec:");
    let name = problems
        .iter()
        .find(|p| p["field"] == "metadata.name")
        .unwrap();
    assert_eq!(name["line"], 20);
    assert!(
        name["message"]
            .as_str()
            .unwrap()
            .contains("'Bad Name!' contains ' '"),
        "{name}"
    );
    assert!(p.entity("component", "no-owner").await.is_none());
    assert!(
        p.entity("group", "team-a").await.is_some(),
        "valid neighbours are stored"
    );
}

#[tokio::test]
async fn unknown_owner_is_stored_and_flagged_as_orphan() {
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        &[("a.yaml", &component("lonely", "team-gone"))],
    )
    .await;
    let e = p.entity("component", "lonely").await.unwrap();
    assert_eq!(
        e["status"]["items"][0]["type"],
        "greenroom.dev/orphan-owner"
    );
    assert_eq!(
        p.ok("/api/catalog/orphans").await["items"][0]["ownerRef"],
        "group:default/team-gone"
    );
    assert_eq!(p.ok("/healthz").await["catalog"]["orphans"], 1);
    // Once the team exists the flag goes away.
    p.write(
        "a.yaml",
        &format!(
            "{}---\n{}",
            component("lonely", "team-gone"),
            group("team-gone")
        ),
    );
    p.refresh().await;
    assert!(
        p.entity("component", "lonely")
            .await
            .unwrap()
            .get("status")
            .is_none()
    );
}

#[tokio::test]
async fn duplicates_first_claim_wins() {
    let dup = format!(
        "{}---\n{}",
        component("twin", "team-a"),
        component("twin", "team-b")
    );
    let other =
        component("twin", "team-c").replace("lifecycle: production", "lifecycle: experimental");
    let p = Portal::start(TWO_FILES, &[("a.yaml", &dup), ("b.yaml", &other)]).await;
    let twin = p.entity("component", "twin").await.unwrap();
    assert_eq!(twin["spec"]["owner"], "team-a", "the first definition wins");
    let problems = p.problems().await;
    assert_eq!(problems.len(), 2, "{problems:?}");
    let same_file = problem_for(&problems, "a.yaml");
    assert!(
        same_file["message"]
            .as_str()
            .unwrap()
            .contains("defined twice"),
        "{same_file}"
    );
    assert_eq!(same_file["line"], 10);
    let other_loc = problem_for(&problems, "b.yaml");
    assert!(
        other_loc["message"]
            .as_str()
            .unwrap()
            .contains("already defined by location file:a.yaml"),
        "{other_loc}"
    );
}

#[tokio::test]
async fn a_ten_megabyte_file_is_refused_by_name() {
    let p = two_files().await;
    let mut big = component("alpha", "team-a");
    big.push_str(
        &"# padding padding padding padding padding padding padding padding\n".repeat(160_000),
    );
    assert!(big.len() > 10_000_000);
    p.write("a.yaml", &big);
    p.refresh().await;
    let problems = p.problems().await;
    let pr = problem_for(&problems, "a.yaml");
    let msg = pr["message"].as_str().unwrap();
    assert!(
        msg.contains("a.yaml")
            && msg.contains("over the limit of 8388608 bytes")
            && msg.contains("max_file_bytes"),
        "{msg}"
    );
    assert!(
        p.entity("component", "alpha").await.is_some(),
        "stored entities survive"
    );
    assert!(p.entity("component", "beta").await.is_some());
}

#[tokio::test]
async fn urls_that_404_or_hang_keep_what_they_gave() {
    let remote = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.path().join("svc.yaml"),
        component("remote", "team-a"),
    )
    .unwrap();
    let server = FileServer::start(remote.path()).await;
    let config = format!(
        "[catalog]\nfetch_timeout = \"300ms\"\nallowed_origins = [\"http://{}\"]\n[[catalog.locations]]\ntype = \"url\"\ntarget = \"{}\"\n[[catalog.locations]]\ntype = \"url\"\ntarget = \"{}\"\n[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        server.addr,
        server.url("svc.yaml"),
        server.url("hang.yaml"),
    );
    let p = Portal::start(&config, &[("a.yaml", &group("team-a"))]).await;
    assert!(p.entity("component", "remote").await.is_some());
    let problems = p.problems().await;
    let hang = problem_for(&problems, "hang.yaml");
    assert!(
        hang["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 300ms"),
        "{hang}"
    );

    std::fs::remove_file(server.root.join("svc.yaml")).unwrap();
    p.refresh().await;
    let problems = p.problems().await;
    let gone = problem_for(&problems, "svc.yaml");
    assert!(
        gone["message"].as_str().unwrap().contains("HTTP 404"),
        "{gone}"
    );
    assert!(
        p.entity("component", "remote").await.is_some(),
        "a failing URL keeps its last good entities"
    );
    assert!(p.entity("group", "team-a").await.is_some());
}

#[tokio::test]
async fn location_cycles_are_reported_and_broken() {
    let a = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: a\nspec:\n  target: ./b.yaml\n---\n".to_string() + &group("team-a");
    let b = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: b\nspec:\n  targets: [./a.yaml, ./c.yaml]\n".to_string();
    let c = component("gamma", "team-a");
    let p = Portal::start(
        "[[catalog.locations]]\ntarget = \"a.yaml\"\n",
        &[("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c)],
    )
    .await;
    let problems = p.problems().await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = problems[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Location cycle: file:")
            && msg.contains("a.yaml -> file:")
            && msg.ends_with("not read again"),
        "{msg}"
    );
    assert!(p.entity("component", "gamma").await.is_some());
    assert!(p.entity("location", "b").await.is_some());
}

#[tokio::test]
async fn removed_entities_disappear_and_substitutions_stay_inside() {
    let p = two_files().await;
    p.write("a.yaml", &group("team-a"));
    p.write("b.yaml", &format!(
        "{}  definition:\n    $text: ../../../etc/passwd\n",
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: sneaky\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n"
    ));
    p.refresh().await;
    assert!(
        p.entity("component", "alpha").await.is_none(),
        "removed from its file, gone from the catalog"
    );
    assert!(p.entity("component", "beta").await.is_none());
    assert!(p.entity("api", "sneaky").await.is_none());
    let problems = p.problems().await;
    let pr = problem_for(&problems, "b.yaml");
    assert_eq!(pr["field"], "spec.definition");
    assert!(
        pr["message"]
            .as_str()
            .unwrap()
            .contains("points outside the location's folder"),
        "{pr}"
    );
}
