"""The ``heliocube`` command: small utilities around the workflow (the workflow itself runs with snakemake)."""

from __future__ import annotations

import argparse
import sys

from .config import ConfigError, load_config

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
    check = commands.add_parser("check-config", help="validate a workflow config and print it with defaults")
    check.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        import yaml

        try:
            print(yaml.safe_dump(load_config(args.path), sort_keys=False), end="")
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
