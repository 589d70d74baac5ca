"""Parse a dags folder the way Airflow does, with the network cut, and describe what it saw.

Run as a script in a fresh interpreter (so imports are measured from zero):
    python tests/dag/inspect_dags.py <dags_folder>
Prints one JSON object: import errors, network attempts, heavy modules loaded by the DAG
files, and per DAG its tags, owners, doc_md, params and the templates its tasks use.
"""

from __future__ import annotations

import json
import socket
import sys

HEAVY = ("pyspark", "pandas", "pyarrow", "boto3", "botocore", "airflow.providers.amazon", "sqlglot", "numpy", "psycopg")
attempts: list[str] = []


def _blocked(self, address, *args, **kwargs):
    attempts.append(repr(address))
    raise OSError(f"network access at DAG parse time: {address}")


def main(folder: str) -> None:
    socket.socket.connect = _blocked  # type: ignore[method-assign]
    socket.create_connection = lambda address, *a, **k: _blocked(None, address)  # type: ignore[assignment]
    socket.getaddrinfo = lambda host, port, *a, **k: _blocked(None, (host, port))  # type: ignore[assignment]
    from pathlib import Path

    from airflow.dag_processing.dagbag import BundleDagBag

    before = set(sys.modules)
    # As the dag processor does: the bundle folder goes on sys.path (MWAA: dags/).
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder), safe_mode=False)
    loaded = sorted({m for m in set(sys.modules) - before if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}})
    heavy = sorted({m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)})
    dags = {}
    for dag_id, dag in bag.dags.items():
        templates = []
        for task in dag.tasks:
            for field in task.template_fields:
                templates.append(json.dumps(getattr(task, field, None), default=str))
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags or []),
            "owners": sorted({t.owner for t in dag.tasks}),
            "doc_md": dag.doc_md or "",
            "params": {k: dag.params.get_param(k).schema for k in dag.params.keys()},
            "param_forms": {
                k: {"default": dag.params.get_param(k).value, "description": dag.params.get_param(k).description}
                for k in dag.params.keys()
            },
            "templates": templates,
            "tasks": len(dag.tasks),
        }
    print(
        json.dumps(
            {"import_errors": bag.import_errors, "network_attempts": attempts, "heavy_modules": heavy, "dags": dags},
            default=str,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
