"""The Relay API (source document 002), so code written for the hosted relayer can point its
base URL here.

Relay Client (an API key with ``relayers:read`` / ``relayers:write``): ``/relayers…``.
Relay Signer (a relayer key, ``vigil relayers keys create``, holding ``relay:<id>``):
``/txs``, ``/sign``, ``/sign-typed-data``, ``/relayer`` and ``/relayer/jsonrpc``.
A refusal by a policy is a 400 whose body names the policy and the value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from vigil.api.auth import ANONYMOUS_HINT, authenticate, presented, require
from vigil.config.access import RELAY, ApiKey
from vigil.config.relayers import (
    CreateRelayerRequest,
    Relayer,
    RelayerPolicies,
    SendTransactionRequest,
    UpdateRelayerRequest,
)
from vigil.connectors.relayer.signer import sign_message, sign_typed_data
from vigil.errors import ConflictError, NotFound, RpcError, VigilError
from vigil.processors import relayer as rules
from vigil.streams.api_keys import publish_key
from vigil.streams.relayers import (
    Relay,
    key_model,
    relayer_of,
    rpc_error,
    transaction_model,
)

router = APIRouter(tags=["relayers"])


def relay_of(request: Request) -> Relay:
    found: Relay | None = getattr(request.app.state, "relay", None)
    if found is None:
        raise HTTPException(503, "the relayers are not ready: starting, or not served here")
    return found


def refused(exc: rules.PolicyRefusal) -> JSONResponse:
    return JSONResponse(
        {"message": str(exc), "policy": exc.policy, "value": _shown(exc.value)}, status_code=400
    )


def _shown(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _invalid(exc: ValidationError) -> HTTPException:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return HTTPException(422, f"{where}: {first['msg']}")


# -- Relay Client ---------------------------------------------------------------------------


def _relayer(relay: Relay, relayer_id: str) -> Relayer:
    found = relay.registry.get(relayer_id)
    if found is None:
        raise HTTPException(404, f"no relayer {relayer_id!r}")
    return found


@router.get("/relayers/summary", dependencies=[require("relayers:read")])
async def relayers_summary(request: Request) -> list[dict[str, Any]]:
    """Every relayer: id, name, address, network, paused, policies, minBalance, pendingTxCost."""
    relay = relay_of(request)
    return [r.model(relay.transactions.pending_cost(r.relayer_id)) for r in relay.registry.all()]


@router.post("/relayers", dependencies=[require("relayers:write")])
async def create_relayer(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """A new relayer (CreateRelayerRequest), with a new signing key, or with the address of
    ``useAddressFromRelayerId`` on another network."""
    relay = relay_of(request)
    try:
        wanted = CreateRelayerRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    try:
        made = await run_in_threadpool(relay.registry.create, wanted)
    except VigilError as exc:
        raise HTTPException(400, str(exc)) from None
    return made.model()


@router.get("/relayers/{relayer_id}", dependencies=[require("relayers:read")])
async def get_relayer(relayer_id: str, request: Request) -> dict[str, Any]:
    relay = relay_of(request)
    found = _relayer(relay, relayer_id)
    return found.model(relay.transactions.pending_cost(relayer_id))


@router.put("/relayers/{relayer_id}", dependencies=[require("relayers:write")])
async def update_relayer(
    relayer_id: str, request: Request, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    """Change name, minBalance, paused or policies (UpdateRelayerRequest); a body of policy
    fields alone (UpdateRelayerPoliciesRequest) changes the policies, as the document's
    direct requests do."""
    relay = relay_of(request)
    found = _relayer(relay, relayer_id)
    policy_fields = {f.alias for f in RelayerPolicies.model_fields.values()}
    try:
        if body and set(body) <= policy_fields:
            change = UpdateRelayerRequest(policies=RelayerPolicies.model_validate(body))
        else:
            change = UpdateRelayerRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    updated = await run_in_threadpool(relay.registry.update, found, change)
    return updated.model(relay.transactions.pending_cost(relayer_id))


def _keys_of(request: Request, relayer_id: str) -> list[ApiKey]:
    ring = request.app.state.keys
    records = ring.all() if hasattr(ring, "all") else []
    return [k for k in records if k.revoked_ms is None and relayer_of(k) == relayer_id]


@router.get("/relayers/{relayer_id}/keys", dependencies=[require("relayers:read")])
async def list_keys(relayer_id: str, request: Request) -> list[dict[str, Any]]:
    """The relayer's keys: keyId, apiKey, createdAt (never a secret)."""
    _relayer(relay_of(request), relayer_id)
    return [key_model(k, relayer_id) for k in _keys_of(request, relayer_id)]


@router.post("/relayers/{relayer_id}/keys", dependencies=[require("relayers:write")])
async def create_key(relayer_id: str, request: Request) -> dict[str, Any]:
    """A new relayer key; its ``secretKey`` is shown here only."""
    relay = relay_of(request)
    found = _relayer(relay, relayer_id)
    secret, record = await run_in_threadpool(relay.registry.create_key, found)
    return key_model(record, relayer_id, secret)


@router.delete("/relayers/{relayer_id}/keys/{key_id}", dependencies=[require("relayers:write")])
async def delete_key(relayer_id: str, key_id: str, request: Request) -> dict[str, Any]:
    relay = relay_of(request)
    _relayer(relay, relayer_id)
    record = next((k for k in _keys_of(request, relayer_id) if k.key_id == key_id), None)
    if record is None:
        raise HTTPException(404, f"relayer {relayer_id} has no key {key_id!r}")
    revoked = record.model_copy(update={"revoked_ms": relay.clock.ms()})
    await run_in_threadpool(publish_key, relay.settings, relay.bootstrap, revoked)
    return {"message": f"{key_id} deleted"}


# -- Relay Signer ---------------------------------------------------------------------------


def signer_relayer(request: Request) -> Relayer:
    """The relayer of the request's relayer key: 401 without a key, 403 for another key."""
    key = presented(request)
    if not key:
        raise HTTPException(401, f"missing relayer key: {ANONYMOUS_HINT}")
    record = authenticate(request.app.state.keys, key)
    if record is None:
        raise HTTPException(401, "unknown or revoked key")
    relayer_id = relayer_of(record)
    if relayer_id is None:
        raise HTTPException(
            403,
            f"the key {record.key_id} is not a relayer key (the scope {RELAY}:<relayer id>); "
            "`vigil relayers keys create RELAYER` makes one",
        )
    return _relayer(relay_of(request), relayer_id)


Signer = Depends(signer_relayer)


@router.get("/relayer")
async def relayer_info(request: Request, relayer: Relayer = Signer) -> dict[str, Any]:
    """The document's RelayerModel."""
    relay = relay_of(request)
    return relayer.model(relay.transactions.pending_cost(relayer.relayer_id))


def _send_body(body: dict[str, Any]) -> SendTransactionRequest:
    try:
        return SendTransactionRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None


@router.post("/txs", response_model=None)
async def send_transaction(
    request: Request, body: dict[str, Any] = Body(...), relayer: Relayer = Signer
) -> Any:
    """Send a transaction (SendSpeedTransactionRequest, …Legacy…, …EIP1559…): checked
    against the relayer's policies, then signed by its owner; the answer is the
    TransactionResponse once signed (status ``pending`` if that takes over 10 s)."""
    wanted = _send_body(body)
    try:
        sent = await run_in_threadpool(relay_of(request).send, relayer, wanted)
    except rules.PolicyRefusal as exc:
        return refused(exc)
    except RpcError as exc:
        raise HTTPException(502, f"the relayer's network did not answer: {exc}") from None
    return JSONResponse(sent, status_code=400) if sent["status"] == "failed" else sent


@router.put("/txs/{id_or_nonce}", response_model=None)
async def replace_transaction(
    id_or_nonce: str, request: Request, body: dict[str, Any] = Body(...), relayer: Relayer = Signer
) -> Any:
    """Replace an unmined transaction, by its transactionId or its nonce: the same nonce, a
    fee at least 12.5% higher. A cancel is a replacement by a 0-value transfer to itself."""
    wanted = _send_body(body)
    try:
        return await run_in_threadpool(relay_of(request).replace, relayer, id_or_nonce, wanted)
    except rules.PolicyRefusal as exc:
        return refused(exc)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/txs/{transaction_id}")
async def get_transaction(
    transaction_id: str, request: Request, relayer: Relayer = Signer
) -> dict[str, Any]:
    found = relay_of(request).transactions.latest.get(transaction_id)
    if found is None or found["relayerId"] != relayer.relayer_id:
        raise HTTPException(404, f"no transaction {transaction_id!r} of this relayer")
    return transaction_model(found)


@router.get("/txs")
async def list_transactions(
    request: Request,
    status: str | None = None,
    since: str | None = None,
    limit: int = 50,
    relayer: Relayer = Signer,
) -> list[dict[str, Any]]:
    """The relayer's latest transactions, newest first: ``status`` (pending, mined, failed,
    or one exact status), ``since`` (ISO time of creation), ``limit``."""
    after = None
    if since is not None:
        try:
            after = int(datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise HTTPException(422, f"since: expected an ISO 8601 time, got {since!r}") from None
    return relay_of(request).listed(relayer, status, after, limit)


class SignMessagePayload(BaseModel):
    message: str


class SignTypedDataPayload(BaseModel):
    domain_separator: str = Field(alias="domainSeparator")
    hash_struct_message: str = Field(alias="hashStructMessage")


async def _signed(request: Request, relayer: Relayer, sign: Any, *parts: str) -> dict[str, Any]:
    """``sign(account, *parts)`` with the relayer's key; a malformed part is a 422."""
    account = await run_in_threadpool(relay_of(request).keys.signer, relayer.address)
    try:
        signed: dict[str, Any] = sign(account, *parts)
    except VigilError as exc:
        raise HTTPException(422, str(exc)) from None
    return signed


@router.post("/sign")
async def sign(
    body: SignMessagePayload, request: Request, relayer: Relayer = Signer
) -> dict[str, Any]:
    """EIP-191: ``{sig, r, s, v}`` over the hex ``message``."""
    return await _signed(request, relayer, sign_message, body.message)


@router.post("/sign-typed-data")
async def sign_typed(
    body: SignTypedDataPayload, request: Request, relayer: Relayer = Signer
) -> dict[str, Any]:
    """EIP-712: ``{sig, r, s, v}`` over a domain separator and a struct hash (32 bytes each)."""
    return await _signed(
        request, relayer, sign_typed_data, body.domain_separator, body.hash_struct_message
    )


@router.post("/relayer/jsonrpc")
async def jsonrpc(request: Request, relayer: Relayer = Signer) -> dict[str, Any]:
    """A JSON-RPC call to the relayer's network: read methods only (no sending, signing,
    filters or subscriptions). The body is read as JSON whatever its Content-Type (web3.py
    sends none when given headers of its own)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return rpc_error(None, -32700, "the body is not JSON")
    return await run_in_threadpool(relay_of(request).jsonrpc, relayer, body)
