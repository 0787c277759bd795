use serde_json::{json, Value};

use super::*;

fn role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn aggregating(name: &str, selectors: Value, rules: Value) -> Value {
    let mut r = role(name, json!({}), rules);
    r["aggregationRule"] = json!({ "clusterRoleSelectors": selectors });
    r
}

fn rule(verb: &str, resource: &str) -> Value {
    json!({"apiGroups": [""], "resources": [resource], "verbs": [verb]})
}

fn labels(pairs: &[(&'static str, &'static str)]) -> BTreeMap<&'static str, &'static str> {
    pairs.iter().copied().collect()
}

#[test]
fn rules_come_in_name_order_once_each() {
    let roles = [
        role(
            "b-source",
            json!({"agg": "true"}),
            json!([rule("get", "pods"), rule("list", "pods")]),
        ),
        role(
            "a-source",
            json!({"agg": "true"}),
            json!([rule("get", "pods")]),
        ),
        role(
            "other",
            json!({"agg": "false"}),
            json!([rule("delete", "pods")]),
        ),
        aggregating(
            "target",
            json!([{"matchLabels": {"agg": "true"}}]),
            json!(null),
        ),
    ];
    let out = aggregate(&roles);
    assert!(out.errors.is_empty());
    assert_eq!(
        out.changed,
        [AggregatedRole {
            name: "target".into(),
            rules: vec![rule("get", "pods"), rule("list", "pods")],
        }]
    );
}

#[test]
fn selectors_contribute_in_their_order_and_the_role_never_selects_itself() {
    let roles = [
        role("z", json!({"second": "1"}), json!([rule("watch", "pods")])),
        role("a", json!({"first": "1"}), json!([rule("get", "pods")])),
        // Matches its own selector: its own rules are not folded back in.
        {
            let mut r = aggregating(
                "self",
                json!([{"matchLabels": {"second": "1"}}, {"matchLabels": {"first": "1"}}]),
                json!([]),
            );
            r["metadata"]["labels"] = json!({"first": "1"});
            r
        },
    ];
    let out = aggregate(&roles);
    assert_eq!(out.changed.len(), 1);
    assert_eq!(
        out.changed[0].rules,
        [rule("watch", "pods"), rule("get", "pods")]
    );
}

#[test]
fn semantically_equal_rules_are_not_changes() {
    let roles = [
        role(
            "src",
            json!({"agg": "true"}),
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": []}]),
        ),
        aggregating(
            "target",
            json!([{"matchLabels": {"agg": "true"}}]),
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "nonResourceURLs": null}]),
        ),
    ];
    assert_eq!(aggregate(&roles), Aggregation::default());
    // Normal form drops empty fields and keeps list order.
    assert_eq!(
        normal_rule(&json!({"verbs": ["list", "get"], "resourceNames": [], "x": 1})),
        json!({"verbs": ["list", "get"]})
    );
    assert!(!rule_equal(
        &json!({"verbs": ["list", "get"]}),
        &json!({"verbs": ["get", "list"]})
    ));
}

#[test]
fn nothing_selected_empties_the_rules() {
    let roles = [aggregating(
        "target",
        json!([{"matchLabels": {"none": "x"}}]),
        json!([rule("get", "pods")]),
    )];
    assert_eq!(aggregate(&roles).changed[0].rules, Vec::<Value>::new());
    // A role without aggregationRule is never touched.
    assert_eq!(
        aggregated_rules(&role("plain", json!({}), json!([])), &roles),
        Ok(None)
    );
}

#[test]
fn match_expressions_follow_kubernetes_operators() {
    let sel = |v: Value| LabelSelector::from_value(&v).unwrap();
    let s = sel(json!({"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "env", "operator": "NotIn", "values": ["prod"]},
        {"key": "team", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist"}]}));
    assert!(s.matches(&labels(&[("tier", "a"), ("team", "x")])));
    assert!(s.matches(&labels(&[("tier", "b"), ("team", "x"), ("env", "dev")])));
    assert!(!s.matches(&labels(&[("tier", "c"), ("team", "x")])));
    assert!(!s.matches(&labels(&[("tier", "a"), ("team", "x"), ("env", "prod")])));
    assert!(!s.matches(&labels(&[("tier", "a")])));
    assert!(!s.matches(&labels(&[("tier", "a"), ("team", "x"), ("legacy", "")])));
    // matchLabels and matchExpressions are ANDed; an empty selector selects everything.
    let both = sel(
        json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}),
    );
    assert!(both.matches(&labels(&[("a", "1"), ("b", "")])));
    assert!(!both.matches(&labels(&[("a", "1")])));
    assert!(sel(json!({})).matches(&labels(&[])));
}

#[test]
fn invalid_selectors_are_reported_and_the_role_left_alone() {
    let bad = [
        json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        json!({"matchExpressions": [{"operator": "Exists"}]}),
        json!({"matchLabels": {"a": 1}}),
        json!("a=b"),
    ];
    for selector in bad {
        let roles = [
            aggregating(
                "t",
                json!([{}, selector.clone()]),
                json!([rule("get", "x")]),
            ),
            role("s", json!({}), json!([rule("list", "y")])),
        ];
        let out = aggregate(&roles);
        assert!(out.changed.is_empty(), "{selector}");
        assert!(
            matches!(&out.errors[..], [AggregationError::InvalidSelector { role, index: 1, .. }] if role == "t"),
            "{selector}: {:?}",
            out.errors
        );
    }
    let e = LabelSelector::from_value(
        &json!({"matchExpressions": [{"key": "a", "operator": "Equals"}]}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        r#"matchExpressions[0]: "Equals" is not a valid label selector operator"#
    );
}

#[test]
fn bootstrap_admin_edit_view_chain() {
    // view is aggregate-to-edit, edit is aggregate-to-admin: edit holds view's rules, admin both.
    let roles = crate::bootstrap::cluster_roles();
    let get = |n: &str| {
        roles
            .iter()
            .find(|r| r["metadata"]["name"] == n)
            .unwrap()
            .clone()
    };
    let rules = |n: &str| get(n)["rules"].as_array().unwrap().clone();
    for r in rules("view") {
        assert!(rules("edit").iter().any(|e| rule_equal(e, &r)));
    }
    for r in rules("edit") {
        assert!(rules("admin").iter().any(|e| rule_equal(e, &r)));
    }
    // The loaded policy is already aggregated: a pass changes nothing.
    assert_eq!(aggregate(&roles), Aggregation::default());
}

#[test]
fn chains_settle_in_one_call() {
    let mut mid = aggregating("mid", json!([{"matchLabels": {"a": "1"}}]), json!(null));
    mid["metadata"]["labels"] = json!({"b": "1"});
    let roles = [
        role("src", json!({"a": "1"}), json!([rule("get", "pods")])),
        mid,
        aggregating("top", json!([{"matchLabels": {"b": "1"}}]), json!(null)),
    ];
    // One round sees mid's old (empty) rules: top stays empty until the next.
    let once = aggregate(&roles);
    assert_eq!(once.changed.len(), 1);
    assert_eq!(once.changed[0].name, "mid");
    let settled = aggregate_settled(&roles);
    let got: Vec<(&str, &[Value])> = settled
        .changed
        .iter()
        .map(|c| (c.name.as_str(), c.rules.as_slice()))
        .collect();
    let want = [rule("get", "pods")];
    assert_eq!(got, [("mid", &want[..]), ("top", &want[..])]);
}
