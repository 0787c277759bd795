//! No module of the API server or of its controllers imports a module that imports it (STYLE.md
//! habit 16; issue 15): the import graph of `src/apiserver` and `src/controllers`, read from
//! the source, has no cycle. An edge A → B is a path in A's non-test code that names B
//! (`use super::b`, `crate::apiserver::b::x`, `b::x` for a child `b`); an item re-exported by
//! a parent counts as the parent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`apiserver::write`) → its non-test source, comments removed.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.join("apiserver"), src.join("controllers")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let mut module: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(module.join("::"), code);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths that start at `crate`, `super` or `self` in `code`, each as its segments (a
/// `{a, b::c}` group gives one path per member).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':');
        if !starts_word || !is_ident(chars[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && is_ident(chars[j]) {
            j += 1;
        }
        let word: String = chars[i..j].iter().collect();
        let visibility = i >= 4 && chars[i - 4..i].iter().collect::<String>() == "pub(";
        if !matches!(word.as_str(), "crate" | "super" | "self") || visibility {
            i = j;
            continue;
        }
        let mut segments = vec![word];
        let mut k = j;
        loop {
            if chars.get(k) == Some(&':') && chars.get(k + 1) == Some(&':') {
                k += 2;
                if chars.get(k) == Some(&'{') {
                    let close = chars[k..].iter().position(|c| *c == '}').map(|p| k + p);
                    let inner: String = chars[k + 1..close.unwrap_or(k + 1)].iter().collect();
                    for member in inner.split(',') {
                        let first: String =
                            member.trim().chars().take_while(|c| is_ident(*c)).collect();
                        if !first.is_empty() {
                            let mut p = segments.clone();
                            p.push(first);
                            found.push(p);
                        }
                    }
                    segments.clear();
                    k = close.unwrap_or(k);
                    break;
                }
                let start = k;
                while k < chars.len() && is_ident(chars[k]) {
                    k += 1;
                }
                if start == k {
                    break;
                }
                segments.push(chars[start..k].iter().collect());
            } else {
                break;
            }
        }
        if !segments.is_empty() {
            found.push(segments);
        }
        i = k.max(j);
    }
    found
}

/// The longest module that `path`, read in `module`, names.
fn resolve(module: &str, path: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<&str> = module.split("::").collect();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &path[1..];
        }
        Some("self") => rest = &path[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut best = None;
    for n in 0..=rest.len() {
        let mut candidate: Vec<&str> = base.clone();
        candidate.extend(rest[..n].iter().map(String::as_str));
        let candidate = candidate.join("::");
        if known.contains(&candidate) {
            best = Some(candidate);
        }
    }
    best
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &modules {
        let mut targets = BTreeSet::new();
        for path in paths(code) {
            if let Some(target) = resolve(module, &path, &known) {
                targets.insert(target);
            }
        }
        // A child named without a prefix (`use request::Req`, `write::create(...)`).
        for child in known
            .iter()
            .filter_map(|k| k.strip_prefix(&format!("{module}::")))
        {
            if child.contains("::") {
                continue;
            }
            let needle = format!("{child}::");
            let named = code.match_indices(&needle).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| is_ident(c) || c == ':')
            });
            if named {
                targets.insert(format!("{module}::{child}"));
            }
        }
        targets.remove(module);
        graph.insert(module.clone(), targets);
    }
    graph
}

/// A cycle through `start`, if any.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().cloned().unwrap_or_default();
        for next in graph.get(&last).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_api_server_and_its_controllers_import_in_one_direction() {
    let graph = edges();
    // The graph is read, not empty: the router imports the handlers, a handler the leaves.
    assert!(graph["apiserver"].contains("apiserver::write"), "{graph:?}");
    assert!(
        graph["apiserver::write"].contains("apiserver::meta"),
        "{graph:?}"
    );
    assert!(graph["controllers::serviceaccounts"].contains("apiserver::registry"));
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn paths_are_read_as_rust_names_them() {
    let code = "use super::{codec::x, meta};\npub(super) fn f() { crate::apiserver::keys::k(); }";
    assert_eq!(
        paths(code),
        vec![
            vec!["super".to_owned(), "codec".to_owned()],
            vec!["super".to_owned(), "meta".to_owned()],
            vec![
                "crate".to_owned(),
                "apiserver".to_owned(),
                "keys".to_owned(),
                "k".to_owned()
            ],
        ]
    );
}
