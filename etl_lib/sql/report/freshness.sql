-- The newest snapshot of one playlist up to the window's last day, and its name.
-- Parameters: playlist_id, last_day ('YYYY-MM-DD').
SELECT max(extracted_at) AS newest, max(playlist_name) AS playlist_name
FROM snapshots
WHERE playlist_id = ? AND dt <= ?
