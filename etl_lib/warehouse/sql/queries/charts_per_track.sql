-- The tracks on the charts of one day, each with the number of charts it is on, its best rank
-- and every chart with its rank there ('name #rank', best first, joined with '; '). Most
-- charts first, then best rank. Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: day, playlists, playlists ('YYYY-MM-DD'; playlists: ids joined with ',',
-- or '' for every playlist with a chart that day).
WITH day_chart AS (
    SELECT playlist_id, chart_rank, track_id, track_name, artists, track_url
    FROM chart
    WHERE dt = ?
      AND (? = '' OR contains(split(?, ','), playlist_id))
),
placings AS (
    -- One placing per chart, should a playlist list the track twice.
    SELECT d.track_id,
           d.track_name,
           d.artists,
           d.track_url,
           d.playlist_id,
           coalesce(n.playlist_name, d.playlist_id) AS chart_name,
           min(d.chart_rank) AS chart_rank
    FROM day_chart AS d
    LEFT JOIN playlist_names AS n ON n.playlist_id = d.playlist_id
    GROUP BY d.track_id, d.track_name, d.artists, d.track_url, d.playlist_id,
             coalesce(n.playlist_name, d.playlist_id)
)
SELECT track_id,
       track_name,
       artists,
       count(*) AS charts,
       min(chart_rank) AS best_rank,
       array_join(
           array_agg(
               concat(chart_name, ' #', CAST(chart_rank AS VARCHAR))
               ORDER BY chart_rank, chart_name, playlist_id
           ),
           '; '
       ) AS chart_ranks,
       track_url
FROM placings
GROUP BY track_id, track_name, artists, track_url
ORDER BY charts DESC, best_rank, track_name, track_id
