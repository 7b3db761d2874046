"""analyse_bucket's pace: at most --per-second messages a second, on a fake clock."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from photos.management.commands.analyse_bucket import Pacer


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_batches_are_spaced_to_the_rate():
    clock = FakeClock()
    pacer = Pacer(20, clock=clock, sleep=clock.sleep)

    for _ in range(10):  # 100 messages, 10 a batch, sent instantly
        pacer.take(10)

    assert clock.slept == [pytest.approx(0.5)] * 9  # the first batch goes at once
    assert clock.now == pytest.approx(4.5)  # 100 messages at 20/s: the last batch leaves at 4.5 s


def test_time_spent_elsewhere_counts_towards_the_pace():
    clock = FakeClock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    pacer.take(10)
    clock.now += 3  # listing and DynamoDB lookups took longer than the batch's second

    pacer.take(10)

    assert clock.slept == []


def test_a_pace_of_nothing_is_refused(settings):
    settings.PHOTOS_PIPELINE, settings.PHOTOS_STORAGE = "aws", "s3"
    with pytest.raises(CommandError, match="--per-second must be above 0"):
        call_command("analyse_bucket", per_second=0)
