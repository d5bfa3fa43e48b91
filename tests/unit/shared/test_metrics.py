"""shared.metrics: what the workers and publishing count, who may read it, a worker's
own /metrics endpoint, and gunicorn's several processes summed into one answer."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from prometheus_client import REGISTRY

from shared import metrics

ROOT = Path(__file__).resolve().parents[3]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_handled_message_is_counted_by_outcome_and_timed() -> None:
    labels = {"service": "t-consent", "type": "faces.detected"}
    before = sample("safepost_messages_total", **labels, outcome="ok")
    fast = sample("safepost_handler_seconds_bucket", **labels, le="0.005")
    slow = sample("safepost_handler_seconds_bucket", **labels, le="0.0025")

    metrics.message_handled("t-consent", "faces.detected", "ok", 0.003)
    metrics.message_handled("t-consent", "faces.detected", "dead_lettered", 0.5)

    assert sample("safepost_messages_total", **labels, outcome="ok") == before + 1
    assert sample("safepost_messages_total", **labels, outcome="dead_lettered") >= 1
    assert sample("safepost_handler_seconds_bucket", **labels, le="0.005") == fast + 1
    assert sample("safepost_handler_seconds_bucket", **labels, le="0.0025") == slow


def test_every_outcome_of_the_contract_is_accepted_and_no_other() -> None:
    for outcome in ("ok", "retried", "dead_lettered", "requeued"):
        metrics.message_handled("t-audit", "post.submitted", outcome, 0.01)

    with pytest.raises(ValueError, match="unknown message outcome"):
        metrics.message_handled("t-audit", "post.submitted", "failed", 0.01)

    assert sample(
        "safepost_messages_total",
        service="t-audit",
        type="post.submitted",
        outcome="failed",
    ) == pytest.approx(0.0)


def test_handler_buckets_span_a_millisecond_to_a_minute() -> None:
    assert metrics.HANDLER_BUCKETS[0] <= 0.001
    assert metrics.HANDLER_BUCKETS[-1] >= 60


def test_queue_lag_publish_attempts_and_takedown_time_are_recorded() -> None:
    lag = {"service": "t-redaction", "type": "post.submitted"}
    lag_before = sample("safepost_message_lag_seconds_count", **lag)
    ok_before = sample("safepost_publish_attempts_total", platform="t-x", outcome="ok")

    metrics.message_lag("t-redaction", "post.submitted", 42.0)
    metrics.publish_attempt("t-x", "ok")
    metrics.publish_attempt("t-x", "rate_limited")
    metrics.takedown_seconds("t-x", 90.0)

    assert sample("safepost_message_lag_seconds_count", **lag) == lag_before + 1
    assert sample("safepost_message_lag_seconds_bucket", **lag, le="30.0") == 0
    assert sample("safepost_message_lag_seconds_bucket", **lag, le="60.0") >= 1
    assert (
        sample("safepost_publish_attempts_total", platform="t-x", outcome="ok")
        == ok_before + 1
    )
    assert sample(
        "safepost_publish_attempts_total", platform="t-x", outcome="rate_limited"
    )
    assert sample("safepost_takedown_seconds_sum", platform="t-x") >= 90.0


def test_a_negative_duration_from_skewed_clocks_counts_as_zero() -> None:
    metrics.message_lag("t-skew", "post.submitted", -3.0)

    labels = {"service": "t-skew", "type": "post.submitted"}
    assert sample("safepost_message_lag_seconds_sum", **labels) == 0.0
    assert sample("safepost_message_lag_seconds_count", **labels) == 1.0


def test_the_exposition_is_the_prometheus_text_format_with_every_series() -> None:
    metrics.message_handled("t-expo", "x", "ok", 0.1)
    metrics.message_lag("t-expo", "x", 0.1)
    metrics.publish_attempt("t-expo", "ok")
    metrics.takedown_seconds("t-expo", 1.0)
    metrics.http_request("t-expo", "e", "GET", 200, 0.1)

    body, content_type = metrics.exposition()

    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    for series in metrics.SERIES:
        assert f"# TYPE {series} " in text, series
    assert "_created" not in text  # no second series per counter and histogram


# --- who may read them -------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    ["127.0.0.1", "::1", "10.1.2.3", "172.20.0.5", "192.168.1.9", "fd00::7",
     "::ffff:127.0.0.1"],
)  # fmt: skip
def test_without_a_token_internal_addresses_may_read(addr: str) -> None:
    assert (
        metrics.refusal(token=None, authorization="", remote_addr=addr, forwarded=False)
        is None
    )


@pytest.mark.parametrize(
    "addr", ["8.8.8.8", "81.2.69.142", "2001:4860:4860::8888", "", None, "nonsense"]
)
def test_without_a_token_other_addresses_are_refused(addr: str | None) -> None:
    refused = metrics.refusal(
        token=None, authorization="", remote_addr=addr, forwarded=False
    )

    assert refused is not None and refused[0] == 403


def test_without_a_token_nothing_that_came_through_a_proxy_may_read() -> None:
    refused = metrics.refusal(
        token=None, authorization="", remote_addr="172.18.0.3", forwarded=True
    )

    assert refused is not None and refused[0] == 403


@pytest.mark.parametrize(
    ("authorization", "allowed"),
    [
        ("Bearer s3cret-metrics-token", True),
        ("bearer  s3cret-metrics-token ", True),
        ("Bearer s3cret-metrics-toke", False),
        ("Bearer s3cret-metrics-token-and-more", False),
        ("Basic s3cret-metrics-token", False),
        ("s3cret-metrics-token", False),
        ("Bearer", False),
        ("", False),
        ("Bearer sécret", False),
    ],
)
def test_with_a_token_only_its_bearer_may_read_from_anywhere(
    authorization: str, allowed: bool
) -> None:
    for addr in ("127.0.0.1", "8.8.8.8"):
        refused = metrics.refusal(
            token="s3cret-metrics-token",
            authorization=authorization,
            remote_addr=addr,
            forwarded=True,
        )

        assert (refused is None) == allowed
        if not allowed:
            assert refused is not None and refused[0] == 401


def test_an_empty_token_counts_as_unset() -> None:
    assert metrics.token_from_env({"METRICS_TOKEN": "  "}) is None
    assert metrics.token_from_env({"METRICS_TOKEN": "abc"}) == "abc"
    assert metrics.token_from_env({}) is None


def test_the_port_comes_from_metrics_port() -> None:
    assert metrics.port_from_env({"METRICS_PORT": "9100"}) == 9100
    assert metrics.port_from_env({}) is None
    assert metrics.port_from_env({"METRICS_PORT": "nine"}) is None
    assert metrics.port_from_env({"METRICS_PORT": "70000"}) is None


# --- a worker's own endpoint (each in a fresh process: the server is per process) --


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(
    code: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


WORKER = """
    import logging, sys
    from shared import metrics
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    for port in {ports}:
        metrics.start_worker_server(port)
    metrics.message_handled("redaction", "post.submitted", "ok", 1.5)
    print("ready", flush=True)
    sys.stdin.readline()  # until the test is done
"""


def wait_ready(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"the process ended early: {lines}"
        lines.append(line.strip())
        if line.strip() == "ready":
            return lines


def scrape(port: int, **headers: str) -> requests.Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return requests.get(
                f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=5
            )
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def finish(proc: subprocess.Popen[str]) -> int:
    assert proc.stdin is not None
    proc.stdin.close()
    return proc.wait(timeout=10)


def test_a_worker_serves_its_metrics_on_its_port_once() -> None:
    first, second = free_port(), free_port()
    proc = start_process(WORKER.format(ports=[first, second]))
    try:
        wait_ready(proc)

        answer = scrape(first)

        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert (
            'safepost_messages_total{outcome="ok",service="redaction",'
            'type="post.submitted"} 1.0' in answer.text
        )
        assert requests.get(f"http://127.0.0.1:{first}/other", timeout=5).status_code
        with pytest.raises(requests.ConnectionError):  # idempotent: one server only
            requests.get(f"http://127.0.0.1:{second}/metrics", timeout=2)
    finally:
        assert finish(proc) == 0


def test_a_taken_port_is_a_warning_and_the_worker_goes_on() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_process(WORKER.format(ports=[port]))
        try:
            lines = wait_ready(proc)
        finally:
            code = finish(proc)

    assert code == 0
    assert any(f"metrics not served: port {port}" in line for line in lines), lines


def test_a_worker_with_a_token_answers_only_its_bearer() -> None:
    port = free_port()
    proc = start_process(
        WORKER.format(ports=[port]), env={"METRICS_TOKEN": "worker-metrics-token"}
    )
    try:
        wait_ready(proc)

        without = scrape(port)
        wrong = scrape(port, Authorization="Bearer nope")
        right = scrape(port, Authorization="Bearer worker-metrics-token")
    finally:
        finish(proc)

    assert (without.status_code, wrong.status_code) == (401, 401)
    assert without.headers["WWW-Authenticate"] == "Bearer"
    assert "safepost_messages_total" not in without.text
    assert right.status_code == 200 and "safepost_messages_total" in right.text


def test_a_worker_refuses_a_scrape_that_came_through_a_proxy() -> None:
    port = free_port()
    proc = start_process(WORKER.format(ports=[port]))
    try:
        wait_ready(proc)

        answer = scrape(port, **{"X-Forwarded-For": "8.8.8.8"})
    finally:
        finish(proc)

    assert answer.status_code == 403


# --- gunicorn's processes: PROMETHEUS_MULTIPROC_DIR ------------------------------

COUNT = """
    from shared import metrics
    for _ in range({n}):
        metrics.message_handled("approval", "post.approved", "ok", 0.2)
        metrics.http_request("approval", "approval.decide", "POST", 202, 0.05)
    body, _ = metrics.exposition()
    print(body.decode())
"""


def test_with_a_multiprocess_folder_every_process_counts_into_one_answer(
    tmp_path: Path,
) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    outputs = []
    for n in (2, 3, 0):  # two processes count; a third (none of its own) answers
        proc = start_process(COUNT.format(n=n), env=env)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        outputs.append(out)

    summed = outputs[-1]
    assert (
        'safepost_messages_total{outcome="ok",service="approval",'
        'type="post.approved"} 5.0' in summed
    )
    assert (
        'safepost_handler_seconds_count{service="approval",type="post.approved"} 5.0'
        in summed
    )
    assert 'status="202"} 5.0' in summed
    assert list(tmp_path.glob("*.db")), "the processes wrote no value files"


def test_without_a_multiprocess_folder_a_process_answers_only_its_own_counts() -> None:
    proc = start_process(COUNT.format(n=2))
    out, _ = proc.communicate(timeout=30)

    assert proc.returncode == 0, out
    assert (
        'safepost_messages_total{outcome="ok",service="approval",'
        'type="post.approved"} 2.0' in out
    )
    assert "process_cpu_seconds_total" in out  # the default registry's collectors


# --- the Grafana dashboard ---------------------------------------------------------

DASHBOARD = ROOT / "deploy" / "grafana" / "safepost.json"
# From the rabbitmq_prometheus plugin's per-object metrics (labels queue, vhost).
RABBITMQ = {"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked"}
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def defined_series() -> set[str]:
    """Every sample name shared.metrics exports (histograms with their parts)."""
    body, _ = metrics.exposition()
    types = dict(
        line.split()[2:4]
        for line in body.decode().splitlines()
        if line.startswith("# TYPE safepost_")
    )
    names = set()
    for name, kind in types.items():
        if kind == "histogram":
            names |= {name + part for part in HISTOGRAM_PARTS}
        else:
            names.add(name)
    return names


def panels() -> list[dict[str, object]]:
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row keeps its panels
    return out


def exprs() -> list[tuple[str, str]]:
    return [
        (str(panel["title"]), str(target["expr"]))
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def test_every_dashboard_query_reads_a_metric_that_exists() -> None:
    known = defined_series() | RABBITMQ
    problems = []
    for title, expr in exprs():
        used = set(re.findall(r"\b(?:safepost|rabbitmq)_[a-z_]+\b", expr))
        if not used:
            problems.append(f"{title}: reads no Safepost or RabbitMQ metric: {expr}")
        problems += [f"{title}: no metric {name}" for name in sorted(used - known)]
        if "histogram_quantile" in expr and not all(
            n.endswith("_bucket") for n in used
        ):
            problems.append(f"{title}: a quantile needs _bucket series: {expr}")

    assert problems == []


def test_the_dashboard_shows_what_operators_watch() -> None:
    every = " ".join(expr for _, expr in exprs())

    for needed in (
        "safepost_messages_total",
        'outcome="dead_lettered"',
        "safepost_handler_seconds_bucket",
        "safepost_message_lag_seconds_bucket",
        "safepost_publish_attempts_total",
        "safepost_takedown_seconds_bucket",
        'safepost_http_requests_total{status=~"5..',
        "safepost_http_request_seconds_bucket",
        "rabbitmq_queue_messages_ready",
    ):
        assert needed in every, needed


def test_the_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in panels()]

    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]
    for panel in panels():
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
