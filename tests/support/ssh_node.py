"""A machine for `ray up` on this one: a test-private sshd on 127.0.0.1, in its own PID namespace.

Ray's cluster launcher reaches every node over SSH and runs the cluster file's commands there. This
node is this machine seen through an sshd of its own (host key, authorized key, port and config in
a temporary folder, nothing of the system's ~/.ssh or /etc/ssh used), listening on the loopback
address only. Its sessions get a HOME of their own, holding a virtual environment that sees this
machine's packages (so `pip install -e` on the node installs the node's copy of the project into
that environment and leaves this checkout's install alone) and a .bashrc that puts it first on
the PATH, as a machine image would.

Where the kernel allows it (``unshare``, as root), the sshd runs in its own PID namespace: the
`ray stop` of the cluster file's start commands then stops only the node's Ray, never another
Ray running on this machine, and killing the namespace's first process at the end takes every
process of the node with it (Ray, the MLflow server, anything a command left behind).

Ray's launcher has no SSH port setting; its ``auth.ssh_proxy_command`` (an OpenSSH ProxyCommand,
here netcat) carries the connection to the node's port.

Usage::

    with SshNode(env={"RAY_FAKE_CLUSTER": "1"}) as node:
        config["auth"] = node.auth
        subprocess.run(["ray", "up", ...], env=node.client_env())
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"
NEEDED = {SSHD: "openssh-server", "rsync": "rsync", "nc": "netcat-openbsd", "ssh": "openssh-client"}


def missing_tools() -> list[str]:
    """The Debian packages this node needs that this machine lacks (README set-up line)."""
    return sorted({pkg for tool, pkg in NEEDED.items() if shutil.which(tool) is None})


def can_isolate() -> bool:
    """Whether processes can get a PID namespace of their own here (root, unshare allowed)."""
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshNode:
    """One node reached as ``ssh -i <key> <user>@127.0.0.1`` through ``auth``.

    Args:
        env: variables exported in the node's .bashrc (after its PATH), e.g. Ray's switches.
        isolate: run the sshd in a PID namespace of its own (see :func:`can_isolate`).
    """

    def __init__(self, env: dict[str, str] | None = None, isolate: bool = True) -> None:
        # Short: Ray's Unix sockets live under RAY_TMPDIR/ray/session_*/sockets (108 bytes at most).
        self.root = Path(tempfile.mkdtemp(prefix="rayup-", dir="/tmp"))
        self.home = self.root / "home"
        self.ray_tmpdir = self.root / "tmp"  # RAY_TMPDIR of the node and of the `ray` CLI here
        self.key = self.root / "id_ed25519"
        self.port = _free_port()
        self.user = getpass.getuser()
        self.env = dict(env or {})
        self.isolate = isolate
        self._sshd: subprocess.Popen | None = None

    # ---- what the cluster file and the `ray` CLI here need ---------------------------------------
    @property
    def auth(self) -> dict[str, str]:
        """The cluster file's ``auth`` section for this node."""
        return {
            "ssh_user": self.user,
            "ssh_private_key": str(self.key),
            "ssh_proxy_command": f"nc 127.0.0.1 {self.port}",
        }

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of `ray up/exec/down` here: Ray's local cluster state kept in this
        node's folder (never /tmp/ray, which other Ray instances on this machine share)."""
        env = {**os.environ, "RAY_TMPDIR": str(self.ray_tmpdir), "RAY_USAGE_STATS_ENABLED": "0", **extra}
        env.pop("RAY_ADDRESS", None)
        return env

    # ---- life cycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> SshNode:
        self.home.mkdir()
        self.ray_tmpdir.mkdir()
        run = {"check": True, "capture_output": True, "timeout": timeout}
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / "host_key")], **run)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], **run)
        shutil.copy(self.key.with_suffix(".pub"), self.root / "authorized_keys")
        venv = self.home / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], **run)
        _see_this_environment(venv)
        # The node's Python first, then this machine's (its console scripts: ray, mlflow).
        exports = {"PATH": f"{venv / 'bin'}:{Path(sys.executable).parent}:$PATH", "RAY_TMPDIR": str(self.ray_tmpdir),
                   "RAY_USAGE_STATS_ENABLED": "0", **self.env}
        (self.home / ".bashrc").write_text("".join(f'export {k}="{v}"\n' for k, v in exports.items()))
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.root / 'host_key'}\n"
            f"PidFile {self.root / 'sshd.pid'}\nAuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            f"AllowUsers {self.user}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n"
            # The node's HOME: ~ in the cluster file's commands and paths means this folder.
            f"SetEnv HOME={self.home}\nLogLevel ERROR\n"
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation folder
        cmd = [SSHD, "-D", "-e", "-f", str(config)]
        if self.isolate:
            cmd = ["unshare", "--pid", "--fork", "--mount-proc", *cmd]
        log = open(self.root / "sshd.log", "wb")
        self._sshd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._sshd.poll() is not None:
                raise RuntimeError(f"sshd ended ({self._sshd.returncode}): {(self.root / 'sshd.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"sshd did not listen on 127.0.0.1:{self.port} within {timeout} s")

    def close(self) -> None:
        """Kill the sshd (with the namespace, every process of the node) and remove the folder."""
        if self._sshd is not None and self._sshd.poll() is None:
            try:
                os.killpg(self._sshd.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._sshd.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SshNode:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _see_this_environment(venv: Path) -> None:
    """Make the node's virtual environment see this interpreter's packages when this interpreter
    is itself a virtual environment: ``--system-site-packages`` shows the base Python's packages
    only, so the node's Ray processes would start without Ray, torch or the project's dependencies
    (`ray start` then hangs)."""
    if sys.prefix == sys.base_prefix:
        return
    node_site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (node_site / "this_machine.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
