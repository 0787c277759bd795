//! GET of one object and of collections: label and field selectors, `limit`/`continue` paging at
//! one consistent revision, `resourceVersion`/`resourceVersionMatch`, and server-side Tables.
//!
//! A continue token is opaque to clients: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":K}`
//! (kube's layout), where `rv` is the revision of the first page, so every page reads the same
//! snapshot, and `start` is the last key returned, relative to the resource's key prefix.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kgate_core::Status;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::codec::{self, decode_object, negotiate, Negotiated};
use super::keys::{collection_prefix, parse_resource_version, store_status};
use super::request::{Reply, Req};
use super::selectors::{FieldSelector, LabelSelector};
use super::state::Shared;
use super::storage::get_current;
use crate::resources::ResourceDef;
use crate::schema;
use crate::store::{KeyValue, RangeRequest, Revision, Store, StoreError};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// GET of one object, as JSON or a one-row Table.
pub(crate) async fn get(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let negotiated = negotiate(req.accept(), &req.query)?;
    let (_, obj) = get_current(shared.store.as_ref(), &req.target()).await?;
    Ok(Reply::ok(one_object(req.def.kind, obj, negotiated)))
}

/// One object of kind `kind` (a resource's, or a subresource's such as `Scale`) in the
/// negotiated form: as it is, a one-row Table, or its metadata.
pub(crate) fn one_object(kind: &str, obj: Value, negotiated: Negotiated) -> Value {
    match negotiated {
        Negotiated::Json => obj,
        Negotiated::Table(include) => {
            let mut table = schema::table(
                kind,
                std::slice::from_ref(&obj),
                include,
                OffsetDateTime::now_utc(),
            );
            table["metadata"] =
                json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
            table
        }
        Negotiated::Metadata => schema::partial_object_metadata(&obj),
    }
}

/// One page of a list: decoded objects, or (for the JSON list) the stored values themselves.
pub(crate) struct Page<T = Value> {
    pub items: Vec<T>,
    pub revision: Revision,
    pub continue_token: Option<String>,
}

/// What a list reads.
pub(crate) struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// 0: everything.
    pub limit: usize,
    pub continue_token: Option<String>,
    /// Read at this revision (`resourceVersionMatch=Exact`).
    pub revision: Option<Revision>,
}

impl ListOptions {
    pub fn from_request(req: &Req) -> Result<Self, Status> {
        let q = &req.query;
        let limit = match q.get("limit").unwrap_or("") {
            "" => 0,
            // kube ignores a limit it cannot parse or that is not positive.
            s => s.parse::<i64>().ok().filter(|n| *n > 0).unwrap_or(0) as usize,
        };
        let rv = q.get("resourceVersion").unwrap_or("");
        // A list's resourceVersion must be a number even when it only asks for "not older
        // than" (kube's storage parses it first; its words quote Go's strconv).
        if !rv.is_empty() && rv.parse::<u64>().is_err() {
            return Err(Status::bad_request(format!(
                "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: invalid syntax"
            )));
        }
        let revision = match q.get("resourceVersionMatch").unwrap_or("") {
            "" | "NotOlderThan" => None,
            "Exact" if rv.is_empty() || rv == "0" => {
                return Err(Status::bad_request(
                    "resourceVersionMatch \"Exact\" requires a non-zero resourceVersion",
                ))
            }
            "Exact" => Some(parse_resource_version(rv)?),
            other => {
                return Err(Status::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
        };
        Ok(Self {
            labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(req.def, q.get("fieldSelector").unwrap_or(""))?,
            limit,
            continue_token: q
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            revision,
        })
    }
}

fn encode_token(revision: Revision, start: &str) -> String {
    let token = json!({"v": TOKEN_VERSION, "rv": revision, "start": start});
    STANDARD.encode(token.to_string())
}

fn decode_token(token: &str) -> Result<(Revision, String), Status> {
    let invalid = |why: &str| Status::bad_request(format!("continue key is not valid: {why}"));
    let bytes = STANDARD
        .decode(token)
        .map_err(|_| invalid("the token is not base64"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("the token is not JSON"))?;
    if v.get("v").and_then(Value::as_str) != Some(TOKEN_VERSION) {
        return Err(invalid(&format!(
            "incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
        )));
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid("the token has no resourceVersion"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the token has no start key"))?;
    Ok((rv, start.to_owned()))
}

/// Reads one page of the collection of `def` (in `namespace`, or all), filtered by the
/// selectors. With a limit, keeps scanning until the page is full or the keys run out, so that
/// a selective selector still fills pages.
pub(crate) async fn list_page(
    store: &dyn Store,
    def: &ResourceDef,
    namespace: Option<&str>,
    opts: &ListOptions,
) -> Result<Page, Status> {
    scan_page(store, def, namespace, opts, |kv| {
        let obj = decode_object(&kv)?;
        Ok((opts.labels.matches(&obj) && opts.fields.matches(&obj)).then_some(obj))
    })
    .await
}

/// [`list_page`] keeping the stored values that match rather than decoded objects: a JSON list
/// writes them out nearly as they are ([`codec::write_list_item`]), and decodes an object only
/// to match it against selectors.
async fn list_page_stored(
    store: &dyn Store,
    def: &ResourceDef,
    namespace: Option<&str>,
    opts: &ListOptions,
) -> Result<Page<KeyValue>, Status> {
    let everything = opts.labels.is_everything() && opts.fields.is_everything();
    scan_page(store, def, namespace, opts, |kv| {
        if everything {
            return Ok(Some(kv));
        }
        let obj = decode_object(&kv)?;
        Ok((opts.labels.matches(&obj) && opts.fields.matches(&obj)).then_some(kv))
    })
    .await
}

/// The paging loop of a list: `keep` turns each stored value into an item, or `None` to skip it.
async fn scan_page<T>(
    store: &dyn Store,
    def: &ResourceDef,
    namespace: Option<&str>,
    opts: &ListOptions,
    mut keep: impl FnMut(KeyValue) -> Result<Option<T>, Status>,
) -> Result<Page<T>, Status> {
    let base = def.key_prefix();
    let prefix = collection_prefix(def, namespace);
    let (mut revision, mut start_after) = match &opts.continue_token {
        Some(token) => {
            let (rv, start) = decode_token(token)?;
            (Some(rv), Some(format!("{base}{start}")))
        }
        None => (opts.revision, None),
    };
    let mut items = Vec::new();
    loop {
        let want = if opts.limit == 0 {
            0
        } else {
            opts.limit - items.len()
        };
        let resp = store
            .range(RangeRequest {
                prefix: prefix.clone(),
                start_after: start_after.clone(),
                limit: want,
                revision,
            })
            .await
            .map_err(|e| match e {
                StoreError::Compacted { .. } if opts.continue_token.is_some() => expired_token(),
                e => store_status(e, None),
            })?;
        revision = Some(resp.revision);
        let last_key = resp.items.last().map(|kv| kv.key.clone());
        let batch = resp.items.len();
        for kv in resp.items {
            if let Some(item) = keep(kv)? {
                items.push(item);
            }
        }
        if last_key.is_some() {
            start_after = last_key;
        }
        // An empty batch that claims more would loop forever: treat it as the end.
        if !resp.more || batch == 0 {
            return Ok(Page {
                items,
                revision: resp.revision,
                continue_token: None,
            });
        }
        if opts.limit > 0 && items.len() >= opts.limit {
            let start = start_after
                .as_deref()
                .and_then(|k| k.strip_prefix(&base))
                .unwrap_or("");
            return Ok(Page {
                items,
                revision: resp.revision,
                continue_token: Some(encode_token(resp.revision, start)),
            });
        }
    }
}

/// kube's 410 for a continue token whose revision was compacted.
fn expired_token() -> Status {
    Status::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
}

/// A list's `metadata`: its revision, and where the next page starts.
fn list_meta(revision: Revision, continue_token: Option<String>) -> Value {
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        meta["continue"] = Value::String(token);
    }
    meta
}

/// A `<Kind>List` of `items` at `revision`.
pub(crate) fn list_object(
    def: &ResourceDef,
    items: Vec<Value>,
    revision: Revision,
    continue_token: Option<String>,
) -> Value {
    let meta = list_meta(revision, continue_token);
    // kube's lists of built-in kinds carry no apiVersion and kind in their items.
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut item| {
            codec::strip_type_meta(&mut item);
            item
        })
        .collect();
    json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(),
        "metadata": meta,
        "items": items,
    })
}

/// A `<Kind>List` of stored values, written as [`list_object`] would write their decoded
/// objects, without decoding them: the list's head, then each value as a list item
/// ([`codec::write_list_item`]). A list of 10,000 objects spent most of its time decoding each into a `Value` and
/// encoding it again.
fn stored_list_body(
    def: &ResourceDef,
    items: &[KeyValue],
    revision: Revision,
    continue_token: Option<String>,
) -> Result<Vec<u8>, Status> {
    let head = list_object(def, Vec::new(), revision, continue_token);
    let mut out = serde_json::to_vec(&head).map_err(|_| Status::internal("list encoding"))?;
    // `head` ends with `"items":[]}`: reopen the array.
    let reopened = out.len().saturating_sub(2);
    if out.get(reopened..) != Some(b"]}".as_slice()) {
        return Err(Status::internal("list encoding"));
    }
    out.truncate(reopened);
    out.reserve(items.iter().map(|kv| kv.value.len() + 40).sum());
    for (i, kv) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        codec::write_list_item(kv, &mut out)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// GET of a collection, as a `<Kind>List` or a Table.
pub(crate) async fn list(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let negotiated = negotiate(req.accept(), &req.query)?;
    let opts = ListOptions::from_request(req)?;
    let store = shared.store.as_ref();
    let namespace = req.namespace.as_deref();
    match negotiated {
        Negotiated::Json => {
            let page = list_page_stored(store, req.def, namespace, &opts).await?;
            let body = stored_list_body(req.def, &page.items, page.revision, page.continue_token)?;
            Ok(Reply::encoded(http::StatusCode::OK, body))
        }
        Negotiated::Table(include) => {
            let page = list_page(store, req.def, namespace, &opts).await?;
            let mut table = schema::table(
                req.def.kind,
                &page.items,
                include,
                OffsetDateTime::now_utc(),
            );
            table["metadata"] = list_meta(page.revision, page.continue_token);
            Ok(Reply::ok(table))
        }
        Negotiated::Metadata => {
            let page = list_page(store, req.def, namespace, &opts).await?;
            Ok(Reply::ok(json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_meta(page.revision, page.continue_token),
                "items": page.items.iter().map(schema::partial_object_metadata).collect::<Vec<_>>(),
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_token(42, "default/web");
        assert_eq!(decode_token(&t).ok(), Some((42, "default/web".to_owned())));
        assert_eq!(decode_token("!!").map_err(|s| s.code), Err(400));
        let other = STANDARD.encode(r#"{"v":"x","rv":1,"start":""}"#);
        assert_eq!(decode_token(&other).map_err(|s| s.code), Err(400));
    }
}
