"""A task a monitor triggers (monitors/token-transfers.yaml names it in `tasks:`): it gets
the block's matches as webhooks get them, keeps a running total in the key-value store and
tells the ops channel. Try it without the stack:

    echo '{"events": [{"blockNumber": "0x2",
      "matchReasons": [{"params": {"value": "5000000000000000000000"}}]}]}' > large.json
    vigil tasks run examples/tasks/large-transfers.py --local --payload @large.json
"""

DECIMALS = 10**18


def handler(event, context):
    events = event["request"]["body"]["events"]
    moved = sum(
        int(reason["params"]["value"])
        for match in events
        for reason in match.get("matchReasons", [])
        if "value" in (reason.get("params") or {})
    )
    total = int(context.kv.get("large-transfers:total") or 0) + moved
    context.kv.put("large-transfers:total", str(total))
    block = int(events[0]["blockNumber"], 16)
    message = (
        f"{len(events)} large transfer(s) in block {block}: {moved / DECIMALS:,.0f} VDT "
        f"({total / DECIMALS:,.0f} VDT since the first)"
    )
    context.notify.send("ops-webhook", "large transfers", message)
    return {"block": block, "moved": str(moved), "total": str(total)}
