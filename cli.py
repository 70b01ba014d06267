"""The ``hyenadna`` command line: thin Click commands over the library.

Each command parses its options, builds a config, calls one library function and prints a
one-line summary. Results go to --out-dir / -o, the summary to stdout, logs and progress bars to
stderr. Known errors (bad input files, unknown config keys, corrupt checkpoints) print one
``Error: ...`` line and exit 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys

import click

from hyenadna import __version__

# Exceptions that mean "the user's input is wrong": reported in one line, never a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, KeyError, OSError)


class HyenaGroup(click.Group):
    """Click group that turns user errors into one ``Error:`` line (unless --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
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
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


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


# ---- finetune command (issue 4) ----


# ---- score / embed / variant-effect commands (issue 5) ----


if __name__ == "__main__":
    main()
