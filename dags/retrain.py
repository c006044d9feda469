"""
### retrain: a new challenger every week, promoted only through the gate

Runs on Mondays at 12:00 UTC with **cut-off = the run's day**: it trains on the
labelled service dates before the cut-off (by default the 120 days before it; Sunday's
outcomes landed at 06:00). Monitoring triggers it too, with a `reason`.

1. `resolve_cutoff`: the cut-off from the logical date, or the `cutoff` param.
2. `train_challenger`: builds the training set with the shared feature builder, checks
   it with Great Expectations (label present, class balance, feature ranges), tunes
   XGBoost with Optuna on a time split (the last 14 days validate), logs everything to
   MLflow and registers a new `flight_disruption` version with the alias
   `challenger`. Its *Extra Links* open the MLflow run and the model version.
3. `gate`: scores the challenger and the current `champion` on the same most recent
   labelled days; promotes the challenger only above the floor and at most the
   margin worse than the champion (`NIGHTSCORE_GATE_*`). Every decision is a row in
   `ml.model_decisions` and tags on the MLflow version. `dry_run` mode decides and
   records without moving the alias.

**Reads** `core.*` · **writes** MLflow (runs, registry), `ml.model_decisions`.

**When it fails:** nothing touches the champion. `train_challenger` fails on a
training set that breaks its checks (the log lists them) or an unreachable MLflow
server; re-running is safe: it registers one more challenger version.

**Manual runs** take `cutoff` (YYYY-MM-DD) and `reason`.
"""

from datetime import date, timedelta

from airflow.sdk import Asset, Param, dag, task

from nightscore.calendar import RETRAIN_SCHEDULE, training_cutoff
from nightscore.dagkit import (
    DEFAULT_ARGS,
    END_DATE,
    OWNER_LINKS,
    SETTINGS,
    START_DATE,
    run_step,
    send_alerts_task,
    task_doc,
)

CHAMPION = Asset(
    name="ml.champion", uri=f"nightscore://mlflow/models/{SETTINGS.model_name}/champion"
)


@dag(
    dag_id="retrain",
    schedule=RETRAIN_SCHEDULE,
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 1},
    params={
        "cutoff": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Train on labelled days before this date (YYYY-MM-DD). Required "
            "for runs triggered by hand.",
        ),
        "reason": Param(
            "scheduled", type="string", description="Why this training runs; recorded."
        ),
    },
    tags=["nightscore", "training"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def retrain():
    @task(
        retries=0,
        doc_md=task_doc(
            "The training cut-off: the run's day, or the `cutoff` param of a manual run.",
            reads="the run's logical date and params",
            writes="nothing (the cut-off as its XCom)",
            fails='a manual run without a valid `cutoff`: trigger with `{"cutoff": "2013-03-11"}`.',
        ),
    )
    def resolve_cutoff(**context) -> str:
        params = context["params"]
        return run_step(
            lambda: training_cutoff(context.get("logical_date"), params.get("cutoff"))
        ).isoformat()

    @task(
        execution_timeout=timedelta(seconds=SETTINGS.training_timeout_s),
        doc_md=task_doc(
            "Builds the training set of the labelled days before the cut-off, checks it, "
            "tunes XGBoost, and registers a new version with the alias `challenger`. Its "
            "*Extra Links* open the MLflow run and the model version.",
            reads="`core.*`",
            writes="MLflow (a run, a model version)",
            fails="a training set that breaks its checks (the log lists them: too few "
            "labelled days?) or MLflow unreachable (retried). The champion is untouched; "
            "re-running registers one more challenger.",
        ),
    )
    def train_challenger(cutoff: str, **context) -> dict:
        from nightscore import registry, training

        def run():
            registry.check_server(SETTINGS)
            return training.train_challenger(
                date.fromisoformat(cutoff),
                SETTINGS,
                trigger=context["params"].get("reason") or "scheduled",
                airflow_run_id=context["run_id"],
                progress=print,
            )

        outcome = run_step(run)
        # Shown as "MLflow run" / "MLflow model" links (plugins/nightscore_mlflow_links.py).
        ti = context["ti"]
        ti.xcom_push(key="mlflow_run_url", value=outcome.model.run_url(SETTINGS))
        ti.xcom_push(key="mlflow_model_url", value=outcome.model.model_url(SETTINGS))
        return outcome.model.to_json()

    @task(
        outlets=[CHAMPION],
        doc_md=task_doc(
            "Scores the challenger and the champion on the same recent labelled days and "
            "promotes the challenger only above the floor and within the margin "
            "(`NIGHTSCORE_GATE_*`); `dry_run` decides without moving the alias.",
            reads="`core.*`, the MLflow registry",
            writes="`ml.model_decisions`, the MLflow alias `champion` and version tags",
            fails="MLflow or the warehouse unreachable (retried). A rejection is not a "
            "failure: the decision and its reason are in `ml.model_decisions`.",
        ),
    )
    def gate(cutoff: str, challenger: dict, **context) -> dict:
        from nightscore import registry
        from nightscore.gate import gate_challenger

        decision = run_step(
            lambda: gate_challenger(
                registry.ModelRef.from_json(challenger),
                date.fromisoformat(cutoff),
                SETTINGS,
                trigger=context["params"].get("reason") or "scheduled",
                airflow_run_id=context["run_id"],
            )
        )
        print(f"{decision.decision} (applied: {decision.applied}): {decision.reason}")
        return decision.to_json()

    cutoff = resolve_cutoff()
    gate(cutoff, train_challenger(cutoff))
    send_alerts_task()


retrain()
