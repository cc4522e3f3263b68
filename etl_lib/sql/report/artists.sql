-- Every artist's latest name.
SELECT artist_id, name FROM latest_artists
