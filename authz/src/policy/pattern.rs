//! The pattern language of a policy line's columns, and the two casbin functions that use it
//! (`kgateMatch` for one value, `kgateMatchAny` for a list such as the user's groups).
//!
//! A pattern is `[!]alt|alt|...`: the value matches if it matches any alternative, and a leading
//! `!` inverts the whole pattern. In an alternative `*` stands for any run of characters (also
//! `/` and `:`, and also none), `""` stands for the empty value, and every other character is
//! itself. `*` alone matches every value, the empty one included. Matching allocates nothing:
//! it runs once per policy column per candidate line, on the request path.

use casbin::rhai::Dynamic;

/// Why a pattern is not acceptable (checked when a policy is loaded).
pub(crate) fn check(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_prefix('!').unwrap_or(pattern);
    if body.starts_with('!') {
        return Err(format!("{pattern:?}: only one leading ! is allowed"));
    }
    if body.split('|').any(str::is_empty) {
        return Err(format!(
            "{pattern:?} has an empty alternative (write \"\" for the empty value, * for any)"
        ));
    }
    Ok(())
}

/// Does `value` match `pattern`?
pub(crate) fn matches(pattern: &str, value: &str) -> bool {
    let (negated, body) = split_negation(pattern);
    matches_positive(body, value) != negated
}

/// Does the list match `pattern`: some value matches it, or, for `!pattern`, none does. `*`
/// matches every list, an empty one too.
pub(crate) fn matches_any<'a>(pattern: &str, values: impl IntoIterator<Item = &'a str>) -> bool {
    let (negated, body) = split_negation(pattern);
    let hit = body == "*" || values.into_iter().any(|v| matches_positive(body, v));
    hit != negated
}

fn split_negation(pattern: &str) -> (bool, &str) {
    match pattern.strip_prefix('!') {
        Some(body) => (true, body),
        None => (false, pattern),
    }
}

fn matches_positive(body: &str, value: &str) -> bool {
    body.split('|').any(|alt| {
        if alt == "\"\"" {
            value.is_empty()
        } else {
            glob(alt.as_bytes(), value.as_bytes())
        }
    })
}

/// `*`-only glob, iterative with one backtrack point: linear in practice, never exponential.
fn glob(pattern: &[u8], value: &[u8]) -> bool {
    let (mut p, mut v) = (0, 0);
    // Where the last `*` was, and the value position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            // Let the last `*` take one more character and try again after it.
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// casbin `kgateMatch(value, pattern)`. A value that is not a string does not match.
pub(crate) fn kgate_match(value: Dynamic, pattern: Dynamic) -> Dynamic {
    let (Ok(value), Ok(pattern)) = (
        value.as_immutable_string_ref(),
        pattern.as_immutable_string_ref(),
    ) else {
        return false.into();
    };
    matches(&pattern, &value).into()
}

/// casbin `kgateMatchAny(values, pattern)`: `values` is a list of strings (a single string is
/// a list of one).
pub(crate) fn kgate_match_any(values: Dynamic, pattern: Dynamic) -> Dynamic {
    let Ok(pattern) = pattern.as_immutable_string_ref() else {
        return false.into();
    };
    if let Ok(one) = values.as_immutable_string_ref() {
        return matches_any(&pattern, [one.as_str()]).into();
    }
    let Ok(list) = values.as_array_ref() else {
        return false.into();
    };
    // As `matches_any`, without collecting the strings first.
    let (negated, body) = split_negation(&pattern);
    let hit = body == "*"
        || list.iter().any(|v| {
            v.as_immutable_string_ref()
                .is_ok_and(|s| matches_positive(body, &s))
        });
    (hit != negated).into()
}
