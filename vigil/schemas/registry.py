"""Schema registry: the Confluent-compatible store vigil serves, and a client for any registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import fastavro
import httpx

from vigil.errors import SchemaError


class Registry(Protocol):
    """What the codec needs from a schema registry."""

    def register(self, subject: str, schema: str) -> int: ...

    def schema_by_id(self, schema_id: int) -> str: ...


def canonical(schema: str) -> str:
    """Parsing Canonical Form of an Avro schema; raises SchemaError when it does not parse."""
    try:
        return fastavro.schema.to_parsing_canonical_form(
            fastavro.parse_schema(json.loads(schema), _write_hint=False)
        )
    except Exception as exc:  # json and fastavro raise many types
        raise SchemaError(f"invalid Avro schema: {exc}") from exc


MODES = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_MODE = "BACKWARD"  # as Confluent's registry


class IncompatibleSchema(SchemaError):
    """A schema the subject's compatibility mode refuses (Confluent answers 409)."""


def incompatibilities(reader: str, writer: str) -> list[str]:
    """Why a consumer with schema ``reader`` cannot read records written with ``writer``
    (Avro's schema resolution rules, by Apache Avro's own checker); empty when it can."""
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
    from avro.schema import parse

    try:
        checked = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
        found = checked.get_compatibility(parse(reader), parse(writer))
    except Exception as exc:  # avro's parser raises several types for a bad schema
        raise SchemaError(f"invalid Avro schema: {exc}") from exc
    if found.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = sorted({str(k.value).replace("_", " ") for k in found.incompatibilities})
    detail = ", ".join(sorted(str(m) for m in found.messages))
    return [f"{', '.join(kinds)}: {detail} (at {', '.join(sorted(found.locations))})"]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SchemaError(f"compatibility: expected one of {', '.join(MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class SchemaVersion:
    """One registered version of a subject."""

    subject: str
    version: int
    id: int
    schema: str

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": self.schema,
        }


class SchemaStore:
    """Subjects, versions and ids with Confluent semantics; persisted through ``append``.

    One schema text gets one id across all subjects; registering a schema a subject already
    has returns the existing id. ``append`` is called with each new version before it becomes
    visible, so a crash never serves an id that was not persisted.
    """

    def __init__(
        self,
        append: Callable[[SchemaVersion], None] | None = None,
        append_mode: Callable[[str | None, str], None] | None = None,
    ) -> None:
        self._append, self._append_mode = append, append_mode
        self._modes: dict[str | None, str] = {}  # subject (None: the default) → mode
        self._lock = threading.Lock()
        self._subjects: dict[str, list[SchemaVersion]] = {}
        self._by_id: dict[int, str] = {}
        self._id_by_canonical: dict[str, int] = {}

    def restore(self, version: SchemaVersion) -> None:
        """Add a version read back from persistence."""
        with self._lock:
            self._add(version)

    def _add(self, version: SchemaVersion) -> None:
        versions = self._subjects.setdefault(version.subject, [])
        if all(v.version != version.version for v in versions):
            versions.append(version)
            versions.sort(key=lambda v: v.version)
        self._by_id[version.id] = version.schema
        self._id_by_canonical.setdefault(canonical(version.schema), version.id)

    def restore_mode(self, subject: str | None, mode: str) -> None:
        """Add a compatibility mode read back from persistence."""
        with self._lock:
            self._modes[subject] = check_mode(mode)

    def mode(self, subject: str | None = None) -> str:
        """The subject's compatibility mode (its own, else the default); None: the default."""
        return self._modes.get(subject) or self._modes.get(None) or DEFAULT_MODE

    def own_mode(self, subject: str) -> str | None:
        return self._modes.get(subject)

    def set_mode(self, mode: str, subject: str | None = None) -> str:
        """Set (and persist first) the mode of ``subject``, or the default with None."""
        check_mode(mode)
        with self._lock:
            if self._append_mode is not None:
                self._append_mode(subject, mode)
            self._modes[subject] = mode
        return mode

    def problems(
        self, subject: str, schema: str, against: list[SchemaVersion] | None = None
    ) -> list[str]:
        """Why the subject's mode refuses ``schema`` (empty: it accepts it), checked against
        ``against`` or the versions the mode names: the latest, or all for *_TRANSITIVE."""
        mode = self.mode(subject)
        versions = self._subjects.get(subject, [])
        if mode == "NONE":
            return []
        if against is None:
            against = versions if mode.endswith("_TRANSITIVE") else versions[-1:]
        found = []
        for old in against:
            why = []
            if mode.startswith(("BACKWARD", "FULL")):
                why += incompatibilities(schema, old.schema)  # new readers, old records
            if mode.startswith(("FORWARD", "FULL")):
                why += incompatibilities(old.schema, schema)  # old readers, new records
            found += [f"version {old.version}: {w}" for w in why]
        return found

    def register(self, subject: str, schema: str) -> int:
        form = canonical(schema)
        with self._lock:
            for existing in self._subjects.get(subject, []):
                if canonical(existing.schema) == form:
                    return existing.id
            problems = self.problems(subject, schema)
            if problems:
                raise IncompatibleSchema(
                    f"Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}" ({self.mode(subject)}): {"; ".join(problems)}'
                )
            schema_id = self._id_by_canonical.get(form, max(self._by_id, default=0) + 1)
            versions = self._subjects.get(subject, [])
            version = SchemaVersion(
                subject, (versions[-1].version + 1) if versions else 1, schema_id, schema
            )
            if self._append is not None:
                self._append(version)
            self._add(version)
            return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaError(f"no schema with id {schema_id}") from None

    def subjects(self) -> list[str]:
        return sorted(self._subjects)

    def versions(self, subject: str) -> list[int]:
        return [v.version for v in self._subjects.get(subject, [])]

    def version(self, subject: str, version: str) -> SchemaVersion | None:
        """``version`` is a number or ``latest``; None when absent."""
        versions = self._subjects.get(subject, [])
        if not versions:
            return None
        if version == "latest":
            return versions[-1]
        return next((v for v in versions if str(v.version) == version), None)


class HttpRegistry:
    """Client of a Confluent-compatible registry (vigil's own API or an external one)."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self._cache: dict[int, str] = {}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, self._url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise SchemaError(
                f"schema registry {self._url} unreachable ({method} {path}): "
                f"{exc}; is the registry (or `vigil up`) running?"
            ) from exc
        if response.status_code >= 400:
            raise SchemaError(
                f"schema registry {self._url} answered {response.status_code} to "
                f"{method} {path}: {response.text[:300]}"
            )
        return response.json()

    def register(self, subject: str, schema: str) -> int:
        body = self._call(
            "POST",
            f"/subjects/{subject}/versions",
            json={"schema": schema},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        return int(body["id"])

    def schema_by_id(self, schema_id: int) -> str:
        if schema_id not in self._cache:
            self._cache[schema_id] = str(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])
        return self._cache[schema_id]

    def close(self) -> None:
        self._http.close()
