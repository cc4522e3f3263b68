"""The offline demo: the local Spotify server, 30 simulated days, the whole pipeline.

The Global chart and two country charts, so the lake holds several playlists to compare.
With ``history``, the three charts' earlier days come first from the local archive server's
commit history (``backfill --archive-history``, offline), as a new user's lake would.

Extraction goes through spotipy over HTTP exactly as against Spotify; only the base URL,
the token URL and the credentials differ. The simulated clock, not wall time, dates every
snapshot, so the demo lake is the same on every machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from etl_lib import pipeline
from etl_lib.config import Settings
from etl_lib.extract import spotify
from etl_lib.extract.credentials import Credentials
from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
from etl_lib.local_spotify.archive_server import LocalArchiveServer
from etl_lib.transform.schemas import TABLES
from etl_lib.warehouse import catalog, execute, sql

DEMO_PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"  # Top Songs - Global: the top 10 printed
DEMO_PLAYLISTS = (
    DEMO_PLAYLIST,
    "37i9dQZEVXbLRQDuF5jeBp",  # Top 50 - USA
    "37i9dQZEVXbKXQ4mDTEBXq",  # Top 50 - Japan
)
DEMO_LAST_DAY = datetime(2026, 10, 31, tzinfo=UTC)
# Two checks a day: the chart changes daily, so the second finds the same snapshot_id and
# costs one small call (the playlist's metadata) instead of a download.
DEMO_HOURS_UTC = (6, 18)
# With --history: the days before the demo's first that the archive's history backfills.
DEMO_HISTORY_DAYS = 60


@dataclass(frozen=True)
class DemoResult:
    lake: str
    checks: Counter[str]
    summary: pipeline.TransformSummary
    table_rows: dict[str, int]
    distinct: dict[str, int]
    top10: pd.DataFrame
    history: list[pipeline.HistoryOutcome] | None = None


def snapshot_times(days: int) -> list[datetime]:
    first_day = DEMO_LAST_DAY - timedelta(days=days - 1)
    return [
        first_day + timedelta(days=offset, hours=hour)
        for offset in range(days)
        for hour in DEMO_HOURS_UTC
    ]


def top_tracks(lake_root: str, playlist_id: str, top_n: int = 10) -> pd.DataFrame:
    statement = sql.shipped("queries")["top_tracks"]
    return execute.query(lake_root, statement, [playlist_id, playlist_id, top_n])


def count_rows(lake_root: str, relations) -> dict[str, int]:
    # One connection: the tables' files are planned once for every count.
    frames = execute.query_all(
        lake_root, {name: (f"SELECT count(*) AS n FROM {name}", None) for name in relations}
    )
    return {name: int(frame["n"].iloc[0]) for name, frame in frames.items()}


def backfill_history(
    lake_root: str, before: datetime, say: Callable[[str], None]
) -> tuple[list[pipeline.HistoryOutcome], pipeline.TransformSummary]:
    """The demo charts' ``DEMO_HISTORY_DAYS`` days before ``before`` from the local archive
    server's commit history, landed and transformed in bulk."""
    archive_clock = before - timedelta(seconds=1)  # commits after it do not exist yet
    with LocalArchiveServer(ChartSimulator(), now=archive_clock) as server:
        server.history(days=DEMO_HISTORY_DAYS)
        settings = Settings(
            lake=lake_root,
            archive_api_url=server.base_url,
            archive_raw_url=server.base_url,
            playlists=DEMO_PLAYLISTS,
        )
        say(f"local archive history at {server.base_url} (simulated GitHub, offline)")
        outcomes = pipeline.backfill_archive_history(settings, clock=lambda: archive_clock, say=say)
    return outcomes, pipeline.transform_bulk(lake_root)


def run_demo(
    lake_root: str,
    days: int = 30,
    say: Callable[[str], None] = lambda _: None,
    *,
    history: bool = False,
) -> DemoResult:
    times = snapshot_times(days)
    history_outcomes, summary = None, pipeline.TransformSummary()
    if history:
        history_outcomes, summary = backfill_history(lake_root, times[0].replace(hour=0), say)
    with LocalSpotifyServer(ChartSimulator(), now=times[0]) as server:
        settings = Settings(
            lake=lake_root,
            api_base_url=server.base_url,
            token_url=server.token_url,
            credentials=Credentials(server.client_id, server.client_secret, origin="demo"),
            playlists=DEMO_PLAYLISTS,
        )
        say(f"local Spotify API at {server.base_url} (simulated, offline)")
        reader = spotify.make_reader(settings)
        statuses: Counter[str] = Counter()
        for moment in times:
            server.set_time(moment)
            outcomes = pipeline.extract(settings, reader=reader, clock=lambda m=moment: m)
            statuses.update(outcome.status for outcome in outcomes)
        say(
            f"checked {len(DEMO_PLAYLISTS)} charts {len(times)} times each over {days} "
            "simulated days: "
            + ", ".join(f"{n} {status.words}" for status, n in sorted(statuses.items()))
        )
    summary.merge(pipeline.transform(lake_root))
    catalog.build_catalog(lake_root)
    return DemoResult(
        lake=lake_root,
        checks=statuses,
        summary=summary,
        table_rows=count_rows(lake_root, TABLES),
        distinct=count_rows(lake_root, ("latest_tracks", "latest_albums", "latest_artists")),
        top10=top_tracks(lake_root, DEMO_PLAYLIST),
        history=history_outcomes,
    )
