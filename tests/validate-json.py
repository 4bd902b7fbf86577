#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""validate-json.py SCHEMA_DIR FILE: check the JSON document in FILE (one kekcrypt --json
output) against the schema its "schema" field names ("kekcrypt.NAME/1": SCHEMA_DIR/NAME.json).
Prints why it does not validate and exits 1; exits 2 when the schema cannot be found."""
import json
import pathlib
import sys

import jsonschema


def main():
    schema_dir, path = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    sid = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(sid, str) or not sid.startswith("kekcrypt.") or not sid.endswith("/1"):
        print(f"{path}: no \"schema\": \"kekcrypt.NAME/1\" field", file=sys.stderr)
        return 1
    spath = schema_dir / (sid[len("kekcrypt."):-len("/1")] + ".json")
    if not spath.is_file():
        print(f"{path}: no schema file {spath} for {sid}", file=sys.stderr)
        return 2
    with open(spath, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # "common.json#/$defs/..." resolves against the schema file's own location.
    resolver = jsonschema.RefResolver(spath.as_uri(), schema)
    errors = sorted(cls(schema, resolver=resolver).iter_errors(doc), key=lambda e: e.path)
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        print(f"{path}: {sid}: at {where}: {e.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
