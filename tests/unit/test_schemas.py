import json
import struct
from typing import Any

import fastavro
import pytest

from tests.helpers import FIXTURES
from vigil.errors import SchemaError, SerializationError
from vigil.schemas import loader
from vigil.schemas.catalogue import CATALOGUE, spec
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore, SchemaVersion

GOLDEN = FIXTURES / "avro"


def test_every_schema_has_a_golden_sample() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == loader.schema_names()


@pytest.mark.parametrize("name", loader.schema_names())
def test_golden_sample_round_trips(name: str) -> None:
    sample = json.loads((GOLDEN / f"{name}.json").read_text())
    assert fastavro.validation.validate(sample, loader.parsed(name), raise_errors=True)
    codec = Codec(SchemaStore())
    encoded = codec.encode("t", name, sample)
    decoded = codec.decode(encoded, name)
    # timestamp-millis fields come back as aware datetimes; the bytes must not change
    assert codec.encode("t", name, decoded) == encoded
    plain = {k: v for k, v in sample.items() if k != "at"}
    assert {k: v for k, v in decoded.items() if k != "at"} == plain


def test_catalogue_topics_are_unique_and_have_schemas() -> None:
    suffixes = [t.suffix for t in CATALOGUE]
    assert len(suffixes) == len(set(suffixes))
    for topic in CATALOGUE:
        assert topic.schema in loader.schema_names()
        configs = topic.configs()
        assert ("cleanup.policy" in configs) == topic.compacted
        assert ("retention.ms" in configs) != topic.compacted
    assert spec("chain.checkpoints").compacted
    with pytest.raises(KeyError, match="no topic"):
        spec("nope")


def test_framing_is_confluent() -> None:
    store = SchemaStore()
    codec = Codec(store)
    sample = json.loads((GOLDEN / "Checkpoint.json").read_text())
    payload = codec.encode("vigil.chain.checkpoints", "Checkpoint", sample)
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    assert store.schema_by_id(schema_id) == loader.schema_text("Checkpoint")
    assert store.subjects() == ["vigil.chain.checkpoints-value"]


def test_decoding_bad_payloads_names_the_record() -> None:
    codec = Codec(SchemaStore())
    with pytest.raises(SerializationError, match=r"t\[0\]@5: not Confluent-framed"):
        codec.decode(b"{json}", "Log", where="t[0]@5")
    with pytest.raises(SchemaError, match="no schema with id 99"):
        codec.decode(b"\x00\x00\x00\x00\x63abc", "Log")


def test_encoding_a_bad_record_says_what_is_wrong() -> None:
    codec = Codec(SchemaStore())
    with pytest.raises(SerializationError, match="cannot encode a Checkpoint"):
        codec.encode("t", "Checkpoint", {"network": "x"})


def test_store_gives_one_id_per_schema_across_subjects() -> None:
    saved: list[SchemaVersion] = []
    store = SchemaStore(saved.append)
    store.set_mode("NONE", "a-value")  # two record types on one subject
    log_id = store.register("a-value", loader.schema_text("Log"))
    assert store.register("a-value", loader.schema_text("Log")) == log_id
    assert store.register("b-value", loader.schema_text("Log")) == log_id
    other = store.register("a-value", loader.schema_text("Checkpoint"))
    assert other != log_id
    assert store.versions("a-value") == [1, 2]
    assert store.version("a-value", "latest").id == other  # type: ignore[union-attr]
    assert [v.subject for v in saved] == ["a-value", "b-value", "a-value"]
    restored = SchemaStore()
    for version in saved:
        restored.restore(version)
    assert restored.subjects() == store.subjects()
    assert restored.schema_by_id(other) == store.schema_by_id(other)


def test_store_rejects_an_invalid_schema() -> None:
    with pytest.raises(SchemaError, match="invalid Avro schema"):
        SchemaStore().register("x-value", '{"type": "recrod", "name": "X"}')


def test_persistence_failure_leaves_nothing_registered() -> None:
    def fail(version: SchemaVersion) -> None:
        raise OSError("disk full")

    store = SchemaStore(fail)
    with pytest.raises(OSError):
        store.register("x-value", loader.schema_text("Log"))
    assert store.subjects() == []


def _previous(name: str) -> dict[str, Any]:
    """A frozen earlier schema with the named types it used written out (earlier ones too)."""
    schema = json.loads((GOLDEN / "previous" / f"vigil.{name}.v1.avsc").read_text())
    earlier = {"vigil.Match": "Match", "vigil.MonitorRef": "MonitorRef"}

    def expand(node: Any) -> Any:
        if isinstance(node, str) and node.startswith("vigil."):
            short = node.removeprefix("vigil.")
            return _previous(short) if node in earlier else loader.expanded(short)
        if isinstance(node, dict):
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    return {k: expand(v) if k in ("fields", "type", "items") else v for k, v in schema.items()}


def _v1_match(match: dict[str, Any]) -> dict[str, Any]:
    old = {k: v for k, v in match.items() if k != "alert"}
    old["monitor"] = {k: v for k, v in match["monitor"].items() if k not in ("type", "agents")}
    old["matchReasons"] = [
        {k: v for k, v in r.items() if k != "value"} for r in match["matchReasons"]
    ]
    return old


def test_batches_and_matches_written_by_earlier_schemas_read_with_defaults() -> None:
    import io

    old = fastavro.parse_schema(_previous("MatchBatch"), _write_hint=False)
    sample = json.loads((GOLDEN / "MatchBatch.json").read_text())
    written = io.BytesIO()
    v1 = {k: v for k, v in sample.items() if k not in ("channel", "redelivery")}
    v1["matches"] = [_v1_match(m) for m in sample["matches"]]
    fastavro.schemaless_writer(written, old, v1)
    written.seek(0)
    read = fastavro.schemaless_reader(written, old, loader.parsed("MatchBatch"))
    assert read["channel"] is None and read["redelivery"] is False
    assert read["matches"] == sample["matches"]  # new fields read as their defaults


def test_a_checkpoint_written_before_the_window_reads_with_an_empty_one() -> None:
    import io

    old = fastavro.parse_schema(_previous("Checkpoint"), _write_hint=False)
    sample = json.loads((GOLDEN / "Checkpoint.json").read_text())
    written = io.BytesIO()
    fastavro.schemaless_writer(written, old, {k: v for k, v in sample.items() if k != "window"})
    written.seek(0)
    read = fastavro.schemaless_reader(written, old, loader.parsed("Checkpoint"))
    assert read["window"] == [] and read["hash"] == sample["hash"]


RELEASED = GOLDEN / "released"


RELEASED_NAMES = sorted(
    {p.name.removeprefix("vigil.").removesuffix(".avsc") for p in RELEASED.glob("*/*.avsc")}
)


@pytest.mark.parametrize("name", RELEASED_NAMES)
def test_every_schema_reads_what_every_release_and_earlier_version_wrote(name: str) -> None:
    """BACKWARD_TRANSITIVE: a subscriber on today's schema reads any record vigil ever
    wrote (a released version's, and the earlier versions kept in previous/). A schema
    added since the last release has nothing to read yet; one removed would break its
    subscribers (the codec cannot load it)."""
    from vigil.schemas.registry import incompatibilities

    current = json.dumps(loader.expanded(name))
    earlier = [p.read_text() for p in sorted(RELEASED.glob(f"*/vigil.{name}.avsc"))]
    if (GOLDEN / "previous" / f"vigil.{name}.v1.avsc").exists():
        earlier.append(json.dumps(_previous(name)))
    for text in earlier:
        assert incompatibilities(current, text) == []


def test_the_check_names_what_an_incompatible_change_breaks() -> None:
    from vigil.schemas.registry import incompatibilities

    released = (RELEASED / "0.1.0" / "vigil.Delivery.avsc").read_text()
    changed = json.loads(released)
    changed["fields"].append({"name": "region", "type": "string"})  # required, no default
    [why] = incompatibilities(json.dumps(changed), released)
    assert why == "reader field missing default value: region (at /fields/12)"
    changed["fields"][-1]["default"] = "eu"
    assert incompatibilities(json.dumps(changed), released) == []
    retyped = json.loads(released)
    retyped["fields"][0]["type"] = "int"  # id: string → int
    assert "type mismatch" in incompatibilities(json.dumps(retyped), released)[0]


def _with_field(schema: str, field: dict[str, Any]) -> str:
    parsed = json.loads(schema)
    parsed["fields"].append(field)
    return json.dumps(parsed)


def test_the_embedded_registry_keeps_a_compatibility_mode_per_subject() -> None:
    from vigil.schemas.registry import IncompatibleSchema

    kept: list[tuple[str | None, str]] = []
    store = SchemaStore(append_mode=lambda subject, mode: kept.append((subject, mode)))
    v1 = loader.schema_text("Tick")
    required = _with_field(v1, {"name": "zone", "type": "string"})
    optional = _with_field(v1, {"name": "zone", "type": ["null", "string"], "default": None})
    store.register("a-value", v1)
    assert store.mode("a-value") == "BACKWARD"  # as Confluent's default
    with pytest.raises(IncompatibleSchema, match=r'subject "a-value" \(BACKWARD\): version 1: '):
        store.register("a-value", required)
    assert store.versions("a-value") == [1]  # nothing registered
    assert store.register("a-value", optional) > 0 and store.versions("a-value") == [1, 2]

    # FORWARD: records written with the new schema must be readable by the old one
    store.set_mode("FORWARD", "b-value")
    store.register("b-value", optional)
    assert store.register("b-value", v1) > 0  # dropping a field with a default: old readers cope
    assert store.mode("b-value") == "FORWARD" and store.mode("a-value") == "BACKWARD"

    # NONE takes anything; the default mode applies to subjects without their own
    store.set_mode("NONE", "a-value")
    assert store.register("a-value", required) > 0
    store.set_mode("FULL")
    store.register("c-value", v1)
    with pytest.raises(IncompatibleSchema, match=r"\(FULL\)"):
        store.register("c-value", required)
    assert kept == [("b-value", "FORWARD"), ("a-value", "NONE"), (None, "FULL")]
    with pytest.raises(SchemaError, match="compatibility: expected one of NONE, BACKWARD"):
        store.set_mode("SIDEWAYS", "a-value")


def test_transitive_modes_check_every_earlier_version() -> None:
    from vigil.schemas.registry import IncompatibleSchema

    def record(*fields: dict[str, Any]) -> str:
        return json.dumps({"type": "record", "name": "R", "fields": list(fields)})

    store = SchemaStore()
    v1 = record({"name": "id", "type": "string"}, {"name": "count", "type": "int"})
    v2 = record({"name": "id", "type": "string"})  # count dropped: v2 readers ignore it
    # count is back, as a string: v2's records lack it (the default serves), v1's have an int
    v3 = record(
        {"name": "id", "type": "string"}, {"name": "count", "type": "string", "default": ""}
    )
    store.register("t-value", v1)
    store.register("t-value", v2)
    store.set_mode("BACKWARD_TRANSITIVE", "t-value")
    with pytest.raises(IncompatibleSchema, match="version 1: type mismatch"):
        store.register("t-value", v3)
    store.set_mode("BACKWARD", "t-value")
    assert store.register("t-value", v3) > 0  # against the latest (v2) alone it reads


def test_a_block_spliced_from_its_transactions_bodies_is_the_block_written_whole() -> None:
    from tests.helpers import recorded_block_18m
    from vigil.schemas.codec import spliced_array

    codec = Codec(SchemaStore())
    block = recorded_block_18m()
    for record in (
        block,
        {**block, "transactions": []},
        {**block, "transactions": block["transactions"][:1]},
    ):
        bodies = [codec.body("Transaction", tx) for tx in record["transactions"]]
        head = codec.body("Block", {**record, "transactions": []})
        spliced = codec.frame("t", "Block", spliced_array(head, bodies))
        assert spliced == codec.encode("t", "Block", record)
    # past 63 items the count takes two varint bytes
    many = {**block, "transactions": block["transactions"] * 2}
    bodies = [codec.body("Transaction", tx) for tx in many["transactions"]]
    head = codec.body("Block", {**many, "transactions": []})
    assert spliced_array(head, bodies) == codec.body("Block", many)
