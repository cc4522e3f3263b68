-- Days on chart, peak rank, first and last day seen, per playlist and track charting in the
-- window. Per playlist, most days first, then best peak, then track_id.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
)
SELECT playlist_id,
       track_id,
       count(DISTINCT chart_date) AS days_on_chart,
       min(chart_rank) AS peak_rank,
       min(chart_date) AS first_seen,
       max(chart_date) AS last_seen
FROM chart_window
GROUP BY playlist_id, track_id
ORDER BY playlist_id, days_on_chart DESC, peak_rank, track_id
