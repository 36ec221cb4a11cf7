"""The `suite` command line: a thin Typer layer that parses options, calls library functions
and prints with Rich. Bad input (SuiteError) prints one red line and exits with code 2."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from suite.errors import SuiteError
from suite import defaults as D
from suite.progress import console
from suite.values import parse_fraction, parse_fractions, parse_ints, parse_list

# Plain (click) help: it wraps to any width without cutting, and shows no type beside a flag
# (Typer's Rich help prints `<bool>` there, even beside --help).
app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Neuromorphic data, SNN/ANN twins, adversarial attacks and CKA analysis.")
data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List, check and download datasets.")
app.add_typer(data_app, name="data")

err_console = console.__class__(stderr=True, highlight=False)


def fail(message: str) -> None:
    """The one error helper: print one red line on stderr and exit 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, markup=True)
    raise typer.Exit(2)


def handles_errors(fn):
    """Turn SuiteError from library code into `fail`; Ctrl-C into a short line and exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SuiteError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130)
    return wrapper


def command(app_: typer.Typer = app, name: str | None = None, **settings):
    """Register a CLI command with the error handling applied."""
    def register(fn):
        return app_.command(name=name, **settings)(handles_errors(fn))
    return register


# ----------------------------------------------------------------------------- shared options
DATA_ROOT = typer.Option(Path("datasets"), "--data-root", help="Folder holding datasets and frame caches.")
DEVICE = typer.Option("auto", help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N.")
SEED = typer.Option(D.SEED, help="Random seed (data split, initialisation, order).")


def _where(out: Path, device: str, data_root: Path):
    from suite.where import Where

    return Where(out=out, device=device, data_root=data_root)


@command(name="train")
def train_cmd(
    dataset: str = typer.Option(D.DATASET, help="Dataset name (see `suite data list`)."),
    arch: str = typer.Option(D.ARCH, help="resnet20/38/56/110/164, vgg11, vgg16."),
    kind: str = typer.Option(D.KIND, help="snn (LIF neurons) or ann (ReLU twin)."),
    timesteps: int = typer.Option(D.TIMESTEPS, help="SNN time steps T (event data: the number of frame bins)."),
    width: float = typer.Option(D.WIDTH, help="Channel width multiplier."),
    no_residual: bool = typer.Option(not D.RESIDUAL, "--no-residual", help="Remove residual connections."),
    surrogate: str = typer.Option(D.SURROGATE, help="Surrogate gradient (snntorch): atan, fast_sigmoid, sigmoid, triangular, ste, spike_rate_escape."),
    tau: float = typer.Option(D.TAU, help="LIF membrane time constant (leak 1 - 1/tau)."),
    threshold: float = typer.Option(D.THRESHOLD, help="LIF firing threshold."),
    size: Optional[int] = typer.Option(None, help="Input side in pixels (default: the dataset's)."),
    epochs: int = typer.Option(D.EPOCHS, help="Training epochs."),
    batch_size: int = typer.Option(D.BATCH_SIZE, help="Batch size."),
    lr: float = typer.Option(D.LR, help="Initial SGD learning rate (cosine schedule)."),
    tet: bool = typer.Option(False, "--tet", help="Use the TET loss (mean of per-step cross-entropy) for SNNs."),
    workers: int = typer.Option(D.WORKERS, help="DataLoader worker processes."),
    seed: int = SEED,
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
    out: Path = typer.Option(Path("runs"), help="Folder for the checkpoint."),
    name: Optional[str] = typer.Option(None, help="Checkpoint file name (default from the settings)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last epoch."),
    amp: bool = typer.Option(D.AMP, "--amp/--no-amp", help="Mixed precision on CUDA (bfloat16 where supported)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="Under torchrun: BatchNorm statistics over all GPUs."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels, so a resumed "
                                       "CUDA run ends with the same weights (slower)."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", help="Folder for TensorBoard logs: loss, "
                                               "accuracy, learning rate, firing rates (needs tensorboard)."),
) -> None:
    """Train an SNN or its ANN twin.

    Writes OUT/NAME.pt after every epoch; --resume continues from it. Under torchrun
    (`torchrun --nproc_per_node N -m suite train ...`) the processes train one model together:
    --batch-size is the global batch, and rank 0 prints and writes."""
    from suite import distributed
    from suite.models import ModelSpec
    from suite.report.show import show_training
    from suite.train import Optimisation, TrainConfig, train_data, train_one

    model = ModelSpec(arch=arch, kind=kind, width=width, residual=not no_residual, timesteps=timesteps,
                      tau=tau, threshold=threshold, surrogate=surrogate)
    optim = Optimisation(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, tet=tet, amp=amp,
                         workers=workers, sync_bn=sync_bn, deterministic=deterministic)
    config = TrainConfig(data=train_data(dataset, model, size=size, seed=seed), model=model, optim=optim)
    result = train_one(config, _where(out, device, data_root), name=name, resume=resume, tensorboard=tensorboard)
    if distributed.is_main():
        show_training(result)


@command(name="demo")
def demo_cmd(
    out: Optional[Path] = typer.Option(None, help="Put everything under OUT (runs/, attacks/, reports/); default: here."),
    epochs: Optional[int] = typer.Option(None, help="Override the demo's training epochs."),
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
) -> None:
    """Run the whole pipeline on the embedded digits.

    SNN/ANN twins, CKA between them and over time, FGSM and PGD at eps 0 to 8/255 with
    clean-vs-adversarial CKA, an SNN on simulated events, and an HTML page of it all."""
    from suite.demo import run_demo
    from suite.report.show import show_demo

    show_demo(run_demo(_where(out if out is not None else Path("."), device, data_root), epochs=epochs))


# `--compare clean adv`: the second word arrives as an extra argument (ctx.args)
@command(name="cka", context_settings={"allow_extra_args": True})
def cka_cmd(
    ctx: typer.Context,
    compare: str = typer.Option("models", "--compare", help="models, layers, time, clean adv (two words) "
                                "or static event (two words)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint of the (first) model; "
                                         "clean adv: default the attacked model."),
    model2: Optional[Path] = typer.Option(None, "--model2", help="Second checkpoint (--compare models; static event: the event model, "
                                         "else --model also sees event-count images)."),
    attack: Optional[Path] = typer.Option(None, "--attack", help="Adversarial store (--compare clean adv)."),
    method: Optional[str] = typer.Option(None, help="clean adv: which attack of the store (when it holds several)."),
    other_model: bool = typer.Option(False, "--other-model", help="clean adv: allow --model to differ from the attacked model."),
    dataset: Optional[str] = typer.Option(None, help="Dataset (default: the checkpoint's)."),
    split: str = typer.Option(D.SPLIT, help="Dataset split."),
    layers: Optional[str] = typer.Option(None, help="Comma-separated module names or patterns (default: block outputs)."),
    time: str = typer.Option(D.CKA_TIME, "--time", help="SNN features over time: mean (firing rate), concat, or each time step."),
    samples: Optional[int] = typer.Option(D.CKA_SAMPLES, help="Number of samples (seeded subset of the split)."),
    batch_size: int = typer.Option(D.CKA_BATCH_SIZE, help="Minibatch size (>= 4; HSIC is averaged over minibatches)."),
    bootstrap: int = typer.Option(0, help="Bootstrap resamples over minibatches for 95% intervals (0: off)."),
    measure: str = typer.Option("linear-cka", "--measure", help="Similarity measures, linear-cka first: any of "
                                "linear-cka, rbf-cka, procrustes (angular Procrustes similarity), knn (mutual "
                                "10-nearest-neighbour overlap); e.g. linear-cka,procrustes."),
    seed: int = SEED,
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
    out: Path = typer.Option(Path("reports"), help="Folder for the HDF5 result and figure."),
    name: Optional[str] = typer.Option(None, help="Result file name without .h5 (default from the models)."),
) -> None:
    """Compare layers with Centered Kernel Alignment (CKA).

    Model vs model, a model vs itself, time steps, clean vs adversarial, static vs event.
    Writes OUT/NAME.h5 and a PNG heatmap. Under torchrun the processes share the batches;
    rank 0 writes the files and prints."""
    from suite import distributed
    from suite.cka.jobs import run_comparison
    from suite.cka.settings import CKAConfig, CKAInputs, parse_compare
    from suite.report.show import show_cka_runs

    config = CKAConfig(compare=parse_compare([compare, *ctx.args]),
                       layers=None if layers is None else parse_list(layers, "--layers"), time=time,
                       samples=samples, batch_size=batch_size, seed=seed, split=split, bootstrap=bootstrap,
                       measures=parse_list(measure, "--measure"))
    inputs = CKAInputs(model=model, model2=model2, attack=attack, method=method, other_model=other_model,
                       dataset=dataset)
    runs = run_comparison(config, inputs, _where(out, device, data_root), name=name)
    if distributed.is_main():
        show_cka_runs(runs)


@command(name="attack")
def attack_cmd(
    model: Path = typer.Option(..., "--model", help="Checkpoint of the model to attack."),
    method: Optional[str] = typer.Option(None, help="One or more of fgsm, pgd, apgd-ce, apgd-dlr, apgd-t, fab-t, sa-pgd, "
                                         "square (gradient-free), autoattack, ensemble (SNN surrogate ensemble, see "
                                         "--budget); under --threat events: event-pgd, event-sparse (the default there), "
                                         "event-retime, event-random, event-random-retime. e.g. pgd,square. Several "
                                         "methods add a worst-case row. Default: "
                                         f"{D.ATTACK_DEFAULT['snn'][0]} through {D.ATTACK_DEFAULT['snn'][1]} for an SNN, "
                                         f"{D.ATTACK_DEFAULT['ann'][0]} for an ANN (strong single attacks, an upper bound "
                                         "on robustness: quote ensemble for an SNN, autoattack for an ANN)."),
    eps: Optional[str] = typer.Option(None, help="--threat frames: budget(s) in units of the [0, 1] input range: "
                                      "8/255 (the default), 0.03, or a list 0,2/255,8/255 for a robustness curve (0 = "
                                      "clean pass). For event frames, 1 is the full frame range (4 events per pixel "
                                      "and bin): a frame-space perturbation, not realisable as events."),
    threat: str = typer.Option(D.THREAT, "--threat", help="frames: L-inf on the model's input; events (event data): "
                               "adversarial event streams, events added to or removed from each recording (or moved "
                               "between time bins), seen through the same frame pipeline."),
    events: Optional[str] = typer.Option(None, "--events", help="--threat events: budget(s) in events per sample, added "
                                         "plus removed (moved, for the retiming attacks), e.g. 0,10,50,200 (the "
                                         "default)."),
    max_shift: Optional[int] = typer.Option(None, "--max-shift", help="event-retime and event-random-retime: the largest "
                                            "shift of an event, in time bins (default: any)."),
    alpha: str = typer.Option(D.ALPHA, help="PGD step size, same units as --eps."),
    steps: int = typer.Option(D.STEPS, help="PGD steps."),
    iterations: int = typer.Option(D.ITERATIONS, help="APGD-CE/DLR/T and FAB-T iterations (AutoAttack standard: 100)."),
    queries: int = typer.Option(D.QUERIES, help="Square queries (AutoAttack standard: 5000)."),
    random_start: bool = typer.Option(True, "--random-start/--no-random-start", help="PGD random start in the eps ball."),
    grad: Optional[str] = typer.Option(None, help="SNN gradient: bptt (through time; the default of a named "
                                       "method), bptr (through the spike rate), rga (rate gradient approximation), "
                                       "hart (rate and temporal), pdsg (potential-dependent Gaussian surrogate), assg "
                                       "(adaptive-sharpness surrogate; the default attack's), transfer (crafted on "
                                       "--source). Square ignores it."),
    attack_surrogate: Optional[str] = typer.Option(None, help="Surrogate(s) the attacker uses (bptt), e.g. "
                                                   "atan,fast_sigmoid,pcw:0.5: each gradient attack runs once per "
                                                   "surrogate; pcw:W, exp:W, rect:W are attacker shapes of width W; "
                                                   "default: the training one."),
    hart_gamma: float = typer.Option(D.HART_GAMMA, "--hart-gamma", help="--grad hart: width of its triangular surrogate, the "
                                     "retention parameter (wide: rate only; narrow: steps near threshold)."),
    assg_sharpness: float = typer.Option(D.ASSG_SHARPNESS, "--assg-sharpness", help="--grad assg: A in (0, 0.49]; the "
                                         "surrogate holds 2A of its mass within the mean |membrane - threshold|."),
    budget: str = typer.Option(D.BUDGET, help="--method ensemble: quick (minutes on a CPU) or standard (the "
                               "full ensemble at AutoAttack's budgets); the budgets used are printed and stored."),
    source: Optional[Path] = typer.Option(None, help="Checkpoint that crafts the examples (--grad transfer)."),
    dataset: Optional[str] = typer.Option(None, help="Dataset (default: the checkpoint's)."),
    split: str = typer.Option(D.SPLIT, help="Dataset split."),
    samples: Optional[int] = typer.Option(D.ATTACK_SAMPLES, help="Attack the first N samples of the split."),
    batch_size: int = typer.Option(D.ATTACK_BATCH_SIZE, help="Batch size."),
    check: bool = typer.Option(False, "--check", help="Also run PGD at eps 64/255: near-zero accuracy expected, else gradient masking."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its finished batches."),
    seed: int = SEED,
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
    out: Path = typer.Option(Path("attacks"), help="Folder for the adversarial store."),
    name: Optional[str] = typer.Option(None, help="Store file name without .h5 (default: the checkpoint's, the "
                                       "methods and the gradient they use)."),
) -> None:
    """Attack a model (FGSM to AutoAttack); print robust accuracy.

    Runs torchattacks and writes an adversarial store (HDF5) and its robustness curve, with the
    budgets used, a worst-case row when several attacks ran, the sanity checks and the masking
    verdict (--check adds the large-eps test). Under torchrun the processes share the batches."""
    from suite import distributed
    from suite.attacks.jobs import run_attack
    from suite.attacks.settings import AttackConfig
    from suite.report.show import show_attack_run

    config = AttackConfig(methods=parse_list(method, "--method") if method is not None else (),
                          eps=parse_fractions(eps, "--eps") if eps is not None else None, threat=threat,
                          events=parse_ints(events, "--events") if events is not None else (), max_shift=max_shift,
                          alpha=parse_fraction(alpha, "--alpha"), steps=steps, iterations=iterations,
                          queries=queries, random_start=random_start, grad=grad,
                          attack_surrogates=parse_list(attack_surrogate, "--attack-surrogate") if attack_surrogate else (),
                          samples=samples, batch_size=batch_size, seed=seed, split=split, hart_gamma=hart_gamma,
                          assg_sharpness=assg_sharpness, budget=budget)
    run = run_attack(model, config, _where(out, device, data_root), source=source, dataset=dataset, check=check,
                     name=name, resume=resume)
    if distributed.is_main():
        show_attack_run(run, model.stem)


@command(name="experiment")
def experiment_cmd(
    recipe: str = typer.Argument(..., help="A shipped recipe (width-depth, residual, temporal, event, adversarial, "
                                 "all) or a recipe file (.toml)."),
    models: Path = typer.Option(Path("runs"), "--models", help="Checkpoints to reuse when their model, data and "
                                "training config match; new ones are trained into this folder."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default reports/experiments/NAME)."),
    dataset: Optional[str] = typer.Option(None, help="Override the recipe's static dataset (e.g. cifar10)."),
    arch: Optional[str] = typer.Option(None, help="Override the recipe's (base) architecture."),
    epochs: Optional[int] = typer.Option(None, help="Override the training epochs."),
    timesteps: Optional[str] = typer.Option(None, help="Override T (temporal: a list such as 2,4,8)."),
    width: Optional[float] = typer.Option(None, help="Override the (base) width multiplier."),
    seeds: Optional[str] = typer.Option(None, help="Training seeds, e.g. 0,1,2: every model trained once per seed; "
                                        "each finding reports d per seed, the mean and a 95% interval."),
    protocol: Optional[str] = typer.Option(None, help="suite, snncka (the released code's layers, time steps "
                                           "concatenated) or suite,snncka (the recipes' default)."),
    show: bool = typer.Option(False, "--show", help="Print the recipe as TOML (to copy and edit) and exit."),
    device: str = DEVICE,
    data_root: Path = DATA_ROOT,
) -> None:
    """Run one of the paper's analyses end to end.

    Trains or reuses models, runs attacks and CKA, writes results, figures,
    OUT/experiment-NAME.json and the page OUT/experiment-NAME.html, and prints each
    finding next to the paper's claim. An
    interrupted experiment resumes where it stopped."""
    from suite.experiments import load_recipe, run_experiment
    from suite.experiments.recipe import recipe_source
    from suite.experiments.runner import default_out
    from suite.report.show import show_experiment

    if show:
        typer.echo(recipe_source(recipe)[0], nl=False)
        return
    overrides = {k: v for k, v in dict(dataset=dataset, arch=arch, epochs=epochs, width=width).items() if v is not None}
    if timesteps is not None:
        overrides["timesteps"] = parse_ints(timesteps, "--timesteps")
    if seeds is not None:
        overrides["seeds"] = parse_ints(seeds, "--seeds")
    if protocol is not None:
        overrides["protocol"] = parse_list(protocol, "--protocol")
    loaded = load_recipe(recipe, overrides)
    where = _where(out if out is not None else default_out(loaded.name), device, data_root)
    run = run_experiment(loaded, where, models=models, log=lambda line: console.print(line, markup=False, soft_wrap=True))
    show_experiment(run)


@command(name="report")
def report_cmd(
    paths: Optional[List[Path]] = typer.Argument(None, help="Result files or folders (default: reports/, attacks/, runs/)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML page (figures inline, opens offline)."),
    figures: Optional[Path] = typer.Option(None, "--figures", help="Also write every figure into this folder."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Figure formats for --figures: png, pdf, svg, or a list (png,pdf). Default png."),
) -> None:
    """Summarise results in the terminal, an HTML page or figure files.

    Per file: what was compared (models, data, eps, T, samples), the CKA diagonal or the
    robustness table, notable layers. Files that cannot be read are named and skipped."""
    from suite.report.figures import parse_formats
    from suite.report.make import make_report
    from suite.report.show import show_report

    if fmt is not None and figures is None:
        fail("--format sets the formats of --figures DIR; give --figures too")
    formats = parse_formats(fmt) if fmt is not None else ("png",)
    show_report(make_report(paths, html=html, figures=figures, formats=formats))


@command(data_app, name="list")
def data_list(data_root: Path = DATA_ROOT) -> None:
    """Show every dataset and whether its files are present.

    Kind, input shape, classes, where its files go, and the size of its frame caches."""
    from suite.data.manage import dataset_rows
    from suite.report.show import show_datasets

    show_datasets(dataset_rows(data_root), data_root)


@command(data_app, name="check")
def data_check(name: str = typer.Argument(..., help="Dataset name."), data_root: Path = DATA_ROOT) -> None:
    """Name a dataset's missing or corrupt files.

    Reads every raw file; exits with code 2 if any is missing or corrupt."""
    from suite.data.manage import check_dataset
    from suite.report.show import show_check

    check = check_dataset(name, data_root)
    show_check(check, name)
    if check.problems:
        fail(f"dataset {name} has {check.problems} missing or corrupt file(s) under {check.folder}")


@command(data_app, name="download")
def data_download(name: str = typer.Argument(..., help="Dataset name."), data_root: Path = DATA_ROOT) -> None:
    """Download a dataset (the only command that downloads).

    Uses the dataset library's own downloader and checksums."""
    from suite.data.manage import download_dataset
    from suite.report.layout import print_line

    print_line(console, f"{name}: downloaded to {download_dataset(name, data_root)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
