#!/usr/bin/env python3
"""Checksum test vectors from an implementation independent of the Rust one.

ToolHive's ConfigMap content checksum (docs: toolhive-formats.md section 3,
Go: `ComputeConfigMapChecksum`), written again here with nothing but the
standard library, so the Rust tests compare `content_checksum` with values it
did not compute itself.

    scripts/checksum-vectors.py           check: the committed file is what
                                          this script computes (CI runs this)
    scripts/checksum-vectors.py --write   rewrite tests/fixtures/checksum-vectors.json

Before either, the implementation is checked against the vectors the spec
publishes (computed there with Go), and against the committed AdmissionReview
fixture and its pinned answer. To add a vector, add it to VECTORS and run
with --write; the Rust test (tests/normalize.rs) picks it up.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS_FILE = ROOT / "tests" / "fixtures" / "checksum-vectors.json"
FIXTURES = ROOT / "tests" / "fixtures"

CONTENT_CHECKSUM = "toolhive.stacklok.dev/content-checksum"


def content_checksum(configmap):
    """One SHA-256 over data, then labels, then annotations (less the
    checksum itself): each map's keys in UTF-8 byte order (Go's
    sort.Strings), key bytes then value bytes, no separators. binaryData,
    name, namespace and everything else are left out. A null or absent map
    counts as empty, as Go's nil map does."""
    digest = hashlib.sha256()

    def feed(mapping, skipped=None):
        for key in sorted(mapping or {}, key=lambda k: k.encode("utf-8")):
            if key != skipped:
                digest.update(key.encode("utf-8"))
                digest.update(mapping[key].encode("utf-8"))

    metadata = configmap.get("metadata") or {}
    feed(configmap.get("data"))
    feed(metadata.get("labels"))
    feed(metadata.get("annotations"), skipped=CONTENT_CHECKSUM)
    return digest.hexdigest()


def vmcp_labels(name):
    return {
        "toolhive.stacklok.io/virtual-mcp-server": name,
        "toolhive.stacklok.io/managed-by": "toolhive-operator",
        "toolhive.stacklok.io/component": "vmcp-config",
    }


def vmcp_configmap(data, annotations=None):
    """A vMCP config ConfigMap as tests/normalize.rs builds them."""
    metadata = {"name": "x-vmcp-config", "namespace": "ns", "labels": vmcp_labels("x")}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


# Keys are written out of order on purpose: the implementations must sort.
VECTORS = [
    ("empty object", {}),
    (
        "empty and null maps count as absent",
        {"data": {}, "metadata": {"labels": None, "annotations": {}}},
    ),
    (
        "spec: minimal config with the three vMCP labels",
        {"data": {"config.yaml": "name: x\ngroupRef: g\n"}, "metadata": {"labels": vmcp_labels("x")}},
    ),
    (
        "several data keys in byte order: upper case first, a prefix before its extensions",
        {
            "data": {
                "config.yaml": "name: x\n",
                "config.yaml.bak": "old\n",
                "authserver-config.yaml": "upstreams: []\n",
                "Zeta": "capital Z sorts before a\n",
                "a": "",
            },
            "metadata": {"labels": vmcp_labels("x")},
        },
    ),
    (
        "several labels",
        {
            "data": {"config.yaml": "name: demo\n"},
            "metadata": {
                "labels": {
                    **vmcp_labels("demo"),
                    "app.kubernetes.io/part-of": "toolhive",
                    "app.kubernetes.io/name": "virtualmcpserver",
                    "Team": "platform",
                }
            },
        },
    ),
    (
        "annotations besides content-checksum are hashed; content-checksum is not",
        {
            "data": {"config.yaml": "name: x\n"},
            "metadata": {
                "labels": vmcp_labels("x"),
                "annotations": {
                    CONTENT_CHECKSUM: "stale",
                    "toolhive.stacklok.dev/runconfig-checksum": "not excluded",
                    "kubectl.kubernetes.io/last-applied-configuration": '{"data":{}}\n',
                },
            },
        },
    ),
    (
        "only content-checksum: hashes as if there were no annotations",
        {
            "data": {"config.yaml": "name: x\n"},
            "metadata": {"labels": vmcp_labels("x"), "annotations": {CONTENT_CHECKSUM: "anything"}},
        },
    ),
    (
        "no annotations",
        {"data": {"config.yaml": "name: x\n"}, "metadata": {"labels": vmcp_labels("x")}},
    ),
    (
        # UTF-8 byte order: z < é (c3) < Ａ (ef bc a1) < 😀 (f0 9f 98 80).
        # UTF-16 order would put 😀 (d83d) before Ａ (ff21).
        "non-ASCII keys and values, in UTF-8 byte order",
        {
            "data": {
                "😀": "emoji key",
                "Ａ": "fullwidth A",
                "é": "e acute",
                "z": "名前: Ünïcødé\n",
            },
            "metadata": {
                "labels": {"toolhive.stacklok.io/virtual-mcp-server": "ñandú"},
                "annotations": {"note/ß": "Grüße 🚀", CONTENT_CHECKSUM: "ünused"},
            },
        },
    ),
    (
        "binaryData, name, namespace and owner are not hashed",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "other-name",
                "namespace": "other-namespace",
                "uid": "0e9a7c55-3b21-4d8e-a6f4-91c2b7d8e604",
                "resourceVersion": "48213",
                "ownerReferences": [{"kind": "VirtualMCPServer", "name": "x"}],
                "labels": vmcp_labels("x"),
            },
            "data": {"config.yaml": "name: x\n"},
            "binaryData": {"blob.bin": "AAECAw=="},
        },
    ),
    (
        "no separators: key ab value c ...",
        {"data": {"ab": "c"}},
    ),
    (
        "no separators: ... hashes like key a value bc",
        {"data": {"a": "bc"}},
    ),
    (
        "empty values",
        {"data": {"config.yaml": ""}, "metadata": {"labels": {"empty": ""}}},
    ),
    # Inputs and results of tests/normalize.rs, which looks them up by name.
    (
        "normalize: two backends in order, stale checksum",
        vmcp_configmap(
            {"config.yaml": "backends:\n  - name: a\n  - name: b\n"},
            {CONTENT_CHECKSUM: "stale"},
        ),
    ),
    (
        "normalize: two backends out of order, with authserver-config.yaml",
        vmcp_configmap(
            {
                "config.yaml": "backends:\n  - name: b\n  - name: a\n",
                "authserver-config.yaml": "upstreams:\n  - name: z\n  - name: a\n",
            },
            {CONTENT_CHECKSUM: "stale"},
        ),
    ),
    (
        "normalize: the same, backends in order",
        vmcp_configmap(
            {
                "config.yaml": "backends:\n  - name: a\n  - name: b\n",
                "authserver-config.yaml": "upstreams:\n  - name: z\n  - name: a\n",
            },
            {CONTENT_CHECKSUM: "stale"},
        ),
    ),
]

# Published in the spec, computed there with Go.
SPEC_MINIMAL = "8988151c354a92203e9ff06e6c9ae409ab87ec51940323e401ede65f5e7b8db6"
SPEC_BUGGY_FIXTURE = "9ba036ba5342c5f43365d8ac13e4c6c642149f4d9519cf690e5147e78d60dc48"
SPEC_NORMALIZED_FIXTURE = "32cf106c9df1f5bf6fd492475eb31e30bd0e14a00f18b61ccbc9b589f10501ee"


def check_against_spec():
    """This implementation agrees with the Go-computed vectors of the spec,
    and with the committed review fixture and its pinned answer."""
    minimal = dict(VECTORS)["spec: minimal config with the three vMCP labels"]
    expect(content_checksum(minimal), SPEC_MINIMAL, "the spec's minimal vector")

    review = json.loads((FIXTURES / "vmcp-configmap.review.json").read_text("utf-8"))
    configmap = review["request"]["object"]
    expect(content_checksum(configmap), SPEC_BUGGY_FIXTURE, "vmcp-configmap.review.json")

    # The pinned answer's patch: the normalized config.yaml and its checksum.
    answer = json.loads((FIXTURES / "vmcp-configmap.review.response.json").read_text("utf-8"))
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    ops = {op["path"]: op["value"] for op in patch}
    configmap["data"]["config.yaml"] = ops["/data/config.yaml"]
    expect(content_checksum(configmap), SPEC_NORMALIZED_FIXTURE, "the normalized fixture")
    expect(
        ops["/metadata/annotations/toolhive.stacklok.dev~1content-checksum"],
        SPEC_NORMALIZED_FIXTURE,
        "the checksum in vmcp-configmap.review.response.json",
    )


def expect(got, want, what):
    if got != want:
        sys.exit(f"error: {what}: got {got}, expected {want}")


def render():
    document = {
        "about": "ToolHive content checksums computed by scripts/checksum-vectors.py "
        "(Python hashlib); regenerate with that script, never by hand",
        "vectors": [
            {"name": name, "object": obj, "checksum": content_checksum(obj)}
            for name, obj in VECTORS
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv):
    if argv not in ([], ["--write"]):
        sys.exit(__doc__)
    names = [name for name, _ in VECTORS]
    if len(set(names)) != len(names):
        sys.exit("error: vector names must be unique")
    check_against_spec()
    text = render()
    if argv == ["--write"]:
        VECTORS_FILE.write_text(text, "utf-8")
        print(f"wrote {len(VECTORS)} vectors to {VECTORS_FILE.relative_to(ROOT)}")
        return
    committed = VECTORS_FILE.read_text("utf-8") if VECTORS_FILE.exists() else ""
    if committed != text:
        sys.exit(
            f"error: {VECTORS_FILE.relative_to(ROOT)} is not what "
            "scripts/checksum-vectors.py computes; run it with --write and review the diff"
        )
    print(f"{len(VECTORS)} checksum vectors match {VECTORS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
