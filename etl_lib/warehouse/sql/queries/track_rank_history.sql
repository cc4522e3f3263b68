-- One track's rank on each playlist's chart, every day between two days it was on it: the
-- lines of a rank-over-time chart (a day off a chart has no row, so its line breaks).
-- Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: track_id, first_day, last_day ('YYYY-MM-DD').
WITH history AS (
    SELECT playlist_id, chart_date, min(chart_rank) AS chart_rank
    FROM daily_chart
    WHERE track_id = ? AND dt BETWEEN ? AND ?
    GROUP BY playlist_id, chart_date
)
SELECT h.playlist_id, n.playlist_name, h.chart_date, h.chart_rank
FROM history AS h
LEFT JOIN playlist_names AS n ON n.playlist_id = h.playlist_id
ORDER BY n.playlist_name, h.playlist_id, h.chart_date
