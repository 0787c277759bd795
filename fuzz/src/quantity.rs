//! `quantity`: the `resource.Quantity` parser every Quantity field of a write goes through
//! ([`parse_error`], [`canonical`], and the schema walk of [`quantity_error`]).
//!
//! Input: the quantity text (UTF-8). Properties: text the grammar refuses has no canonical
//! form; a canonical form is itself accepted and canonical (kube stores it and serves it back
//! unchanged); the same text inside a PersistentVolumeClaim's `spec.resources.requests` is
//! refused by the walk exactly when the parser refuses it, and otherwise left canonical.

use kgate_controlplane::schema::quantity::{canonical, parse_error, quantity_error};
use serde_json::json;

/// Runs one input; true when the text is a quantity.
pub fn run(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let refused = parse_error(text.trim()).is_some();
    let form = canonical(text);
    if refused {
        assert!(
            form.is_none(),
            "{text:?} is refused but canonical as {form:?}"
        );
    }
    if let Some(form) = &form {
        assert!(
            parse_error(form).is_none(),
            "{form:?} (of {text:?}) is refused"
        );
        assert_eq!(
            canonical(form).as_ref(),
            Some(form),
            "{form:?} is not stable"
        );
    }
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "spec": {"resources": {"requests": {"storage": text}}}});
    let error = quantity_error("", "v1", "PersistentVolumeClaim", &mut claim);
    assert_eq!(
        error.is_some(),
        refused,
        "{text:?}: the walk says {error:?}"
    );
    if let Some(form) = &form {
        assert_eq!(
            claim["spec"]["resources"]["requests"]["storage"],
            json!(form)
        );
    }
    form.is_some()
}
