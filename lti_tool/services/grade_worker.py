"""The grade delivery worker: claims due outbox rows and sends them, several at a time.

Runs as ``lti-tool worker`` (production) or as a thread in each web process (the
embedded default). Any number run at once: claims are conditional UPDATEs.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from lti_tool.logs import log_event

from .grades import GradePublisher, claim_due, deliver, purge_finished

log = logging.getLogger("lti_tool.grades")
#: How often a worker deletes old finished outbox rows (see grades.purge_finished).
PURGE_EVERY_SECONDS = 3600.0


class GradeWorker:
    """Delivers outbox rows with up to ``concurrency`` requests in flight."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        publisher: GradePublisher,
        *,
        concurrency: int = 8,
        poll_seconds: float = 1.0,
        name: str | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.publisher = publisher
        self.concurrency = max(1, concurrency)
        self._batch = max(1, self.concurrency // 2)
        self.poll_seconds = poll_seconds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[int, None] = {}
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="grade-delivery")
        self._thread: threading.Thread | None = None
        self.delivered: dict[str, int] = {}

    def wake(self) -> None:
        """Look for due rows now (a new grade was just written)."""
        self._wake.set()

    def _deliver(self, row_pk: int) -> str:
        with self.session_factory() as session:
            try:
                outcome = deliver(session, self.publisher, row_pk, self.name)
            except Exception:
                log.exception("grade delivery crashed on outbox row %s", row_pk)
                session.rollback()
                raise
        with self._lock:
            self.delivered[outcome] = self.delivered.get(outcome, 0) + 1
        return outcome

    def _done(self, row_pk: int) -> None:
        with self._lock:
            self._in_flight.pop(row_pk, None)
        self._wake.set()

    def _finished(self, row_pk: int, _future: Future[str]) -> None:
        self._done(row_pk)

    def run_once(self) -> int:
        """Claim what fits in the free slots and start sending it; returns rows claimed."""
        with self._lock:
            busy = list(self._in_flight)
            free = self.concurrency - len(busy)
        # Claim in batches (half the slots at least) rather than one row per finished
        # request: each claim scans the outbox.
        if free <= 0 or (busy and free < self._batch):
            return 0
        with self.session_factory() as session:
            claimed = claim_due(session, self.name, free, busy)
        for row_pk in claimed:
            with self._lock:  # reserved before submit: a fast delivery may end at once
                self._in_flight[row_pk] = None
            future = self._pool.submit(self._deliver, row_pk)
            future.add_done_callback(functools.partial(self._finished, row_pk))
        return len(claimed)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def run_until_idle(self, timeout: float = 30.0) -> None:
        """Deliver until nothing is due and nothing is in flight (tests, CLI ``--once``)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                claimed = self.run_once()
                if not claimed and not self.in_flight():
                    return
                self._wake.wait(0.05)
                self._wake.clear()
            raise TimeoutError(f"grade outbox not idle after {timeout} s")
        finally:
            timer.cancel()

    def _purge(self) -> None:
        with self.session_factory() as session:
            deleted = purge_finished(session)
        if deleted:
            log_event(log, "grade_outbox_purged", worker=self.name, rows=deleted)

    def run_forever(self) -> None:
        log_event(log, "grade_worker_start", worker=self.name, concurrency=self.concurrency)
        next_purge = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                try:
                    self._purge()
                except Exception:  # housekeeping must never stop delivery
                    log.exception("grade outbox purge failed")
            try:
                claimed = self.run_once()
            except Exception:  # the database was away: try again after a pause
                log.exception("grade worker could not claim rows")
                claimed = 0
            if not claimed:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def start(self) -> None:
        """Run in a daemon thread (the embedded default)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.run_forever, name="grade-worker", daemon=True
            )
            self._thread.start()

    def request_stop(self) -> None:
        """Stop claiming (a signal handler calls this); ``run_forever`` then returns."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming and wait for the requests in flight."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=False)
