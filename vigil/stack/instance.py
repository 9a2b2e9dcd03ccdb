"""Which vigil instance a data dir belongs to: an id written once, answered by the API's
/health, so the CLI never reads another instance's history by mistake."""

from __future__ import annotations

import uuid
from pathlib import Path

FILE = "instance-id"


def instance_id(data_dir: Path, *, create: bool = False) -> str | None:
    """The id of the instance whose data dir is ``data_dir``; made on first use if ``create``."""
    path = data_dir / FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    data_dir.mkdir(parents=True, exist_ok=True)
    made = uuid.uuid4().hex
    path.write_text(made + "\n")
    return made
