"""Every PostgreSQL advisory-lock key the platform takes, in one place: two features never share a key by accident.

Keys are 64-bit signed integers (or, for the two-key form, a 32-bit class and a 32-bit id). A key must stay the
same across releases: processes of two versions may run side by side during a deploy.
"""

import hashlib


def _hashed(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


# The audit chain: one sealer or pruner at a time (apps/audit/chain.py).
AUDIT_CHAIN = _hashed("nexus.audit.chain")
# The tenant template schema while it is created, migrated or dumped ("nexus-tm", apps/tenants/cloning.py).
TEMPLATE_BUILD = 0x6E657875732D746D
# First key of pg_advisory_xact_lock(int, int) with a tenant id: one workflow-quota check per tenant ("NXWQ").
WORKFLOW_QUOTA_CLASS = 0x4E585751


def run_lock_key(run_id: str) -> int:
    """One worker executes a run at a time (apps/runs/services.py)."""
    return _hashed(run_id)


def delivery_lock_key(delivery_id: str) -> int:
    """One attempt at a webhook delivery at a time (apps/integrations)."""
    return _hashed(f"webhook:{delivery_id}")
