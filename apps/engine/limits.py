"""Resource limits applied when compiling and executing workflows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Safe defaults for tenant-authored workflows; operators may pass stricter or looser values."""

    max_nodes: int = 200
    # JSON-encoded (UTF-8) size of the run inputs, of every node output and of the run outputs.
    max_payload_bytes: int = 1_000_000
    max_run_seconds: float = 300
    max_delay_seconds: float = 60
    # Longest list a node may consume or produce in map-like operations (filters, projections).
    max_fanout: int = 1000
