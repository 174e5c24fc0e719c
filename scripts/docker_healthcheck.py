"""HEALTHCHECK of the Docker image: the running Streamlit app answers /_stcore/health.

The address and port are read from the sockets the app's process listens on, not assumed,
so a container started with another ``--server.port`` / ``--server.address`` (or the
``STREAMLIT_SERVER_*`` variables) is checked where it really listens. Exit 0 when healthy.
"""

from __future__ import annotations

import sys
import urllib.request

import psutil


def listening_addresses(pids: set[int] | None = None) -> list[tuple[str, int]]:
    """(host, port) of every TCP socket a ``streamlit`` process of this container (or of ``pids``) listens on."""
    found: list[tuple[str, int]] = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info.get("cmdline") or []
        if pids is not None and proc.pid not in pids:
            continue
        if not any(a.rsplit("/", 1)[-1] == "streamlit" for a in argv[:3]):
            continue
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for c in conns:
            if c.status == psutil.CONN_LISTEN:
                host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(c.laddr.ip, c.laddr.ip)
                found.append((host, c.laddr.port))
    return found


def healthy(timeout: float = 4.0, pids: set[int] | None = None) -> bool:
    """Whether /_stcore/health answers 200 on an address the app listens on."""
    for host, port in listening_addresses(pids):
        url = f"http://[{host}]:{port}/_stcore/health" if ":" in host else f"http://{host}:{port}/_stcore/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
                if resp.status == 200:
                    return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if healthy() else 1)
