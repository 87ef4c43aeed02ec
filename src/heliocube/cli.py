"""The ``heliocube`` command: utilities around the workflow (the workflow itself runs with snakemake).

One function per subcommand (``_check_config``, ``_info``, ``_report``, ``_verify``, ``_serve``, and the archive's in
:mod:`heliocube.archive.cli`); the work is done by the package, each imported only when its subcommand runs.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["build_parser", "main"]

DESCRIPTION = """\
Utilities around the heliocube workflow, which itself runs with snakemake
(snakemake --configfile my.yaml --cores 2). Each subcommand has its own --help."""


def _check_config(args: argparse.Namespace) -> int:
    import yaml

    from .config import ConfigError, load_config, printable_config
    from .configchecks import operations_warnings

    try:
        config = load_config(args.path)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in operations_warnings(config):
        print(f"warning: {line}", file=sys.stderr)
    print(yaml.safe_dump(printable_config(config), sort_keys=False), end="")
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from .info import NotAHeliocubeOutput, describe, format_summary

    try:
        summary = describe(args.path)
    except NotAHeliocubeOutput as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _report(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: {root} is not a directory (give the workflow's output_root)", file=sys.stderr)
        return 2
    from .report import build_report  # imported here: it loads matplotlib and sunpy

    output = Path(args.output) if args.output else root / "report" / "index.html"
    print(build_report(root, output))
    return 0


def _verify(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: {root} is not a directory (give the workflow's output_root)", file=sys.stderr)
        return 2
    from .verify import arrange_rebuild, verify_tree

    result = verify_tree(root)
    for mismatch in result.mismatches:
        print(mismatch)
    counts = ", ".join(f"{n} {kind}" for kind, n in result.checked.items()) or "nothing recorded"
    print(f"checked {counts}: {len(result.mismatches)} mismatch{'es' * (len(result.mismatches) != 1)}")
    if result.ok:
        return 0
    if not args.repair:
        print(f"next: heliocube verify {root} --repair")
        return 1
    for removed in arrange_rebuild(root, result.mismatches):
        print(f"removed {removed} (the next workflow run rebuilds it and everything built from it)")
    print(f"next: the command that built {root}, from the repository root, e.g.\n"
          f"  snakemake --profile profiles/local --configfile CONFIG   (CONFIG: the config with output_root {root})\n"
          f"then: heliocube verify {root}")
    return 1


def _serve(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: {root} is not a directory (give the workflow's output_root)", file=sys.stderr)
        return 2
    import uvicorn

    from .serve.app import create_app

    print(f"serving {root.resolve()} at http://{args.host}:{args.port} (API docs: /docs)", flush=True)
    uvicorn.run(create_app(root), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _package_version() -> str:
    try:
        return version("heliocube")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``heliocube`` argument parser; each subcommand stores its function as ``func``."""
    from .archive.cli import add_commands

    parser = argparse.ArgumentParser(prog="heliocube", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"heliocube {_package_version()}",
                        help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check-config",
        help="validate a workflow config and print it with every default filled in",
        description="Validate a workflow config exactly as snakemake --configfile PATH would (same schema, same "
        "defaults, same checks), warn about dates outside a product's operations, and print the whole config "
        "with defaults (the JSOC email hidden). Exit status 2 when the config is refused.",
    )
    check.add_argument("path", nargs="?", default="config/config.yaml",
                       help="the config file (default: %(default)s, the demo)")
    check.set_defaults(func=_check_config)

    info = commands.add_parser(
        "info",
        help="summarise a cube or synced file: shape, time range, products, config hash, versions",
        description="Summarise a heliocube output, recognised by its content: a cube "
        "(cubes/{variant}/{product}.h5 or a per-year cube) or a synced file (synced/{experiment}.h5). Prints "
        "shape, dtype, frames and time range, products, variant, units, compression, config hash and software "
        "versions. Exit status 2 when PATH is none of these.",
    )
    info.add_argument("path", metavar="PATH", help="the file to describe")
    info.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    info.set_defaults(func=_info)

    report = commands.add_parser(
        "report",
        help="write the QC and coverage report of an output tree as one HTML page",
        description="Write the QC and coverage report (coverage map, rejections, |dt| histograms, thumbnails, "
        "runtimes, ledgers) of a workflow output root as one self-contained HTML file, and print its path.",
    )
    report.add_argument("root", metavar="ROOT", help="the workflow's output root (output_root in the config)")
    report.add_argument("-o", "--output", metavar="OUT", default=None,
                        help="the HTML file to write (default: ROOT/report/index.html)")
    report.set_defaults(func=_report)

    verify = commands.add_parser(
        "verify",
        help="check raw files, cleaned frames and cubes against their recorded sha256; --repair to rebuild",
        description="Check every raw file against the sha256 its fetch receipt recorded, every cleaned frame "
        "against the digest in its month's frame index, and every cube (per-year and seeded) and synced row "
        "against the frame digest it carries, every cleaned event frame against its event's frame table and its event "
        "dataset's provenance, and every event dataset row against its frame. Prints one line per mismatch (path, "
        "what, expected and found) and "
        "exits 1 when there is any, 0 when everything matches. With --repair, also removes the outputs that make "
        "the next workflow run fetch those raw files again and rebuild everything built from them (a raw file: "
        "its month's slot table; a frame: its month's frame index; a cube or synced file: that file; an event "
        "frame: its frame table and its dataset's labels.csv; an event dataset row: that labels.csv), and prints "
        "the command to run next; the exit status is still 1 (the tree is repaired by that run).",
    )
    verify.add_argument("root", metavar="ROOT", help="the workflow's output root (output_root in the config)")
    verify.add_argument("--repair", action="store_true",
                        help="remove what the next workflow run must rebuild, and say what to run")
    verify.set_defaults(func=_verify)

    serve = commands.add_parser(
        "serve",
        help="serve an output tree over HTTP: images, parameter heatmaps, parameters, headers, events",
        description="A local read API (FastAPI, run by uvicorn) over the datasets of a workflow output root, "
        "answering the GSU image-parameter API's requests: images by channel, time and size; parameter "
        "heatmaps; the parameters of one frame or a paged time range as JSON or the seed's XML; header "
        "information; temporal and spatiotemporal event queries. OpenAPI docs at /docs. Only files under ROOT "
        "are read. heliocube.serve.client mirrors the seed's Python calls.",
    )
    serve.add_argument("root", metavar="ROOT", help="the workflow's output root (output_root in the config)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                       help="uvicorn's log level (default: %(default)s)")
    serve.set_defaults(func=_serve)

    archive = commands.add_parser(
        "archive",
        help="run or stop the embedded archive (a local stand-in for SDAC and JSOC)",
        description="The embedded archive: a local HTTP server imitating the SDAC and JSOC archives with a "
        "synthetic mission, for the demo and the tests. The workflow starts one itself when it needs it.",
    )
    add_commands(archive)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``heliocube`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
