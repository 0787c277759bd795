//! Pre-compiled policy rules and the matching of one rule against a request, with the semantics
//! of Kubernetes' `RuleAllows` (plugin/pkg/auth/authorizer/rbac): wildcards are resolved once at
//! compile time, and matching allocates nothing.

use crate::objects::PolicyRule;
use kgate_core::Attributes;

/// A list of names where `*` anywhere means every name.
#[derive(Debug, Clone)]
struct NameSet {
    all: bool,
    names: Vec<String>,
}

impl NameSet {
    fn new(names: &[String]) -> Self {
        Self {
            all: names.iter().any(|n| n == "*"),
            names: names.to_vec(),
        }
    }

    fn matches(&self, requested: &str) -> bool {
        self.all || self.names.iter().any(|n| n == requested)
    }
}

/// One entry of `nonResourceURLs`.
#[derive(Debug, Clone)]
enum UrlPattern {
    /// `*`: every path.
    All,
    Exact(String),
    /// A trailing `*` (all of them trimmed, as Kubernetes does): paths starting with the rest.
    Prefix(String),
}

/// A [`PolicyRule`] ready to match.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    verbs: NameSet,
    api_groups: NameSet,
    resources_all: bool,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<UrlPattern>,
}

impl CompiledRule {
    pub(crate) fn compile(rule: &PolicyRule) -> Self {
        let non_resource_urls = rule
            .non_resource_urls
            .iter()
            .map(|u| {
                if u == "*" {
                    UrlPattern::All
                } else if u.ends_with('*') {
                    UrlPattern::Prefix(u.trim_end_matches('*').to_owned())
                } else {
                    UrlPattern::Exact(u.clone())
                }
            })
            .collect();
        Self {
            verbs: NameSet::new(&rule.verbs),
            api_groups: NameSet::new(&rule.api_groups),
            resources_all: rule.resources.iter().any(|r| r == "*"),
            resources: rule.resources.clone(),
            resource_names: rule.resource_names.clone(),
            non_resource_urls,
        }
    }

    /// Whether this rule allows the request.
    pub(crate) fn allows(&self, a: &Attributes) -> bool {
        if !self.verbs.matches(&a.verb) {
            return false;
        }
        if a.resource_request {
            self.api_groups.matches(&a.api_group)
                && self.resource_matches(&a.resource, &a.subresource)
                && self.resource_name_matches(&a.name)
        } else {
            self.non_resource_url_matches(&a.path)
        }
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        if self.resources_all {
            return true;
        }
        self.resources.iter().any(|rule| {
            if combined_equals(rule, resource, subresource) {
                return true;
            }
            // `*/scale` matches the scale subresource of any resource; a plain `pods` never
            // matches a subresource of pods.
            !subresource.is_empty()
                && rule.len() == subresource.len() + 2
                && rule.starts_with("*/")
                && rule.ends_with(subresource)
        })
    }

    /// An empty list allows any name; otherwise the name must be listed, so a request without a
    /// name (list, watch, create, deletecollection) is not allowed by a rule with names.
    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|p| match p {
            UrlPattern::All => true,
            UrlPattern::Exact(u) => u == path,
            UrlPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        })
    }
}

/// `rule == resource` or `rule == resource + "/" + subresource`, without building the string.
fn combined_equals(rule: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return rule == resource;
    }
    rule.len() == resource.len() + 1 + subresource.len()
        && rule.starts_with(resource)
        && rule.as_bytes().get(resource.len()) == Some(&b'/')
        && rule.ends_with(subresource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_core::UserInfo;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> CompiledRule {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        CompiledRule::compile(&PolicyRule {
            verbs: s(verbs),
            api_groups: s(groups),
            resources: s(resources),
            resource_names: s(names),
            non_resource_urls: Vec::new(),
        })
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        let mut a = Attributes::resource(UserInfo::new("u"), verb, group, resource, "ns");
        a.subresource = sub.to_owned();
        a.name = name.to_owned();
        a
    }

    #[test]
    fn resource_matching_table() {
        // (rule verbs, groups, resources, names) vs (verb, group, resource, subresource, name)
        // (rule verbs, groups, resources, names), request, allowed
        type Case = (Names, Names, Names, Names, [&'static str; 5], bool);
        type Names = &'static [&'static str];
        let cases: &[Case] = &[
            (
                &["get"],
                &[""],
                &["pods"],
                &[],
                ["get", "", "pods", "", "p"],
                true,
            ),
            (
                &["get"],
                &[""],
                &["pods"],
                &[],
                ["list", "", "pods", "", ""],
                false,
            ),
            (
                &["*"],
                &[""],
                &["pods"],
                &[],
                ["delete", "", "pods", "", "p"],
                true,
            ),
            (
                &["get"],
                &["*"],
                &["pods"],
                &[],
                ["get", "x.io", "pods", "", ""],
                true,
            ),
            (
                &["get"],
                &[""],
                &["pods"],
                &[],
                ["get", "apps", "pods", "", ""],
                false,
            ),
            (
                &["get"],
                &[""],
                &["*"],
                &[],
                ["get", "", "pods", "log", ""],
                true,
            ),
            (
                &["get"],
                &[""],
                &["pods"],
                &[],
                ["get", "", "pods", "status", ""],
                false,
            ),
            (
                &["get"],
                &[""],
                &["pods/log"],
                &[],
                ["get", "", "pods", "log", "p"],
                true,
            ),
            (
                &["get"],
                &[""],
                &["pods/log"],
                &[],
                ["get", "", "pods", "", "p"],
                false,
            ),
            (
                &["get"],
                &[""],
                &["pods/log"],
                &[],
                ["get", "", "pods", "exec", "p"],
                false,
            ),
            (
                &["get"],
                &["apps"],
                &["*/scale"],
                &[],
                ["get", "apps", "deployments", "scale", ""],
                true,
            ),
            (
                &["get"],
                &["apps"],
                &["*/scale"],
                &[],
                ["get", "apps", "deployments", "", ""],
                false,
            ),
            (
                &["get"],
                &["apps"],
                &["*/scale"],
                &[],
                ["get", "apps", "deployments", "status", ""],
                false,
            ),
            (
                &["get"],
                &[""],
                &["pods"],
                &["web"],
                ["get", "", "pods", "", "web"],
                true,
            ),
            (
                &["get"],
                &[""],
                &["pods"],
                &["web"],
                ["get", "", "pods", "", "db"],
                false,
            ),
            (
                &["list"],
                &[""],
                &["pods"],
                &["web"],
                ["list", "", "pods", "", ""],
                false,
            ),
            (
                &["create"],
                &[""],
                &["pods"],
                &["web"],
                ["create", "", "pods", "", ""],
                false,
            ),
            (&[], &["*"], &["*"], &[], ["get", "", "pods", "", ""], false),
            (
                &["get"],
                &[],
                &["pods"],
                &[],
                ["get", "", "pods", "", ""],
                false,
            ),
            (
                &["get"],
                &[""],
                &["podsx"],
                &[],
                ["get", "", "pods", "x", ""],
                false,
            ),
        ];
        for (verbs, groups, resources, names, [v, g, r, s, n], want) in cases {
            let got = rule(verbs, groups, resources, names).allows(&req(v, g, r, s, n));
            assert_eq!(
                got, *want,
                "rule {verbs:?} {groups:?} {resources:?} {names:?} vs {v} {g} {r}/{s} {n}"
            );
        }
    }

    #[test]
    fn non_resource_urls() {
        let r = CompiledRule::compile(&PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into(), "/apis/*".into(), "/logs**".into()],
            ..PolicyRule::default()
        });
        let u = || UserInfo::new("u");
        for (verb, path, want) in [
            ("get", "/healthz", true),
            ("get", "/healthz/etcd", false),
            ("post", "/healthz", false),
            ("get", "/apis/apps", true),
            ("get", "/apis/", true),
            ("get", "/apis", false),
            ("get", "/logs/x", true),
            ("get", "/logs", true),
        ] {
            assert_eq!(
                r.allows(&Attributes::non_resource(u(), verb, path)),
                want,
                "{verb} {path}"
            );
        }
        let all = CompiledRule::compile(&PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..PolicyRule::default()
        });
        assert!(all.allows(&Attributes::non_resource(u(), "get", "/anything")));
        // A non-resource rule never allows a resource request.
        assert!(!all.allows(&req("get", "", "pods", "", "")));
    }
}
