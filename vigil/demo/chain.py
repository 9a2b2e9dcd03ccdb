"""The demo chain: a local anvil node and the OpenZeppelin v5 demo token, from the checkout's
`.tools/` (installed by `make install`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from vigil.errors import RuntimeDependencyError
from vigil.settings import REPO_ROOT
from vigil.stack import process
from vigil.stack.broker import free_port
from vigil.testing import wait_for

TOOLS = REPO_ROOT / ".tools"
ANVIL_BIN = TOOLS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
CONTRACTS = TOOLS / "contracts.json"
TOKEN_SOURCE = REPO_ROOT / "examples" / "contracts" / "VigilToken.sol"
# anvil's first two well-known development accounts (public test keys, never real funds)
ACCOUNTS = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
]


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
                str(REPO_ROOT / "vigil" / "demo" / "compile.js"),
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
