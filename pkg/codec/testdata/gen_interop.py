#!/usr/bin/env python3
"""Generate interop/*.bin: Avro Single Object Encoding written by fastavro
(schemaless_writer for the body, header built here from fastavro's own
CRC-64-AVRO fingerprint), with interop/*.json holding what pkg/codec must
decode them to. interop_test.go checks them without needing Python.

    pip install fastavro
    python3 pkg/codec/testdata/gen_interop.py

Each .json is {"schema": <file under schemas/>, "kind": "event"|"envelope",
"expect": ...}. For events, expect is the JSON DataToJSON must produce
(the latest version's shape, defaults filled in for fields the writer's
version lacks). For envelopes it lists the envelope fields, with data and
previous_data naming the fixture whose bytes they must equal.
"""

import datetime
import decimal
import io
import json
import pathlib
import uuid

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

HERE = pathlib.Path(__file__).resolve().parent
SCHEMAS = HERE.parent.parent.parent / "schemas"
OUT = HERE / "interop"

UTC = datetime.timezone.utc


def soe(schema_file, record):
    raw = json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8"))
    parsed = fastavro.parse_schema(raw)
    fp = fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO")
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return b"\xc3\x01" + bytes.fromhex(fp) + buf.getvalue()


FIXTURES = {}


def event(name, schema_file, record, expect):
    FIXTURES[name] = (schema_file, "event", soe(schema_file, record), expect)


# payment.succeeded written with v1: read as v2, fee_amount and receipt_url
# take their defaults.
event(
    "payment_succeeded_v1",
    "events/payment.succeeded/v1.avsc",
    {
        "payment_id": "pay_1",
        "order_id": None,
        "customer_id": "cus_1",
        "amount": 4999,
        "currency": "USD",
        "method": "card",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2029},
        "metadata": {"a": "1", "b": "two"},
        "captured_at": datetime.datetime(2026, 11, 23, 18, 21, 7, 123000, tzinfo=UTC),
    },
    {
        "payment_id": "pay_1",
        "order_id": None,
        "customer_id": "cus_1",
        "amount": 4999,
        "currency": "USD",
        "method": "card",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2029},
        "metadata": {"a": "1", "b": "two"},
        "captured_at": "2026-11-23T18:21:07.123Z",
        "fee_amount": 0,
        "receipt_url": None,
    },
)

event(
    "payment_succeeded_v2",
    "events/payment.succeeded/v2.avsc",
    {
        "payment_id": "pay_2",
        "order_id": "ord_2",
        "customer_id": "cus_2",
        "amount": -9223372036854775808,
        "currency": "EUR",
        "method": "wallet",
        "card": None,
        "metadata": {},
        "captured_at": datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        "fee_amount": 9223372036854775807,
        "receipt_url": "https://r.example/\u00e9\u2603\U0001f600",
    },
    {
        "payment_id": "pay_2",
        "order_id": "ord_2",
        "customer_id": "cus_2",
        "amount": -9223372036854775808,
        "currency": "EUR",
        "method": "wallet",
        "card": None,
        "metadata": {},
        "captured_at": "1969-12-31T23:59:59.999Z",
        "fee_amount": 9223372036854775807,
        "receipt_url": "https://r.example/\u00e9\u2603\U0001f600",
    },
)

event(
    "payment_failed_v1",
    "events/payment.failed/v1.avsc",
    {
        "payment_id": "pay_3",
        "order_id": "ord_3",
        "customer_id": "cus_3",
        "amount": 100,
        "currency": "USD",
        "method": "bank_transfer",
        "failure_code": "fraud_suspected",
        "failure_message": 'Line 1\nLine "2"\t\u0001',
        "retryable": False,
        "attempt": 2147483647,
        "next_retry_at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "failed_at": datetime.datetime(2026, 1, 1, tzinfo=UTC),
    },
    {
        "payment_id": "pay_3",
        "order_id": "ord_3",
        "customer_id": "cus_3",
        "amount": 100,
        "currency": "USD",
        "method": "bank_transfer",
        "failure_code": "fraud_suspected",
        "failure_message": 'Line 1\nLine "2"\t\u0001',
        "retryable": False,
        "attempt": 2147483647,
        "next_retry_at": "2026-01-02T03:04:05.000Z",
        "failed_at": "2026-01-01T00:00:00.000Z",
        "decline_code": None,
    },
)

event(
    "order_created",
    "events/order.created/v1.avsc",
    {
        "order_id": "ord_4",
        "customer_id": "cus_4",
        "items": [
            {"sku": "A", "name": "Thing", "quantity": 3, "unit_price": 1250, "tax_rate": decimal.Decimal("0.0825")},
            {"sku": "B", "name": "Other", "quantity": -1, "unit_price": 0, "tax_rate": decimal.Decimal("-0.5000")},
        ],
        "subtotal": 3750,
        "tax": 309,
        "shipping": 0,
        "total": 4059,
        "currency": "USD",
        "shipping_address": {
            "line1": "1 Main St",
            "line2": None,
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "notes": None,
        "metadata": {"k": "v"},
        "created_at": datetime.datetime(2026, 11, 23, 0, 0, 0, 1000, tzinfo=UTC),
    },
    {
        "order_id": "ord_4",
        "customer_id": "cus_4",
        "items": [
            {"sku": "A", "name": "Thing", "quantity": 3, "unit_price": 1250, "tax_rate": "0.0825"},
            {"sku": "B", "name": "Other", "quantity": -1, "unit_price": 0, "tax_rate": "-0.5000"},
        ],
        "subtotal": 3750,
        "tax": 309,
        "shipping": 0,
        "total": 4059,
        "currency": "USD",
        "shipping_address": {
            "line1": "1 Main St",
            "line2": None,
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "notes": None,
        "metadata": {"k": "v"},
        "created_at": "2026-11-23T00:00:00.001Z",
    },
)

event(
    "order_shipped",
    "events/order.shipped/v1.avsc",
    {
        "order_id": "ord_5",
        "shipment_id": "shp_5",
        "carrier": "dhl",
        "tracking_number": "JD0001",
        "tracking_url": None,
        "items": [{"sku": "A", "quantity": 1}],
        "estimated_delivery": datetime.date(2026, 12, 24),
        "shipped_at": datetime.datetime(2026, 12, 20, 12, 0, tzinfo=UTC),
    },
    {
        "order_id": "ord_5",
        "shipment_id": "shp_5",
        "carrier": "dhl",
        "tracking_number": "JD0001",
        "tracking_url": None,
        "items": [{"sku": "A", "quantity": 1}],
        "estimated_delivery": "2026-12-24",
        "shipped_at": "2026-12-20T12:00:00.000Z",
    },
)

event(
    "resource_updated",
    "events/resource.updated/v1.avsc",
    {
        "resource_id": "res_6",
        "resource_type": "doc",
        "name": "Spec",
        "owner_id": "usr_6",
        "visibility": "public",
        "attributes": {"x": "1"},
        "tags": ["a", "b"],
        "revision": 3,
        "changes": [
            {"field": "name", "old_value": ("string", "Draft"), "new_value": ("string", "Spec")},
            {"field": "size", "old_value": None, "new_value": ("long", 1024)},
            {"field": "ratio", "old_value": ("double", 0.1), "new_value": ("double", 1e300)},
            {"field": "done", "old_value": ("boolean", False), "new_value": ("boolean", True)},
        ],
        "updated_by": None,
        "updated_at": datetime.datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
    },
    {
        "resource_id": "res_6",
        "resource_type": "doc",
        "name": "Spec",
        "owner_id": "usr_6",
        "visibility": "public",
        "attributes": {"x": "1"},
        "tags": ["a", "b"],
        "revision": 3,
        "changes": [
            {"field": "name", "old_value": {"string": "Draft"}, "new_value": {"string": "Spec"}},
            {"field": "size", "old_value": None, "new_value": {"long": 1024}},
            {"field": "ratio", "old_value": {"double": 0.1}, "new_value": {"double": 1e300}},
            {"field": "done", "old_value": {"boolean": False}, "new_value": {"boolean": True}},
        ],
        "updated_by": None,
        "updated_at": "2026-11-23T18:00:00.000Z",
    },
)

event(
    "resource_created",
    "events/resource.created/v1.avsc",
    {
        "resource_id": "res_7",
        "resource_type": "file",
        "name": "blob",
        "owner_id": None,
        "visibility": "private",
        "attributes": {},
        "tags": [],
        "checksum": bytes(range(32)),
        "created_at": datetime.datetime(2026, 11, 23, tzinfo=UTC),
    },
    {
        "resource_id": "res_7",
        "resource_type": "file",
        "name": "blob",
        "owner_id": None,
        "visibility": "private",
        "attributes": {},
        "tags": [],
        "checksum": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "created_at": "2026-11-23T00:00:00.000Z",
    },
)

event(
    "user_password_reset",
    "events/user.password_reset/v1.avsc",
    {
        "user_id": "usr_8",
        "request_id": uuid.UUID("3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b"),
        "ip_address": "2001:db8::1",
        "user_agent": None,
        "requested_at": datetime.datetime(2026, 11, 23, 18, 30, tzinfo=UTC),
        "expires_at": datetime.datetime(2026, 11, 23, 19, 30, tzinfo=UTC),
    },
    {
        "user_id": "usr_8",
        "request_id": "3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b",
        "ip_address": "2001:db8::1",
        "user_agent": None,
        "requested_at": "2026-11-23T18:30:00.000Z",
        "expires_at": "2026-11-23T19:30:00.000Z",
    },
)

event(
    "user_created_v1",
    "events/user.created/v1.avsc",
    {
        "user_id": "usr_9",
        "email": "a@example.com",
        "name": "A",
        "role": "viewer",
        "auth_provider": "saml",
        "email_verified": True,
        "metadata": {"z": "last", "a": "first"},
        "created_at": datetime.datetime(2026, 11, 23, tzinfo=UTC),
    },
    {
        "user_id": "usr_9",
        "email": "a@example.com",
        "name": "A",
        "role": "viewer",
        "auth_provider": "saml",
        "email_verified": True,
        "metadata": {"a": "first", "z": "last"},
        "created_at": "2026-11-23T00:00:00.000Z",
        "locale": "en-US",
        "time_zone": None,
    },
)


def envelope(name, record, expect):
    FIXTURES[name] = ("envelope.avsc", "envelope", soe("envelope.avsc", record), expect)


envelope(
    "envelope_payment_v1",
    {
        "id": "evt_1",
        "type": "payment.succeeded",
        "tenant_id": "ten_1",
        "occurred_at": datetime.datetime(2026, 11, 23, 18, 21, 7, 500000, tzinfo=UTC),
        "data": FIXTURES["payment_succeeded_v1"][2],
        "previous_data": None,
    },
    {
        "id": "evt_1",
        "type": "payment.succeeded",
        "tenant_id": "ten_1",
        "occurred_at": "2026-11-23T18:21:07.500Z",
        "data": "payment_succeeded_v1",
        "previous_data": None,
    },
)

envelope(
    "envelope_resource_updated",
    {
        "id": "evt_2",
        "type": "resource.updated",
        "tenant_id": "ten_2",
        "occurred_at": datetime.datetime(2026, 11, 23, 18, 0, tzinfo=UTC),
        "data": FIXTURES["resource_updated"][2],
        "previous_data": FIXTURES["resource_updated"][2],
    },
    {
        "id": "evt_2",
        "type": "resource.updated",
        "tenant_id": "ten_2",
        "occurred_at": "2026-11-23T18:00:00.000Z",
        "data": "resource_updated",
        "previous_data": "resource_updated",
    },
)


def main():
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    for name, (schema_file, kind, data, expect) in FIXTURES.items():
        (OUT / (name + ".bin")).write_bytes(data)
        meta = {"schema": schema_file, "kind": kind, "writer": "fastavro " + fastavro.__version__, "expect": expect}
        (OUT / (name + ".json")).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(FIXTURES)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
