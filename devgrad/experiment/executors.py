"""Where a sweep's runs go: the executor's arguments checked before any folder exists, and the
executor made (the local process pool, or Dask)."""

from __future__ import annotations

from devgrad.backend import device as resolve_device
from devgrad.experiment.choices import EXECUTORS
from devgrad.experiment.dask_pool import DaskPool, check_address, import_distributed
from devgrad.experiment.errors import RunError
from devgrad.experiment.local_pool import LocalPool

__all__ = ["EXECUTORS", "check_devices", "check_executor", "make_executor"]


def _is_client(executor) -> bool:
    return hasattr(executor, "submit") and hasattr(executor, "scheduler")  # a dask.distributed.Client


def check_executor(executor, address: str | None, gpus: int | None) -> None:
    """The executor's mistakes, before any folder exists."""
    if executor == "local" or executor is None:
        if address:
            raise RunError("--address is for --executor dask (the address of a Dask scheduler)")
        if gpus:
            raise RunError("--gpus-per-run needs --executor dask: start one Dask worker per GPU "
                           "(CUDA_VISIBLE_DEVICES=i dask worker ADDRESS --resources GPU=1)")
    elif executor == "dask":
        import_distributed()
        if address:
            check_address(address)
    elif not _is_client(executor):
        raise RunError(f"executor must be one of {', '.join(EXECUTORS)} or a dask.distributed.Client, "
                       f"got {executor!r}")


def check_devices(executor, address: str | None, devices) -> None:
    """Each device the runs ask for exists on this machine, when they run on it (the local pool,
    or a Dask cluster started here): a DeviceError, as ``devgrad run`` gives, before any folder."""
    if executor in ("local", None) or (executor == "dask" and not address):
        for name in sorted(set(devices)):
            resolve_device(name)


def make_executor(executor, jobs: int, runs: int, address: str | None, gpus: int | None):
    """The executor for ``runs`` runs, ``jobs`` at a time (a local pool never starts more workers
    than it has runs); a scheduler that does not answer is a RunError here."""
    check_executor(executor, address, gpus)
    if executor == "local" or executor is None:
        return LocalPool(min(jobs, runs))
    if executor == "dask":
        return DaskPool(jobs, address)
    return DaskPool(jobs, None, client=executor)
