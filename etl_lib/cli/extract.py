"""Commands that land and transform data: ``extract``, ``transform`` (with its ``--input``
import), ``backfill``, and ``auth`` for the Spotify user extraction reads as."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from etl_lib import config
from etl_lib.cli.options import (
    AddCommand,
    add_workers_option,
    iso_day,
    settings_for,
    utc_datetime,
)
from etl_lib.cli.output import EXIT_TEMPORARY_FAILURE, progress_bar, say
from etl_lib.cli.tables import cmd_catalog
from etl_lib.errors import ArchiveRateLimited, ConfigError, QuotaExceeded, RateLimited
from etl_lib.lake import layout

if TYPE_CHECKING:
    from etl_lib import pipeline


def report_transform(summary: pipeline.TransformSummary) -> int:
    rows = ", ".join(f"{table} {count}" for table, count in summary.rows.items())
    skipped = ", ".join(f"{n.removeprefix('skipped_')} {c}" for n, c in summary.skipped.items())
    say(f"transformed {len(summary.transformed)} raw files; rows written: {rows}")
    say(f"entries skipped (not tracks): {skipped}")
    for key, reason in summary.quarantined.items():
        say(f"error: {reason} (copied to {layout.quarantine_key(key)}; fix or remove the raw file)")
    return 1 if summary.quarantined else 0


def extract_exit_code(outcomes: list[pipeline.ExtractOutcome]) -> int:
    counts = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    if len(outcomes) > 1:
        say("extract: " + ", ".join(f"{n} {status.words}" for status, n in counts.items()))
    errors = [o.error for o in outcomes if o.error is not None]
    if any(isinstance(e, (RateLimited, QuotaExceeded)) for e in errors):
        return EXIT_TEMPORARY_FAILURE
    return 1 if errors else 0


def cmd_extract(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    outcomes = pipeline.extract(
        settings_for(args), args.playlist or None, force=args.force, say=say
    )
    return extract_exit_code(outcomes)


def _report_import(summary: pipeline.ImportSummary, done: str) -> int:
    """The import's counts, then one line per refused file; 1 when any was refused."""
    new = sum(result.written for result in summary.landed)
    refused = f"; {len(summary.refused)} files refused" if summary.refused else ""
    say(f"{done.format(len(summary.landed))} ({new} new){refused}")
    for reason in summary.refused.values():
        say(f"error: {reason} (not imported: fix the file, or remove it from the input)")
    return 1 if summary.refused else 0


def cmd_transform(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    import_status = 0
    if args.input:
        imported = pipeline.import_payloads(
            args.lake,
            args.input,
            playlist_id=args.playlist_id,
            extracted_at=args.extracted_at,
            progress=progress_bar,
        )
        import_status = _report_import(imported, "imported {} payloads into the raw zone")
    elif args.playlist_id or args.extracted_at:
        raise ConfigError("--playlist-id and --extracted-at only apply with --input")
    if args.all:
        summary = pipeline.retransform_all(args.lake, workers=args.workers, progress=progress_bar)
    elif args.bulk:
        summary = pipeline.transform_bulk(args.lake, workers=args.workers, progress=progress_bar)
    else:
        summary = pipeline.transform(args.lake, progress=progress_bar)
    # The good files land and transform before a refused one makes the exit code non-zero.
    return report_transform(summary) or import_status


def cmd_backfill(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    if args.archive_history:
        landed, import_status = _backfill_archive_history(args)
    else:
        _check_backfill_path_options(args)
        imported = pipeline.backfill(
            args.lake, args.path, extracted_at=args.extracted_at, progress=progress_bar
        )
        import_status = _report_import(imported, "landed {} archived snapshots")
        landed = imported.landed
    status = report_transform(pipeline.transform_bulk(args.lake, progress=progress_bar))
    cmd_catalog(args)
    # History loads without a report per snapshot (the transform function asks for none for
    # old captures); the backfill ends with one per playlist, as of its newest day landed.
    newest = layout.newest_day_by_playlist([s.raw_key for s in landed if s.written])
    report_status = _backfill_reports(args, newest) if newest and not args.no_report else 0
    # A spent rate limit says "try later" (75) even when everything landed transformed.
    if import_status == EXIT_TEMPORARY_FAILURE:
        return import_status
    return status or import_status or report_status


def _check_backfill_path_options(args: argparse.Namespace) -> None:
    if args.path is None:
        raise ConfigError(
            "backfill needs a PATH (an archived snapshot file or a folder of them), or "
            "--archive-history to read the archive's commit history"
        )
    for option in ("playlist", "since", "until"):
        if getattr(args, option):
            raise ConfigError(f"--{option} only applies with --archive-history")


def _backfill_archive_history(args: argparse.Namespace) -> tuple[list, int]:
    """Land the archive's history of each playlist; what landed, and the exit status so far
    (75 when the rate limit stopped it, 1 when a playlist failed or a version was refused)."""
    from etl_lib import pipeline
    from etl_lib.extract import envelope

    if args.path is not None or args.extracted_at is not None:
        raise ConfigError(
            "--archive-history reads the archive's commits: give no PATH or --extracted-at"
        )
    if args.since and args.until and args.since > args.until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}: swap them")
    since = envelope.parse_utc(f"{args.since}T00:00:00Z") if args.since else None
    until = envelope.parse_utc(f"{args.until}T23:59:59Z") if args.until else None
    settings = settings_for(args)
    if not settings.archive_token:
        say(
            "no SPOTIFY_ARCHIVE_TOKEN: the archive's API allows 60 requests an hour without "
            "one (a request lists 100 versions of a chart)"
        )
    outcomes = pipeline.backfill_archive_history(
        settings, args.playlist or None, since=since, until=until, say=say
    )
    landed = [landed for outcome in outcomes for landed in outcome.landed]
    for outcome in outcomes:
        for reason in outcome.refused.values():
            say(f"error: {outcome.playlist_id}: {reason} (refused; quarantined when unreadable)")
        if outcome.error is not None and outcome.attempted:
            say(f"error: {outcome.playlist_id}: {outcome.error}")
    not_attempted = [o.playlist_id for o in outcomes if not o.attempted]
    if not_attempted:
        say(f"not attempted (the rate limit stopped the run): {', '.join(not_attempted)}")
    say(
        f"landed {sum(o.written for o in outcomes)} new versions of {len(outcomes)} "
        "playlists from the archive's history"
    )
    if any(isinstance(o.error, ArchiveRateLimited) for o in outcomes):
        return landed, EXIT_TEMPORARY_FAILURE
    failed = any(o.error is not None or o.refused for o in outcomes)
    return landed, 1 if failed else 0


def _backfill_reports(args: argparse.Namespace, newest: dict[str, str]) -> int:
    """On a deployed stack (``SPOTIFY_ETL_REPORT_QUEUE_URL`` set), one request to the report
    function; elsewhere the reports run here."""
    settings = settings_for(args)
    if settings.report_queue_url:
        from etl_lib.reporting import report_requests

        report_requests.send(settings, newest)
        say(
            f"asked the report function for {len(newest)} report(s), each playlist as of its "
            f"newest day: {settings.report_queue_url}"
        )
        return 0
    from etl_lib.cli.reports import run_reports_here  # the report stack loads only now

    # DuckDB reads a local lake and an S3 one alike, as `spotify-etl run` does by default.
    return run_reports_here(args.lake, newest, days=30, engine="duckdb")


def cmd_auth_login(args: argparse.Namespace) -> int:
    from etl_lib.extract import auth

    def show(url: str) -> None:
        say("Open this URL in a browser and approve access:\n\n  " + url + "\n")
        if args.paste:
            say("Then paste the full URL your browser was redirected to:")

    stored = auth.login(
        settings_for(args),
        show_url=show,
        paste=(lambda: input().strip()) if args.paste else None,
        timeout_seconds=args.timeout,
    )
    say(f"logged in as user {stored.user_id}; refresh token stored in {stored.origin}")
    say(f"scopes: {stored.scope}")
    return 0


def cmd_auth_status(args: argparse.Namespace) -> int:
    from etl_lib.extract import auth

    current = auth.status(settings_for(args))
    print(f"mode:          {current.mode}")
    print(f"identity:      {current.identity}")
    print(f"scopes:        {current.scope or '(none: client credentials carry no scopes)'}")
    print(f"client id:     {current.client_id}")
    print(f"refresh token: {'stored' if current.has_refresh_token else 'none'}")
    print(f"secrets from:  {current.origin}")
    return 0


def add_extract_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--playlist",
        action="append",
        metavar="ID",
        help="playlist to extract: id, open.spotify.com link or spotify:playlist: URI "
        "(repeatable; default: $SPOTIFY_ETL_PLAYLISTS)",
    )
    sub.add_argument(
        "--source",
        choices=config.SOURCES,
        help="the Spotify Web API, or the public playlist archive "
        "(default: $SPOTIFY_ETL_SOURCE or api)",
    )
    sub.add_argument(
        "--force",
        action="store_true",
        help="download the items even when the snapshot_id has not changed",
    )


def add_extract(add: AddCommand) -> None:
    add_extract_options(
        add(
            "extract",
            cmd_extract,
            "Extract playlists into the raw zone (unchanged ones are only checked).",
        )
    )


def add_transform(add: AddCommand) -> None:
    transform = add(
        "transform", cmd_transform, "Transform pending raw files into the lake's Iceberg tables."
    )
    transform.add_argument(
        "--input",
        metavar="FILE_OR_DIR",
        help="first import payloads captured elsewhere (our envelope, or a bare Spotify "
        "playlist/paging object) into the raw zone",
    )
    transform.add_argument(
        "--playlist-id",
        help="with --input: the playlist a bare paging object belongs to",
    )
    transform.add_argument(
        "--extracted-at",
        type=utc_datetime,
        help="with --input: when a bare payload was captured (default: a UTC time in its "
        "file name, else the file's mtime)",
    )
    transform.add_argument(
        "--all",
        action="store_true",
        help="re-transform every raw file, not only pending ones (in bulk, like --bulk)",
    )
    transform.add_argument(
        "--bulk",
        action="store_true",
        help="for backfills: transform a playlist's day at a time, in parallel, into one file "
        "per table per day (an interrupted run resumes where it stopped)",
    )
    add_workers_option(transform, "with --bulk or --all: worker processes (default: one per core)")


def add_backfill(add: AddCommand) -> None:
    backfill = add(
        "backfill",
        cmd_backfill,
        "Import archived ranked snapshots (archive JSON or markdown, detected by content) from "
        "files or from the public archive's commit history, then transform and catalog.",
    )
    backfill.add_argument(
        "path", nargs="?", help="a snapshot file, or a folder of them (not with --archive-history)"
    )
    backfill.add_argument(
        "--archive-history",
        action="store_true",
        help="instead of PATH: every version the public archive committed of each playlist "
        "(GitHub's API; SPOTIFY_ARCHIVE_TOKEN raises its limit of 60 requests an hour)",
    )
    backfill.add_argument(
        "--playlist",
        action="append",
        metavar="ID",
        help="with --archive-history: playlist id, open.spotify.com link or spotify:playlist: "
        "URI (repeatable; default: $SPOTIFY_ETL_PLAYLISTS)",
    )
    backfill.add_argument(
        "--since",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="with --archive-history: versions committed on this day (UTC) or later",
    )
    backfill.add_argument(
        "--until",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="with --archive-history: versions committed on this day (UTC) or earlier",
    )
    backfill.add_argument(
        "--extracted-at",
        type=utc_datetime,
        help="capture time for files whose name is not one (e.g. 2021-03-06T00:13:23Z.md)",
    )
    backfill.add_argument(
        "--no-report",
        action="store_true",
        help="do not end with each backfilled playlist's report for its newest day",
    )


def add_auth(add: AddCommand, commands: argparse._SubParsersAction) -> None:
    auth_parser = commands.add_parser(
        "auth",
        help="Log in as a Spotify user, or show the identity in use.",
        description="User authorization (Authorization Code with PKCE) for playlist items.",
    )
    auth_commands = auth_parser.add_subparsers(
        dest="auth_command", required=True, metavar="COMMAND"
    )
    login = add(
        "login",
        cmd_auth_login,
        "Authorize a Spotify user (PKCE on a 127.0.0.1 redirect) and store the refresh token.",
        to=auth_commands,
    )
    login.add_argument(
        "--paste",
        action="store_true",
        help="headless machines: open the printed URL elsewhere, paste the redirect URL back",
    )
    login.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for the redirect"
    )
    add(
        "status",
        cmd_auth_status,
        "Show which identity and scopes extraction would use.",
        to=auth_commands,
    )
