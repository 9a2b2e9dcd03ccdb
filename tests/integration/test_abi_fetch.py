"""ABIs of verified contracts fetched for monitors that give none: from a local server that
answers as Sourcify's v2 API and Etherscan's getabi do (OpenZeppelin v5's real ABIs in
them), a proxy followed through its EIP-1967 slot on anvil, cached in the project so
`vigil validate` then works with the sources gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from vigil.connectors.abis import IMPLEMENTATION_SLOT
from vigil.demo.chain import Anvil
from vigil.settings import REPO_ROOT
from vigil.testing import WebhookReceiver

pytestmark = pytest.mark.integration
OZ = REPO_ROOT / ".tools" / "node_modules" / "@openzeppelin" / "contracts" / "build" / "contracts"
PROXY = "0x" + "a1" * 20  # a proxy whose logic is TOKEN
TOKEN = "0x" + "b2" * 20  # verified on Sourcify
SCANNED = "0x" + "c3" * 20  # verified on the explorer only
UNKNOWN = "0x" + "d4" * 20


def oz_abi(name: str) -> list[Any]:
    return json.loads((OZ / f"{name}.json").read_text())["abi"]  # type: ignore[no-any-return]


def sources(path: str) -> tuple[int, Any]:
    """Sourcify v2 and Etherscan's API, as they answer (shapes from their documentation)."""
    url = urlparse(path)
    if url.path.startswith("/sourcify/v2/contract/31337/"):
        address = url.path.rsplit("/", 1)[1].lower()
        known = {PROXY: oz_abi("ERC1967Proxy"), TOKEN: oz_abi("ERC20")}
        if address not in known:
            return 404, {
                "customCode": "not_found",
                "message": f"Contract {address} on chain 31337 not found or not verified",
                "errorId": "7b8d5b2e-0000-4000-8000-000000000000",
            }
        return 200, {
            "abi": known[address],
            "match": "exact_match",
            "creationMatch": "exact_match",
            "runtimeMatch": "exact_match",
            "chainId": "31337",
            "address": address,
            "verifiedAt": "2026-01-01T00:00:00Z",
            "matchId": "1",
        }
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    if url.path == "/etherscan/api" and query.get("action") == "getabi":
        if query.get("apikey") != "scan-key":
            return 200, {"status": "0", "message": "NOTOK", "result": "Invalid API Key"}
        if query["address"].lower() == SCANNED and query.get("chainid") == "31337":
            abi = json.dumps(oz_abi("Ownable"))
            return 200, {"status": "1", "message": "OK", "result": abi}
        return 200, {
            "status": "0",
            "message": "NOTOK",
            "result": "Contract source code not verified",
        }
    return 404, {}


def project(root: Path, anvil: Anvil, server: str) -> Path:
    (root / "monitors").mkdir(parents=True)
    (root / "vigil.yaml").write_text(
        f"networks:\n  anvil:\n    chain_id: 31337\n    rpc_urls: ['{anvil.url}']\n"
        "    abi_sources:\n"
        f"      - {{type: sourcify, url: '{server}/sourcify'}}\n"
        f"      - {{type: etherscan, url: '{server}/etherscan/api', api_key_secret: scan}}\n"
    )
    for name, address, signature in (
        ("proxied", PROXY, "Transfer"),  # an event of the logic behind the proxy
        ("owned", SCANNED, "OwnershipTransferred"),
    ):
        (root / "monitors" / f"{name}.yaml").write_text(
            f"name: {name}\nnetwork: anvil\naddresses: ['{address}']\n"
            f"conditions:\n  events:\n    - signature: {signature}\n"
        )
    return root


def validate(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigil", "validate", str(root)],
        env={**os.environ, "VIGIL_SECRETS": '{"scan": "scan-key"}', **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_abis_are_fetched_proxies_followed_and_cached(tmp_path: Path, anvil: Anvil) -> None:
    if not OZ.is_dir():
        pytest.skip("make install fetches the OpenZeppelin artifacts")
    anvil.rpc("anvil_setStorageAt", PROXY, IMPLEMENTATION_SLOT, "0x" + "00" * 12 + TOKEN[2:])
    server = WebhookReceiver(on_get=sources).start()
    try:
        root = project(tmp_path / "p", anvil, f"http://127.0.0.1:{server.port}")
        done = validate(root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"fetched the ABI of {PROXY} (a proxy of {TOKEN}) on anvil" in done.stderr
        assert f"fetched the ABI of {SCANNED} on anvil from http://127.0.0.1:" in done.stderr
        assert "scan-key" not in done.stdout + done.stderr  # the key is never shown
        cached = json.loads((root / "abis" / "fetched" / "anvil" / f"{PROXY}.json").read_text())
        names = {item.get("name") for item in cached["abi"]}
        assert {"Upgraded", "Transfer", "approve"} <= names  # the proxy's and its logic's
        assert cached["implementation"] == TOKEN and cached["source"].endswith("/sourcify")
        assert cached["fetchedAt"].startswith("20")
        # a contract no source knows: a warning, and the load says what the ABI lacks
        (root / "monitors" / "unknown.yaml").write_text(
            f"name: unknown\nnetwork: anvil\naddresses: ['{UNKNOWN}']\n"
            "conditions:\n  events:\n    - signature: Transfer\n"
        )
        failed = validate(root)
        assert failed.returncode == 2
        assert f"no ABI fetched for {UNKNOWN} on anvil" in failed.stdout + failed.stderr
        assert "Contract source code not verified" in failed.stdout + failed.stderr
        assert "'Transfer' is not in the ABI" in failed.stdout + failed.stderr
        (root / "monitors" / "unknown.yaml").unlink()
    finally:
        server.stop()
    # the sources gone: the cache answers, nothing is fetched again
    offline = validate(root)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "fetched" not in offline.stderr
