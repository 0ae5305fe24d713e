"""The transport interface between rank 0 (the coordinator) and the workers.

Messages are those of :mod:`mpisearch.messages`; a transport only moves them
(as one message or a list of them) between ranks.
"""

from __future__ import annotations

from typing import Any, Protocol


class Transport(Protocol):
    """Point-to-point messages between ranks; rank 0 is the coordinator."""

    rank: int
    size: int

    def send(self, msg: Any, dest: int) -> None:
        """Send ``msg`` (a message or a list of messages) to rank ``dest``."""

    def poll(self, timeout: float, max_sleep: float = ...) -> tuple[int, Any] | None:
        """The next (source rank, message), waiting up to ``timeout`` seconds; None if none came.
        ``max_sleep`` caps each sleep while waiting (how late a message may be noticed)."""
