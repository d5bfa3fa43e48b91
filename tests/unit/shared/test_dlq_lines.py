"""`dlq list` prints each dead letter on one line, whatever its detail holds."""

from shared import dlq


def test_a_multi_line_detail_stays_on_its_line():
    detail = 'Traceback (most recent call last):\n  File "x.py"\nValueError:\tbad'

    assert dlq._one_line(detail) == (
        'Traceback (most recent call last): |   File "x.py" | ValueError: bad'
    )
    assert dlq._one_line(None) == ""


def test_without_a_reachable_broker_it_says_why_and_exits_2(capsys):
    assert dlq.run("list", "intake", "memory://") == 2
    assert dlq.run("replay", "intake", None) == 2
    assert "safepost run" in capsys.readouterr().err
