"""Sources as plug-ins: the registry, and a third source added by one class plus one
registration, run through extract, transform and a query."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from etl_lib import config, pipeline
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, CorruptPayload, PlaylistNotFound
from etl_lib.extract import archive, envelope, sources, spotify
from etl_lib.extract.outcome import ExtractStatus
from etl_lib.lake import storage
from etl_lib.transform.decode import snapshot_header
from etl_lib.warehouse import execute

TOY_KIND = "toy-ranking"
TOY_CHART = "toychart1"
MORNING = datetime(2026, 10, 1, 6, tzinfo=UTC)


class ToyRanking:
    """A source serving fixed rankings from a dict: playlist id -> [(track id, title), ...].

    Its envelopes keep the ranking itself under ``ranking`` (no API pages), as the archive
    keeps its document; ``pages`` turns it into the API's shape."""

    name = "toy"
    kinds = (TOY_KIND,)

    def __init__(self, rankings: dict[str, list[tuple[str, str]]]) -> None:
        self.rankings = rankings
        self.connections = 0

    def connect(self, settings: Settings) -> dict[str, list[tuple[str, str]]]:
        self.connections += 1
        return self.rankings

    def fetch(self, connection, settings, playlist_id, *, extracted_at, known_snapshot_id):
        if playlist_id not in connection:
            raise PlaylistNotFound(f"the toy source has no playlist {playlist_id}")
        ranking = connection[playlist_id]
        snapshot_id = "-".join(track_id for track_id, _ in ranking)
        if snapshot_id == known_snapshot_id:
            return None
        playlist = {"id": playlist_id, "name": "Toy chart", "snapshot_id": snapshot_id}
        return envelope.build({"kind": TOY_KIND}, playlist, extracted_at, ranking=ranking)

    def pages(self, payload, raw_key):
        ranking = payload.get("ranking")
        if not isinstance(ranking, list):
            raise CorruptPayload(f"{raw_key}: a toy envelope without its ranking")
        items = [
            {
                "added_at": None,
                "is_local": False,
                "item": {"type": "track", "id": track_id, "name": title, "artists": []},
            }
            for track_id, title in ranking
        ]
        return [{"items": items, "offset": 0}]


@pytest.fixture
def toy():
    source = ToyRanking({TOY_CHART: [("trackA", "Alpha"), ("trackB", "Beta"), ("trackC", "Gamma")]})
    sources.register(source)
    try:
        yield source
    finally:
        sources.unregister(source.name)


def test_a_registered_source_runs_through_extract_transform_and_query(toy, tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"), source="toy", playlists=(TOY_CHART,))
    [first] = pipeline.extract(settings, clock=lambda: MORNING)
    [second] = pipeline.extract(settings, clock=lambda: MORNING + timedelta(hours=1))
    toy.rankings[TOY_CHART] = [("trackC", "Gamma"), ("trackA", "Alpha")]
    [third] = pipeline.extract(settings, clock=lambda: MORNING + timedelta(hours=2))
    assert [o.status for o in (first, second, third)] == [
        ExtractStatus.EXTRACTED,
        ExtractStatus.UNCHANGED,
        ExtractStatus.EXTRACTED,
    ]
    assert (first.items, third.items) == (3, 2)
    assert toy.connections == 3  # one per run
    raw = json.loads(storage.read_bytes(settings.lake, third.raw_key))
    assert raw["source"] == {"kind": TOY_KIND} and raw["pages"] == []

    summary = pipeline.transform(settings.lake)
    assert not summary.quarantined and summary.rows["chart_entries"] == 5
    frame = execute.query(
        settings.lake,
        "SELECT c.position, c.track_id, t.name FROM chart_entries c "
        "JOIN tracks t ON t.track_id = c.track_id AND t.extracted_at = c.extracted_at "
        "WHERE c.extracted_at = (SELECT max(extracted_at) FROM snapshots) ORDER BY c.position",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        (1, "trackC", "Gamma"),
        (2, "trackA", "Alpha"),
    ]
    kinds = execute.query(settings.lake, "SELECT DISTINCT source FROM snapshots")
    assert list(kinds["source"]) == [TOY_KIND]


def test_a_source_failure_fails_its_playlist_only(toy, tmp_path):
    settings = Settings(lake=str(tmp_path / "lake"), source="toy")
    outcomes = pipeline.extract(settings, ["missing1", TOY_CHART], clock=lambda: MORNING)
    assert [o.status for o in outcomes] == [ExtractStatus.FAILED, ExtractStatus.EXTRACTED]
    assert "no playlist missing1" in str(outcomes[0].error)
    assert toy.connections == 1  # one connection shared by the run's playlists


def test_the_built_in_sources_are_the_names_settings_offer():
    assert sources.names() == config.SOURCES == ("api", "archive")
    assert sources.get("api") is spotify.SOURCE and sources.get("archive") is archive.SOURCE


def test_registering_adds_the_name_and_unregistering_removes_it(toy):
    assert sources.names() == ("api", "archive", "toy")
    assert sources.get("toy") is toy
    sources.unregister("toy")
    assert sources.names() == ("api", "archive")
    sources.register(toy)  # the fixture unregisters it again


def test_an_unknown_source_name_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError) as refused:
        sources.get("spotify")
    message = str(refused.value)
    assert "'spotify'" in message and "api, archive" in message and "\n" not in message


def test_extract_from_an_unknown_source_stops_before_touching_the_lake(tmp_path):
    lake = tmp_path / "lake"
    with pytest.raises(ConfigError, match="unknown source 'nowhere'"):
        pipeline.extract(Settings(lake=str(lake), source="nowhere"))
    assert not lake.exists()


def test_a_name_or_kind_already_taken_cannot_be_registered_twice(toy):
    with pytest.raises(ValueError, match="clashes"):
        sources.register(ToyRanking({}))

    class Impostor(ToyRanking):
        name = "impostor"
        kinds = ("archive",)

    with pytest.raises(ValueError, match="clashes"):
        sources.register(Impostor({}))
    assert sources.names() == ("api", "archive", "toy")


def test_envelopes_are_read_by_the_source_of_their_kind(toy):
    page = {"items": [{"item": {"type": "track", "id": "t1"}}], "offset": 0}
    for kind in ("spotify-web-api", "import"):
        payload = envelope.build({"kind": kind}, {"id": "p1"}, MORNING, [page])
        assert snapshot_header(payload, "k").pages == [page]
    toy_payload = envelope.build({"kind": TOY_KIND}, {"id": "p1"}, MORNING, ranking=[["t9", "T"]])
    [toy_page] = snapshot_header(toy_payload, "k").pages
    assert [entry["item"]["id"] for entry in toy_page["items"]] == ["t9"]


def test_an_envelope_of_a_kind_no_source_reads_is_refused(toy):
    payload = envelope.build({"kind": TOY_KIND}, {"id": "p1"}, MORNING, ranking=[["t9", "T"]])
    sources.unregister("toy")
    try:
        # Read as API pages it would be an empty chart: refused instead, saying what to do.
        with pytest.raises(CorruptPayload, match="'toy-ranking' is none of the kinds.*register"):
            snapshot_header(payload, "raw/x.json")
    finally:
        sources.register(toy)


def test_every_envelope_comes_from_the_one_builder():
    """The API's, an import's and the archive's envelopes have the same keys in one order."""
    api = envelope.make_envelope(
        {"id": "p1", "snapshot_id": "s1", "followers": {"total": 3}, "owner": {"id": "o"}},
        [],
        MORNING,
        {"kind": "spotify-web-api"},
    )
    imported = envelope.envelope_from_capture(
        {"items": [], "href": "https://api.spotify.com/v1/playlists/p1/tracks"},
        extracted_at=MORNING,
        source_name="capture.json",
    )
    document = {"url": "https://open.spotify.com/playlist/p1", "tracks": []}
    archived = archive.make_archive_envelope(
        document, extracted_at=MORNING, origin={"file": "a.json"}, source_name="a.json"
    )
    order = ["envelope_version", "extracted_at", "source", "playlist", "pages"]
    assert list(api) == list(imported) == order and list(archived) == [*order, "archive"]
    assert list(api["playlist"]) == list(imported["playlist"]) == list(archived["playlist"])
    assert api["playlist"] == {
        "id": "p1",
        "name": None,
        "snapshot_id": "s1",
        "followers": 3,
        "owner_id": "o",
    }
    with pytest.raises(ConfigError, match="no UTC offset"):
        envelope.build({"kind": "import"}, {"id": "p1"}, datetime(2026, 10, 1))  # noqa: DTZ001
