"""The memory-lean meta-step: the same GHN gradient as back-propagating the mean loss of all
target networks at once, the guard's drops, and the phase timings. Real GHN-2, real DeepNets-1M
networks, real digits images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from archlab.data import load_dataset
from archlab.engine._arch_stream import ArchSteps
from archlab.engine._ddp import DistInfo
from archlab.engine._train_step import meta_step
from archlab.ghn import GHNConfig, build_ghn, functional_logits, predicted_parameters


def _setup(meta_batch: int = 3):
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset("ghn2", hid=16, num_classes=10, image_size=16))
    step = next(iter(ArchSteps(seed=3, start=0, meta_batch=meta_batch, widths=(8, 12), num_classes=10,
                               image_size=16, fc_dim=32)))
    nets = [net.eval() for _, _, net, _ in step]  # eval: no dropout draws; BatchNorm keeps batch stats
    graphs = [graph for *_, graph in step]
    ds = load_dataset("digits", None, split="train", augment=False)
    images = torch.stack([ds[i][0] for i in range(32)])
    targets = torch.tensor([int(ds[i][1]) for i in range(32)])
    return ghn, nets, graphs, images, targets


def _step(ghn, nets, graphs, images, targets, **kw):
    opt = torch.optim.SGD(ghn.parameters(), lr=0.0)  # lr 0: the step leaves the gradients to compare
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    kw = {"running_loss": None, "explode_floor": 1e9, **kw}
    stats = meta_step(ghn, opt, scaler, nets, graphs, images, targets, info=DistInfo(device=torch.device("cpu")),
                      grad_clip=1e9, **kw)
    return stats, {n: p.grad.clone() for n, p in ghn.named_parameters() if p.grad is not None}


def _mean_loss_grads(ghn, nets, graphs, images, targets, keep=None):
    ghn.zero_grad(set_to_none=True)
    predicted = ghn(graphs)
    losses = [F.cross_entropy(functional_logits(m, p, images), targets) for m, p in zip(nets, predicted)]
    keep = range(len(losses)) if keep is None else keep
    torch.stack([losses[i] for i in keep]).mean().backward()
    grads = {n: p.grad.clone() for n, p in ghn.named_parameters() if p.grad is not None}
    ghn.zero_grad(set_to_none=True)
    return [float(v.detach()) for v in losses], grads


def _assert_close(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    """Equal up to float summation order: tolerance relative to the tensor's largest entry."""
    scale = float(want.abs().max()) or 1.0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale, msg=f"gradient of {name}")


@pytest.mark.parametrize("checkpoint", [False, True], ids=["kept", "recomputed"])
def test_lean_step_gradient_equals_the_mean_loss_gradient(checkpoint):
    ghn, nets, graphs, images, targets = _setup()
    losses, want = _mean_loss_grads(ghn, nets, graphs, images, targets)
    stats, got = _step(ghn, nets, graphs, images, targets, checkpoint_activations=checkpoint)
    assert not any(net.checkpoint_cells for net in nets)  # switched back off after the step
    assert stats.stepped and stats.n_ok == 3
    assert abs(stats.loss - sum(losses) / 3) < 1e-5
    assert want.keys() <= got.keys()
    nonzero = [n for n, g in want.items() if g.abs().max() > 0]
    assert len(nonzero) > 10  # the decoder, the GNN and the embeddings all receive gradient
    for n, g in want.items():
        _assert_close(got[n], g, n)
    for n in got.keys() - want.keys():  # parameters only the DDP anchor reaches
        assert not got[n].any()


def test_dropped_architecture_is_left_out_of_the_gradient():
    ghn, nets, graphs, images, targets = _setup()
    losses, _ = _mean_loss_grads(ghn, nets, graphs, images, targets)
    worst = max(range(3), key=losses.__getitem__)
    keep = [i for i in range(3) if i != worst]
    _, want = _mean_loss_grads(ghn, nets, graphs, images, targets, keep=keep)
    limit = (losses[worst] + max(losses[i] for i in keep)) / 2
    stats, got = _step(ghn, nets, graphs, images, targets, explode_floor=limit, explode_factor=0.0)
    assert stats.skipped["explode"] == 1 and stats.n_ok == 2
    for n, g in want.items():
        _assert_close(got[n], g, n)


def test_phase_timings_cover_the_step():
    ghn, nets, graphs, images, targets = _setup(meta_batch=2)
    timings: dict[str, float] = {}
    _step(ghn, nets, graphs, images, targets, timings=timings)
    assert set(timings) == {"ghn forward", "target fwd/bwd", "ghn backward", "optimiser"}
    assert all(t > 0 for t in timings.values())


def test_predicted_parameters_are_swapped_in_for_the_block_only():
    ghn, nets, graphs, images, targets = _setup(meta_batch=1)
    net = nets[0]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = ghn(graphs)[0]
    with predicted_parameters(net, params):
        assert all(getattr(net.get_submodule(k.rpartition(".")[0]), k.rpartition(".")[2]) is v
                   for k, v in params.items())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with pytest.raises(KeyError, match="no_such.weight"), predicted_parameters(net, {"no_such.weight": torch.zeros(1)}):
        pass


_HEAP_PROBE = """
import ctypes, ctypes.util
from archlab._heap import returning_freed_memory
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
def own_mapping(nbytes):  # does a fresh allocation of nbytes get its own mmap?
    before = libc.mallinfo2().hblks
    p = libc.malloc(nbytes)
    got = libc.mallinfo2().hblks - before
    libc.free(p)
    return got
with returning_freed_memory() as applied:
    inside = [own_mapping(16 << 20) for _ in range(2)]
print(applied, inside, [own_mapping(16 << 20) for _ in range(2)], own_mapping(64 << 20))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_heap_returns_large_frees_then_relaxes():
    """Inside the block every 16 MiB allocation is its own mapping (returned to the system when
    freed, even the second time); after it, they come from the heap again, and 64 MiB ones are
    still mapped. In a fresh process, so that no earlier test's heap serves the allocations."""
    out = subprocess.run([sys.executable, "-c", _HEAP_PROBE], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout.split("\n")[0]
    assert out == "True [1, 1] [0, 0] 1", out
