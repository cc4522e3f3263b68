-- Rank history: every (chart_date, track_id, chart_rank) of one playlist in the window.
-- A day a track was off the chart has no row: the break a rank-over-time chart draws.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
)
SELECT chart_date, track_id, chart_rank
FROM chart_window
ORDER BY chart_date, chart_rank
