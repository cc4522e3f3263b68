-- Each artist's charted tracks between two days (any credit, not only the first), per
-- playlist: the track's name and every artist, days on chart, peak, first and last day
-- seen. Every row carries its artist_id (the first column); per artist, most days first,
-- then best peak. artist_search gives the artist's totals.
-- Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: artist_id, first_day, last_day ('YYYY-MM-DD'; artist_id: one id, or several
-- joined with ',').
WITH credited AS (
    SELECT DISTINCT artist_id, track_id
    FROM latest_track_artists
    WHERE contains(split(?, ','), artist_id)
),
charted AS (
    -- A track credited to two of the artists is on each one's page.
    SELECT cr.artist_id, c.playlist_id, c.dt, c.chart_date, c.chart_rank, c.track_id,
           c.track_name, c.artists, c.track_url
    FROM chart AS c
    JOIN credited AS cr ON cr.track_id = c.track_id
    WHERE c.dt BETWEEN ? AND ?
)
SELECT c.artist_id,
       c.playlist_id,
       n.playlist_name,
       c.track_id,
       c.track_name,
       c.artists,
       count(DISTINCT c.dt) AS days_on_chart,
       min(c.chart_rank) AS peak_rank,
       min(c.chart_date) AS first_seen,
       max(c.chart_date) AS last_seen,
       c.track_url
FROM charted AS c
LEFT JOIN playlist_names AS n ON n.playlist_id = c.playlist_id
GROUP BY c.artist_id, c.playlist_id, n.playlist_name, c.track_id, c.track_name, c.artists,
         c.track_url
ORDER BY c.artist_id, days_on_chart DESC, peak_rank, c.track_name, c.playlist_id, c.track_id
