"""The local AWS endpoint: moto in server mode with our extensions loaded.

Run as ``python -m local.aws.server --port N``; listens on 127.0.0.1 unless told
otherwise (docker-compose binds the container's own interface, published to 127.0.0.1).
Extensions: Glue UpdateJob / BatchStopJobRun (``local/aws/extensions.py``), CloudFormation's
resource types for the package's template (``local/aws/cloudformation.py``), IAM's policy
evaluation once authorization is on (``local/aws/iam_enforcement.py``), S3's checks of
object tag sets (``local/aws/s3_tagging.py``), S3's opaque ETags for SSE-KMS objects
(``local/aws/s3_etags.py``), SNS's of subjects (``local/aws/sns_publish.py``) and a minimal MWAA
control plane (``local/aws/mwaa.py``); zone-state fault injection (``local/aws/faults.py``); past job runs (``local/aws/history.py``);
a memoized host-to-service lookup (:func:`cached_dispatcher`), memoized response
serialization lookups (``local/aws/speed.py``) and HTTP keep-alive (``local/aws/keepalive.py``).

With ``--runs-dir`` (the stack always gives it) the job runs it is given execute with local
Spark (``local/engines``): Glue and EMR Serverless StartJobRun run the script. Stopping the
server (SIGTERM) ends the runs' processes too.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from local.aws import cloudformation, extensions, history, iam_enforcement, s3_etags, s3_tagging, sns_publish, speed
from local.aws.faults import FaultInjection
from local.aws.history import RunHistory
from local.aws.mwaa import MwaaMiddleware


def cached_dispatcher():
    """moto's request dispatcher with its host-to-service lookup worked out once per host.

    For every request moto lists its own package folder (a ``stat`` per service) and tries
    each service's URL patterns, all under one lock; a Spark scan of many small Parquet
    files sends hundreds of ranged GETs, and that lookup was half of each one's server time.
    The answer depends on the host string only, so it is kept.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class CachedDispatcher(DomainDispatcherApplication):
        def __init__(self, create_app):
            super().__init__(create_app)
            self._backend_by_host: dict = {}

        def get_backend_for_host(self, host):  # called with self.lock held
            if host not in self._backend_by_host:
                self._backend_by_host[host] = super().get_backend_for_host(host)
            return self._backend_by_host[host]

    return CachedDispatcher(create_backend_app)


def _start_engines(args: argparse.Namespace) -> None:
    from local.engines import emr_serverless, glue
    from local.engines.spark_process import LIVE, EngineConfig

    config = EngineConfig(
        endpoint_url=f"http://127.0.0.1:{args.port}",
        jars_dir=args.jars_dir or Path(os.environ.get("SPARK_JARS_DIR", ".state/jars")),
        runs_dir=args.runs_dir,
        slots=args.slots,
    )
    emr_serverless.apply(config)
    glue.apply(config)

    def stop(signum, frame):
        LIVE.stop_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--runs-dir", type=Path, help="where job runs execute (omitted: runs only recorded)")
    parser.add_argument("--jars-dir", type=Path, help="Spark's jars for the runs")
    parser.add_argument("--slots", type=int, default=2, help="runs executing at once; the rest queue")
    args = parser.parse_args(argv)
    extensions.apply()
    cloudformation.apply()
    iam_enforcement.apply()  # acts once authorization is turned on (moto's reset-auth)
    s3_tagging.apply()
    s3_etags.apply()
    sns_publish.apply()
    history.apply()
    speed.apply()
    if args.runs_dir:  # after the extensions: the engines wrap some of them
        _start_engines(args)
    from werkzeug.serving import run_simple

    from local.aws.keepalive import KeepAliveRequestHandler

    app = RunHistory(FaultInjection(MwaaMiddleware(cached_dispatcher())))
    run_simple(args.host, args.port, app, threaded=True, request_handler=KeepAliveRequestHandler)


if __name__ == "__main__":
    main()
