"""An independent check of mcas-webhook's Standard Webhooks signatures with the PyPI
`standardwebhooks` package (the project's reference library).

Reads JSON on stdin: {"secret": "whsec_...", "deliveries": [{"headers": {...}, "body": "..."}]}.
Verifies every delivery (exit 1 on the first failure), then signs a message of its own and
prints JSON: {"verified": N, "signed": {"id", "timestamp", "signature", "body"}} so the Rust
side can check its verifier against the library's signer.
"""
import json
import sys
import time
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
hook = Webhook(request["secret"])
verified = 0
for delivery in request["deliveries"]:
    try:
        hook.verify(delivery["body"], delivery["headers"])
    except WebhookVerificationError as error:
        print(f"verification failed: {error}", file=sys.stderr)
        sys.exit(1)
    verified += 1

# A wrong key must fail on the same deliveries.
wrong = Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
for delivery in request["deliveries"]:
    try:
        wrong.verify(delivery["body"], delivery["headers"])
    except WebhookVerificationError:
        continue
    print("a wrong key verified a delivery", file=sys.stderr)
    sys.exit(1)

now = int(time.time())
body = '{"AlertName":"signed by the reference library"}'
signature = hook.sign("msg_from_python", datetime.fromtimestamp(now, tz=timezone.utc), body)
print(json.dumps({
    "verified": verified,
    "signed": {"id": "msg_from_python", "timestamp": str(now), "signature": signature, "body": body},
}))
