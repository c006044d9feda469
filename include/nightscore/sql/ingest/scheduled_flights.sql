SELECT carrier, flight, origin FROM core.flights WHERE service_date = :service_date
