"""Lay out the Kubernetes JSON schemas of the kubernetes-validate package the way kubeconform reads them."""

# kubernetes-validate ships strict schemas per Kubernetes release whose $refs point at
# "/api/_definitions.json" under an https://kubernetes.io/ $id (its own resolver maps them); kubeconform resolves
# $refs like any JSON Schema tool, so the copy drops the $ids and makes the refs relative to the file.

import json
import sys
from pathlib import Path

import kubernetes_validate

REF_PREFIX = "/api/_definitions.json"


def relative_refs(node: object) -> object:
    """The schema with $id removed and the definitions $refs made relative."""
    if isinstance(node, dict):  # "$ref" and "$id" are also property names (in JSONSchemaProps): strings only
        return {
            key: value.replace(REF_PREFIX, "_definitions.json", 1)
            if key == "$ref" and isinstance(value, str)
            else relative_refs(value)
            for key, value in node.items()
            if not (key == "$id" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [relative_refs(item) for item in node]
    return node


def main() -> None:
    version, out = sys.argv[1], Path(sys.argv[2])
    src = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    dst = out / f"v{version}-local-strict"
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*.json"):
        schema = relative_refs(json.loads(path.read_text(encoding="utf-8")))
        (dst / path.name).write_text(json.dumps(schema), encoding="utf-8")


if __name__ == "__main__":
    main()
