"""Where ``pl.search`` evaluates trials: threads (default), local processes, or Ray.

The driver (the process that called ``pl.search``) is always the one that proposes, records and
feeds back; a backend only runs ``evaluate(example)`` somewhere and hands back the outcome. So
the store has a single writer whatever the backend, and feedback stays asynchronous: the driver
records each trial as soon as it finishes and proposes the next one without waiting for the
slowest.

A worker that dies in the middle of a trial (the process exits or is killed, Ray reports a
crashed worker or a dead node) is not an error of the trial: the attempt is recorded as failed
with the reason, and the trial is re-run with the same DNA up to ``retries`` times. A trial is
therefore never lost (it ends complete, failed or infeasible) nor duplicated (it keeps its id;
its ``attempts`` count grows, and the reasons of the failed attempts are kept under the metric
``attempt_errors``). An exception raised by ``evaluate`` is a result, not a crash: the trial
fails and is not retried.

Example:
    >>> import pliant as pl
    >>> from pliant.flows.backends import ProcessBackend, RayBackend
    >>> ProcessBackend()
    ProcessBackend(start_method='spawn')
    >>> RayBackend(num_cpus=2)
    RayBackend(address=None, num_cpus=2, num_gpus=0)
"""

from __future__ import annotations

import contextlib
import math
import pickle
import signal
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from pliant.flows.study import StudyEngine, Trial

RAY_EXTRA = 'pip install "pliant[ray]"'
BACKENDS = ("threads", "processes", "ray")


class Outcome(NamedTuple):
    """What a backend hands back for one attempt of a trial.

    ``kind`` is ``'ok'`` (``value`` is what evaluate returned), ``'error'`` (evaluate raised or
    its result could not be returned; ``value`` is the message) or ``'crash'`` (the worker died;
    ``value`` is the reason and the trial may be retried).
    """

    trial_id: int
    kind: str
    value: Any
    elapsed: float


class Session:
    """A backend at work for one search: submit attempts, wait for outcomes, close."""

    def submit(self, trial: Trial) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Outcomes of finished attempts; blocks until one is ready or ``timeout`` passes."""
        raise NotImplementedError

    def started_at(self, trial_id: int) -> float | None:
        """When the attempt began to run (``time.perf_counter``); None while it waits."""
        raise NotImplementedError

    def cancel(self, trial_id: int) -> None:
        """Stops a running attempt (its outcome is never reported)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Backend:
    """Base class of execution backends (see the module docstring)."""

    name = "backend"

    def open(self, evaluate: Callable[[Any], Any], workers: int) -> Session:
        """Starts what the search needs (processes, a Ray connection) and returns a session."""
        raise NotImplementedError


class ThreadBackend(Backend):
    """Trials in threads of the driver process (the default; no start-up, no serialization).

    Example:
        >>> ThreadBackend()
        ThreadBackend()
    """

    name = "threads"

    def __repr__(self) -> str:
        return "ThreadBackend()"


def resolve_backend(backend: Any) -> Backend | None:
    """Normalizes ``pl.search(backend=...)``; None means the built-in thread path.

    Raises:
        ValueError: for an unknown name.
        TypeError: for something that is not a name or a Backend.
        ImportError: for ``'ray'`` without Ray installed (naming the extra).

    Example:
        >>> resolve_backend("processes")
        ProcessBackend(start_method='spawn')
        >>> resolve_backend("threads") is None
        True
    """
    if isinstance(backend, str):
        if backend == "threads":
            return None
        if backend == "processes":
            return ProcessBackend()
        if backend == "ray":
            _import_ray()
            return RayBackend()
        raise ValueError(f"backend must be one of {BACKENDS} or a Backend, got {backend!r}")
    if isinstance(backend, ThreadBackend):
        return None
    if isinstance(backend, Backend):
        if isinstance(backend, RayBackend):
            _import_ray()
        return backend
    raise TypeError(
        f"backend must be one of {BACKENDS} or a pliant.flows.Backend (e.g. "
        f"pl.flows.RayBackend(address=...)), got {backend!r}"
    )


# -- serialization ---------------------------------------------------------------------------
def _dumps(obj: Any) -> bytes:
    """Pickles for in-memory IPC (cloudpickle when present: closures and lambdas travel too)."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with the dev and ray extras
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


# -- local processes -------------------------------------------------------------------------
def _process_worker(conn: Connection, payload: bytes) -> None:
    """Main loop of a worker process: receive (trial id, example), evaluate, send the outcome."""
    from pliant.flows.search import _call

    # Ctrl-C goes to the whole process group: the driver handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    evaluate = None
    broken = None
    try:
        evaluate = pickle.loads(payload)
    except Exception as e:  # e.g. evaluate's module cannot be imported here
        broken = f"evaluate could not be loaded in the worker process: {type(e).__name__}: {e}"
    conn.send_bytes(_READY)  # trial timeouts count from here, not from the spawn
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not data:  # the driver's "stop"
            return
        start = time.perf_counter()
        try:
            trial_id, example = pickle.loads(data)
        except Exception as e:  # the driver knows which trial this worker has
            trial_id, kind, value = -1, "error", f"the example could not be loaded: {e}"
        else:
            if broken is not None:
                kind, value = "error", broken
            else:
                kind, value = _call(evaluate, example)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        try:
            out = _dumps((trial_id, kind, value, elapsed))
        except Exception as e:
            message = f"the result of evaluate could not be sent to the driver: {e}"
            out = _dumps((trial_id, "error", message, elapsed))
        try:
            conn.send_bytes(out)
        except OSError:  # the driver died (BrokenPipeError): its store re-runs the trial
            return


_READY = b"ready"


class _Worker:
    def __init__(self, process: Any, conn: Connection):
        self.process = process
        self.conn = conn
        self.trial_id: int | None = None
        self.submitted = 0.0
        self.ready_at: float | None = None

    def started_at(self) -> float | None:
        return None if self.ready_at is None else max(self.submitted, self.ready_at)


class ProcessBackend(Backend):
    """Trials in local worker processes (one per worker, reused across trials).

    ``evaluate`` is sent to each worker once, and each example with its trial, through pipes in
    memory (with cloudpickle, so closures and lambdas work; nothing is written to disk). A
    worker that dies is replaced; a trial that exceeds ``timeout`` has its worker killed, so
    unlike a thread it really stops.

    Args:
        start_method: the multiprocessing start method; ``'spawn'`` (default) is safe with JAX
            and threads in the driver.

    Example:
        >>> import pliant as pl
        >>> ProcessBackend(start_method="spawn").name
        'processes'
    """

    name = "processes"

    def __init__(self, start_method: str = "spawn"):
        import multiprocessing as mp  # here: `import pliant` stays cheap

        if start_method not in mp.get_all_start_methods():
            raise ValueError(
                f"start_method must be one of {mp.get_all_start_methods()}, got {start_method!r}"
            )
        self.start_method = start_method

    def __repr__(self) -> str:
        return f"ProcessBackend(start_method={self.start_method!r})"

    def open(self, evaluate: Callable[[Any], Any], workers: int) -> Session:
        return _ProcessSession(self, evaluate, workers)


class _ProcessSession(Session):
    def __init__(self, backend: ProcessBackend, evaluate: Callable[[Any], Any], workers: int):
        import multiprocessing as mp

        self.ctx = mp.get_context(backend.start_method)
        try:
            self.payload = _dumps(evaluate)
        except Exception as e:
            raise TypeError(
                f"evaluate {evaluate!r} cannot be sent to a worker process ({type(e).__name__}: "
                f"{e}); define it at module level or use backend='threads'"
            ) from None
        self.workers: list[_Worker] = []
        self.size = workers
        try:  # start every worker now: their start-up overlaps
            for _ in range(workers):
                self.workers.append(self._spawn())
        except BaseException:
            self.close()
            raise

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe(duplex=True)
        process = self.ctx.Process(  # type: ignore[attr-defined]
            target=_process_worker, args=(child, self.payload), name="pliant-trial", daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _retire(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)

    def submit(self, trial: Trial) -> None:
        try:
            data = _dumps((trial.id, trial.example))
        except Exception as e:
            raise TypeError(
                f"trial {trial.id}: its example cannot be sent to a worker process "
                f"({type(e).__name__}: {e}); use backend='threads'"
            ) from None
        for _ in range(3):
            idle = [w for w in self.workers if w.trial_id is None]
            if not idle:
                if len(self.workers) >= self.size:
                    raise RuntimeError("no idle worker process: submit after wait()")
                self.workers.append(self._spawn())
                continue
            worker = idle[0]
            try:
                worker.conn.send_bytes(data)
            except (BrokenPipeError, EOFError, OSError):  # it died while idle: replace it
                self._retire(worker)
                continue
            worker.trial_id = trial.id
            worker.submitted = time.perf_counter()
            return
        raise RuntimeError("worker processes keep dying before they receive a trial")

    def started_at(self, trial_id: int) -> float | None:
        for worker in self.workers:
            if worker.trial_id == trial_id:
                return worker.started_at()
        return None

    def wait(self, timeout: float | None) -> list[Outcome]:
        # Busy workers, and starting ones (their "ready" starts the clock of a trial's timeout).
        watched = [w for w in self.workers if w.trial_id is not None or w.ready_at is None]
        if not any(w.trial_id is not None for w in watched):
            return []
        conns = [w.conn for w in watched] + [w.process.sentinel for w in watched]
        from multiprocessing.connection import wait as wait_any

        ready = set(wait_any(conns, timeout))
        out: list[Outcome] = []
        for worker in watched:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            trial_id = worker.trial_id
            eof = False
            try:
                while worker.conn.poll():
                    data = worker.conn.recv_bytes()
                    if data == _READY:
                        worker.ready_at = time.perf_counter()
                        continue
                    _, kind, value, elapsed = pickle.loads(data)
                    worker.trial_id = None
                    assert trial_id is not None
                    out.append(Outcome(trial_id, kind, value, elapsed))
            except (EOFError, OSError):
                eof = True  # its end of the pipe is closed: it died or is dying
            if worker.trial_id is None:
                if eof or not worker.process.is_alive():  # died while idle: replaced on demand
                    self._retire(worker)
                continue
            if not eof and worker.process.is_alive():
                continue  # a "ready" message, or a spurious wake-up
            worker.process.join(5.0)
            code = worker.process.exitcode
            if code is None:
                how = "it closed its pipe"
            elif code < 0:
                how = f"killed by {_signal_name(-code)}"
            else:
                how = f"exit code {code}"
            begin = worker.started_at() or worker.submitted
            reason = (
                f"WorkerCrashedError: the worker process (pid {worker.process.pid}) died while "
                f"evaluating the trial ({how})"
            )
            self._retire(worker)
            assert trial_id is not None
            out.append(Outcome(trial_id, "crash", reason, time.perf_counter() - begin))
        return out

    def cancel(self, trial_id: int) -> None:
        for worker in list(self.workers):
            if worker.trial_id == trial_id:
                self._retire(worker)

    def close(self) -> None:
        for worker in self.workers:
            if worker.trial_id is None and worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.conn.send_bytes(b"")
        deadline = time.monotonic() + 5.0
        for worker in list(self.workers):
            if worker.trial_id is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            self._retire(worker)


# -- Ray -------------------------------------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            f"backend='ray' needs Ray, which is not installed; install the extra: {RAY_EXTRA}"
        ) from None
    return ray


def _ray_trial(evaluate: Callable[[Any], Any], example: Any) -> tuple[str, Any, float]:
    """The Ray task of one attempt (runs in a Ray worker)."""
    from pliant.flows.search import _call

    start = time.perf_counter()
    kind, value = _call(evaluate, example)
    return kind, value, time.perf_counter() - start


class RayBackend(Backend):
    """Trials as Ray tasks: on a local Ray started for the search, or on a cluster.

    If Ray is already initialized in the driver, that connection is used and left as it is.
    Otherwise pliant connects to ``address`` (an existing cluster; pliant must be importable on
    its workers, e.g. through ``runtime_env={'pip': [...]}``) or, without an address, starts a
    local Ray with ``workers * num_cpus`` CPUs and no dashboard; either way it shuts the
    connection (and a local Ray with it) down when the search ends, leaving no processes.

    Ray 2.60 turns token authentication on by default for a new local Ray and writes a token to
    ``~/.ray/auth_token`` on the first start; pliant leaves that to Ray (set
    ``RAY_AUTH_MODE=disabled`` to opt out), and works either way.

    Args:
        address: a Ray cluster address (``'ray://host:10001'``, ``'auto'``), or None.
        num_cpus: CPUs each trial reserves (Ray schedules no more trials than fit).
        num_gpus: GPUs each trial reserves (fractions share a GPU).
        resources: other custom Ray resources per trial.
        runtime_env: a Ray runtime environment for the trials.
        init_kwargs: more arguments for ``ray.init`` when pliant starts or connects to Ray.

    Example:
        >>> RayBackend(address="auto", num_gpus=0.5).num_gpus
        0.5
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        num_gpus: float = 0,
        resources: Mapping[str, float] | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ):
        for label, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if not (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0):
                raise ValueError(f"RayBackend: {label} must be a number >= 0, got {v!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.resources = dict(resources or {})
        self.runtime_env = dict(runtime_env) if runtime_env is not None else None
        self.init_kwargs = dict(init_kwargs or {})

    def __repr__(self) -> str:
        return (
            f"RayBackend(address={self.address!r}, num_cpus={self.num_cpus!r}, "
            f"num_gpus={self.num_gpus!r})"
        )

    def open(self, evaluate: Callable[[Any], Any], workers: int) -> Session:
        return _RaySession(self, evaluate, workers)


class _RaySession(Session):
    def __init__(self, backend: RayBackend, evaluate: Callable[[Any], Any], workers: int):
        ray = self.ray = _import_ray()
        self.owned = False
        options: dict[str, Any] = {
            "num_cpus": backend.num_cpus,
            "num_gpus": backend.num_gpus,
            "max_retries": 0,  # retries are pliant's, so that each one is recorded
        }
        if backend.resources:
            options["resources"] = backend.resources
        if not ray.is_initialized():
            kwargs = dict(backend.init_kwargs)
            if backend.address is not None:
                kwargs["address"] = backend.address
            else:  # a new Ray of our own, even where a `ray start` cluster runs
                kwargs["address"] = "local"
                kwargs.setdefault("num_cpus", max(1, math.ceil(workers * backend.num_cpus)))
                kwargs.setdefault("include_dashboard", False)
            if backend.runtime_env is not None:
                kwargs["runtime_env"] = backend.runtime_env
            ray.init(**kwargs)
            self.owned = True
        elif backend.runtime_env is not None:
            options["runtime_env"] = backend.runtime_env
        try:
            self.task = ray.remote(_ray_trial).options(**options)
            self.evaluate_ref = ray.put(evaluate)
        except BaseException:
            self.close()
            raise
        self.refs: dict[Any, tuple[int, float]] = {}

    def submit(self, trial: Trial) -> None:
        ref = self.task.remote(self.evaluate_ref, trial.example)
        self.refs[ref] = (trial.id, time.perf_counter())

    def wait(self, timeout: float | None) -> list[Outcome]:
        ray = self.ray
        pending = list(self.refs)
        if not pending:
            return []
        ready, rest = ray.wait(pending, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready = ready + more
        out: list[Outcome] = []
        for ref in ready:
            trial_id, start = self.refs.pop(ref)
            try:
                kind, value, elapsed = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                continue
            except ray.exceptions.RayTaskError as e:  # raised outside evaluate, e.g. unpickling
                out.append(Outcome(trial_id, "error", _ray_message(e), time.perf_counter() - start))
            except ray.exceptions.RayError as e:  # crashed worker, dead node, out of memory
                reason = f"{type(e).__name__}: {_ray_message(e)}"
                out.append(Outcome(trial_id, "crash", reason, time.perf_counter() - start))
            else:
                out.append(Outcome(trial_id, kind, value, elapsed))
        return out

    def started_at(self, trial_id: int) -> float | None:
        for tid, start in self.refs.values():
            if tid == trial_id:
                return start
        return None

    def cancel(self, trial_id: int) -> None:
        for ref, (tid, _) in list(self.refs.items()):
            if tid == trial_id:
                del self.refs[ref]
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        for ref in list(getattr(self, "refs", {})):
            with contextlib.suppress(Exception):  # already finished or gone
                self.ray.cancel(ref, force=True)
        self.refs = {}
        if self.owned:
            self.ray.shutdown()
            self.owned = False


def _ray_message(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- the loop --------------------------------------------------------------------------------
def run_trials(
    backend: Backend,
    engine: StudyEngine,
    evaluate: Callable[[Any], Any],
    next_trial: Callable[[], Trial | None],
    record: Callable[[Trial, str, Any, float], None],
    workers: int,
    timeout: float | None,
    retries: int,
) -> None:
    """Runs trials on a backend until ``next_trial`` has no more (used by ``pl.search``).

    Keeps up to ``workers`` attempts running, records each outcome as it arrives (the driver is
    the only writer), kills attempts that exceed ``timeout``, and re-runs a trial whose worker
    died up to ``retries`` times (each failed attempt recorded first).
    """
    from pliant.flows.context import _takes_trial
    from pliant.flows.search import _outcome

    if _takes_trial(evaluate):
        raise ValueError(
            f"evaluate takes a trial handle (example, trial); the {backend.name} backend passes "
            f"the example only for now: use backend='threads', or evaluate(example)"
        )
    metric = engine.objectives[0].metric
    session = backend.open(evaluate, workers)
    running: dict[int, Trial] = {}
    again: list[Trial] = []  # trials to re-run after a crash, before any new proposal
    errors: dict[int, list[str]] = {}
    try:
        while True:
            while len(running) < workers:
                trial = again.pop(0) if again else next_trial()
                if trial is None:
                    break
                try:
                    session.submit(trial)
                except TypeError as e:  # its example cannot be sent: the trial fails
                    record(trial, "error", str(e), 0.0)
                    continue
                running[trial.id] = trial
            if not running:
                break
            wait = None
            if timeout is not None:
                begun = [session.started_at(i) for i in running]
                oldest = min((b for b in begun if b is not None), default=None)
                now = time.perf_counter()
                wait = timeout if oldest is None else max(0.0, oldest + timeout - now)
            for trial_id, kind, value, elapsed in session.wait(wait):
                if trial_id not in running:
                    continue  # an attempt already given up (timed out)
                trial = running.pop(trial_id)
                past = errors.get(trial_id, [])
                if kind == "crash":
                    past = errors.setdefault(trial_id, [])
                    past.append(f"attempt {trial.attempt}: {value}")
                    if len(past) <= retries:
                        again.append(engine.retry(trial, str(value), {"elapsed_s": elapsed}))
                        continue
                    kind, value = "error", "; ".join(past)
                elif past:  # a re-run after a crash: keep the reasons of the failed attempts
                    if kind == "ok":
                        kind, value = _outcome(value, metric)
                    if kind == "ok":
                        value = {**value, "attempt_errors": list(past)}
                    else:
                        value = "; ".join([*past, f"attempt {trial.attempt}: {value}"])
                record(trial, kind, value, elapsed)
            if timeout is not None:
                now = time.perf_counter()
                for trial_id, trial in list(running.items()):
                    start = session.started_at(trial_id)
                    if start is not None and now - start >= timeout:
                        session.cancel(trial_id)
                        del running[trial_id]
                        message = f"TimeoutError: the trial took longer than {timeout:g} s"
                        record(trial, "error", message, now - start)
    finally:
        session.close()
