"""The classroom deployment: Dockerfile, .dockerignore, .streamlit/config.toml and scripts/serve.sh.

Docker is not available where the tests run, so the image's facts are read from the Dockerfile, and
its start command (ENTRYPOINT) and HEALTHCHECK are run here as the image runs them: from the
repository root (the image's WORKDIR), with the environment the Dockerfile sets, only the port and
the user-model folder changed to a free port and a temporary directory.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from app_lib.training_queue import DEFAULT_MAX_RUNS, MAX_RUNS_ENV
from app_lib.uploads import MAX_UPLOAD_MB
from app_lib.user_models import USER_MODELS_ENV

ROOT = Path(__file__).resolve().parents[1]
WORKDIR = "/app"
USER_MODELS_VOLUME = "/data/user_models"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
# Everything the app imports or reads at run time; each must reach the image.
APP_FILES = ("app.py", "app_lib", "explain", "pages", "model", "viz", "static", "data", "checkpoints", ".streamlit",
             "scripts/serve.sh")
NOT_IN_THE_IMAGE = {"tests", "benchmarks"}  # Python packages the running app never imports


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    instructions, pending = [], []
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):  # also inside a continued instruction, as Docker does
            continue
        pending.append(stripped.removesuffix("\\").strip())
        if not stripped.endswith("\\"):
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append((keyword.upper(), args.strip()))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def arguments(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def image_env() -> dict[str, str]:
    """The variables the Dockerfile's ENV instructions set (NAME=value form)."""
    env = {}
    for args in arguments("ENV"):
        for pair in shlex.split(args):
            name, sep, value = pair.partition("=")
            assert sep, f"ENV {args!r}: use the NAME=value form"
            env[name] = value
    return env


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) command; fails on shell form, which would wrap it in /bin/sh -c."""
    command = json.loads(args)
    assert isinstance(command, list) and command and all(isinstance(part, str) for part in command), args
    return command


def healthcheck_command() -> list[str]:
    (args,) = arguments("HEALTHCHECK")
    options, sep, command = args.partition(" CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args!r}"
    return exec_form(command)


def entry_command() -> list[str]:
    """What `docker run` executes: ENTRYPOINT followed by CMD."""
    (entrypoint,) = arguments("ENTRYPOINT")
    return exec_form(entrypoint) + [part for args in arguments("CMD") for part in exec_form(args)]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.lstrip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether a context path (or a folder above it) is excluded; `**/` matches at any depth."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
               for pattern in patterns if not pattern.startswith("!") for prefix in prefixes)


def test_dockerfile_base_and_cpu_torch():
    (base,) = arguments("FROM")
    assert base == "python:3.11-slim"
    runs = " && ".join(arguments("RUN"))
    pinned_torch = next(line for line in (ROOT / "requirements.txt").read_text().splitlines()
                        if line.startswith("torch=="))
    torch_install = f"pip install --index-url {CPU_INDEX} {pinned_torch}"
    assert torch_install in runs, f"torch must come from the CPU index at the requirements pin: {runs}"
    rest_install = "pip install -r requirements.txt"
    assert rest_install in runs
    assert runs.index(torch_install) < runs.index(rest_install), "torch must be installed before the rest"


def test_dockerfile_runs_as_non_root_after_setup():
    instructions = dockerfile_instructions()
    keywords = [kw for kw, _ in instructions]
    users = [args for kw, args in instructions if kw == "USER"]
    assert users, "no USER: the app would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(rf"useradd [^&]*\b{users[-1]}\b", " ".join(arguments("RUN"))), "the USER is never created"
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert "RUN" not in keywords[last_user:], "RUN after USER would run as the unprivileged user"
    assert keywords.index("ENTRYPOINT") > last_user


def test_every_package_of_the_app_is_in_the_image_list():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_IN_THE_IMAGE
    assert packages <= set(APP_FILES), f"packages missing from APP_FILES (and so maybe the image): {packages - set(APP_FILES)}"


def test_dockerfile_copies_the_app_and_checkpoints():
    (workdir,) = arguments("WORKDIR")
    assert workdir == WORKDIR
    sources = []
    for args in arguments("COPY"):
        *srcs, _dest = shlex.split(args)
        sources += [src.rstrip("/") for src in srcs if not src.startswith("--")]  # --chown= and the like
    missing = [src for src in sources if not (ROOT / src).exists()]
    assert not missing, f"the Dockerfile COPYs files that do not exist: {missing}"
    assert set(APP_FILES) <= set(sources), f"not copied into the image: {set(APP_FILES) - set(sources)}"
    shipped = [p for p in (ROOT / "checkpoints").iterdir() if (p / "model.safetensors").is_file()]
    assert shipped, "checkpoints/ holds no shipped checkpoint to copy"
    patterns = dockerignore_patterns()
    excluded = [src for src in [*sources, *(f"checkpoints/{p.name}/model.safetensors" for p in shipped)]
                if ignored(src, patterns)]
    assert not excluded, f".dockerignore leaves out files the Dockerfile COPYs: {excluded}"


def test_dockerfile_environment_volume_and_port():
    env = image_env()
    assert env[USER_MODELS_ENV] == USER_MODELS_VOLUME
    assert env[MAX_RUNS_ENV] == str(DEFAULT_MAX_RUNS), "the image should state the app's own default"
    assert env["PORT"] == "8501"
    assert arguments("EXPOSE") == ["8501"]
    (volume,) = arguments("VOLUME")
    assert exec_form(volume) == [USER_MODELS_VOLUME]
    setup = " ".join(arguments("RUN"))
    assert re.search(rf"mkdir -p {USER_MODELS_VOLUME} .*chown \S+ {USER_MODELS_VOLUME}\b", setup), (
        "the volume folder must exist and belong to the app user, or a fresh named volume is not writable"
    )


def test_dockerfile_healthcheck_and_entrypoint():
    (healthcheck,) = arguments("HEALTHCHECK")
    assert re.search(r"--start-period=\d+s", healthcheck), "start-up (importing torch) needs a grace period"
    command = healthcheck_command()
    assert command[:2] == ["python3", "-c"] and "/_stcore/health" in command[2]
    assert entry_command() == ["bash", "scripts/serve.sh"]


def test_dockerignore_excludes_local_state():
    patterns = dockerignore_patterns()
    for path in (".git", "user_models", "tests/artifacts/app_home.png", "app_lib/__pycache__/ui.cpython-311.pyc",
                 ".pytest_cache", "app_lib/__pycache__", "__pycache__"):
        assert ignored(path, patterns), f".dockerignore lets {path} into the build context"


def test_streamlit_config_for_a_shared_server():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"] == {"headless": True, "maxUploadSize": 64, "runOnSave": False, "fileWatcherType": "none",
                                "enableAgentApi": False, "enableStaticServing": True}
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB, "the server's cap and the upload page's must agree"
    assert config["runner"] == {"postScriptGC": False}  # no full collection per rerun (see the file)
    assert config["browser"] == {"gatherUsageStats": False}
    assert config["client"] == {"toolbarMode": "viewer"}
    assert config["logger"] == {"level": "info"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8", "replace")


def wait_for_health(base: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"serve.sh exited with {server.returncode}:\n{log_path.read_text()[-3000:]}"
        try:
            if fetch(f"{base}/_stcore/health") == (200, "ok"):
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no 'ok' from /_stcore/health in {START_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")


def container_env(port: int, user_models: Path) -> dict[str, str]:
    """This machine's environment with the image's ENV on top, port and user-model folder substituted.

    `python3` must resolve to the interpreter running the tests, which has the requirements installed.
    """
    env = os.environ | image_env() | {"PORT": str(port), USER_MODELS_ENV: str(user_models)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.mark.slow
def test_entry_command_serves_the_app_and_passes_its_healthcheck(tmp_path):
    port = free_port()
    user_models = tmp_path / "volume" / "user_models"  # missing: serve.sh creates it
    env = container_env(port, user_models)
    env.pop("MALLOC_ARENA_MAX", None)  # serve.sh's own default applies
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(entry_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, log_path)
        status, page = fetch(f"{base}/")
        assert status == 200 and "<title>Streamlit</title>" in page and '<div id="root">' in page
        assert user_models.is_dir(), "serve.sh should create the TP_USER_MODELS folder"
        server_env = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")  # serve.sh execs streamlit
        assert b"MALLOC_ARENA_MAX=2" in server_env, "serve.sh should limit glibc's malloc arenas"
        health = subprocess.run(healthcheck_command(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=10)
        assert health.returncode == 0, f"HEALTHCHECK failed on a healthy server:\n{health.stderr}"
    finally:
        server.send_signal(signal.SIGTERM)  # what `docker stop` sends to PID 1 (streamlit, via exec)
        try:
            code = server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=STOP_TIMEOUT_S)
            pytest.fail(f"the server ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")
    assert code in (0, -signal.SIGTERM), f"unclean exit {code}:\n{log_path.read_text()[-3000:]}"
    log_text = log_path.read_text()
    assert f"port {port}, user models in {user_models}" in log_text
    down = subprocess.run(healthcheck_command(), cwd=ROOT, env=env, capture_output=True, text=True, timeout=10)
    assert down.returncode != 0, "HEALTHCHECK passed with the server stopped"
