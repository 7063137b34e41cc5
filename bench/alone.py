"""torch timed alone, in its own process: the check on the in-process figures.

    python -m bench.alone THREADS BLOCK_SECONDS < cases.json   (prints JSON)

cases.json: a list of cases (bench.cases.Case's fields), each with "rounds".

In this process NumPy does no matrix product, so no OpenBLAS thread ever spins next to
torch's. If torch's in-process figure is much slower than this one, the pair was not
measured fairly (see bench.timing); if the two agree, the in-process ratios stand.
"""

from __future__ import annotations

import json
import sys
import warnings

from bench.env import pin_threads


def main(argv: list[str]) -> int:
    threads, block_seconds = int(argv[0]), float(argv[1])
    pin_threads(threads)
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    import torch

    from bench.cases import Case, torch_step
    from bench.timing import repeated

    torch.set_num_threads(threads)
    results = []
    for fields in json.load(sys.stdin):
        rounds = fields.pop("rounds")
        case = Case(**fields)
        timing = repeated(torch_step(case), block_seconds=block_seconds, rounds=rounds,
                          quick=False)
        results.append({"case": fields, "seconds": timing["seconds"]})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
