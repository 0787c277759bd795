//! CEL expressions of the authentication configuration: compiled once when the configuration
//! loads, evaluated per token against `claims` (the token's payload) or, for
//! `userValidationRules`, against `user` (the mapped user, as kube's `authentication.k8s.io/v1`
//! `UserInfo`: `username`, `uid`, `groups`, `extra`).
//!
//! The environment is the CEL standard library with its macros (`has`, `all`, `exists`, `map`,
//! `filter`...), optional values (`claims.?groups.orValue([])`), regular expressions
//! (`matches`), and the strings and lists extensions (`split`, `lowerAscii`, `join`...), close to
//! kube-apiserver's. cel-rust has no type checker: the variables an expression may use are
//! checked when it compiles, the type of its result when it runs.
//!
//! Errors never carry the token's claim values (cel's own messages may print values, so they
//! are rewritten here): a claim's name, a type name or the configured expression only.

use crate::oidc::config::ConfigError;
use crate::oidc::mapping::ClaimsError;
use ::cel::objects::{Key, Map};
use ::cel::{Context, Env, ExecutionError, Program, Value};
use kgate_core::UserInfo;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The one environment every expression compiles and runs with.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Only fails on a name declared twice, which the fixed set below never does; an expression
    // calling a missing function then fails when it runs, with the function's name.
    let _ = env.add_extension(::cel::extensions::strings);
    let _ = env.add_extension(::cel::extensions::lists);
    Arc::new(env)
});

/// Which variable an expression sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `claims`: claim validation rules and claim mappings.
    Claims,
    /// `user`: user validation rules.
    User,
}

impl Scope {
    fn variable(self) -> &'static str {
        match self {
            Scope::Claims => "claims",
            Scope::User => "user",
        }
    }
}

/// One compiled expression, with the configuration field it comes from (for errors).
#[derive(Clone)]
pub(crate) struct Expr {
    field: String,
    source: String,
    program: Arc<Program>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("field", &self.field)
            .field("source", &self.source)
            .finish()
    }
}

impl Expr {
    /// Compiles `source`, the value of the configuration field `field`.
    pub(crate) fn compile(field: &str, source: &str, scope: Scope) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            field: field.to_owned(),
            reason,
        };
        let program = ENV
            .compile(source)
            .map_err(|e| invalid(format!("compilation failed: {e}")))?;
        // The other scope's variable is never bound: say so now rather than on every token.
        let other = match scope {
            Scope::Claims => Scope::User,
            Scope::User => Scope::Claims,
        };
        if program.references().has_variable(other.variable()) {
            return Err(invalid(format!(
                "compilation failed: undeclared reference to '{}' (only '{}' is available here)",
                other.variable(),
                scope.variable()
            )));
        }
        Ok(Self {
            field: field.to_owned(),
            source: source.to_owned(),
            program: Arc::new(program),
        })
    }

    /// The configuration field this expression comes from.
    pub(crate) fn field(&self) -> &str {
        &self.field
    }

    /// The expression as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression's text mentions `name` as a field of `claims`
    /// (`claims.name`, `claims.?name`, `claims['name']`).
    pub(crate) fn mentions_claim(&self, name: &str) -> bool {
        mentions_claim(&self.source, name)
    }

    /// Runs the expression in `ctx`.
    pub(crate) fn eval(&self, ctx: &Context<'_, '_>) -> Result<Value, ClaimsError> {
        self.program
            .execute(ctx)
            .map_err(|e| self.error(describe(&e)))
    }

    /// Runs the expression, which must yield a string.
    pub(crate) fn eval_string(&self, ctx: &Context<'_, '_>) -> Result<String, ClaimsError> {
        match self.eval(ctx)? {
            Value::String(s) => Ok(s.as_ref().clone()),
            other => Err(self.wrong_type(&other, "string")),
        }
    }

    /// Runs the expression, which must yield a bool.
    pub(crate) fn eval_bool(&self, ctx: &Context<'_, '_>) -> Result<bool, ClaimsError> {
        match self.eval(ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong_type(&other, "bool")),
        }
    }

    /// Runs the expression, which must yield a string (one item) or a list of strings.
    pub(crate) fn eval_string_list(
        &self,
        ctx: &Context<'_, '_>,
    ) -> Result<Vec<String>, ClaimsError> {
        match self.eval(ctx)? {
            Value::String(s) => Ok(vec![s.as_ref().clone()]),
            Value::List(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.as_ref().clone()),
                    other => Err(self.wrong_type(other, "string or list(string)")),
                })
                .collect(),
            other => Err(self.wrong_type(&other, "string or list(string)")),
        }
    }

    fn wrong_type(&self, got: &Value, want: &str) -> ClaimsError {
        self.error(format!(
            "expression must yield {want}, got {}",
            type_name(got)
        ))
    }

    fn error(&self, reason: String) -> ClaimsError {
        ClaimsError::Expression {
            field: self.field.clone(),
            reason,
        }
    }
}

/// A context with `claims` bound to the token's payload.
pub(crate) fn claims_context(claims: &serde_json::Value) -> Context<'static, 'static> {
    let mut ctx = Context::with_env(Arc::clone(&ENV));
    ctx.add_variable_from_value("claims", json_to_cel(claims));
    ctx
}

/// A context with `user` bound to the mapped user.
pub(crate) fn user_context(user: &UserInfo) -> Context<'static, 'static> {
    let extra: HashMap<Key, Value> = user
        .extra
        .iter()
        .map(|(k, v)| (Key::from(k.as_str()), strings(v)))
        .collect();
    let fields: HashMap<Key, Value> = HashMap::from([
        (Key::from("username"), Value::from(user.name.as_str())),
        (Key::from("uid"), Value::from(user.uid.as_str())),
        (Key::from("groups"), strings(&user.groups)),
        (
            Key::from("extra"),
            Value::Map(Map {
                map: Arc::new(extra),
            }),
        ),
    ]);
    let mut ctx = Context::with_env(Arc::clone(&ENV));
    ctx.add_variable_from_value(
        "user",
        Value::Map(Map {
            map: Arc::new(fields),
        }),
    );
    ctx
}

fn strings(items: &[String]) -> Value {
    Value::List(Arc::new(
        items.iter().map(|s| Value::from(s.as_str())).collect(),
    ))
}

/// JSON to CEL, as kube's unstructured claims: objects are maps, integral numbers `int`
/// (`uint` above `i64::MAX`), other numbers `double`.
pub(crate) fn json_to_cel(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(fields) => Value::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

/// A value's CEL type name, never the value.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Opaque(_) => "opaque (an optional? use .orValue())",
        Value::Struct(_) => "struct",
        Value::Null => "null",
    }
}

/// An evaluation error as text without the values cel's own messages print.
fn describe(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        ExecutionError::InvalidArgumentCount { .. } | ExecutionError::NoSuchOverload(_) => {
            e.to_string()
        }
        ExecutionError::UnexpectedType { got, want } => {
            format!("unexpected type: got '{got}', want '{want}'")
        }
        ExecutionError::UnsupportedTargetType { target } => {
            format!("invalid argument type: {}", type_name(target))
        }
        ExecutionError::NotSupportedAsMethod { method, target } => {
            format!("method '{method}' not supported on {}", type_name(target))
        }
        ExecutionError::UnsupportedKeyType(k) => {
            format!("unable to use a {} as a map key", type_name(k))
        }
        ExecutionError::MissingArgumentOrTarget => "missing argument or target".to_owned(),
        ExecutionError::ValuesNotComparable(a, b) => format!(
            "a {} can not be compared to a {}",
            type_name(a),
            type_name(b)
        ),
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => format!(
            "unsupported binary operator '{op}' on {} and {}",
            type_name(a),
            type_name(b)
        ),
        ExecutionError::UnsupportedIndex(i, v) => {
            format!("cannot use a {} to index a {}", type_name(i), type_name(v))
        }
        ExecutionError::FunctionError { function, .. } => {
            format!("error executing function '{function}'")
        }
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "remainder by zero".to_owned(),
        ExecutionError::Overflow(op, ..) => format!("overflow from operator '{op}'"),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        ExecutionError::DuplicateKey(_) => "repeated key in a map literal".to_owned(),
        _ => "evaluation failed".to_owned(),
    }
}

/// See [`Expr::mentions_claim`]: a textual scan, enough for kube's `email`/`email_verified`
/// rule (kube walks the checked AST).
fn mentions_claim(source: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut rest = source;
    while let Some(at) = rest.find("claims") {
        let before_ok = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = &rest[at + "claims".len()..];
        rest = after;
        if !before_ok {
            continue;
        }
        let after = after.trim_start();
        let field = if let Some(sel) = after.strip_prefix('.') {
            let sel = sel.trim_start();
            let sel = sel.strip_prefix('?').unwrap_or(sel).trim_start();
            let end = sel.find(|c: char| !is_ident(c)).unwrap_or(sel.len());
            &sel[..end]
        } else if let Some(idx) = after.strip_prefix('[') {
            let idx = idx.trim_start();
            let Some(quote) = idx.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let inner = &idx[1..];
            let end = inner.find(quote).unwrap_or(inner.len());
            &inner[..end]
        } else {
            continue;
        };
        if field == name {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(source: &str, claims: serde_json::Value) -> Result<Value, ClaimsError> {
        let expr = Expr::compile("f", source, Scope::Claims).unwrap();
        expr.eval(&claims_context(&claims))
    }

    #[test]
    fn kube_examples_evaluate() {
        let claims = json!({
            "sub": "u1", "email": "jane@example.com", "email_verified": true,
            "groups": ["a", "b"], "hd": "example.com", "exp": 1_700_086_400, "nbf": 1_700_000_000,
        });
        let cases: &[(&str, Value)] = &[
            ("claims.sub", Value::from("u1")),
            (
                "'oidc:' + claims.email",
                Value::from("oidc:jane@example.com"),
            ),
            ("claims.email_verified == true", Value::Bool(true)),
            ("claims.hd == 'example.com'", Value::Bool(true)),
            ("claims.exp - claims.nbf <= 86400", Value::Bool(true)),
            (
                "has(claims.email_verified) && claims.email_verified",
                Value::Bool(true),
            ),
            ("claims.email.split('@')[1]", Value::from("example.com")),
            (
                "claims.email.matches('^[a-z]+@example\\\\.com$')",
                Value::Bool(true),
            ),
            ("claims.?groups.orValue([]).size()", Value::Int(2)),
            ("claims.?missing.orValue('x')", Value::from("x")),
            (
                "size(has(claims.missing) ? claims.missing : [])",
                Value::Int(0),
            ),
        ];
        for (source, want) in cases {
            assert_eq!(&run(source, claims.clone()).unwrap(), want, "{source}");
        }
        let mapped = Expr::compile("f", "claims.groups.map(g, 'g:' + g)", Scope::Claims).unwrap();
        assert_eq!(
            mapped.eval_string_list(&claims_context(&claims)).unwrap(),
            vec!["g:a".to_owned(), "g:b".to_owned()]
        );
    }

    #[test]
    fn user_expressions_see_the_user() {
        let mut user = UserInfo::new("jane").with_groups(["dev", "ops"]);
        user.extra.insert("example.com/x".into(), vec!["1".into()]);
        let ctx = user_context(&user);
        for (source, want) in [
            ("!user.username.startsWith('system:')", true),
            ("user.groups.all(g, !g.startsWith('system:'))", true),
            ("user.uid == ''", true),
            ("user.extra['example.com/x'] == ['1']", true),
            ("'ops' in user.groups", true),
        ] {
            let expr = Expr::compile("f", source, Scope::User).unwrap();
            assert_eq!(expr.eval_bool(&ctx).unwrap(), want, "{source}");
        }
    }

    #[test]
    fn errors_hide_claim_values() {
        let err = run("claims.secret + 1", json!({"secret": "s3cr3t-value"})).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let err = run("claims.secret < 1", json!({"secret": "s3cr3t-value"})).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let err = run("claims.nope", json!({})).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn compile_errors_and_scopes() {
        let err = Expr::compile("jwt[0].x", "claims.", Scope::Claims).unwrap_err();
        assert!(
            err.to_string().starts_with("jwt[0].x: compilation failed"),
            "{err}"
        );
        let err = Expr::compile("f", "user.username", Scope::Claims).unwrap_err();
        assert!(
            err.to_string().contains("undeclared reference to 'user'"),
            "{err}"
        );
        let err = Expr::compile("f", "claims.sub == ''", Scope::User).unwrap_err();
        assert!(err.to_string().contains("'claims'"), "{err}");
    }

    #[test]
    fn mentions() {
        assert!(mentions_claim("claims.email", "email"));
        assert!(mentions_claim("'x' + claims . ?email", "email"));
        assert!(mentions_claim("claims['email']", "email"));
        assert!(!mentions_claim("claims.email_verified", "email"));
        assert!(!mentions_claim("myclaims.email", "email"));
        assert!(mentions_claim("claims.email_verified", "email_verified"));
    }
}
