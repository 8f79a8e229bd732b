"""A real Chroma server for the tests (imported by test_chroma.py and test_ray.py; not a test).

``CLIP_TEST_CHROMA=host:port`` names a server already running (CI starts one and exports it).
Without it: under ``CI=true`` the tests fail; otherwise one is started here with the ``chroma``
command of this interpreter's environment (or PATH) on a free loopback port, and the tests skip
when there is no such command.
"""

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import IN_CI


def _chroma_command():
    beside = pathlib.Path(sys.executable).parent / "chroma"
    if beside.exists():
        return str(beside)
    return shutil.which("chroma")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(host, port):
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def chroma_server(workdir):
    """Yields ``(host, port)`` of a running Chroma server (see the module's docstring)."""
    spec = os.environ.get("CLIP_TEST_CHROMA")
    if spec:
        host, _, port = spec.rpartition(":")
        host = host or "127.0.0.1"
        deadline = time.monotonic() + 30
        while not _alive(host, int(port)):
            if time.monotonic() > deadline:
                pytest.fail(f"CLIP_TEST_CHROMA={spec}: no Chroma server answers there")
            time.sleep(0.5)
        yield host, int(port)
        return
    if IN_CI:
        pytest.fail("CI=true but CLIP_TEST_CHROMA (host:port of a Chroma server) is not set")
    command = _chroma_command()
    if command is None:
        pytest.skip("no `chroma` command to start a Chroma server (and CLIP_TEST_CHROMA unset)")
    workdir = pathlib.Path(workdir)
    port = _free_port()
    log_path = workdir / "chroma.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [command, "run", "--path", str(workdir / "data"), "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not _alive("127.0.0.1", port):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"`chroma run` did not come up on port {port}:\n"
                        + log_path.read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.25)
            yield "127.0.0.1", port
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
