"""``spotify-etl``: a thin command line over ``etl_lib.pipeline``.

Errors a user can cause (``EtlError``) print one line and exit non-zero; anything else is a
bug and keeps its traceback. Exit codes: 0 done; 1 something failed (named on stderr);
2 bad settings or arguments; 75 stopped by a rate limit or an exhausted quota (try later).

One module per group of commands: ``extract`` (extract, transform, backfill, auth),
``tables`` (compact, migrate, catalog, query, export), ``reports`` (run, report, status,
demo), ``doctor`` (the check of a deployed stack); ``output`` and ``options`` are what
they share, ``demo`` the offline demo itself.
The rest of the package is imported where a command uses it: pandas, the engines and the
Spotify client take about a second to load, and a mistyped option or a report for a playlist
the lake does not hold should fail faster than that.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from etl_lib import __version__, config
from etl_lib.cli import doctor, extract, reports, tables
from etl_lib.cli.options import playlists_as_ids
from etl_lib.cli.output import EXIT_TEMPORARY_FAILURE, say
from etl_lib.errors import EtlError, QuotaExceeded, RateLimited


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line like every other mistake a user can make, not the usage block: --help
        # shows that.
        say(f"error: {self.prog}: {message}")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lake",
        default=config.default_lake(),
        metavar="ROOT",
        help="lake root folder (default: $SPOTIFY_ETL_LAKE or ./data/lake)",
    )
    parser = _Parser(
        prog="spotify-etl",
        description="Spotify playlist charts -> raw zone -> Iceberg tables -> SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text, to=commands) -> argparse.ArgumentParser:
        sub = to.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    # In the order of the data's flow, as --help lists them.
    extract.add_extract(add)
    extract.add_transform(add)
    tables.add_compact(add)
    tables.add_migrate(add)
    extract.add_backfill(add)
    tables.add_catalog(add)
    tables.add_query(add)
    reports.add_run(add)
    reports.add_report(add)
    reports.add_status(add)
    tables.add_export(add)
    extract.add_auth(add, commands)
    reports.add_demo(add)
    doctor.add_doctor(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        playlists_as_ids(args)
        return args.handler(args)
    except (RateLimited, QuotaExceeded) as exc:
        say(f"error: {exc}")
        return EXIT_TEMPORARY_FAILURE
    except EtlError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
