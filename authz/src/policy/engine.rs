//! The casbin side: the model (kgate's default or the file's), checked against what kgate
//! supplies and decides, and one casbin enforcer per `p` line.
//!
//! Why one enforcer per line: a decision must name the line that made it, and casbin's
//! `enforce` answers only yes or no (its `explain` feature needs its `logging` feature, which
//! starts a logging thread per enforcer). An enforcer holding one line answers "does this line
//! match", so kgate keeps the order (deny lines before RBAC, allow lines after) and casbin keeps
//! the matching. The price is paid at load, not per request: about 30 µs and 18 KB per line
//! (each enforcer has its own rhai engine); one casbin evaluation costs about 4 µs, which is why
//! `Prefilter` (in the parent module) keeps most requests from reaching casbin at all.
//!
//! casbin's constructors are `async` only in name for in-memory models and adapters, so they
//! are polled once here instead of needing a runtime.

use super::pattern;
use casbin::function_map::OperatorFunction;
use casbin::prelude::{CoreApi, DefaultModel, Enforcer, Model, NullAdapter};
use casbin::rhai::{Array, Dynamic};
use casbin::{EffectKind, Effector, EffectorStream};
use kgate_core::Attributes;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

/// The model kgate uses when the file has none. The README documents it.
pub const DEFAULT_MODEL: &str = r#"[request_definition]
r = user, groups, verb, apiGroup, resource, namespace, name, path

[policy_definition]
p = eft, user, groups, verb, apiGroup, resource, namespace, name, path

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = kgateMatch(r.user, p.user) && kgateMatchAny(r.groups, p.groups) \
  && kgateMatch(r.verb, p.verb) && kgateMatch(r.apiGroup, p.apiGroup) \
  && kgateMatch(r.resource, p.resource) && kgateMatch(r.namespace, p.namespace) \
  && kgateMatch(r.name, p.name) && kgateMatch(r.path, p.path)
"#;

/// What kgate supplies for every request, in this order (`r.groups` is a list).
const REQUEST: [&str; 8] = [
    "user",
    "groups",
    "verb",
    "apiGroup",
    "resource",
    "namespace",
    "name",
    "path",
];

/// casbin's deny-overrides effect: the one that describes kgate's layers (a deny line beats
/// everything; an allow line allows what nothing denied).
const EFFECT: &str = "some(where (p_eft == allow)) && !some(where (p_eft == deny))";

/// A checked model, ready to hold lines.
pub(crate) struct CheckedModel {
    model: DefaultModel,
    /// The `p` columns, without the `p_` casbin adds (`eft`, `user`, ...).
    pub columns: Vec<String>,
    /// `g` sections (role definitions) and their arity.
    pub roles: Vec<(String, usize)>,
    /// The matcher is kgate's default, so the columns mean what the README says and the
    /// pre-filter may read them.
    pub is_default: bool,
}

/// A casbin future on in-memory data completes on its first poll; one that does not would
/// wait for I/O this crate never asked for.
fn now<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err("casbin did not finish in memory".to_owned()),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect()
}

fn matcher_of(model: &DefaultModel) -> Option<&str> {
    Some(model.get_model().get("m")?.get("m")?.value.as_str())
}

/// Parses and checks a model.
pub(crate) fn check_model(text: &str) -> Result<CheckedModel, String> {
    let model = now(DefaultModel::from_str(text))?.map_err(|e| e.to_string())?;
    let sections = model.get_model();
    let only = |sec: &str| -> Result<&casbin::Assertion, String> {
        let name = match sec {
            "r" => "request_definition",
            "p" => "policy_definition",
            "e" => "policy_effect",
            _ => "matchers",
        };
        let missing = || format!("[{name}] `{sec} = ...` is missing");
        let map = sections.get(sec).ok_or_else(missing)?;
        if map.len() > 1 {
            return Err(format!(
                "[{name}] may only define `{sec}`, not `{sec}2` and further"
            ));
        }
        map.get(sec).ok_or_else(missing)
    };
    let r = only("r")?;
    let request: Vec<&str> = r.tokens.iter().map(|t| strip(t, "r_")).collect();
    if request != REQUEST {
        return Err(format!(
            "[request_definition] must be `r = {}` (what kgate supplies for each request), not `r = {}`",
            REQUEST.join(", "),
            request.join(", ")
        ));
    }
    let p = only("p")?;
    let columns: Vec<String> = p.tokens.iter().map(|t| strip(t, "p_").to_owned()).collect();
    if !columns.iter().any(|c| c == "eft") {
        return Err("[policy_definition] needs an `eft` column (deny or allow)".to_owned());
    }
    let e = only("e")?;
    if squash(&e.value) != squash(EFFECT) {
        return Err(format!(
            "[policy_effect] must be `e = {}`: kgate checks deny lines before RBAC and allow lines after it",
            EFFECT.replace("p_eft", "p.eft")
        ));
    }
    only("m")?;
    let roles = sections
        .get("g")
        .map(|map| {
            map.iter()
                .map(|(key, g)| (key.clone(), g.value.split(',').count()))
                .collect()
        })
        .unwrap_or_default();
    let default = now(DefaultModel::from_str(DEFAULT_MODEL))?.map_err(|e| e.to_string())?;
    let is_default = matcher_of(&model).map(squash) == matcher_of(&default).map(squash)
        && columns
            .iter()
            .map(String::as_str)
            .eq(["eft"].into_iter().chain(REQUEST));
    let checked = CheckedModel {
        model,
        columns,
        roles,
        is_default,
    };
    // A matcher that names an unknown function or column fails here, not on a request.
    let probe: Vec<String> = checked
        .columns
        .iter()
        .map(|c| if c == "eft" { "deny" } else { "*" }.to_owned())
        .collect();
    let enforcer = checked
        .enforcer(probe, &[])
        .map_err(|e| format!("the matcher cannot be compiled: {e}"))?;
    enforcer
        .enforce(request_of(&Attributes::default()))
        .map_err(|e| format!("the matcher cannot be evaluated: {e}"))?;
    Ok(checked)
}

fn strip<'a>(token: &'a str, prefix: &str) -> &'a str {
    token.strip_prefix(prefix).unwrap_or(token)
}

impl CheckedModel {
    /// An enforcer holding one `p` line (the fields after `p`) and every role line.
    pub fn enforcer(
        &self,
        rule: Vec<String>,
        roles: &[(String, Vec<String>)],
    ) -> Result<Enforcer, String> {
        let mut model = self.model.clone();
        model.add_policy("p", "p", rule);
        for (ptype, rule) in roles {
            model.add_policy("g", ptype, rule.clone());
        }
        let mut enforcer =
            now(Enforcer::new_raw(model, NullAdapter))?.map_err(|e| e.to_string())?;
        enforcer.add_function("kgateMatch", OperatorFunction::Arg2(pattern::kgate_match));
        enforcer.add_function(
            "kgateMatchAny",
            OperatorFunction::Arg2(pattern::kgate_match_any),
        );
        enforcer.add_function("kgateWeekday", OperatorFunction::Arg0(kgate_weekday));
        enforcer.set_effector(Box::new(LineMatched));
        enforcer.build_role_links().map_err(|e| e.to_string())?;
        Ok(enforcer)
    }
}

/// The request as casbin sees it, in [`REQUEST`] order. `resource` is `resource/subresource`
/// as RBAC writes it; a non-resource request has only a `path`, a resource request no `path`.
pub(crate) fn request_of(a: &Attributes) -> Vec<Dynamic> {
    let groups: Array = a.user.groups.iter().map(|g| g.as_str().into()).collect();
    let (api_group, resource, namespace, name, path) = if a.resource_request {
        (
            a.api_group.as_str().into(),
            a.resource_with_subresource().into(),
            a.namespace.as_str().into(),
            a.name.as_str().into(),
            Dynamic::from(""),
        )
    } else {
        let empty = || Dynamic::from("");
        (empty(), empty(), empty(), empty(), a.path.as_str().into())
    };
    vec![
        a.user.name.as_str().into(),
        Dynamic::from_array(groups),
        a.verb.as_str().into(),
        api_group,
        resource,
        namespace,
        name,
        path,
    ]
}

/// casbin `kgateWeekday()`: today in UTC, `Monday` to `Sunday` (for rules such as read-only
/// Fridays).
fn kgate_weekday() -> Dynamic {
    weekday(SystemTime::now()).into()
}

pub(crate) fn weekday(at: SystemTime) -> &'static str {
    // 1970-01-01 was a Thursday.
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    DAYS[(days % 7) as usize]
}

/// The effect of a one-line enforcer: "the line matched", whatever its `eft` (kgate knows the
/// line's effect; casbin only reports a match as Allow or Deny). Never panics, unlike casbin's
/// default effector on an effect expression it does not know.
struct LineMatched;

impl Effector for LineMatched {
    fn new_stream(&self, _expr: &str, _cap: usize) -> Box<dyn EffectorStream> {
        Box::new(Matched(false))
    }
}

struct Matched(bool);

impl EffectorStream for Matched {
    fn next(&self) -> bool {
        self.0
    }
    fn push_effect(&mut self, effect: EffectKind) -> bool {
        self.0 |= effect != EffectKind::Indeterminate;
        // The one line is evaluated; there is nothing further to push.
        true
    }
}
