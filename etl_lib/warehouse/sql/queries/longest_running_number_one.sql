-- Per playlist, the longest run of consecutive calendar days at #1 in the window (a day
-- without a chart ends a run: what was #1 that day is unknown); ties go to the run that
-- started first. One row per playlist with a chart in the window.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
),
number_ones AS (
    -- Consecutive days of one track share day number minus its row number (gaps and islands).
    SELECT playlist_id,
           track_id,
           chart_date,
           date_diff('day', DATE '1970-01-01', chart_date)
               - row_number() OVER (PARTITION BY playlist_id, track_id ORDER BY chart_date)
               AS run_key
    FROM chart_window
    WHERE chart_rank = 1
),
runs AS (
    SELECT playlist_id,
           track_id,
           count(*) AS run_days,
           min(chart_date) AS run_start,
           max(chart_date) AS run_end
    FROM number_ones
    GROUP BY playlist_id, track_id, run_key
),
ranked AS (
    SELECT playlist_id, track_id, run_days, run_start, run_end,
           row_number() OVER (PARTITION BY playlist_id ORDER BY run_days DESC, run_start) AS place
    FROM runs
)
SELECT playlist_id, track_id, run_days, run_start, run_end
FROM ranked
WHERE place = 1
ORDER BY playlist_id
