"""The fleet bench's stored rate: each worker's count read between its beats, not at the sampler's time."""

from bench.fleet_bench import stored_between


def test_counts_are_interpolated_between_each_workers_beats() -> None:
    # two workers beating every 2 s at different phases, 1,000 and 500 messages per second
    beat_log = {
        "bench-0": [(100.0, 0), (102.0, 2000), (104.0, 4000), (106.0, 6000)],
        "bench-1": [(101.0, 0), (103.0, 1000), (105.0, 2000), (107.0, 3000)],
    }
    # 101.5 → 104.5: 3 s of each worker's rate, though no beat falls on either end
    assert stored_between(beat_log, 101.5, 104.5) == 3000 + 1500


def test_a_worker_without_a_beat_on_both_sides_gives_no_rate() -> None:
    beat_log = {"bench-0": [(100.0, 0), (102.0, 2000)], "bench-1": [(101.0, 0), (103.0, 1000)]}
    assert stored_between(beat_log, 101.5, 102.5) is None  # bench-0's last beat is before the end
