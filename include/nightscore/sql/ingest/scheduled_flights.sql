SELECT carrier, flight, origin, dest, sched_dep_time, sched_arr_time, distance
FROM core.flights WHERE service_date = :service_date
