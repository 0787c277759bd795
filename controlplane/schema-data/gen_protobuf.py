#!/usr/bin/env python3
"""Generate protobuf.json: the wire layout of the Kubernetes protobuf messages kgate decodes.

Why: client-go's typed clients (kubectl create namespace/rolebinding/deployment/...) send their
bodies as application/vnd.kubernetes.protobuf whatever the server advertises. The API server
decodes such a body into the same JSON it would have received, using this table.

Source: the crates.io crate k8s-pb==0.9.0 (Apache-2.0, kube-rs/k8s-pb), whose prost code is
generated from the generated.proto files of kubernetes/kubernetes. For each message we take its
fields' tag numbers and wire types from the `#[prost(...)]` attributes; the JSON name of each
field comes from definitions.json (the same message's OpenAPI properties, matched ignoring case
and underscores), or, for a message the schema does not serve, from the proto field name.

Output: {"<definition name>": [[tag, json_name, kind, type, repeated, keep_zero], ...], ...}
  kind: string | int32 | int64 | bool | bytes | double | message | map
  type: the message's definition name (message), or "string"/"bytes"/<definition> (map values)
  repeated: true for repeated fields
  keep_zero: the field's zero value ("", false, 0) means something: the field is required, or
    is a Go pointer whose explicit zero differs from unset (replicas: 0, runAsUser: 0...).
    Go's protobuf encoder writes every non-pointer field, zero or not, where its JSON encoder
    omits them (omitempty); the decoder drops zeros of the other fields to give the same JSON.
  json_name "" marks a Go struct embedded inline: its fields belong to the parent in JSON.
Only messages reachable from a definition in definitions.json are kept.

Usage: python3 gen_protobuf.py [K8S_PB_SRC_DIR]
Without an argument it fetches the crate with `cargo info` and reads it from ~/.cargo/registry.
"""
import glob
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFINITIONS = os.path.join(HERE, "definitions.json")
OUT = os.path.join(HERE, "protobuf.json")
CRATE = "k8s-pb"
VERSION = "0.9.0"

# Rust module prefix -> OpenAPI definition prefix.
PREFIXES = [
    ("api.", "io.k8s.api."),
    ("apimachinery.", "io.k8s.apimachinery."),
    ("apiextensions_apiserver.", "io.k8s.apiextensions-apiserver."),
    ("kube_aggregator.", "io.k8s.kube-aggregator."),
    ("metrics.", "io.k8s.metrics."),
]

# Pointer scalars in the served kinds whose explicit zero is not the same as unset.
POINTER_ZERO = {
    "activeDeadlineSeconds", "allocateLoadBalancerNodePorts", "allowPrivilegeEscalation",
    "automountServiceAccountToken", "blockOwnerDeletion", "controller", "defaultMode",
    "deletionGracePeriodSeconds", "enableServiceLinks", "expirationSeconds", "fsGroup",
    "gracePeriodSeconds", "hostUsers", "immutable", "mode", "optional", "orphanDependents",
    "priority", "privileged", "progressDeadlineSeconds", "readOnlyRootFilesystem", "ready",
    "replicas", "revisionHistoryLimit", "runAsGroup", "runAsNonRoot", "runAsUser", "serving",
    "setHostnameAsFQDN", "shareProcessNamespace", "terminating", "terminationGracePeriodSeconds",
}

ATTR = re.compile(r"#\[prost\((.*)\)\]")
STRUCT = re.compile(r"^pub struct (\w+) \{")
FIELD = re.compile(r"^pub (?:r#)?(\w+):\s*(.*),$", re.S)


def source_dir(argv):
    if len(argv) > 1:
        return argv[1]
    subprocess.run(["cargo", "info", f"{CRATE}@{VERSION}"], check=True, capture_output=True)
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = glob.glob(os.path.join(home, "registry", "src", "*", f"{CRATE}-{VERSION}", "src"))
    if not found:
        sys.exit(f"{CRATE}-{VERSION} not found under {home}/registry/src")
    return found[0]


def module_of(root, path):
    rel = os.path.relpath(os.path.dirname(path), root)
    return [] if rel == "." else rel.split(os.sep)


def definition_name(module):
    dotted = ".".join(module) + "."
    for rust, openapi in PREFIXES:
        if dotted.startswith(rust):
            return openapi + dotted[len(rust):]
    raise ValueError(f"no OpenAPI prefix for module {module}")


def resolve(module, rust_type):
    """The definition name of a Rust type path as written inside `module`."""
    parts = [p for p in rust_type.replace(" ", "").split("::") if p]
    base = list(module)
    while parts and parts[0] == "super":
        base.pop()
        parts.pop(0)
    return definition_name(base + parts[:-1]) + parts[-1]


def inner_type(rust_type):
    """Strips Option<>, Vec<>, Box<> and map wrappers down to the message path."""
    t = re.sub(r"\s+", "", rust_type).replace(",>", ">")
    m = re.match(r".*BTreeMap<::prost::alloc::string::String,(.*)>$", t)
    if m:
        t = m.group(1)
    changed = True
    while changed:
        changed = False
        for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
            if t.startswith(wrapper) and t.endswith(">"):
                t = t[len(wrapper):-1]
                changed = True
    return t


def parse_file(root, path, messages):
    module = module_of(root, path)
    prefix = definition_name(module)
    lines = [l.strip() for l in open(path, encoding="utf-8")]
    current = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = STRUCT.match(line)
        if m:
            current = prefix + m.group(1)
            messages[current] = []
        elif line == "}":
            current = None
        elif current and ATTR.match(line):
            attr = ATTR.match(line).group(1)
            # The field declaration may span several lines.
            decl = ""
            i += 1
            while True:
                decl += lines[i]
                if decl.endswith(",") and decl.count("<") == decl.count(">"):
                    break
                i += 1
            fm = FIELD.match(decl)
            if not fm:
                raise ValueError(f"{path}: cannot parse field {decl!r}")
            name, rust_type = fm.groups()
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            repeated = "repeated" in attr
            mm = re.match(r'btree_map = "string, (\w+)"', attr)
            if mm:
                value = mm.group(1)
                kind = "map"
                vtype = resolve(module, inner_type(rust_type)) if value == "message" else value
            else:
                kind = attr.split(",")[0].split("=")[0].strip()
                vtype = resolve(module, inner_type(rust_type)) if kind == "message" else kind
            messages[current].append({"tag": tag, "field": name, "kind": kind, "type": vtype, "repeated": repeated})
        i += 1


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def norm(name):
    return name.replace("_", "").lower()


def main():
    root = source_dir(sys.argv)
    messages = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*.rs"), recursive=True)):
        if os.path.basename(path) == "mod.rs" and os.path.dirname(path) != root:
            parse_file(root, path, messages)
    definitions = json.load(open(DEFINITIONS, encoding="utf-8"))
    # prost renames some messages (HostIP -> HostIp); use the definition names throughout.
    canonical = {n.lower(): n for n in definitions}
    rename = lambda n: canonical.get(n.lower(), n)
    messages = {rename(n): fs for n, fs in messages.items()}
    for fs in messages.values():
        for f in fs:
            f["type"] = rename(f["type"])

    wanted, queue = set(), [n for n in definitions if n in messages]
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        for f in messages[name]:
            if f["type"] in messages:
                queue.append(f["type"])

    out = {}
    for name in sorted(wanted):
        props = (definitions.get(name) or {}).get("properties") or {}
        by_norm = {norm(p): p for p in props}
        fields = []
        for f in messages[name]:
            json_name = by_norm.get(norm(f["field"]))
            if json_name is None and f["kind"] == "message" and props:
                # A Go struct embedded inline (LocalObjectReference in ConfigMapEnvSource...):
                # protobuf nests it, JSON flattens its fields into the parent.
                # (Most, not all: the embedded struct may have fields newer than the schema.)
                # An embedded struct may itself embed one (NamedRuleWithOperations embeds
                # RuleWithOperations, which embeds Rule): count the grandchildren's fields too.
                inner = set()
                for g in messages.get(f["type"], []):
                    inner.add(norm(g["field"]))
                    if g["kind"] == "message" and norm(g["field"]) not in by_norm:
                        inner |= {norm(h["field"]) for h in messages.get(g["type"], [])}
                if inner and 2 * len(inner & set(by_norm)) > len(inner):
                    json_name = ""
            if json_name is None:
                if props:
                    # A field newer than the served schema: decoded under its proto name, so
                    # field validation reports it as the unknown field it is here.
                    print(f"note: {name}.{f['field']} is not in definitions.json", file=sys.stderr)
                json_name = camel(f["field"])
            required = set((definitions.get(name) or {}).get("required") or [])
            keep_zero = json_name in required or json_name in POINTER_ZERO
            fields.append([f["tag"], json_name, f["kind"], f["type"], f["repeated"], keep_zero])
        out[name] = fields
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(out, fh, separators=(",", ":"), sort_keys=True)
        fh.write("\n")
    print(f"{OUT}: {len(out)} messages")


if __name__ == "__main__":
    main()
