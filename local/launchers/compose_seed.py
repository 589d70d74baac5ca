"""docker-compose's one-shot seeding: the same world and Variables as the native stack.

Waits for the moto container, seeds it with ``local.seeds.aws_world`` (the package's template
included), writes the Variables into its Secrets Manager (``local.services.stack.publish_variables``)
and the Airflow connections and secrets backend (``stack_connections_env``) as shell exports
to a file on a shared volume; every Airflow container's startup script sources it (MWAA's
startup-script mechanism), so compose and the native stack stay in step.
"""

from __future__ import annotations

import argparse
import shlex
import time
import urllib.request
from pathlib import Path

from local.seeds.aws_world import seed
from local.seeds.tickit import seed_tickit
from local.services.stack import publish_variables, stack_connections_env, stack_variables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--postgres-host", required=True)
    parser.add_argument("--postgres-port", type=int, default=5432)
    parser.add_argument("--postgres-user", default="airflow")
    parser.add_argument("--jars-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed-warehouse", action="store_true", help="(re)create the TICKIT tables in PostgreSQL")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{args.endpoint_url}/moto-api/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    info = {
        "moto": {"endpoint_url": args.endpoint_url},
        "postgres": {"host": args.postgres_host, "port": args.postgres_port, "user": args.postgres_user},
        "seed": seed(args.endpoint_url),
    }
    if args.seed_warehouse:
        info["postgres"]["tickit"] = seed_tickit(args.postgres_host, args.postgres_port, args.postgres_user)
        print(f"warehouse seeded: {info['postgres']['tickit']}")
    publish_variables(args.endpoint_url, stack_variables(info, args.jars_dir))
    env = stack_connections_env(info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    print(f"seeded {args.endpoint_url}; Airflow environment in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
