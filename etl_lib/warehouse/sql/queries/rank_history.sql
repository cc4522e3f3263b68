-- Rank history: every (chart_date, track_id, chart_rank) of each playlist in the window.
-- A day a track was off the chart has no row: the break a rank-over-time chart draws.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
)
SELECT playlist_id, chart_date, track_id, chart_rank
FROM chart_window
ORDER BY playlist_id, chart_date, chart_rank
