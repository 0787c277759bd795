//! The rows of the storage kinds, after kube's printers: PersistentVolume, PersistentVolumeClaim
//! (capacities as `resource.Quantity` prints them, access modes as `RWO,ROX,RWX,RWOP`), CSIDriver
//! and StorageClass (the defaults of unset fields, the `(default)` class).

use serde_json::{json, Value};

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn flag(v: &Value, pointer: &str, default: bool) -> bool {
    v.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

/// The storage class annotation kube reads before `spec.storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// helper.GetAccessModesAsString: the modes present, in kube's fixed order.
fn access_modes(modes: &[Value]) -> String {
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A `storage` quantity as kube prints it: `0` when absent.
fn storage(o: &Value, pointer: &str) -> String {
    match o.pointer(pointer) {
        Some(Value::String(s)) => quantity(s),
        Some(Value::Number(n)) => quantity(&n.to_string()),
        _ => "0".to_owned(),
    }
}

/// The cells of a PersistentVolume row.
pub(super) fn persistent_volume(o: &Value, name: &str, age: String) -> Vec<Value> {
    let claim = match o.pointer("/spec/claimRef") {
        Some(c) if c.is_object() => format!(
            "{}/{}",
            text(c, "/namespace").unwrap_or(""),
            text(c, "/name").unwrap_or("")
        ),
        _ => String::new(),
    };
    let phase = if deleting(o) {
        "Terminating"
    } else {
        text(o, "/status/phase").unwrap_or("")
    };
    let class = annotation(o, BETA_STORAGE_CLASS)
        .or(text(o, "/spec/storageClassName"))
        .unwrap_or("");
    let unset = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("<unset>")
            .to_owned()
    };
    vec![
        json!(name),
        json!(storage(o, "/spec/capacity/storage")),
        json!(access_modes(items(o, "/spec/accessModes"))),
        json!(text(o, "/spec/persistentVolumeReclaimPolicy").unwrap_or("")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(unset("/spec/volumeAttributesClassName")),
        json!(text(o, "/status/reason").unwrap_or("")),
        json!(age),
        json!(unset("/spec/volumeMode")),
    ]
}

/// The cells of a PersistentVolumeClaim row: capacity and access modes only once bound to a
/// volume (`spec.volumeName`).
pub(super) fn persistent_volume_claim(o: &Value, name: &str, age: String) -> Vec<Value> {
    let phase = if deleting(o) {
        "Terminating"
    } else {
        text(o, "/status/phase").unwrap_or("")
    };
    let volume = text(o, "/spec/volumeName").unwrap_or("");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            storage(o, "/status/capacity/storage"),
            access_modes(items(o, "/status/accessModes")),
        )
    };
    let class = annotation(o, BETA_STORAGE_CLASS)
        .or(o.pointer("/spec/storageClassName").and_then(Value::as_str))
        .unwrap_or("");
    let unset = |p: &str| {
        o.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("<unset>")
            .to_owned()
    };
    vec![
        json!(name),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(unset("/spec/volumeAttributesClassName")),
        json!(age),
        json!(unset("/spec/volumeMode")),
    ]
}

/// The cells of a CSIDriver row, unset fields shown as their defaults.
pub(super) fn csi_driver(o: &Value, name: &str, age: String) -> Vec<Value> {
    // kube stores through protobuf, where an empty list and an absent one are the same: unset.
    let tokens = items(o, "/spec/tokenRequests");
    let tokens = if tokens.is_empty() {
        "<unset>".to_owned()
    } else {
        tokens
            .iter()
            .map(|t| t["audience"].as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let modes: Vec<&str> = items(o, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_owned()
    } else {
        modes.join(",")
    };
    vec![
        json!(name),
        json!(flag(o, "/spec/attachRequired", true)),
        json!(flag(o, "/spec/podInfoOnMount", false)),
        json!(flag(o, "/spec/storageCapacity", false)),
        json!(tokens),
        json!(flag(o, "/spec/requiresRepublish", false)),
        json!(modes),
        json!(age),
    ]
}

/// The cells of a StorageClass row; the default class (by either is-default-class annotation
/// set to `true`) is named `NAME (default)`.
pub(super) fn storage_class(o: &Value, name: &str, age: String) -> Vec<Value> {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotation(o, k) == Some("true"));
    let name = if default {
        format!("{name} (default)")
    } else {
        name.to_owned()
    };
    vec![
        json!(name),
        json!(text(o, "/provisioner").unwrap_or("")),
        json!(text(o, "/reclaimPolicy").unwrap_or("Delete")),
        json!(text(o, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(flag(o, "/allowVolumeExpansion", false)),
        json!(age),
    ]
}

/// A `resource.Quantity` in the canonical form kube prints (and serves) it: `1536Mi` for
/// `1.5Gi`, `2k` for `2000`, `500m` for `0.5`, `2e3` for `2000e0`. Text that does not parse
/// as a quantity (kube would not have stored it) is shown as it is.
pub(super) fn quantity(text: &str) -> String {
    canonical_quantity(text.trim()).unwrap_or_else(|| text.to_owned())
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
    if int.is_empty() && frac.is_empty() {
        return None;
    }
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
        let divisor = 10i128.checked_pow(shift)?;
        mantissa = mantissa / divisor + i128::from(mantissa % divisor != 0);
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
