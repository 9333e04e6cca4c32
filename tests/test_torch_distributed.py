"""tconv.torch under torch.distributed: 2 processes (gloo) train with DistributedDataParallel and get
torch's gradients."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

WORKER = textwrap.dedent("""
    import json, os, sys, copy
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    import tconv.torch as tt

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    reference = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1))
    # a rewrite, not torch's kernel: a layer this small would otherwise be given torch's own
    ours = tt.swap(copy.deepcopy(reference), strategy="phase")
    grads = {}
    for name, model in (("torch", reference), ("tconv", ours)):
        ddp = DDP(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        for step in range(2):
            torch.manual_seed(100 + 10 * rank + step)  # each rank its own batch
            x = torch.randn(4, 8, 12, 12)
            opt.zero_grad()
            ddp(x).square().mean().backward()
            if step == 0:
                grads[name] = [p.grad.tolist() for p in model.parameters()]
            opt.step()
        grads[name + "_weights"] = [p.detach().tolist() for p in model.parameters()]
    with open(sys.argv[1] + f".{rank}", "w") as f:
        json.dump(grads, f)
    dist.destroy_process_group()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_torch(tmp_path):
    out = str(tmp_path / "grads")
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               TCONV_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, out], env=dict(env, RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    results = [json.load(open(f"{out}.{r}")) for r in range(2)]
    for key in ("", "_weights"):
        for r in results:
            for mine, theirs in zip(r["tconv" + key], r["torch" + key]):
                torch.testing.assert_close(torch.tensor(mine), torch.tensor(theirs), rtol=1e-4, atol=1e-5)
        # DDP averaged the gradients: both ranks hold the same
        for a, b in zip(results[0]["tconv" + key], results[1]["tconv" + key]):
            torch.testing.assert_close(torch.tensor(a), torch.tensor(b))
