"""Who is using the app (placeholder: one local admin until logins are configured)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool


def current_user() -> User:
    """The user of this browser session."""
    return User("local", True)
