"""`vigil tail`: a topic's records, decoded, as a subscriber sees them."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from vigil.cli.common import settings as _settings
from vigil.cli.common import stack_bootstrap
from vigil.errors import VigilError

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_ms(value: str, now: datetime | None = None) -> int:
    """``--since``: an ISO 8601 time (UTC unless it says) or an age such as 15m, 2h, 3d."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(value.strip())
    if relative:
        at = now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    else:
        try:
            at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise VigilError(
                f"--since: expected an ISO 8601 time such as 2026-12-01T09:00:00Z or an age "
                f"such as 15m, 2h or 3d, got {value!r}"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def _plain(value: Any) -> Any:
    """A decoded Avro value as JSON: times as ISO 8601, bytes as 0x hex."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _topic(settings: Any, name: str) -> str:
    from vigil.schemas.catalogue import CATALOGUE

    names = {settings.topic(t.suffix) for t in CATALOGUE}
    for candidate in (name, settings.topic(name)):
        if candidate in names:
            return candidate
    raise VigilError(
        f"no topic {name!r} in the catalogue; expected one of: "
        f"{', '.join(t.suffix for t in CATALOGUE)} (`vigil topics` says what each holds)"
    )


def tail(
    topic: str = typer.Argument(..., help="a topic from `vigil topics` (with or without prefix)"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="from the oldest kept"),
    since: str | None = typer.Option(
        None, "--since", help="from this time: ISO 8601, or an age such as 15m, 2h, 3d"
    ),
    key: str | None = typer.Option(None, "--key", help="only records with this exact key"),
    count: int | None = typer.Option(None, "--count", min=1, help="stop after this many"),
    stop_at_end: bool = typer.Option(
        False, "--exit", help="stop at the end of the topic instead of waiting for more"
    ),
    fmt: str = typer.Option("text", "--format", help="text | json (one object per line)"),
) -> None:
    """Print a topic's records, decoded (new ones as they come, until Ctrl-C)."""
    from kafka import TopicPartition

    from vigil.schemas.codec import Codec
    from vigil.stack.access import registry_client
    from vigil.streams.kafka import consumer

    if fmt not in ("text", "json"):
        raise VigilError(f"--format: expected text or json, got {fmt!r}")
    if from_beginning and since is not None:
        raise VigilError("--from-beginning and --since both say where to start: give one")
    start_ms = since_ms(since) if since is not None else None
    settings = _settings()
    name = _topic(settings, topic)
    bootstrap = stack_bootstrap(settings, f"read {name} from")
    codec = Codec(registry_client(settings))
    reader = consumer(settings, bootstrap, isolation_level="read_committed")
    try:
        partitions = sorted(reader.partitions_for_topic(name) or ())
        if not partitions:
            raise VigilError(f"{name} does not exist on {bootstrap} yet: has `vigil up` run?")
        tps = [TopicPartition(name, p) for p in partitions]
        reader.assign(tps)
        if from_beginning:
            reader.seek_to_beginning(*tps)
        elif start_ms is not None:
            found = reader.offsets_for_times({tp: start_ms for tp in tps})
            ends = reader.end_offsets(tps)
            for tp in tps:
                at = found.get(tp)
                reader.seek(tp, at.offset if at is not None else ends[tp])
        else:
            reader.seek_to_end(*tps)
        ends = reader.end_offsets(tps)
        printed = 0
        wanted = key.encode() if key is not None else None
        while True:
            for tp, records in reader.poll(timeout_ms=500).items():
                for record in records:
                    if wanted is not None and record.key != wanted:
                        continue
                    _show(codec, tp, record, fmt)
                    printed += 1
                    if count is not None and printed >= count:
                        return
            if stop_at_end and all(reader.position(tp) >= ends[tp] for tp in tps):
                return
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, or `| head` had enough
        return
    finally:
        reader.close()


def _show(codec: Any, tp: Any, record: Any, fmt: str) -> None:
    from vigil.errors import SchemaError, SerializationError

    where = f"{tp.topic}[{tp.partition}]@{record.offset}"
    try:
        value = _plain(codec.decode(record.value, where=where)) if record.value else None
    except (SerializationError, SchemaError) as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return
    key = record.key.decode(errors="replace") if record.key is not None else None
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.timestamp / 1000))
    at += f".{record.timestamp % 1000:03d}Z"
    if fmt == "json":
        line = {
            "topic": tp.topic,
            "partition": tp.partition,
            "offset": record.offset,
            "timestamp": at,
            "key": key,
            "value": value,
        }
        print(json.dumps(line, separators=(",", ":")), flush=True)
    else:
        print(f"{at} {tp.partition}@{record.offset} key={key} {json.dumps(value)}", flush=True)
