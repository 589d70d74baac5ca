"""The local AWS endpoint: moto in server mode with our extensions loaded.

Run as ``python -m local.moto_server --port N``; listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse

from local import moto_ext


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    moto_ext.apply()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    main()
