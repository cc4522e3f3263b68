-- The longest run of consecutive calendar days at #1 in the window (a day without a chart
-- ends a run); ties go to the run that started first. One row, or none.
-- Same as etl_lib.analysis.longest_running_number_one.
-- Parameters: playlist_id, as_of ('YYYY-MM-DD'), days.
WITH params AS (
    SELECT CAST(? AS VARCHAR) AS playlist_id, CAST(? AS DATE) AS as_of, CAST(? AS INTEGER) AS days
),
chart_window AS (
    -- The `days` dates ending at as_of. The filter is on dt, the partition key, not on
    -- chart_date (a CAST of it), to give Athena a predicate on the partition column. The inner
    -- CAST AS DATE is needed on DuckDB, where date + interval is a timestamp ('... 00:00:00').
    SELECT d.chart_date, d.track_id, d.chart_rank
    FROM daily_chart AS d
    JOIN params AS p
      ON d.playlist_id = p.playlist_id
     AND d.dt BETWEEN CAST(CAST(date_add('day', 1 - p.days, p.as_of) AS DATE) AS VARCHAR)
                  AND CAST(p.as_of AS VARCHAR)
),
number_ones AS (
    -- Consecutive days of one track share day number minus its row number (gaps and islands).
    SELECT track_id,
           chart_date,
           date_diff('day', DATE '1970-01-01', chart_date)
               - row_number() OVER (PARTITION BY track_id ORDER BY chart_date) AS run_key
    FROM chart_window
    WHERE chart_rank = 1
),
runs AS (
    SELECT track_id, count(*) AS run_days, min(chart_date) AS run_start, max(chart_date) AS run_end
    FROM number_ones
    GROUP BY track_id, run_key
)
SELECT track_id, run_days, run_start, run_end
FROM runs
ORDER BY run_days DESC, run_start
LIMIT 1
