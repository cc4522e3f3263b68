-- Every credited artist of each track, in credited order, as of the track's latest snapshot.
SELECT track_id, artist_id, artist_position
FROM (
    SELECT ta.*, dense_rank() OVER (PARTITION BY track_id ORDER BY extracted_at DESC) AS recency
    FROM track_artists AS ta
) AS ranked
WHERE recency = 1
