"""PyTorch's side of `make bench` (bench/run.lua runs it, alternating with bench/ops.lua).

    /usr/bin/python3 bench/ops_torch.py --threads N --only small|large [--target S] [--runs R]
                                         [--clock cpu]

The workloads of ../shared/reference/torch/bench_ops.py (where the figures quoted in the
issues come from), cut down to those the bench compares, timed as its benchutil.py does:
the median of R runs, each a loop of calls sized to last S seconds after at least 0.2 s of
warm-up. Prints "name seconds_per_call" lines, the same names as bench/ops.lua.
All tensors float32 from torch.randn after torch.manual_seed(0).
  small: add16 (a + b, [16]), mm4 (torch.mm, [4, 4]), relu16 (torch.relu, [16])
  large: mm1024 (torch.mm, [1024, 1024]), add (a + b, new output), add_ (o.add_(b)),
         mul_add (a * b + c), sum (a.sum()), softmax (torch.softmax(x, dim=1), [4096, 1000]),
         with N = 10,000,000
"""
import statistics
import sys
import time

import torch


def option(name, default):
    flag = "--" + name
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


THREADS = int(option("threads", "1"))
ONLY = option("only", "small")
TARGET = float(option("target", "0.25"))
RUNS = int(option("runs", "5"))
# --clock cpu: the process's CPU time instead of wall-clock time (1-thread runs only)
CLOCK = time.process_time if option("clock", "wall") == "cpu" else time.perf_counter


def median_time(fn):
    t0 = CLOCK()
    calls = 0
    while calls < 3 or CLOCK() - t0 < 0.2:
        fn()
        calls += 1
    inner = max(1, int(TARGET / ((CLOCK() - t0) / calls)))
    times = []
    for _ in range(RUNS):
        t = CLOCK()
        for _ in range(inner):
            fn()
        times.append((CLOCK() - t) / inner)
    return statistics.median(times)


def report(name, fn):
    print(f"{name} {median_time(fn):.9g}", flush=True)


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    cpu0 = time.process_time()
    if ONLY == "small":
        a, b = torch.randn(16), torch.randn(16)
        report("add16", lambda: a + b)
        m1, m2 = torch.randn(4, 4), torch.randn(4, 4)
        report("mm4", lambda: torch.mm(m1, m2))
        x = torch.randn(16)
        report("relu16", lambda: torch.relu(x))
    else:
        g1, g2 = torch.randn(1024, 1024), torch.randn(1024, 1024)
        report("mm1024", lambda: torch.mm(g1, g2))
        del g1, g2
        n = 10_000_000
        a, b, c = torch.randn(n), torch.randn(n), torch.randn(n)
        report("add", lambda: a + b)
        o = a.clone()
        report("add_", lambda: o.add_(b))
        del o
        report("mul_add", lambda: a * b + c)
        report("sum", lambda: a.sum())
        x = torch.randn(4096, 1000)
        report("softmax", lambda: torch.softmax(x, dim=1))
        assert torch.allclose(torch.softmax(x, dim=1).sum(1), torch.ones(4096), atol=1e-4)
    print(f"cpu {time.process_time() - cpu0:.6f}")


if __name__ == "__main__":
    main()
