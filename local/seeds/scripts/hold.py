"""A job script for tests of what surrounds a run (decisions, retries, stops, concurrency).

It holds its run for ``--seconds`` and ends with ``--exit`` (0 by default). It starts no
Spark session, so a run on the local stack starts in a few seconds.
"""

import argparse
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=float, default=0)
parser.add_argument("--exit", type=int, default=0)
args, _ = parser.parse_known_args()
print(f"holding the run for {args.seconds} s", flush=True)
time.sleep(args.seconds)
sys.exit(args.exit)
