"""vigil: watch EVM chains, match monitors, notify, and keep history in ClickHouse."""

__version__ = "0.1.0"
__all__ = ["__version__"]
