"""PyTorch side of bench/nn_conv.lua: the Fashion-MNIST CNN's two convolutions, forward
and forward + backward, one thread; prints "name median_ms min_ms" lines."""
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
RUNS, CALLS = 7, 10


def timed_ms(f):
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            f()
        times.append((time.perf_counter() - t0) / CALLS)
    times.sort()
    return "%.3f %.3f" % (times[len(times) // 2] * 1e3, times[0] * 1e3)


def conv(name, n, c, hw, o, grad_input):
    x = torch.randn(n, c, hw, hw, requires_grad=grad_input)
    w = torch.randn(o, c, 3, 3, requires_grad=True)
    b = torch.randn(o, requires_grad=True)

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, b, padding=1)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(x, w, b, padding=1)
        y.backward(torch.ones_like(y))
    print("%s_fwd %s" % (name, timed_ms(fwd)))
    print("%s_fwdbwd %s" % (name, timed_ms(fwd_bwd)))


conv("conv1", 64, 1, 28, 32, False)
conv("conv2", 64, 32, 14, 64, True)
sys.stdout.flush()
