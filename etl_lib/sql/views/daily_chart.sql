-- One ranking per playlist per day: the entries of the day's last snapshot.
-- chart_rank counts chart entries only, so skipped episodes or local files leave no gaps.
WITH last_snapshot AS (
    SELECT playlist_id, dt, max(extracted_at) AS extracted_at
    FROM chart_entries
    GROUP BY playlist_id, dt
)
SELECT e.playlist_id,
       e.dt,
       CAST(e.dt AS DATE) AS chart_date,
       row_number() OVER (PARTITION BY e.playlist_id, e.dt ORDER BY e.position) AS chart_rank,
       e.position,
       e.track_id,
       e.snapshot_id,
       e.extracted_at
FROM chart_entries AS e
JOIN last_snapshot AS l
  ON e.playlist_id = l.playlist_id AND e.dt = l.dt AND e.extracted_at = l.extracted_at
