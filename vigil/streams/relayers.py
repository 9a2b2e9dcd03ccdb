"""Relayers as kept on their topics, and what the API and the CLI do with them.

- ``_relayers`` (compacted, JSON, keyed by relayer id): each relayer's name, network,
  address, minBalance, paused flag and policies. Never a key.
- ``_relayer-keys`` (compacted, keyed by address): each signing key, sealed with the
  operator's key (``connectors.relayer.keystore``). A clone on another network shares its
  original's address, so its key.
- Relayer API keys are API keys (``_api-keys``) holding the one scope ``relay:<relayer id>``.
- ``relayer.requests`` takes sends and replacements; the relayer's owner
  (``streams.relayer_owner``) signs them, and ``relayer.transactions`` says how each stands.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from vigil.clock import SYSTEM, Clock
from vigil.config.access import RELAY, ApiKey, new_key
from vigil.config.loader import address_book
from vigil.config.models import NetworkConfig
from vigil.config.relayers import (
    FINAL,
    CreateRelayerRequest,
    Relayer,
    SendTransactionRequest,
    UpdateRelayerRequest,
    iso,
)
from vigil.connectors.relayer.keystore import SealedKeyStore
from vigil.connectors.relayer.signer import sign_message, sign_typed_data
from vigil.connectors.tasks.secrets import Sealed, parse_key
from vigil.errors import (
    BrokerError,
    ConfigError,
    ConflictError,
    NotFound,
    RpcError,
    VigilError,
)
from vigil.processors.relayer import check_balance, check_send
from vigil.schemas.catalogue import RELAYER_KEYS_TOPIC, RELAYERS_TOPIC
from vigil.schemas.codec import Codec
from vigil.schemas.records import RelayerRequest, RelayerTransaction
from vigil.settings import Settings
from vigil.streams.api_keys import publish_key
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.kafka import Followed, consumer, producer, read_compacted


def _write(settings: Settings, bootstrap: str, topic: str, key: str, value: bytes) -> None:
    sink = producer(settings, bootstrap, client_id="vigil-relayers", linger_ms=0)
    try:
        sink.send(settings.topic(topic), key=key.encode(), value=value).get(30)
    except KafkaError as exc:
        raise BrokerError(f"writing {key} to {settings.topic(topic)} failed: {exc}") from exc
    finally:
        sink.close()


def keystore(settings: Settings, bootstrap: str) -> SealedKeyStore:
    """The sealed key store on ``_relayer-keys`` (its key: VIGIL_SECRETS_KEY)."""
    secret = settings.secrets_key
    key = parse_key(secret.get_secret_value()) if secret is not None else None

    sealed: dict[str, Sealed] = {}  # an address's key never changes: read once, kept sealed

    def read(address: str) -> Sealed | None:
        if address not in sealed:
            raw = read_compacted(settings, bootstrap, settings.topic(RELAYER_KEYS_TOPIC))
            value = raw.get(address.encode())
            if value is None:
                return None
            sealed[address] = Sealed.from_bytes(value)
        return sealed[address]

    def write(address: str, sealed: Sealed) -> None:
        _write(settings, bootstrap, RELAYER_KEYS_TOPIC, address, sealed.to_bytes())

    return SealedKeyStore(key, read, write)


class Registry:
    """The relayers, followed (``follow`` in a thread), and the changes made to them."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        networks: dict[str, int],
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.bootstrap, self.clock = settings, bootstrap, clock
        self.networks = networks  # name → chain id: the networks relayers may use
        self.topic = Followed(settings, bootstrap, settings.topic(RELAYERS_TOPIC))
        self.stopping, self.follow = self.topic.stopping, self.topic.follow

    def all(self) -> list[Relayer]:
        found = [Relayer.model_validate_json(v) for v in self.topic.values.values()]
        return sorted((r for r in found if not r.deleted), key=lambda r: r.created_ms)

    def get(self, relayer_id: str) -> Relayer | None:
        value = self.topic.values.get(relayer_id.encode())
        found = Relayer.model_validate_json(value) if value is not None else None
        return found if found is not None and not found.deleted else None

    def by_name(self, name_or_id: str) -> Relayer | None:
        found = self.get(name_or_id)
        return found or next((r for r in self.all() if r.name == name_or_id), None)

    def _keep(self, relayer: Relayer) -> Relayer:
        value = relayer.model_dump_json().encode()
        _write(self.settings, self.bootstrap, RELAYERS_TOPIC, relayer.relayer_id, value)
        self.topic.values = {**self.topic.values, relayer.relayer_id.encode(): value}
        return relayer

    def create(self, request: CreateRelayerRequest, private_key: str | None = None) -> Relayer:
        """A new relayer with a new key (or ``private_key``, or the address of the relayer
        ``useAddressFromRelayerId`` names, on another network)."""
        if request.network not in self.networks:
            known = ", ".join(sorted(self.networks)) or "none"
            raise ConfigError(
                f"network {request.network!r} is not a network of the project (known: {known})",
                obj="relayer",
                field="network",
            )
        if any(r.name == request.name for r in self.all()):
            raise ConfigError(
                f"a relayer named {request.name!r} exists", obj="relayer", field="name"
            )
        now = self.clock.ms()
        if request.use_address_from_relayer_id is not None:
            original = self.get(request.use_address_from_relayer_id)
            if original is None:
                raise ConfigError(
                    f"no relayer {request.use_address_from_relayer_id!r} to take the address of",
                    obj="relayer",
                    field="useAddressFromRelayerId",
                )
            if original.network == request.network:
                raise ConfigError(
                    f"relayer {original.name!r} is already on {request.network}: a clone goes "
                    "to another network",
                    obj="relayer",
                    field="network",
                )
            address = original.address
        else:
            store = keystore(self.settings, self.bootstrap)
            address = store.import_key(private_key, now) if private_key else store.create(now)
        relayer = Relayer(
            relayer_id=str(uuid.uuid4()),
            name=request.name,
            network=request.network,
            address=address,
            min_balance=request.min_balance,
            paused=request.paused,
            policies=request.policies,
            created_ms=now,
            channels=request.channels,
        )
        return self._keep(relayer)

    def update(self, relayer: Relayer, change: UpdateRelayerRequest) -> Relayer:
        updates: dict[str, Any] = {}
        if change.name is not None:
            updates["name"] = change.name
        if change.min_balance is not None:
            updates["min_balance"] = change.min_balance
        if change.paused is not None:
            updates["paused"] = change.paused
        if change.policies is not None:
            updates["policies"] = relayer.policies.merged(change.policies)
        if change.channels is not None:
            updates["channels"] = change.channels
        return self._keep(relayer.model_copy(update=updates))

    def create_key(self, relayer: Relayer) -> tuple[str, ApiKey]:
        """A relayer API key: the secret (shown once) and its record (hash only)."""
        secret, record = new_key(
            f"relayer {relayer.name}", [f"{RELAY}:{relayer.relayer_id}"], self.clock.ms()
        )
        publish_key(self.settings, self.bootstrap, record)
        return secret, record


def relayer_of(key: ApiKey) -> str | None:
    """The relayer a relayer key is for (None: not a relayer key)."""
    found = [s.split(":", 1)[1] for s in key.scopes if s.startswith(f"{RELAY}:")]
    return found[0] if len(found) == 1 else None


def key_model(record: ApiKey, relayer_id: str, secret: str | None = None) -> dict[str, Any]:
    """The document's RelayerKey: ``apiKey`` is the key's id, ``secretKey`` the secret."""
    shown = {
        "keyId": record.key_id,
        "apiKey": record.key_id,
        "relayerId": relayer_id,
        "createdAt": iso(record.created_ms),
    }
    return shown | ({"secretKey": secret} if secret is not None else {})


def request_record(
    relayer: Relayer,
    kind: str,
    body: SendTransactionRequest,
    at_ms: int,
    *,
    transaction_id: str | None = None,
    nonce: int | None = None,
) -> RelayerRequest:
    return {
        "requestId": str(uuid.uuid4()),
        "relayerId": relayer.relayer_id,
        "kind": kind,
        "transactionId": transaction_id,
        "nonce": nonce,
        "body": body.model_dump_json(by_alias=True, exclude_none=True),
        "at": at_ms,
    }


class Transactions:
    """Every relayer transaction as it last stood (``follow`` in a thread), and the requests
    the API hands to the owners."""

    def __init__(self, settings: Settings, bootstrap: str, codec: Codec) -> None:
        self.settings, self.bootstrap, self.codec = settings, bootstrap, codec
        self.topic = settings.topic("relayer.transactions")
        self.requests = settings.topic("relayer.requests")
        self.latest: dict[str, RelayerTransaction] = {}
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.sink = producer(settings, bootstrap, client_id="vigil-relay-api", linger_ms=0)

    def load(self) -> dict[str, RelayerTransaction]:
        """Every transaction as it last stood, read from the start to the end now."""
        reader = consumer(self.settings, self.bootstrap, client_id="vigil-relay-load")
        try:
            parts = [TopicPartition(self.topic, p) for p in reader.partitions_for_topic(self.topic)]
            reader.assign(parts)
            reader.seek_to_beginning(*parts)
            ends = reader.end_offsets(parts)
            while any(reader.position(p) < ends[p] for p in parts):
                for records in reader.poll(timeout_ms=500).values():
                    for record in records:
                        tx = self.codec.decode(record.value, "RelayerTransaction", where=self.topic)
                        self.latest[tx["transactionId"]] = tx
        finally:
            reader.close()
        return self.latest

    def follow(self) -> None:
        reader = consumer(self.settings, self.bootstrap, client_id="vigil-relay-txs")
        parts = [TopicPartition(self.topic, p) for p in reader.partitions_for_topic(self.topic)]
        reader.assign(parts)
        reader.seek_to_beginning(*parts)
        try:
            while not self.stopping.is_set():
                for records in reader.poll(timeout_ms=200).values():
                    with self.changed:
                        for record in records:
                            tx = self.codec.decode(
                                record.value, "RelayerTransaction", where=self.topic
                            )
                            self.latest[tx["transactionId"]] = tx
                        self.changed.notify_all()
        finally:
            reader.close()

    def submit(self, request: RelayerRequest) -> None:
        value = self.codec.encode(self.requests, "RelayerRequest", request)
        try:
            self.sink.send(self.requests, key=request["relayerId"].encode(), value=value).get(30)
        except KafkaError as exc:
            raise BrokerError(
                f"the request to relayer {request['relayerId']} failed: {exc}"
            ) from exc

    def wait(self, predicate: Any, timeout: float) -> RelayerTransaction | None:
        """The first transaction ``predicate`` accepts, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for tx in list(self.latest.values()):
                    if predicate(tx):
                        return tx
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, 0.5))

    def of(self, relayer_id: str) -> list[RelayerTransaction]:
        return sorted(
            (t for t in self.latest.values() if t["relayerId"] == relayer_id),
            key=lambda t: t["createdAt"],
            reverse=True,
        )

    def pending_cost(self, relayer_id: str) -> int:
        """What the relayer's unfinished transactions may still cost (value + gas at most)."""
        total = 0
        for tx in self.of(relayer_id):
            if tx["status"] in FINAL:
                continue
            price = int(tx["maxFeePerGas"] or tx["gasPrice"] or 0)
            total += int(tx["value"]) + price * tx["gasLimit"]
        return total

    def close(self) -> None:
        self.stopping.set()
        self.sink.close()


def transaction_model(tx: RelayerTransaction) -> dict[str, Any]:
    """The document's TransactionResponse (never the raw signed bytes)."""
    shown: dict[str, Any] = {
        "transactionId": tx["transactionId"],
        "hash": tx["hash"],
        "to": tx["to"],
        "from": tx["from"],
        "value": tx["value"],
        "data": tx["data"],
        "speed": tx["speed"],
        "gasLimit": tx["gasLimit"],
        "nonce": tx["nonce"],
        "status": tx["status"],
        "chainId": tx["chainId"],
        "validUntil": iso(tx["validUntil"]) if tx["validUntil"] is not None else None,
        "createdAt": iso(tx["createdAt"]),
        "sentAt": iso(tx["sentAt"]) if tx["sentAt"] is not None else None,
        "pricedAt": iso(tx["pricedAt"]) if tx["pricedAt"] is not None else None,
        "isPrivate": tx["isPrivate"],
    }
    if tx["maxFeePerGas"] is not None:
        shown["maxFeePerGas"] = int(tx["maxFeePerGas"])
        shown["maxPriorityFeePerGas"] = int(tx["maxPriorityFeePerGas"] or 0)
    else:
        shown["gasPrice"] = int(tx["gasPrice"]) if tx["gasPrice"] is not None else None
    if tx["error"]:
        shown["error"] = tx["error"]
    return shown


SEND_WAIT = 10.0  # seconds a send waits for its owner to sign it, then answers pending
STATUS_GROUPS = {
    "pending": {"pending", "sent", "submitted", "inmempool"},
    "mined": {"mined", "confirmed"},
    "failed": {"failed", "expired"},
}
# read methods only: nothing that sends, signs, or keeps state on the node
READ_PREFIXES = ("eth_", "net_", "web3_")
REFUSED_METHODS = frozenset(
    {
        "eth_sendTransaction",
        "eth_sendRawTransaction",
        "eth_sign",
        "eth_signTransaction",
        "eth_signTypedData",
        "eth_signTypedData_v4",
        "eth_newFilter",
        "eth_newBlockFilter",
        "eth_newPendingTransactionFilter",
        "eth_getFilterChanges",
        "eth_getFilterLogs",
        "eth_uninstallFilter",
        "eth_subscribe",
        "eth_unsubscribe",
        "eth_accounts",
        "eth_coinbase",
    }
)


def rpc_error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


class Relay:
    """What the Relay API needs in one place: the relayers, their transactions, their keys
    and each network's RPC endpoints."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        codec: Codec,
        networks: dict[str, NetworkConfig],
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.bootstrap, self.clock = settings, bootstrap, clock
        self.networks = networks
        chain_ids = {name: config.chain_id for name, config in networks.items()}
        self.registry = Registry(settings, bootstrap, chain_ids, clock)
        self.transactions = Transactions(settings, bootstrap, codec)
        self.keys = keystore(settings, bootstrap)
        self._pools: dict[str, RpcPool] = {}
        self._started = False

    def start(self) -> None:
        """Follow the relayers and their transactions (once, however often called)."""
        if self._started:
            return
        self._started = True
        for name, follow in (
            ("relayers", self.registry.follow),
            ("relayer-txs", self.transactions.follow),
        ):
            threading.Thread(target=follow, name=name, daemon=True).start()

    def pool(self, network: str) -> RpcPool:
        if network not in self._pools:
            if network not in self.networks:
                raise ConfigError(f"network {network!r} is not a network of the project")
            self._pools[network] = RpcPool.for_network(
                network, self.networks[network], self.settings, attempts=2
            )
        return self._pools[network]

    def book(self, network: str) -> dict[str, str]:
        """The address book's contracts on ``network`` by name (whitelistReceivers may name
        them), read from the project as it is now: one change there counts at once."""
        return {
            name: entry["address"]
            for name, entry in address_book(self.settings.project_dir).items()
            if entry["network"] == network
        }

    def has_private(self, network: str) -> bool:
        """Whether the network takes private transactions (its ``private_rpc_urls``)."""
        config = self.networks.get(network)
        return config is not None and bool(config.private_rpc_urls)

    def private_pool(self, network: str) -> RpcPool:
        """The network's endpoints for private transactions (has_private first)."""
        key = f"{network} (private)"
        if key not in self._pools:
            config = self.networks[network]
            private = config.model_copy(update={"rpc_urls": config.private_rpc_urls})
            self._pools[key] = RpcPool.for_network(network, private, self.settings, attempts=2)
        return self._pools[key]

    def close(self) -> None:
        self.registry.stopping.set()
        self.transactions.close()
        for pool in self._pools.values():
            pool.close()

    # -- what the Relay API, the CLI and tasks ask of a relayer ------------------------------

    def check(self, relayer: Relayer, body: SendTransactionRequest) -> None:
        """The policies, then the balance when a minBalance is set: a PolicyRefusal names
        the one that refuses; an RpcError when the network does not answer."""
        private = self.has_private(relayer.network)
        check_send(relayer, body, self.clock.ms(), private=private, book=self.book(relayer.network))
        if relayer.min_balance:
            found = self.pool(relayer.network).call("eth_getBalance", relayer.address, "latest")
            check_balance(relayer, int(found, 16))

    def send(
        self, relayer: Relayer, body: SendTransactionRequest, wait: float = SEND_WAIT
    ) -> dict[str, Any]:
        """Checked, handed to the owner, and its TransactionResponse once signed (or
        ``pending`` after ``wait`` s)."""
        self.check(relayer, body)
        tx_id = str(uuid.uuid4())
        request = request_record(relayer, "send", body, self.clock.ms(), transaction_id=tx_id)
        self.transactions.submit(request)
        found = self.transactions.wait(
            lambda t: t["transactionId"] == tx_id and t["status"] != "pending", wait
        )
        if found is None:
            return {"transactionId": tx_id, "status": "pending", "hash": None}
        return transaction_model(found)

    def target(self, relayer: Relayer, id_or_nonce: str) -> RelayerTransaction:
        """The unfinished transaction a replacement names, by id or nonce: NotFound, or a
        ConflictError when it is already mined or over."""
        mine = self.transactions.of(relayer.relayer_id)
        if id_or_nonce.isdigit():
            found = next(
                (t for t in mine if t["nonce"] == int(id_or_nonce) and t["status"] not in FINAL),
                None,
            )
        else:
            found = next((t for t in mine if t["transactionId"] == id_or_nonce), None)
        if found is None:
            raise NotFound(f"no unfinished transaction {id_or_nonce!r} of this relayer")
        if found["status"] in FINAL or found["status"] == "mined":
            raise ConflictError(f"transaction {found['transactionId']} is {found['status']}")
        return found

    def replace(
        self, relayer: Relayer, id_or_nonce: str, body: SendTransactionRequest
    ) -> dict[str, Any]:
        """Replace an unfinished transaction: the same nonce, a higher fee."""
        target = self.target(relayer, id_or_nonce)
        private = self.has_private(relayer.network)
        check_send(relayer, body, self.clock.ms(), private=private, book=self.book(relayer.network))
        versions, tx_id = len(target["hashes"]), target["transactionId"]
        request = request_record(relayer, "replace", body, self.clock.ms(), transaction_id=tx_id)
        self.transactions.submit(request)
        found = self.transactions.wait(
            lambda t: t["transactionId"] == tx_id and len(t["hashes"]) > versions, SEND_WAIT
        )
        return transaction_model(found or target)

    def listed(
        self, relayer: Relayer, status: str | None, since_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """The relayer's transactions, newest first: ``status`` is pending, mined, failed or
        one exact status."""
        found = self.transactions.of(relayer.relayer_id)
        if status is not None:
            wanted = STATUS_GROUPS.get(status, {status})
            found = [t for t in found if t["status"] in wanted]
        if since_ms is not None:
            found = [t for t in found if t["createdAt"] >= since_ms]
        return [transaction_model(t) for t in found[: max(0, limit)]]

    def jsonrpc(self, relayer: Relayer, body: Any) -> dict[str, Any]:
        """A JSON-RPC call on the relayer's network: read methods only."""
        if not isinstance(body, dict):
            return rpc_error(None, -32600, "expected one JSON-RPC request object (no batches)")
        method, ident = str(body.get("method", "")), body.get("id")
        if not method.startswith(READ_PREFIXES) or method in REFUSED_METHODS:
            return rpc_error(ident, -32601, f"{method or 'no method'} is not served by a relayer")
        try:
            result = self.pool(relayer.network).call(method, *(body.get("params") or []))
        except RpcError as exc:
            return rpc_error(ident, getattr(exc, "code", None) or -32000, str(exc))
        return {"jsonrpc": "2.0", "id": ident, "result": result}


class TaskRelayer:
    """``context.relayer`` of a task's runs: the relayer its task file names, through
    ``relay``. A refusal is a ValueError, whose message the task sees."""

    def __init__(self, relay: Relay | None, name: str | None) -> None:
        self.relay, self.name = relay, name

    def call(self, call: str, body: dict[str, Any]) -> Any:
        if self.name is None or self.relay is None:
            raise ValueError("this task has no relayer: add `relayer: NAME` to its task file")
        relay = self.relay
        relayer = relay.registry.by_name(self.name)
        if relayer is None:
            raise ValueError(f"the task's relayer {self.name!r} does not exist")
        try:
            return self._call(relay, relayer, call, body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "transaction"
            raise ValueError(f"{where}: {first['msg']}") from None
        except (VigilError, KeyError, TypeError) as exc:
            raise ValueError(str(exc)) from None

    def _call(self, relay: Relay, relayer: Relayer, call: str, body: dict[str, Any]) -> Any:
        if call == "send":
            return relay.send(relayer, SendTransactionRequest.model_validate(body))
        if call == "replace":
            wanted = SendTransactionRequest.model_validate(body["tx"])
            return relay.replace(relayer, str(body["id"]), wanted)
        if call == "query":
            found = relay.transactions.latest.get(str(body["id"]))
            if found is None or found["relayerId"] != relayer.relayer_id:
                raise NotFound(f"no transaction {body['id']!r} of this relayer")
            return transaction_model(found)
        if call == "list":
            since = body.get("since")
            since_ms = int(datetime.fromisoformat(str(since)).timestamp() * 1000) if since else None
            return relay.listed(relayer, body.get("status"), since_ms, int(body.get("limit") or 50))
        if call in ("sign", "sign-typed-data"):
            account = relay.keys.signer(relayer.address)
            if call == "sign":
                return sign_message(account, str(body["message"]))
            return sign_typed_data(account, body["domainSeparator"], body["hashStructMessage"])
        if call == "relayer":
            return relayer.model(relay.transactions.pending_cost(relayer.relayer_id))
        if call == "jsonrpc":
            return relay.jsonrpc(relayer, body)
        raise ValueError(f"no relayer call {call!r}")
