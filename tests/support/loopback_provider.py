"""The node provider of `ray up` in tests/search/test_ray_up.py.

`ray up` itself uses Ray's on-premise provider (:class:`LocalNodeProvider`): the head is the
machine at ``provider.head_ip``, reached over SSH, where the launcher syncs the file mounts and
runs the cluster file's setup and start commands. The head's autoscaler gets Ray's fake
multi-node provider instead (``FakeMultiNodeProvider``, switched on by ``RAY_FAKE_CLUSTER=1`` in the
head's environment): its worker nodes are extra raylets on the head's machine, each with the
resources of its node type, so that trials asking for GPUs make it add nodes as the cloud
provider would. Only :meth:`prepare_for_head_node` differs: the hook through which `ray up`
writes ``~/ray_bootstrap_config.yaml``, the file that cluster.yaml's ``ray start --head
--autoscaling-config=~/ray_bootstrap_config.yaml`` hands to the autoscaler.

Provider keys, besides Ray's ``head_ip`` and ``worker_ips`` (empty: no real worker machines)::

    type: external
    module: support.loopback_provider.LoopbackHeadProvider
    worker_resources: {gpu_worker: {CPU: 1, GPU: 1}}   # what each fake node of a type declares
"""

from __future__ import annotations

import copy
from typing import Any

from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_TYPE
from ray.autoscaler._private.local.node_provider import LocalNodeProvider

FAKE_PROVIDER = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"


class LoopbackHeadProvider(LocalNodeProvider):
    """Ray's on-premise provider for `ray up`; Ray's fake multi-node provider for the head."""

    def prepare_for_head_node(self, cluster_config: dict[str, Any]) -> dict[str, Any]:
        return head_autoscaler_config(cluster_config)


def head_autoscaler_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
    """The prepared cluster config as the head's autoscaler gets it (~/ray_bootstrap_config.yaml)."""
    config = copy.deepcopy(cluster_config)
    types = config["available_node_types"]
    # The fake provider tags its head with this node type; the cluster file's head type (no
    # GPU, no workers of its own) is renamed, not changed.
    types[FAKE_HEAD_NODE_TYPE] = types.pop(config["head_node_type"])
    config["head_node_type"] = FAKE_HEAD_NODE_TYPE
    # A cloud provider reads a node's CPUs and GPUs from its instance type; a fake node
    # declares them.
    for name, resources in config["provider"]["worker_resources"].items():
        types[name]["resources"] = dict(resources)
    # Ray's FakeMultiNodeProvider, named as an external provider: Ray 2.60's wheel lacks the
    # defaults file (fake_multi_node/example.yaml) that the autoscaler reads for type
    # "fake_multinode". Autoscaler v2 (`ray up`'s default since Ray 2.50) knows the head by the
    # instance id that `ray up` exports to its start commands (RAY_CLOUD_INSTANCE_ID: the
    # head's address here), and launches several nodes at once only with launch_multiple.
    # Its nodes start with Ray running (no SSH, no setup commands to run on them).
    config["provider"] = {"type": "external", "module": FAKE_PROVIDER, "launch_multiple": True,
                          "head_node_id": cluster_config["provider"]["head_ip"], "disable_node_updaters": True}
    for legacy in ("head_node", "worker_nodes"):  # empty fields of Ray's external-provider defaults
        config.pop(legacy, None)
    return config
