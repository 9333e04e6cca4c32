"""Do batch sizes in one power-of-two bucket share the picker's choice? Measured per batch size.

For each layer of ``bench_torch.py`` and each batch size 1..8, the picker
measures afresh (no cache, inference). The picker shares a choice across a
bucket (1, 2, 3-4, 5-8): the first batch size measured in it decides, in the
order a growing workload meets them (3 for 3-4, 5 for 5-8). Where another
batch size in the bucket chose differently, the bucket's choice and its own
are timed against each other at that batch size (interleaved medians): the
"penalty" is how much slower the shared choice runs there (1.00x: none).

    python benchmarks/bench_buckets.py          (writes benchmarks/results/buckets.md)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python benchmarks/bench_buckets.py --budget 0.5 --only DCGAN")
    parser.add_argument("--budget", type=float, default=0.5, help="measuring budget per batch size, s (default 0.5)")
    parser.add_argument("--only", default="", help="layers whose name contains this text")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds for a penalty (default 15)")
    parser.add_argument("--out", default=str(HERE / "results" / "buckets.md"))
    options = parser.parse_args()
    os.environ["TCONV_CHOICE_CACHE"] = "0"
    sys.path.insert(0, str(HERE))
    import torch

    import bench_torch as bt
    import tconv.torch as tt
    from tconv.torch import picker
    from tconv.torch.strategies import Plan, run

    def timed(name, x, w, b, plan):
        with torch.no_grad():
            start = time.perf_counter()
            run(name, x, w, b, plan)
            return time.perf_counter() - start

    lines = ["# Batch buckets: does one batch size's choice hold for the others in its bucket?", "",
             f"`python benchmarks/bench_buckets.py --budget {options.budget}`; {bt.cpu_summary()}, torch "
             f"{torch.__version__}, {torch.get_num_threads()} threads, load average at the start "
             f"{os.getloadavg()[0]:.2f}", "",
             "| layer | choices at batch 1..8 | worst penalty in a bucket |", "|---|---|---:|"]
    worst_all = 1.0
    for layer in bt.LAYERS:
        name, nd, _, cin, cout, k, s, p, op, g, d, spatial, dtype = layer
        if options.only not in name:
            continue
        plan = Plan(tt.layer_geometry(spatial, (k,) * nd, s, p, op, d, g), cin, cout)
        torch.manual_seed(0)
        w, b = torch.randn((cin, cout // g) + (k,) * nd, dtype=dtype), torch.randn(cout, dtype=dtype)
        choices, inputs = {}, {}
        for n in range(1, 9):
            x = torch.randn((n, cin) + spatial, dtype=dtype)
            inputs[n] = x
            with torch.no_grad():
                if plan.flops(n) < picker.MEASURE_MIN_FLOPS:
                    choices[n] = picker.deterministic_rule(x, w, plan.geometry, b)
                else:
                    choices[n] = picker._measure(x, w, b, plan, budget_s=options.budget)
        worst = 1.0
        for n in range(1, 9):
            decider = min(m for m in range(1, 9) if picker.batch_bucket(m) == picker.batch_bucket(n))
            shared, own = choices[decider], choices[n]
            if shared == own:
                continue
            x = inputs[n]
            times = {shared: [], own: []}
            timed(shared, x, w, b, plan), timed(own, x, w, b, plan)  # warm-up
            for _ in range(options.repeats):
                for strategy in (shared, own):
                    times[strategy].append(timed(strategy, x, w, b, plan))
            worst = max(worst, statistics.median(times[shared]) / statistics.median(times[own]))
        worst_all = max(worst_all, worst)
        lines.append(f"| {name} | {' '.join(choices[n] for n in range(1, 9))} | {worst:.2f}x |")
        print(lines[-1], flush=True)
    lines += ["", f"Worst penalty over all layers: **{worst_all:.2f}x** (the shared choice's time over the batch "
              "size's own choice's, at that batch size). Own choices made with a short budget are noisy "
              "themselves: a penalty below 1.10x is within what two measurements of one choice differ by.", ""]
    Path(options.out).write_text("\n".join(lines))
    print("\n".join(lines[-3:]))


if __name__ == "__main__":
    main()
