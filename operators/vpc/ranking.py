"""Which Glue connection (and so which subnet) a job should run on: pure decisions.

Glue takes one IP address (an ENI) per worker from the subnet of the job's first usable
connection, and tries the job's connections in listed order, taking the first that passes
its checks with at least 2 free IPs. A job therefore starts short of workers, or not at
all, when that subnet is short of addresses or its Availability Zone is impaired. These
functions judge every candidate from plain data gathered in a few batched AWS calls, and
order the healthy ones by a strategy; the operator then lists them in that order.

Nothing here does I/O: inputs are dataclasses, outputs are dataclasses, and randomness
comes from the ``random.Random`` passed in, so every decision is reproducible in tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

STRATEGIES = ("capacity", "random", "weighted", "az-spread")
MIN_START_IPS = 2  # Glue's own floor: a connection with fewer free IPs is skipped
# Glue's driver is a worker too, but ENIs for the driver and for the job's own network
# interface appear alongside; reserve one extra address so "full capacity" is not optimistic.
EXTRA_IPS_PER_RUN = 1
DEFAULT_WORKERS = 10  # Glue's default NumberOfWorkers for a job that sets none
PYTHON_SHELL = "pythonshell"


def is_python_shell(job: dict) -> bool:
    """A Python shell job (``Command.Name`` ``pythonshell``): no workers, no worker type."""
    return (job.get("Command") or {}).get("Name") == PYTHON_SHELL


def job_workers(job: dict, requested: int | str | None = None) -> int:
    """How many workers (one IP each) a run of ``job`` takes from its subnet.

    A Python shell run is one process on one ENI whatever its MaxCapacity (0.0625 or 1 DPU),
    so it counts as one worker, and Glue refuses a worker count or type for it. A Spark job
    takes the requested workers, else its NumberOfWorkers, else its MaxCapacity in DPUs
    (legacy Standard workers, one per DPU, rounded up).
    """
    if is_python_shell(job):
        if requested not in (None, ""):
            raise ValueError(f"Glue job {job.get('Name')!r} is a Python shell job: it has no workers to set "
                             f"(num_workers={requested!r}); its size is MaxCapacity, 0.0625 or 1 DPU")  # fmt: skip
        return 1
    if requested not in (None, ""):
        return int(requested)
    if job.get("NumberOfWorkers"):
        return int(job["NumberOfWorkers"])
    if job.get("MaxCapacity"):
        return max(1, math.ceil(float(job["MaxCapacity"])))
    return DEFAULT_WORKERS


@dataclass(frozen=True)
class Candidate:
    """What was observed about one candidate connection at decision time."""

    connection: str
    found: bool = True
    connection_type: str | None = "NETWORK"
    subnet_id: str | None = None
    subnet_state: str | None = None  # EC2 subnet State: "available" / "pending"
    zone: str | None = None
    zone_state: str | None = None  # EC2 AZ State: "available" / "impaired" / "unavailable" / ...
    free_ips: int | None = None  # AvailableIpAddressCount
    pending_ips: int = 0  # IPs recent runs of this operator took but ENIs do not show yet
    self_referencing_rule: bool | None = None  # a security group allows all traffic from itself
    s3_route: bool | None = None  # route table reaches S3 (gateway endpoint or NAT)
    recent_failures: int = 0  # recent runs on this connection that failed with IP/ENI/AZ errors


@dataclass(frozen=True)
class Demand:
    workers: int
    avoid_zones: frozenset[str] = frozenset()

    @property
    def full_capacity_ips(self) -> int:
        return self.workers + EXTRA_IPS_PER_RUN


@dataclass(frozen=True)
class Verdict:
    connection: str
    zone: str | None
    subnet_id: str | None
    usable_ips: int
    healthy: bool
    full_capacity: bool
    reasons: tuple[str, ...] = ()
    recent_failures: int = 0

    def line(self) -> str:
        state = "full capacity" if self.full_capacity else ("usable" if self.healthy else "REJECTED")
        detail = "; ".join(self.reasons) or "all checks passed"
        where = f"{self.subnet_id or '-'} in {self.zone or '-'}"
        return f"{self.connection} ({where}): {state}, {self.usable_ips} free IPs; {detail}"


@dataclass(frozen=True)
class Ranking:
    strategy: str
    demand: Demand
    ordered: tuple[Verdict, ...]  # healthy candidates, best first
    rejected: tuple[Verdict, ...] = field(default_factory=tuple)

    @property
    def chosen(self) -> Verdict:
        return self.ordered[0]

    def table(self) -> str:
        rows = [(str(i + 1), v) for i, v in enumerate(self.ordered)] + [("-", v) for v in self.rejected]
        header = f"{'rank':<5}{'connection':<24}{'zone':<12}{'free':>6}  {'verdict':<14}reasons"
        lines = [header]
        for rank, v in rows:
            verdict = "full capacity" if v.full_capacity else ("usable" if v.healthy else "rejected")
            lines.append(
                f"{rank:<5}{v.connection:<24}{(v.zone or '-'):<12}{v.usable_ips:>6}  {verdict:<14}"
                f"{'; '.join(v.reasons) or 'ok'}"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        def one(v: Verdict, rank: int | None) -> dict:
            return {
                "connection": v.connection,
                "rank": rank,
                "zone": v.zone,
                "subnet_id": v.subnet_id,
                "usable_ips": v.usable_ips,
                "healthy": v.healthy,
                "full_capacity": v.full_capacity,
                "reasons": list(v.reasons),
            }

        return {
            "strategy": self.strategy,
            "workers": self.demand.workers,
            "chosen": self.chosen.connection,
            "candidates": [one(v, i + 1) for i, v in enumerate(self.ordered)] + [one(v, None) for v in self.rejected],
        }


class NoHealthyConnection(RuntimeError):
    """Every candidate failed a check; the message has one line per candidate."""

    def __init__(self, verdicts: Sequence[Verdict], demand: Demand):
        self.verdicts = tuple(verdicts)
        lines = [f"no healthy Glue connection for {demand.workers} workers among {len(verdicts)} candidates:"]
        lines += [f"  - {v.line()}" for v in verdicts]
        super().__init__("\n".join(lines))


def judge(candidate: Candidate, demand: Demand) -> Verdict:
    """Check one candidate; every failed check adds a reason and makes it unhealthy."""
    c = candidate
    reasons: list[str] = []
    usable = max(0, (c.free_ips or 0) - c.pending_ips)
    if not c.found:
        reasons.append("connection not found")
    elif c.connection_type not in ("NETWORK", "JDBC"):
        reasons.append(f"connection type {c.connection_type} does not pin a subnet")
    elif not c.subnet_id:
        reasons.append("connection names no subnet")
    else:
        if c.subnet_state != "available":
            reasons.append(f"subnet state is {c.subnet_state or 'unknown'}")
        if c.zone in demand.avoid_zones:
            reasons.append(f"zone {c.zone} is on the avoid list")
        if c.zone_state != "available":
            reasons.append(f"zone {c.zone or '?'} state is {c.zone_state or 'unknown'}")
        if usable < MIN_START_IPS:
            reasons.append(
                f"only {usable} free IPs ({c.free_ips or 0} free, {c.pending_ips} taken by recent runs); "
                f"Glue needs {MIN_START_IPS} to start"
            )
        if not c.self_referencing_rule:
            reasons.append("no security group with the self-referencing all-traffic inbound rule Glue requires")
        if not c.s3_route:
            reasons.append("route table has no S3 gateway endpoint or NAT route")
    healthy = not reasons
    full = healthy and usable >= demand.full_capacity_ips
    notes = list(reasons)
    if healthy and not full:
        notes.append(f"{usable} free IPs < {demand.full_capacity_ips} for full capacity")
    if c.recent_failures:
        notes.append(f"{c.recent_failures} recent IP/ENI/AZ failures: ranked down")
    return Verdict(
        connection=c.connection,
        zone=c.zone,
        subnet_id=c.subnet_id,
        usable_ips=usable,
        healthy=healthy,
        full_capacity=full,
        reasons=tuple(notes),
        recent_failures=c.recent_failures,
    )


def _capacity_key(v: Verdict) -> tuple:
    return (not v.full_capacity, v.recent_failures > 0, v.recent_failures, -v.usable_ips, v.connection)


def _tiers(verdicts: Iterable[Verdict]) -> list[list[Verdict]]:
    """Full capacity before usable; within each, connections without recent failures first."""
    tiers: dict[tuple[bool, bool], list[Verdict]] = {}
    for v in verdicts:
        tiers.setdefault((not v.full_capacity, v.recent_failures > 0), []).append(v)
    return [sorted(tiers[k], key=lambda v: v.connection) for k in sorted(tiers)]


def order_healthy(
    healthy: Sequence[Verdict],
    strategy: str,
    rng: random.Random,
    zone_load: dict[str, int] | None = None,
) -> list[Verdict]:
    """Order healthy candidates; every strategy keeps full-capacity ones ahead of the rest."""
    if strategy == "capacity":
        return sorted(healthy, key=_capacity_key)
    if strategy == "random":
        out: list[Verdict] = []
        for tier in _tiers(healthy):
            rng.shuffle(tier)
            out += tier
        return out
    if strategy == "weighted":
        # Power of two random choices in the best tier: concurrent jobs spread out instead
        # of all herding onto the one subnet with the most free IPs, yet a bad pick is rare.
        tiers = _tiers(healthy)
        best = tiers[0]
        pair = rng.sample(best, k=min(2, len(best)))
        first = max(pair, key=lambda v: (v.usable_ips, v.connection))
        rest = sorted((v for v in healthy if v is not first), key=_capacity_key)
        return [first, *rest]
    if strategy == "az-spread":
        load = zone_load or {}
        return sorted(
            healthy,
            key=lambda v: (
                not v.full_capacity,
                v.recent_failures > 0,
                load.get(v.zone or "", 0),
                -v.usable_ips,
                v.connection,
            ),
        )
    raise ValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")


def rank_connections(
    candidates: Sequence[Candidate],
    demand: Demand,
    strategy: str = "capacity",
    rng: random.Random | None = None,
    zone_load: dict[str, int] | None = None,
) -> Ranking:
    """Judge every candidate and order the healthy ones; raise when none is healthy."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if demand.workers < 1:
        raise ValueError(f"workers must be at least 1, got {demand.workers}")
    if not candidates:
        raise ValueError("no candidate connections given")
    verdicts = [judge(c, demand) for c in candidates]
    healthy = [v for v in verdicts if v.healthy]
    if not healthy:
        raise NoHealthyConnection(verdicts, demand)
    ordered = order_healthy(healthy, strategy, rng or random.Random(), zone_load)
    rejected = tuple(v for v in verdicts if not v.healthy)
    return Ranking(strategy=strategy, demand=demand, ordered=tuple(ordered), rejected=rejected)


def with_pending(candidates: Sequence[Candidate], pending_by_subnet: dict[str, int]) -> list[Candidate]:
    """Attach the IPs recent runs hold (not yet visible as ENIs) to each candidate."""
    return [replace(c, pending_ips=pending_by_subnet.get(c.subnet_id or "", 0)) for c in candidates]
