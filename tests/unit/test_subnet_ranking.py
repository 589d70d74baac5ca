"""The subnet ranking: examples for each check and strategy, and properties over wide inputs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.vpc.ranking import (
    MIN_START_IPS,
    STRATEGIES,
    Candidate,
    Demand,
    NoHealthyConnection,
    judge,
    rank_connections,
)


def healthy(name: str, free: int, zone: str = "us-east-1a", **kw) -> Candidate:
    base = dict(
        connection=name,
        subnet_id=f"subnet-{name}",
        subnet_state="available",
        zone=zone,
        zone_state="available",
        free_ips=free,
        self_referencing_rule=True,
        s3_route=True,
    )
    base.update(kw)
    return Candidate(**base)


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(found=False), "connection not found"),
        (dict(subnet_id=None), "names no subnet"),
        (dict(connection_type="KAFKA"), "does not pin a subnet"),
        (dict(subnet_state="pending"), "subnet state is pending"),
        (dict(zone_state="impaired"), "state is impaired"),
        (dict(free_ips=1), "Glue needs 2 to start"),
        (dict(free_ips=10, pending_ips=9), "taken by recent runs"),
        (dict(self_referencing_rule=False), "self-referencing"),
        (dict(s3_route=False), "S3 gateway endpoint or NAT"),
    ],
)
def test_each_check_rejects_with_its_reason(change, reason):
    verdict = judge(healthy("c", 100, **change), Demand(workers=10))
    assert not verdict.healthy
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_avoided_zone_is_rejected():
    verdict = judge(healthy("c", 100, zone="us-east-1b"), Demand(10, frozenset({"us-east-1b"})))
    assert not verdict.healthy and "avoid list" in verdict.reasons[0]


def test_capacity_prefers_full_capacity_then_free_ips():
    ranking = rank_connections(
        [healthy("small", 8), healthy("big", 200), healthy("medium", 50), healthy("bad", 300, s3_route=False)],
        Demand(workers=20),
    )
    assert [v.connection for v in ranking.ordered] == ["big", "medium", "small"]
    assert [v.connection for v in ranking.rejected] == ["bad"]
    assert ranking.chosen.full_capacity
    assert "full capacity" in ranking.table() and "rejected" in ranking.table()
    assert ranking.as_dict()["chosen"] == "big"


def test_recent_failures_rank_down():
    ranking = rank_connections([healthy("flaky", 200, recent_failures=2), healthy("steady", 100)], Demand(10))
    assert ranking.chosen.connection == "steady"
    assert "ranked down" in ranking.ordered[1].reasons[-1]


def test_pending_ips_count_against_free_ips():
    ranking = rank_connections([healthy("a", 30, pending_ips=25), healthy("b", 20)], Demand(workers=10))
    assert ranking.chosen.connection == "b"


def test_az_spread_prefers_the_least_loaded_zone():
    candidates = [healthy("a", 200, zone="z1"), healthy("b", 100, zone="z2")]
    ranking = rank_connections(candidates, Demand(10), "az-spread", zone_load={"z1": 20})
    assert ranking.chosen.connection == "b"


def test_weighted_spreads_concurrent_choices():
    candidates = [healthy(f"c{i}", 100 + i) for i in range(6)]
    rng = random.Random(7)
    chosen = {rank_connections(candidates, Demand(10), "weighted", rng).chosen.connection for _ in range(200)}
    assert len(chosen) >= 4, "power of two choices should not herd onto one subnet"
    assert "c0" not in chosen, "the smaller of any pair is never picked first"


def test_no_healthy_candidate_fails_with_one_line_each():
    candidates = [healthy("a", 1), healthy("b", 100, zone_state="impaired"), Candidate("c", found=False)]
    with pytest.raises(NoHealthyConnection) as err:
        rank_connections(candidates, Demand(10))
    lines = str(err.value).splitlines()
    assert len(lines) == 4
    assert lines[1].strip().startswith("- a ") and "Glue needs 2" in lines[1]
    assert "impaired" in lines[2] and "not found" in lines[3]


@pytest.mark.parametrize("bad", [dict(strategy="fastest"), dict(demand=Demand(0))])
def test_bad_inputs_are_named(bad):
    kwargs = dict(candidates=[healthy("a", 10)], demand=Demand(5), strategy="capacity") | bad
    with pytest.raises(ValueError):
        rank_connections(**kwargs)


candidate_st = st.builds(
    Candidate,
    connection=st.text("abcdefgh", min_size=1, max_size=6),
    found=st.booleans(),
    connection_type=st.sampled_from(["NETWORK", "NETWORK", "JDBC", "KAFKA"]),
    subnet_id=st.sampled_from([None, "subnet-1", "subnet-2", "subnet-3"]),
    subnet_state=st.sampled_from(["available", "available", "pending"]),
    zone=st.sampled_from(["z1", "z2", "z3", "z4", "z5", "z6"]),
    zone_state=st.sampled_from(["available", "available", "available", "impaired", "unavailable"]),
    free_ips=st.integers(0, 300),
    pending_ips=st.integers(0, 60),
    self_referencing_rule=st.booleans(),
    s3_route=st.booleans(),
    recent_failures=st.integers(0, 3),
)


@settings(max_examples=400, deadline=None)
@given(
    candidates=st.lists(candidate_st, min_size=1, max_size=20, unique_by=lambda c: c.connection),
    workers=st.integers(1, 60),
    avoid=st.frozensets(st.sampled_from(["z1", "z2", "z3"]), max_size=2),
    strategy=st.sampled_from(STRATEGIES),
    seed=st.integers(0, 2**16),
)
def test_properties(candidates, workers, avoid, strategy, seed):
    demand = Demand(workers, avoid)
    verdicts = [judge(c, demand) for c in candidates]
    any_healthy = any(v.healthy for v in verdicts)
    try:
        ranking = rank_connections(candidates, demand, strategy, random.Random(seed), {"z1": 5})
    except NoHealthyConnection as err:
        assert not any_healthy
        assert len(str(err).splitlines()) == len(candidates) + 1
        return
    assert any_healthy
    # Never an unhealthy pick; every candidate accounted for exactly once.
    assert all(v.healthy for v in ranking.ordered)
    assert all(not v.healthy for v in ranking.rejected)
    assert sorted(v.connection for v in ranking.ordered + ranking.rejected) == sorted(c.connection for c in candidates)
    chosen = ranking.chosen
    assert chosen.zone not in avoid
    assert chosen.usable_ips >= MIN_START_IPS
    # Full capacity first whenever any healthy candidate offers it, whatever the strategy.
    if any(v.full_capacity for v in ranking.ordered):
        assert chosen.full_capacity
        flags = [v.full_capacity for v in ranking.ordered]
        assert flags == sorted(flags, reverse=True)


def test_python_shell_runs_take_one_ip_and_have_no_workers():
    from operators.vpc.ranking import job_workers

    shell = {"Name": "j", "Command": {"Name": "pythonshell"}, "MaxCapacity": 0.0625}
    assert job_workers(shell) == 1
    assert job_workers({**shell, "MaxCapacity": 1.0}) == 1
    with pytest.raises(ValueError, match="Python shell job"):
        job_workers(shell, 4)
    ranking = rank_connections([Candidate("c", subnet_id="s", subnet_state="available", zone="z",
                                          zone_state="available", free_ips=5, self_referencing_rule=True,
                                          s3_route=True)], Demand(workers=job_workers(shell)))  # fmt: skip
    assert ranking.chosen.connection == "c" and ranking.chosen.full_capacity


def test_spark_job_workers_come_from_the_request_the_job_or_its_dpus():
    from operators.vpc.ranking import job_workers

    etl = {"Name": "j", "Command": {"Name": "glueetl"}}
    assert job_workers({**etl, "NumberOfWorkers": 7}) == 7
    assert job_workers({**etl, "NumberOfWorkers": 7}, "12") == 12
    assert job_workers({**etl, "MaxCapacity": 2.5}) == 3
    assert job_workers(etl) == 10
