"""A real single-node SLURM cluster on this machine, for the cluster workflow test.

Debian's ``slurm-wlm`` and ``munge`` packages: munged for authentication, slurmctld and
slurmd on localhost, configured in a temporary directory (``SLURM_CONF`` points clients
there).  No accounting daemon runs, so jobs are tracked with squeue (``MinJobAge`` keeps
finished jobs visible long enough for the executor plugin to see them end).  A fake GPU
(``gres.conf`` with ``File=/dev/null``) lets the training rule's ``gpu=1`` schedule, and
the node claims more CPUs and memory than the machine has (``config_overrides``) so that
the production profile's requests fit without editing them.

Job steps (``srun`` inside a batch job) find the cluster only through the default config
path, so the config is written to ``/etc/slurm/slurm.conf`` (root, as on CI) and removed
again at the end; a machine that already has a SLURM config of its own is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by odflow's test suite; removed when the test ends\n"


def missing_binaries() -> list[str]:
    return [name for name in SLURM_BINARIES if shutil.which(name) is None]


def cannot_run_reason() -> str | None:
    """Why a test cluster cannot start here, or None."""
    if missing := missing_binaries():
        return f"SLURM is not installed (missing {', '.join(missing)}: apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd needs root"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARKER):
        return f"{SYSTEM_CONF} belongs to a real cluster; not touching it"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SlurmCluster:
    root: Path
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return SYSTEM_CONF

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ctl_port, d_port = _free_port(), _free_port()
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(MARKER + f"""\
ClusterName=odflowtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctl_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/run/slurmctld.pid
SlurmdPidFile={self.root}/run/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
MpiDefault=none
GresTypes=gpu
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={self.node} NodeAddr=127.0.0.1 CPUs=16 RealMemory=64000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        (self.conf.parent / "gres.conf").write_text(MARKER + f"NodeName={self.node} Name=gpu File=/dev/null\n")

    def _spawn(self, *args: str) -> None:
        with open(self.root / "log" / f"{Path(args[0]).name}.out", "ab") as log:
            self.processes.append(subprocess.Popen(args, env=self.env, stdout=log, stderr=log,
                                                   start_new_session=True))

    def start(self, timeout: float = 60.0) -> None:
        self.write_config()
        if subprocess.run(["pgrep", "-x", "munged"], capture_output=True, check=False).returncode != 0:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-N", self.node, "-f", str(self.conf))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env,
                                   capture_output=True, text=True, check=False).stdout.strip()
            if state in ("idle", "mixed"):
                return
            time.sleep(1)
        raise RuntimeError(f"SLURM node not idle after {timeout:.0f} s (state {state!r}); "
                           f"logs in {self.root / 'log'}:\n{self.logs()}")

    def logs(self) -> str:
        texts = []
        for path in sorted((self.root / "log").glob("*")):
            texts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def stop(self) -> None:
        subprocess.run(["scancel", "--user", "root"], env=self.env, capture_output=True,
                       check=False)
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for path in (self.conf, self.conf.parent / "gres.conf"):
            if path.exists() and path.read_text().startswith(MARKER):
                path.unlink()
