SELECT faa FROM core.airports
