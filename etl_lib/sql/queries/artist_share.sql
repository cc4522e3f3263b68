-- Each artist's share of the window's chart entries (one track on one day), counting every
-- credited artist: a three-artist track gives each artist the entry, so shares can add up to
-- more than 1. Same as etl_lib.analysis.artist_share.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
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
