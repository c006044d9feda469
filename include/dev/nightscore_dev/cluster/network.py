"""Hosts of their own on one Linux machine: network namespaces joined by a bridge.

The machine itself is the control host (the bridge's address, `.1`); each other host is a
network namespace with a veth pair into the bridge and its own address (`.11`, `.12`,
...). A process started on a host (`Host.command`) also gets its own host name and a
private, empty `/tmp` (its home is there), so it sees none of the other hosts' files: only the code
(the image) and what the services serve. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def can_build() -> str | None:
    """Why hosts cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, mount namespaces)"
    for tool in ("ip", "unshare"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"needs the `{tool}` command"
    return None


@dataclass
class Host:
    """A host on the network: its name, namespace and address."""

    name: str
    netns: str
    address: str
    # Folders masked with an empty tmpfs, so the host cannot see them (other hosts' state).
    hidden: tuple[str, ...] = ()

    def command(self, argv: list[str], *, home: str = "/tmp/home") -> list[str]:
        """`argv` run on this host: its namespace, host name, private /tmp and home."""
        mounts = " && ".join(
            f"mount -t tmpfs tmpfs {shlex.quote(p)}" for p in ("/tmp", *self.hidden)
        )
        script = (
            f"hostname {shlex.quote(self.name)} && {mounts} && mkdir -p {shlex.quote(home)} "
            f"&& export HOME={shlex.quote(home)} TMPDIR=/tmp && exec {shlex.join(argv)}"
        )
        return [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts", "--mount", "--propagation", "private",
            "sh", "-c", script,
        ]  # fmt: skip

    def pids(self) -> list[int]:
        found = _ip("netns", "pids", self.netns, check=False).stdout.split()
        return [int(pid) for pid in found]

    def kill(self) -> int:
        """SIGKILL every process on the host (a machine losing power); how many there were."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


@dataclass
class Network:
    """A bridge on the control host and namespaced hosts attached to it."""

    subnet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"nsb{self.tag}"

    @property
    def control_address(self) -> str:
        return f"10.{self.subnet}.0.1"

    def up(self) -> Network:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.control_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str, *, hidden: tuple[str, ...] = ()) -> Host:
        number = len(self.hosts) + 1
        netns = f"ns{self.tag}-{name}"
        outside, inside = f"nsv{self.tag}{number}", f"nsp{self.tag}{number}"
        address = f"10.{self.subnet}.0.{10 + number}"
        _ip("netns", "add", netns)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", netns)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", netns, "link", "set", inside, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", self.control_address)
        # `ip netns exec` mounts this over /etc/hosts: the host resolves its own name.
        etc = NETNS_ETC / netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(
            f"127.0.0.1 localhost\n{address} {name}\n{self.control_address} control\n"
        )
        host = Host(name, netns, address, hidden)
        self.hosts.append(host)
        return host

    def down(self) -> None:
        """Kill what runs on the hosts and remove them and the bridge; safe to repeat."""
        for host in self.hosts:
            host.kill()
        time.sleep(0.2)
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)
            hosts_file = NETNS_ETC / host.netns / "hosts"
            hosts_file.unlink(missing_ok=True)
            if hosts_file.parent.exists():
                hosts_file.parent.rmdir()
        _ip("link", "del", self.bridge, check=False)
        self.hosts.clear()
