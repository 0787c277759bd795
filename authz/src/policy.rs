//! The casbin policy layer: operator rules around RBAC. It owns the `AuthorizationPolicy` file
//! format (`file`), the pattern language of its columns (`pattern`), the casbin glue
//! (`engine`), and the two authorizers the chain puts around RBAC: [`PolicyAuthorizer::deny`]
//! first (before `system:masters` and RBAC) and [`PolicyAuthorizer::allow`] last.
//!
//! A [`Policy`] is parsed from text (the gateway reads and watches the file) and shared through a
//! [`PolicyHandle`], which swaps a whole new policy in atomically; a request sees either the old
//! policy or the new one, never a mix.
//!
//! Threat model: the file is trusted operator configuration, but a mistake in it must not open
//! the cluster: a file that does not parse is refused whole (the caller keeps the last good
//! policy), a deny line that cannot be evaluated denies (fails closed), and an allow line that
//! cannot be evaluated allows nothing. The request attributes come from the authenticated
//! pipeline; matching them allocates little and never panics.

mod engine;
mod file;
mod pattern;

pub use engine::DEFAULT_MODEL;
pub use file::{Location, API_VERSION, KIND};

use arc_swap::ArcSwap;
use casbin::prelude::{CoreApi, Enforcer};
use casbin::rhai::Dynamic;
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, Decision};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Why a policy file is refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not YAML, or not shaped like an `AuthorizationPolicy` (unknown or mistyped fields); the
    /// YAML error says where.
    #[error("not a valid AuthorizationPolicy document")]
    Yaml(#[source] serde_yaml::Error),
    /// The `apiVersion` or `kind` is not kgate's.
    #[error(
        "expected apiVersion {API_VERSION:?} and kind {KIND:?}, found {api_version:?} and {kind:?}"
    )]
    Kind { api_version: String, kind: String },
    /// casbin cannot read the model, or it does not fit what kgate supplies and decides.
    #[error("the model is invalid: {reason}")]
    Model { reason: String },
    /// A policy line is malformed.
    #[error("{location}: {reason}: \"{text}\"")]
    Line {
        location: Location,
        text: String,
        reason: String,
    },
}

/// Deny lines or allow lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Deny,
    Allow,
}

/// One `p` line, ready to match.
struct Line {
    location: Location,
    text: String,
    enforcer: Enforcer,
    prefilter: Option<Prefilter>,
}

/// The object columns of a line under the default model: verb, apiGroup, resource, namespace,
/// name, path. The default matcher ANDs them, so a request one of them does not match cannot
/// match the line and casbin is not asked; casbin evaluates the whole matcher (the user and
/// groups too) for the lines that remain. Most requests leave none.
struct Prefilter([String; 6]);

impl Prefilter {
    /// The default model's columns after `eft, user, groups`.
    const FIRST: usize = 3;

    fn new(rule: &[String]) -> Option<Self> {
        let columns = rule.get(Self::FIRST..)?;
        Some(Prefilter(columns.to_vec().try_into().ok()?))
    }

    /// Could the line match? The values are those `engine::request_of` gives casbin.
    fn admits(&self, a: &Attributes) -> bool {
        let [verb, api_group, resource, namespace, name, path] = &self.0;
        if !pattern::matches(verb, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return [api_group, resource, namespace, name]
                .iter()
                .all(|p| pattern::matches(p, ""))
                && pattern::matches(path, &a.path);
        }
        let resource_matches = if a.subresource.is_empty() {
            pattern::matches(resource, &a.resource)
        } else {
            pattern::matches(resource, &a.resource_with_subresource())
        };
        resource_matches
            && pattern::matches(api_group, &a.api_group)
            && pattern::matches(namespace, &a.namespace)
            && pattern::matches(name, &a.name)
            && pattern::matches(path, "")
    }
}

/// A parsed, checked policy: its deny lines and allow lines in file order.
pub struct Policy {
    origin: String,
    deny: Vec<Line>,
    allow: Vec<Line>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("origin", &self.origin)
            .field("deny_lines", &self.deny.len())
            .field("allow_lines", &self.allow.len())
            .finish()
    }
}

/// The first line that matched, or the first that could not be evaluated.
enum Outcome<'a> {
    Matched(&'a Line),
    Failed(&'a Line, casbin::Error),
    None,
}

impl Policy {
    /// Parses the text of an `AuthorizationPolicy`; `origin` names it in decisions (the file's
    /// path).
    pub fn parse(origin: impl Into<String>, text: &str) -> Result<Policy, PolicyError> {
        let raw = file::parse(text)?;
        let model = engine::check_model(raw.model.as_deref().unwrap_or(DEFAULT_MODEL))
            .map_err(|reason| PolicyError::Model { reason })?;
        let (policy_lines, role_lines): (Vec<_>, Vec<_>) =
            raw.lines.iter().partition(|l| l.fields[0] == "p");
        // Every `p` line's enforcer holds all the role lines.
        let roles = role_lines
            .into_iter()
            .map(|line| role_line(line, &model))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut deny, mut allow) = (Vec::new(), Vec::new());
        for line in policy_lines {
            match policy_line(line, &model, &roles)? {
                (Effect::Deny, line) => deny.push(line),
                (Effect::Allow, line) => allow.push(line),
            }
        }
        Ok(Policy {
            origin: origin.into(),
            deny,
            allow,
        })
    }

    /// What the policy was parsed from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How many deny lines it has.
    pub fn deny_lines(&self) -> usize {
        self.deny.len()
    }

    /// How many allow lines it has.
    pub fn allow_lines(&self) -> usize {
        self.allow.len()
    }

    /// The deny layer's answer: Deny, naming the first deny line that matches, else NoOpinion.
    pub fn deny_decision(&self, a: &Attributes) -> Decision {
        match first_match(&self.deny, a) {
            Outcome::Matched(line) => Decision::deny(format!(
                "policy: denied by {} of {}: \"{}\"",
                line.location, self.origin, line.text
            )),
            // Fail closed: this line might have denied the request.
            Outcome::Failed(line, error) => Decision::deny(format!(
                "policy: {} of {} cannot be evaluated, so it denies: {error}",
                line.location, self.origin
            )),
            Outcome::None => Decision::no_opinion(""),
        }
    }

    /// The allow layer's answer: Allow, naming the first allow line that matches, else
    /// NoOpinion.
    pub fn allow_decision(&self, a: &Attributes) -> Decision {
        match first_match(&self.allow, a) {
            Outcome::Matched(line) => Decision::allow(format!(
                "policy: allowed by {} of {}: \"{}\"",
                line.location, self.origin, line.text
            )),
            Outcome::Failed(line, error) => Decision::no_opinion(format!(
                "policy: {} of {} cannot be evaluated: {error}",
                line.location, self.origin
            )),
            Outcome::None => Decision::no_opinion(""),
        }
    }
}

fn line_error(line: &file::RawLine, reason: String) -> PolicyError {
    PolicyError::Line {
        location: line.location,
        text: line.text.clone(),
        reason,
    }
}

/// A `g` line: its section and its fields, checked against the model's role definitions.
fn role_line(
    line: &file::RawLine,
    model: &engine::CheckedModel,
) -> Result<(String, Vec<String>), PolicyError> {
    let section = &line.fields[0];
    let Some(&(_, arity)) = model.roles.iter().find(|(key, _)| key == section) else {
        let defined: String = model.roles.iter().map(|(k, _)| format!(", {k}")).collect();
        return Err(line_error(
            line,
            format!("unknown section {section:?} (the model defines p{defined})"),
        ));
    };
    let fields = &line.fields[1..];
    if fields.len() != arity {
        return Err(line_error(
            line,
            format!(
                "{} fields after {section}, the model's role definition has {arity}",
                fields.len()
            ),
        ));
    }
    Ok((section.clone(), fields.to_vec()))
}

/// A `p` line: checked, with its effect and its enforcer.
fn policy_line(
    line: &file::RawLine,
    model: &engine::CheckedModel,
    roles: &[(String, Vec<String>)],
) -> Result<(Effect, Line), PolicyError> {
    let rule = &line.fields[1..];
    if rule.len() != model.columns.len() {
        return Err(line_error(
            line,
            format!(
                "{} fields after p, the model's policy_definition has {} ({})",
                rule.len(),
                model.columns.len(),
                model.columns.join(", ")
            ),
        ));
    }
    let columns = || model.columns.iter().zip(rule);
    let effect = match columns()
        .find(|(name, _)| *name == "eft")
        .map(|(_, v)| v.as_str())
    {
        Some("deny") => Effect::Deny,
        Some("allow") => Effect::Allow,
        other => {
            return Err(line_error(
                line,
                format!(
                    "the effect is {:?}; it must be deny or allow",
                    other.unwrap_or_default()
                ),
            ))
        }
    };
    // Under the default model every other column is a kgate pattern; a custom model's columns
    // mean what its matcher makes of them.
    let prefilter = if model.is_default {
        for (name, value) in columns().filter(|(name, _)| *name != "eft") {
            pattern::check(value)
                .map_err(|reason| line_error(line, format!("{name}: {reason}")))?;
        }
        Prefilter::new(rule)
    } else {
        None
    };
    let enforcer = model
        .enforcer(rule.to_vec(), roles)
        .map_err(|reason| line_error(line, reason))?;
    let checked = Line {
        location: line.location,
        text: line.text.clone(),
        enforcer,
        prefilter,
    };
    Ok((effect, checked))
}

fn first_match<'a>(lines: &'a [Line], a: &Attributes) -> Outcome<'a> {
    // Built on the first candidate line only: most requests match no line's verb and resource.
    let mut request: Option<Vec<Dynamic>> = None;
    for line in lines
        .iter()
        .filter(|l| l.prefilter.as_ref().is_none_or(|p| p.admits(a)))
    {
        let request = request.get_or_insert_with(|| engine::request_of(a));
        match line.enforcer.enforce(request.clone()) {
            Ok(true) => return Outcome::Matched(line),
            Ok(false) => {}
            Err(error) => return Outcome::Failed(line, error),
        }
    }
    Outcome::None
}

/// The current policy, shared by both layers and replaced whole on reload.
#[derive(Clone)]
pub struct PolicyHandle {
    current: Arc<ArcSwap<Policy>>,
}

impl fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PolicyHandle")
            .field(&*self.current.load())
            .finish()
    }
}

impl PolicyHandle {
    pub fn new(policy: Policy) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(policy)),
        }
    }

    /// Swaps `policy` in; requests already deciding finish on the old one.
    pub fn replace(&self, policy: Policy) {
        self.current.store(Arc::new(policy));
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }
}

/// One layer of the policy as a chain authorizer.
#[derive(Debug, Clone)]
pub struct PolicyAuthorizer {
    handle: PolicyHandle,
    effect: Effect,
}

impl PolicyAuthorizer {
    /// The deny lines: the chain's first authorizer, so a deny beats even `system:masters`.
    pub fn deny(handle: PolicyHandle) -> Self {
        Self {
            handle,
            effect: Effect::Deny,
        }
    }

    /// The allow lines: the chain's last authorizer, asked only when RBAC had no opinion.
    pub fn allow(handle: PolicyHandle) -> Self {
        Self {
            handle,
            effect: Effect::Allow,
        }
    }
}

impl Authorizer for PolicyAuthorizer {
    fn name(&self) -> &'static str {
        match self.effect {
            Effect::Deny => "policy-deny",
            Effect::Allow => "policy-allow",
        }
    }

    fn authorize(&self, attributes: &Attributes) -> Decision {
        let policy = self.handle.current.load();
        match self.effect {
            Effect::Deny => policy.deny_decision(attributes),
            Effect::Allow => policy.allow_decision(attributes),
        }
    }
}

#[cfg(test)]
mod pattern_tests;
#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
