//! Pre-compiled policy rules and the matching of one rule against a request, with the semantics
//! of Kubernetes' `RuleAllows` (plugin/pkg/auth/authorizer/rbac): wildcards are resolved once at
//! compile time, the request's verb is turned into a bit once per decision, and matching
//! allocates nothing.
//!
//! The semantics, all byte-exact and case-sensitive:
//! - verbs and apiGroups: `*` or an equal entry;
//! - resources: `*` (every resource and every subresource), `resource` (that resource, no
//!   subresource), `resource/sub` (exactly that subresource), `*/sub` (that subresource of any
//!   resource); nothing else is a wildcard, so `pods/*` matches only a subresource named `*`;
//! - resourceNames: empty allows any name; otherwise the request's name must be listed, so a
//!   request without a name (create, list, watch, deletecollection) is never allowed;
//! - nonResourceURLs: `*`, an equal path, or a prefix when the entry ends in `*` (every trailing
//!   `*` trimmed). A non-resource rule never allows a resource request, nor the reverse.

use crate::objects::PolicyRule;
use kgate_core::Attributes;

/// The verbs Kubernetes' API and RBAC's own checks use, as bits; any other verb is matched by
/// string. `ALL` is set for a rule listing `*`.
mod verb_bits {
    pub(super) const ALL: u32 = 1 << 31;

    pub(super) fn of(verb: &str) -> u32 {
        let index = match verb {
            "get" => 0,
            "list" => 1,
            "watch" => 2,
            "create" => 3,
            "update" => 4,
            "patch" => 5,
            "delete" => 6,
            "deletecollection" => 7,
            "impersonate" => 8,
            "bind" => 9,
            "escalate" => 10,
            "use" => 11,
            "approve" => 12,
            "sign" => 13,
            "proxy" => 14,
            "post" => 15,
            "put" => 16,
            "head" => 17,
            "options" => 18,
            _ => return 0,
        };
        1 << index
    }
}

/// A request ready to be matched against many rules: its verb already turned into a bit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) attributes: &'a Attributes,
    verb_bit: u32,
}

impl<'a> Request<'a> {
    pub(crate) fn new(attributes: &'a Attributes) -> Self {
        Self {
            attributes,
            verb_bit: verb_bits::of(&attributes.verb),
        }
    }
}

/// A rule's verbs: known verbs as bits, others as strings.
#[derive(Debug, Clone, Default)]
struct VerbSet {
    bits: u32,
    others: Vec<String>,
}

impl VerbSet {
    fn new(verbs: &[String]) -> Self {
        let mut set = Self::default();
        for verb in verbs {
            if verb == "*" {
                set.bits |= verb_bits::ALL;
                continue;
            }
            match verb_bits::of(verb) {
                0 => set.others.push(verb.clone()),
                bit => set.bits |= bit,
            }
        }
        set
    }

    fn matches(&self, request: &Request<'_>) -> bool {
        if self.bits & (verb_bits::ALL | request.verb_bit) != 0 {
            return true;
        }
        request.verb_bit == 0
            && self
                .others
                .iter()
                .any(|v| same(v, &request.attributes.verb))
    }
}

/// A list of names where `*` anywhere means every name.
#[derive(Debug, Clone)]
struct NameSet {
    all: bool,
    names: Vec<String>,
}

impl NameSet {
    fn new(names: &[String]) -> Self {
        let all = names.iter().any(|n| n == "*");
        Self {
            all,
            // With `*` the list is never read.
            names: if all { Vec::new() } else { names.to_vec() },
        }
    }

    fn matches(&self, requested: &str) -> bool {
        self.all || self.names.iter().any(|n| same(n, requested))
    }
}

/// One entry of `nonResourceURLs`.
#[derive(Debug, Clone)]
enum UrlPattern {
    /// `*`, or only stars: every path.
    All,
    Exact(String),
    /// A trailing `*` (all of them trimmed, as Kubernetes does): paths starting with the rest.
    Prefix(String),
}

impl UrlPattern {
    fn new(url: &str) -> Self {
        match url.strip_suffix('*') {
            None => Self::Exact(url.to_owned()),
            Some(_) => match url.trim_end_matches('*') {
                "" => Self::All,
                prefix => Self::Prefix(prefix.to_owned()),
            },
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::All => true,
            Self::Exact(u) => same(u, path),
            Self::Prefix(prefix) => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|head| same_bytes(head, prefix.as_bytes())),
        }
    }
}

/// A [`PolicyRule`] ready to match, with the rule it came from (for the query APIs).
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    verbs: VerbSet,
    api_groups: NameSet,
    resources_all: bool,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<UrlPattern>,
    source: PolicyRule,
}

impl CompiledRule {
    pub(crate) fn compile(rule: &PolicyRule) -> Self {
        let resources_all = rule.resources.iter().any(|r| r == "*");
        Self {
            verbs: VerbSet::new(&rule.verbs),
            api_groups: NameSet::new(&rule.api_groups),
            resources_all,
            resources: if resources_all {
                Vec::new()
            } else {
                rule.resources.clone()
            },
            resource_names: rule.resource_names.clone(),
            non_resource_urls: rule
                .non_resource_urls
                .iter()
                .map(|u| UrlPattern::new(u))
                .collect(),
            source: rule.clone(),
        }
    }

    /// The rule as stored.
    pub(crate) fn source(&self) -> &PolicyRule {
        &self.source
    }

    /// Whether this rule allows the request.
    #[cfg(test)]
    pub(crate) fn allows(&self, a: &Attributes) -> bool {
        self.allows_request(&Request::new(a))
    }

    /// Whether this rule allows the request; the verb is checked first because it rejects most
    /// rules for the price of one AND.
    pub(crate) fn allows_request(&self, request: &Request<'_>) -> bool {
        if !self.verbs.matches(request) {
            return false;
        }
        let a = request.attributes;
        if a.resource_request {
            self.api_groups.matches(&a.api_group)
                && self.resource_matches(&a.resource, &a.subresource)
                && self.resource_name_matches(&a.name)
        } else {
            self.non_resource_urls.iter().any(|p| p.matches(&a.path))
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
                && rule.as_bytes().get(..2) == Some(b"*/")
                && same_bytes(&rule.as_bytes()[2..], subresource.as_bytes())
        })
    }

    /// An empty list allows any name; otherwise the name must be listed, so a request without a
    /// name (list, watch, create, deletecollection) is not allowed by a rule with names.
    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| same(n, name))
    }
}

/// `rule == resource` or `rule == resource + "/" + subresource`, without building the string.
fn combined_equals(rule: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return same(rule, resource);
    }
    let rule = rule.as_bytes();
    rule.len() == resource.len() + 1 + subresource.len()
        && rule.get(resource.len()) == Some(&b'/')
        && same_bytes(&rule[..resource.len()], resource.as_bytes())
        && same_bytes(&rule[resource.len() + 1..], subresource.as_bytes())
}

/// String equality. The strings RBAC compares (verbs, groups, resources, names) are short, and
/// for those a call into the C library's `memcmp`, which `==` makes, costs more than the
/// comparison: up to 16 bytes are compared here as at most two pairs of overlapping words.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[inline]
fn word4(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[inline]
fn word8(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
