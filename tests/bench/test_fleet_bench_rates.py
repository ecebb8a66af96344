"""The fleet bench's stored rate: from each worker's own beats, not from the sampler's readings of them."""

from bench.fleet_bench import stored_rate, taken_in_at


def test_each_workers_rate_comes_from_its_beats_inside_the_window() -> None:
    # two workers beating every 2 s at different phases, 1,000 and 500 messages per second; then the
    # reconnect burst, after the window's end
    beat_log = {
        "bench-0": [(100.0, 0), (102.0, 2000), (104.0, 4000), (106.0, 6000), (108.0, 20000)],
        "bench-1": [(101.0, 0), (103.0, 1000), (105.0, 2000), (107.0, 9000)],
    }
    assert stored_rate(beat_log, 101.5, 106.5) == 1000 + 500


def test_a_worker_with_fewer_than_two_beats_inside_gives_no_rate() -> None:
    beat_log = {"bench-0": [(100.0, 0), (102.0, 2000), (104.0, 4000)], "bench-1": [(101.0, 0), (103.0, 1000)]}
    assert stored_rate(beat_log, 101.5, 104.5) is None  # bench-1 beat once inside


def test_taken_in_at_carries_each_worker_on_from_its_last_beat_not_into_the_burst() -> None:
    beat_log = {
        "bench-0": [(100.0, 0), (102.0, 2000), (104.0, 9000)],  # 9,000: the burst, after 103
        "bench-1": [(101.0, 0), (103.0, 1000)],
    }
    assert taken_in_at(beat_log, 103.0) == 2000 + 1000 + 1000  # bench-0: 2,000 + 1 s at 1,000/s
    assert taken_in_at(beat_log, 99.0) == 0  # no beat yet
