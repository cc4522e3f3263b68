-- Each playlist's name as its newest snapshot gives it: what the lookups and comparisons
-- call a chart (a playlist renamed over time shows under its latest name).
SELECT playlist_id, max_by(playlist_name, extracted_at) AS playlist_name
FROM snapshots
GROUP BY playlist_id
