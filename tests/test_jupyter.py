"""The chapters as a reader reruns them: in JupyterLab (`make lab`), with the project's kernel, default parameters."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import nbformat
import pytest

from rrgkit.book.build import find_warnings, is_figure
from rrgkit.paths import project_root

REPO_ROOT = project_root()

KERNEL = "rrgkit"


@pytest.mark.slow
def test_overview_runs_top_to_bottom_in_a_fresh_kernel_with_its_defaults(monkeypatch):
    """What "Run All" in JupyterLab does: no papermill, no injected parameters, the notebook's own defaults."""
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)  # a kernel started by JupyterLab has the inline backend
    nb = nbformat.read(REPO_ROOT / "notebooks" / "00_overview.ipynb", as_version=4)
    NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    assert not find_warnings(nb), find_warnings(nb)
    assert sum(is_figure(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs) >= 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, data: dict | None = None) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"},
                                     data=None if data is None else json.dumps(data).encode(), method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


async def _run_code(url: str, token: str, code: str, timeout: float = 60) -> tuple[str, str]:
    """Execute ``code`` in a kernel over the server's websocket, as JupyterLab does; return (status, stdout)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request", "version": "5.3"}
    connection.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                                         "content": {"code": code, "silent": False, "store_history": False,
                                                     "user_expressions": {}, "allow_stdin": False}}))
    status, stdout, deadline = None, "", time.monotonic() + timeout
    while status is None and time.monotonic() < deadline:
        message = await asyncio.wait_for(connection.read_message(), timeout=deadline - time.monotonic())
        if message is None:
            break
        msg = json.loads(message)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            stdout += msg["content"]["text"]
        elif msg["msg_type"] == "execute_reply":
            status = msg["content"]["status"]
    connection.close()
    return status or "no reply", stdout


@pytest.mark.slow
def test_make_lab_serves_the_chapters_with_a_working_kernel(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}/"
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _api(base, token, "api/status")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, f"make lab did not serve:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        specs = _api(base, token, "api/kernelspecs")
        assert specs["default"] == KERNEL and specs["kernelspecs"][KERNEL]["spec"]["env"]["HF_HUB_OFFLINE"] == "1"
        listed = {item["name"] for item in _api(base, token, "api/contents")["content"]}
        assert {p.name for p in (REPO_ROOT / "notebooks").glob("*.ipynb")} <= listed
        with urllib.request.urlopen(urllib.request.Request(base + "lab", headers={"Authorization": f"token {token}"}), timeout=10) as page:
            assert b"JupyterLab" in page.read()
        kernel = _api(base, token, "api/kernels", {"name": KERNEL})
        url = f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels"
        status, stdout = asyncio.run(_run_code(url, token, "import sys, rrgkit.book.results\nprint(sys.prefix)"))
        assert status == "ok" and stdout.strip() == str(REPO_ROOT / ".venv"), (status, stdout)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
