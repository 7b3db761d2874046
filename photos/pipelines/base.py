"""What every analysis pipeline does; the services call these and nothing else."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the Celery config imports this package before Django's apps load
    from ..apply import ApplyResult


class PipelineUnsupported(Exception):
    """The configured pipeline has no such operation (e.g. a bucket backfill locally)."""


class Pipeline(ABC):
    name: str = ""
    # Records arrive from elsewhere (DynamoDB) and can be pulled on demand: the admin's
    # "refresh" button and its sync actions are shown.
    syncs_records: bool = False
    # Stored objects that never had an analysis can be sent for one (analyse_bucket).
    backfills: bool = False

    @abstractmethod
    def enqueue_analysis(self, *, photo_id: int) -> bool:
        """Start the analysis of a newly stored photo (and its thumbnail); True if this
        pipeline put the analysis on a queue, False if something else starts it or the
        queue was unreachable (the sweeper then retries)."""

    @abstractmethod
    def reanalyse(self, *, photo_ids: list[int]) -> int:
        """Analyse these photos again without touching their objects; how many were sent."""

    def erase(self, *, key: str) -> None:
        """Make the analysis of ``key`` unrecoverable before its row goes (a tombstone
        where records live elsewhere). Raises if that cannot be done, so the caller's
        transaction rolls back and nothing is half-erased. Locally the record is the row."""

    def erased_since(self, since: str) -> list[str]:
        """Object keys whose erasure (tombstone) was written after ``since`` (ISO UTC), for
        the check that no bytes outlived them. Locally an erasure is the row's delete."""
        return []

    def sweep(self, *, stuck_after_seconds: int, analyzing_after_seconds: int) -> dict[str, int]:
        """Re-enqueue photos whose analysis was lost; counts of what was found and done."""
        return {"enqueued": 0, "failed": 0, "found": 0}

    def sync(self) -> dict[str, Any]:
        """Pull new analysis records in, where records live outside the database."""
        return {"skipped": f"the {self.name} pipeline writes records straight to the database"}

    def sync_soon(self) -> None:
        """Start a sync on the worker (the admin's "sync everything now")."""
        raise PipelineUnsupported(f"the {self.name} pipeline writes records straight to the database")

    def refresh(self, *, photo_ids: list[int]) -> ApplyResult:
        """Pull these photos' records in now (the admin's refresh)."""
        raise PipelineUnsupported(f"the {self.name} pipeline writes records straight to the database")

    def warm(self) -> None:
        """Prepare a freshly forked worker process (load models)."""

    def without_analysis(self, keys: list[str]) -> list[str]:
        """The stored objects among ``keys`` that never had an analysis (nor an erasure)."""
        raise PipelineUnsupported(f"the {self.name} pipeline has no bucket backfill (it is for PHOTOS_PIPELINE=aws)")

    def backfill(self, objects: list[tuple[str, str, int, str]]) -> set[str]:
        """Ask for analysis of stored objects that never had any: (id, key, size, etag)
        each; the ids accepted."""
        raise PipelineUnsupported(f"the {self.name} pipeline has no bucket backfill (it is for PHOTOS_PIPELINE=aws)")
