-- Days on chart, peak rank, first and last day seen, per track charting in the window.
-- Most days first, then best peak, then track_id.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
)
SELECT track_id,
       count(DISTINCT chart_date) AS days_on_chart,
       min(chart_rank) AS peak_rank,
       min(chart_date) AS first_seen,
       max(chart_date) AS last_seen
FROM chart_window
GROUP BY track_id
ORDER BY days_on_chart DESC, peak_rank, track_id
