"""Issue 13, points 4 and 6 with real processes: Ctrl-C (SIGINT) against an endpoint that never answers returns
at once with the resume command; a writer killed with SIGKILL mid-write leaves no temp file behind once the
folder is written again; a hub repo id without network fails in seconds, saying how to run from a local path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.openai_server import FakeOpenAIServer

from baselines.base import BackendError

REPO = Path(__file__).resolve().parents[1]


def as_from_a_terminal() -> None:
    """In the child, before exec: SIGINT handled and deliverable, as when a user starts a command in a terminal.
    A child inherits its parent's ignored signals and blocked-signal mask; under the full suite on a loaded
    machine the child outlived SIGINT by over 60 s three times out of three (never alone), so the test no longer
    depends on what the test process inherited or changed."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_returns_at_once_and_prints_the_resume_command(tmp_path):
    env = {**os.environ, "MLLM_SAFETY_CATALOG": str(tmp_path / "catalog"), "PYTHONUNBUFFERED": "1"}
    with FakeOpenAIServer() as srv:
        srv.always("slow", delay_s=120)  # accepts every request, answers none
        args = [sys.executable, "-m", "tools.cli.main", "run", "figstep", "--model", "openai:m", "--base-url",
                srv.url, "--limit", "4", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]  # fmt: skip
        proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=as_from_a_terminal,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not srv.chat_requests and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert srv.chat_requests, "no request reached the server"
            time.sleep(0.3)  # requests in flight, waiting for answers
            proc.send_signal(signal.SIGINT)
            t0 = time.monotonic()
            out, err = proc.communicate(timeout=60)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Resume with:" in err and "mllm-safety run figstep --model openai:m" in err
    assert took < 10, f"Ctrl-C took {took:.1f} s (the requests in flight must not hold the process)"
    assert not (tmp_path / "catalog" / "results").exists()


WRITER = """
import os, sys, time
from pathlib import Path
import baselines.runstore as rs
real_replace = os.replace
def stuck(src, dst):  # the process is killed between writing the temp file and renaming it
    print("written", flush=True)
    time.sleep(600)
rs.os.replace = stuck
rs.write_json_atomic(Path(sys.argv[1]), {"x": 1})
"""


def test_a_writer_killed_mid_write_leaves_no_temp_file_after_the_next_write(tmp_path):
    from baselines.runstore import write_json_atomic
    from tools.catalog.store import atomic_write_text

    target = tmp_path / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "written"
        [tmp] = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert tmp.exists() and not target.exists()  # the kill left the temp file
    write_json_atomic(target, {"x": 2})  # the next write into the folder sweeps it
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert target.read_text().strip().startswith("{")
    own = tmp_path / f".other.pid{os.getppid()}.abc.tmp"  # a live writer's temp file stays
    own.write_text("in progress")
    atomic_write_text(tmp_path / "result.yaml", "a: 1\n")
    assert own.exists()


def test_a_hub_repo_without_network_fails_in_seconds_saying_what_to_do(tmp_path, monkeypatch):
    import socket

    from baselines.models._hf_load import check_hub_access

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there: the "hub" refuses connections
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(BackendError) as e:
        check_hub_access("nobody/not-a-cached-model", None, local_files_only=False)
    msg = str(e.value)
    assert "cannot be reached" in msg and "hf:/path/to/folder" in msg and "HF_HUB_OFFLINE=1" in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="offline mode.*hf:/path/to/folder"):
        check_hub_access("nobody/not-a-cached-model", None, local_files_only=False)
    check_hub_access(str(tmp_path), None, local_files_only=False)  # a local folder: nothing to check


def test_the_hf_backend_checks_the_hub_before_loading(tmp_path, monkeypatch):
    from baselines.models import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="not in the local Hugging Face cache"):
        load_model("hf:nobody/not-a-cached-model")
