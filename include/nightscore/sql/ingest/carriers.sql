SELECT carrier FROM core.airlines
