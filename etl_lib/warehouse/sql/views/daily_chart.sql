-- One ranking per playlist per day: the entries of the day's last snapshot.
-- chart_rank counts chart entries only, so skipped episodes or local files leave no gaps.
-- One pass over chart_entries: each row carries its day's last extraction time.
SELECT playlist_id,
       dt,
       CAST(dt AS DATE) AS chart_date,
       row_number() OVER (PARTITION BY playlist_id, dt ORDER BY position) AS chart_rank,
       position,
       track_id,
       snapshot_id,
       extracted_at
FROM (
    SELECT e.*, max(e.extracted_at) OVER (PARTITION BY e.playlist_id, e.dt) AS last_extracted_at
    FROM chart_entries AS e
) AS with_last
WHERE extracted_at = last_extracted_at
