"""The relayer on anvil through the Relay API: a real broker, the owner in a thread, the API
served by uvicorn, and relayer keys checked by the key ring."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_defunct
from web3 import HTTPProvider, Web3

from tests.helpers import API_KEY, ApiServer, read_topic
from tests.unit.test_config import monitor, project
from tests.unit.test_task_config import with_task
from vigil.api.app import create_app
from vigil.config.loader import load_project
from vigil.config.models import NetworkConfig, RpcEndpoint
from vigil.connectors.tasks.secrets import new_key
from vigil.demo.chain import Anvil
from vigil.schemas.codec import Codec
from vigil.schemas.registry import SchemaStore
from vigil.settings import Settings, load_settings
from vigil.streams.api_keys import KeyRing
from vigil.streams.config_topics import apply_project
from vigil.streams.hooks import AfterHooks
from vigil.streams.kafka import ensure_topics
from vigil.streams.relayer_owner import RelayerOwner
from vigil.streams.relayers import Relay
from vigil.testing import WebhookReceiver, wait_for

pytestmark = pytest.mark.integration
RECEIVER = "0x179810822f56b0e79469189741a3fa5f2f9a7631"
ETHER = 10**18


class Killed(BaseException):
    """The owner dies here, as in a crash: nothing after runs, the request is not committed."""


@dataclass
class Relaying:
    api: ApiServer
    anvil: Anvil
    settings: Settings
    kafka: str
    codec: Codec
    networks: dict[str, NetworkConfig]
    owners: list[tuple[RelayerOwner, threading.Thread]]

    def start_owner(self, kind: type[RelayerOwner] = RelayerOwner) -> RelayerOwner:
        relay = Relay(self.settings, self.kafka, self.codec, self.networks)
        owner = kind(self.settings, self.kafka, self.codec, relay)

        def run() -> None:
            with contextlib.suppress(Killed):  # the simulated crash
                owner.run()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.owners.append((owner, thread))
        return owner

    def records(self) -> list[Any]:
        """Every record of relayer.transactions, in order."""
        return read_topic(
            self.settings, self.codec, self.kafka, "relayer.transactions", "RelayerTransaction"
        )

    def stop_owners(self) -> None:
        for owner, thread in self.owners:
            owner.stopping.set()
            thread.join(15)
        self.owners.clear()

    def client(self, key: str = API_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def relayer(self, **fields: Any) -> tuple[dict[str, Any], httpx.Client]:
        """A new funded relayer on anvil, and a client holding its relayer key."""
        body = {"name": f"r-{time.monotonic_ns()}", "network": "anvil", "minBalance": "0"}
        made = self.client().post("/relayers", json=body | fields)
        assert made.status_code == 200, made.text
        relayer = made.json()
        self.anvil.rpc("anvil_setBalance", relayer["address"], hex(100 * ETHER))
        key = self.client().post(f"/relayers/{relayer['relayerId']}/keys")
        assert key.status_code == 200, key.text
        signer = self.client(key.json()["secretKey"])
        # the API's key ring follows the keys topic: the new key counts within a moment
        wait_for(lambda: signer.get("/relayer").status_code == 200, 10, "the relayer key")
        return relayer, signer

    def status(
        self, signer: httpx.Client, tx_id: str, wanted: set[str], timeout: float = 30
    ) -> Any:
        def reached() -> Any:
            tx = signer.get(f"/txs/{tx_id}").json()
            return tx if tx["status"] in wanted else None

        return wait_for(reached, timeout, f"transaction {tx_id} to be {wanted}")


@pytest.fixture
def relaying(settings: Settings, kafka: str, anvil: Anvil) -> Iterator[Relaying]:
    settings = load_settings(
        **{
            **settings.model_dump(),
            "secrets_key": new_key(),
            "relayer_resubmit": 3.0,
            "relayer_poll": 0.2,
        }
    )
    ensure_topics(settings, kafka)
    codec = Codec(SchemaStore())
    networks = {
        "anvil": NetworkConfig(chain_id=31337, rpc_urls=[anvil.url], confirmations=2)  # type: ignore[list-item]
    }
    relay = Relay(settings, kafka, codec, networks)
    relay.start()
    ring = KeyRing(settings, kafka, API_KEY)
    threading.Thread(target=ring.follow, daemon=True).start()
    try:
        with ApiServer(create_app(ring, config=(settings, kafka, codec), relay=relay)) as api:
            relaying = Relaying(api, anvil, settings, kafka, codec, networks, [])
            relaying.start_owner()
            yield relaying
    finally:
        relaying.stop_owners()
        ring.stopping.set()
        relay.close()


def test_send_confirm_replace_cancel_and_list(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer()
    assert signer.get("/relayer").json()["address"] == relayer["address"]
    sent = signer.post(
        "/txs", json={"to": RECEIVER, "value": "1", "speed": "fast", "gasLimit": "21000"}
    )
    assert sent.status_code == 200, sent.text
    first = sent.json()
    assert (
        first["nonce"] == 0
        and first["hash"].startswith("0x")
        and first["from"] == relayer["address"]
    )
    assert first["status"] in {"sent", "submitted"} and "raw" not in first
    relaying.status(signer, first["transactionId"], {"mined", "confirmed"})
    relaying.anvil.rpc("anvil_mine", hex(2))
    done = relaying.status(signer, first["transactionId"], {"confirmed"})
    receipt = relaying.anvil.rpc("eth_getTransactionReceipt", done["hash"])
    assert receipt["from"] == relayer["address"] and receipt["to"] == RECEIVER

    relaying.anvil.rpc("evm_setAutomine", False)
    try:
        second = signer.post("/txs", json={"to": RECEIVER, "value": "2", "gasLimit": 21000}).json()
        assert second["nonce"] == 1
        replaced = signer.put(
            f"/txs/{second['transactionId']}",
            json={"to": RECEIVER, "value": "3", "gasLimit": 21000, "speed": "fastest"},
        ).json()
        assert replaced["nonce"] == 1 and replaced["hash"] != second["hash"]
        assert replaced["value"] == "3" and replaced["gasPrice"] > second["gasPrice"]
        # a cancel: a 0-value transfer to itself, by nonce
        cancel = signer.put(
            "/txs/1", json={"to": relayer["address"], "value": "0", "gasLimit": 21000}
        ).json()
        assert cancel["transactionId"] == second["transactionId"] and cancel["nonce"] == 1
        relaying.anvil.rpc("evm_mine")
    finally:
        relaying.anvil.rpc("evm_setAutomine", True)
    mined = relaying.status(signer, second["transactionId"], {"mined", "confirmed"})
    receipt = relaying.anvil.rpc("eth_getTransactionReceipt", mined["hash"])
    assert receipt["to"] == relayer["address"] and mined["hash"] == cancel["hash"]
    assert relaying.anvil.rpc("eth_getTransactionReceipt", second["hash"]) is None

    listed = signer.get("/txs", params={"status": "mined", "limit": 5}).json()
    assert {t["transactionId"] for t in listed} == {first["transactionId"], second["transactionId"]}
    assert [t["transactionId"] for t in signer.get("/txs", params={"limit": 1}).json()] == [
        second["transactionId"]
    ]
    summary = relaying.client().get("/relayers/summary").json()
    assert relayer["relayerId"] in {r["relayerId"] for r in summary}


def test_every_policy_refuses_before_signing(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer(
        policies={"whitelistReceivers": [RECEIVER], "gasPriceCap": str(50 * 10**9)}
    )
    base = {"to": RECEIVER, "value": "1", "gasLimit": 21000}
    cases = [
        ({**base, "to": "0x" + "11" * 20}, "whitelistReceivers"),
        ({**base, "gasPrice": str(51 * 10**9)}, "gasPriceCap"),
        ({**base, "maxFeePerGas": str(60 * 10**9), "maxPriorityFeePerGas": "1"}, "gasPriceCap"),
        ({**base, "validUntil": "2020-01-01T00:00:00Z"}, "validUntil"),
        ({**base, "isPrivate": True}, "isPrivate"),
    ]
    for body, policy in cases:
        answer = signer.post("/txs", json=body)
        assert answer.status_code == 400 and answer.json()["policy"] == policy, answer.text
    client = relaying.client()
    rid = relayer["relayerId"]
    assert client.put(f"/relayers/{rid}", json={"minBalance": str(1000 * ETHER)}).status_code == 200
    refused = signer.post("/txs", json=base)
    assert refused.status_code == 400 and refused.json()["policy"] == "minBalance"
    assert (
        client.put(f"/relayers/{rid}", json={"minBalance": "0", "paused": True}).status_code == 200
    )
    assert signer.post("/txs", json=base).json()["policy"] == "paused"
    # the policies' own endpoint form: a body of policy fields alone
    changed = client.put(f"/relayers/{rid}", json={"gasPriceCap": "7"}).json()
    assert changed["policies"]["gasPriceCap"] == "7" and changed["paused"] is True
    # nothing of these was signed or recorded
    txs = relaying.records()
    assert not [t for t in txs if t["relayerId"] == rid]
    bad = signer.post("/txs", json={"to": RECEIVER, "gasLimit": 21000, "speed": "slow"})
    assert bad.status_code == 422 and "speed" in bad.text


def test_signatures_verify_and_keys_are_scoped(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer()
    signed = signer.post("/sign", json={"message": "0x0123456789abcdef"}).json()
    message = encode_defunct(hexstr="0x0123456789abcdef")
    assert Account.recover_message(message, signature=signed["sig"]).lower() == relayer["address"]
    assert signed["sig"] == signed["r"] + signed["s"][2:] + f"{signed['v']:02x}"
    domain, struct = "0x" + "ab" * 32, "0x" + "cd" * 32
    typed = signer.post(
        "/sign-typed-data", json={"domainSeparator": domain, "hashStructMessage": struct}
    ).json()
    digest = SignableMessage(b"\x01", bytes.fromhex("ab" * 32), bytes.fromhex("cd" * 32))
    assert Account.recover_message(digest, signature=typed["sig"]).lower() == relayer["address"]
    short = signer.post(
        "/sign-typed-data", json={"domainSeparator": "0x01", "hashStructMessage": struct}
    )
    assert short.status_code == 422 and "32 bytes" in short.text
    # the team key is not a relayer key; a deleted relayer key no longer signs
    assert relaying.client().post("/sign", json={"message": "0x00"}).status_code == 403
    rid = relayer["relayerId"]
    keys = relaying.client().get(f"/relayers/{rid}/keys").json()
    assert len(keys) == 1 and "secretKey" not in keys[0]
    gone = relaying.client().delete(f"/relayers/{rid}/keys/{keys[0]['keyId']}").json()
    assert gone == {"message": f"{keys[0]['keyId']} deleted"}
    wait_for(lambda: signer.get("/relayer").status_code == 401, 10, "the deleted key refused")


def test_web3_works_through_jsonrpc_and_sending_is_refused(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer()
    key = signer.headers["Authorization"]
    web3 = Web3(
        HTTPProvider(
            f"{relaying.api.url}/relayer/jsonrpc",
            request_kwargs={"headers": {"Authorization": key}},
        )
    )
    assert web3.eth.chain_id == 31337
    assert web3.eth.get_balance(Web3.to_checksum_address(relayer["address"])) == 100 * ETHER
    assert web3.eth.block_number == int(relaying.anvil.rpc("eth_blockNumber"), 16)
    for method in ("eth_sendRawTransaction", "eth_newFilter", "eth_subscribe", "debug_traceCall"):
        answer = signer.post(
            "/relayer/jsonrpc", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": []}
        ).json()
        assert answer["id"] == 7 and answer["error"]["code"] == -32601, method


def test_fifty_concurrent_sends_take_fifty_consecutive_nonces(relaying: Relaying) -> None:
    _, signer = relaying.relayer()
    body = {"to": RECEIVER, "value": "1", "gasLimit": 21000}
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: signer.post("/txs", json=body).json(), range(50)))
    # on a busy machine an answer may come back pending (unsigned after 10 s): followed here
    mined = [relaying.status(signer, a["transactionId"], {"mined", "confirmed"}) for a in answers]
    assert sorted(t["nonce"] for t in mined) == list(range(50))
    assert len({t["hash"] for t in mined}) == 50


def test_expired_and_stuck_transactions(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer()
    relaying.anvil.rpc("evm_setAutomine", False)
    try:
        until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        short = signer.post(
            "/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000, "validUntil": until}
        ).json()
        relaying.status(signer, short["transactionId"], {"expired"}, timeout=20)
        stuck = signer.post("/txs", json={"to": RECEIVER, "value": "2", "gasLimit": 21000}).json()
        assert stuck["nonce"] == 1
        # unmined past VIGIL_RELAYER_RESUBMIT (3 s here): sent again, same nonce, higher fee
        bumped = wait_for(
            lambda: (
                (t := signer.get(f"/txs/{stuck['transactionId']}").json())["hash"] != stuck["hash"]
                and t
            ),
            20,
            "the stuck transaction to be sent again",
        )
        assert bumped["nonce"] == 1 and bumped["gasPrice"] >= stuck["gasPrice"] * 1.1
        relaying.anvil.rpc("evm_mine")
    finally:
        relaying.anvil.rpc("evm_setAutomine", True)
    mined = relaying.status(signer, stuck["transactionId"], {"mined", "confirmed"})
    assert relaying.anvil.rpc("eth_getTransactionReceipt", mined["hash"])["to"] == RECEIVER
    # the expired one's nonce went to a 0-value transfer to itself
    count = int(relaying.anvil.rpc("eth_getTransactionCount", relayer["address"], "latest"), 16)
    assert count == 2


class DiesBeforeBroadcast(RelayerOwner):
    def _broadcast(self, tx: Any) -> Any:
        raise Killed  # signed and recorded sent, never broadcast


class DiesBeforeRecordingSubmitted(RelayerOwner):
    def record(self, tx: Any, status: str, **changes: Any) -> Any:
        if status == "submitted":
            raise Killed  # broadcast, and the record of it lost
        return super().record(tx, status, **changes)


@pytest.mark.parametrize("dying", [DiesBeforeBroadcast, DiesBeforeRecordingSubmitted])
def test_an_owner_killed_mid_flight_loses_nothing_and_sends_nothing_twice(
    relaying: Relaying, dying: type[RelayerOwner]
) -> None:
    relaying.stop_owners()
    relayer, signer = relaying.relayer()
    relaying.start_owner(dying)
    body = {"to": RECEIVER, "value": "5", "gasLimit": 21000}
    first = signer.post("/txs", json=body).json()
    wait_for(lambda: not relaying.owners[0][1].is_alive(), 30, "the owner to die")
    relaying.owners.clear()
    relaying.start_owner()  # a new owner: the request again, and what the last one wrote
    tx_id = first["transactionId"]
    mined = relaying.status(signer, tx_id, {"mined", "confirmed"})
    assert mined["nonce"] == 0
    second = signer.post("/txs", json=body).json()
    assert second["nonce"] == 1
    relaying.status(signer, second["transactionId"], {"mined", "confirmed"})
    address = relayer["address"]
    assert int(relaying.anvil.rpc("eth_getTransactionCount", address, "latest"), 16) == 2
    txs = relaying.records()
    for tx in (mined, second):  # each signed once: the request read again was skipped
        versions = {t["hash"] for t in txs if t["transactionId"] == tx["transactionId"]}
        assert versions - {None} == {tx["hash"]}


def test_a_gap_made_by_hand_is_filled(relaying: Relaying) -> None:
    relayer, signer = relaying.relayer()
    body = {"to": RECEIVER, "value": "1", "gasLimit": 21000}
    relaying.anvil.rpc("evm_setAutomine", False)
    try:
        lost = signer.post("/txs", json=body).json()
        kept = signer.post("/txs", json=body).json()
        assert (lost["nonce"], kept["nonce"]) == (0, 1)
        # nonce 0 leaves the node's pool, and its record says the node refused it: a gap
        relaying.anvil.rpc("anvil_dropTransaction", lost["hash"])
        tx = relaying.owners[0][0].txs[lost["transactionId"]]
        relaying.owners[0][0].record(tx, "failed", error="refused, by hand")
        address = relayer["address"]

        def filled() -> bool:  # a block at each look: the noop at 0, then the one at 1
            relaying.anvil.rpc("evm_mine")
            return int(relaying.anvil.rpc("eth_getTransactionCount", address, "latest"), 16) == 2

        wait_for(filled, 30, "the gap at nonce 0 to be filled")
    finally:
        relaying.anvil.rpc("evm_setAutomine", True)
    relaying.status(signer, kept["transactionId"], {"mined", "confirmed"})
    assert signer.get(f"/txs/{lost['transactionId']}").json()["status"] == "failed"


def test_a_reorg_that_drops_a_mined_transaction_sends_it_again(relaying: Relaying) -> None:
    _, signer = relaying.relayer()
    sent = signer.post("/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000}).json()
    mined = relaying.status(signer, sent["transactionId"], {"mined"})
    relaying.anvil.rpc("anvil_reorg", 1, [])  # the block that had it is replaced by an empty one
    again = wait_for(
        lambda: (
            (t := signer.get(f"/txs/{sent['transactionId']}").json())["status"] == "mined"
            and t["hash"] == mined["hash"]
            and relaying.anvil.rpc("eth_getTransactionReceipt", t["hash"])
            and t
        ),
        30,
        "the transaction mined again",
    )
    receipt = relaying.anvil.rpc("eth_getTransactionReceipt", again["hash"])
    assert receipt["blockHash"] != relaying.anvil.rpc("eth_getBlockByNumber", hex(0), False)["hash"]
    txs = relaying.records()
    statuses = [t["status"] for t in txs if t["transactionId"] == sent["transactionId"]]
    assert statuses.index("mined") < statuses.index("sent", statuses.index("mined"))


GUARD = """
def handler(event, context):
    tx = event["request"]["body"]["transaction"]
    if tx["to"] == "0x" + "66" * 20:
        raise ValueError("that receiver is on the deny list")
    if tx.get("value") == "1":
        return {"value": "9"}  # the hook rewrites the amount
"""


def test_before_relay_hooks_rewrite_or_refuse_and_after_hooks_observe(
    relaying: Relaying, tmp_path: Path
) -> None:
    relayer, signer = relaying.relayer()
    root = with_task(
        tmp_path,
        f"name: guard\ncode: count.py\nhooks: [{{before: relay, relayers: [{relayer['name']}]}}]\n",
        GUARD,
    )
    (root / "tasks" / "watch.yaml").write_text(
        "name: watch\ncode: count.py\nhooks: [{after: relay}]\n"
    )
    apply_project(relaying.settings, relaying.kafka, relaying.codec, load_project(root))
    after = AfterHooks(relaying.settings, relaying.kafka, relaying.codec)
    thread = threading.Thread(target=after.run, daemon=True)
    thread.start()
    try:
        # it observes from the end of the topic: its group first, then the transactions
        wait_for(after.ready.is_set, 60, "the after hooks' group")
        rewritten = signer.post("/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000})
        assert rewritten.status_code == 200, rewritten.text
        assert rewritten.json()["value"] == "9"
        done = relaying.status(signer, rewritten.json()["transactionId"], {"mined", "confirmed"})
        assert int(relaying.anvil.rpc("eth_getTransactionByHash", done["hash"])["value"], 16) == 9
        vetoed = signer.post("/txs", json={"to": "0x" + "66" * 20, "value": "1", "gasLimit": 21000})
        assert vetoed.status_code == 400
        assert "hook count: ValueError: that receiver is on the deny list" in vetoed.json()["error"]
        assert vetoed.json()["status"] == "failed" and vetoed.json()["nonce"] is None
        wait_for(lambda: after.ran >= 2, 60, "the after hook to observe the transaction")
    finally:
        after.stopping.set()
        thread.join(15)
    runs = read_topic(relaying.settings, relaying.codec, relaying.kafka, "tasks.runs", "TaskRun")
    observed = [r["runId"] for r in runs if r["runId"].startswith("hook:after-relay:")]
    assert any(done["transactionId"] in run_id for run_id in observed)


def test_a_relayer_below_its_min_balance_refuses_and_tells_its_channel_once(
    relaying: Relaying, tmp_path: Path
) -> None:
    receiver = WebhookReceiver().start()
    try:
        channel = f"alias: ops\ntype: webhook\nurl: {receiver.url}\n"
        root = project(tmp_path, monitor("channels: [ops]\n"), channel=channel)
        apply_project(relaying.settings, relaying.kafka, relaying.codec, load_project(root))
        relayer, signer = relaying.relayer(
            minBalance=str(1000 * ETHER), notificationChannels=["ops"]
        )
        assert relayer["notificationChannels"] == ["ops"]
        refused = signer.post("/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000})
        assert refused.status_code == 400 and refused.json()["policy"] == "minBalance"
        assert "below its minBalance" in refused.json()["message"]
        wait_for(lambda: receiver.received, 30, "the low-balance notice")
        time.sleep(4)  # more balance checks (every 3 s here): told once, not at each
        [notice] = receiver.received
        text = notice.body.decode()
        assert relayer["address"] in text and "minBalance" in text
    finally:
        receiver.stop()


class PrivateEndpoint:
    """A private mempool's stand-in: records what it is sent, and hands it to anvil."""

    def __init__(self, upstream: str) -> None:
        methods: list[str] = []
        self.methods = methods

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                methods.append(json.loads(body)["method"])
                answer = httpx.post(
                    upstream, content=body, headers={"Content-Type": "application/json"}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_private_transactions_go_to_the_private_endpoint_only(relaying: Relaying) -> None:
    endpoint = PrivateEndpoint(relaying.anvil.url)
    config = relaying.networks["anvil"]
    private = config.model_copy(update={"private_rpc_urls": [RpcEndpoint(url=endpoint.url)]})
    relaying.networks["anvil"] = private  # the API's and the next owner's (one dict)
    relaying.stop_owners()
    relaying.start_owner()
    try:
        _, signer = relaying.relayer(policies={"privateTransactions": True})
        sent = signer.post("/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000})
        assert sent.status_code == 200, sent.text
        assert sent.json()["isPrivate"] is True
        relaying.status(signer, sent.json()["transactionId"], {"mined", "confirmed"})
        assert endpoint.methods == ["eth_sendRawTransaction"]
        public = signer.post(
            "/txs", json={"to": RECEIVER, "value": "1", "gasLimit": 21000, "isPrivate": False}
        ).json()
        relaying.status(signer, public["transactionId"], {"mined", "confirmed"})
        assert endpoint.methods == ["eth_sendRawTransaction"]  # the public one went public
    finally:
        endpoint.stop()
