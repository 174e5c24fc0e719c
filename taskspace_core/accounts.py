"""Users of a shared server: salted password / access-token hashes in one YAML file (no Streamlit).

The file (env ``TASKSPACE_AUTH_FILE``) is written by ``python -m precompute users add``::

    users:
      alice: {hash: "scrypt$16384$8$1$<salt hex>$<key hex>", admin: true}
      bob:   {hash: "pbkdf2_sha256$600000$<salt hex>$<key hex>"}

Only hashes are stored; a login recomputes the hash with the stored salt and compares in
constant time (``hmac.compare_digest``). An unknown user name costs the same hash as a known
one, so timing does not tell which names exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ENV_FILE = "TASKSPACE_AUTH_FILE"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_DUMMY = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32  # verified against for unknown users


class AccountError(ValueError):
    """The user file cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class Account:
    name: str
    hash: str
    is_admin: bool = False


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of a password or token, as stored in the user file."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${key.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a stored scrypt or pbkdf2_sha256 hash (constant-time compare)."""
    try:
        scheme, *parts = stored.split("$")
        if scheme == "scrypt":
            n, r, p, salt, key = parts
            got = hashlib.scrypt(
                secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(key) // 2
            )
        elif scheme == "pbkdf2_sha256":
            iters, salt, key = parts
            got = hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), int(iters), len(key) // 2)
        else:
            return False
        return hmac.compare_digest(got, bytes.fromhex(key))
    except (ValueError, TypeError):
        return False


def auth_file() -> Path | None:
    raw = os.environ.get(ENV_FILE, "").strip()
    return Path(raw) if raw else None


def load_accounts(path: str | Path | None = None) -> dict[str, Account]:
    """The users of the file (``TASKSPACE_AUTH_FILE`` when ``path`` is None); empty if there is none."""
    path = Path(path) if path else auth_file()
    if path is None or not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise AccountError(f"cannot read the user file {path}: {e}") from e
    users = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(users, dict):
        raise AccountError(f"{path}: expected 'users:' mapping names to {{hash: ..., admin: ...}}")
    out = {}
    for name, entry in users.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise AccountError(f"{path}: user '{name}' needs a 'hash' (made by python -m precompute users add)")
        out[str(name)] = Account(str(name), entry["hash"], bool(entry.get("admin", False)))
    return out


def authenticate(name: str, secret: str, path: str | Path | None = None) -> Account | None:
    """The account whose name and secret match, else None (same work either way)."""
    acct = load_accounts(path).get(name.strip())
    ok = verify_secret(secret, acct.hash if acct else _DUMMY)
    return acct if ok and acct is not None else None


def add_account(path: str | Path, name: str, secret: str, admin: bool = False) -> Account:
    """Add or replace one user in the file, written atomically and readable by its owner only."""
    if not USER_NAME.match(name):
        raise AccountError("a user name is 1-64 letters, digits or . _ @ + -, starting with a letter or digit")
    if len(secret) < 8:
        raise AccountError("a password or token has at least 8 characters")
    path = Path(path)
    users = {a.name: {"hash": a.hash, "admin": a.is_admin} for a in load_accounts(path).values()}
    acct = Account(name, hash_secret(secret), admin)
    users[name] = {"hash": acct.hash, "admin": admin}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump({"users": users}, f, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return acct
