"""ABIs of verified contracts, fetched for monitors that give none, and cached in the project.

The hosted service loaded a verified contract's ABI by itself. vigil asks the network's
``abi_sources`` in order: Sourcify (``/v2/contract/{chain}/{address}?fields=abi``) or an
Etherscan-compatible explorer (``module=contract&action=getabi``, its key a named secret).
A proxy is followed as the explorers do: when the EIP-1967 implementation slot of the
address holds one, the implementation's ABI is fetched too and joins the proxy's.

What was found is written to ``abis/fetched/<network>/<address>.json`` with its source and
time (``{"abi", "source", "fetchedAt", "implementation"}``), so loading the project (and
``vigil validate``) works offline afterwards; ``config.loader`` reads these files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from vigil.config.loader import (
    fetched_abi_path,
    load_project_config,
    monitor_files,
    needs_fetched_abi,
)
from vigil.config.models import AbiSource, NetworkConfig
from vigil.errors import VigilError
from vigil.settings import Settings

# (network name, its config, address) → the implementation an EIP-1967 proxy points to
Implementation = Callable[[str, NetworkConfig, str], str | None]

# keccak256("eip1967.proxy.implementation") - 1: where an EIP-1967 proxy keeps its logic
IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"


class NotVerified(VigilError):
    """No source knows the contract (not verified there), or none answered."""


def _sourcify(client: httpx.Client, base: str, chain_id: int, address: str) -> list[Any]:
    url = f"{base.rstrip('/')}/v2/contract/{chain_id}/{address}"
    response = client.get(url, params={"fields": "abi"})
    if response.status_code == 404:
        raise NotVerified(f"Sourcify has no verified contract {address} on chain {chain_id}")
    response.raise_for_status()
    abi = response.json().get("abi")
    if not isinstance(abi, list):
        raise NotVerified(f"Sourcify answered without an ABI for {address}")
    return abi


def _etherscan(client: httpx.Client, base: str, key: str, chain_id: int, address: str) -> Any:
    params = {
        "chainid": str(chain_id),  # Etherscan's V2 API serves every chain from one URL
        "module": "contract",
        "action": "getabi",
        "address": address,
        "apikey": key,
    }
    response = client.get(base, params=params)
    response.raise_for_status()
    answer = response.json()
    if str(answer.get("status")) != "1":
        # e.g. "Contract source code not verified", "Invalid API Key"
        raise NotVerified(f"{_shown(base)}: {answer.get('result') or answer.get('message')}")
    return json.loads(answer["result"])


def _shown(url: str) -> str:
    return url.split("?")[0]


def fetch_abi(
    client: httpx.Client,
    sources: list[AbiSource],
    settings: Settings,
    chain_id: int,
    address: str,
) -> tuple[list[Any], str]:
    """The ABI of ``address`` from the first source that has it, and that source's URL."""
    reasons = []
    for source in sources:
        base = (source.url or settings.sourcify_url) if source.type == "sourcify" else source.url
        base = base or ""
        try:
            if source.type == "sourcify":
                return _sourcify(client, base, chain_id, address), base
            key = settings.secrets.get(source.api_key_secret or "")
            if key is None:
                reasons.append(f"{_shown(base)}: secret {source.api_key_secret!r} is not set")
                continue
            return _etherscan(client, base, key.get_secret_value(), chain_id, address), base
        except NotVerified as exc:
            reasons.append(str(exc))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            reasons.append(f"{_shown(base)}: {type(exc).__name__}: {exc}")
    raise NotVerified("; ".join(reasons) or "the network has no abi_sources")


def slot_address(word: Any) -> str | None:
    """The address in a storage word (``eth_getStorageAt``'s answer), or None when zero."""
    found = int(word, 16) if isinstance(word, str) else 0
    return f"0x{found:040x}" if found else None


def fetch_missing(settings: Settings, root: Path, implementation: Implementation) -> list[str]:
    """Fetch and cache the ABI of every monitor that gives none and needs one; a line per
    contract saying what was done (or why not: a warning, the load then says what lacks)."""
    config = load_project_config(root)
    said = []
    with httpx.Client(timeout=20.0, headers={"User-Agent": "vigil"}) as client:
        for _, monitor in monitor_files(root):
            if not needs_fetched_abi(monitor):
                continue
            network = config.networks.get(monitor.network)
            if network is None:
                continue  # the load names the unknown network
            for address in monitor.addresses:
                target = fetched_abi_path(root, monitor.network, address)
                if not address.startswith("0x") or target.exists():
                    continue
                said.append(
                    _fetch_one(
                        settings, client, implementation, monitor.network, network, address, target
                    )
                )
    return said


def _fetch_one(
    settings: Settings,
    client: httpx.Client,
    implementation: Implementation,
    name: str,
    network: NetworkConfig,
    address: str,
    target: Path,
) -> str:
    try:
        abi, source = fetch_abi(client, network.abi_sources, settings, network.chain_id, address)
        try:
            logic = implementation(name, network, address)
        except VigilError:
            logic = None  # no node at hand: the proxy's own ABI is what there is
        if logic is not None:
            behind, _ = fetch_abi(client, network.abi_sources, settings, network.chain_id, logic)
            abi = abi + [item for item in behind if item not in abi]
    except NotVerified as exc:
        return f"warning: no ABI fetched for {address} on {name}: {exc}"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "abi": abi,
        "source": source,
        "fetchedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "implementation": logic,
    }
    target.write_text(json.dumps(record, indent=1) + "\n")
    via = f" (a proxy of {logic})" if logic else ""
    return f"fetched the ABI of {address}{via} on {name} from {_shown(source)} into {target}"
