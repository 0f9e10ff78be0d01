"""``nas-harness ui`` serves the MLflow UI on a store the harness wrote, as a user starts it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: How long the server may take to answer at all (it starts several processes); a readiness wait, not a race.
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_ui_serves_the_page_and_the_runs_of_a_compare(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--methods", "random_search", "--seeds", "2",
                    "--budget", "5", "--workers", "1", "--tracking-uri", store, "--no-progress",
                    "--out", str(tmp_path / "out")], cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "harness.cli", "ui", "--tracking-uri", store, "--port",
                               str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert server.poll() is None, server.stdout.read().decode(errors="replace")[-2000:]
            try:
                status, page = fetch(f"{base}/")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "the UI did not answer"
                time.sleep(0.5)
        assert status == 200 and b"<html" in page.lower()
        status, body = fetch(f"{base}/api/2.0/mlflow/experiments/search?max_results=50")
        names = {experiment["name"] for experiment in json.loads(body)["experiments"]}
        assert status == 200 and "nas-harness" in names
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_ui_refuses_a_bad_port_in_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "harness.cli", "ui", "--port", "70000"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "1..65535" in done.stderr
