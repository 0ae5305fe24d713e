"""Transports between the coordinator (rank 0) and the workers."""

from ._base import COORDINATOR, Bye, CancelTask, Result, RunTask, Stop, Transport
from .local import LocalTransport

__all__ = ["COORDINATOR", "Bye", "CancelTask", "LocalTransport", "Result", "RunTask", "Stop", "Transport"]
