//! Go's `%q` formatting, for the texts Kubernetes prints with it (decision reasons, not-found
//! errors, escalation messages), so that ours read the same.

use std::fmt::{self, Write};

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String cannot fail.
    let _ = write_go_quoted(&mut out, s);
    out
}

/// Go's `%q` of a string, written to `out`.
pub(crate) fn write_go_quoted(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\x{:02x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn write_go_quoted_list(out: &mut impl Write, items: &[String]) -> fmt::Result {
    out.write_char('[')?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_char(' ')?;
        }
        write_go_quoted(out, item)?;
    }
    out.write_char(']')
}

/// Several errors as Kubernetes' aggregated error prints them: one alone as itself, several
/// distinct ones as `[e1, e2]` (repeats dropped), none as the empty string.
pub(crate) fn aggregate_errors<E: AsRef<str>>(errors: &[E]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for e in errors {
        let e = e.as_ref();
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("alice"), "\"alice\"");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        let mut s = String::new();
        write_go_quoted_list(&mut s, &["dev".into(), "system:authenticated".into()]).unwrap();
        assert_eq!(s, r#"["dev" "system:authenticated"]"#);
        s.clear();
        write_go_quoted_list(&mut s, &[]).unwrap();
        assert_eq!(s, "[]");
    }

    #[test]
    fn aggregated_errors_print_like_kubernetes() {
        assert_eq!(aggregate_errors::<&str>(&[]), "");
        assert_eq!(aggregate_errors(&["a", "a"]), "a");
        assert_eq!(aggregate_errors(&["a", "b", "a"]), "[a, b]");
    }
}
