"""The one decision path for a Glue job's VPC connections: read their health, rank them.

Both the healthiest-subnet operator and ``SparkScriptOperator`` (a Spark task given Glue
connections) call :func:`choose_connections`, so a connection is judged by the same checks,
the same pending-IP accounting of the job's live runs and the same strategy wherever it is
used. The clients come from the caller (the provider's hooks), so nothing here knows Airflow.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from operators.vpc.health import CallCounter, RunHistory, gather_candidates
from operators.vpc.ranking import Demand, Ranking, rank_connections


def choose_connections(
    glue: Any,
    ec2: Any,
    job_name: str,
    connections: Sequence[str],
    workers: int,
    strategy: str = "capacity",
    avoid_zones: Iterable[str] = (),
    seed: int | None = None,
    calls: CallCounter | None = None,
) -> tuple[Ranking, RunHistory]:
    """Rank ``connections`` for a run of ``job_name`` with ``workers`` workers.

    Raises ``NoHealthyConnection`` (one line per candidate saying why) when none passes.
    """
    candidates, history = gather_candidates(glue, ec2, job_name, connections, calls, default_workers=workers)
    zone_load: dict[str, int] = {}
    for c in candidates:
        if c.zone:
            zone_load[c.zone] = zone_load.get(c.zone, 0) + c.pending_ips
    demand = Demand(workers=workers, avoid_zones=frozenset(avoid_zones or ()))
    rng = random.Random(seed) if seed is not None else random.Random()
    return rank_connections(candidates, demand, strategy, rng, zone_load), history
