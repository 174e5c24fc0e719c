"""``python -m precompute users add NAME``: add a login to a shared server's user file.

The secret is read from stdin when it is piped (``printf '%s' "$PW" | ... users add bob``),
else asked for twice without echo; ``--token`` makes a random access token and prints it once.
Only its salted hash is written (see :mod:`taskspace_core.accounts`).
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys

import yaml

from taskspace_core.accounts import ENV_FILE, AccountError, add_account, auth_file, hash_secret


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="manage the logins of a shared server (TASKSPACE_AUTH_FILE)")
    usub = p.add_subparsers(dest="users_command", required=True)
    a = usub.add_parser("add", help="add or replace a user: store the salted hash of a password or token")
    a.add_argument("name", help="user name (letters, digits, . _ @ + -)")
    a.add_argument("--admin", action="store_true", help="may cancel any job and read every log")
    a.add_argument("--file", default=None, help=f"the user file (default: ${ENV_FILE}); without one, only print")
    a.add_argument("--token", action="store_true", help="generate a random access token instead of asking")
    a.set_defaults(func=add)


def _read_secret(token: bool) -> str:
    if token:
        secret = secrets.token_urlsafe(24)
        print(f"access token for this user (shown once): {secret}", file=sys.stderr)
        return secret
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password or token: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two entries differ")
    return first


def add(args: argparse.Namespace) -> int:
    secret = _read_secret(args.token)
    path = args.file or auth_file()
    if path is None:
        if len(secret) < 8:
            raise AccountError("a password or token has at least 8 characters")
        entry = {"users": {args.name: {"hash": hash_secret(secret), "admin": bool(args.admin)}}}
        print(yaml.safe_dump(entry, sort_keys=True), end="")
        return 0
    acct = add_account(path, args.name, secret, admin=args.admin)
    print(f"user '{acct.name}'{' (admin)' if acct.is_admin else ''} written to {path}")
    return 0
