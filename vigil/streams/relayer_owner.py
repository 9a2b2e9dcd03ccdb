"""The relayers' owner: the one process that assigns nonces, signs, broadcasts and follows
each relayer transaction to its end (in `vigil runner`, one member of the group
``relayer`` on the one-partition ``relayer.requests``).

Its state is ``relayer.transactions``, read from the start when it starts, so a restart
(or a new owner) knows every nonce taken. Write-ahead, so a crash loses nothing and
sends nothing twice:
- a request's transaction is recorded ``sent`` (signed, with its raw bytes) before it is
  broadcast, and the request is committed after that record: a request read again finds
  its transaction and is skipped; a ``sent`` one is broadcast again, the same bytes, which
  a node takes once (same hash);
- a nonce is the next after every one the relayer's address holds on that chain, or the
  chain's pending count if higher; one that failed before reaching the chain is reused.

Each ``VIGIL_RELAYER_POLL`` seconds it follows the unfinished ones: mined, confirmed, back
to submitted when a reorg drops the receipt (and broadcast again); unmined past
``VIGIL_RELAYER_RESUBMIT`` seconds, sent again at the same nonce with a 12.5% higher fee;
``validUntil`` passed, expired and its nonce taken by a 0-value self-transfer; a nonce below
the address's highest that nobody holds, filled the same way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from eth_utils.address import to_checksum_address
from kafka.errors import KafkaError
from pydantic import ValidationError

from vigil.clock import SYSTEM, Clock
from vigil.config.models import NetworkConfig
from vigil.config.relayers import FINAL, Relayer, SendTransactionRequest
from vigil.connectors.relayer.keystore import KeyStore
from vigil.connectors.relayer.signer import sign_transaction
from vigil.errors import RpcError, RpcReplyError, VigilError
from vigil.processors import relayer as rules
from vigil.schemas.codec import Codec, millis
from vigil.schemas.records import RelayerRequest, RelayerTransaction
from vigil.settings import Settings
from vigil.streams.evm.rpc import RpcPool
from vigil.streams.hooks import BeforeRelay
from vigil.streams.kafka import commit, consumer, producer, subscribe
from vigil.streams.relayers import Relay
from vigil.streams.task_notify import RunNotices

log = logging.getLogger(__name__)
KNOWN = ("already known", "known transaction", "already imported")
TOO_LOW = ("nonce too low", "nonce is too low", "oldnonce")


class RelayerOwner:
    """Reads ``relayer.requests`` and keeps ``relayer.transactions`` true to the chain."""

    def __init__(
        self,
        settings: Settings,
        bootstrap: str,
        codec: Codec,
        relay: Relay,
        keys: KeyStore | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings, self.bootstrap, self.codec, self.clock = settings, bootstrap, codec, clock
        self.relay, self.networks, self.registry = relay, relay.networks, relay.registry
        self.hooks = BeforeRelay(settings, bootstrap, codec, clock)
        self.keys: KeyStore = keys or relay.keys
        self.requests = settings.topic("relayer.requests")
        self.topic = settings.topic("relayer.transactions")
        self.txs: dict[str, RelayerTransaction] = {}
        self.sink = producer(settings, bootstrap, client_id="vigil-relayer", linger_ms=0)
        self.stopping = threading.Event()
        self._last_check = 0.0
        self._filled: dict[tuple[int, str, int], float] = {}  # gaps filled, and when
        self._low: set[str] = set()  # relayers below their minBalance, told once
        self._balances_at = 0.0
        self._history: dict[str, tuple[float, Any]] = {}  # network → (when, eth_feeHistory)
        self._counts: dict[tuple[int, str], int] = {}  # the chain's nonce count, when asked

    # -- state ------------------------------------------------------------------------------

    def load(self) -> None:
        """Every transaction as it last stood, from the start of ``relayer.transactions``."""
        self.txs = dict(self.relay.transactions.load())

    def record(self, tx: RelayerTransaction, status: str, **changes: Any) -> RelayerTransaction:
        """Write ``tx`` in ``status`` and wait for the brokers: nothing goes further first."""
        new: RelayerTransaction = {**tx, **changes, "status": status, "updatedAt": self.clock.ms()}  # type: ignore[typeddict-item]
        value = self.codec.encode(self.topic, "RelayerTransaction", new)
        self.sink.send(self.topic, key=new["relayerId"].encode(), value=value).get(30)
        self.txs[new["transactionId"]] = new
        log.info(
            "relayer %s: transaction %s nonce %s %s",
            new["relayerId"],
            new["transactionId"],
            new["nonce"],
            status,
        )
        return new

    def pool(self, network: str) -> RpcPool:
        return self.relay.pool(network)

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        self.load()
        self.relay.start()
        self.hooks.start()
        requests = consumer(
            self.settings,
            self.bootstrap,
            group_id=self.settings.group("relayer"),
            auto_offset_reset="earliest",
            client_id="vigil-relayer",
        )
        subscribe(requests, [self.requests])
        try:
            self.recover()
            while not self.stopping.is_set():
                for records in requests.poll(timeout_ms=200).values():
                    for record in records:
                        request = self.codec.decode(
                            record.value, "RelayerRequest", where=self.requests
                        )
                        self.handle(request)
                    commit(requests)
                if time.monotonic() - self._last_check >= self.settings.relayer_poll:
                    self._last_check = time.monotonic()
                    self.check()
                    self._guarded(self.balances)
        finally:
            requests.close()
            self.relay.close()
            self.hooks.close()
            self.sink.close()

    def recover(self) -> None:
        """Broadcast again what was signed but may not have reached the chain."""
        for tx in list(self.txs.values()):
            if tx["status"] == "sent" and tx["raw"]:
                self._guarded(self._broadcast, tx)

    def _guarded(self, step: Any, *args: Any) -> Any:
        """A step whose chain or broker failure is logged and tried again later."""
        try:
            return step(*args)
        except (RpcError, KafkaError, VigilError) as exc:
            log.warning("relayer: %s", exc)
            return None

    # -- requests ---------------------------------------------------------------------------

    def handle(self, request: RelayerRequest) -> None:
        relayer = self.registry.get(request["relayerId"])
        try:
            body = SendTransactionRequest.model_validate_json(request["body"])
        except ValidationError as exc:
            log.error("relayer: request %s unreadable: %s", request["requestId"], exc)
            return
        if relayer is None:
            log.error("relayer: request %s names no relayer", request["requestId"])
            return
        if request["kind"] == "send":
            tx_id = request["transactionId"] or request["requestId"]
            if tx_id not in self.txs:  # else done before a restart
                self._guarded(self.send, relayer, body, tx_id, millis(request["at"]))
        elif request["kind"] == "replace":
            target = self.find(relayer, request["transactionId"], request["nonce"])
            if target is not None and target["status"] not in FINAL | {"mined"}:
                self._guarded(self.replace, relayer, target, body)
            else:
                log.warning("relayer: nothing to replace for request %s", request["requestId"])

    def find(
        self, relayer: Relayer, tx_id: str | None, nonce: int | None
    ) -> RelayerTransaction | None:
        if tx_id is not None:
            found = self.txs.get(tx_id)
            return found if found is not None and found["relayerId"] == relayer.relayer_id else None
        return next(
            (
                t
                for t in self.txs.values()
                if t["relayerId"] == relayer.relayer_id
                and t["nonce"] == nonce
                and t["status"] not in FINAL
            ),
            None,
        )

    def send(
        self, relayer: Relayer, body: SendTransactionRequest, tx_id: str, at_ms: int
    ) -> RelayerTransaction:
        refused = None
        try:
            body = self._before(relayer, tx_id, body)
            private = self.relay.has_private(relayer.network)
            book = self.relay.book(relayer.network)
            rules.check_send(relayer, body, self.clock.ms(), private=private, book=book)
        except VigilError as exc:  # a hook's veto, or a policy: nothing is signed
            refused = str(exc)
        tx = self._new(relayer, body, tx_id, at_ms)
        if refused is not None:
            return self.record(tx, "failed", error=refused)
        fees = rules.requested_fees(body) or self.market(relayer, tx["speed"] or "fast")
        nonce = self.next_nonce(relayer, self.pool(relayer.network))
        return self._sign_and_send(relayer, tx, nonce, fees)

    def _before(
        self, relayer: Relayer, tx_id: str, body: SendTransactionRequest
    ) -> SendTransactionRequest:
        """The request as the relayer's ``before: relay`` hooks leave it, checked again."""
        given = body.shown()
        answer = self.hooks.apply(relayer.name, relayer.relayer_id, tx_id, given)
        if answer == given:
            return body
        try:
            return SendTransactionRequest.model_validate(answer)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "transaction"
            raise VigilError(
                f"the hooks left no valid transaction: {where}: {first['msg']}"
            ) from None

    def _new(
        self, relayer: Relayer, body: SendTransactionRequest, tx_id: str, at_ms: int
    ) -> RelayerTransaction:
        """The record of a transaction not yet signed."""
        return {
            "transactionId": tx_id,
            "relayerId": relayer.relayer_id,
            "status": "pending",
            "chainId": self.networks[relayer.network].chain_id,
            "from": relayer.address,
            "to": body.to,
            "value": str(body.value),
            "data": body.data,
            "gasLimit": body.gas_limit,
            "nonce": None,
            "speed": body.speed or ("fast" if body.pricing() == "speed" else None),
            "gasPrice": None,
            "maxFeePerGas": None,
            "maxPriorityFeePerGas": None,
            "hash": None,
            "hashes": [],
            "raw": None,
            "isPrivate": rules.is_private(relayer, body),
            "validUntil": int(body.valid_until.timestamp() * 1000) if body.valid_until else None,
            "createdAt": at_ms,
            "sentAt": None,
            "pricedAt": None,
            "minedBlock": None,
            "updatedAt": at_ms,
            "error": None,
        }

    def replace(
        self, relayer: Relayer, target: RelayerTransaction, body: SendTransactionRequest
    ) -> RelayerTransaction:
        try:
            body = self._before(relayer, target["transactionId"], body)
            private = self.relay.has_private(relayer.network)
            book = self.relay.book(relayer.network)
            rules.check_send(relayer, body, self.clock.ms(), private=private, book=book)
        except VigilError as exc:  # the replacement is refused; the transaction stands
            log.warning("relayer: replacement of %s refused: %s", target["transactionId"], exc)
            return target
        fees = rules.requested_fees(body) or self.market(relayer, body.speed or "fast")
        raised = rules.bumped(_fees(target), fees, relayer.policies.gas_price_cap)
        fees = fees if fees.cap >= raised.cap else raised
        changed: RelayerTransaction = {
            **target,
            "to": body.to,
            "value": str(body.value),
            "data": body.data,
            "gasLimit": body.gas_limit,
            "speed": body.speed,
            "validUntil": int(body.valid_until.timestamp() * 1000)
            if body.valid_until
            else target["validUntil"],
        }
        return self._sign_and_send(relayer, changed, int(target["nonce"] or 0), fees)

    def market(self, relayer: Relayer, speed: str) -> rules.Fees:
        """The speed's fees from the network's fee history, asked at most once a second
        per network (fees move per block)."""
        eip1559 = bool(relayer.policies.eip1559_pricing)
        cached = self._history.get(relayer.network)
        if cached is None or time.monotonic() - cached[0] > 1.0:
            found = self.pool(relayer.network).call(
                "eth_feeHistory", hex(10), "latest", rules.fee_percentiles()
            )
            cached = self._history[relayer.network] = (time.monotonic(), found)
        fees = rules.price(speed, cached[1], eip1559=eip1559)
        return rules.capped(fees, relayer.policies.gas_price_cap)

    def next_nonce(self, relayer: Relayer, pool: RpcPool, *, ask: bool = False) -> int:
        """After every nonce the address holds on this chain, or the chain's pending count
        if higher (asked at an address's first send, and when ``ask``: after a "nonce too
        low", someone else used the key)."""
        chain_id = self.networks[relayer.network].chain_id
        held = [
            int(t["nonce"])
            for t in self.txs.values()
            if t["from"] == relayer.address
            and t["chainId"] == chain_id
            and t["nonce"] is not None
            and t["status"] != "failed"
        ]
        key = (chain_id, relayer.address)
        if ask or key not in self._counts:
            count = int(pool.call("eth_getTransactionCount", relayer.address, "pending"), 16)
            self._counts[key] = count
        return max([self._counts[key], *(n + 1 for n in held)])

    def _sign_and_send(
        self, relayer: Relayer, tx: RelayerTransaction, nonce: int, fees: rules.Fees
    ) -> RelayerTransaction:
        fields: dict[str, Any] = {
            "chainId": tx["chainId"],
            "nonce": nonce,
            "to": to_checksum_address(tx["to"]) if tx["to"] else "",
            "value": int(tx["value"]),
            "data": tx["data"],
            "gas": tx["gasLimit"],
        }
        if fees.eip1559:
            fields |= {
                "type": 2,
                "maxFeePerGas": fees.max_fee_per_gas,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            }
        else:
            fields["gasPrice"] = fees.gas_price
        if not fields["to"]:
            fields.pop("to")
        try:
            raw, hash_ = sign_transaction(self.keys.signer(relayer.address), fields)
        except (TypeError, ValueError) as exc:  # nothing was signed: the nonce stays free
            return self.record(tx, "failed", error=f"could not be signed: {exc}")
        now = self.clock.ms()
        signed = self.record(
            tx,
            "sent",
            nonce=nonce,
            raw=raw,
            hash=hash_,
            hashes=[*tx["hashes"], hash_],
            gasPrice=str(fees.gas_price) if fees.gas_price is not None else None,
            maxFeePerGas=str(fees.max_fee_per_gas) if fees.eip1559 else None,
            maxPriorityFeePerGas=str(fees.max_priority_fee_per_gas) if fees.eip1559 else None,
            pricedAt=now,
            sentAt=tx["sentAt"] or now,
        )
        return self._broadcast(signed)

    def _broadcast(self, tx: RelayerTransaction) -> RelayerTransaction:
        relayer = self.registry.get(tx["relayerId"])
        network = relayer.network if relayer else self._network_of(tx)
        private = tx["isPrivate"] and self.relay.has_private(network)
        target = self.relay.private_pool(network) if private else self.pool(network)
        try:
            target.call("eth_sendRawTransaction", tx["raw"])
        except RpcReplyError as exc:
            text = str(exc).lower()
            if any(k in text for k in KNOWN):
                pass  # the same bytes, taken before
            elif any(k in text for k in TOO_LOW) and self._landed(network, tx):
                pass  # this nonce is mined, by one of our own versions
            elif any(k in text for k in TOO_LOW) and relayer is not None:
                log.warning("relayer: nonce %s of %s is taken; next", tx["nonce"], tx["from"])
                nonce = self.next_nonce(relayer, self.pool(network), ask=True)
                return self._sign_and_send(relayer, {**tx, "hashes": []}, nonce, _fees(tx))
            else:
                return self.record(tx, "failed", error=f"the node refused it: {exc}")
        return self.record(tx, "submitted")

    def _landed(self, network: str, tx: RelayerTransaction) -> bool:
        pool = self.pool(network)
        return any(pool.call("eth_getTransactionReceipt", h) for h in tx["hashes"])

    def _network_of(self, tx: RelayerTransaction) -> str:
        for name, config in self.networks.items():
            if config.chain_id == tx["chainId"]:
                return name
        raise VigilError(f"no network of the project has chain id {tx['chainId']}")

    # -- balances ---------------------------------------------------------------------------

    def balances(self) -> None:
        """Tell a relayer's channels once when its balance falls below its minBalance (and
        again after it was funded and fell again); every 15 chain checks."""
        if time.monotonic() - self._balances_at < 15 * self.settings.relayer_poll:
            return
        self._balances_at = time.monotonic()
        for relayer in self.registry.all():
            if not relayer.min_balance or not relayer.channels:
                continue
            found = self.pool(relayer.network).call("eth_getBalance", relayer.address, "latest")
            balance = int(found, 16)
            if balance >= relayer.min_balance:
                self._low.discard(relayer.relayer_id)
            elif relayer.relayer_id not in self._low:
                self._low.add(relayer.relayer_id)
                self._tell_low(relayer, balance)

    def _tell_low(self, relayer: Relayer, balance: int) -> None:
        run = {
            "runId": f"relayer:{relayer.relayer_id}:low:{self.clock.ms()}",
            "taskId": relayer.relayer_id,
            "taskName": relayer.name,
            "version": "",
            "trigger": "minBalance",
            "source": f"relayer:{relayer.relayer_id}",
        }
        notices = RunNotices(self.settings, self.bootstrap, self.codec, self.sink, run, self.clock)
        subject = f"relayer {relayer.name}: balance below minBalance"
        message = (
            f"Relayer {relayer.name} ({relayer.address} on {relayer.network}) holds {balance} "
            f"wei, below its minBalance of {relayer.min_balance} wei: its sends are refused "
            "until it is funded."
        )
        for alias in relayer.channels:
            try:
                warning = notices.send(alias, subject, message)
            except ValueError as exc:  # an alias that is not applied
                warning = str(exc)
            if warning:
                log.error("relayer %s: low-balance notice to %s: %s", relayer.name, alias, warning)

    # -- following the chain ----------------------------------------------------------------

    def check(self) -> None:
        """Move every unfinished transaction on by what the chain says; fill nonce gaps."""
        waiting: dict[tuple[int, str], list[RelayerTransaction]] = {}
        for tx in sorted(self.txs.values(), key=lambda t: (t["from"], t["nonce"] or 0)):
            if tx["status"] in FINAL or tx["status"] == "pending" or not tx["hashes"]:
                continue
            waiting.setdefault((tx["chainId"], tx["from"]), []).append(tx)
            self._guarded(self._follow, tx)
        for (chain_id, address), txs in waiting.items():
            self._guarded(self._fill_gaps, chain_id, address, txs)

    def _fill_gaps(self, chain_id: int, address: str, waiting: list[RelayerTransaction]) -> None:
        """Take every nonce below the highest waiting one that nobody holds, with a 0-value
        transfer to itself (a send that failed before reaching the chain leaves one)."""
        top = max(int(t["nonce"] or 0) for t in waiting)
        held = [
            int(t["nonce"])
            for t in self.txs.values()
            if t["chainId"] == chain_id
            and t["from"] == address
            and t["nonce"] is not None
            and t["status"] != "failed"
        ]
        network = self._network_of(waiting[0])
        start = int(self.pool(network).call("eth_getTransactionCount", address, "latest"), 16)
        for nonce in rules.gaps(held, top, start):
            last = self._filled.get((chain_id, address, nonce))
            if last is not None and time.monotonic() - last < self.settings.relayer_resubmit:
                continue  # filled a moment ago, and that one failed too: not in a loop
            self._filled[(chain_id, address, nonce)] = time.monotonic()
            log.warning("relayer: nonce %s of %s is a gap; filling it", nonce, address)
            self._noop(waiting[0], nonce)

    def _follow(self, tx: RelayerTransaction) -> None:
        network = self._network_of(tx)
        pool = self.pool(network)
        receipt = None
        for hash_ in reversed(tx["hashes"]):
            receipt = pool.call("eth_getTransactionReceipt", hash_)
            if receipt:
                break
        now = self.clock.ms()
        if receipt:
            block = int(receipt["blockNumber"], 16)
            head = int(pool.call("eth_blockNumber"), 16)
            status = rules.confirmation_status(block, head, _confirmations(self.networks[network]))
            if status != tx["status"] or block != tx["minedBlock"]:
                self.record(tx, status, minedBlock=block, hash=receipt["transactionHash"])
            return
        if tx["status"] in ("mined", "confirmed"):  # the block that had it is gone
            log.warning("relayer: %s left the chain in a reorg; sending it again", tx["hash"])
            self._broadcast(self.record(tx, "sent", minedBlock=None))
            return
        if rules.expired(tx["validUntil"], now):
            self.record(tx, "expired", error="validUntil passed before it was mined")
            self._cancel(tx)
            return
        if now - int(tx["pricedAt"] or now) > self.settings.relayer_resubmit * 1000:
            relayer = self.registry.get(tx["relayerId"])
            if relayer is not None:
                market = self.market(relayer, tx["speed"] or "fast")
                fees = rules.bumped(_fees(tx), market, relayer.policies.gas_price_cap)
                log.info("relayer: %s unmined; sent again with a higher fee", tx["hash"])
                self._sign_and_send(relayer, tx, int(tx["nonce"] or 0), fees)
            return
        if tx["isPrivate"]:
            return  # a private mempool is not the public node's: it waits, or is bumped
        seen = pool.call("eth_getTransactionByHash", tx["hash"])
        if seen and tx["status"] == "submitted":
            self.record(tx, "inmempool")
        elif not seen and tx["status"] in ("submitted", "inmempool"):
            self._broadcast(tx)  # dropped by the node: the same bytes again

    def _cancel(self, tx: RelayerTransaction) -> None:
        """Take ``tx``'s nonce with a 0-value transfer to itself, so later ones can mine."""
        self._noop(tx, int(tx["nonce"] or 0), replacing=True)

    def _noop(self, like: RelayerTransaction, nonce: int, *, replacing: bool = False) -> None:
        """A 0-value transfer to itself at ``nonce``, recorded as a transaction of its own;
        ``replacing``: it replaces ``like`` at that nonce (a higher fee, its versions kept)."""
        relayer = self.registry.get(like["relayerId"])
        if relayer is None:
            return
        noop: RelayerTransaction = {
            **like,
            "transactionId": f"noop-{uuid.uuid4()}",
            "to": relayer.address,
            "value": "0",
            "data": "0x",
            "gasLimit": 21_000,
            "validUntil": None,
            "hashes": list(like["hashes"]) if replacing else [],
            "sentAt": None,
            "minedBlock": None,
            "error": None,
        }
        fees = self.market(relayer, "fast")
        if replacing:
            fees = rules.bumped(_fees(like), fees, relayer.policies.gas_price_cap)
        self._sign_and_send(relayer, noop, nonce, fees)


def _fees(tx: RelayerTransaction) -> rules.Fees:
    if tx["maxFeePerGas"] is not None:
        return rules.Fees(
            max_fee_per_gas=int(tx["maxFeePerGas"]),
            max_priority_fee_per_gas=int(tx["maxPriorityFeePerGas"] or 0),
        )
    return rules.Fees(gas_price=int(tx["gasPrice"] or 0))


def _confirmations(network: NetworkConfig) -> int:
    """Blocks after the mining one before ``confirmed``: the network's confirmations, or 12
    where it confirms by a tag (safe, finalized)."""
    return network.confirmations if isinstance(network.confirmations, int) else 12
