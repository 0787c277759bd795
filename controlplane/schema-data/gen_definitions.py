#!/usr/bin/env python3
"""Generate definitions.json: the Kubernetes 1.33 schemas kgate's control plane serves.

Source: the PyPI wheel kubernetes-validate==1.37.0 (Apache-2.0), file
kubernetes_validate/kubernetes-json-schema/v1.33.0-local/_definitions.json: the Kubernetes
OpenAPI definitions as JSON Schema 2020-12 under "$defs".

Kinds that 1.33 does not serve at the version kgate serves (resource.k8s.io/v1, storage.k8s.io/v1
VolumeAttributesClass: GA in 1.34, and listed by kube-scheduler 1.34) come from the same wheel's
v1.34.0-local definitions: a definition missing from 1.33 is taken from 1.34 (its names are
versioned, io.k8s.api.resource.v1.*, so the two never collide).

Output: {"<definition name>": <OpenAPI v3 schema>, ...} holding only the definitions reachable
from the kinds in ../src/resources.rs (and their lists) plus the meta types the API server
needs, rewritten to the form kube-apiserver publishes under /openapi/v3:
  - "$ref": "#/$defs/X"          -> "#/components/schemas/X"
  - "type": ["string", "null"]   -> "type": "string"
  - no "enum" on apiVersion / kind
  - IntOrString -> {"type": "string", "format": "int-or-string"}, Quantity -> {"type": "string"}
  - every top-level kind carries "x-kubernetes-group-version-kind" (a list, as kube does)
Descriptions and x-kubernetes-* extensions are kept.

Usage: python3 gen_definitions.py [WHEEL]
Without an argument it downloads the wheel with pip into a temporary directory.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESOURCES_RS = os.path.join(HERE, "..", "src", "resources.rs")
OUT = os.path.join(HERE, "definitions.json")
WHEEL = "kubernetes-validate==1.37.0"
MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.33.0-local/_definitions.json"
NEWER_MEMBER = "kubernetes_validate/kubernetes-json-schema/v1.34.0-local/_definitions.json"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
REVIEW_GROUPS = {"authorization.k8s.io", "authentication.k8s.io"}
# Types the API server returns or accepts besides the served kinds.
EXTRA = [
    META + "Status",
    META + "DeleteOptions",
    META + "Patch",
    META + "WatchEvent",
    META + "APIResourceList",
    META + "APIGroup",
    META + "APIGroupList",
    META + "APIVersions",
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.core.v1.Binding",
    # The body of serviceaccounts/token (kubectl create token sends it as protobuf).
    "io.k8s.api.authentication.v1.TokenRequest",
]
SIMPLE = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
        "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, "
        "for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
}


def load_sources(argv):
    """The 1.33 and 1.34 definitions ("$defs") from the wheel."""

    def read(wheel):
        with zipfile.ZipFile(wheel) as z:
            return (
                json.loads(z.read(MEMBER))["$defs"],
                json.loads(z.read(NEWER_MEMBER))["$defs"],
            )

    if len(argv) > 1:
        return read(argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, WHEEL], check=True
        )
        wheel = [n for n in os.listdir(tmp) if n.endswith(".whl")][0]
        return read(os.path.join(tmp, wheel))


def served_kinds():
    """(group, version, kind) of every row of RESOURCES in resources.rs."""
    text = open(RESOURCES_RS).read()
    consts = dict(re.findall(r'const (\w+): &str = "([^"]*)";', text))
    rows = re.findall(r'def\((\w+|"[^"]*"), "([^"]+)", "([^"]+)",', text)
    out = []
    for group, version, kind in rows:
        group = group.strip('"') if group.startswith('"') else consts[group]
        out.append((group, version, kind))
    return out


def gvks(schema):
    return schema.get("x-kubernetes-group-version-kind", [])


def convert(v, prop_name=None):
    if isinstance(v, list):
        return [convert(x) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if k == "$ref":
            out[k] = x.replace("#/$defs/", "#/components/schemas/")
        elif k == "type" and isinstance(x, list):
            kinds = [t for t in x if t != "null"]
            out[k] = kinds[0] if len(kinds) == 1 else kinds
        elif k == "enum" and prop_name in ("apiVersion", "kind"):
            continue
        elif k == "properties":
            out[k] = {name: convert(s, name) for name, s in x.items()}
        else:
            out[k] = convert(x)
    return out


def refs(v, acc):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "$ref" and isinstance(x, str):
                acc.add(x.rsplit("/", 1)[-1])
            else:
                refs(x, acc)
    elif isinstance(v, list):
        for x in v:
            refs(x, acc)


def main(argv):
    defs, newer = load_sources(argv)
    for name, schema in newer.items():
        defs.setdefault(name, schema)
    roots = list(EXTRA)
    for group, version, kind in served_kinds():
        for want in (kind, kind + "List"):
            names = [
                n
                for n, s in defs.items()
                if {"group": group, "version": version, "kind": want} in gvks(s)
            ]
            if not names and want.endswith("List") and group in REVIEW_GROUPS:
                continue  # reviews are only created, never listed
            if not names:
                sys.exit(f"no definition for {group}/{version} {want}")
            roots.extend(names)
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        acc = set()
        refs(defs[name], acc)
        todo.extend(acc - seen)
    out = {}
    for name in sorted(seen):
        if name in SIMPLE:
            out[name] = SIMPLE[name]
            continue
        schema = convert(defs[name])
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            schema.pop("oneOf", None)
            schema["type"] = "string"
        out[name] = schema
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    print(f"wrote {len(out)} definitions to {OUT}")


if __name__ == "__main__":
    main(sys.argv)
