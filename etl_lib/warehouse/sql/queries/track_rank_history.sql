-- Each track's rank on each playlist's chart, every day between two days it was on it: the
-- lines of a rank-over-time chart (a day off a chart has no row, so its line breaks). Every
-- row carries its track_id (the first column); per track, by chart name, then day.
-- Bind with etl_lib.reporting.analysis.lookup_params.
-- Parameters: track_id, first_day, last_day ('YYYY-MM-DD'; track_id: one id, or several
-- joined with ',').
WITH history AS (
    SELECT track_id, playlist_id, chart_date, min(chart_rank) AS chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), track_id) AND dt BETWEEN ? AND ?
    GROUP BY track_id, playlist_id, chart_date
)
SELECT h.track_id, h.playlist_id, n.playlist_name, h.chart_date, h.chart_rank
FROM history AS h
LEFT JOIN playlist_names AS n ON n.playlist_id = h.playlist_id
ORDER BY h.track_id, n.playlist_name, h.playlist_id, h.chart_date
