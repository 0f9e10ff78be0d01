"""Supernet training and scoring speed on this CPU, side by side with NB201's own supernet.

Training: one SGD step (Nesterov momentum 0.9, weight decay 5e-4, cross-entropy) on a batch
of 64 random 32x32 images through one uniformly sampled path of the C=16, N=5 supernet, with
``affine=False, track_running_stats=False`` cell BatchNorms (the configuration of
AutoDL-Projects' RANDOM-NAS script). Every variant of ours replays the same sequence of
architectures; NB201's ``TinyNetworkRANDOM`` (``xautodl``, when installed) samples its own
with ``random_genotype(True)`` and computes every edge, as its authors' code does. Variants
run one after another in this process, all with the same thread count, and the whole round
is repeated (``--repeats``) to show the noise; environment variants (OpenMP, malloc, thread
count) run in a subprocess each.

The ablation rows rebuild the optimisations in ``harness.oneshot.supernet`` one at a time on top of
the straightforward forward (each edge module called on its own, ``nn.AvgPool2d``); the row
``harness`` is the shipped code itself.

Scoring: forward-only images/s of an eval-mode supernet (``track_running_stats=True``,
batches of 250 as ``harness.oneshot.scoring`` uses) and of BatchNorm recalibration, and from them the
time to score 1,000 architectures with 640 calibration and 1,000 evaluation images each.

FLOP rate: the multiply-adds of each sampled path's forward (``harness.oneshot.network.count_flops``
of the stand-alone network of its live ops: convolutions and the classifier, as NB201 counts),
x3 for forward and backward, x2 FLOPs per multiply-add, against a roof measured on this machine:
the best of five ``torch.mm`` of two 4096x4096 matrices after a warm-up, at the variant's
thread count, in bfloat16 for bf16 variants where the CPU has native bf16 (AVX512-BF16, AMX),
else in float32. As a cross-check it prints the theoretical fp32 peak: the CPU's reported
maximum clock (``cpuinfo_max_freq``, else lscpu's "CPU max MHz", else unknown; never a clock
timed by a loop, which modern cores can fool) x FP32 FLOPs per cycle from the vector flags
(an assumption of two FMA units) x the cores used. ``--roof-only`` measures and prints just
that, writing results/bench/roof.json and .md.

Writes results/bench/supernet_speed.json and .md. Run: .venv/bin/python bench/bench_supernet_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.oneshot.allocator import keep_freed_memory  # noqa: E402
from harness.oneshot.network import TinyNetwork, count_flops  # noqa: E402
from harness.oneshot.precision import autocast_factory  # noqa: E402
from harness.oneshot.supernet import _IN_EDGES, Supernet, average_pool_3x3, live_ops, recalibrate_batchnorm  # noqa: E402
from harness.space import (  # noqa: E402
    AVG_POOL,
    CONV1X1,
    CONV3X3,
    NONE,
    OPS,
    SKIP,
    Architecture,
    sample_architecture,
)

OUT = ROOT / "results" / "bench"
C, N, BATCH, IMAGE = 16, 5, 64, 32
CALIBRATION_IMAGES, EVAL_IMAGES, SCORING_BATCH, SCORED_ARCHS = 640, 1000, 250, 1000
CHANNELS_LAST = torch.channels_last

#: Training variants run in this process: (description, options).
VARIANTS: dict[str, tuple[str, dict]] = {
    "reference_nchw": ("straightforward forward (each edge module on its own), NCHW, fp32", dict(forward="plain")),
    "reference_channels_last": ("the same, channels-last", dict(forward="plain", channels_last=True)),
    "pool_as_dwconv": ("+ avg_pool_3x3 as a depthwise ones-kernel conv x inverse counts",
                       dict(forward="pool", channels_last=True)),
    "shared_relu_pool": ("+ one ReLU and one pool per node, shared by its out-edges",
                         dict(forward="shared", channels_last=True)),
    "harness": ("+ in-place node sums: the shipped harness.oneshot.supernet code, channels-last fp32",
                dict(channels_last=True)),
    "harness_nchw": ("the shipped code, NCHW fp32", dict()),
    "harness_compiled_conv_bn": ("shipped code with each conv+BN a torch.compile'd function",
                                 dict(forward="compiled", channels_last=True)),
    "harness_bf16": ("shipped code under bfloat16 autocast (train --precision bf16), channels-last",
                     dict(channels_last=True, bf16=True)),
    "xautodl_nchw": ("NB201's TinyNetworkRANDOM (xautodl), as its authors run it: NCHW fp32", dict(xautodl=True)),
    "xautodl_channels_last": ("TinyNetworkRANDOM, channels-last fp32", dict(xautodl=True, channels_last=True)),
}
#: Variants of the shipped code that need a fresh process: (description, environment, options).
#: ``with_xautodl`` also times TinyNetworkRANDOM in that process, for a ratio under the same settings.
PROCESS_VARIANTS: dict[str, tuple[str, dict[str, str], dict]] = {
    "harness_mallopt": ("shipped code, glibc malloc keeping freed blocks (mallopt: mmap threshold 256 MiB, "
                        "trim threshold 1 GiB), channels-last fp32", {}, dict(mallopt=True, with_xautodl=True)),
    "harness_mallopt_bf16": ("the same under bfloat16 autocast: what `train --precision bf16` runs", {},
                             dict(mallopt=True, bf16=True, with_xautodl=True)),
    "harness_bf16_process": ("shipped code under bfloat16 autocast in a fresh process, default malloc",
                             {}, dict(bf16=True, with_xautodl=True)),
    "harness_omp_passive": ("shipped code, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}, {}),
    "harness_omp_active": ("shipped code, OMP_WAIT_POLICY=ACTIVE", {"OMP_WAIT_POLICY": "ACTIVE"}, {}),
    "harness_omp_bind": ("shipped code, OMP_PROC_BIND=close OMP_PLACES=cores",
                         {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}, {}),
    "harness_1_thread": ("shipped code, one thread (torch.set_num_threads(1))", {}, dict(threads=1)),
}


# -- the ablation forwards -------------------------------------------------------------

@cache
def _compiled_conv_bn(kernel: int) -> Callable:
    def conv_bn(relu: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(F.conv2d(relu, weight, bias, padding=kernel // 2), None, None, training=True)
    return torch.compile(conv_bn, dynamic=False)


def ablation_forward_path(pool: bool, shared: bool, in_place: bool, compiled: bool = False) -> Callable:
    """A ``SupernetCell.forward_path`` with some of the shipped optimisations switched on."""

    def forward_path(cell, x: torch.Tensor, ops: tuple[int, ...]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        relus: dict[int, torch.Tensor] = {}
        pools: dict[int, torch.Tensor] = {}
        for target, in_edges in enumerate(_IN_EDGES, start=1):
            terms = [(e, src, ops[e]) for e, src in in_edges if ops[e] != NONE and nodes[src] is not None]
            if in_place:
                terms.sort(key=lambda term: term[2] not in (CONV1X1, CONV3X3))
            total, owned = None, False
            for e, src, op in terms:
                h = nodes[src]
                if op == SKIP:
                    out = h
                elif op == AVG_POOL:
                    if not pool:
                        out = cell.edges[e][op](h)
                    elif shared:
                        out = pools[src] = pools[src] if src in pools else average_pool_3x3(h)
                    else:
                        out = average_pool_3x3(h)
                elif shared:
                    relu = relus[src] = relus[src] if src in relus else F.relu(h)
                    conv, norm = cell.edges[e][op].op[1], cell.edges[e][op].op[2]
                    if compiled:
                        out = _compiled_conv_bn(conv.kernel_size[0])(relu, conv.weight, conv.bias)
                    else:
                        out = norm(conv(relu))
                else:
                    out = cell.edges[e][op](h)
                if total is None:
                    total, owned = out, op not in (SKIP, AVG_POOL)
                elif in_place and owned:
                    total = total.add_(out)
                else:
                    total, owned = total + out, True
            nodes[target] = total
        return nodes[3] if nodes[3] is not None else x.mul(0.0)

    return forward_path


FORWARDS = {
    "plain": dict(pool=False, shared=False, in_place=False),
    "pool": dict(pool=True, shared=False, in_place=False),
    "shared": dict(pool=True, shared=True, in_place=False),
    "compiled": dict(pool=True, shared=True, in_place=True, compiled=True),
}


def build_supernet(forward: str | None, track_running_stats: bool, channels_last: bool, seed: int = 0) -> Supernet:
    """The supernet; with ``forward`` its cells use that ablation forward and it never splits batches."""
    torch.manual_seed(seed)
    model = Supernet(C=C, N=N, affine=False, track_running_stats=track_running_stats)
    if forward is not None:
        path = ablation_forward_path(**FORWARDS[forward])
        for cell in model.supernet_cells():
            cell.forward_path = types.MethodType(path, cell)
        model._batch_chunk = lambda x: len(x)
    if channels_last:
        model = model.to(memory_format=CHANNELS_LAST)
    return model


def build_xautodl(channels_last: bool, seed: int = 0):
    from xautodl.models.cell_searchs.search_model_random import TinyNetworkRANDOM

    torch.manual_seed(seed)
    model = TinyNetworkRANDOM(C, N, 4, 10, list(OPS), False, False)
    return model.to(memory_format=CHANNELS_LAST) if channels_last else model


# -- timing ----------------------------------------------------------------------------

def sgd(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)


def batch(channels_last: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 3, IMAGE, IMAGE, generator=generator)
    y = torch.randint(0, 10, (BATCH,), generator=generator)
    return (x.contiguous(memory_format=CHANNELS_LAST) if channels_last else x), y


def architectures(count: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [sample_architecture(rng) for _ in range(count)]


@cache
def path_macs(ops: tuple[int, ...]) -> int:
    """Multiply-adds per image of one forward of the path (NB201's counting)."""
    return count_flops(TinyNetwork(Architecture(ops), C=C, N=N, affine=False, track_running_stats=False),
                       (1, 3, IMAGE, IMAGE))


def time_training(options: dict, archs: list[Architecture], warmup: int) -> dict:
    """Images/s of ``len(archs) - warmup`` timed steps after ``warmup`` untimed ones."""
    channels_last = options.get("channels_last", False)
    x, y = batch(channels_last)
    autocast = autocast_factory("bf16" if options.get("bf16") else "fp32", torch.device("cpu"))
    if options.get("xautodl"):
        model = build_xautodl(channels_last)
        random.seed(0)

        def forward(_arch):
            model.random_genotype(True)
            return model(x)[1]
    else:
        model = build_supernet(options.get("forward"), False, channels_last)

        def forward(arch):
            return model(x, arch)
    optimizer = sgd(model)
    model.train()

    def step(arch) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(forward(arch), y)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for arch in archs[:warmup]:
        step(arch)
    warmup_seconds = time.perf_counter() - start
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    for arch in archs[warmup:]:
        step(arch)
    seconds = time.perf_counter() - start
    steps = len(archs) - warmup
    result = {"images_per_second": steps * BATCH / seconds, "steps": steps, "seconds": seconds,
              "warmup_seconds": warmup_seconds, "load_average": [load_before, os.getloadavg()[0]]}
    if not options.get("xautodl"):
        macs = sum(path_macs(live_ops(a)) for a in archs[warmup:])
        result["gflop_per_second"] = 6 * BATCH * macs / seconds / 1e9
    return result


def time_scoring(forward: str | None, archs: list[Architecture], precision: str = "fp32",
                 calibration_images: int = CALIBRATION_IMAGES, eval_images: int = EVAL_IMAGES) -> dict:
    """Eval and recalibration images/s at the scorer's batch size, and the 1,000-architecture estimate."""
    model = build_supernet(forward, True, True)
    autocast = autocast_factory(precision, torch.device("cpu"))
    generator = torch.Generator().manual_seed(1)
    calibration = [torch.randn(min(SCORING_BATCH, calibration_images - i), 3, IMAGE, IMAGE, generator=generator)
                   .contiguous(memory_format=CHANNELS_LAST) for i in range(0, calibration_images, SCORING_BATCH)]
    evaluation = [torch.randn(SCORING_BATCH, 3, IMAGE, IMAGE, generator=generator)
                  .contiguous(memory_format=CHANNELS_LAST) for _ in range(eval_images // SCORING_BATCH)]
    with autocast():
        recalibrate_batchnorm(model, archs[0], calibration[:1])
    model.eval()
    with torch.inference_mode(), autocast():
        model(evaluation[0], archs[0])
    recal_seconds = eval_seconds = 0.0
    for arch in archs:
        start = time.perf_counter()
        with torch.inference_mode(False), autocast():
            recalibrate_batchnorm(model, arch, calibration)
        middle = time.perf_counter()
        with torch.inference_mode(), autocast():
            for images in evaluation:
                model(images, arch)
        end = time.perf_counter()
        recal_seconds += middle - start
        eval_seconds += end - middle
    per_arch = (recal_seconds + eval_seconds) / len(archs)
    return {"architectures": len(archs), "precision": precision, "calibration_images": calibration_images,
            "eval_images": eval_images,
            "recalibration_images_per_second": len(archs) * calibration_images / recal_seconds,
            "eval_images_per_second": len(archs) * eval_images / eval_seconds,
            "seconds_per_architecture": per_arch,
            f"minutes_for_{SCORED_ARCHS}_architectures": per_arch * SCORED_ARCHS / 60}


def time_whole_model_compile(archs: list[Architecture]) -> dict:
    """Seconds torch.compile takes for a whole single-path model, first and per new architecture."""
    model = build_supernet(None, False, True)
    x, y = batch(True)
    compiled = torch.compile(model, dynamic=False)
    seconds = []
    for arch in archs:
        start = time.perf_counter()
        F.cross_entropy(compiled(x, arch), y).backward()
        seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    F.cross_entropy(compiled(x, archs[-1]), y).backward()
    return {"first_architecture_seconds": seconds[0], "next_architectures_seconds": seconds[1:],
            "repeat_architecture_seconds": time.perf_counter() - start}


# -- the machine and its roof -----------------------------------------------------------

ROOF_SIZE, ROOF_REPEATS = 4096, 5
MAX_FREQ_FILE = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        if not line.strip():
            break
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def physical_cores() -> int:
    """Cores this process may run on, SMT siblings (which share the FMA units) counted once."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("", str(cpu)))
    return max(1, len(cores))


def reported_max_clock() -> tuple[float | None, str]:
    """The CPU's maximum clock in GHz as the system reports it, and where it came from; never a timed loop."""
    try:
        return int(MAX_FREQ_FILE.read_text()) / 1e6, f"{MAX_FREQ_FILE} (kHz)"
    except (OSError, ValueError):
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=True).stdout
        mhz = next(line.split(":", 1)[1] for line in lscpu.splitlines() if line.startswith("CPU max MHz:"))
        return float(mhz) / 1e3, "lscpu's 'CPU max MHz'"
    except (OSError, subprocess.SubprocessError, StopIteration, ValueError):
        pass
    current = cpu_info().get("cpu MHz")
    note = (f"; /proc/cpuinfo's 'cpu MHz' ({float(current) / 1e3:.2f} GHz) is a current clock, not a maximum, "
            "so it is not used" if current else "")
    return None, (f"unknown: neither {MAX_FREQ_FILE} nor lscpu's 'CPU max MHz' exists here (virtual machines "
                  f"often hide both){note}")


def fp32_flops_per_cycle(info: dict[str, str]) -> tuple[int | None, str]:
    """FP32 FLOPs per cycle per core from the vector flags, assuming two FMA units per core, and why."""
    flags = set(info.get("flags", "").split())
    if "avx512f" in flags:
        if info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "25":
            return 32, ("AVX-512 on Zen 4 (AMD family 25), which runs each 512-bit FMA as two 256-bit halves: "
                        "2 FMA units x 8 FP32 lanes x 2 FLOPs (assumed, not measured)")
        return 64, "AVX-512: 2 FMA units x 16 FP32 lanes x 2 FLOPs (assumed FMA unit count, not measured)"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2 + FMA: 2 FMA units x 8 FP32 lanes x 2 FLOPs (assumed FMA unit count, not measured)"
    return None, "unknown: no AVX-512 or AVX2+FMA flag"


def has_native_bf16(info: dict[str, str]) -> bool:
    """AVX512-BF16 or AMX-BF16 among x86's ``flags``, or BF16 among Arm's ``Features``."""
    flags = set(f"{info.get('flags', '')} {info.get('Features', '')}".split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def measured_matmul(dtype: torch.dtype, threads: int, size: int = ROOF_SIZE, repeats: int = ROOF_REPEATS) -> dict:
    """GFLOP/s of the best of ``repeats`` ``torch.mm`` of two ``size`` x ``size`` matrices, after one warm-up."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator).to(dtype)
        b = torch.randn(size, size, generator=generator).to(dtype)
        torch.mm(a, b)
        load_before = os.getloadavg()[0]
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            rates.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    finally:
        torch.set_num_threads(previous)
    return {"gflops": max(rates), "runs_gflops": rates, "size": size, "repeats": repeats, "threads": threads,
            "load_average": [load_before, os.getloadavg()[0]],
            "how": f"best of {repeats} torch.mm of two {size}x{size} {str(dtype).removeprefix('torch.')} "
                   f"matrices on {plural(threads, 'thread')}, after one warm-up"}


def roof(threads: int) -> dict:
    """What a training step's GFLOP/s is compared with, at ``threads`` threads, and how each figure was found.

    The roof is measured: a large matmul, the best this torch reaches on this CPU. The
    theoretical peak (reported maximum clock x vector width x cores) is a cross-check only.
    """
    info = cpu_info()
    fp32 = measured_matmul(torch.float32, threads)
    bf16 = (measured_matmul(torch.bfloat16, threads) if has_native_bf16(info) else
            {"gflops": None, "how": "not measured: no native bf16 (AVX512-BF16, AMX or Arm BF16) on this CPU"})
    clock, clock_source = reported_max_clock()
    per_cycle, per_cycle_basis = fp32_flops_per_cycle(info)
    cores = min(threads, physical_cores())
    peak = cores * clock * per_cycle if clock is not None and per_cycle is not None else None
    return {"threads": threads, "fp32_matmul": fp32, "bf16_matmul": bf16,
            "theoretical_fp32": {"gflops": peak, "max_clock_ghz": clock, "clock_source": clock_source,
                                 "flops_per_cycle": per_cycle, "flops_per_cycle_basis": per_cycle_basis,
                                 "cores": cores},
            "fp32_matmul_of_theoretical": fp32["gflops"] / peak if peak else None}


def roof_lines(r: dict) -> list[str]:
    """How the roof was obtained, a sentence a line."""
    fp32, bf16, peak = r["fp32_matmul"], r["bf16_matmul"], r["theoretical_fp32"]
    def measured(kind: str, m: dict) -> str:
        return (f"{kind} roof: {m['gflops']:.0f} GFLOP/s, measured: {m['how']} (runs "
                f"{', '.join(f'{g:.0f}' for g in m['runs_gflops'])} GFLOP/s; 1-minute load average "
                f"{m['load_average'][0]:.2f} -> {m['load_average'][1]:.2f}).")

    lines = [measured("fp32", fp32)]
    if bf16["gflops"] is not None:
        lines.append(measured("bf16", bf16))
    else:
        lines.append(f"bf16 roof: {bf16['how']}; bf16 rows are compared with the fp32 roof.")
    if peak["gflops"] is not None:
        lines.append(f"Cross-check, theoretical fp32 peak: {plural(peak['cores'], 'core')} x "
                     f"{peak['max_clock_ghz']:.2f} GHz "
                     f"(maximum clock from {peak['clock_source']}) x {peak['flops_per_cycle']} FLOP/cycle "
                     f"({peak['flops_per_cycle_basis']}) = {peak['gflops']:.0f} GFLOP/s; the fp32 matmul reaches "
                     f"{100 * r['fp32_matmul_of_theoretical']:.0f}% of it.")
    else:
        per_cycle = (f"{peak['flops_per_cycle']} FLOP/cycle ({peak['flops_per_cycle_basis']})"
                     if peak["flops_per_cycle"] is not None else peak["flops_per_cycle_basis"])
        lines.append(f"Cross-check, theoretical fp32 peak: not computed; maximum clock {peak['clock_source']}; "
                     f"vector width {per_cycle}; {plural(peak['cores'], 'core')}.")
    return lines


def machine(threads: int) -> dict:
    info = cpu_info()
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name", platform.processor()), "vendor": info.get("vendor_id", ""),
        "family": info.get("cpu family", ""), "model": info.get("model", ""), "cores": os.cpu_count() or 1,
        "physical_cores": physical_cores(), "threads_used": threads,
        "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_tile" in flags,
        "torch": torch.__version__, "python": platform.python_version(),
    }


# -- running ---------------------------------------------------------------------------

def worker(name: str, steps: int, warmup: int) -> None:
    """Time one process variant and print its result as JSON (run by ``main`` in a subprocess)."""
    _, _, options = PROCESS_VARIANTS[name]
    if options.get("mallopt"):
        keep_freed_memory()
    torch.set_num_threads(options.get("threads", int(os.environ["BENCH_THREADS"])))
    result = time_training(dict(channels_last=True, bf16=options.get("bf16", False)), architectures(warmup + steps),
                           warmup)
    if options.get("with_xautodl"):
        result["xautodl_nchw"] = time_training(VARIANTS["xautodl_nchw"][1], architectures(warmup + steps), warmup)
    print(json.dumps(result))


def run_process_variant(name: str, steps: int, warmup: int, threads: int) -> dict:
    _, env, _ = PROCESS_VARIANTS[name]
    out = subprocess.run([sys.executable, __file__, "--worker", name, "--steps", str(steps), "--warmup", str(warmup)],
                         env={**os.environ, **env, "BENCH_THREADS": str(threads)}, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    rates = [r["images_per_second"] for r in runs]
    out = {"images_per_second": rates, "mean_images_per_second": float(np.mean(rates))}
    if "gflop_per_second" in runs[0]:
        out["mean_gflop_per_second"] = float(np.mean([r["gflop_per_second"] for r in runs]))
    out["load_average"] = [r["load_average"] for r in runs]
    return out


def variant_options(name: str) -> dict:
    return VARIANTS[name][1] if name in VARIANTS else PROCESS_VARIANTS[name][2]


def variant_threads(name: str, threads: int) -> int:
    """The thread count a variant trains with (``threads`` unless the variant fixes its own)."""
    return variant_options(name).get("threads", threads)


def compare_with_roof(entry: dict, name: str, roofs: dict[str, dict], threads: int) -> None:
    """Add to a variant's entry the roof its GFLOP/s is compared with, and the fraction of it reached.

    The roof is the large matmul measured at the variant's thread count, in bf16 for a bf16
    variant where the CPU has native bf16, else in fp32.
    """
    r = roofs[str(variant_threads(name, threads))]
    bf16 = variant_options(name).get("bf16", False) and r["bf16_matmul"]["gflops"] is not None
    matmul = r["bf16_matmul" if bf16 else "fp32_matmul"]
    entry["roof"] = {"name": f"{'bf16' if bf16 else 'fp32'} matmul, {plural(r['threads'], 'thread')}",
                     "gflops": matmul["gflops"], "how": matmul["how"]}
    entry["fraction_of_roof"] = entry["mean_gflop_per_second"] / matmul["gflops"]
    peak = r["theoretical_fp32"]["gflops"]
    if peak and not variant_options(name).get("bf16", False):
        entry["fraction_of_theoretical_fp32"] = entry["mean_gflop_per_second"] / peak


def measure_roof_only(threads: int, out: Path) -> None:
    """``--roof-only``: the roof at ``threads`` threads, printed and written to ``out`` (.json and .md)."""
    torch.set_num_threads(threads)
    report = {"machine": machine(threads), "roof": {str(threads): roof(threads)}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    text = roof_markdown(report)
    out.with_suffix(".md").write_text(text)
    print(text, end="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per variant and repeat")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join([*VARIANTS, *PROCESS_VARIANTS]))
    parser.add_argument("--scoring-archs", type=int, default=10, help="architectures timed for scoring (0: skip)")
    parser.add_argument("--compile-archs", type=int, default=3, help="paths timed for whole-model compile (0: skip)")
    parser.add_argument("--out", type=Path, help="the .json written, with a .md beside it (default: "
                        "results/bench/supernet_speed.json; with --roof-only, results/bench/roof.json)")
    parser.add_argument("--roof-only", action="store_true",
                        help="measure and print only the roof (large matmuls; the theoretical peak as a cross-check)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.warmup)
        return
    if args.roof_only:
        measure_roof_only(args.threads, args.out or OUT / "roof.json")
        return
    args.out = args.out or OUT / "supernet_speed.json"

    torch.set_num_threads(args.threads)
    names = [n for n in args.variants.split(",") if n]
    if any(VARIANTS.get(n, ("", {}))[1].get("xautodl") for n in names):
        try:
            import xautodl  # noqa: F401
        except ImportError:
            print("xautodl is not installed (pip install --no-deps xautodl): its rows are skipped")
            names = [n for n in names if not VARIANTS.get(n, ("", {}))[1].get("xautodl")]
    archs = architectures(args.warmup + args.steps)
    for arch in archs[args.warmup:]:
        path_macs(live_ops(arch))
    report = {"settings": {"C": C, "N": N, "batch": BATCH, "image": IMAGE, "steps": args.steps,
                           "warmup": args.warmup, "repeats": args.repeats, "threads": args.threads,
                           "optimizer": "SGD lr 0.025 nesterov momentum 0.9 weight decay 5e-4",
                           "cell_batchnorm": "affine=False, track_running_stats=False"},
              "machine": machine(args.threads),
              "mean_path_macs": float(np.mean([path_macs(live_ops(a)) for a in archs[args.warmup:]]))}
    # The roof at every thread count a variant trains with, measured before the training rows.
    report["roof"] = {str(t): roof(t) for t in sorted({variant_threads(n, args.threads) for n in names}, reverse=True)}
    for r in report["roof"].values():
        print(f"roof at {r['threads']} threads:", *roof_lines(r), sep="\n  ", flush=True)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for repeat in range(args.repeats):
        for name in names:
            if name in VARIANTS:
                result = time_training(VARIANTS[name][1], archs, args.warmup)
            else:
                result = run_process_variant(name, args.steps, args.warmup, args.threads)
            runs[name].append(result)
            extra = (f", xautodl in that process {result['xautodl_nchw']['images_per_second']:.1f}"
                     if "xautodl_nchw" in result else "")
            print(f"repeat {repeat + 1} {name:28s} {result['images_per_second']:7.1f} images/s "
                  f"(load {result['load_average'][0]:.2f}){extra}", flush=True)
    variants = {}
    for name in names:
        description = VARIANTS[name][0] if name in VARIANTS else PROCESS_VARIANTS[name][0]
        variants[name] = {"description": description, **summarise(runs[name])}
    if "xautodl_nchw" in variants:
        baseline = variants["xautodl_nchw"]["mean_images_per_second"]
        for entry in variants.values():
            entry["ratio_to_xautodl_nchw"] = entry["mean_images_per_second"] / baseline
    for name in names:
        if any("xautodl_nchw" in r for r in runs[name]):
            theirs = summarise([r["xautodl_nchw"] for r in runs[name]])
            variants[name]["xautodl_nchw_same_process"] = theirs
            variants[name]["ratio_to_xautodl_nchw_same_process"] = (variants[name]["mean_images_per_second"]
                                                                    / theirs["mean_images_per_second"])
    for name, entry in variants.items():
        if "mean_gflop_per_second" in entry:
            compare_with_roof(entry, name, report["roof"], args.threads)
    report["training"] = variants
    if "harness_compiled_conv_bn" in runs:
        report["harness_compiled_conv_bn_warmup_seconds"] = [
            r["warmup_seconds"] for r in runs.get("harness_compiled_conv_bn", [])]
    if args.scoring_archs:
        scoring_archs = architectures(args.scoring_archs, seed=1)
        report["scoring"] = {"reference": time_scoring("plain", scoring_archs),
                             "harness": time_scoring(None, scoring_archs),
                             "harness_bf16": time_scoring(None, scoring_archs, "bf16"),
                             # the fewer images the scoring study found enough for the probability score
                             "harness_bf16_160_500": time_scoring(None, scoring_archs, "bf16", 160, 500)}
        print("scoring", json.dumps(report["scoring"], indent=1), flush=True)
    if args.compile_archs:
        report["whole_model_compile"] = time_whole_model_compile(architectures(args.compile_archs, seed=2))
        print("whole-model compile", report["whole_model_compile"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        "# Supernet speed on this CPU",
        "",
        f"{m['cpu']} (family {m['family']}), {m['cores']} cores, {s['threads']} threads, torch {m['torch']}. "
        f"C={s['C']}, N={s['N']}, batch {s['batch']}, {s['image']}x{s['image']}, one uniformly sampled path per "
        f"step, {s['optimizer']}, cell BN {s['cell_batchnorm']}. {s['steps']} timed steps per variant after "
        f"{s['warmup']} warm-up steps, {s['repeats']} rounds. Written by `bench/bench_supernet_speed.py`.",
        "",
        "| variant | images/s per round | mean | vs xautodl | GFLOP/s | of roof |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in report["training"].items():
        rounds = ", ".join(f"{r:.0f}" for r in v["images_per_second"])
        ratio = f"{v['ratio_to_xautodl_nchw']:.2f}x" if "ratio_to_xautodl_nchw" in v else ""
        if "ratio_to_xautodl_nchw_same_process" in v:
            ratio += (f" ({v['ratio_to_xautodl_nchw_same_process']:.2f}x vs xautodl in that process: "
                      f"{v['xautodl_nchw_same_process']['mean_images_per_second']:.0f} images/s)")
        flops = f"{v['mean_gflop_per_second']:.0f}" if "mean_gflop_per_second" in v else ""
        share = f"{100 * v['fraction_of_roof']:.0f}% of the {v['roof']['name']}" if "fraction_of_roof" in v else ""
        lines.append(f"| `{name}`: {v['description']} | {rounds} | {v['mean_images_per_second']:.0f} | {ratio} | "
                     f"{flops} | {share} |")
    lines += ["", "Roof: each GFLOP/s above is compared with a large matmul measured on this machine at the "
              "variant's thread count, in bf16 for bf16 rows (where the CPU has native bf16), else in fp32; the "
              "theoretical peak is only a cross-check."]
    for r in report["roof"].values():
        lines += ["", f"At {plural(r['threads'], 'thread')}:", "",
                  *(f"- {line}" for line in roof_lines(r))]
    lines += ["", f"Path FLOPs: NB201's count of the live path's forward (mean {report['mean_path_macs'] / 1e6:.1f} M "
              "multiply-adds per image) x3 (forward, backward) x2; avg-pool, BatchNorm and the rest count nothing, "
              "as in NB201."]
    if "scoring" in report:
        lines += ["", "Scoring (eval-mode forward under inference_mode and BN recalibration, batches of 250, "
                  "channels-last):", "",
                  "| forward | precision | calibration + eval images | recalibration images/s | eval images/s | "
                  "s per architecture | minutes for 1,000 |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in report["scoring"].items():
            images = f"{r.get('calibration_images', CALIBRATION_IMAGES)} + {r.get('eval_images', EVAL_IMAGES)}"
            lines.append(f"| {name} | {r.get('precision', 'fp32')} | {images} | "
                         f"{r['recalibration_images_per_second']:.0f} | {r['eval_images_per_second']:.0f}"
                         f" | {r['seconds_per_architecture']:.2f} | {r['minutes_for_1000_architectures']:.1f} |")
    if "whole_model_compile" in report:
        c = report["whole_model_compile"]
        nxt = ", ".join(f"{t:.0f}" for t in c["next_architectures_seconds"])
        lines += ["", f"Whole-model torch.compile of a single path: {c['first_architecture_seconds']:.0f} s for the "
                  f"first architecture, {nxt} s for each next one (it recompiles per architecture), "
                  f"{c['repeat_architecture_seconds']:.2f} s for a repeat step."]
    return "\n".join(lines) + "\n"


def roof_markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# The roof of a training step's GFLOP/s on this CPU", "",
             f"{m['cpu']} (family {m['family']}, model {m['model']}), {m['cores']} logical CPUs, "
             f"{m['physical_cores']} physical cores, torch {m['torch']}. Written by "
             "`bench/bench_supernet_speed.py --roof-only`."]
    for r in report["roof"].values():
        lines += ["", f"At {plural(r['threads'], 'thread')}:", "",
                  *(f"- {line}" for line in roof_lines(r))]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
