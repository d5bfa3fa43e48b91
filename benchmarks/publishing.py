"""Publishing against the platform sandboxes: how long from approval to live, and
whether a storm of failures and dying workers ever posts twice or loses a post.

Publishing's own code does the work: its SQL adapters on a temporary SQLite file (and
PostgreSQL with ``--postgres URL``: a fresh database is created on that server and
dropped afterwards), its production adapters over HTTP to the sandboxes, and
``delivery.run_due`` called by several threads standing for several workers (each
polling as the worker does). The consent gate answers at once (``current``).

1. Latency: ``--posts`` posts (one image and a caption each), approved one every
   ``--interval`` seconds, to a school's Facebook, Instagram, X and LinkedIn
   accounts, every sandbox call taking 50-300 ms; approval-to-live per platform
   (p50/p95). Instagram includes its container polling (one status read answers
   IN_PROGRESS, then the adapter's 3 s poll interval).
2. Chaos: ``--bulk`` posts x the same 4 accounts, all approved at once, with the
   same latency; each platform call fails with probability 5% (a ``server_error``
   on a call that creates nothing, ``drop_after`` on a create: the post is made and
   the answer lost) and 1% of successful publishes kill their worker between the
   platform's answer and the marker (``crash_after_answer`` raising
   ``SimulatedCrashError``; the worker restarts after the lease). Counts the live
   copies per (post, account) on the sandboxes: duplicates and losses must be 0.
   Prints the time to drain (every delivery final) and the retries it took. By
   default all posts go to one school's 4 accounts (the hardest case: a
   reconciliation must page back through hundreds of newer posts on the same
   account to find the one it looks for); ``--schools N`` shares them out among N
   schools.

    python benchmarks/publishing.py [--posts 20] [--bulk 500] [--workers 16]
        [--schools 1] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--smoke] [--runs latency,chaos]

Exit status 1 if any duplicate, loss, or delivery not live.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flask import request  # noqa: E402
from PIL import Image  # noqa: E402

from safepost import demo  # noqa: E402
from safepost.sandboxes import graph, linkedin, webhook, x  # noqa: E402
from safepost.sandboxes import run as sandboxes_run  # noqa: E402
from services.publishing import adapters, bootstrap, delivery, domain  # noqa: E402
from services.publishing.vault import TokenVault, generate_key  # noqa: E402
from shared import contracts, db  # noqa: E402
from shared.storage import MemoryBlobStore  # noqa: E402

SUFFIXES = ("facebook", "instagram", "x", "linkedin")  # each school's 4 accounts
LATENCY = (0.05, 0.3)
FAULT_RATE = 0.05
KILL_RATE = 0.01
# The calls each adapter treats as creating the post (an answer lost there is
# ambiguous): they get ``drop_after``; every other call gets ``server_error``.
CREATES = re.compile(
    r"^POST (/v[0-9.]+/[0-9]+/(feed|media_publish)|/2/tweets|/rest/posts)$"
)
POST_NUMBER = re.compile(r"Benchmark post (\d+)")


def chaos_policy(lease: float) -> delivery.Policy:
    return delivery.Policy(
        retry_seconds=(1,) * 8,  # transient errors: again after a second, 8 times
        lease=timedelta(seconds=lease),  # longer than any one publish takes here
        reconcile_seconds=(1, 2, 3),
        gate_fresh=timedelta(hours=2),  # the consent check stays fresh for the run
        wait_seconds=1,
    )


# -- sandboxes that fail at random ---------------------------------------------------


@dataclass
class Chaos:
    rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    injected: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self) -> str | None:
        if request.path.startswith("/_sandbox") or request.path == "/":
            return None
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            name = (
                "drop_after"
                if CREATES.match(f"{request.method} {request.path}")
                else "server_error"
            )
            self.injected[name] += 1
            return name


def chaotic(base: type[Any], chaos: Chaos) -> type[Any]:
    class Chaotic(base):  # type: ignore[misc, valid-type]
        def fault(self) -> str | None:
            return super().fault() or chaos.pick()

    return Chaotic


def school_names(count: int) -> dict[str, str]:
    """The demo's Oakfield alone, or ``count`` schools sharing the posts."""
    if count == 1:
        return {"oakfield": demo.SCHOOLS["oakfield"]}
    return {f"school{n:02d}": f"School {n}" for n in range(1, count + 1)}


def accounts_of(school: str) -> list[str]:
    return [demo.platform_account(school, suffix) for suffix in SUFFIXES]


def platform_of(account_id: str) -> str:
    return account_id.rsplit("-", 1)[1]


def sandboxes(chaos: Chaos, schools: dict[str, str]) -> sandboxes_run.Sandboxes:
    boxes = sandboxes_run.Sandboxes(
        graph=chaotic(graph.GraphSandbox, chaos)(latency=LATENCY),
        x=chaotic(x.XSandbox, chaos)(LATENCY),
        linkedin=chaotic(linkedin.LinkedInSandbox, chaos)(LATENCY),
        webhook=webhook.WebhookSandbox(latency=LATENCY),
    )
    return sandboxes_run.serve(boxes, schools)


# -- publishing on a database --------------------------------------------------------


@contextmanager
def database(postgres: str | None) -> Iterator[str]:
    """A temporary SQLite file, or a fresh database on the PostgreSQL server."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/publishing.db"
        return
    import sqlalchemy as sa

    name = f"safepost_bench_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def publishing_ports(
    url: str, boxes: sandboxes_run.Sandboxes, policy: delivery.Policy
) -> bootstrap.Ports:
    """Publishing's own ports on ``url``, its adapters pointed at the sandboxes,
    with the demo's accounts connected (tokens sealed in the vault)."""
    engine = db.make_engine(url)
    db.migrate(engine, bootstrap.MIGRATIONS)
    vault = TokenVault(generate_key())
    ports = bootstrap.Ports(
        accounts=adapters.SqlAccountDirectory(engine),
        deliveries=adapters.SqlDeliveryLog(engine),
        redacted=MemoryBlobStore(),
        platforms=bootstrap.platform_adapters(None),
        approvals=adapters.SqlApprovals(engine),
        unit=partial(
            adapters.PublishingUnit,
            engine,
            adapters.outbox,
            producer=bootstrap.SERVICE,
            publisher=None,  # what it emits stays in the outbox
            vault=vault,
        ),
        outbox=db.SqlOutbox(engine, adapters.outbox, db.utcnow),
        sites=adapters.SqlSiteRegister(engine),
        tokens=adapters.SqlTokens(engine, vault),
        vault=vault,
        platform_env=boxes.env(),
        policy=policy,
    )
    demo.approve_sites(ports)
    for school in boxes.issued:
        demo.connect_platform_accounts(ports, school, boxes)
    return ports


def photo() -> bytes:
    """A 1080 x 1080 JPEG (a gradient with noise), like a redacted photo."""
    img = Image.linear_gradient("L").resize((1080, 1080)).convert("RGB")
    noise = Image.effect_noise((1080, 1080), 40).convert("RGB")
    out = io.BytesIO()
    Image.blend(img, noise, 0.3).save(out, "JPEG", quality=80)
    return out.getvalue()


def approve(ports: bootstrap.Ports, school: str, number: int, image: bytes) -> str:
    """Post ``number`` of ``school`` approved and cleared by consent: its 4
    deliveries are due."""
    post_id = str(uuid.uuid4())
    photo_id = str(uuid.uuid4())
    key = f"redacted/{post_id}/{photo_id}.jpg"
    ports.redacted.put(key, image, "image/jpeg")
    event = contracts.PostApproved(
        post_id=post_id,
        school_id=school,
        author_id=f"teacher.{school}",
        approved_by=f"approver.{school}",
        caption=f"Benchmark post {number:05d}: our week in pictures.",
        accounts=accounts_of(school),
        images=[
            contracts.ApprovedImage(
                photo_id=photo_id,
                redacted_key=key,
                sha256=hashlib.sha256(image).hexdigest(),
            )
        ],
    )
    use_cases = bootstrap.handler_map(ports)
    use_cases[contracts.PostApproved](event)
    verified = contracts.PostConsentVerified(
        post_id=post_id,
        school_id=school,
        round=1,
        current=True,
        checked_on=ports.now().date(),
    )
    use_cases[contracts.PostConsentVerified](verified)
    return post_id


# -- workers -------------------------------------------------------------------------


@dataclass
class Workers:
    """Threads calling ``delivery.run_due`` as publishing's workers do; a worker
    killed by the crash hook restarts after the lease."""

    engine: delivery.Engine
    count: int
    stop: threading.Event = field(default_factory=threading.Event)
    kills: int = 0
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for number in range(self.count):
            thread = threading.Thread(target=self._loop, name=f"worker-{number}")
            thread.start()
            self.threads.append(thread)

    def _loop(self) -> None:
        from services.publishing.worker import DELIVERY_SECONDS

        while not self.stop.is_set():
            try:
                worked = delivery.run_due(self.engine)
            except delivery.SimulatedCrashError:
                with self.lock:
                    self.kills += 1
                self.stop.wait(self.engine.policy.lease.total_seconds())
                continue
            if not worked:
                self.stop.wait(DELIVERY_SECONDS)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def engine_of(ports: bootstrap.Ports, boxes: Any, kill: float, seed: int) -> Any:
    """The delivery engine; Instagram fetches images from the Graph sandbox's
    hosted media (standing in for the signed link), and ``kill`` of the successful
    publishes crash their worker before the marker."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def media_url(key: str) -> str:
        name = key.replace("/", "_")
        return str(boxes.graph.host_media(name, ports.redacted.get(key)))

    def crash(_delivery: domain.Delivery) -> None:
        with lock:
            die = rng.random() < kill
        if die:
            raise delivery.SimulatedCrashError("killed between answer and marker")

    engine = bootstrap.delivery_engine(ports)
    return replace(engine, media_url=media_url, crash_after_answer=crash)


def drained(ports: bootstrap.Ports, expected: int) -> list[domain.Delivery] | None:
    rows = ports.deliveries.recent(limit=expected + 100)
    if len(rows) < expected or any(d.status not in domain.FINAL for d in rows):
        if any(d.status == domain.UNCONFIRMED for d in rows):
            return rows  # a person would have to decide: stop here and report it
        return None
    return rows


def wait_drained(
    ports: bootstrap.Ports, expected: int, timeout: float
) -> list[domain.Delivery]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = drained(ports, expected)
        if rows is not None:
            return rows
        time.sleep(0.5)
    rows = ports.deliveries.recent(limit=expected + 100)
    states = Counter(d.status for d in rows)
    raise SystemExit(f"not drained after {timeout:.0f} s: {dict(states)}")


# -- the two runs --------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def latency_run(url: str, posts: int, interval: float, workers: int) -> bool:
    chaos = Chaos(rate=0.0)
    boxes = sandboxes(chaos, school_names(1))
    [school] = boxes.issued
    try:
        ports = publishing_ports(url, boxes, delivery.Policy())
        engine = engine_of(ports, boxes, kill=0.0, seed=1)
        pool = Workers(engine, workers)
        pool.start()
        image = photo()
        approved_at = {}
        try:
            for number in range(posts):
                at = ports.now()
                approved_at[approve(ports, school, number, image)] = at
                time.sleep(interval)
            rows = wait_drained(ports, posts * len(SUFFIXES), timeout=300)
        finally:
            pool.join()
    finally:
        boxes.stop()
    by_platform: dict[str, list[float]] = {p: [] for p in SUFFIXES}
    for row in rows:
        if row.status == domain.LIVE and row.live_at is not None:
            took = (row.live_at - approved_at[row.post_id]).total_seconds()
            by_platform[platform_of(row.account_id)].append(took)
    not_live = sum(1 for r in rows if r.status != domain.LIVE)
    print(
        f"  approval-to-live, {posts} posts, one every {interval:g} s, {workers} "
        f"workers, sandbox latency {LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms "
        "per call:"
    )
    for platform, times in by_platform.items():
        if times:
            print(
                f"    {platform:<10} p50 {pct(times, 50):6.2f} s   "
                f"p95 {pct(times, 95):6.2f} s   ({len(times)} live)"
            )
    if not_live:
        print(f"    NOT LIVE: {not_live}")
    return not_live == 0


@dataclass(frozen=True)
class Storm:
    posts: int
    schools: int  # the posts are shared out among this many schools' accounts
    workers: int
    lease: float
    kills: float
    faults: float


def chaos_run(url: str, storm: Storm) -> bool:
    posts, workers, lease = storm.posts, storm.workers, storm.lease
    chaos = Chaos(rate=0.0)
    boxes = sandboxes(chaos, school_names(storm.schools))
    schools = list(boxes.issued)
    try:
        ports = publishing_ports(url, boxes, chaos_policy(lease))
        engine = engine_of(ports, boxes, kill=storm.kills, seed=2)
        image = photo()
        ids = [
            approve(ports, schools[n % len(schools)], n, image) for n in range(posts)
        ]
        chaos.rate = storm.faults
        started = time.monotonic()
        pool = Workers(engine, workers)
        pool.start()
        try:
            rows = wait_drained(ports, posts * len(SUFFIXES), timeout=3600)
        finally:
            pool.join()
        took = time.monotonic() - started
        copies = live_copies(boxes)
    finally:
        boxes.stop()
    numbers = {post_id: n for n, post_id in enumerate(ids)}
    expected = {(n, p) for n in numbers.values() for p in SUFFIXES}
    duplicates = sum(c - 1 for c in copies.values() if c > 1)
    losses = len(expected - set(copies))
    states = Counter(r.status for r in rows)
    attempts = Counter(r.attempts for r in rows)
    print(
        f"  {posts} posts x 4 accounts ({storm.schools} school(s)), {workers} "
        f"workers, {storm.faults:.0%} of calls failing, {storm.kills:.0%} of "
        f"publishes killing their worker (lease {lease:g} s):"
    )
    print(
        f"    injected: {chaos.injected['server_error']} server errors, "
        f"{chaos.injected['drop_after']} lost answers on creates, "
        f"{pool.kills} worker kills"
    )
    print(f"    deliveries: {dict(states)}; attempts per delivery: {dict(attempts)}")
    print(
        f"    live copies on the sandboxes: {sum(copies.values())} for "
        f"{len(expected)} (post, account) pairs; duplicates {duplicates}, "
        f"losses {losses}"
    )
    if duplicates:
        extra = Counter(p for (_, p), c in copies.items() for _ in range(c - 1))
        print(f"    DUPLICATES by platform: {dict(extra)}")
    if losses:
        lost = Counter(p for _, p in expected - set(copies))
        print(f"    LOSSES by platform: {dict(lost)}")
    failed = Counter(
        (platform_of(r.account_id), r.reason) for r in rows if r.status != domain.LIVE
    )
    if failed:
        print(f"    NOT LIVE by (platform, reason): {dict(failed)}")
    print(f"    time to drain: {took:.1f} s")
    return duplicates == 0 and losses == 0 and states == {domain.LIVE: len(expected)}


def live_copies(boxes: sandboxes_run.Sandboxes) -> Counter[tuple[int, str]]:
    """Live posts per (post number, platform), read from the sandboxes."""
    copies: Counter[tuple[int, str]] = Counter()
    for post in boxes.graph.live():
        copies[(_number(post["text"]), post["platform"])] += 1
    for post in boxes.x.live():
        copies[(_number(post["text"]), "x")] += 1
    for post in boxes.linkedin.live():
        copies[(_number(post["post"]["commentary"]), "linkedin")] += 1
    return copies


def _number(text: str) -> int:
    found = POST_NUMBER.search(text)
    return int(found.group(1)) if found else -1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=20, help="posts in the latency run")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between them")
    p.add_argument("--bulk", type=int, default=500, help="posts in the chaos run")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument(
        "--schools",
        type=int,
        default=1,
        help="share the chaos run's posts among this many schools' accounts",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=20.0,
        help="seconds before a dead worker's delivery is reconciled (chaos run)",
    )
    p.add_argument("--faults", type=float, default=FAULT_RATE, help="call failures")
    p.add_argument("--kills", type=float, default=KILL_RATE, help="worker kills")
    p.add_argument("--postgres", help="also run on this PostgreSQL server (admin URL)")
    p.add_argument("--smoke", action="store_true", help="tiny N: runs in seconds")
    p.add_argument(
        "--runs", default="latency,chaos", help="which runs, comma-separated"
    )
    args = p.parse_args(argv)
    # Figures only: the sandboxes' request lines and the expected warnings (each
    # injected fault is logged by the delivery loop) would drown them.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.smoke:
        args.posts, args.interval, args.bulk, args.workers = 2, 0.1, 6, 4
        args.lease, args.kills = 6.0, 0.1  # make a kill likely even in a tiny run
    ok = True
    for label, server in (("SQLite", None), ("PostgreSQL", args.postgres)):
        if label == "PostgreSQL" and server is None:
            continue
        print(f"== publishing on {label}", flush=True)
        if "latency" in args.runs:
            with database(server) as url:
                ok &= latency_run(url, args.posts, args.interval, args.workers)
        if "chaos" not in args.runs:
            continue
        storm = Storm(
            args.bulk, args.schools, args.workers, args.lease, args.kills, args.faults
        )
        with database(server) as url:
            ok &= chaos_run(url, storm)
    print("OK" if ok else "FAILED: duplicates, losses or deliveries not live")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
