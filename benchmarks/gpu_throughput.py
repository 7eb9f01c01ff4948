"""Training throughput of ``gca_refine`` on GPUs: 1 GPU vs N GPUs (DDP) and the speed knobs on 1 GPU.

What is timed is what ``python -m src.train experiment=gca_refine`` runs: the model config composed from
``conf/`` (``experiment=gca_refine``, ``model=<--model>``), the real ``RefineGANModule`` (manual
optimisation: one backward pass of the D + G losses, then a D and a G optimizer step per batch) inside a
Lightning ``Trainer``. The input is PRE-MADE tensors (pre-collated batch dicts ``sca``, ``thumb``, ``gt``
float32 (B, 3, H, W) in [0, 1], ``mask`` (B, 1, H, W), pinned host memory), so the numbers measure the GPU
side only; ``gpu_pipeline.py`` measures the real input pipeline against this loop.

A step period is the time between the ends of two consecutive training batches (CUDA synchronised), so
data transfer and Lightning's per-step work are inside it. Reported per case: median step period after
the warm-up steps, images/s = world size x per-device batch / median, the window mean, the warm-up time
(first steps, including any ``torch.compile``), peak GPU memory.

Cases (the baseline is the first: bf16-mixed, 1 GPU):
  - ``1gpu_bf16``: bf16-mixed autocast, 1 GPU (baseline; ``1gpu_bf16_again`` repeats it after the knobs, so
    the spread between the two is the noise level);
  - ``ddp<N>_bf16``: the same on N GPUs, plain DDP (``ddp``: the one backward pass per batch gives every
    parameter a gradient, so no unused-parameter search), per-device batch unchanged (so the global
    batch is N x batch), started in a separate ``python`` process (Lightning's ``ddp`` re-executes this
    script once per rank);
  - ``ddp<N>_bf16_bf16grads``: the same, gradients all-reduced in bf16 (``bf16_compress_hook``: half the
    bytes); each DDP case also times one all-reduce of a float32 buffer of all the parameters
    (``allreduce_ms``, ``allreduce_bus_gbps``: is the interconnect the limit?);
  - knobs on 1 GPU: ``1gpu_fp32`` (``32-true``; cuDNN convolutions still use TF32, torch's default),
    ``1gpu_bf16_channels_last`` (module and inputs in channels_last), ``1gpu_bf16_cudnn_benchmark``
    (``Trainer(benchmark=True)``: cuDNN times its algorithms once per shape; ``src.train``'s trainer configs
    leave it off), ``1gpu_bf16_compile``
    (``nn.Module.compile()`` of the coarse generator, refine pyramid and discriminator; its compile time is
    the warm-up time minus the baseline's). DDP and compile cases run in their own process, killed when the
    ``--budget`` runs out.

    python -m benchmarks.gpu_throughput [--devices 2] [--json out.json] [--budget 300]
    .venv/bin/python -m benchmarks.gpu_throughput --accelerator cpu --steps 3 --warmup 2 --scale 128x64 \\
        --batch 2 --devices 2 --knobs fp32,channels_last        # CPU smoke run (DDP over gloo)

Without a CUDA device and without ``--accelerator`` it prints a note and exits 0 (``make bench`` runs every
benchmark).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from src.utils.hydra_utils import PROJECT_ROOT as ROOT
from src.utils.hydra_utils import set_project_root

set_project_root()  # conf/paths reads PROJECT_ROOT

KNOBS = ("fp32", "channels_last", "cudnn_benchmark", "compile", "ddp_bf16_grads")
DDP_STRATEGY = "ddp"


class BenchmarkError(RuntimeError):
    """A benchmark case could not run (bad arguments, a failed subprocess)."""


# ---------------------------------------------------------------------------------------------- inputs
def parse_size(text: str) -> tuple[int, int]:
    """``"512x256"`` -> (512, 256) = (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BenchmarkError(f"size {text!r} must look like WxH, e.g. 512x256") from None
    return w, h


def make_batch(batch: int, width: int, height: int, seed: int) -> dict[str, torch.Tensor]:
    """One collated batch of the DataModule's training shape: ``sca``, ``thumb``, ``gt`` float32
    (B, 3, H, W) in [0, 1], ``mask`` float32 (B, 1, H, W) in {0, 1}. Random content (never zeros: speed must
    not depend on it, and zeros can run faster)."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(batch, 3, height, width, generator=g)
    return {
        "gt": gt,
        "sca": (gt + 0.05 * torch.randn(gt.shape, generator=g)).clamp_(0, 1),
        "thumb": torch.rand(batch, 3, height, width, generator=g),
        "mask": (torch.rand(batch, 1, height, width, generator=g) > 0.05).float(),
    }


class PremadeBatches(Dataset):
    """``length`` pre-collated batches cycling over ``distinct`` different ones, kept in (pinned) host memory:
    the cheapest possible feed (no collation, no decode), used with ``DataLoader(batch_size=None)``."""

    def __init__(
        self,
        length: int,
        batch: int,
        width: int,
        height: int,
        distinct: int = 4,
        pin: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.length, self.pin = length, pin
        self.batches = []
        for i in range(distinct):
            b = make_batch(batch, width, height, seed=i)
            if channels_last:
                b = {k: v.contiguous(memory_format=torch.channels_last) for k, v in b.items()}
            self.batches.append(b)
        self._pinned = False

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.pin and not self._pinned:  # here, not in __init__: the rank's device is set by now
            self.batches = [{k: v.pin_memory() for k, v in b.items()} for b in self.batches]
            self._pinned = True
        return self.batches[i % len(self.batches)]


# ---------------------------------------------------------------------------------------------- model
def compose_train_config(overrides: list[str]) -> Any:
    """The ``src.train`` config (``conf/train.yaml``) with ``overrides``, as ``python -m src.train`` composes
    it (without the Hydra runtime node)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def build_module(model: str, extra: list[str] | None = None) -> L.LightningModule:
    """The LightningModule ``src.train`` builds for ``experiment=gca_refine model=<model>``."""
    from hydra.utils import instantiate

    cfg = compose_train_config(["experiment=gca_refine", f"model={model}", *(extra or [])])
    return instantiate(cfg.model)


def compile_networks(module: Any) -> list[str]:
    """``nn.Module.compile()`` (in place: state-dict keys unchanged) on the networks the training step calls:
    the coarse generator, the refine pyramid and the discriminator. Returns their names."""
    names = []
    for name in ("net.coarse", "net.refine", "discriminator"):
        obj = module
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.Module):
            obj.compile()
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------------- timing
class StepClock(Callback):
    """Wall-clock time (after a device synchronise) at the start of training and at the end of every
    training batch."""

    def __init__(self) -> None:
        self.t_start = 0.0
        self.t_end: list[float] = []

    @staticmethod
    def _sync(trainer: L.Trainer) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(trainer)
        self.t_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._sync(trainer)
        self.t_end.append(time.perf_counter())

    def summary(self, warmup: int, images_per_step: int) -> dict[str, float]:
        """Median / mean step period (s) over the batches after ``warmup``, images/s, warm-up seconds."""
        if len(self.t_end) < warmup + 2:
            raise BenchmarkError(f"only {len(self.t_end)} steps ran; need warmup {warmup} + at least 2")
        periods = [b - a for a, b in zip(self.t_end[warmup - 1 : -1], self.t_end[warmup:], strict=True)]
        med = statistics.median(periods)
        mean = (self.t_end[-1] - self.t_end[warmup - 1]) / len(periods)
        return {
            "steps_timed": len(periods),
            "step_s_median": med,
            "step_s_mean": mean,
            "step_s_min": min(periods),
            "step_s_max": max(periods),
            "images_per_s": images_per_step / med,
            "images_per_s_mean": images_per_step / mean,
            "steps_per_s_mean": 1.0 / mean,
            "warmup_s": self.t_end[warmup - 1] - self.t_start,
        }


@dataclasses.dataclass(frozen=True)
class Case:
    """One measured configuration."""

    name: str
    devices: int = 1
    precision: str = "bf16-mixed"
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    bf16_grads: bool = False  # DDP: all-reduce gradients in bf16 (torch's bf16_compress_hook)


def make_trainer(
    accelerator: str, case: Case, steps: int, callbacks: list[Callback], **kwargs: Any
) -> L.Trainer:
    """A Trainer for timing: ``steps`` training batches of one epoch, no validation, logger, checkpoints or
    progress bar. N devices use plain DDP (the step's one backward pass gives every parameter a gradient)."""
    strategy: Any = DDP_STRATEGY if case.devices > 1 else "auto"
    if case.devices > 1 and case.bf16_grads:
        from lightning.pytorch.strategies import DDPStrategy
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        strategy = DDPStrategy(ddp_comm_hook=default_hooks.bf16_compress_hook)
    return L.Trainer(
        accelerator=accelerator,
        devices=case.devices,
        strategy=strategy,
        precision=case.precision,
        benchmark=True if case.cudnn_benchmark else None,  # None: src.train's default (cuDNN's own: off)
        max_epochs=1,
        max_steps=-1,
        limit_train_batches=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **kwargs,
    )


def allreduce_timing(module: L.LightningModule, trainer: L.Trainer, repeats: int = 10) -> dict[str, float]:
    """Median time of one all-reduce of a float32 buffer as large as all the module's parameters (what DDP
    moves per backward pass: every bucket, once per batch), and its bus
    bandwidth (2 (n-1)/n bytes per element over the time, NCCL's convention). Every rank must call it."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return {}
    device = trainer.strategy.root_device
    numel = sum(p.numel() for p in module.parameters())
    buf = torch.randn(numel, device=device)
    times = []
    for i in range(repeats + 3):
        dist.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        dist.all_reduce(buf)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    world = dist.get_world_size()
    return {
        "allreduce_params": numel,
        "allreduce_ms": 1e3 * med,
        "allreduce_bus_gbps": 2 * (world - 1) / world * 4 * numel / med / 1e9,
    }


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any] | None:
    """Fit ``warmup + steps`` batches of pre-made tensors; the summary dict on global rank 0, else None."""
    width, height = parse_size(args.scale)
    module = build_module(args.model)
    compiled: list[str] = []
    if case.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if case.compile:
        compiled = compile_networks(module)
    n = args.warmup + args.steps
    gpu = args.accelerator == "gpu"
    data = PremadeBatches(n, args.batch, width, height, pin=gpu, channels_last=case.channels_last)
    loader = DataLoader(data, batch_size=None, shuffle=False, num_workers=0)
    clock = StepClock()
    # every rank iterates its own copy of the synthetic batches: no sampler needed
    trainer = make_trainer(args.accelerator, case, n, [clock], use_distributed_sampler=False)
    if gpu and case.devices == 1:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, loader)
    comm = allreduce_timing(module, trainer) if case.devices > 1 else {}
    if not trainer.is_global_zero:
        return None
    out: dict[str, Any] = {
        **dataclasses.asdict(case),
        "world_size": trainer.world_size,
        "batch_per_device": args.batch,
        "global_batch": args.batch * trainer.world_size,
        "scale": [width, height],
        "model": args.model,
        "compiled": compiled,
        **clock.summary(args.warmup, args.batch * trainer.world_size),
        **comm,
    }
    if gpu:
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
        del trainer, module
        torch.cuda.empty_cache()  # the next case (or a DDP rank on this GPU) starts with this memory free
    return out


_CHILDREN: set[int] = set()  # process groups of running cases, killed if this process is terminated


def _kill_children_and_exit(signum: int, frame: Any) -> None:
    for pgid in list(_CHILDREN):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sys.exit(128 + signum)


def run_subprocess(
    cmd: list[str], name: str, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``cmd + ["--case-json", FILE]`` in a new process session and return the JSON it wrote to FILE;
    the whole process group (with any ranks it launched) is killed after ``timeout`` seconds, or when this
    process gets SIGTERM (e.g. from ``timeout``). ``env``: variables added to this process's environment."""
    signal.signal(signal.SIGTERM, _kill_children_and_exit)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "case.json"
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen([*cmd, "--case-json", str(result)], start_new_session=True, env=full_env)
        _CHILDREN.add(proc.pid)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise BenchmarkError(f"{name}: no result within {timeout:.0f} s") from None
        finally:
            _CHILDREN.discard(proc.pid)
        if not result.exists():
            raise BenchmarkError(f"{name}: the case's process exited with code {rc} and no result")
        out = json.loads(result.read_text())
        if rc != 0:  # e.g. a crash while tearing down the process group, after the measurement
            out["exit_code"] = rc
        return out


def run_case_subprocess(case: Case, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    """Run ``case`` in a fresh ``python`` process and return rank 0's summary (killed after ``timeout``).
    Used for DDP (Lightning's ddp re-executes that command per rank) and for ``torch.compile`` (its compile
    time cannot be interrupted in-process)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_throughput", "--accelerator", args.accelerator]
    cmd += ["--model", args.model, "--scale", args.scale, "--batch", str(args.batch)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--case", json.dumps(dataclasses.asdict(case))]
    return run_subprocess(cmd, case.name, timeout)


# ---------------------------------------------------------------------------------------------- report
def device_name(accelerator: str) -> str:
    if accelerator == "gpu" and torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"{len(names)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def print_table(rows: list[dict[str, Any]], baseline: str) -> None:
    """Median step, images/s and the ratio to ``baseline`` per case (failed / skipped cases say why)."""
    base = next((r for r in rows if r.get("name") == baseline and "images_per_s" in r), None)
    head = f"{'case':28} {'GPUs':>4} {'precision':>10} {'step ms':>8} {'img/s':>8} {'mean img/s':>10}"
    print(f"\n{head} {'vs base':>8} {'warm-up s':>9} {'mem GB':>7}")
    for r in rows:
        if "images_per_s" not in r:
            print(f"{r['name']:28} {r.get('status', 'failed')}: {r.get('error', '')}")
            continue
        ratio = f"{r['images_per_s'] / base['images_per_s']:7.2f}x" if base else "       -"
        print(
            f"{r['name']:28} {r['world_size']:4d} {r['precision']:>10} {1e3 * r['step_s_median']:8.1f} "
            f"{r['images_per_s']:8.1f} {r['images_per_s_mean']:10.1f} {ratio} {r['warmup_s']:9.1f} "
            f"{r.get('peak_mem_gb', float('nan')):7.2f}"
        )


def knob_cases(knobs: list[str]) -> list[Case]:
    cases = []
    for k in knobs:
        if k == "fp32":
            cases.append(Case("1gpu_fp32", precision="32-true"))
        elif k == "channels_last":
            cases.append(Case("1gpu_bf16_channels_last", channels_last=True))
        elif k == "cudnn_benchmark":
            cases.append(Case("1gpu_bf16_cudnn_benchmark", cudnn_benchmark=True))
        elif k == "compile":
            cases.append(Case("1gpu_bf16_compile", compile=True))
        elif k == "ddp_bf16_grads":
            pass  # a DDP variant: planned next to the DDP case
        else:
            raise BenchmarkError(f"unknown knob {k!r}; allowed: {', '.join(KNOBS)}")
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerator", default=None, help="gpu (default when CUDA is there) or cpu")
    ap.add_argument("--devices", type=int, default=None, help="GPUs of the DDP case (default: all; <2: none)")
    ap.add_argument("--model", default="gca_refine", help="model config (conf/model/NAME.yaml)")
    ap.add_argument("--scale", default="512x256", help="image WxH (the paper's 512x256)")
    ap.add_argument("--batch", type=int, default=8, help="batch per device")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per case")
    ap.add_argument("--warmup", type=int, default=8, help="untimed first steps per case")
    ap.add_argument("--knobs", default=",".join(KNOBS), help=f"1-GPU knobs, any of {','.join(KNOBS)}")
    ap.add_argument("--budget", type=float, default=None, help="seconds; later cases are skipped past it")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case (DDP subprocess)
    ap.add_argument("--case-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.accelerator is None:
        if not torch.cuda.is_available():
            print("gpu_throughput: no CUDA device here; pass --accelerator cpu for a smoke run")
            return
        args.accelerator = "gpu"
    if args.warmup < 1:
        raise BenchmarkError("--warmup must be >= 1 (the first period needs a previous step)")
    if args.case is not None:  # one case in this process (and the ranks Lightning launches from it)
        summary = run_case(Case(**json.loads(args.case)), args)
        if summary is not None and args.case_json:
            Path(args.case_json).write_text(json.dumps(summary))
        return

    t0 = time.perf_counter()
    visible = torch.cuda.device_count() if args.accelerator == "gpu" else 2
    n_ddp = visible if args.devices is None else args.devices
    print(
        f"gpu_throughput: {device_name(args.accelerator)}; torch {torch.__version__}, lightning "
        f"{L.__version__}; model {args.model}, {args.scale} (WxH), batch {args.batch}/device, "
        f"median of {args.steps} steps after {args.warmup}",
        flush=True,
    )
    plan = [Case("1gpu_bf16")]
    knob_names = [k for k in args.knobs.split(",") if k]
    if n_ddp >= 2:
        plan.append(Case(f"ddp{n_ddp}_bf16", devices=n_ddp))
        if "ddp_bf16_grads" in knob_names:
            plan.append(Case(f"ddp{n_ddp}_bf16_bf16grads", devices=n_ddp, bf16_grads=True))
    knobs = knob_cases(knob_names)
    # the baseline again (its spread against the first run is the noise level), before the slow compile case
    plan += [c for c in knobs if not c.compile] + [Case("1gpu_bf16_again")] + [c for c in knobs if c.compile]
    rows: list[dict[str, Any]] = []
    for case in plan:
        write_report(args, rows)  # after every case: a run killed from outside keeps what it measured
        elapsed = time.perf_counter() - t0
        if args.budget is not None and elapsed > args.budget:
            rows.append({"name": case.name, "status": "skipped", "error": f"budget spent ({elapsed:.0f} s)"})
            continue
        print(f"-- {case.name} ({elapsed:.0f} s elapsed)", flush=True)
        try:
            if case.devices > 1 or case.compile:
                left = (args.budget - elapsed) if args.budget is not None else 900.0
                row = run_case_subprocess(case, args, timeout=max(left, 30.0))
            else:
                row = run_case(case, args)
            rows.append(row)
            print(f"   {row['images_per_s']:.1f} images/s (median step {1e3 * row['step_s_median']:.1f} ms)")
        except Exception as err:  # one failed case must not lose the others
            rows.append({"name": case.name, "status": "failed", "error": f"{type(err).__name__}: {err}"})
            print(f"   FAILED: {type(err).__name__}: {err}", flush=True)

    base = next((r for r in rows if r["name"] == "1gpu_bf16" and "images_per_s" in r), None)
    ratios = {}
    if base:
        for r in rows:
            if "images_per_s" in r and r is not base:
                ratios[f"{r['name']}/1gpu_bf16"] = r["images_per_s"] / base["images_per_s"]
        for r in rows:
            if r.get("compile") and "warmup_s" in r:
                r["compile_overhead_s"] = r["warmup_s"] - base["warmup_s"]
    print_table(rows, "1gpu_bf16")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")
    for ddp in (r for r in rows if r["name"].startswith("ddp") and "images_per_s" in r):
        if base:
            scaling = ratios[ddp["name"] + "/1gpu_bf16"]
            print(
                f"  {ddp['name']}: scaling {ddp['world_size']} GPUs vs 1: {scaling:.2f}x "
                f"(floor 1.7x, goal 1.9x for 2 GPUs); per-device batch {args.batch}"
            )
        if "allreduce_ms" in ddp:
            print(
                f"    one all-reduce of {ddp['allreduce_params'] / 1e6:.1f} M fp32 values: "
                f"{ddp['allreduce_ms']:.2f} ms ({ddp['allreduce_bus_gbps']:.0f} GB/s bus bandwidth)"
            )
    for r in rows:
        if "compile_overhead_s" in r:
            nets = ", ".join(r["compiled"])
            print(f"  torch.compile: {r['compile_overhead_s']:.1f} s extra warm-up ({nets})")
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_report(args, rows, ratios)


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]], ratios: dict | None = None) -> None:
    """All results so far as JSON at ``--json`` (atomically), if given."""
    if not args.json:
        return
    from src.utils import atomic_write_text

    report = {
        "benchmark": "gpu_throughput",
        "device": device_name(args.accelerator),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "args": {k: v for k, v in vars(args).items() if not k.startswith("case")},
        "baseline": "1gpu_bf16",
        "cases": rows,
        "ratios": ratios or {},
    }
    atomic_write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
