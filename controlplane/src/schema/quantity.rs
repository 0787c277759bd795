//! `resource.Quantity` (`1.5Gi`, `500m`, `2e3`): the canonical text kube-apiserver stores and
//! serves a quantity as once its decoder has parsed it, and the walk that puts every Quantity
//! field of an object (found through the kind's schema) in that form.

use serde_json::Value;

use super::{resolve, schema_for_kind};

/// A quantity as kube prints it: [`canonical`], or text that does not parse (kube would not
/// have stored it) as it is.
pub fn printed(text: &str) -> String {
    canonical(text).unwrap_or_else(|| text.to_owned())
}

/// kube's words for text that is not a quantity (`resource.ErrFormatWrong`).
pub const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// kube's words for a quantity with a suffix it does not know (`resource.ErrSuffix`).
pub const SUFFIX_WRONG: &str = "unable to parse quantity's suffix";

/// Why `resource.ParseQuantity` refuses `text` (already trimmed, as its JSON decoder trims),
/// if it does: its grammar (`parseQuantityString`), then its suffixes.
pub fn parse_error(text: &str) -> Option<&'static str> {
    let b = text.as_bytes();
    if b.is_empty() {
        return Some(FORMAT_WRONG);
    }
    let digits_from = |mut pos: usize| {
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        pos
    };
    let mut pos = usize::from(matches!(b[0], b'-' | b'+'));
    pos = digits_from(pos);
    if pos < b.len() && b[pos] == b'.' {
        pos = digits_from(pos + 1);
    }
    let suffix_start = pos;
    while pos < b.len() && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < b.len() && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    if digits_from(pos) < b.len() {
        return Some(FORMAT_WRONG);
    }
    let suffix = &text[suffix_start..];
    let known = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || (suffix.len() > 1
        && suffix.starts_with(['e', 'E'])
        && suffix[1..].parse::<i64>().is_ok());
    (!known).then_some(SUFFIX_WRONG)
}

/// The text kube-apiserver serves a quantity as once decoded (`resource.ParseQuantity`, then
/// `Quantity.String`): `1536Mi` for `1.5Gi`, `2k` for `2000`, `500m` for `0.5`, `2e3` for
/// `2000e0`; `None` for text that is not a quantity.
pub fn canonical(text: &str) -> Option<String> {
    let form = canonical_quantity(text.trim())?;
    // Near the i128 bound a form can print a value its own parse cannot hold (found by the
    // `quantity` fuzz target): such text (beyond 10^38) is kept as it came, never stored in a
    // form that would not read back as itself.
    (canonical_quantity(&form).as_deref() == Some(form.as_str())).then_some(form)
}

/// Puts every Quantity field of an object of `kind` (found through its schema) in its
/// [`canonical`] form, as kube's decoder does: numbers become text (`1000` → `1k`); text that
/// is not a quantity is left for validation.
pub fn canonicalize_quantities(group: &str, version: &str, kind: &str, object: &mut Value) {
    if let Some(schema) = schema_for_kind(group, version, kind) {
        walk(schema, object, &mut None);
    }
}

/// The first Quantity field of an object of `kind` that kube's decoder refuses, as its error
/// ([`FORMAT_WRONG`] or [`SUFFIX_WRONG`]); the others are put in canonical form meanwhile.
pub fn quantity_error(
    group: &str,
    version: &str,
    kind: &str,
    object: &mut Value,
) -> Option<&'static str> {
    let mut error = None;
    if let Some(schema) = schema_for_kind(group, version, kind) {
        walk(schema, object, &mut error);
    }
    error
}

fn walk(schema: &Value, value: &mut Value, error: &mut Option<&'static str>) {
    let is_quantity = schema
        .get("$ref")
        .and_then(Value::as_str)
        .is_some_and(|r| r.ends_with(".api.resource.Quantity"));
    if is_quantity {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        match parse_error(text.trim()) {
            Some(e) => {
                error.get_or_insert(e);
            }
            None => {
                if let Some(c) = canonical(&text) {
                    *value = Value::String(c);
                }
            }
        }
        return;
    }
    let s = resolve(schema);
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let props = s.get("properties").and_then(Value::as_object);
            let ap = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in fields.iter_mut() {
                if let Some(p) = props.and_then(|p| p.get(k)).or(ap) {
                    walk(p, v, error);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for v in items.iter_mut() {
                    walk(item, v, error);
                }
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// Whether resource.ParseQuantity keeps the text it parsed (its fast path, for small values it
/// deems canonical): then kube prints the text as it was given, `+5M` or `007` included.
fn keeps_text(int: &str, frac: &str, base2: bool, suffix_exp: i32) -> bool {
    let num = match int.trim_start_matches('0') {
        "" => "0",
        n => n,
    };
    let shifted = format!("{num}{frac}");
    let Ok(value) = shifted.parse::<i64>() else {
        return false;
    };
    if base2 {
        // ParseQuantity's precision guess: 15 - digits - exponent*3/10 - 1 must not go negative.
        let precision = 15 - num.len() as i32 - suffix_exp * 3 / 10 - 1;
        frac.is_empty()
            && precision >= 0
            && value.checked_mul(1i64 << suffix_exp).is_some()
            && value & 0x07 != 0
    } else {
        let scale = suffix_exp - frac.len() as i32;
        shifted.len() <= 18
            && scale >= -9
            && scale % 3 == 0
            && !shifted.ends_with("000")
            && !shifted.starts_with('0')
    }
}

/// resource.ParseQuantity then Quantity.CanonicalizeBytes, over `mantissa × 10^exponent`;
/// `None` for text that does not parse or a value beyond i128.
fn canonical_quantity(s: &str) -> Option<String> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let int_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (int, rest) = rest.split_at(int_end);
    let (frac, suffix) = match rest.strip_prefix('.') {
        Some(r) => r.split_at(r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())),
        None => ("", rest),
    };
    let (mut format, base2, suffix_exp) = match suffix {
        "" => (Format::DecimalSi, false, 0),
        "n" => (Format::DecimalSi, false, -9),
        "u" => (Format::DecimalSi, false, -6),
        "m" => (Format::DecimalSi, false, -3),
        "k" => (Format::DecimalSi, false, 3),
        "M" => (Format::DecimalSi, false, 6),
        "G" => (Format::DecimalSi, false, 9),
        "T" => (Format::DecimalSi, false, 12),
        "P" => (Format::DecimalSi, false, 15),
        "E" => (Format::DecimalSi, false, 18),
        "Ki" => (Format::BinarySi, true, 10),
        "Mi" => (Format::BinarySi, true, 20),
        "Gi" => (Format::BinarySi, true, 30),
        "Ti" => (Format::BinarySi, true, 40),
        "Pi" => (Format::BinarySi, true, 50),
        "Ei" => (Format::BinarySi, true, 60),
        e => {
            let exp = e.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (Format::DecimalExponent, false, exp.parse::<i32>().ok()?)
        }
    };
    if keeps_text(int, frac, base2, suffix_exp) {
        return Some(s.to_owned());
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return None;
    }
    let mut mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut exponent = -i32::try_from(frac.len()).ok()?;
    if base2 {
        mantissa = mantissa.checked_mul(1i128.checked_shl(u32::try_from(suffix_exp).ok()?)?)?;
    } else {
        exponent = exponent.checked_add(suffix_exp)?;
    }
    if mantissa == 0 {
        return Some("0".to_owned());
    }
    // Non-zero values round up (away from zero) to the nano scale.
    if exponent < -9 {
        let shift = u32::try_from(-9 - exponent).ok()?;
        mantissa = match 10i128.checked_pow(shift) {
            Some(divisor) => mantissa / divisor + i128::from(mantissa % divisor != 0),
            // Smaller than any i128 can divide: a non-zero value rounds up to one.
            None => 1,
        };
        exponent = -9;
    }
    if format == Format::BinarySi {
        // Below 1024 (and fractions) a binary quantity prints in decimal, as it does when it is
        // not a whole number.
        let whole = if exponent >= 0 {
            mantissa.checked_mul(10i128.checked_pow(u32::try_from(exponent).ok()?)?)
        } else {
            let divisor = 10i128.checked_pow(u32::try_from(-exponent).ok()?)?;
            (mantissa % divisor == 0).then(|| mantissa / divisor)
        };
        match whole {
            Some(mut v) if v >= 1024 => {
                let mut power = 0;
                while v % 1024 == 0 {
                    v /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].get(power)?;
                let sign = if negative { "-" } else { "" };
                return Some(format!("{sign}{v}{suffix}"));
            }
            _ => format = Format::DecimalSi,
        }
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => {
            mantissa = mantissa.checked_mul(10)?;
            exponent -= 1;
        }
        2 => {
            mantissa = mantissa.checked_mul(100)?;
            exponent -= 2;
        }
        _ => {}
    }
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        _ => match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            // kube finds no suffix and prints the bare number.
            _ => "",
        }
        .to_owned(),
    };
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{mantissa}{suffix}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_print_in_kubes_canonical_form() {
        // What resource.ParseQuantity(given).String() gives in apimachinery v0.34.2.
        for (given, shown) in [
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1Gi", "1Gi"),
            ("1024", "1024"),
            ("2048Ki", "2Mi"),
            ("1.5Ki", "1536"),
            ("100Ki", "100Ki"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1.5k", "1500"),
            ("0.5", "500m"),
            ("2e3", "2e3"),
            ("2000e0", "2e3"),
            ("1E3", "1E3"),
            ("10e1", "100"),
            ("1E", "1E"),
            ("0", "0"),
            ("0Gi", "0"),
            ("-1.5Gi", "-1536Mi"),
            ("+5M", "+5M"),
            ("100M", "100M"),
            ("0.1n", "1n"),
            ("007", "007"),
            ("1.5", "1500m"),
            ("1000Ki", "1000Ki"),
            ("1023.5Ki", "1048064"),
            ("0.001Ki", "1024m"),
            ("12e-1", "1200e-3"),
            ("1e-12", "1e-9"),
            ("1200m", "1200m"),
            ("5000000Mi", "5000000Mi"),
            ("1.000Gi", "1Gi"),
            ("-0.5", "-500m"),
            ("1e21", "1e21"),
            ("+5Mi", "+5Mi"),
            ("08Ki", "8Ki"),
            ("07Ki", "07Ki"),
            ("5Ei", "5Ei"),
            ("1000000000000000000000", "1"),
            ("1.Ki", "1.Ki"),
            ("3Mi", "3Mi"),
            ("0.000000001", "1n"),
            ("1e1000", "10e999"),
            ("1e-1000", "1e-9"),
            ("-1e-12", "-1e-9"),
            ("0.0000000001Ki", "103n"),
            ("1.5e3", "1500"),
            (".", "0"),
            ("+", "0"),
            ("Ki", "0"),
            ("-.", "0"),
            ("e3", "0"),
            ("1e+3", "1e+3"),
            ("1e-3", "1e-3"),
            ("nonsense", "nonsense"),
        ] {
            assert_eq!(printed(given), shown, "{given}");
        }
    }

    #[test]
    fn text_kube_does_not_parse_is_refused_with_its_words() {
        // What resource.ParseQuantity(text) answers in apimachinery v0.34.2.
        for (text, error) in [
            ("", Some(FORMAT_WRONG)),
            ("lots", Some(FORMAT_WRONG)),
            ("1.2.3", Some(FORMAT_WRONG)),
            ("1Ki5", Some(SUFFIX_WRONG)),
            ("5Z", Some(FORMAT_WRONG)),
            ("1e", Some(SUFFIX_WRONG)),
            ("1E", None),
            (".", None),
            ("+", None),
            ("Ki", None),
            ("-.", None),
            ("1e3Ki", Some(FORMAT_WRONG)),
            ("1 Gi", Some(FORMAT_WRONG)),
            ("e3", None),
            ("1e+3", None),
            ("1e-3", None),
            ("1ee3", Some(SUFFIX_WRONG)),
            ("1mi", Some(SUFFIX_WRONG)),
            ("1k3", Some(SUFFIX_WRONG)),
            ("--1", Some(SUFFIX_WRONG)),
            ("1.5.", Some(FORMAT_WRONG)),
            ("0x10", Some(FORMAT_WRONG)),
            ("1_000", Some(FORMAT_WRONG)),
            ("1.5Gi", None),
        ] {
            assert_eq!(parse_error(text), error, "{text:?}");
        }
    }

    #[test]
    fn every_quantity_field_is_canonical_after_decoding() {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {
                "requests": {"cpu": 0.5, "memory": "1.5Gi"}, "limits": {"memory": 1000}}}],
                "overhead": {"cpu": "100m"}}});
        canonicalize_quantities("", "v1", "Pod", &mut pod);
        let resources = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(
            resources["requests"],
            json!({"cpu": "500m", "memory": "1536Mi"})
        );
        assert_eq!(resources["limits"], json!({"memory": "1k"}));
        assert_eq!(pod["spec"]["overhead"]["cpu"], "100m");
        let mut pv = json!({"spec": {"capacity": {"storage": "2048Mi"}, "storageClassName": "2000"},
            "status": {"phase": "1.50"}});
        canonicalize_quantities("", "v1", "PersistentVolume", &mut pv);
        assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi");
        // Only Quantity fields: strings elsewhere keep their text.
        assert_eq!(pv["spec"]["storageClassName"], "2000");
        assert_eq!(pv["status"]["phase"], "1.50");
        let mut bad = json!({"spec": {"capacity": {"storage": "lots", "x": "1.5Gi"}}});
        assert_eq!(
            quantity_error("", "v1", "PersistentVolume", &mut bad),
            Some(FORMAT_WRONG)
        );
        assert_eq!(bad["spec"]["capacity"]["storage"], "lots");
        assert_eq!(bad["spec"]["capacity"]["x"], "1536Mi");
    }
}
