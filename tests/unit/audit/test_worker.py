import threading

from services.audit.worker import SPEC
from shared import bus
from shared.config import Settings
from tests.support.wait import wait_for
from tests.unit.audit.builders import faces_detected, post_submitted, unknown_type
from tests.unit.audit.fakes import fake_ports


def test_the_audit_worker_records_every_type_from_the_bus(tmp_path):
    settings = Settings.from_env(
        "audit", {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": "x"}
    )
    ports = fake_ports()
    worker = SPEC.build_worker(settings, ports)
    assert worker is not None
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    publisher = bus.KombuPublisher(settings.amqp_url)
    try:
        assert worker.ready.wait(5)
        sent = [post_submitted(), faces_detected(), unknown_type()]

        publisher.publish(sent)

        wait_for(lambda: len(list(ports.log.chain())) == 3)
        assert [r.message_id for r in ports.log.chain()] == [e.id for e in sent]
        assert worker.dead_lettered == 0
    finally:
        publisher.close()
        worker.should_stop = True
        thread.join(5)
