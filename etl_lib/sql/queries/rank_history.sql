-- Rank history: every (chart_date, track_id, chart_rank) of one playlist in the window.
-- A day a track was off the chart has no row. Same as etl_lib.analysis.rank_history.
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
)
SELECT chart_date, track_id, chart_rank
FROM chart_window
ORDER BY chart_date, chart_rank
