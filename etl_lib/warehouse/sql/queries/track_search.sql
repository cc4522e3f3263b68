-- Tracks whose name, or any credited artist's name, contains a text (case-insensitive, taken
-- literally: % and _ are no wildcards), with how they charted between two days on any
-- playlist: the charts (names joined with '; '), the best peak, the days on chart (days on at
-- least one chart), the first and last day seen. Best peak first, then most days.
-- Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: text, text, first_day, last_day ('YYYY-MM-DD').
WITH matches AS (
    SELECT track_id
    FROM latest_tracks
    WHERE strpos(lower(name), lower(?)) > 0
    UNION
    SELECT ta.track_id
    FROM latest_track_artists AS ta
    JOIN latest_artists AS a ON a.artist_id = ta.artist_id
    WHERE strpos(lower(a.name), lower(?)) > 0
),
charted AS (
    SELECT c.playlist_id, c.dt, c.chart_date, c.chart_rank, c.track_id, c.track_name,
           c.artists, c.track_url
    FROM chart AS c
    JOIN matches AS m ON m.track_id = c.track_id
    WHERE c.dt BETWEEN ? AND ?
),
per_chart AS (
    SELECT c.track_id, coalesce(n.playlist_name, c.playlist_id) AS chart_name
    FROM charted AS c
    LEFT JOIN playlist_names AS n ON n.playlist_id = c.playlist_id
    GROUP BY c.track_id, coalesce(n.playlist_name, c.playlist_id)
),
chart_lists AS (
    SELECT track_id, array_join(array_agg(chart_name ORDER BY chart_name), '; ') AS charts
    FROM per_chart
    GROUP BY track_id
)
SELECT c.track_id,
       c.track_name,
       c.artists,
       l.charts,
       min(c.chart_rank) AS peak_rank,
       count(DISTINCT c.dt) AS days_on_chart,
       min(c.chart_date) AS first_seen,
       max(c.chart_date) AS last_seen,
       c.track_url
FROM charted AS c
JOIN chart_lists AS l ON l.track_id = c.track_id
GROUP BY c.track_id, c.track_name, c.artists, l.charts, c.track_url
ORDER BY peak_rank, days_on_chart DESC, c.track_name, c.track_id
