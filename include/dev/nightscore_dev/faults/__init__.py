"""`make test-faults`: faults injected into the real components of one local stack, each
while a real DAG run needs that component, and what the platform did about it checked.

    stack     the local stack, with the warehouse on a Postgres server of its own (so it
              can be restarted without Airflow's metadata) and the reports store on a
              small tmpfs; the switches that break and mend each component
    watch     fire an injection when a given task starts running
    evidence  what the warehouse, Airflow and the mail sink hold afterwards
    check     the scenarios, their table and the last line of JSON
"""
