//! ARCHITECTURE.md lists every dependency a workspace crate may have on
//! another (its "Dependency rules" block); `cargo metadata` says which ones
//! the manifests declare. An edge the document does not allow fails this
//! test, and so does a rule naming a crate or an edge that does not exist, so
//! the document stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Edges = BTreeMap<String, BTreeSet<String>>;

fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The rules: the lines `crate -> dep, dep` of the fenced `dependencies` block.
fn allowed(architecture: &str) -> Edges {
    let block = architecture
        .split("```dependencies\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```dependencies block");
    let mut edges = Edges::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let (from, to) = line
            .split_once("->")
            .unwrap_or_else(|| panic!("rule {line:?} is not `crate -> deps`"));
        let deps = to
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from);
        edges
            .entry(from.trim().to_string())
            .or_default()
            .extend(deps);
    }
    edges
}

/// The workspace's own dependency edges (normal and build; dev-dependencies
/// are test support and not part of the layering).
fn declared() -> Edges {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut edges = Edges::new();
    for package in packages {
        let name = package["name"].as_str().unwrap().to_string();
        let deps = edges.entry(name).or_default();
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if members.contains(dep_name) && dep["kind"].as_str() != Some("dev") {
                deps.insert(dep_name.to_string());
            }
        }
    }
    edges
}

#[test]
fn every_dependency_between_crates_is_one_architecture_md_allows() {
    let architecture = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    let rules = allowed(&architecture);
    let actual = declared();
    let mut problems = Vec::new();
    for (from, deps) in &actual {
        let allowed = rules.get(from).cloned().unwrap_or_default();
        for dep in deps.difference(&allowed) {
            problems.push(format!("{from} -> {dep} is not allowed by ARCHITECTURE.md"));
        }
    }
    for (from, deps) in &rules {
        let Some(real) = actual.get(from) else {
            problems.push(format!(
                "ARCHITECTURE.md names a crate {from} that does not exist"
            ));
            continue;
        };
        for dep in deps.difference(real) {
            problems.push(format!(
                "ARCHITECTURE.md allows {from} -> {dep}, which no manifest declares"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_rules_are_read_line_by_line() {
    let rules = allowed("x\n```dependencies\na -> b, c\n\nb ->\n```\n");
    assert_eq!(
        rules["a"],
        BTreeSet::from(["b".to_string(), "c".to_string()])
    );
    assert!(rules["b"].is_empty());
}
