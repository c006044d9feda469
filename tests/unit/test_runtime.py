"""The local stack's saved environment, which `nightscore-dev airflow ...` reuses."""

import stat

from nightscore_dev.stack import read_env_file, state_paths, write_env_file


def test_the_saved_environment_round_trips_and_is_private(tmp_path):
    paths = state_paths(tmp_path).ensure()
    env = {
        "AIRFLOW_CONN_SMTP_DEFAULT": "smtp://127.0.0.1:1025?disable_ssl=true&disable_tls=true",
        "AIRFLOW__API_AUTH__JWT_SECRET": "a'b\"c $HOME `x` ;",
        "EMPTY": "",
    }
    path = write_env_file(paths, env)
    assert read_env_file(paths) == env
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_saved_environment_reads_as_empty(tmp_path):
    assert read_env_file(state_paths(tmp_path)) == {}
