-- Every track's credited artists, in credited order.
SELECT track_id, artist_id, artist_position FROM latest_track_artists
