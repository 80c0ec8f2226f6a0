"""`make bench`: every benchmark, then one table of workload, figure, baseline, ratio and target."""

from __future__ import annotations

import sys

from benchmarks import compliance, enablement, expiry, health, hook, reset

BENCHMARKS = {"health": health.main, "enablement": enablement.main, "hook": hook.main, "reset": reset.main,
              "compliance": compliance.main, "expiry": expiry.main}


def main() -> int:
    rows = []
    for name, run in BENCHMARKS.items():
        print(f"== {name}", flush=True)
        rows.append((name, run([])))
    print("\n| benchmark | workload | figure | baseline | ratio | target |\n|---|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['workload']} | {row['figure']} | {row['baseline']} | {row['ratio']} | {row['target']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
