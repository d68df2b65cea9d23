"""What a node counts for Prometheus, in a registry of its own (tests run many hubs at once)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

# Seconds: a page or API call takes milliseconds, a clone or an upload seconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The node's counters; the task queue's depth is read from the database when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "amphub_requests",
            "Requests answered, by route family (api, git, lfs, hf, web) and status",
            ["family", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "amphub_request_seconds",
            "Time from a request's headers to the end of its answer, by route family",
            ["family"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.body_bytes = Counter(
            "amphub_body_bytes",
            "Bytes of request bodies in and answers out (a streamed one with its headers),"
            " by route family and direction",
            ["family", "direction"],
            registry=self.registry,
        )
        self.tasks = Gauge(
            "amphub_tasks",
            "Tasks queued and running in the whole hub, by status",
            ["status"],
            registry=self.registry,
        )
        self.task_outcomes = Counter(
            "amphub_task_outcomes",
            "Tasks this node ended, by kind and outcome (succeeded, failed, canceled, handed_back)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.scan_verdicts = Counter(
            "amphub_scan_verdicts",
            "Files this node scanned, by verdict (safe, suspicious, unsafe, error)",
            ["verdict"],
            registry=self.registry,
        )
        self.database_connections = Gauge(
            "amphub_database_connections",
            "This node's connections to PostgreSQL, by pool (statements, locks) and state"
            " (in_use, idle, waiting: requests waiting for a connection)",
            ["pool", "state"],
            registry=self.registry,
        )
        # The series a request touches, by (family, status): labels() takes a lock and
        # builds a key each time, two thirds of the counting's cost (bench/operations.py).
        self._children: dict[tuple[str, int], tuple[Counter, Histogram, Counter, Counter]] = {}

    def request_answered(
        self, family: str, status: int, seconds: float, bytes_in: int, bytes_out: int
    ) -> None:
        """Count one answered request."""
        children = self._children.get((family, status))
        if children is None:
            children = self._children[family, status] = (
                self.requests.labels(family, str(status)),
                self.latency.labels(family),
                self.body_bytes.labels(family, "in"),
                self.body_bytes.labels(family, "out"),
            )
        answered, latency, received, sent = children
        answered.inc()
        latency.observe(seconds)
        received.inc(bytes_in)
        sent.inc(bytes_out)

    def exposition(
        self, unfinished_tasks: dict[str, int], pool_use: dict[str, dict[str, int]]
    ) -> bytes:
        """Every metric in Prometheus's text format, with the queue's depth and pools' use."""
        for status, count in unfinished_tasks.items():
            self.tasks.labels(status).set(count)
        for pool, states in pool_use.items():
            for state, count in states.items():
                self.database_connections.labels(pool, state).set(count)
        return generate_latest(self.registry)
