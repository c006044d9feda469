-- Where each airport is, and its time zone: for the row rules.
SELECT faa, lat, lon, tzone FROM core.airports
