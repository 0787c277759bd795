//! Server-side printing: `meta.k8s.io/v1` Table responses, asked for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, so that `kubectl get` prints the
//! columns kube-apiserver's printers give (k8s.io/kubernetes pkg/printers/internalversion).
//!
//! The Table's `metadata` is left empty: the caller sets `resourceVersion`, `continue` and
//! `remainingItemCount` from its list, as it would on the list itself.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::printers::{cells, columns};

/// What each row carries in `object`, from the `includeObject` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object (`includeObject=None`).
    None,
    /// A `meta.k8s.io/v1` PartialObjectMetadata holding the object's metadata (the default).
    #[default]
    Metadata,
    /// The whole object (`includeObject=Object`).
    Object,
}

impl IncludeObject {
    /// The value of the `includeObject` parameter; `None` for an unknown value (kube answers
    /// 400 with `includeObject` not supported).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "None" => Some(Self::None),
            "Metadata" | "" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// A Table of `objects` (all of kind `kind`), with column definitions and one row each.
pub fn table(
    kind: &str,
    objects: &[Value],
    include_object: IncludeObject,
    now: OffsetDateTime,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| table_row(kind, o, include_object, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": column_definitions(kind),
        "rows": rows,
    })
}

/// The column definitions of a kind's Table: wide-only columns have priority 1.
pub fn column_definitions(kind: &str) -> Value {
    columns(kind)
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// One row: the cells, then the object as `include` asks. A watch event in Table form carries
/// a Table whose `rows` holds this single row.
pub fn table_row(kind: &str, object: &Value, include: IncludeObject, now: OffsetDateTime) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells(kind, object, now)));
    match include {
        // kube's TableRow.object is a RawExtension it always writes: null when left out.
        IncludeObject::None => {
            row.insert("object".into(), Value::Null);
        }
        IncludeObject::Metadata => {
            row.insert("object".into(), partial_object_metadata(object));
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

/// kube's `translateTimestampSince`: the age of an RFC 3339 timestamp, `<unknown>` without one.
pub fn age(timestamp: Option<&str>, now: OffsetDateTime) -> String {
    match timestamp.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) {
        Some(t) => human_duration((now - t).whole_seconds()),
        None => "<unknown>".to_owned(),
    }
}

/// k8s.io/apimachinery/pkg/util/duration.HumanDuration: `5s`, `3m20s`, `7h`, `2d3h`, `1y10d`.
pub fn human_duration(seconds: i64) -> String {
    // Up to a second in the future is clock skew between machines: "0s".
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// A `meta.k8s.io/v1` PartialObjectMetadata: the object's metadata alone, as kube serves it for
/// `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` and in Table rows.
pub fn partial_object_metadata(object: &Value) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::lookup;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-01-10 12:00:00 UTC);

    #[test]
    fn human_durations_match_kube() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (5, "5s"),
            (119, "119s"),
            (180, "3m"),
            (200, "3m20s"),
            (3600, "60m"),
            (4 * 3600, "4h"),
            (4 * 3600 + 120, "4h2m"),
            (30 * 3600, "30h"),
            (2 * 86400, "2d"),
            (3 * 86400 + 3600, "3d1h"),
            (100 * 86400, "100d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
        assert_eq!(age(Some("2025-01-10T11:59:55Z"), NOW), "5s");
        assert_eq!(age(None, NOW), "<unknown>");
    }

    #[test]
    fn pending_pod_table_has_kubes_columns() {
        let pods = lookup("", "v1", "pods").unwrap().kind;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default",
                         "creationTimestamp": "2025-01-10T11:57:00Z"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Pending"},
        });
        let t = table(
            pods,
            std::slice::from_ref(&pod),
            IncludeObject::default(),
            NOW,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        let cols = t["columnDefinitions"].as_array().unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(cols[0]["format"], "name");
        let visible = cols.iter().filter(|c| c["priority"] == 0).count();
        assert_eq!(visible, 5);
        let row = &t["rows"][0];
        assert_eq!(
            row["cells"],
            json!(["web-1", "0/1", "Pending", "0", "3m", "<none>", "<none>", "<none>", "<none>"])
        );
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["metadata"]["name"], "web-1");
        let full = table_row(pods, &pod, IncludeObject::Object, NOW);
        assert_eq!(full["object"], pod);
        assert_eq!(
            table_row(pods, &pod, IncludeObject::None, NOW).get("object"),
            Some(&Value::Null)
        );
        assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("Bogus"), None);
    }
}
