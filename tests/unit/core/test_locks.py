"""Advisory-lock keys live in one module, keep their values across releases, and never collide."""

from apps.core.locks import AUDIT_CHAIN, TEMPLATE_BUILD, WORKFLOW_QUOTA_CLASS, delivery_lock_key, run_lock_key


def test_the_keys_keep_their_values():
    assert AUDIT_CHAIN == 8612695789225091071
    assert TEMPLATE_BUILD == 0x6E657875732D746D
    assert WORKFLOW_QUOTA_CLASS == 0x4E585751
    assert run_lock_key("run_1") == 4052112624598434630
    assert delivery_lock_key("whd_1") == 2380873575486369778


def test_no_two_features_share_a_key():
    keys = [AUDIT_CHAIN, TEMPLATE_BUILD, run_lock_key("run_1"), delivery_lock_key("whd_1")]
    assert len(set(keys)) == len(keys)
    assert all(-(2**63) <= key < 2**63 for key in keys)
