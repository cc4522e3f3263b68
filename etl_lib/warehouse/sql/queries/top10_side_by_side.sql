-- The top 10 of every chart of one day, one row per chart and rank, charts by name;
-- etl_lib.reporting.analysis.side_by_side turns it into one column per chart. Bind with
-- etl_lib.reporting.analysis.lookup_params.
-- Parameters: day, playlists, playlists ('YYYY-MM-DD'; playlists: ids joined with ',',
-- or '' for every playlist with a chart that day).
WITH top10 AS (
    SELECT playlist_id, chart_rank, movement, track_name, artists, track_id, track_url
    FROM chart
    WHERE dt = ? AND chart_rank <= 10
      AND (? = '' OR contains(split(?, ','), playlist_id))
)
SELECT t.playlist_id,
       n.playlist_name,
       t.chart_rank,
       t.movement,
       t.track_name,
       t.artists,
       t.track_id,
       t.track_url
FROM top10 AS t
LEFT JOIN playlist_names AS n ON n.playlist_id = t.playlist_id
ORDER BY n.playlist_name, t.playlist_id, t.chart_rank
