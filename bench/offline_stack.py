"""How long the Pulumi program takes under the offline mocks, per stack.

    venv/bin/python bench/offline_stack.py [--repeat N]

Prints the cold first run (includes importing pulumi and pulumi_aws) and the warm runs of the
three bootstrap steps: prod alone, dr from prod's outputs, prod linked to dr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="warm repetitions (default 3)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from caresync_dr.offline.runtime import run_program

    prod = run_program("prod")
    print(f"cold: import + prod          {time.perf_counter() - started:6.2f} s "
          f"({len(prod.resources)} resources)")
    for i in range(args.repeat):
        t0 = time.perf_counter()
        prod = run_program("prod")
        t1 = time.perf_counter()
        dr = run_program("dr", stack_references={"prod": prod.outputs})
        t2 = time.perf_counter()
        run_program("prod", stack_references={"dr": dr.outputs})
        t3 = time.perf_counter()
        print(f"warm {i + 1}: prod {t1 - t0:5.2f} s, dr {t2 - t1:5.2f} s "
              f"({len(dr.resources)} resources), prod linked {t3 - t2:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
