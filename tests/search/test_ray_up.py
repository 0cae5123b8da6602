"""`ray up cluster.yaml`, for real, on this one machine.

The cluster file is cluster.yaml itself, read by this test, with only what names the machines
replaced: ``provider`` (the head is 127.0.0.1, reached over SSH through a test-private sshd,
support/ssh_node.py), ``auth`` (that sshd's key and port) and no ``docker`` (no container
runtime here: the commands run on the node itself, as on a cluster without an image). Every
command (setup_commands, head_setup_commands, head_start_ray_commands), the file mounts, the node
types, the worker counts and the idle timeout are cluster.yaml's own, so the two cannot drift.

The head's autoscaler gets Ray's fake multi-node provider (support/loopback_provider.py): its
gpu_worker nodes are extra raylets on this machine that declare one GPU each, because two Ray nodes
started by cluster.yaml's commands cannot share one host (each start begins with `ray stop`,
which would stop the other; the ports are fixed). Shown:

- `ray up` syncs the checkout to the node, its setup command installs that copy into the node's
  Python, and its start commands start Ray (GCS on 6379, the autoscaler with the bootstrap config)
  and the MLflow server on the head's loopback;
- `search run SPACE --address auto`, run on the head with `ray exec`, joins that Ray; its trials
  ask for one GPU each, the head has none, so the autoscaler adds gpu_worker nodes and the trials
  run there; the search finishes and logs to the head's MLflow server;
- `ray down` stops Ray on the head: no Ray process of the node is left.

Needs openssh-server, rsync and netcat-openbsd (README set-up line); skipped without them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from support.ssh_node import SshNode, can_isolate, missing_tools

from search.results.records import load_records

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_FILE = ROOT / "cluster.yaml"
GPU_WORKER = "gpu_worker"
# What one fake gpu_worker node declares (a g5.xlarge has 4 CPUs and 1 GPU; this machine has 2 cores).
WORKER_RESOURCES = {"CPU": 1, "GPU": 1}
# Fixed ports of cluster.yaml's start commands (and Ray's dashboard, which the test reads).
PORTS = {6379: "Ray's GCS", 8076: "Ray's object manager", 8265: "Ray's dashboard", 5000: "the MLflow server"}
NUM_TRIALS = 2
# The node's environment, as its machine image would set it: Ray's fake multi-node provider on
# (support/loopback_provider.py), the autoscaler's loop every second rather than every five, and
# one MLflow server worker process instead of four (read by `mlflow server`; this machine has 2 cores).
NODE_ENV = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1", "MLFLOW_WORKERS": "1"}
TRACKING_URI = "http://127.0.0.1:5000"  # head_setup_commands export it on the head


def launcher_config(node: SshNode) -> dict[str, Any]:
    """cluster.yaml, with the machines it names replaced by ``node``."""
    config = yaml.safe_load(CLUSTER_FILE.read_text())
    config.pop("docker")
    config["provider"] = {
        "type": "external",
        "module": "support.loopback_provider.LoopbackHeadProvider",
        "head_ip": "127.0.0.1",
        "worker_ips": [],
        "worker_resources": {GPU_WORKER: WORKER_RESOURCES},
    }
    config["auth"] = node.auth
    return config


SPACE = """
name: ray_up
data: {{dataset: digits, image_size: 16, train_subset: 128, test_subset: 64}}
model: {{name: robust_vit, patch_size: 4, embed_dim: 16, depth: 1, num_heads: {{choice: [1, 2]}}, mlp_ratio: 1.0}}
train: {{epochs: 1, batch_size: 64, lr: 0.003, augmentation: none}}
eval: {{corruptions: [gaussian_noise], severities: [1], subset: 32, cache_dir: {root}/cache}}
search: {{sampler: random, num_trials: {num_trials}, concurrency: {num_trials}, seed: 0}}
resources: {{cpus_per_trial: 1, gpus_per_trial: 1}}
storage: {root}/runs
"""


def _ray_processes(marker: str | None = None) -> list[psutil.Process]:
    """Ray's servers running on this machine (those whose command line holds ``marker``, if given)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] in ("raylet", "gcs_server") or "ray/_private/workers" in cmdline:
            if marker is None or marker in cmdline:
                found.append(proc)
    return found


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def node():
    missing = missing_tools()
    if missing:
        pytest.skip(f"`ray up` over SSH needs {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    isolate = can_isolate()
    if not isolate and _ray_processes():
        pytest.skip("another Ray runs on this machine and no PID namespace is allowed here: the `ray stop` "
                    "of cluster.yaml's start commands would stop it")
    busy = [f"{port} ({what})" for port, what in PORTS.items() if _port_busy(port)]
    if busy:
        pytest.skip(f"cluster.yaml's ports are taken on this machine: {', '.join(busy)}")
    with SshNode(env=NODE_ENV, isolate=isolate) as n:
        yield n


class Launcher:
    """`ray up/exec/down` on a cluster file, from the repository root (file_mounts sync ".")."""

    def __init__(self, node: SshNode, config: dict[str, Any]) -> None:
        self.file = node.root / "cluster.yaml"
        self.file.write_text(yaml.safe_dump(config))
        # support.loopback_provider is imported by the `ray` CLI here (the head never imports it).
        self.env = node.client_env(PYTHONPATH=f"{ROOT / 'tests'}")

    def __call__(self, verb: str, *args: str, timeout: float) -> str:
        cache = ["--no-config-cache"] if verb in ("up", "exec") else []  # no cached copies left in /tmp
        proc = subprocess.run(["ray", verb, str(self.file), *cache, *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"ray {verb} exited {proc.returncode}:\n{out[-6000:]}"
        return out


# Run on the head: the cluster's live nodes as Ray's GCS sees them, one JSON line.
NODES_PROBE = """
import json, ray
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
nodes = [{"id": n["NodeID"], "resources": n["Resources"], "type": n.get("Labels", {}).get("ray.io/node-type-name")}
         for n in ray.nodes() if n["Alive"]]
print("NODES=" + json.dumps(nodes))
"""


def _alive_nodes(ray: Launcher, node: SshNode) -> list[dict[str, Any]]:
    probe = node.root / "nodes_probe.py"
    probe.write_text(NODES_PROBE)
    out = ray("exec", f"python {probe}", timeout=60)
    return json.loads(re.search(r"^NODES=(.*)$", out, re.M).group(1))


def _wait_for_mlflow(node: SshNode, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{TRACKING_URI}/api/2.0/mlflow/experiments/search?max_results=1",
                                        timeout=60) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    log = node.home / "mlflow" / "server.log"
    raise AssertionError(f"no MLflow server on 127.0.0.1:5000 after {timeout} s; {log}:\n"
                         f"{log.read_text()[-3000:] if log.exists() else '(none)'}")


def test_launcher_config_is_cluster_yaml_but_the_machines() -> None:
    """Fast: the test's cluster file keeps every command and node type of cluster.yaml, passes Ray's
    validation, and the head's autoscaler config keeps the worker types with declared resources."""
    from ray.autoscaler._private.util import prepare_config, validate_config
    from support.loopback_provider import head_autoscaler_config

    class _Node:
        auth = {"ssh_user": "u", "ssh_private_key": "/k", "ssh_proxy_command": "nc 127.0.0.1 1"}

    ours, theirs = launcher_config(_Node()), yaml.safe_load(CLUSTER_FILE.read_text())
    changed = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert changed == {"provider", "auth", "docker"}
    prepared = prepare_config(ours)
    validate_config(prepared)
    head = head_autoscaler_config(prepared)
    validate_config(head)
    assert head["available_node_types"][GPU_WORKER]["resources"] == WORKER_RESOURCES
    assert head["head_setup_commands"] == prepared["head_setup_commands"]
    assert not head["available_node_types"][head["head_node_type"]]["resources"].get("GPU")


@pytest.mark.slow  # every command has its own timeout
def test_ray_up_runs_cluster_yaml_scales_for_gpu_trials_and_ray_down_stops_it(node: SshNode) -> None:
    config = launcher_config(node)
    ray = Launcher(node, config)
    t0 = time.monotonic()

    ray("up", "-y", timeout=150)
    t_up = time.monotonic() - t0

    # setup_commands installed the node's copy of the project (synced by file_mounts) into the
    # node's Python; head_setup_commands exported the tracking server's address.
    where = ray("exec", "echo module=$(python -c 'import search; print(search.__file__)') uri=$MLFLOW_TRACKING_URI",
                timeout=60)
    module, tracking_uri = re.search(r"module=(\S+) uri=(\S*)", where).groups()
    assert Path(module) == node.home / "robust-vit-search" / "search" / "__init__.py"
    assert tracking_uri == TRACKING_URI
    # head_start_ray_commands started Ray's head with the autoscaler: one node, no GPU.
    nodes = _alive_nodes(ray, node)
    assert len(nodes) == 1 and not nodes[0]["resources"].get("GPU"), nodes

    # ...and the MLflow tracking server on the head's loopback (its store answers once the server
    # has set up its SQLite database, on the first request: seconds on a busy machine).
    _wait_for_mlflow(node)

    space = node.root / "ray_up.yaml"
    space.write_text(SPACE.format(root=node.root, num_trials=NUM_TRIALS))
    out = ray("exec", f"cd ~/robust-vit-search && search run {space} --address auto", timeout=150)
    t_search = time.monotonic() - t0 - t_up

    records = load_records(node.root / "runs" / "ray_up")
    assert [r.status for r in records] == ["finished"] * NUM_TRIALS, out[-4000:]
    # The autoscaler added gpu_worker nodes for the trials (the head has no GPU, so every trial
    # ran on one of them).
    nodes = _alive_nodes(ray, node)
    workers = [n for n in nodes if n["resources"].get("GPU") == WORKER_RESOURCES["GPU"]]
    assert len(nodes) > 1 and len(workers) == len(nodes) - 1, nodes
    print(json.dumps({"up_s": round(t_up, 1), "search_s": round(t_search, 1), "nodes": len(nodes)}))

    ray("down", "-y", timeout=90)
    deadline = time.monotonic() + 30
    while _ray_processes(str(node.ray_tmpdir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes(str(node.ray_tmpdir)), "Ray still runs on the node after `ray down`"
    assert not _port_busy(6379)
