"""The local AWS endpoint: moto in server mode with our extensions loaded.

Run as ``python -m local.moto_server --port N``; listens on 127.0.0.1 unless told
otherwise (docker-compose binds the container's own interface, published to 127.0.0.1).
Extensions: Glue UpdateJob / BatchStopJobRun (``local/moto_ext.py``) and a minimal MWAA
control plane (``local/moto_mwaa.py``); zone-state fault injection (``local/moto_faults.py``).
"""

from __future__ import annotations

import argparse

from local import moto_ext
from local.moto_faults import FaultInjection
from local.moto_mwaa import MwaaMiddleware


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    moto_ext.apply()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import MotoRequestHandler
    from werkzeug.serving import run_simple

    app = FaultInjection(MwaaMiddleware(DomainDispatcherApplication(create_backend_app)))
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
