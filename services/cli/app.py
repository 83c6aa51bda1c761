"""The `marketcache` group: global options, the commands, and one line per error."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from services.cli.commands import COMMANDS
from services.cli.session import BAD_INPUT, Target, tls_config

DEFAULT_ADDR = "127.0.0.1:50051"

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--addr",
    envvar="CACHE_ADDR",
    default=DEFAULT_ADDR,
    show_default=True,
    help="host:port of any cache process (env CACHE_ADDR); calls go on to each prefix's owner.",
)
@click.option("--token", envvar="ADMIN_TOKEN", default=None, help="Admin token (env ADMIN_TOKEN).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.001, max=600),
    default=5.0,
    show_default=True,
    help="Seconds per call.",
)
@click.option(
    "--tls-cert-file", envvar="TLS_CERT_FILE", type=_FILE, help="Client certificate (mTLS)."
)
@click.option("--tls-key-file", envvar="TLS_KEY_FILE", type=_FILE, help="Its private key.")
@click.option(
    "--tls-ca-file",
    envvar="TLS_CA_FILE",
    type=_FILE,
    help="CA of the cache's certificate; turns TLS on.",
)
@click.pass_context
def cli(  # noqa: PLR0917 (click passes each option by name)
    ctx: click.Context,
    addr: str,
    token: str | None,
    timeout: float,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
    tls_ca_file: Path | None,
) -> None:
    """Work with a marketcache cache by hand, like redis-cli."""
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"{addr!r} is not host:port", param_hint="--addr")
    ctx.obj = Target(
        addr, token or None, timeout, tls_config(tls_cert_file, tls_key_file, tls_ca_file)
    )


for _command in COMMANDS:
    cli.add_command(_command)


def main(args: list[str] | None = None) -> None:
    """Run the CLI; an error is one line on stderr and its exit code (2 bad input, 3 no cache)."""
    try:
        code = cli.main(args=args, prog_name="marketcache", standalone_mode=False)
    except click.exceptions.Abort:
        sys.stderr.write("marketcache: aborted\n")
        sys.exit(130)
    except click.ClickException as exc:
        sys.stderr.write(f"marketcache: {_one_line(exc)}\n")
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # `marketcache scan x | head`: the reader left; that is not our failure.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: click.ClickException) -> str:
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        message = exc.format_message()
        command = exc.ctx.command_path
        return f"{command}: {message} (see '{command} --help')".replace("\n", " ")
    return exc.format_message().replace("\n", " ")


assert click.UsageError.exit_code == BAD_INPUT  # click's own usage errors exit 2 as ours do
