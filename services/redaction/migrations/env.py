from shared.db import run_env

run_env()
