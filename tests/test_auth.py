"""Logins of a shared server: hashed user file, the users CLI, the app's gate (AppTest)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from precompute.cli import main
from taskspace_core import accounts

ROOT = Path(__file__).resolve().parent.parent
SECRET = "correct horse battery"


def test_hashes_are_salted_and_verified() -> None:
    a, b = accounts.hash_secret(SECRET), accounts.hash_secret(SECRET)
    assert a != b and SECRET not in a  # salted, never the secret itself
    assert accounts.verify_secret(SECRET, a) and accounts.verify_secret(SECRET, b)
    assert not accounts.verify_secret(SECRET + "x", a) and not accounts.verify_secret(SECRET, "md5$abc")
    import hashlib

    salt = bytes(range(16))
    key = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, 1000, 32)
    assert accounts.verify_secret(SECRET, f"pbkdf2_sha256$1000${salt.hex()}${key.hex()}")


@pytest.fixture()
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "users.yaml"
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert main(["users", "add", "alice", "--admin", "--file", str(path)]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("bobs-token-123\n"))
    assert main(["users", "add", "bob", "--file", str(path)]) == 0
    return path


def test_users_cli_stores_only_hashes(user_file: Path) -> None:
    text = user_file.read_text()
    assert SECRET not in text and "bobs-token-123" not in text
    users = yaml.safe_load(text)["users"]
    assert users["alice"]["admin"] is True and users["bob"]["admin"] is False
    assert accounts.authenticate("alice", SECRET, user_file).is_admin
    assert accounts.authenticate("bob", "bobs-token-123", user_file).name == "bob"
    assert accounts.authenticate("bob", SECRET, user_file) is None
    assert accounts.authenticate("nobody", SECRET, user_file) is None
    assert (user_file.stat().st_mode & 0o077) == 0  # readable by its owner only


def test_users_cli_token_without_a_file(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKSPACE_AUTH_FILE", raising=False)
    assert main(["users", "add", "carol", "--token"]) == 0
    out = capsys.readouterr()
    token = out.err.strip().rsplit(" ", 1)[-1]
    entry = yaml.safe_load(out.out)["users"]["carol"]  # the entry to paste into a user file
    assert len(token) >= 24 and token not in out.out
    assert accounts.verify_secret(token, entry["hash"]) and entry["admin"] is False
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "add", "dave"]) == 2 and "at least 8" in capsys.readouterr().err


@pytest.fixture()
def server_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TASKSPACE_SERVER_MODE", "1")
    for name in ("TASKSPACE_AUTH_FILE", "TASKSPACE_ALLOW_ANONYMOUS", "TASKSPACE_ADMINS", "TASKSPACE_OPEN_RESULTS"):
        monkeypatch.delenv(name, raising=False)


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def test_server_mode_without_logins_refuses_to_serve(server_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app().run()
    assert any("will not serve anyone" in e and "--allow-anonymous" in e for e in errors(at))
    assert not at.get("page_link") and not at.metric  # stopped before any page
    monkeypatch.setenv("TASKSPACE_ALLOW_ANONYMOUS", "1")
    at = app().run()
    assert not errors(at) and at.title[0].value  # the Home page


def test_login_needed_to_start_work(server_env: None, user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_AUTH_FILE", str(user_file))
    at = app().run()
    at.switch_page("taskspace_app/views/run.py").run()
    assert not errors(at)
    assert not [b for b in at.button if b.key == "start"]  # not logged in: no Start
    assert any("Log in" in i.value for i in at.info)
    at.text_input(key="login_name").set_value("bob")
    at.text_input(key="login_secret").set_value("wrong-token")
    at.button(key="login_submit").click().run()
    assert any("Wrong user name" in e for e in errors(at))
    assert not [b for b in at.button if b.key == "start"]
    at.text_input(key="login_secret").set_value("bobs-token-123")
    at.button(key="login_submit").click().run()
    assert not errors(at)
    assert any("Logged in as **bob**" in c.value for c in at.sidebar.caption)
    assert [b for b in at.button if b.key == "start"]  # now Start is offered


def test_oidc_login_via_st_user(server_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_ADMINS", "ana@lab.org")
    at = app()
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "taskspace",
        "client_secret": "s",
        "server_metadata_url": "https://id.lab.org/.well-known/openid-configuration",
    }
    at.run()
    assert not errors(at) and [b for b in at.button if b.key == "login_oidc"]  # provider configured: no refusal
    at.user = {"is_logged_in": True, "email": "ana@lab.org"}
    at.run()
    assert any("Logged in as **ana@lab.org** (admin)" in c.value for c in at.sidebar.caption)


def test_closed_results_need_a_login(server_env: None, user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_AUTH_FILE", str(user_file))
    monkeypatch.setenv("TASKSPACE_OPEN_RESULTS", "0")
    at = app().run()
    assert any("to see this server's results" in i.value for i in at.info) and not at.title


def test_run_view_refuses_models_over_the_limits(server_env: None, tmp_path: Path, monkeypatch) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("models: [{name: big/declared, params: 7.0e9}]\n")
    monkeypatch.setenv("TASKSPACE_ALLOWLIST", str(allow))
    monkeypatch.setenv("TASKSPACE_ALLOW_ANONYMOUS", "1")
    at = AppTest.from_file(str(ROOT / "taskspace_app/views/run.py"), default_timeout=60).run()
    assert not errors(at)
    at.text_input(key="add_name").set_value("big/declared")
    at.button(key="add_model").click().run()
    at.button(key="add_suite").click().run()  # a suite skips the name box: the limits still see its models
    refusal = " ".join(errors(at)).replace("\\", "")  # shown as escaped Markdown
    assert "big/declared has 7e+09 parameters (declared size)" in refusal and "max_model_params" in refusal
    assert "EleutherAI/pythia-70m-deduped@step0: 'EleutherAI/pythia-70m-deduped' is not on this server" in refusal
    assert not [b for b in at.button if b.key == "start"]
