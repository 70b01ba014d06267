"""The ``hyenadna`` command line: thin Click commands over the library.

Each command parses its options, builds a config, calls one library function and prints a
one-line summary. Results go to --out-dir / -o, the summary to stdout, logs and progress bars to
stderr. Known errors (bad input files, unknown config keys, corrupt checkpoints) print one
``Error: ...`` line and exit 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from hyenadna import __version__
from hyenadna.config import AGGREGATES, PRECISIONS, SCORE_FORMATS  # option choices

# Exceptions that mean "the user's input is wrong": reported in one line, never a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, KeyError, OSError)


class HyenaGroup(click.Group):
    """Click group that turns user errors into one ``Error:`` line (unless --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `hyenadna score ... -o - | head`: the reader left, not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except USER_ERRORS as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            if isinstance(err, KeyError):
                message = f"missing key {message}"
            raise click.ClickException(message) from None


@click.group(cls=HyenaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyenadna")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, verbose: int, debug: bool) -> None:
    """HyenaDNA: long-context DNA language model — pretrain, fine-tune, score, embed."""
    ctx.obj = {"debug": debug, "verbose": verbose}
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Run YAML whose 'model' section is printed (default: the tiny-1k model).")
@click.option("--pretrained", type=click.Path(), default=None,
              help="Official release directory or hyenadna .ckpt to describe instead.")
@click.option("--set", "overrides", multiple=True, metavar="model.KEY=VALUE",
              help="Override a model field, e.g. --set model.n_layer=4 (repeatable).")
def info(config_path: str | None, pretrained: str | None, overrides: tuple[str, ...]) -> None:
    """Print a model config and its parameter count."""
    import yaml

    from hyenadna.checkpoint import read_model_config
    from hyenadna.config import to_dict
    from hyenadna.model import HyenaDNA

    if pretrained:
        cfg = read_model_config(pretrained)[0]
    else:
        cfg = model_section(config_path, overrides)
    model = HyenaDNA(cfg)
    click.echo(yaml.safe_dump({"model": to_dict(cfg)}, sort_keys=False).rstrip())
    click.echo(f"parameters: {model.num_parameters():,}")


def model_section(config_path: str | None, overrides: tuple[str, ...]):
    """The ``model`` section of a run YAML (other sections belong to other commands)."""
    from hyenadna.config import ModelConfig, load_config, read_yaml

    data = read_yaml(config_path) if config_path else {}
    return load_config(ModelConfig, None, overrides, base=data.get("model") or {},
                       prefix="model.")


# ---- pretrain / evaluate commands (issue 3) ----


def _split_options(func):
    """--bed, --valid-chroms, --test-chroms: shared by pretrain and evaluate."""
    for option in reversed([
        click.option("--bed", type=click.Path(dir_okay=False), default=None, show_default=True,
                     help="BED of 'chrom start end split' rows (official sequences_human.bed)."),
        click.option("--valid-chroms", default=None, show_default=True,
                     help="Comma-separated contigs held out for validation (e.g. chr21)."),
        click.option("--test-chroms", default=None, show_default=True,
                     help="Comma-separated contigs held out for testing (e.g. chr22,chrX)."),
    ]):
        func = option(func)
    return func


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              show_default=True, help="Run YAML, e.g. configs/pretrain/small-32k.yaml (default: "
              "the tiny demo; with --resume: OUT_DIR/config.yaml).")
@click.option("--genome", default=None, show_default=True,
              help="Reference FASTA, plain or BGZF .fa.gz (default: the embedded demo genome).")
@_split_options
@click.option("--out-dir", default=None, show_default=True,
              help="Folder for checkpoints, logs and plot (default: runs/pretrain).")
@click.option("--max-steps", type=int, default=None, show_default=True,
              help="Optimizer steps of the run (the cosine schedule ends there).")
@click.option("--max-time", default=None, show_default=True,
              help="Wall-clock budget of this invocation, [[DD:]HH:]MM:SS; then save and stop.")
@click.option("--seed", type=int, default=None, show_default=True,
              help="Seed of the init and of the data order.")
@click.option("--resume", is_flag=True, help="Continue the run in --out-dir from its last.ckpt.")
@click.option("--devices", default=None, show_default=True,
              help="Devices per node for Lightning: a count, 'auto' or ids like '0,1'.")
@click.option("--num-nodes", type=int, default=None, show_default=True,
              help="Machines (Lightning; on SLURM one task per device).")
@click.option("--strategy", type=click.Choice(["auto", "ddp", "ddp_spawn", "fsdp"]),
              default=None, show_default=True, help="Lightning strategy (default: auto).")
@click.option("--accelerator", type=click.Choice(["auto", "cpu", "gpu"]), default=None,
              show_default=True, help="Hardware (default: auto = GPU when present).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config field, e.g. --set train.lr=3e-4 (repeatable).")
@click.pass_context
def pretrain(ctx, config_path, genome, bed, valid_chroms, test_chroms, out_dir, max_steps,
             max_time, seed, resume, devices, num_nodes, strategy, accelerator,
             overrides) -> None:
    """Pretrain HyenaDNA on a reference genome (next-nucleotide prediction)."""
    from pathlib import Path

    from hyenadna.config import PretrainConfig, TrainConfig, load_config, replace_dotted
    from hyenadna.pretrain import pretrain as run_pretrain
    from hyenadna.pretrain_data import DEMO_GENOME

    _lightning_log_level(ctx)
    saved = Path(out_dir or TrainConfig.out_dir) / "config.yaml"
    if resume and config_path is None and saved.is_file():
        config_path = saved
    cfg = replace_dotted(load_config(PretrainConfig, config_path, overrides), {
        "data.genome": genome, "data.bed": bed, "data.valid_chroms": valid_chroms,
        "data.test_chroms": test_chroms, "train.out_dir": out_dir, "train.max_steps": max_steps,
        "train.max_time": max_time, "train.seed": seed, "train.devices": devices,
        "train.num_nodes": num_nodes, "train.strategy": strategy,
        "train.accelerator": accelerator})
    if cfg.data.genome is None and not resume:
        click.echo(f"No --genome given: pretraining on the embedded demo genome {DEMO_GENOME.name}"
                   " (1.5 Mb of human chr22, hg19)", err=True)
    result = run_pretrain(cfg, resume=resume)
    if result.is_global_zero:
        click.echo(_pretrain_summary(result))


def _lightning_log_level(ctx: click.Context) -> None:
    """Lightning's INFO chatter only with -v (its progress bar shows either way)."""
    level = logging.INFO if ctx.obj and ctx.obj.get("verbose") else logging.WARNING
    logging.getLogger("pytorch_lightning").setLevel(level)


def _pretrain_summary(result) -> str:
    """Three lines: where the run stopped and how well, the checkpoints, the plot."""
    m = result.metrics
    quality = (f" · val perplexity {m['val/perplexity']:.3f} · val accuracy "
               f"{m['val/accuracy']:.3f}" if "val/perplexity" in m else "")
    speed = f" · {result.tokens_per_s:,.0f} tokens/s" if result.tokens_per_s else ""
    lines = [f"step {result.global_step} ({result.stop_reason}){quality}{speed}",
             f"checkpoint: {result.last_checkpoint}"
             + (f" (best: {result.best_checkpoint})" if result.best_checkpoint else ""),
             f"plot: {result.plot}"]
    if result.stop_reason == "signal":
        lines.append(f"continue with: hyenadna pretrain --resume --out-dir {result.out_dir}")
    return "\n".join(lines)


@main.command()
@click.option("--checkpoint", required=True, type=click.Path(),
              help="Checkpoint from `hyenadna pretrain` (or an official release folder).")
@click.option("--genome", default=None, show_default=True,
              help="Reference FASTA (default: the genome the checkpoint was trained on).")
@_split_options
@click.option("--split", type=click.Choice(["test", "valid"]), default="test",
              show_default=True, help="Held-out split to score.")
@click.option("--max-windows", type=int, default=None, show_default=True,
              help="Most windows scored (default: the run's data.max_eval_windows).")
@click.option("--accelerator", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="Hardware (auto = GPU when present).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a data field, e.g. --set data.test_ranges=[chr22:46000000-51304566].")
@click.pass_context
def evaluate(ctx, checkpoint, genome, bed, valid_chroms, test_chroms, split, max_windows,
             accelerator, overrides) -> None:
    """Perplexity and next-base accuracy of a checkpoint on a held-out split of a genome."""
    from hyenadna.pretrain import evaluate as run_evaluate

    _lightning_log_level(ctx)
    values = {"data.bed": bed, "data.valid_chroms": valid_chroms,
              "data.test_chroms": test_chroms, "data.max_eval_windows": max_windows}
    r = run_evaluate(checkpoint, genome, overrides, split, accelerator, values)
    click.echo(f"{split} perplexity {r['perplexity']:.4f} · accuracy {r['accuracy']:.4f} · "
               f"loss {r['loss']:.4f} nats/base · {r['tokens']:,.0f} bases in "
               f"{r['windows']:,.0f} windows")


# ---- finetune command (issue 4) ----


@main.command()
@click.option("--task", default=None, show_default=True,
              help="promoter, core-promoter, splice, tf or custom (default: the config's, "
                   "else tf).")
@click.option("--data", type=click.Path(file_okay=False), default=None, show_default=True,
              help="Folder with train/dev/test.csv[.gz] (default: the embedded sample in "
                   "data/gue).")
@click.option("--num-classes", type=int, default=None, show_default=True,
              help="Number of classes of a --task custom CSV (labels 0..K-1).")
@click.option("--pretrained", type=click.Path(), default=None, show_default=True,
              help="Backbone: hyenadna .ckpt or official release folder (default: random init).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              show_default=True, help="Run YAML, e.g. configs/finetune/splice.yaml.")
@click.option("--out-dir", default=None, show_default=True,
              help="Output folder for best.ckpt, metrics.json, config.yaml "
                   "(default: runs/finetune).")
@click.option("--max-epochs", type=int, default=None, show_default=True, help="Most epochs.")
@click.option("--max-steps", type=int, default=None, show_default=True,
              help="Most optimiser steps (-1: no limit).")
@click.option("--batch-size", type=int, default=None, show_default=True,
              help="Training batch size.")
@click.option("--lr", type=float, default=None, show_default=True, help="Peak learning rate.")
@click.option("--freeze-backbone/--no-freeze-backbone", default=None, show_default=True,
              help="Train the head only (default: the config's, else fine-tune everything).")
@click.option("--seed", type=int, default=None, show_default=True, help="Random seed.")
@click.option("--accelerator", type=click.Choice(["auto", "cpu", "gpu"]), default=None,
              show_default=True, help="Hardware (default: auto = GPU when present).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config field, e.g. --set train.rc_average=true (repeatable).")
@click.pass_context
def finetune(ctx: click.Context, task, data, num_classes, pretrained, config_path, out_dir,
             max_epochs, max_steps, batch_size, lr, freeze_backbone, seed, accelerator,
             overrides) -> None:
    """Fine-tune a classifier on a GUE-style task; print dev/test MCC, F1, accuracy, AUROC."""
    from hyenadna.config import FinetuneConfig, load_config, replace_dotted
    from hyenadna.finetune import finetune as run_finetune
    from hyenadna.finetune import resolve_data_dir
    from hyenadna.metrics import format_metrics_table

    _lightning_log_level(ctx)
    cfg = replace_dotted(load_config(FinetuneConfig, config_path, overrides), {
        "data.task": task, "data.path": data, "data.num_classes": num_classes,
        "train.pretrained": pretrained, "train.out_dir": out_dir, "train.max_epochs": max_epochs,
        "train.max_steps": max_steps, "data.batch_size": batch_size, "train.lr": lr,
        "train.freeze_backbone": freeze_backbone, "train.seed": seed,
        "train.accelerator": accelerator})
    folder, embedded = resolve_data_dir(cfg)
    if embedded:
        click.echo(f"No --data given: using the embedded GUE sample {folder} (a few thousand "
                   "real rows; pass --data DIR for a full task folder)")
    result = run_finetune(cfg)
    click.echo(f"task {result['task']['name']} · init {result['init']} · {result['device']} · "
               f"{result['minutes']:.1f} min\nprotocol {result['protocol_detail']}")
    click.echo(format_metrics_table({"dev": result["dev"], "test": result["test"]}))
    click.echo(f"wrote {cfg.train.out_dir}/metrics.json, {result['best_checkpoint']}")


# ---- score / embed / variant-effect commands (issue 5) ----


def _model_options(func):
    """--window, --batch-size, --device, --precision: shared by the three commands below."""
    for option in reversed([
        click.option("--window", type=int, default=None, show_default=True,
                     help="Window length in nt (default: the task's length, else l_max - 2)."),
        click.option("--batch-size", type=int, default=32, show_default=True,
                     help="Sequences per forward pass; with --window it bounds memory."),
        click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto",
                     show_default=True,
                     help="auto = bf16 autocast on CUDA (variant-effect: fp32), fp32 on CPU."),
    ]):
        func = option(func)
    return func


def _fasta_options(func):
    """INPUT.fa, -o, --stride, --min-length: shared by score and embed."""
    for option in reversed([
        click.argument("input_path", metavar="INPUT.fa"),
        click.option("--stride", type=int, default=None, show_default=True,
                     help="Step between windows (default: the window, i.e. no overlap)."),
        click.option("--min-length", type=int, default=1, show_default=True,
                     help="Records shorter than this are an error."),
    ]):
        func = option(func)
    return func


def _echo_summary(summary, output: str) -> None:
    """One-line summary; on stderr when the results themselves go to stdout."""
    click.echo(summary.line(), err=output == "-")


@main.command()
@click.option("--model", "model_path", required=True,
              help="Fine-tuned classifier checkpoint (.ckpt) written by `hyenadna finetune`.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Output .tsv, .bedgraph or .h5 ('-' = TSV on stdout).")
@_fasta_options
@click.option("--format", "fmt", type=click.Choice(SCORE_FORMATS), default=None,
              show_default=True, help="Output format (default: from the output's extension).")
@click.option("--aggregate", type=click.Choice(AGGREGATES), default=None, show_default=True,
              help="Add one row per record aggregating its windows (max or mean per class).")
@click.option("--rc-average/--no-rc-average", default=None, show_default=True,
              help="Average probabilities over both strands (default: the task's setting).")
@_model_options
def score(model_path, output, input_path, stride, min_length, fmt, aggregate, rc_average,
          window, batch_size, device, precision) -> None:
    """Class probabilities per window of each FASTA record ('-' reads stdin)."""
    from hyenadna.config import ScoreConfig
    from hyenadna.score import score as score_fasta

    cfg = ScoreConfig(model=model_path, input=input_path, output=output, format=fmt,
                      window=window, stride=stride, min_length=min_length,
                      batch_size=batch_size, aggregate=aggregate, rc_average=rc_average,
                      device=device, precision=precision, progress=sys.stderr.isatty())
    _echo_summary(score_fasta(cfg), output)


@main.command()
@click.option("--model", "model_path", required=True,
              help="Checkpoint (pretraining or fine-tuned .ckpt) or official release folder.")
@click.option("-o", "--output", required=True, help="Output HDF5 file (.h5).")
@_fasta_options
@click.option("--per-token", is_flag=True, default=False, show_default=True,
              help="Also store every nucleotide's hidden state (chunked, compressed).")
@_model_options
def embed(model_path, output, input_path, stride, min_length, per_token, window, batch_size,
          device, precision) -> None:
    """Mean-pooled (and per-token) hidden states of each FASTA record to HDF5."""
    from hyenadna.config import EmbedConfig
    from hyenadna.embed import embed as embed_fasta

    cfg = EmbedConfig(model=model_path, input=input_path, output=output, window=window,
                      stride=stride, min_length=min_length, batch_size=batch_size,
                      per_token=per_token, device=device, precision=precision,
                      progress=sys.stderr.isatty())
    _echo_summary(embed_fasta(cfg), output)


@main.command("variant-effect")
@click.argument("variants", metavar="VARIANTS.vcf|tsv")
@click.option("--model", "model_path", required=True,
              help="Pretrained LM: hyenadna .ckpt or official release folder.")
@click.option("--genome", required=True, help="Reference FASTA (plain or bgzip), indexed on use.")
@click.option("-o", "--output", default="-", show_default=True, help="Output TSV ('-' = stdout).")
@_model_options
def variant_effect(variants, model_path, genome, output, window, batch_size, device,
                   precision) -> None:
    """Zero-shot effect of each SNV/indel: log P(alt) - log P(ref) in a centred window."""
    from hyenadna.config import VariantEffectConfig
    from hyenadna.variant_effect import variant_effect as score_variants

    cfg = VariantEffectConfig(model=model_path, genome=genome, variants=variants,
                              output=output, window=window, batch_size=batch_size,
                              device=device, precision=precision, progress=sys.stderr.isatty())
    _echo_summary(score_variants(cfg), output)


if __name__ == "__main__":
    main()
