"""Server mode is on by default when the app binds beyond loopback, as the Docker image does.

Each test starts the real server with the Dockerfile's own command line (only the port
changed), opens a session over Streamlit's websocket as a browser would, and reads the first
page the server renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFUSAL = "will not serve anyone"


def docker_cmd(port: int) -> list[str]:
    """The Dockerfile's CMD (exec form), run by this interpreter, on ``port``."""
    text = (ROOT / "Dockerfile").read_text()
    argv = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert argv[:3] == ["streamlit", "run", "app.py"]
    return [sys.executable, "-m", *(f"--server.port={port}" if a.startswith("--server.port") else a for a in argv)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(argv: list[str], tmp: Path, **env: str) -> Iterator[int]:
    port = int(next(a for a in argv if a.startswith("--server.port")).split("=")[1])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKSPACE_")}
    clean |= {"TASKSPACE_CACHE": str(tmp / "cache"), "STREAMLIT_SERVER_HEADLESS": "true", **env}
    log = tmp / f"streamlit-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=clean, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start: " + log.read_text()[-2000:])
        assert proc.poll() is None, log.read_text()[-2000:]
        yield port
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()


async def _first_page(port: int) -> list[str]:
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.asyncio.client import connect

    texts: list[str] = []
    async with connect(f"ws://127.0.0.1:{port}/_stcore/stream") as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        await ws.send(msg.SerializeToString())
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(await asyncio.wait_for(ws.recv(), 120))
            if fm.WhichOneof("type") == "script_finished":
                return texts
            if fm.WhichOneof("type") == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                part = getattr(el, el.WhichOneof("type"))
                texts.append(str(getattr(part, "body", "")))


def first_page(port: int) -> list[str]:
    """Text of the elements a fresh browser session gets on the Home page."""
    return asyncio.run(_first_page(port))


def test_bound_to_all_interfaces_means_server_mode(tmp_path: Path) -> None:
    argv = docker_cmd(free_port())
    assert "--server.address=0.0.0.0" in argv
    with serving(argv, tmp_path) as port:
        page = first_page(port)
    assert any(REFUSAL in t for t in page), page  # server mode on, and no login configured: refused
    assert "taskspace" not in page  # stopped before the Home page's title


def test_allow_anonymous_switch_after_double_dash(tmp_path: Path) -> None:
    with serving([*docker_cmd(free_port()), "--", "--allow-anonymous"], tmp_path) as port:
        page = first_page(port)
    assert "taskspace" in page and not any(REFUSAL in t for t in page), page  # the Home page


def test_loopback_means_local_mode(tmp_path: Path) -> None:
    argv = [a.replace("0.0.0.0", "127.0.0.1") for a in docker_cmd(free_port())]
    with serving(argv, tmp_path) as port:
        page = first_page(port)
    assert "taskspace" in page and not any(REFUSAL in t for t in page), page  # the Home page


def test_explicit_setting_wins_over_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_app import validation

    monkeypatch.setattr(validation, "bound_address", lambda: (True, "0.0.0.0"))
    monkeypatch.delenv("TASKSPACE_SERVER_MODE", raising=False)
    assert validation.server_mode()
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "0")
    assert not validation.server_mode()
    monkeypatch.setattr(validation, "bound_address", lambda: (True, "127.0.0.1"))
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "1")
    assert validation.server_mode()
    monkeypatch.delenv("TASKSPACE_SERVER_MODE")
    assert not validation.server_mode()
    monkeypatch.setattr(validation, "bound_address", lambda: (True, None))  # unset: every interface
    assert validation.server_mode()
    monkeypatch.setattr(validation, "bound_address", lambda: (False, None))  # AppTest, CLI, runners
    assert not validation.server_mode()
