-- The window's daily charts of one playlist.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
SELECT playlist_id, chart_date, chart_rank, track_id
FROM daily_chart
WHERE playlist_id = ? AND dt BETWEEN ? AND ?
