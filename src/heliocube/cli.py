"""The ``heliocube`` command: small utilities around the workflow (the workflow itself runs with snakemake)."""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, load_config, operations_warnings, printable_config

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``heliocube archive serve|stop ...`` runs the embedded archive; ``heliocube check-config FILE`` validates."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "archive":
        from .archive.cli import main as archive_main

        return archive_main(argv[1:]) or 0
    parser = argparse.ArgumentParser(prog="heliocube", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("archive", help="run the embedded archive (see: heliocube archive --help)")
    check = commands.add_parser(
        "check-config", help="validate a workflow config as `snakemake --configfile PATH` would, print it with defaults"
    )
    check.add_argument("path", nargs="?", default="config/config.yaml",
                       help="the config file (default: the demo, config/config.yaml)")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        import yaml

        try:
            config = load_config(args.path)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for line in operations_warnings(config):
            print(f"warning: {line}", file=sys.stderr)
        print(yaml.safe_dump(printable_config(config), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
