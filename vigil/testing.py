"""Helpers for tests and the demo: an anvil node, a webhook receiver, the demo token."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from vigil.errors import RuntimeDependencyError
from vigil.runtime import process
from vigil.runtime.broker import free_port
from vigil.settings import REPO_ROOT

TOOLS = REPO_ROOT / ".tools"
ANVIL_BIN = TOOLS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
CONTRACTS = TOOLS / "contracts.json"
HANG_SECONDS = 5.0  # how long a "hang" fault of JsonRpcServer holds a request
TOKEN_SOURCE = REPO_ROOT / "examples" / "contracts" / "VigilToken.sol"
# anvil's first two well-known development accounts (public test keys, never real funds)
ACCOUNTS = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Anvil:
    """A local anvil node (npm @foundry-rs/anvil) on 127.0.0.1."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Anvil:
        binary = ANVIL_BIN if ANVIL_BIN.exists() else shutil.which("anvil")
        if binary is None:
            raise RuntimeDependencyError(f"anvil not found at {ANVIL_BIN}; run `make install`")
        self._process = process.spawn(
            [str(binary), "--host", "127.0.0.1", "--port", str(self.port), "--silent"],
            log_file=self._log,
        )
        wait_for(self._ready, 30, f"anvil on {self.url}")
        return self

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeDependencyError(f"anvil exited with {self._process.returncode}")
        try:
            return self.rpc("eth_chainId") is not None
        except httpx.HTTPError:
            return False

    def rpc(self, method: str, *params: Any) -> Any:
        reply = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"anvil {method}: {reply['error']}")
        return reply["result"]

    def stop(self) -> None:
        if self._process is not None:
            process.stop(self._process, "anvil", grace=5)
            self._process = None


def compiled_token() -> dict[str, Any]:
    """ABI and bytecode of the demo token, compiled from OpenZeppelin v5 sources once."""
    if not CONTRACTS.exists():
        node = shutil.which("node")
        if node is None or not (TOOLS / "node_modules" / "solc").exists():
            raise RuntimeDependencyError("node and npm solc are needed; run `make install`")
        subprocess.run(
            [
                node,
                str(REPO_ROOT / "vigil" / "runtime" / "compile.js"),
                str(TOOLS / "node_modules"),
                str(CONTRACTS),
                str(TOKEN_SOURCE),
            ],
            check=True,
        )
    return json.loads(CONTRACTS.read_text())["VigilToken"]  # type: ignore[no-any-return]


class Token:
    """The demo ERC20 + Ownable token on an anvil node, driven through web3."""

    def __init__(self, rpc_url: str, supply: int = 1_000_000 * 10**18) -> None:
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(rpc_url))
        artifact = compiled_token()
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self._wait(factory.constructor(supply).transact({"from": ACCOUNTS[0]}))
        self.address: str = receipt["contractAddress"]
        self.contract = self.w3.eth.contract(address=self.address, abi=artifact["abi"])

    def _wait(self, tx_hash: Any) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)

    def transfer(self, to: str, amount: int, sender: str = ACCOUNTS[0]) -> Any:
        return self._wait(self.contract.functions.transfer(to, amount).transact({"from": sender}))

    def send_transfer(self, to: str, amount: int, sender: str = ACCOUNTS[0]) -> Any:
        """Send without waiting for the receipt (for several transactions in one block)."""
        return self.contract.functions.transfer(to, amount).transact({"from": sender})

    def transfer_ownership(self, to: str) -> Any:
        return self._wait(
            self.contract.functions.transferOwnership(to).transact({"from": ACCOUNTS[0]})
        )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST; ``statuses`` scripts its answers."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    reply: bytes = b"{}"  # the body of every answer (an API's success shape)
    headers: dict[str, str] = field(default_factory=dict)  # sent with scripted failures
    on_receive: Callable[[Received], None] | None = None
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def start(self) -> WebhookReceiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                item = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status < 300:
                    outer.received.append(item)
                    if outer.on_receive is not None:
                        outer.on_receive(item)
                body = outer.reply if status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status >= 300:
                    for name, value in outer.headers.items():
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/vigil"

    def stop(self) -> None:
        """Stop serving; safe to call when start() never ran."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class JsonRpcServer:
    """A JSON-RPC endpoint on 127.0.0.1 for tests: recorded blocks, or a proxy, with faults.

    ``blocks`` maps a number to (``eth_getBlockByNumber`` result, receipts or None); a block
    whose receipts are None answers ``eth_getBlockReceipts`` with -32601 (method not found),
    so clients must fall back to ``eth_getTransactionReceipt``. With ``upstream`` every call is
    forwarded there instead. ``head`` overrides the chain head (default: the highest block
    held) and ``tags`` the numbers of ``safe``/``finalized``. ``faults`` scripts the first
    answers: an HTTP status (429 comes with ``Retry-After: 0``), ``"close"`` (drop the
    connection), ``"hang"`` (answer nothing for ``HANG_SECONDS``) or ``"garbage"`` (not JSON).
    """

    def __init__(
        self,
        *,
        chain_id: int = 1,
        upstream: str | None = None,
        blocks: dict[int, tuple[dict[str, Any], list[dict[str, Any]] | None]] | None = None,
        faults: list[int | str] | None = None,
        head: int | None = None,
        tags: dict[str, int] | None = None,
    ) -> None:
        self.chain_id, self.upstream = chain_id, upstream
        self.head, self.tags = head, dict(tags or {})
        self.blocks = blocks or {}
        self.faults = list(faults or [])
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._receipts = {
            r["transactionHash"]: r for _, rs in self.blocks.values() if rs for r in rs
        }

    def add_receipts(self, receipts: list[dict[str, Any]]) -> None:
        """Receipts answered by ``eth_getTransactionReceipt`` only."""
        self._receipts.update({r["transactionHash"]: r for r in receipts})

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params", [])
        self.requests.append(method)
        result: Any = None
        error: dict[str, Any] | None = None
        head = self.head if self.head is not None else max(self.blocks, default=0)
        if method == "eth_chainId":
            result = hex(self.chain_id)
        elif method == "eth_blockNumber":
            result = hex(head)
        elif method == "eth_getBlockByNumber":
            tag = params[0]
            number = (
                self.tags.get(tag, head) if tag in ("latest", "safe", "finalized") else int(tag, 16)
            )
            found = self.blocks.get(number)
            result = found[0] if found else None
        elif method == "eth_getBlockReceipts":
            found = self.blocks.get(int(params[0], 16))
            if found and found[1] is None:
                error = {
                    "code": -32601,
                    "message": "the method eth_getBlockReceipts does not exist",
                }
            else:
                result = found[1] if found else None
        elif method == "eth_getTransactionReceipt":
            result = self._receipts.get(params[0])
        else:
            error = {"code": -32601, "message": f"the method {method} does not exist"}
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        reply.update({"error": error} if error else {"result": result})
        return reply

    def start(self) -> JsonRpcServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fault = outer.faults.pop(0) if outer.faults else None
                if fault == "hang":  # answer nothing for longer than any client waits
                    time.sleep(HANG_SECONDS)
                    return
                if fault == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(fault, int):
                    self.send_response(fault)
                    if fault == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "4")
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                if fault == "garbage":
                    payload = b"<html>gateway</html>"
                elif outer.upstream:
                    payload = httpx.post(
                        outer.upstream,
                        content=body,
                        timeout=30,
                        headers={"Content-Type": "application/json"},
                    ).content
                else:
                    request = json.loads(body)
                    answer: Any = (
                        [outer._answer(r) for r in request]
                        if isinstance(request, list)
                        else outer._answer(request)
                    )
                    payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; safe to call when start() never ran."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def sign_eth_jwt(private_key: bytes, claims: dict[str, Any]) -> str:
    """A JWT signed as forta-core-go signs one: alg ETH, Keccak-256 of ``header.payload``
    with no prefix, a 65-byte ``r || s || v`` signature with v 0/1 (``crypto.Sign``)."""
    import base64

    from eth_keys.datatypes import PrivateKey
    from eth_utils.crypto import keccak

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "ETH", "typ": "JWT"}).encode())
    payload = part(json.dumps(claims).encode())
    signature = PrivateKey(private_key).sign_msg_hash(keccak(f"{header}.{payload}".encode()))
    return f"{header}.{payload}.{part(signature.to_bytes())}"


def scan_node_jwt(private_key: bytes, *, now: float | None = None, **overrides: Any) -> str:
    """The bearer JWT a Forta scan node's publisher sends at ``now``, claims overridable
    (``exp=None`` gives a null exp; ``**{"bot-id": ...}`` a bot-minted token)."""
    import uuid

    from eth_keys.datatypes import PrivateKey

    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "sub": PrivateKey(private_key).public_key.to_checksum_address(),
        "iat": issued,
        "nbf": issued - 30,
        "exp": issued + 30,
        "localMode": "true",
    }
    return sign_eth_jwt(private_key, {**claims, **overrides})
