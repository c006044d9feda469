"""nightscore-dev: what a developer runs beside the platform, never shipped in the image.

stack/      the local stack behind `make demo`: Postgres, MLflow, Airflow, the mail sink
demo        `nightscore-dev demo`: replay a window of days through the scheduler
mailsink    the local SMTP sink that keeps the stack's mail as files
seed        a fast, GX-free warehouse seeder for tests and benchmarks
cli         the `nightscore-dev` command
"""
