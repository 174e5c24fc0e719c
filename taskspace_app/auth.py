"""Who is using the app, and the login gate of a shared server.

Outside server mode (see :func:`taskspace_app.validation.server_mode`) everyone is
``User("local", True)``. In server mode a user logs in before starting work, uploading or
cancelling, in one of two ways the lab configures:

- **OIDC** (Streamlit's ``st.login``): an ``[auth]`` section in ``.streamlit/secrets.toml``
  with ``redirect_uri`` and ``cookie_secret`` (and the provider's ``client_id``,
  ``client_secret``, ``server_metadata_url``, directly or under ``[auth.<provider>]``).
  Admins: the comma-separated e-mail addresses in ``TASKSPACE_ADMINS``.
- **A user file** (``TASKSPACE_AUTH_FILE``, written by ``python -m precompute users add``):
  a user name and a password or access token, checked against a salted hash.

With neither, the app shows an error page and stops, unless started with the explicit
switch ``TASKSPACE_ALLOW_ANONYMOUS=1`` (or ``streamlit run app.py -- --allow-anonymous``),
which lets everyone work as ``anonymous``. Reading finished results stays open without a
login unless ``TASKSPACE_OPEN_RESULTS=0``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import streamlit as st

from taskspace_app.validation import server_mode
from taskspace_core import accounts, allowlist

ENV_ANONYMOUS = "TASKSPACE_ALLOW_ANONYMOUS"
ENV_OPEN = "TASKSPACE_OPEN_RESULTS"
ENV_ADMINS = "TASKSPACE_ADMINS"
_SESSION_KEY = "_taskspace_user"
_FAILS_KEY = "_taskspace_login_fails"
_MAX_FAILS = 5  # then one try per 30 s in this browser session


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool


LOCAL = User("local", True)
ANONYMOUS = User("anonymous", False)


def _flag(env: str, default: bool = False) -> bool:
    raw = os.environ.get(env, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


def allow_anonymous() -> bool:
    return _flag(ENV_ANONYMOUS) or "--allow-anonymous" in sys.argv[1:]


def oidc_provider() -> str | None:
    """``""`` for the default ``[auth]`` provider, a name for ``[auth.<name>]``, None when OIDC is not set up."""
    try:
        conf = st.secrets.get("auth")
    except Exception:  # noqa: BLE001 - no secrets.toml at all, or an unreadable one
        return None
    if not conf or not conf.get("redirect_uri") or not conf.get("cookie_secret"):
        return None
    if conf.get("client_id"):
        return ""
    named = [k for k, v in conf.items() if hasattr(v, "get") and v.get("client_id")]
    return named[0] if named else None


def setup_problem() -> str | None:
    """Why a server-mode app must not serve anyone (no way to log in, no explicit anonymous switch)."""
    if not server_mode() or allow_anonymous():
        return None
    path = accounts.auth_file()
    if path is not None:
        try:
            if accounts.load_accounts(path):
                return None
            return f"the user file {path} ({accounts.ENV_FILE}) lists no user yet"
        except accounts.AccountError as e:
            return str(e)
    if oidc_provider() is not None:
        return None
    return (
        "this server is reachable from other machines (server mode), but no login is configured. Configure "
        f"an OIDC provider ([auth] in .streamlit/secrets.toml) or a user file ({accounts.ENV_FILE}, made with "
        "`python -m precompute users add NAME --file PATH`), or start it with TASKSPACE_ALLOW_ANONYMOUS=1 "
        "(or `streamlit run app.py -- --allow-anonymous`) to let anyone in, or on 127.0.0.1 only."
    )


def _oidc_user() -> User | None:
    try:
        if not st.user.is_logged_in:
            return None
        name = str(st.user.get("email") or st.user.get("name") or st.user.get("sub") or "")
    except Exception:  # noqa: BLE001 - no auth configured: st.user has no login state
        return None
    admins = {a.strip().lower() for a in os.environ.get(ENV_ADMINS, "").split(",") if a.strip()}
    return User(name, name.lower() in admins) if name else None


def current_user() -> User:
    """The user of this browser session: ``User("local", True)`` outside server mode, ANONYMOUS when not logged in."""
    if not server_mode():
        return LOCAL
    user = st.session_state.get(_SESSION_KEY) or _oidc_user()
    return user if isinstance(user, User) else ANONYMOUS


def logins_configured() -> bool:
    return accounts.auth_file() is not None or oidc_provider() is not None


def set_owner() -> str | None:
    """Whose folder of saved task sets this session reads and writes: the user's own on a shared
    server (``tasksets.owned_name``), the shared top folder otherwise."""
    return current_user().name if server_mode() else None


def may_work() -> bool:
    """Whether this session may start work, upload or cancel."""
    if not server_mode():
        return True
    if current_user() is not ANONYMOUS:
        return True
    return allow_anonymous() and not logins_configured()


def require_login(action: str = "start work") -> bool:
    """True if this session may do ``action``; else says to log in (in the sidebar) and returns False."""
    if may_work():
        return True
    st.info(f"Log in (in the sidebar) to {action} on this server.", icon=":material/lock:")
    return False


def _file_login(container: st.delta_generator.DeltaGenerator) -> None:
    name = container.text_input("User name", key="login_name")
    secret = container.text_input("Password or access token", type="password", key="login_secret")
    if not container.button("Log in", key="login_submit"):
        return
    fails = st.session_state.get(_FAILS_KEY, (0, 0.0))
    if fails[0] >= _MAX_FAILS and time.time() - fails[1] < 30:
        container.error("Too many failed logins; wait 30 s.")
        return
    acct = accounts.authenticate(name, secret)
    if acct is None:
        st.session_state[_FAILS_KEY] = (fails[0] + 1, time.time())
        container.error("Wrong user name or password/token.")
        return
    st.session_state.pop(_FAILS_KEY, None)
    st.session_state[_SESSION_KEY] = User(acct.name, acct.is_admin)
    st.rerun()


def _login_panel(container: st.delta_generator.DeltaGenerator) -> None:
    user = current_user()
    if user is not ANONYMOUS:
        container.caption(f"Logged in as **{user.name}**" + (" (admin)" if user.is_admin else ""))
        if container.button("Log out", key="logout"):
            if st.session_state.pop(_SESSION_KEY, None) is None:
                st.logout()
            st.rerun()
        return
    provider = oidc_provider()
    if provider is not None and container.button("Log in with your lab account", key="login_oidc"):
        st.login(provider or None)
    if accounts.auth_file() is not None:
        _file_login(container)


def gate() -> None:
    """app.py's one call: stop on a misconfigured server, offer the login, close results if configured."""
    if not server_mode():
        return
    os.environ.setdefault(allowlist.ENV_SERVER, "1")  # the runners this server starts apply server-mode checks
    problem = setup_problem()
    if problem:
        st.error(f"taskspace will not serve anyone yet: {problem}", icon=":material/block:")
        st.stop()
    if logins_configured():
        with st.sidebar:
            _login_panel(st.container())
    if not _flag(ENV_OPEN, default=True) and not may_work():
        st.info("Log in (in the sidebar) to see this server's results.", icon=":material/lock:")
        st.stop()
