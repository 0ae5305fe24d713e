"""Transports between the coordinator (rank 0) and the workers: the interface here;
``local`` (in-process) and ``mpi`` (mpi4py) implement it."""

from ._base import Transport

__all__ = ["Transport"]
