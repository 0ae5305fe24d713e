"""Which communicator a search runs on, and per-rank process settings."""

from __future__ import annotations

import os
from typing import Any

# Variables that launchers set in every rank they start (MPICH/Hydra, Open MPI,
# PMIx, Slurm's PMI2): if none is set, this is a plain one-process run and MPI
# is not even imported (so mpisearch works without an MPI library).
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE",
                      "HYDI_CONTROL_FD", "MPI_LOCALNRANKS")
# Variables through which a user asks for a number of BLAS/OpenMP threads.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MPISEARCH_THREADS")


def launched_by_mpi() -> bool:
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def resolve_comm(comm: Any = None) -> Any:
    """The communicator to use, or None for an in-process run."""
    if comm is None and launched_by_mpi():
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    if comm is not None and comm.Get_size() == 1:
        return None
    return comm


def limit_worker_threads() -> Any:
    """One BLAS/OpenMP thread per worker rank, unless the user set a number."""
    from threadpoolctl import threadpool_limits

    wanted = next((os.environ[v] for v in THREAD_VARIABLES if os.environ.get(v)), None)
    if wanted is None:
        return threadpool_limits(limits=1)
    return threadpool_limits(limits=int(wanted)) if wanted.isdigit() else None
