"""Test hosts on this machine, for multi-host MPI tests: network namespaces on a bridge.

Each host is what a pod or a machine would be, as far as MPI can tell:

- its own network namespace (``msh-<name>``), joined by a veth pair to the bridge
  ``msh-br0`` in the root namespace, with its own address on 10.231.77.0/24 and no
  route anywhere else (the bridge has no address: the hosts only see each other);
- its own host name (a UTS namespace) and its own ``/etc/hosts`` naming every test
  host (``ip netns exec`` binds ``/etc/netns/<ns>/hosts`` over ``/etc/hosts``);
- its own mount view, with a "local disk" at ``<workdir>/local`` that only this host
  sees (``<workdir>/disks/<name>`` bound there), so a test can prove that a file is
  read on one host only;
- an init process (``sleep infinity``, like a pod's pause container) that holds the
  namespaces; everything else in the host enters them with ``nsenter``;
- with ``sshd=True``: an sshd listening on the host's own address, port 22, with its
  own host key, accepting a key pair made for this run (``<workdir>/ssh``); the client
  side is :attr:`TestHosts.ssh`, for MPICH's ``-launcher-exec`` (examples/mpiexec-ssh
  with the run's key, given by :attr:`TestHosts.launcher_env`).

Everything created is named ``msh-*`` (namespaces, bridge, veths, ``/etc/netns``
entries, the work directory ``/tmp/msh-hosts-*``) and removed by :meth:`TestHosts.down`,
which is idempotent and also removes what a crashed earlier run left (:func:`cleanup`).
Needs root, ``ip`` (iproute2), ``unshare``/``nsenter`` (util-linux), ``/usr/sbin/sshd``.

By hand (``up`` leaves the hosts running until ``down``)::

    python tests/testhosts.py up [NAME ...]      # default: h1 h2 h3
    python tests/testhosts.py down
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PREFIX = "msh-"
BRIDGE = "msh-br0"
SUBNET = "10.231.77"  # host i gets SUBNET.(10 + i)
WORK_PREFIX = "msh-hosts-"
ETC_NETNS = Path("/etc/netns")
RUN_NETNS = Path("/run/netns")
PRIVSEP = Path("/run/sshd")  # sshd refuses to start without it
SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
LOCK_NAME = b"\0mpisearch-msh-hosts"  # abstract socket: one set of test hosts at a time, freed on exit

# ssh client options. ServerAlive*: a silent peer (link down, host gone) ends the
# session in about 3 s instead of TCP's 15 minutes; MPICH's hydra then ends the job.
SSH_CLIENT_OPTIONS = {
    "IdentitiesOnly": "yes",
    "StrictHostKeyChecking": "no",
    "UserKnownHostsFile": "/dev/null",
    "LogLevel": "ERROR",
    "BatchMode": "yes",
    "ConnectTimeout": "5",
    "ServerAliveInterval": "1",
    "ServerAliveCountMax": "3",
}


# The ssh that MPICH's hydra runs (``-launcher-exec``) to start its proxy on each host:
# examples/mpiexec-ssh, which ends the job when ssh loses its host (hydra alone waits
# forever for a silent host), with this run's ssh client and 1 s keepalives.
MPIEXEC_SSH = Path(__file__).resolve().parent.parent / "examples" / "mpiexec-ssh"


class HostsUnavailable(RuntimeError):
    """Network namespaces (or sshd) cannot be had on this machine."""


def _run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def netns(name: str) -> str:
    return PREFIX + name


def unavailable_reason() -> str | None:
    """Why test hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "test hosts need root (network namespaces, veth pairs, a bridge, sshd)"
    for tool in ("ip", "unshare", "nsenter", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"test hosts need {tool}"
    for path in (SSHD, SSH):
        if not os.access(path, os.X_OK):
            return f"test hosts need {path}"
    probe, had_run_netns = netns("probe"), RUN_NETNS.exists()
    try:
        _run("ip", "netns", "add", probe)
        try:
            _run("ip", "netns", "exec", probe, "unshare", "--uts", "true")
        finally:
            _run("ip", "netns", "del", probe, check=False)
            if not had_run_netns:
                _remove_run_netns()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace with its own host name here: {exc}"
    return None


def _remove_run_netns() -> None:
    """Undo what the first `ip netns add` did to /run/netns (a mount point), if nothing is left in it."""
    if RUN_NETNS.is_dir() and not any(RUN_NETNS.iterdir()):
        _run("umount", str(RUN_NETNS), check=False)
        with contextlib.suppress(OSError):
            RUN_NETNS.rmdir()


def _bridge_filter_hint() -> str:
    """Why hosts on the bridge may not reach each other: iptables filtering bridged traffic
    (br_netfilter, loaded by Docker, whose FORWARD policy is DROP)."""
    try:
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1":
            return (f" (br_netfilter passes bridged traffic through iptables here: allow it with "
                    f"`iptables -I FORWARD -i {BRIDGE} -o {BRIDGE} -j ACCEPT`)")
    except OSError:
        pass
    return ""


def _ns_list() -> list[str]:
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace(ns: str) -> None:
    """SIGKILL every process in network namespace ``ns`` (ours: named msh-*), wait until gone."""
    assert ns.startswith(PREFIX)
    end = time.monotonic() + 10
    while True:
        pids = [int(p) for p in _run("ip", "netns", "pids", ns, check=False).stdout.split()]
        if not pids or time.monotonic() > end:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def cleanup(workdir: Path | None = None) -> None:
    """Remove every msh-* thing: processes in msh-* namespaces, the namespaces, the bridge,
    veths, /etc/netns entries, work directories (``workdir`` or all /tmp/msh-hosts-*), and
    the system directories a run created (as its state file says). Idempotent."""
    states = []
    workdirs = [workdir] if workdir is not None else sorted(Path(tempfile.gettempdir()).glob(WORK_PREFIX + "*"))
    for wd in workdirs:
        with contextlib.suppress(OSError, ValueError):
            states.append(json.loads((wd / "state.json").read_text()))
    for ns in _ns_list():
        if ns.startswith(PREFIX):
            _kill_namespace(ns)
            _run("ip", "netns", "del", ns, check=False)
    links = _run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(PREFIX):
            _run("ip", "link", "del", name, check=False)
    if ETC_NETNS.is_dir():
        for entry in ETC_NETNS.glob(PREFIX + "*"):
            shutil.rmtree(entry, ignore_errors=True)
    created = {path for state in states for path in state.get("created", [])}
    if str(ETC_NETNS) in created:
        with contextlib.suppress(OSError):
            ETC_NETNS.rmdir()  # only when empty: someone else's entries stay
    if str(PRIVSEP) in created:
        with contextlib.suppress(OSError):
            PRIVSEP.rmdir()
    if str(RUN_NETNS) in created:
        _remove_run_netns()
    for wd in workdirs:
        shutil.rmtree(wd, ignore_errors=True)


class Host:
    def __init__(self, name: str, index: int, workdir: Path, sshd: bool) -> None:
        self.name = name
        self.ns = netns(name)
        self.address = f"{SUBNET}.{10 + index}"
        self.veth = f"{self.ns}-v"  # the root side: "the switch port"
        self.sshd = sshd
        self.dir = workdir / "hosts" / name
        self.disk = workdir / "disks" / name  # this host's local disk, seen as <workdir>/local
        self.init: subprocess.Popen | None = None
        self.sshd_proc: subprocess.Popen | None = None

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host (its network, host name and mount view)."""
        assert self.init is not None, f"host {self.name} is not up"
        return ["nsenter", "-t", str(self.init.pid), "-n", "-u", "-m", "--", *argv]


class TestHosts:
    """A set of test hosts; use as a context manager (``down`` runs on any exit)."""

    __test__ = False  # not a pytest test class

    def __init__(self, names: list[str] | tuple[str, ...] = ("h1", "h2", "h3"),
                 no_sshd: tuple[str, ...] = (), lost_host_ends_job: bool = True) -> None:
        """``names``: the hosts; ``no_sshd``: hosts without sshd (a launcher that runs no
        ranks); ``lost_host_ends_job``: launch through examples/mpiexec-ssh, which kills
        mpiexec when ssh loses its host, else through plain ssh (MPICH's own behaviour: a
        silent host hangs the job)."""
        self.names = list(names)
        self.no_sshd = set(no_sshd)
        self.lost_host_ends_job = lost_host_ends_job
        self.launcher_env: dict[str, str] = {}  # what mpiexec's environment needs for :attr:`ssh`
        self.hosts: dict[str, Host] = {}
        self.workdir: Path | None = None
        self._lock: socket.socket | None = None
        self._procs: list[subprocess.Popen] = []

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> TestHosts:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> TestHosts:
        self._take_lock()
        cleanup()  # what a crashed earlier run left
        created = [str(p) for p in (ETC_NETNS, PRIVSEP, RUN_NETNS) if not p.exists()]
        reason = unavailable_reason()
        if reason is not None:
            raise HostsUnavailable(reason)
        self.workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
        self.workdir.chmod(0o755)
        (self.workdir / "state.json").write_text(json.dumps({"created": created, "pid": os.getpid()}))
        (self.workdir / "local").mkdir()
        PRIVSEP.mkdir(mode=0o755, exist_ok=True)
        self._make_keys()
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "link", "set", BRIDGE, "up")
        for i, name in enumerate(self.names, start=1):
            self.hosts[name] = Host(name, i, self.workdir, name not in self.no_sshd)
        etc_hosts = "127.0.0.1 localhost\n" + "".join(f"{h.address} {h.name}\n" for h in self.hosts.values())
        for host in self.hosts.values():
            self._make_host(host, etc_hosts)
        self._wait_for_sshd()
        return self

    def down(self) -> None:
        """Remove everything this set (and any earlier crashed set) made. Idempotent."""
        try:
            cleanup(self.workdir) if self.workdir is not None else None
            cleanup()  # never leave a msh-* namespace or link behind
        finally:
            for proc in self._procs:  # reap: every process was killed with its namespace
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.wait(timeout=5)
            self._procs.clear()
            self.hosts.clear()
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _take_lock(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        end = time.monotonic() + 120
        while True:
            try:
                sock.bind(LOCK_NAME)
                break
            except OSError:
                if time.monotonic() > end:
                    sock.close()
                    raise RuntimeError("another set of msh-* test hosts is in use (waited 120 s)") from None
                time.sleep(0.5)
        self._lock = sock

    def _make_keys(self) -> None:
        ssh = self.workdir / "ssh"
        ssh.mkdir(mode=0o700)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "msh-test-hosts", "-f", str(ssh / "id_ed25519"))
        shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
        options = {"IdentityFile": str(ssh / "id_ed25519"), **SSH_CLIENT_OPTIONS}
        (ssh / "config").write_text("Host *\n" + "".join(f"  {k} {v}\n" for k, v in options.items()))
        client = f'{SSH} -F {ssh / "config"}'
        (ssh / "ssh").write_text(f'#!/bin/sh\nexec {client} "$@"\n')  # plain ssh with the run's key
        (ssh / "ssh").chmod(0o755)
        self.launcher_env = {"MPIEXEC_SSH": client, "MPIEXEC_SSH_ALIVE": "1"} if self.lost_host_ends_job else {}

    @property
    def ssh(self) -> Path:
        """For ``mpiexec -launcher ssh -launcher-exec``: examples/mpiexec-ssh (with
        :attr:`launcher_env` in mpiexec's environment), or plain ssh with the run's key and
        options when ``lost_host_ends_job`` is False."""
        return MPIEXEC_SSH if self.lost_host_ends_job else self.workdir / "ssh" / "ssh"

    def _make_host(self, host: Host, etc_hosts: str) -> None:
        host.dir.mkdir(parents=True)
        host.disk.mkdir(parents=True)
        etc = ETC_NETNS / host.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(etc_hosts)
        (etc / "hostname").write_text(host.name + "\n")
        _run("ip", "netns", "add", host.ns)
        _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        _run("ip", "link", "set", host.veth, "master", BRIDGE, "up")
        _run("ip", "-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.ns, "link", "set", "eth0", "up")
        _run("ip", "-n", host.ns, "link", "set", "lo", "up")
        # `ip netns exec` gives a private mount namespace; `unshare --uts` a private host name.
        script = 'hostname "$1" && mount --bind "$2" "$3" && exec sleep infinity'
        host.init = self._spawn(["ip", "netns", "exec", host.ns, "unshare", "--uts", "sh", "-c", script, "sh",
                                 host.name, str(host.disk), str(self.workdir / "local")])
        end = time.monotonic() + 10
        while _run(*host.argv(["hostname"]), check=False).stdout.strip() != host.name:
            if host.init.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"host {host.name} did not come up (init exited {host.init.poll()})")
            time.sleep(0.02)
        if host.sshd:
            conf = host.dir / "sshd_config"
            ssh = self.workdir / "ssh"
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host.dir / "host_key"))
            conf.write_text("\n".join([
                f"ListenAddress {host.address}", "Port 22", f"HostKey {host.dir / 'host_key'}",
                f"PidFile {host.dir / 'sshd.pid'}", f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                "PermitRootLogin yes", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "PrintMotd no", "PrintLastLog no", "UseDNS no",
                "MaxStartups 100", "MaxSessions 100", "LogLevel ERROR", ""]))
            log = (host.dir / "sshd.log").open("w")
            host.sshd_proc = self._spawn(host.argv([SSHD, "-D", "-e", "-f", str(conf)]), stderr=log)
            log.close()

    def _spawn(self, argv: list[str], **kwargs: object) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def _wait_for_sshd(self) -> None:
        """Every sshd answers with its host's name, over ssh from the first host."""
        first = self.hosts[self.names[0]]
        for host in self.hosts.values():
            if not host.sshd:
                continue
            end = time.monotonic() + 20
            while True:
                got = _run(*first.argv([str(self.workdir / "ssh" / "ssh"), host.name, "hostname"]), check=False,
                           timeout=20)
                if got.returncode == 0 and got.stdout.strip() == host.name:
                    break
                if host.sshd_proc.poll() is not None or time.monotonic() > end:
                    log = (host.dir / "sshd.log").read_text()
                    raise RuntimeError(f"sshd on {host.name} does not answer: {got.stderr.strip()} {log}"
                                       f"{_bridge_filter_hint()}")
                time.sleep(0.1)

    # ------------------------------------------------------------------ using the hosts

    def argv(self, host: str, argv: list[str]) -> list[str]:
        return self.hosts[host].argv(argv)

    def run(self, host: str, argv: list[str], timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess:
        """Run ``argv`` on ``host``, wait for it (and raise TimeoutExpired after ``timeout``)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(host, argv), timeout=timeout, **kwargs)

    def popen(self, host: str, argv: list[str], **kwargs: object) -> subprocess.Popen:
        """Start ``argv`` on ``host``; it is killed by :meth:`down` if still running."""
        proc = subprocess.Popen(self.argv(host, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def local(self, host: str) -> Path:
        """Where ``host``'s local disk (``<workdir>/local`` inside it) is, seen from here."""
        return self.hosts[host].disk

    @property
    def local_path(self) -> Path:
        """The path of every host's local disk, as seen inside the hosts."""
        return self.workdir / "local"

    def hostfile(self, path: Path, slots: dict[str, int]) -> Path:
        """An MPICH hostfile as the MPI Operator writes it: ``host:slots`` per line."""
        path.write_text("".join(f"{h}:{n}\n" for h, n in slots.items()))
        return path

    def link_down(self, host: str) -> None:
        """Pull ``host``'s cable: its switch port (the root side of its veth) goes down."""
        _run("ip", "link", "set", self.hosts[host].veth, "down")

    def link_up(self, host: str) -> None:
        _run("ip", "link", "set", self.hosts[host].veth, "up")

    def power_off(self, host: str) -> None:
        """Kill every process of ``host`` (init, sshd, MPI proxies and ranks) at once."""
        _kill_namespace(self.hosts[host].ns)

    def processes(self, host: str) -> list[int]:
        return [int(p) for p in _run("ip", "netns", "pids", self.hosts[host].ns, check=False).stdout.split()]


def main(argv: list[str]) -> int:
    if argv[:1] == ["down"]:
        cleanup()
        print("removed every msh-* test host")
        return 0
    if argv[:1] != ["up"]:
        print(__doc__)
        return 2
    hosts = TestHosts(argv[1:] or ("h1", "h2", "h3"))
    try:
        hosts.up()
    except BaseException:
        hosts.down()
        raise
    for proc in hosts._procs:  # leave them running for `down`
        proc.returncode = 0
    print(f"workdir {hosts.workdir}; ssh client {hosts.ssh}")
    for host in hosts.hosts.values():
        print(f"{host.name} {host.address}: nsenter -t {host.init.pid} -n -u -m -- COMMAND")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
