"""A webhook task (`vigil tasks webhook counter` prints its URL): counts the requests it
gets in the key-value store and tells the ops channel about large ones. Try it without the
stack:

    vigil tasks run examples/tasks/counter.py --local --payload '{"amount": 5000}'
"""


def handler(event, context):
    amount = float(event["request"]["body"].get("amount", 0))
    seen = int(context.kv.get("counter:requests") or 0) + 1
    context.kv.put("counter:requests", str(seen))
    if amount >= 1000:
        context.notify.send("ops-webhook", "large request", f"request {seen}: {amount:,.0f}")
    print(f"request {seen}: amount {amount}")
    return {"requests": seen, "large": amount >= 1000}
