"""`nightscore-dev ...`: the local stack's command line (`make demo`, `make stop`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nightscore.cli import date_arg


def _demo(args: argparse.Namespace) -> int:
    from nightscore_dev.demo import run_demo

    return run_demo(args.start, args.end, executor=args.executor)


def _stop(args: argparse.Namespace) -> int:
    from nightscore_dev.stack import stop

    return stop()


def _airflow(args: argparse.Namespace) -> int:
    from nightscore_dev.stack import airflow_command, read_env_file, state_paths

    env = read_env_file(state_paths())
    if not env:
        print("no local stack has been started here: run `make demo` first", file=sys.stderr)
        return 1
    command = airflow_command(*args.args)
    os.execvpe(command[0], command, {**os.environ, **env})
    return 0  # not reached


def _mailsink(args: argparse.Namespace) -> int:
    from nightscore_dev.mailsink import serve

    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    from nightscore_dev import mailsink

    parser = argparse.ArgumentParser(prog="nightscore-dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="start the platform and replay a window through the scheduler"
    )
    demo.add_argument("--start", type=date_arg, default=None)
    demo.add_argument("--end", type=date_arg, default=None)
    demo.add_argument(
        "--executor",
        choices=("local", "celery"),
        default="local",
        help="local: the LocalExecutor (default); celery: Redis and two Celery workers",
    )
    demo.set_defaults(func=_demo)

    sub.add_parser("stop", help="stop what `nightscore-dev demo` started").set_defaults(func=_stop)

    airflow = sub.add_parser(
        "airflow",
        help="run the airflow CLI against the local stack, e.g. `nightscore-dev airflow dags list`",
    )
    airflow.add_argument("args", nargs=argparse.REMAINDER, help="arguments for airflow")
    airflow.set_defaults(func=_airflow)

    sink = sub.add_parser("mailsink", help=mailsink.DESCRIPTION, description=mailsink.DESCRIPTION)
    mailsink.add_arguments(sink).set_defaults(func=_mailsink)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
