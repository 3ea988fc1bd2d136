#!/usr/bin/env python3
"""Generate fingerprints.json: Parsing Canonical Forms and CRC-64-AVRO
fingerprints computed by fastavro, an Avro implementation independent of
pkg/codec, for every .avsc file under schemas/ and for hand-written tricky
schemas. canonical_test.go checks pkg/codec against them.

Run from anywhere after adding or changing a schema:

    pip install fastavro
    python3 pkg/codec/testdata/gen_fingerprints.py

"fingerprint" is fastavro's hex string: the 8 fingerprint bytes in
little-endian order, exactly as they follow C3 01 in a Single Object
Encoding header.
"""

import json
import pathlib

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent  # repository root
SCHEMAS = ROOT / "schemas"

# Hand-written schemas exercising the Parsing Canonical Form rules. Each is
# kept as text: the Go test feeds the same bytes to CanonicalForm.
TRICKY = {
    "nested_namespaces": """
{"type": "record", "name": "Outer", "namespace": "a.b", "fields": [
  {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
    {"name": "deep", "type": {"type": "record", "name": "Deep", "namespace": "c.d", "fields": [
      {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
      {"name": "e2", "type": "E"}
    ]}},
    {"name": "deep2", "type": "c.d.Deep"}
  ]}},
  {"name": "inner2", "type": "Inner"},
  {"name": "inner3", "type": "a.b.Inner"}
]}
""",
    "dotted_name_overrides_namespace": """
{"type": "record", "name": "x.y.Rec", "namespace": "ignored.ns", "fields": [
  {"name": "f", "type": {"type": "fixed", "name": "F", "size": 4}},
  {"name": "g", "type": "x.y.F"}
]}
""",
    "logical_types": """
{"type": "record", "name": "Logical", "namespace": "lt", "fields": [
  {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "local_ts", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "tod", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
  {"name": "big", "type": {"type": "fixed", "name": "Dec16", "size": 16, "logicalType": "decimal", "precision": 38, "scale": 10}},
  {"name": "span", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
  {"name": "opt_ts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}
]}
""",
    "enum_with_default_doc_aliases": """
{"type": "enum", "name": "Suit", "namespace": "cards", "doc": "A card suit",
 "aliases": ["OldSuit", "other.Suit"], "symbols": ["SPADES", "HEARTS", "DIAMONDS", "CLUBS"],
 "default": "HEARTS"}
""",
    "fixed_with_aliases_and_namespace": """
{"type": "fixed", "name": "MD5", "namespace": "org.example.hash", "aliases": ["Hash"], "size": 16, "doc": "digest"}
""",
    "field_attributes_stripped": """
{"type": "record", "name": "Attrs", "doc": "doc is stripped", "aliases": ["A1"], "fields": [
  {"name": "a", "type": "int", "default": 42, "order": "descending", "doc": "x", "aliases": ["aa"]},
  {"name": "b", "type": {"type": "string", "avro.java.string": "String"}, "default": "hi", "order": "ignore"},
  {"name": "c", "type": {"type": "array", "items": "long", "custom": {"k": [1, 2]}}, "default": [1, 2, 3]},
  {"name": "d", "type": {"type": "map", "values": ["null", "double"]}, "default": {"k": null}},
  {"name": "e", "type": ["string", "null"], "default": "s", "connect.name": "E"}
]}
""",
    "null_namespace_reset": """
{"type": "record", "name": "Top", "namespace": "ns.one", "fields": [
  {"name": "a", "type": {"type": "record", "name": "NoNs", "namespace": "", "fields": [
    {"name": "b", "type": {"type": "enum", "name": "Color", "symbols": ["RED"]}},
    {"name": "b2", "type": "Color"}
  ]}},
  {"name": "c", "type": {"type": "record", "name": "Back", "fields": [{"name": "x", "type": "int"}]}},
  {"name": "d", "type": "ns.one.Back"}
]}
""",
    "recursive_linked_list": """
{"type": "record", "name": "LongList", "aliases": ["LinkedLongs"], "fields": [
  {"name": "value", "type": "long"},
  {"name": "next", "type": ["null", "LongList"], "default": null}
]}
""",
    "unions_of_everything": """
{"type": "record", "name": "U", "namespace": "u", "fields": [
  {"name": "v", "type": ["null", "boolean", "int", "long", "float", "double", "bytes", "string",
     {"type": "array", "items": "string"}, {"type": "map", "values": "int"},
     {"type": "enum", "name": "K", "symbols": ["A", "B"]},
     {"type": "fixed", "name": "Two", "size": 2},
     {"type": "record", "name": "Pair", "fields": [{"name": "l", "type": "K"}, {"name": "r", "type": "Two"}]}]},
  {"name": "w", "type": ["Pair", "null"]}
]}
""",
    "error_type": """
{"type": "error", "name": "Oops", "namespace": "err", "fields": [{"name": "message", "type": "string"}]}
""",
    "whitespace_and_unicode_doc": """
{
    "type"  :  "record" ,
    "name"  :  "Spaced" ,
    "doc"   :  "caf\\u00e9 \\u2603 \u00fc",
    "fields": [
        { "name" : "x" , "type" : { "type" : "int" } } ,
        { "name" : "y" , "type" : [ "null" , { "type" : "string" } ] , "default" : null }
    ]
}
""",
    "top_level_array_map": """
{"type": "array", "items": {"type": "map", "values": {"type": "record", "name": "Cell", "namespace": "grid", "fields": [{"name": "v", "type": "float"}]}}}
""",
    "primitive_object_with_logical": """
{"type": "long", "logicalType": "timestamp-millis"}
""",
    "enum_reused_across_fields": """
{"type": "record", "name": "Shipment", "namespace": "s", "fields": [
  {"name": "from", "type": {"type": "enum", "name": "Country", "namespace": "geo", "symbols": ["US", "FR", "JP"], "default": "US"}},
  {"name": "to", "type": "geo.Country"},
  {"name": "via", "type": {"type": "array", "items": "geo.Country"}, "default": []}
]}
""",
}


def entry(name, text, file=None):
    pcf = to_parsing_canonical_form(json.loads(text))
    e = {
        "name": name,
        "schema": text,
        "canonical": pcf,
        "fingerprint": fingerprint(pcf, "CRC-64-AVRO"),
    }
    if file is not None:
        e["file"] = file
    return e


def main():
    entries = []
    for path in sorted(SCHEMAS.rglob("*.avsc")):
        rel = path.relative_to(SCHEMAS).as_posix()
        entries.append(entry(rel, path.read_text(encoding="utf-8"), file=rel))
    for name, text in TRICKY.items():
        entries.append(entry(name, text))
    out = {"generator": "fastavro " + fastavro.__version__, "schemas": entries}
    (HERE / "fingerprints.json").write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(entries)} entries to {HERE / 'fingerprints.json'}")


if __name__ == "__main__":
    main()
