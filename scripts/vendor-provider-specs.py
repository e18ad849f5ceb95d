#!/usr/bin/env python3
"""Vendor trimmed copies of the providers' OpenAPI descriptions for ARO's schema tests.

Why: the tests in `crates/integrations` and `crates/sandbox` check what ARO sends and what the
sandbox answers against Twilio's, Stripe's and Calendly's own API descriptions. The full
descriptions are large (Stripe's alone is 4 MB) and live outside the repository, so a clean
clone could not run those tests. This script cuts each description down to the operations and
component schemas the tests use, follows every `$ref` they reach so the result is a complete
document, and writes it as JSON into `tests/fixtures/provider-specs/`, where the tests read it.
JSON-pointer paths (`/paths/...`, `/components/schemas/...`) stay those of the original.

What is trimmed, beyond dropping unused operations and schemas:
- Stripe: an "expandable" field (one with `x-expansionResources`) accepts either an ID string
  or the expanded object. The expanded-object branches are dropped (the field then accepts the
  ID string only, and names what was dropped in `x-vendored-trimmed-expansions`), because
  following them pulls in most of Stripe's 560 schemas and neither ARO nor the sandbox expands
  anything. The catch-all `default` error responses are dropped for the same reason.
- Calendly: the YAML is read with YAML 1.2 core-schema scalars (as the Rust tests' YAML reader
  did): only `true`/`false` are booleans and dates stay strings.
- Top-level keys other than `openapi`, `info`, `servers`, `security`, `tags` (filtered to the
  kept operations), `paths` and `components` are left out.
Each output records its source file, the file's SHA-256, its provenance (from the folder's
README.md) and what was kept under the top-level `x-vendored` key.

Requirements: Python >= 3.9 and PyYAML (`pip install pyyaml`, any 5.x or 6.x); nothing else.

Usage:
    scripts/vendor-provider-specs.py PROVIDER_SPECS_DIR [--out DIR] [--check]

PROVIDER_SPECS_DIR holds the full descriptions and their README.md. `--out` defaults to
`tests/fixtures/provider-specs/` beside this script's repository. `--check` writes nothing and
exits with status 1 if a vendored file is missing or differs from what would be written.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the user, not a code path
    sys.exit("PyYAML is required: pip install pyyaml")

SCRIPT = "scripts/vendor-provider-specs.py"
MAX_BYTES = 500_000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Source:
    """One description to vendor and what of it the tests use."""

    file: str
    output: str
    # (path, method) pairs whose operations are kept whole (except `responses`, see below).
    operations: tuple[tuple[str, str], ...] = ()
    # Component schemas the tests reference directly.
    schemas: tuple[str, ...] = ()
    # Response codes kept per operation; None keeps them all.
    responses: tuple[str, ...] | None = None
    prune_expansions: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


TWILIO_MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
TWILIO_MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
TWILIO_ACCOUNT = "/2010-04-01/Accounts/{Sid}.json"

SOURCES = (
    Source(
        file="twilio_api_v2010.json",
        output="twilio_api_v2010.json",
        # CreateMessage (the client's request body), ListMessage and FetchMessage (the
        # look-up's query and path parameters, the sandbox's list page) and FetchAccount (the
        # executor's credential check at start).
        operations=(
            (TWILIO_MESSAGES, "post"),
            (TWILIO_MESSAGES, "get"),
            (TWILIO_MESSAGE, "get"),
            (TWILIO_ACCOUNT, "get"),
        ),
        schemas=("api.v2010.account.message", "api.v2010.account"),
    ),
    Source(
        file="stripe_spec3_2022-04.json",
        output="stripe_spec3_2022-04.json",
        # GET /v1/prices (limit=1) is the executor's credential check at start.
        operations=(("/v1/prices", "post"), ("/v1/prices", "get"), ("/v1/payment_links", "post")),
        schemas=("price", "payment_link"),
        responses=("200",),
        prune_expansions=True,
        notes=(
            "expandable fields keep only their ID-string form (dropped branches are listed in "
            "x-vendored-trimmed-expansions)",
            "the operations' `default` error responses are dropped",
        ),
    ),
    Source(
        file="calendly_openapi_2023.yaml",
        output="calendly_openapi_2023.json",
        # The tests validate resources and webhook bodies; GET /users/me is the executor's
        # credential check at start.
        operations=(("/users/me", "get"),),
        schemas=("Invitee", "Event", "WebhookPayload", "User"),
        notes=("converted from YAML (YAML 1.2 core-schema scalars) to JSON",),
    ),
)


class VendorError(Exception):
    """A source does not have the shape this script expects."""


# --- reading -------------------------------------------------------------------------------


class CoreSchemaLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars instead of YAML 1.1's.

    YAML 1.1 would turn `yes`, `on`, `2023-01-01` and `0123` into booleans, dates and octal
    numbers, where the Rust YAML reader the tests used (and JSON) keep strings and decimals.
    """


CoreSchemaLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
):
    CoreSchemaLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _core_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _core_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    if text.lstrip("+-") in (".inf", ".nan"):
        raise VendorError(f"{text} cannot be written as JSON")
    return float(text)


CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _core_int)
CoreSchemaLoader.add_constructor("tag:yaml.org,2002:float", _core_float)


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text) if path.suffix == ".json" else yaml.load(text, CoreSchemaLoader)
    if not isinstance(document, dict):
        raise VendorError(f"{path}: not an OpenAPI document")
    return document


def provenance(readme: Path, file: str) -> dict[str, str]:
    """The `what` and `source` cells of `file`'s row in the folder's README table."""
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].strip("`") == file:
            return {"description": cells[1], "origin": cells[2].replace("`", "")}
    raise VendorError(f"{readme} has no row for {file}")


# --- trimming ------------------------------------------------------------------------------


def refs(node: Any) -> list[str]:
    """Every `$ref` in `node`, in document order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(refs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(refs(item))
    return found


def unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def component_of(ref: str) -> tuple[str, str]:
    """`#/components/<section>/<name>[/...]` as (section, name): the entry to vendor whole."""
    parts = ref.split("/")
    if len(parts) < 4 or parts[0] != "#" or parts[1] != "components":
        raise VendorError(f"unsupported $ref {ref!r} (only #/components/... is handled)")
    return unescape(parts[2]), unescape(parts[3])


def prune_expansions(node: Any) -> Any:
    """Drops the expanded-object branches of Stripe's expandable fields, in place."""
    if isinstance(node, dict):
        if "x-expansionResources" in node:
            branches = node.get("anyOf")
            if not isinstance(branches, list):
                raise VendorError("an expandable field without anyOf")
            kept = [b for b in branches if not (isinstance(b, dict) and "$ref" in b)]
            if not kept:
                raise VendorError("an expandable field without an ID-string branch")
            node["anyOf"] = kept
            node["x-vendored-trimmed-expansions"] = [b["$ref"] for b in branches if b not in kept]
            del node["x-expansionResources"]
        for value in node.values():
            prune_expansions(value)
    elif isinstance(node, list):
        for item in node:
            prune_expansions(item)
    return node


def trim(source: Source, document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The kept `paths` and `components` of `document`."""
    paths: dict[str, Any] = {}
    for path, method in source.operations:
        item = document.get("paths", {}).get(path)
        if not isinstance(item, dict) or method not in item:
            raise VendorError(f"{source.file}: no operation {method.upper()} {path}")
        if path not in paths:
            # Path-level fields (servers, shared parameters, description) travel with it.
            paths[path] = {k: copy.deepcopy(v) for k, v in item.items() if k not in HTTP_METHODS}
        operation = copy.deepcopy(item[method])
        if source.responses is not None:
            operation["responses"] = {
                code: response
                for code, response in operation.get("responses", {}).items()
                if code in source.responses
            }
        paths[path][method] = operation
    # Keep the original order of operations within a path item.
    for path in paths:
        order = list(document["paths"][path])
        paths[path] = dict(sorted(paths[path].items(), key=lambda kv: order.index(kv[0])))

    source_components = document.get("components", {})
    kept: dict[tuple[str, str], Any] = {}
    pending = [f"#/components/schemas/{name}" for name in source.schemas] + refs(paths)
    while pending:
        section, name = component_of(pending.pop(0))
        if (section, name) in kept:
            continue
        entry = source_components.get(section, {}).get(name)
        if entry is None:
            raise VendorError(f"{source.file}: no components/{section}/{name}")
        entry = copy.deepcopy(entry)
        if source.prune_expansions:
            prune_expansions(entry)
        kept[(section, name)] = entry
        pending.extend(refs(entry))

    # Security requirements name schemes in components/securitySchemes.
    schemes = set()
    operations = [op for item in paths.values() for op in item.values() if isinstance(op, dict)]
    for requirements in [document.get("security", [])] + [op.get("security") for op in operations]:
        for requirement in requirements or []:
            schemes.update(requirement)
    available = source_components.get("securitySchemes", {})
    for scheme in schemes:
        if scheme not in available:
            raise VendorError(f"{source.file}: no security scheme {scheme}")
        kept[("securitySchemes", scheme)] = copy.deepcopy(available[scheme])

    components: dict[str, Any] = {}
    for section, entries in source_components.items():
        chosen = {name: kept[(section, name)] for name in entries if (section, name) in kept}
        if chosen:
            components[section] = chosen
    return paths, components


def used_tags(paths: dict[str, Any]) -> set[str]:
    return {
        tag
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", [])
    }


def vendor(source: Source, specs: Path) -> dict[str, Any]:
    path = specs / source.file
    raw = path.read_bytes()
    document = load(path)
    paths, components = trim(source, document)
    tags = used_tags(paths)

    trimming = [
        "only the operations and component schemas ARO's tests use, with every $ref they reach"
    ]
    trimming.extend(source.notes)
    vendored: dict[str, Any] = {
        "x-vendored": {
            "source": source.file,
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            **provenance(specs / "README.md", source.file),
            "trimmed_by": SCRIPT,
            "kept_operations": [
                f"{method.upper()} {p} ({document['paths'][p][method].get('operationId', '-')})"
                for p, method in source.operations
            ],
            "kept_schemas": list(source.schemas),
            "trimming": trimming,
        }
    }
    for key in ("openapi", "info", "servers", "security"):
        if key in document:
            vendored[key] = document[key]
    if tags and "tags" in document:
        vendored["tags"] = [tag for tag in document["tags"] if tag.get("name") in tags]
    vendored["paths"] = paths
    vendored["components"] = components
    check_self_contained(source, vendored)
    return vendored


def check_self_contained(source: Source, document: dict[str, Any]) -> None:
    for ref in refs(document):
        target: Any = document
        for segment in ref.split("/")[1:]:
            if not isinstance(target, dict) or unescape(segment) not in target:
                raise VendorError(f"{source.output}: $ref {ref} does not resolve")
            target = target[unescape(segment)]


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- command line --------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", type=Path, help="folder with the full provider descriptions")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "provider-specs",
        help="where the trimmed JSON files go (default: %(default)s)",
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)

    stale = []
    for source in SOURCES:
        try:
            text = render(vendor(source, args.specs))
        except (OSError, ValueError, yaml.YAMLError, VendorError) as error:
            print(f"{source.file}: {error}", file=sys.stderr)
            return 2
        size = len(text.encode("utf-8"))
        if size >= MAX_BYTES:
            print(f"{source.output}: {size} bytes, over the {MAX_BYTES} limit", file=sys.stderr)
            return 2
        target = args.out / source.output
        if args.check:
            current = target.read_text(encoding="utf-8") if target.exists() else None
            if current != text:
                stale.append(str(target))
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"{target}: {size} bytes")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
