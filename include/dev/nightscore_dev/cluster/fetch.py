"""Fetch links as a logged-in Airflow user would, and say which opened with what they
should show. Run on a host of the cluster that wrote none of them:

    python -m nightscore_dev.cluster.fetch < links.json > results.json

Input: {"airflow": URL, "user": ..., "password": ..., "mlflow_login": [user, password],
"links": [{"url", "expect"}]}. MLflow's pages ask for their own login (basic auth), as a
browser's prompt would.
Output: [{"url", "status", "ok", "bytes"}], ok when 200 and `expect` is in the body.
"""

from __future__ import annotations

import json
import sys

import httpx


def main() -> int:
    job = json.load(sys.stdin)
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        login = client.post(
            f"{job['airflow']}/auth/token",
            json={"username": job["user"], "password": job["password"]},
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        # What a browser holds after the login page: the UI's cookie; API clients send the
        # same token as a bearer.
        client.cookies.set("_token", token)
        client.headers["Authorization"] = f"Bearer {token}"
        results = []
        for link in job["links"]:
            try:
                mlflow = link["expect"] == "mlflow" and job.get("mlflow_login")
                auth = httpx.BasicAuth(*job["mlflow_login"]) if mlflow else None
                response = client.get(link["url"], auth=auth)
                body = response.text
                status = response.status_code
            except httpx.HTTPError as exc:
                body, status = str(exc), 0
            ok = status == 200 and link["expect"].lower() in body.lower()
            results.append({"url": link["url"], "status": status, "ok": ok, "bytes": len(body)})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
