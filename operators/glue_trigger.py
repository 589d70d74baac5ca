"""The wait for a Glue run in the triggerer, which stops the run when a user kills the task.

Airflow 3.3's triggerer calls a trigger's ``on_kill()`` when a user acts on a deferred task
(marks it failed or successful, or clears it), and only then: not on a triggerer restart, a
move to another triggerer, a timeout or a normal end (``BaseTrigger.on_kill``'s contract).
The provider's ``GlueJobCompleteTrigger`` does not define it (its EMR Serverless trigger
cancels the job), and ``GlueJobOperator(stop_job_run_on_kill=True)`` stops the run only while
the task is in a worker. A Glue task killed while deferred, where it spends nearly all its
time, left its run going and billing until its own end. This subclass waits exactly as the
provider's trigger does and adds the stop (BatchStopJobRun, as the operator's own on_kill).

Used by ``SparkScriptOperator`` (for the deferral its ``GlueJobOperator`` asks for) and by
``GlueJobOnHealthiestSubnetOperator``.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.triggers.glue import GlueJobCompleteTrigger


class GlueJobRunTrigger(GlueJobCompleteTrigger):
    """``GlueJobCompleteTrigger`` whose ``on_kill`` stops the run (``stop_on_kill``, on by default)."""

    def __init__(self, *args: Any, stop_on_kill: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_on_kill = stop_on_kill

    @classmethod
    def replacing(cls, trigger: GlueJobCompleteTrigger, stop_on_kill: bool = True) -> GlueJobRunTrigger:
        """The same wait as the provider's ``trigger`` (same run, delay, attempts, connection)."""
        _, kwargs = trigger.serialize()
        return cls(**kwargs, stop_on_kill=stop_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "stop_on_kill": self.stop_on_kill}

    async def on_kill(self) -> None:
        if not self.stop_on_kill:
            self.log.info(
                "Task killed; Glue job %s run %s left running (stop_on_kill is off)", self.job_name, self.run_id
            )
            return
        self.log.info("Task killed: stopping Glue job %s run %s", self.job_name, self.run_id)
        async with await self.hook().get_async_conn() as glue:
            response = await glue.batch_stop_job_run(JobName=self.job_name, JobRunIds=[self.run_id])
        for error in response.get("Errors") or []:
            # A run that ended meanwhile cannot be stopped; Glue says so here rather than raising.
            detail = error.get("ErrorDetail") or {}
            self.log.warning("Glue did not stop run %s: %s %s", self.run_id,
                             detail.get("ErrorCode"), detail.get("ErrorMessage"))  # fmt: skip
