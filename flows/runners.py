"""Where the train flow's stages run: threads on this machine (the default, as many as cores),
or a Dask cluster: a local one (ASSAY_TASK_RUNNER=dask) or an existing one by address
(ASSAY_DASK_ADDRESS=tcp://scheduler:8786). Read when each run starts, not when the flows are
imported, so the same setting reaches `assay run`, `assay serve` and workers started from a
deployment, and a process that runs several flows follows its environment as it changes."""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

THREAD_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class ChosenPerRun(ThreadPoolTaskRunner):
    """The runner in the `@flow` decorator: Prefect duplicates it for every run, and the
    duplicate is the runner the environment names at that moment."""

    def duplicate(self) -> TaskRunner:
        return task_runner()


def task_runner() -> TaskRunner:
    address = os.environ.get("ASSAY_DASK_ADDRESS")
    if address or os.environ.get("ASSAY_TASK_RUNNER", "threads") == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=address) if address else local_dask(os.cpu_count() or 1)
    return ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1)


def local_dask(workers: int) -> TaskRunner:
    """A local cluster of single-threaded worker processes whose math libraries use as many
    threads as this process's do. Dask limits them to one by default, and floating-point sums
    split over a different number of threads round differently: the weights would differ in
    their last bits from a run with the default runner."""
    import torch
    from prefect_dask import DaskTaskRunner

    threads = str(torch.get_num_threads())
    env = {name: os.environ.get(name, threads) for name in THREAD_SETTINGS}
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "env": env}
    )
