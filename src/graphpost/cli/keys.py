"""``graphpost keys rotate|list``: the token signing keys in the data directory."""

from __future__ import annotations

import argparse
import time
from typing import Any

from graphpost.auth.keys import KeySet, rotate
from graphpost.cli.common import add_storage_options, settings_from
from graphpost.runtime import private_directory


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="token signing keys")
    actions = keys.add_subparsers(dest="action", required=True)
    rot = actions.add_parser(
        "rotate",
        help="sign new tokens with a new key; the old one stays published until its tokens "
        "have expired (GRAPHPOST_TOKEN_MAX_LIFETIME + 30 s)",
    )
    rot.set_defaults(handler=rotate_keys)
    lst = actions.add_parser("list", help="the current key and the retired keys still accepted")
    lst.set_defaults(handler=list_keys)
    for p in (rot, lst):
        add_storage_options(p)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def rotate_keys(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    private_directory(settings.data_dir)
    key = rotate(settings.data_dir, max_lifetime=settings.token_max_lifetime)
    print(f"{key.kid}\tcurrent (running servers sign with it within a second)")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    private_directory(settings.data_dir)
    for entry in KeySet(settings.data_dir, max_lifetime=settings.token_max_lifetime).published():
        if entry.retired_ms is None or entry.accepted_until_ms is None:
            print(f"{entry.key.kid}\tcurrent")
        else:
            print(
                f"{entry.key.kid}\tretired {_when(entry.retired_ms)}, "
                f"accepted until {_when(entry.accepted_until_ms)}"
            )
    return 0
