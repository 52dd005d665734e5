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
    # Longest list a node may consume or produce in map-like operations (filters, projections, rows).
    max_fanout: int = 1000
    # Largest HTTP response body an http_request node reads (also the most its config may ask for).
    max_http_response_bytes: int = 1_000_000
    # http_request refuses loopback, private, link-local, multicast, reserved and unspecified
    # addresses unless this is True (tests, on-premises installs) or the host is listed below.
    allow_private_network: bool = False
    # Host names (compared case-insensitively, exactly) exempt from the address check.
    http_allowed_hosts: tuple[str, ...] = ()
    # How deep subworkflow nodes may nest: a top-level run has depth 0, its children depth 1, ...
    max_subworkflow_depth: int = 3
    # Worker threads per run tree for branches that run concurrently: a run and every subworkflow it
    # starts share one budget, so a fan-out of fan-outs cannot hold more threads (and database
    # connections) than this. A child run that finds no free thread runs its branches one by one.
    max_parallel_nodes: int = 8
    # Loop iterations one template render may run (nested loops multiply; recursive loops count each
    # level); also the largest range() a template may build. Time is bounded separately by the deadline.
    max_template_iterations: int = 100_000

    def __post_init__(self) -> None:
        hosts = self.http_allowed_hosts
        if isinstance(hosts, str):
            hosts = (hosts,)
        # Settings often give a list; normalise so membership tests are exact and the value stays hashable.
        object.__setattr__(self, "http_allowed_hosts", tuple(str(host).strip().lower().rstrip(".") for host in hosts))
        if self.max_parallel_nodes < 1:
            raise ValueError("max_parallel_nodes must be at least 1")
        if self.max_template_iterations < 1:
            raise ValueError("max_template_iterations must be at least 1")
        if self.max_subworkflow_depth < 0:
            raise ValueError("max_subworkflow_depth must not be negative")
