"""The local archive server's GitHub history: the commits listing and the raw file at a commit."""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import requests
from conftest import foreground_server

from etl_lib.local_spotify import ChartSimulator
from etl_lib.local_spotify.archive_server import (
    DEFAULT_ARCHIVE_REPO,
    LocalArchiveServer,
    archive_document,
)

TOP_50 = "37i9dQZEVXbMDoHDwVN2tF"
USA = "37i9dQZEVXbLRQDuF5jeBp"
PATH = f"playlists/pretty/{TOP_50}.json"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Used",
    "X-RateLimit-Reset",
    "X-RateLimit-Resource",
)


@pytest.fixture
def server():
    with LocalArchiveServer(ChartSimulator(), now=NOW, history_days=30) as running:
        yield running


def commits_url(server: LocalArchiveServer, repo: str = DEFAULT_ARCHIVE_REPO) -> str:
    return f"{server.base_url}/repos/{repo}/commits"


def list_commits(server: LocalArchiveServer, **params) -> requests.Response:
    response = requests.get(commits_url(server), params={"path": PATH, **params}, timeout=5)
    assert response.status_code == 200, response.text
    return response


def all_commits(server: LocalArchiveServer, path: str = PATH) -> list[dict]:
    response = requests.get(commits_url(server), params={"path": path, "per_page": 100}, timeout=5)
    assert "next" not in response.links
    return response.json()


def raw(server: LocalArchiveServer, sha: str, path: str = PATH) -> requests.Response:
    return requests.get(f"{server.base_url}/{DEFAULT_ARCHIVE_REPO}/{sha}/{path}", timeout=5)


def committed_at(commit: dict) -> datetime:
    return datetime.strptime(commit["commit"]["committer"]["date"], "%Y-%m-%dT%H:%M:%S%z")


def test_paging_follows_absolute_links_to_every_commit_once(server):
    everything = all_commits(server)
    pages = []
    url, params = commits_url(server), {"path": PATH, "per_page": 7}
    first = requests.get(url, params=params, timeout=5)
    last_page = math.ceil(len(everything) / 7)
    assert first.links["last"]["url"].endswith(f"page={last_page}")
    response = first
    while True:
        pages.append(response.json())
        for link in response.links.values():
            assert link["url"].startswith(f"{server.base_url}/repos/{DEFAULT_ARCHIVE_REPO}/")
        if "next" not in response.links:
            break
        response = requests.get(response.links["next"]["url"], timeout=5)
    assert len(pages) == last_page
    assert [len(page) for page in pages[:-1]] == [7] * (last_page - 1)
    assert [c["sha"] for page in pages for c in page] == [c["sha"] for c in everything]
    # GitHub's relations: a middle page links back to the first and the previous page.
    middle = requests.get(url, params={**params, "page": 2}, timeout=5)
    assert set(middle.links) == {"prev", "next", "last", "first"}
    assert middle.links["prev"]["url"].endswith("page=1")
    assert set(response.links) == {"prev", "first"}
    past_end = requests.get(url, params={**params, "page": last_page + 1}, timeout=5)
    assert past_end.status_code == 200 and past_end.json() == []


def test_one_page_has_no_link_header_and_per_page_is_capped_at_100():
    with LocalArchiveServer(now=NOW, history_days=3) as short:
        response = list_commits(short)
        assert "Link" not in response.headers and 3 <= len(response.json()) <= 6
    with LocalArchiveServer(now=NOW, history_days=120) as long:
        capped = list_commits(long, per_page=500)
        assert len(capped.json()) == 100 and "next" in capped.links
        default = list_commits(long)
        assert len(default.json()) == 30


def test_commits_are_newest_first_daily_and_some_days_twice(server):
    commits = all_commits(server)
    times = [committed_at(commit) for commit in commits]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    assert all(t <= NOW for t in times)
    per_day = defaultdict(int)
    for moment in times:
        per_day[moment.date()] += 1
    first_day = NOW.date() - timedelta(days=29)
    assert sorted(per_day) == [first_day + timedelta(days=n) for n in range(30)]
    assert set(per_day.values()) == {1, 2}
    for commit in commits:
        assert len(commit["sha"]) == 40 and int(commit["sha"], 16) >= 0
        assert commit["commit"]["author"]["date"] == commit["commit"]["committer"]["date"]
        assert commit["html_url"].endswith(commit["sha"])


def test_the_history_is_deterministic_and_grows_with_the_clock(server):
    before = all_commits(server)
    with LocalArchiveServer(ChartSimulator(), now=NOW, history_days=30) as twin:
        assert all_commits(twin) == [
            json.loads(json.dumps(c).replace(server.base_url, twin.base_url)) for c in before
        ]
    server.set_time(NOW + timedelta(days=2))
    later = all_commits(server)
    assert [c["sha"] for c in later[-len(before) :]] == [c["sha"] for c in before]
    assert {committed_at(c).date() for c in later[: len(later) - len(before)]} == {
        (NOW + timedelta(days=n)).date() for n in (1, 2)
    }
    server.history(days=5)
    assert {committed_at(c).date() for c in all_commits(server)} == {
        (NOW + timedelta(days=n)).date() for n in range(-2, 3)
    }


def test_since_and_until_are_inclusive(server):
    commits = all_commits(server)
    newest, oldest = commits[3], commits[9]
    window = list_commits(
        server,
        since=oldest["commit"]["committer"]["date"],
        until=newest["commit"]["committer"]["date"],
    ).json()
    assert [c["sha"] for c in window] == [c["sha"] for c in commits[3:10]]
    since_only = list_commits(server, since=oldest["commit"]["committer"]["date"]).json()
    assert [c["sha"] for c in since_only] == [c["sha"] for c in commits[:10]]
    until_a_second_before = committed_at(newest) - timedelta(seconds=1)
    until_only = list_commits(server, until=until_a_second_before.isoformat()).json()
    assert [c["sha"] for c in until_only] == [c["sha"] for c in commits[4:]]


@pytest.mark.parametrize("bound", ["since", "until"])
def test_a_bad_since_or_until_is_a_422_in_githubs_shape(server, bound):
    response = requests.get(
        commits_url(server), params={"path": PATH, bound: "last tuesday"}, timeout=5
    )
    assert response.status_code == 422
    body = response.json()
    assert bound in body["message"] and body["documentation_url"].startswith("https://")


def test_the_file_at_each_days_last_commit_is_that_days_archive_document(server):
    simulator = ChartSimulator()
    by_day = defaultdict(list)
    for commit in reversed(all_commits(server)):
        by_day[committed_at(commit).date()].append(commit)
    doubles = 0
    for day, commits in by_day.items():
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        expected = archive_document(simulator, TOP_50, midnight)
        last = raw(server, commits[-1]["sha"])
        assert last.status_code == 200
        assert last.headers["Content-Type"].startswith("text/plain")
        assert json.loads(last.content) == expected
        for earlier in commits[:-1]:
            doubles += 1
            assert json.loads(raw(server, earlier["sha"]).content) != expected
    assert doubles >= 1
    # The raw host is not rate limited: no budget headers there.
    assert not set(RATE_HEADERS) & set(raw(server, commits[-1]["sha"]).headers)


def test_one_commit_holds_every_playlists_file(server):
    [newest, *_] = all_commits(server)
    [usa_newest, *_] = all_commits(server, f"playlists/pretty/{USA}.json")
    assert usa_newest["sha"] == newest["sha"]
    usa = raw(server, newest["sha"], f"playlists/pretty/{USA}.json")
    assert json.loads(usa.content)["url"].endswith(USA)


def test_unknown_shas_paths_and_repositories_are_404s(server):
    [newest, *_] = all_commits(server)
    assert raw(server, "0" * 40).status_code == 404
    assert raw(server, "0" * 40).text == "404: Not Found"
    assert raw(server, newest["sha"], "playlists/pretty/nothing.json").status_code == 404
    other_repo = f"{server.base_url}/someone/else/{newest['sha']}/{PATH}"
    assert requests.get(other_repo, timeout=5).status_code == 404
    api_404 = requests.get(commits_url(server, "someone/else"), params={"path": PATH}, timeout=5)
    assert api_404.status_code == 404 and api_404.json()["message"] == "Not Found"
    # GitHub's owner and repository names are case-insensitive.
    shouting = commits_url(server, DEFAULT_ARCHIVE_REPO.upper())
    assert requests.get(shouting, params={"path": PATH}, timeout=5).status_code == 200
    untouched = list_commits(server, path="playlists/pretty/0000000000000000000000.json")
    assert untouched.json() == [] and "Link" not in untouched.headers


def test_api_responses_carry_the_budget_and_a_spent_budget_is_a_403_until_refilled(server):
    reset_at = NOW + timedelta(minutes=20)
    server.rate_limit(2, reset_at)
    answers = [list_commits(server) for _ in range(2)]
    for used, response in enumerate(answers, start=1):
        assert response.headers["X-RateLimit-Limit"] == "2"
        assert response.headers["X-RateLimit-Used"] == str(used)
        assert response.headers["X-RateLimit-Remaining"] == str(2 - used)
        assert response.headers["X-RateLimit-Reset"] == str(int(reset_at.timestamp()))
        assert response.headers["X-RateLimit-Resource"] == "core"
    refused = requests.get(commits_url(server), params={"path": PATH}, timeout=5)
    assert refused.status_code == 403
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.json()["message"].startswith("API rate limit exceeded for 127.0.0.1.")
    assert "documentation_url" in refused.json()
    # The raw host does not count against the budget.
    assert raw(server, answers[0].json()[0]["sha"]).status_code == 200
    server.reset_rate_limit()
    assert list_commits(server).headers["X-RateLimit-Remaining"] == "1"
    list_commits(server)
    # The budget also comes back once the clock reaches the reset time.
    server.set_time(reset_at)
    refilled = list_commits(server)
    assert refilled.headers["X-RateLimit-Used"] == "1"
    assert int(refilled.headers["X-RateLimit-Reset"]) == int(
        (reset_at + timedelta(hours=1)).timestamp()
    )


@pytest.mark.parametrize("scheme", ["Bearer", "token"])
def test_a_token_gets_its_own_larger_budget(server, scheme):
    server.rate_limit(1, NOW + timedelta(hours=1), authenticated_limit=5)
    list_commits(server)
    anonymous = requests.get(commits_url(server), params={"path": PATH}, timeout=5)
    assert anonymous.status_code == 403
    signed_in = requests.get(
        commits_url(server),
        params={"path": PATH},
        headers={"Authorization": f"{scheme} s3cret"},
        timeout=5,
    )
    assert signed_in.status_code == 200
    assert signed_in.headers["X-RateLimit-Limit"] == "5"
    assert signed_in.headers["X-RateLimit-Remaining"] == "4"
    assert server.api_tokens == [None, None, "s3cret"]


def test_served_versions_replace_the_simulated_history(server):
    versions = [
        (datetime(2021, 3, 6, 0, 13, 23, tzinfo=UTC), b'{"tracks": [1]}'),
        (datetime(2021, 3, 6, 5, 15, 16, tzinfo=UTC), b'{"tracks": [2]}'),
        (datetime(2021, 3, 7, 11, 36, 32, tzinfo=UTC), b"# markdown, as older versions are\n"),
    ]
    shas = server.serve_versions(TOP_50, versions)
    commits = all_commits(server)
    assert [c["sha"] for c in commits] == shas[::-1]
    assert [committed_at(c) for c in commits] == [moment for moment, _ in reversed(versions)]
    for sha, (_, content) in zip(shas, versions, strict=True):
        assert raw(server, sha).content == content
    other_path = "playlists/pretty/Global Top 50.md"
    [md_sha] = server.serve_versions(TOP_50, versions[2:], path=other_path)
    assert [c["sha"] for c in all_commits(server, other_path)] == [md_sha]
    assert raw(server, md_sha, other_path.replace(" ", "%20")).content == versions[2][1]


@pytest.mark.shared_data
def test_real_archived_versions_are_served_at_their_commit_times(server, shared_data):
    folder = shared_data / "playlist-archive" / "top50-global-2021"
    files = sorted(folder.glob("*.md"))
    versions = [(datetime.strptime(f.stem, "%Y-%m-%dT%H:%M:%S%z"), f.read_bytes()) for f in files]
    server.serve_versions(TOP_50, versions)
    since = list_commits(server, since="2021-04-01T00:00:00Z", until="2021-04-30T23:59:59Z")
    in_april = [f for f in files if f.stem.startswith("2021-04")]
    assert len(since.json()) == len(in_april)
    for commit in since.json():
        stem = commit["commit"]["committer"]["date"]
        assert raw(server, commit["sha"]).content == (folder / f"{stem}.md").read_bytes()


def test_a_corrupt_version_is_not_json_and_the_others_still_are(server):
    commits = all_commits(server)
    by_time = server.corrupt_version(TOP_50, committed_at(commits[2]))
    by_sha = server.corrupt_version(TOP_50, commits[5]["sha"])
    assert (by_time, by_sha) == (commits[2]["sha"], commits[5]["sha"])
    for index, commit in enumerate(commits):
        content = raw(server, commit["sha"]).content
        if index in (2, 5):
            with pytest.raises(json.JSONDecodeError):
                json.loads(content)
        else:
            assert json.loads(content)["tracks"]
    with pytest.raises(ValueError, match="no commit"):
        server.corrupt_version(TOP_50, "f" * 40)


def test_requests_are_recorded_for_counting(server):
    [newest, *_] = list_commits(server, per_page=1).json()
    raw(server, newest["sha"])
    assert server.requests == [
        f"/repos/{DEFAULT_ARCHIVE_REPO}/commits?path=playlists%2Fpretty%2F{TOP_50}.json&per_page=1",
        f"/{DEFAULT_ARCHIVE_REPO}/{newest['sha']}/{PATH}",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a child there")
def test_module_serves_the_history_in_the_foreground_until_interrupted():
    module = "etl_lib.local_spotify.archive_server"
    with foreground_server(module, "--port", "0", "--history-days", "3", "--rate-limit", "2") as (
        banner
    ):
        base_url = re.match(r"base_url: +(http://127\.0\.0\.1:\d+)", banner[0])[1]
        url = f"{base_url}/repos/{DEFAULT_ARCHIVE_REPO}/commits"
        listed = [requests.get(url, params={"path": PATH}, timeout=5) for _ in range(3)]
        newest = listed[0].json()[0]["sha"]
        content = requests.get(f"{base_url}/{DEFAULT_ARCHIVE_REPO}/{newest}/{PATH}", timeout=5)
    text = "".join(banner)
    assert f"commits:       GET {base_url}/repos/{DEFAULT_ARCHIVE_REPO}/commits?path=" in text
    assert f"file at sha:   GET {base_url}/{DEFAULT_ARCHIVE_REPO}/<sha>/" in text
    assert 3 <= len(listed[0].json()) <= 6
    assert [r.status_code for r in listed] == [200, 200, 403]
    assert json.loads(content.content)["url"].endswith(TOP_50)
