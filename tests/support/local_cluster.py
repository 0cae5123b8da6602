"""A multi-node Ray cluster on one machine, for the distributed tests and the cluster benchmark.

Ray's own test cluster (:class:`ray.cluster_utils.Cluster`) starts a head and several worker
"nodes" (each its own raylet, object store and worker processes) on this machine. Each worker node
here declares GPUs (Ray schedules on declared resources; the trials find no CUDA device and train
on the CPU) and gets its own loopback address (127.0.0.2, 127.0.0.3, ...), so that the ``node_ip``
that Ray Tune stamps on every result tells which node a trial ran on, as it does on a real cluster.
The head declares no GPU: trials that ask for one run on the worker nodes only, like on the
cluster of ``cluster.yaml``.

Usage::

    with LocalCluster(gpu_nodes=2) as cluster:
        run_search(space, address=cluster.address)
        trial_nodes(space.experiment_path)   # {trial_id: [(node_ip, epoch), ...]}
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKER_IP_BASE = "127.0.0."
FIRST_WORKER_HOST = 2  # 127.0.0.2 is the first worker node


class LocalCluster:
    """A head without GPUs and ``gpu_nodes`` worker nodes with ``gpus_per_node`` GPUs each.

    Args:
        gpu_nodes: worker nodes started with the cluster.
        cpus_per_node: CPUs each worker node declares.
        gpus_per_node: GPUs each worker node declares.
        head_cpus: CPUs of the head (the driver needs none; Ray's own helpers may).
        code_path: a folder put first on the ``PYTHONPATH`` of every node's processes (the
            project's checkout, as if installed on every node); by default the checkout this
            module belongs to.
    """

    def __init__(
        self,
        gpu_nodes: int = 2,
        cpus_per_node: int = 1,
        gpus_per_node: int = 1,
        head_cpus: int = 1,
        code_path: str | os.PathLike | None = None,
    ) -> None:
        if gpu_nodes < 0 or cpus_per_node < 1 or gpus_per_node < 0:
            raise ValueError(
                f"LocalCluster needs gpu_nodes >= 0, cpus_per_node >= 1 and gpus_per_node >= 0; got "
                f"{gpu_nodes}, {cpus_per_node}, {gpus_per_node}"
            )
        self.gpu_nodes = gpu_nodes
        self.cpus_per_node = cpus_per_node
        self.gpus_per_node = gpus_per_node
        self.head_cpus = head_cpus
        self.code_path = str(Path(code_path or Path(__file__).resolve().parents[2]))  # the checkout
        self._cluster: Any = None
        self._nodes: dict[str, Any] = {}  # node_ip -> ray._private.node.Node
        self._next_host = FIRST_WORKER_HOST

    # ---- life cycle -----------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        """Start the head and the worker nodes; returns self."""
        from ray.cluster_utils import Cluster

        from search.tune.runner import RAY_SYSTEM_CONFIG

        # As a search's own local Ray: no dashboard, no idle workers (their CPU goes to the trials).
        head = {"num_cpus": self.head_cpus, "num_gpus": 0, "include_dashboard": False, "_system_config": RAY_SYSTEM_CONFIG}
        with self._node_environment():
            self._cluster = Cluster(initialize_head=True, head_node_args=head)
        for _ in range(self.gpu_nodes):
            self.add_node(wait=False)
        self._cluster.wait_for_nodes()
        return self

    def shutdown(self) -> None:
        """Stop every node (the driver of this process, if connected, first)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None
            self._nodes.clear()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @contextmanager
    def _node_environment(self) -> Iterator[None]:
        """Node processes (raylets, and the trial workers they start) inherit this environment."""
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (self.code_path, before) if p)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = before

    # ---- nodes --------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """The GCS address to pass as ``--address`` / ``run_search(address=...)``."""
        if self._cluster is None:
            raise RuntimeError("LocalCluster is not started")
        return self._cluster.address

    @property
    def worker_ips(self) -> list[str]:
        """The addresses of the worker nodes alive now."""
        return sorted(self._nodes)

    def add_node(self, wait: bool = True) -> str:
        """Start one more GPU worker node (from the main thread: Ray sets signal handlers);
        returns its address."""
        ip = f"{WORKER_IP_BASE}{self._next_host}"
        self._next_host += 1
        with self._node_environment():
            self._nodes[ip] = self._cluster.add_node(
                wait=wait, num_cpus=self.cpus_per_node, num_gpus=self.gpus_per_node, node_ip_address=ip
            )
        return ip

    def remove_node(self, ip: str, graceful: bool = False) -> None:
        """Kill the worker node at ``ip`` and everything on it, as a crashed or reclaimed machine
        (any thread may call this).

        Ray's test cluster kills the node's own processes (raylet, object store, agents) but not the
        worker processes the raylet started: those run on until they next need their raylet, and a
        trial actor busy training does not (the driver talks to it directly). On a lost machine
        they die with it, so they are killed here too.
        """
        node = self._nodes.pop(ip)
        workers = _descendants(node.all_processes["raylet"][0].process.pid)
        self._cluster.remove_node(node, allow_graceful=graceful)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone with its raylet


def _descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, their children and so on (read from Linux's /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces or parentheses, so split after the last ')'
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def trial_nodes(experiment_path: str | Path) -> dict[str, list[tuple[str, int | None]]]:
    """Where each trial of a (local) Tune experiment ran: ``{trial_id: [(node_ip, epoch), ...]}``.

    Read from the ``result.json`` that Ray Tune writes in each trial's folder (one line per
    reported result, in order, across restarts); ``epoch`` is the epoch counter the trial reports
    (``None`` in a result without one).
    """
    out: dict[str, list[tuple[str, int | None]]] = {}
    for path in sorted(Path(experiment_path).glob("*/result.json")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            epoch = row.get("epoch")
            out.setdefault(row["trial_id"], []).append(
                (row.get("node_ip", "?"), int(epoch) if isinstance(epoch, int | float) else None)
            )
    return out
