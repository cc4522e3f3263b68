-- Each artist's share of the window's chart entries (one track on one day), counting every
-- credited artist: a three-artist track gives each artist the entry, so shares can add up to
-- more than 1. Same as etl_lib.analysis.artist_share.
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
all_entries AS (
    SELECT count(*) AS chart_entries FROM chart_window
),
credits AS (
    SELECT DISTINCT track_id, artist_id FROM latest_track_artists
),
artist_entries AS (
    SELECT c.artist_id, count(*) AS entries
    FROM chart_window AS w
    JOIN credits AS c ON c.track_id = w.track_id
    GROUP BY c.artist_id
)
SELECT a.artist_id,
       ar.name,
       a.entries,
       CAST(a.entries AS DOUBLE) / CAST(t.chart_entries AS DOUBLE) AS share
FROM artist_entries AS a
CROSS JOIN all_entries AS t
LEFT JOIN latest_artists AS ar ON ar.artist_id = a.artist_id
ORDER BY a.entries DESC, a.artist_id
