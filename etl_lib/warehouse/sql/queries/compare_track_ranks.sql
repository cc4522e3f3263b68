-- One track on every chart of one day: its rank, movement, peak and days on chart there (as
-- the chart view counts them), or no rank on a chart it is not on. Charts holding the track
-- first, by rank; then the others by name. Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: day, playlists, playlists, track_id, day ('YYYY-MM-DD'; playlists: ids
-- joined with ',', or '' for every playlist with a chart that day).
WITH charts AS (
    SELECT DISTINCT playlist_id
    FROM chart_entries
    WHERE dt = ?
      AND (? = '' OR contains(split(?, ','), playlist_id))
),
placings AS (
    SELECT playlist_id, chart_rank, movement, previous_rank, peak_rank, days_on_chart, first_seen,
           track_name, artists
    FROM chart
    WHERE track_id = ? AND dt = ?
)
SELECT c.playlist_id,
       n.playlist_name,
       p.chart_rank,
       p.movement,
       p.previous_rank,
       p.peak_rank,
       p.days_on_chart,
       p.first_seen,
       p.track_name,
       p.artists
FROM charts AS c
LEFT JOIN playlist_names AS n ON n.playlist_id = c.playlist_id
LEFT JOIN placings AS p ON p.playlist_id = c.playlist_id
ORDER BY p.chart_rank NULLS LAST, n.playlist_name, c.playlist_id
