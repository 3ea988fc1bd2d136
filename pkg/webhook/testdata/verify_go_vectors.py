#!/usr/bin/env python3
"""Verify testdata/go_vectors.json (signed by this Go package) with the Python
reference library of Standard Webhooks (PyPI "standardwebhooks").

    pip install standardwebhooks==1.1.0
    python3 testdata/verify_go_vectors.py

Each vector is verified once per secret, as a receiver holding only that
secret during a rotation would. Only the library's clock is frozen at the
vector's timestamp; signing, parsing and comparison are the library's own.
Exits non-zero on the first failure. Not run by `go test`.
"""
import datetime as dt
import json
import os
import sys

from standardwebhooks import webhooks
from standardwebhooks.webhooks import Webhook


def freeze(ts):
    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.fromtimestamp(ts, tz=tz)

    webhooks.datetime = Frozen


path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go_vectors.json")
with open(path, encoding="utf-8") as f:
    vectors = json.load(f)["vectors"]

checks = 0
for i, v in enumerate(vectors):
    freeze(v["timestamp"])
    headers = {"webhook-id": v["id"], "webhook-timestamp": str(v["timestamp"]), "webhook-signature": v["signature"]}
    for secret in v["secrets"]:
        Webhook(secret).verify(v["body"].encode("utf-8"), headers, json_parse=False)
        checks += 1
    # A wrong body must fail, or the check above proves nothing.
    try:
        Webhook(v["secrets"][0]).verify((v["body"] + "x").encode("utf-8"), headers, json_parse=False)
    except webhooks.WebhookVerificationError:
        pass
    else:
        sys.exit(f"vector {i}: tampered body verified")

print(f"{len(vectors)} vectors, {checks} signatures verified by standardwebhooks")
