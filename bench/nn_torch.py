"""PyTorch side of bench/nn.lua (make bench-nn): one round of each timed piece, one
thread (torch.set_num_threads(1); run with OPENBLAS_NUM_THREADS=1 so that OpenBLAS,
which PyTorch calls for its GEMMs, keeps no pool of its own).

Usage: /usr/bin/python3 bench/nn_torch.py MLP_EPOCHS CNN_WINDOWS CNN_BATCHES SMALL_RUNS
Prints one line per figure: "name v1 v2 ..." (seconds, CPU time of this process), then
"foreign x": the cores other processes used meanwhile.

The models, data, warm-ups and loop bodies are those of bench/torch/bench_mlp.py,
bench_cnn.py and bench_ops.py (copies of the reference workloads)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bench_cnn  # noqa: E402
import bench_mlp  # noqa: E402
import benchutil as bu  # noqa: E402
import fmnist  # noqa: E402

torch.set_num_threads(1)
mlp_epochs, cnn_windows, cnn_batches, small_runs = (int(a) for a in sys.argv[1:5])
cpu = time.process_time
watch = bu.CpuWatch().__enter__()


def emit(name, values):
    print(name, " ".join("%.9g" % v for v in values), flush=True)


def mlp():
    xtr, ytr, _, _ = fmnist.load_torch(flat=True)
    n, bs = xtr.shape[0], 128
    torch.manual_seed(123)
    wm = bench_mlp.make_model()
    wopt = torch.optim.Adam(wm.parameters(), lr=1e-3)
    for i in range(30):
        xb, yb = xtr[i * bs:(i + 1) * bs], ytr[i * bs:(i + 1) * bs]
        wopt.zero_grad()
        F.cross_entropy(wm(xb), yb).backward()
        wopt.step()
    torch.manual_seed(0)
    model = bench_mlp.make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(mlp_epochs):
        t0 = cpu()
        perm = torch.randperm(n)
        running = 0.0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item() * xb.shape[0]
        times.append(cpu() - t0)
    emit("mlp_epoch", times)


def cnn():
    xtr, ytr, _, _ = fmnist.load_torch(flat=False)
    n, bs = xtr.shape[0], 64
    torch.manual_seed(123)
    wm = bench_cnn.make_model()
    wopt = torch.optim.Adam(wm.parameters(), lr=1e-3)
    for i in range(20):
        wopt.zero_grad()
        F.cross_entropy(wm(xtr[i * bs:(i + 1) * bs]), ytr[i * bs:(i + 1) * bs]).backward()
        wopt.step()
    torch.manual_seed(0)
    model = bench_cnn.make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(n)
    times, pos = [], 0
    for _ in range(cnn_windows):
        t0 = cpu()
        for _ in range(cnn_batches):
            idx = perm[pos:pos + bs]
            pos += bs
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        times.append(cpu() - t0)
    emit("cnn_window", times)


def per_call(fn, runs, target_s=0.1):
    """Seconds per call: `runs` runs of a loop sized to about target_s (bench_ops's
    median_time without its waits and retries)."""
    t0, k = cpu(), 0
    while k < 3 or cpu() - t0 < 0.1:
        fn()
        k += 1
    inner = max(1, int(target_s / ((cpu() - t0) / k)))
    out = []
    for _ in range(runs):
        t = cpu()
        for _ in range(inner):
            fn()
        out.append((cpu() - t) / inner)
    return out


def small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4))
    x = torch.randn(1, 32)
    t = torch.randn(1, 4)
    with torch.no_grad():
        emit("mlp_fwd", per_call(lambda: model(x), small_runs))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def train_step():
        opt.zero_grad()
        loss = F.mse_loss(model(x), t)
        loss.backward()
        opt.step()
    emit("mlp_train", per_call(train_step, small_runs))


def infer():
    torch.manual_seed(0)
    model = bench_cnn.make_model().eval()
    with torch.no_grad():
        for b in (1, 256):
            x = torch.rand(b, 1, 28, 28)
            emit("cnn_infer%d" % b, per_call(lambda: model(x), small_runs, 0.2 if b > 1 else 0.1))


print("torch", torch.__version__, flush=True)
for part in (mlp, cnn, small, infer):
    part()
watch.__exit__(None, None, None)
print("foreign %.3f" % watch.foreign_cores, flush=True)
