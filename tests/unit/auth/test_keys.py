"""KeySet: rotation windows and lifetimes (end to end: tests/e2e/test_identity_keys.py)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt

from graphpost.auth.keys import KeySet, load_or_create, rotate
from graphpost.auth.tokens import TokenService


def test_a_retired_key_is_dropped_after_its_window(tmp_path: Path) -> None:
    """Past max lifetime + 30 s the retired key is neither published nor accepted."""
    now = [time.time()]
    old = load_or_create(tmp_path)
    tokens = TokenService(
        KeySet(tmp_path, max_lifetime=120, clock=lambda: now[0]), clock=lambda: now[0]
    )
    token = tokens.issue_application(tenant_id="t", app_id="a", roles=["Mail.Read"])
    rotate(tmp_path, max_lifetime=120, clock=lambda: now[0])
    now[0] += 2
    keys = KeySet(tmp_path, max_lifetime=120, clock=lambda: now[0])
    assert [k.key.kid for k in keys.published()][1:] == [old.kid]
    assert keys.public_key(old.kid) is not None
    assert TokenService(keys, clock=lambda: now[0]).verify(token).app_id == "a"
    now[0] += 150  # 120 + 30 after the rotation
    assert keys.public_key(old.kid) is None
    assert [k.key.kid for k in keys.published()] == [keys.current.kid]
    assert tokens.issue_application(tenant_id="t", app_id="a", roles=["x"], lifetime=99_999)
    claims = jwt.decode(
        tokens.issue_application(tenant_id="t", app_id="a", roles=["x"], lifetime=99_999),
        options={"verify_signature": False},
    )
    assert claims["exp"] - claims["iat"] == 120  # capped at the max lifetime
