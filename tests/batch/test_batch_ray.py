"""`dermassist batch --engine ray` on a real local Ray cluster this module starts (small: 3 CPUs, 80 MB object
store) and stops: two actors with one tiny-model engine each, the same outputs and the same reports as the local
engine, and the same exactly-once rule on a rerun."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support.images import jpeg_bytes, varied_lesion
from support.net import free_port
from support.paths import BIN, REPO

pytestmark = pytest.mark.slow
N_GOOD = 5
# Ray 2.60 turns token auth on by itself once ~/.ray/auth_token exists (any earlier local ``ray.init`` writes it), and
# on this machine a ``ray start`` head then refuses the driver's token ("InvalidAuthToken"). This cluster is private
# to the test and bound to loopback, so it runs without auth; head and driver must agree on that.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def ray_address():
    """``ray start --head --block`` in its own process group (never ``ray stop``: it would stop every Ray on the
    machine); a short temp dir because Ray's socket paths must fit in 107 characters."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    # Loopback only, and no fixed default ports (10001, 8265, 52365) another Ray on the machine may hold.
    ports = [f"--{name}={free_port()}" for name in ("ray-client-server-port", "dashboard-port",
                                                     "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                     "metrics-export-port", "runtime-env-agent-port")]
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", *ports,
         "--num-cpus=3", "--object-store-memory=80000000", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp}", "--block"],
        cwd=REPO, env={**os.environ, **RAY_ENV}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, "ray start exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the Ray head did not come up in 180 s"
            time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)  # a private test cluster: no need to wait long for a graceful stop
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of our group is left (raylet, gcs, workers)
    shutil.rmtree(temp, ignore_errors=True)


def _manifest(root: Path) -> Path:
    root.mkdir(parents=True)
    lines = []
    for i in range(N_GOOD):
        (root / f"p{i}.jpg").write_bytes(jpeg_bytes(varied_lesion(i + 20)))
        lines.append({"id": f"patient-{i}", "image": f"p{i}.jpg", "context": {"age": 20 + 9 * i}})
    (root / "broken.jpg").write_bytes(b"\x00 not an image")
    lines.append({"id": "broken", "image": "broken.jpg"})
    path = root / "cases.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dermassist"), "batch", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **RAY_ENV})


def _records(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (out / "reports.jsonl").read_text().splitlines())}


def test_ray_actor_pool_gives_the_local_reports_exactly_once(tmp_path, tiny_model, ray_address):
    manifest = _manifest(tmp_path / "job")
    common = ["--model", str(tiny_model), "--backend", "transformers", "--no-retrieval", "--batch-size", "2"]
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    ray_args = [str(manifest), "--out", str(ray_out), *common, "--engine", "ray", "--ray-address", ray_address,
                "--ray-actors", "2"]
    proc = _batch(*ray_args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == ""
    local = _batch(str(manifest), "--out", str(local_out), *common, "--no-progress")
    assert local.returncode == 0, local.stderr[-3000:]

    scaled, here = _records(ray_out), _records(local_out)
    assert sorted(scaled) == sorted(here) == sorted([f"patient-{i}" for i in range(N_GOOD)] + ["broken"])
    assert scaled["broken"]["status"] == "error" and scaled["broken"]["error_kind"] == "invalid_image"
    workers = {r["worker"] for r in scaled.values() if r["status"] == "ok"}
    assert len(workers) >= 2, f"one actor did all the work: {workers}"
    for case_id, record in here.items():
        assert scaled[case_id]["status"] == record["status"]
        if record["status"] == "ok":
            for key in ("findings", "differential", "diagnosis", "triage", "red_flags", "safety"):
                assert scaled[case_id]["report"][key] == record["report"][key], (case_id, key)
            assert (ray_out / scaled[case_id]["markdown"]).is_file()
            assert (ray_out / scaled[case_id]["thumbnail"]).is_file()
    for name in ("reports.csv", "index.html", "run.json"):
        assert (ray_out / name).is_file()
    info = json.loads((ray_out / "run.json").read_text())
    assert info["runs"][-1]["engine"] == "ray" and info["status"] == "complete"

    again = _batch(*ray_args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((ray_out / "run.json").read_text())["runs"][-1]["computed"] == 0
    assert len((ray_out / "reports.jsonl").read_text().splitlines()) == N_GOOD + 1
