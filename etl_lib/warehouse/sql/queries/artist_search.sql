-- Artists whose name contains a text (case-insensitive, taken literally: % and _ are no
-- wildcards) and who charted between two days, with their totals on any playlist: tracks
-- charted, charts, best peak, days on chart (days with at least one of their tracks on a
-- chart), first and last day seen. Best peak first, then most days; artist_page lists one
-- artist's tracks. Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: text, first_day, last_day ('YYYY-MM-DD').
WITH found AS (
    SELECT artist_id, name
    FROM latest_artists
    WHERE strpos(lower(name), lower(?)) > 0
),
charted AS (
    SELECT DISTINCT f.artist_id, f.name, d.playlist_id, d.dt, d.chart_date, d.chart_rank,
           d.track_id
    FROM found AS f
    JOIN latest_track_artists AS ta ON ta.artist_id = f.artist_id
    JOIN daily_chart AS d ON d.track_id = ta.track_id
    WHERE d.dt BETWEEN ? AND ?
)
SELECT artist_id,
       name,
       count(DISTINCT track_id) AS tracks,
       count(DISTINCT playlist_id) AS charts,
       min(chart_rank) AS peak_rank,
       count(DISTINCT dt) AS days_on_chart,
       min(chart_date) AS first_seen,
       max(chart_date) AS last_seen,
       -- Only from a Spotify-shaped (base-62) id, so it never links outside open.spotify.com.
       CASE
           WHEN regexp_like(artist_id, '^[0-9A-Za-z]+$')
           THEN concat('https://open.spotify.com/artist/', artist_id)
       END AS artist_url
FROM charted
GROUP BY artist_id, name
ORDER BY peak_rank, days_on_chart DESC, name, artist_id
