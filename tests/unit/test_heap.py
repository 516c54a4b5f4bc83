import gc

import pytest

from persai import heap


def test_settle_freezes_what_lives_once_and_collects_the_young_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "_settled", False)  # as in a new process
    gc.unfreeze()
    before = gc.get_threshold()
    try:
        heap.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        survivor = [object() for _ in range(10)]
        heap.settle()  # the second call does nothing: what came later is not frozen (frozen
        # objects still die by reference counting, so the count may only fall)
        assert gc.get_freeze_count() <= frozen
        assert survivor
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
