"""Executors for grids: run a list of independent jobs here (one after another, or N at a time) or on Ray.

``ablate``, ``lr-sweep`` and ``hardcases mine`` describe each run of their grid as a :class:`Job` -- an importable
function (the one a local run calls) and its arguments -- and hand the list to an executor from
:func:`make_executor`. The executor calls ``on_done(outcome)`` in the calling process as each job finishes (the
grid records it then, so an interrupted grid resumes with the finished runs), retries a failed job ``retries``
times, reports a job that still fails with its error instead of stopping, and on Ctrl-C cancels what is still
running and raises :class:`GridInterrupted`, whose message says how to resume.

* ``local`` (the default): the jobs run in this process, one after another; with ``workers`` > 1 in a thread pool
  (for jobs that start a process of their own and wait for it, as ``hardcases mine --jobs N`` does).
* ``ray``: each job is a Ray task (``ray.remote``), on the cluster at ``address`` (``auto``: the one ``ray start``
  started on this machine; ``HOST:PORT`` or ``ray://HOST:PORT``; None: a local Ray started here for the grid and
  stopped after it). Tasks, not Ray Tune trials: the grids already keep their own state (a record per run,
  reused on resume) and their own statistics; Tune would bring a second results store and a scheduler that
  stops trials early, which an ablation must not do. A task asks for ``cpus`` and ``gpus`` (fractions are fine);
  a request no node of the cluster can meet is refused before anything is submitted. With ``fresh_process``
  (the default) a Ray worker process runs one task and exits (``max_calls=1``): every run starts clean, as the
  local per-run subprocess does, and its peak memory is its own.

Where runs write: every job runs with the calling process's working directory (relative recipe, data and output
paths mean on a worker what they mean here) and writes its run directory under the grid's output directory
itself, so on a cluster the project directory, the data and ``--out`` must be on a filesystem every node mounts
at the same path (NFS, a cluster filesystem). A job first checks on its worker that the paths it needs
(``Job.paths``) exist there; a missing one is the run's error, naming the path tried and the worker.

Torch threads: a Ray task sets ``torch.set_num_threads(cpus)`` (and ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` for
the processes it starts), so two 1-CPU runs on two cores do not oversubscribe them.

Ray is an optional dependency (``pip install "nlp-cv-tricks[ray]"``), imported only when a Ray executor runs.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

__all__ = ["Job", "Outcome", "Executor", "LocalExecutor", "RayExecutor", "ExecutorError", "GridInterrupted",
           "make_executor", "EXECUTORS"]

EXECUTORS = ("local", "ray")
# environment passed from the calling process to every Ray task (data root, offline hub, progress settings)
_ENV_PREFIXES = ("NLP_CV_TRICKS", "NCT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")
_CONNECT_TIMEOUT_S = 5.0


class ExecutorError(ValueError):
    """Bad executor settings: an unreachable Ray address, resources no node has, a missing ``ray``."""


class GridInterrupted(KeyboardInterrupt):
    """Ctrl-C during a grid: outstanding jobs were cancelled; ``str()`` says what finished and how to resume."""

    def __init__(self, message: str, finished: int, total: int):
        super().__init__(message)
        self.message, self.finished, self.total = message, finished, total

    def __str__(self) -> str:
        return self.message


@dataclass
class Job:
    """One run of a grid. ``fn(*args, **kwargs)`` is what a local run calls; it must be importable by name
    (a module-level function) to run on Ray. ``paths`` (what -> path) must exist where the job runs: the job's
    error names the first one that does not, and the worker. ``env``: environment variables set for the job."""

    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """A finished job: its ``value`` (None when it raised), its ``error`` (None when it succeeded), how many
    ``attempts`` it took, the ``host`` it ran on, and ``finished`` = how many jobs of the grid are done now."""

    job: Job
    value: Any = None
    error: Optional[str] = None
    attempts: int = 1
    host: Optional[str] = None
    finished: int = 0
    total: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


def _host() -> str:
    return socket.gethostname()


def _missing_path_error(what: str, path: str) -> str:
    shown = os.path.abspath(path)
    return (f"{what} {shown} does not exist on worker {_host()} (pid {os.getpid()}); on a cluster the project, "
            "the data and the grid's --out must be on a filesystem every node mounts at the same path")


def _call(job: Job, cwd: Optional[str] = None, threads: Optional[int] = None) -> dict:
    """Run ``job`` where this is called (a Ray worker, or here). Never raises for the job's own errors: returns
    ``{"value": ..., "error": None | "Type: message", "host": ...}``."""
    host = _host()
    try:
        if cwd is not None:
            if not os.path.isdir(cwd):
                return {"value": None, "error": _missing_path_error("the working directory", cwd), "host": host}
            os.chdir(cwd)
        for what, path in job.paths.items():
            if not os.path.exists(path):
                return {"value": None, "error": _missing_path_error(what, str(path)), "host": host}
        os.environ.update({k: str(v) for k, v in job.env.items()})
        if threads is not None:
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = str(threads)
            import torch

            torch.set_num_threads(threads)
        return {"value": job.fn(*job.args, **job.kwargs), "error": None, "host": host}
    except Exception as e:  # the grid goes on; the caller reports it
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        return {"value": None, "error": f"{type(e).__name__}: {e}{where}", "host": host}


ErrorOf = Callable[[Any], Optional[str]]


class Executor:
    """Runs jobs; see the module docstring. Subclasses implement :meth:`_run`."""

    name = "executor"
    remote = False  # True: the jobs run in other processes, which may be on other machines

    def __init__(self, retries: int = 0, log: Optional[Callable[[str], None]] = None):
        if retries < 0:
            raise ExecutorError(f"--retries must be >= 0, got {retries}")
        self.retries = int(retries)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def run(self, jobs: Sequence[Job], on_done: Callable[[Outcome], None], error_of: Optional[ErrorOf] = None,
            resume_hint: str = "run the same command again") -> list[Outcome]:
        """Run every job; ``on_done`` is called here as each finishes (successful or failed for good).
        ``error_of(value)``: a job that returned a failure instead of raising (None = success). Ctrl-C cancels
        the outstanding jobs and raises :class:`GridInterrupted` (``resume_hint``: how to go on)."""
        jobs = list(jobs)
        keys = [j.key for j in jobs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"job keys must be unique: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
        self._done: list[Outcome] = []
        self._total = len(jobs)
        self._on_done, self._error_of = on_done, error_of
        try:
            self._run(jobs)
        except KeyboardInterrupt:
            self._cancel()
            n = len(self._done)
            raise GridInterrupted(f"interrupted: {n} of the {len(jobs)} runs started here finished and are recorded; "
                                  f"the others were cancelled. To resume, {resume_hint} (finished runs are not "
                                  "redone).", n, len(jobs)) from None
        return self._done

    # -- shared by the subclasses ---------------------------------------------------------------------------
    def _finished(self, job: Job, res: dict, attempt: int) -> bool:
        """Handle one attempt's result; True when the job is done (else it should be tried again)."""
        error = res.get("error")
        if error is None and self._error_of is not None:
            error = self._error_of(res.get("value"))
        host = res.get("host")
        if error is not None and attempt <= self.retries:
            self.log(f"{job.key}: attempt {attempt} of {self.retries + 1} failed{self._on(host)}: {error}; retrying")
            return False
        out = Outcome(job, res.get("value"), error, attempt, host, len(self._done) + 1, self._total)
        self._done.append(out)
        self._on_done(out)
        return True

    def _on(self, host: Optional[str]) -> str:
        return f" on {host}" if host and self.remote else ""

    def _run(self, jobs: list[Job]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cancel(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """Jobs in this process: one after another (``workers=1``) or ``workers`` threads at a time."""

    name = "local"

    def __init__(self, workers: int = 1, retries: int = 0, log=None):
        super().__init__(retries, log)
        if workers < 1:
            raise ExecutorError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self._pool: Optional[ThreadPoolExecutor] = None

    def _run(self, jobs: list[Job]) -> None:
        if self.workers == 1:
            for job in jobs:
                attempt = 1
                while not self._finished(job, _call(job), attempt):
                    attempt += 1
            return
        self._pool = ThreadPoolExecutor(self.workers)
        try:
            running = {self._pool.submit(_call, j): (j, 1) for j in jobs}
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    job, attempt = running.pop(fut)
                    if not self._finished(job, fut.result(), attempt):
                        running[self._pool.submit(_call, job)] = (job, attempt + 1)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _cancel(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _parse_host_port(address: str) -> Optional[tuple[str, int]]:
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _ray():
    from .optional import require

    return require("ray", extra="ray", purpose="--executor ray")


class RayExecutor(Executor):
    """Each job a Ray task (see the module docstring)."""

    name = "ray"
    remote = True

    def __init__(self, address: Optional[str] = None, cpus: float = 1, gpus: float = 0, retries: int = 0,
                 fresh_process: bool = True, local_cpus: Optional[int] = None, log=None):
        super().__init__(retries, log)
        if cpus <= 0:
            raise ExecutorError(f"--cpus-per-run must be > 0, got {cpus:g}")
        if gpus < 0:
            raise ExecutorError(f"--gpus-per-run must be >= 0, got {gpus:g}")
        self.address, self.cpus, self.gpus = address, float(cpus), float(gpus)
        self.fresh_process, self.local_cpus = fresh_process, local_cpus
        self._ray = _ray()
        self._started = False
        self._refs: dict = {}
        self._connect()
        try:
            self._check_resources()
        except ExecutorError:
            self.close()  # a Ray started here for nothing
            raise

    # -- connecting -----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        import logging

        ray = self._ray
        addr = self.address
        if addr not in (None, "", "auto", "local"):
            hp = _parse_host_port(addr)
            if hp is None:
                raise ExecutorError(f"--ray-address {addr!r}: expected auto, HOST:PORT or ray://HOST:PORT")
            try:
                socket.create_connection(hp, timeout=_CONNECT_TIMEOUT_S).close()
            except OSError as e:
                raise ExecutorError(f"cannot reach a Ray cluster at --ray-address {addr} ({e or type(e).__name__}, "
                                    f"waited up to {_CONNECT_TIMEOUT_S:g} s). Is `ray start --head` running there, "
                                    "and is the port open? Leave --ray-address out to start a local Ray.") from None
        if ray.is_initialized():  # a Ray the caller started (ray.init in a script or a test): use it
            return
        kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
        try:
            if addr in (None, "", "local"):
                ray.init(num_cpus=self.local_cpus, include_dashboard=False, **kwargs)
            else:
                ray.init(address=addr, **kwargs)
        except ConnectionError as e:
            raise ExecutorError(f"cannot connect to a Ray cluster at --ray-address {addr}: {e}") from None
        self._started = True

    def _check_resources(self) -> None:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        res = [n.get("Resources", {}) for n in nodes]
        cpu = [r.get("CPU", 0.0) for r in res]
        gpu = [r.get("GPU", 0.0) for r in res]
        have = (f"the cluster has {len(nodes)} node(s) with {sum(cpu):g} CPU(s) and {sum(gpu):g} GPU(s) in all; "
                f"per node: " + ", ".join(f"{n.get('NodeManagerAddress', '?')} {c:g} CPU / {g:g} GPU"
                                          for n, c, g in zip(nodes, cpu, gpu)))
        if self.gpus > max(gpu, default=0.0):
            raise ExecutorError(f"--gpus-per-run {self.gpus:g}: no node can give a run that many GPUs ({have}); "
                                "nothing was submitted")
        if self.cpus > max(cpu, default=0.0):
            raise ExecutorError(f"--cpus-per-run {self.cpus:g}: no node can give a run that many CPUs ({have}); "
                                "nothing was submitted")
        if not any(c >= self.cpus and g >= self.gpus for c, g in zip(cpu, gpu)):
            raise ExecutorError(f"--cpus-per-run {self.cpus:g} with --gpus-per-run {self.gpus:g}: no node has both "
                                f"({have}); nothing was submitted")

    # -- running --------------------------------------------------------------------------------------------
    def _remote(self):
        return self._ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0,
                                max_calls=1 if self.fresh_process else 0)(_call)

    def _submit(self, task, job: Job):
        env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
        job = Job(job.key, job.fn, job.args, job.kwargs, job.paths, {**env, **job.env})
        return task.remote(job, os.getcwd(), max(1, int(self.cpus)))

    def _run(self, jobs: list[Job]) -> None:
        ray = self._ray
        task = self._remote()
        self._refs = {self._submit(task, j): (j, 1) for j in jobs}
        while self._refs:
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=1.0)  # wakes up for Ctrl-C
            for ref in ready:
                job, attempt = self._refs.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as e:  # the worker died (out of memory, killed) or Ray lost the task
                    first = (str(e).strip().splitlines() or [""])[0]
                    res = {"value": None, "error": f"{type(e).__name__}: {first}", "host": None}
                if not self._finished(job, res, attempt):
                    self._refs[self._submit(task, job)] = (job, attempt + 1)

    def _cancel(self) -> None:
        refs = list(self._refs)
        if refs:
            # let replies already on their way land first: force-cancelling a task whose reply is in flight can
            # abort Ray itself (task_manager "Tried to complete task that was not pending", Ray 2.60)
            try:
                _, refs = self._ray.wait(refs, num_returns=len(refs), timeout=0.5)
            except Exception:
                pass
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass
        self._refs = {}

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def make_executor(name: str = "local", *, workers: int = 1, retries: int = 0, address: Optional[str] = None,
                  cpus: float = 1, gpus: float = 0, fresh_process: bool = True, log=None) -> Executor:
    """``local`` or ``ray`` (see the module docstring); a Ray executor connects (or starts Ray) here."""
    if name == "local":
        if address or gpus:
            which = "--ray-address" if address else "--gpus-per-run"
            raise ExecutorError(f"{which} needs --executor ray (the local executor runs on this machine's devices)")
        return LocalExecutor(workers, retries, log)
    if name == "ray":
        return RayExecutor(address, cpus, gpus, retries, fresh_process, log=log)
    raise ExecutorError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
