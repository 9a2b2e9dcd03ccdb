"""What users see in ``matchReasons.params`` (and the transaction) is what conditions compare."""

import json
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import recorded_block_18m, write_monitor
from vigil.config.loader import load_monitor_file
from vigil.processors import abi
from vigil.processors.conditions import compile_condition
from vigil.processors.matching import TX_FIELDS, Matcher, compile_monitor, transaction_env
from vigil.schemas.events import transaction_view

MINTER_ROLE = "0x9f2df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6"
PAUSER_ROLE = "0x65d7a28e3265b37a6474929f336521b332c1681b933f6cb9f3376673440d862a"
ROLE_GRANTED = "0x" + keccak(text="RoleGranted(bytes32,address,address)").hex()
TOKEN = "0x6b175474e89094c44da98b954eedeac495271d0f"  # DAI: the log is put on a real tx of 18M
ACCOUNT = "0x" + "ab" * 20
ONEINCH = "0x1111111254eeb25477b68fb85ed929f73a960582"  # AggregationRouterV5: swap in 18M
SWAP_ABI = [
    {
        "type": "function",
        "name": "swap",
        "stateMutability": "payable",
        "inputs": [
            {"name": "executor", "type": "address"},
            {
                "name": "desc",
                "type": "tuple",
                "components": [
                    {"name": n, "type": t}
                    for n, t in [
                        ("srcToken", "address"),
                        ("dstToken", "address"),
                        ("srcReceiver", "address"),
                        ("dstReceiver", "address"),
                        ("amount", "uint256"),
                        ("minReturnAmount", "uint256"),
                        ("flags", "uint256"),
                    ]
                ],
            },
            {"name": "permit", "type": "bytes"},
            {"name": "data", "type": "bytes"},
        ],
        "outputs": [],
    }
]


def block_with_role_grant(role: str) -> dict[str, Any]:
    """Block 18M with a RoleGranted(role, ACCOUNT, sender) log added to its first DAI transfer."""
    block = recorded_block_18m()
    tx = next(
        t for t in block["transactions"] if any(e["address"] == TOKEN for e in t["receipt"]["logs"])
    )
    last = tx["receipt"]["logs"][-1]
    tx["receipt"]["logs"].append(
        {
            **last,
            "address": TOKEN,
            "topics": [ROLE_GRANTED, role, "0x" + "00" * 12 + ACCOUNT[2:], "0x" + "00" * 32],
            "data": "0x",
            "logIndex": last["logIndex"] + 1,
        }
    )
    return block


def role_monitor(folder: Path, expression: str) -> Matcher:
    events = (
        "conditions:\n  events:\n    - signature: RoleGranted(bytes32,address,address)\n"
        f"      expression: {json.dumps(expression)}\n"
    )
    text = (
        f"name: roles\nnetwork: mainnet\naddresses: [{TOKEN}]\n"
        f"abi: abis/AccessControl.abi.json\n{events}"
    )
    path = write_monitor(folder, text, abi="AccessControl.abi.json")
    return Matcher([compile_monitor(load_monitor_file(path), chain_id=1)])


def test_a_bytes32_role_condition_matches_the_role_users_see(tmp_path: Path) -> None:
    block = block_with_role_grant(MINTER_ROLE)
    for expression in (
        f"role == {MINTER_ROLE}",
        f"role == '{MINTER_ROLE.upper().replace('0X', '0x')}'",
        f"$0 == {MINTER_ROLE} and account == {to_checksum_address(ACCOUNT)}",
    ):
        [match] = role_monitor(tmp_path, expression).match_block(block)
        [reason] = match["matchReasons"]
        assert json.loads(reason["params"])["role"] == MINTER_ROLE
    assert role_monitor(tmp_path, f"role == {PAUSER_ROLE}").match_block(block) == []


def test_struct_members_read_by_name_on_a_real_swap(tmp_path: Path) -> None:
    block = recorded_block_18m()
    (tmp_path / "abis").mkdir()
    (tmp_path / "abis" / "router.json").write_text(json.dumps(SWAP_ABI))

    def matches(expression: str) -> list[dict[str, Any]]:
        (tmp_path / "swap.yaml").write_text(
            f"name: swaps\nnetwork: mainnet\naddresses: [{ONEINCH}]\nabi: abis/router.json\n"
            "conditions:\n  functions:\n    - signature: swap\n"
            f"      expression: {json.dumps(expression)}\n"
        )
        monitor = load_monitor_file(tmp_path / "swap.yaml")
        return Matcher([compile_monitor(monitor, chain_id=1)]).match_block(block)

    [match] = matches(
        "desc.amount == 451446881418000 and desc[4] == 451446881418000 "
        "and desc.dstToken == 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2 and desc.flags == 4"
    )
    params = json.loads(match["matchReasons"][0]["params"])
    assert params["desc"][4] == "451446881418000"
    assert matches("desc.amount > 451446881418000") == []
    assert matches("desc.noSuchMember == 1") == []  # counted as an evaluation error, no match


def test_string_comparisons_ignore_case() -> None:
    for expression, env in [
        ('status == "FAILED"', {"status": "failed"}),
        ("name != 'vigil'", {"name": "Vigil2"}),
        ("name contains 'IG'", {"name": "vigil"}),
        ("name starts_with 'VI' and name ends_with 'IL'", {"name": "vigil"}),
        ("who == 0xABCDEF", {"who": "0xabcdef"}),
    ]:
        assert compile_condition(expression).holds(env), expression
    assert not compile_condition('name == "vigil"').holds({"name": "sentinel"})


def test_string_literals_keep_non_ascii_text_beside_escapes() -> None:
    condition = compile_condition('s == "é\\"ü\\n\\u00e9"')
    assert condition.holds({"s": 'é"ü\né'})


def test_a_transaction_condition_matches_every_field_the_transaction_shows() -> None:
    """For each transaction of block 18M, ``field == <what the event's transaction shows>``."""
    shown_as = {"gasLimit": "gas"}
    checked = 0
    for tx in recorded_block_18m()["transactions"]:
        view, env = transaction_view(tx), transaction_env(tx)
        for field in {TX_FIELDS[name] for name in TX_FIELDS}:
            shown = view.get(shown_as.get(field, field))
            if shown is None:
                continue
            literal = shown if shown.startswith("0x") and len(shown) > 2 else json.dumps(shown)
            assert compile_condition(f"{field} == {literal}").holds(env), (tx["hash"], field)
            checked += 1
    assert checked > 94 * 8
    failed = next(t for t in recorded_block_18m()["transactions"] if t["receipt"]["status"] == 0)
    for expression in ("status == 0x0", "status == 0", "status == 'failed'", "status != 1"):
        assert compile_condition(expression).holds(transaction_env(failed)), expression


# --- the property, for every ABI type -------------------------------------------------------

BASIC = (
    ["address", "bool", "string", "bytes"]
    + [f"uint{n}" for n in (8, 16, 24, 64, 128, 160, 256)]
    + [f"int{n}" for n in (8, 32, 128, 256)]
    + [f"bytes{n}" for n in (1, 4, 20, 31, 32)]
)


def abi_types() -> st.SearchStrategy[dict[str, Any]]:
    """ABI params (without names): basic types, fixed and dynamic arrays, nested tuples."""

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        array = st.tuples(inner, st.sampled_from(["[]", "[1]", "[2]", "[3]"])).map(
            lambda x: {**x[0], "type": x[0]["type"] + x[1]}
        )
        struct = st.lists(inner, min_size=1, max_size=3).map(
            lambda cs: {
                "type": "tuple",
                "components": [{**c, "name": f"m{i}"} for i, c in enumerate(cs)],
            }
        )
        return st.one_of(array, struct)

    basic = st.sampled_from(BASIC).map(lambda t: {"type": t})
    return st.recursive(basic, extend, max_leaves=6)


def values(param: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = param["type"]
    if kind.endswith("]"):
        inner = values({**param, "type": kind[: kind.rindex("[")]})
        size = kind[kind.rindex("[") + 1 : -1]
        if size:
            return st.lists(inner, min_size=int(size), max_size=int(size)).map(tuple)
        return st.lists(inner, max_size=3).map(tuple)
    if kind == "tuple":
        return st.tuples(*(values(c) for c in param["components"]))
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(to_checksum_address)
    if kind == "bool":
        return st.booleans()
    if kind == "string":
        return st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
    if kind == "bytes":
        return st.binary(max_size=40)
    if kind.startswith("bytes"):
        return st.binary(min_size=int(kind[5:]), max_size=int(kind[5:]))
    bits = int(kind.lstrip("uint") or 256)
    if kind.startswith("u"):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def literal(kind: str, shown: Any) -> str:
    """The condition literal a user writes for a value shown as ``shown``."""
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if kind.startswith(("uint", "int")):
        return shown  # type: ignore[no-any-return]  # a decimal string, perhaps with a minus
    if kind == "string":
        return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return shown if len(shown) > 2 else '"0x"'  # address, bytes: 0x-hex


def changed(kind: str, shown: Any) -> str:
    """A literal for a value other than ``shown``."""
    if isinstance(shown, bool):
        return literal(kind, not shown)
    if kind.startswith(("uint", "int")):
        return str(int(shown) + 1)
    if kind == "string":
        return literal(kind, shown + "x")
    if len(shown) == 2:
        return "0x00"
    return shown[:-1] + ("1" if shown[-1] == "0" else "0")


def leaves(param: dict[str, Any], shown: Any, by_name: str, by_index: str) -> list[Any]:
    """(name path, index path, basic type, shown value) of every scalar inside a value."""
    kind = param["type"]
    if kind.endswith("]"):
        inner = {**param, "type": kind[: kind.rindex("[")]}
        return [
            leaf
            for i, item in enumerate(shown)
            for leaf in leaves(inner, item, f"{by_name}[{i}]", f"{by_index}[{i}]")
        ]
    if kind == "tuple":
        return [
            leaf
            for i, (component, item) in enumerate(zip(param["components"], shown, strict=True))
            for leaf in leaves(
                component, item, f"{by_name}.{component['name']}", f"{by_index}[{i}]"
            )
        ]
    return [(by_name, by_index, kind, shown)]


@st.composite
def signatures(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Any]]:
    params = [
        {**p, "name": f"p{i}"}
        for i, p in enumerate(draw(st.lists(abi_types(), min_size=1, max_size=3)))
    ]
    return params, [draw(values(p)) for p in params]


def check_decoded(decoded: abi.Decoded | None, params: list[dict[str, Any]]) -> None:
    assert decoded is not None
    env = decoded.condition_env()
    shown = json.loads(json.dumps({k: abi.to_json(v) for k, v in decoded.params().items()}))
    names = [p["name"] for p in params] + [f"${i}" for i in range(len(params))]
    for i, param in enumerate(params):
        for by_name, by_index, kind, value in leaves(
            param, shown[param["name"]], param["name"], f"${i}"
        ):
            for path in (by_name, by_index):
                same = compile_condition(f"{path} == {literal(kind, value)}", known=names)
                assert same.holds(env), (path, value)
                other = compile_condition(f"{path} == {changed(kind, value)}", known=names)
                assert not other.holds(env), (path, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signatures())
def test_function_arguments_compare_as_shown(case: tuple[list[dict[str, Any]], list[Any]]) -> None:
    params, args = case
    item = {"type": "function", "name": "f", "inputs": params}
    types = [abi.canonical_type(p) for p in params]
    calldata = abi.selector(item) + encode(types, args).hex()
    check_decoded(abi.FunctionDecoder(item).decode(calldata), params)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signatures(), st.lists(st.sampled_from(BASIC[:2] + BASIC[4:]), max_size=3), st.data())
def test_event_parameters_compare_as_shown(
    case: tuple[list[dict[str, Any]], list[Any]], indexed_types: list[str], data: st.DataObject
) -> None:
    """Plain parameters from the data, static indexed ones from the topics."""
    params, args = case
    indexed = [{"type": t, "name": f"i{j}", "indexed": True} for j, t in enumerate(indexed_types)]
    indexed_args = [data.draw(values(p)) for p in indexed]
    item = {"type": "event", "name": "E", "inputs": indexed + params}
    topics = [abi.topic0(item)] + [
        "0x" + encode([p["type"]], [v]).hex() for p, v in zip(indexed, indexed_args, strict=True)
    ]
    body = "0x" + encode([abi.canonical_type(p) for p in params], args).hex()
    check_decoded(abi.EventDecoder(item).decode(topics, body), indexed + params)
