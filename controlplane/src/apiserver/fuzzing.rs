//! Entry points for the fuzz targets (`fuzz/` at the repository root) into the parts of this
//! server that read untrusted input but are private to it. Not an API: hidden from the docs and
//! free to change with the targets. It exists rather than a `fuzzing` cargo feature because a
//! feature enabled by one workspace member would rebuild this crate, and everything above it,
//! whenever the workspace is built with and without that member; a few hidden functions cost
//! nothing.

use kgate_core::Status;
use serde_json::Value;

use super::write::{self, PatchType};
use crate::resources::ResourceDef;

/// What a PATCH request does to `current` (an object of `def`'s kind) with the parsed body
/// `patch`: the patch type from `content_type` (415 when unsupported), then
/// `write::apply_patch`.
pub fn apply_patch(
    def: &ResourceDef,
    content_type: &str,
    current: &Value,
    patch: &Value,
) -> Result<Value, Status> {
    let kind = PatchType::from_content_type(Some(content_type))?;
    write::apply_patch(def, kind, current, patch)
}
