"""Fixed-rate timing on the virtual clock: no drift, lateness and overruns measured,
device time that never wraps."""
import time

from fwtest import req
from tgfw.sampler import Sampler


@req("SR-TIM-01")
def test_deadlines_do_not_drift_when_work_takes_time():
    s = Sampler(100000)
    start = time.now_us()
    for _ in range(100):
        s.wait()
        time.advance_us(37000)  # the cycle's own work
    # 100 deadlines after the start, plus the last cycle's work: no accumulated drift
    assert time.now_us() - start == 100 * 100000 + 37000
    assert s.overruns == 0 and s.max_late_us == 0


@req("SR-TIM-01")
def test_lateness_and_overruns_are_counted_and_missed_deadlines_skipped():
    s = Sampler(100000)
    s.wait()
    time.advance_us(130000)  # this cycle ran 30 ms past the next deadline
    s.wait()
    assert s.max_late_us == 30000 and s.overruns == 0
    time.advance_us(250000)  # two and a half periods: deadlines missed
    s.wait()
    assert s.overruns == 1 and s.load == 2
    assert s.max_late_us >= 100000
    time.advance_us(1000)
    s.wait()
    assert s.load == 1  # back on the grid: the load decays



@req("SR-TIM-03")
def test_device_time_counts_past_the_tick_wrap():
    s = Sampler(100000)
    t0 = s.t_s * 1000000 + s.t_us
    # 2**30 us is the tick period of a 32-bit port: run across it twice
    cycles = (2 * 2**30) // 100000 + 10
    for _ in range(cycles):
        s.wait()
    t1 = s.t_s * 1000000 + s.t_us
    assert t1 - t0 == cycles * 100000
    assert 0 <= s.t_us < 1000000
    assert s.ms < 2**30


@req("SR-TIM-01", "SR-GRD-06")
def test_overruns_alternating_with_cycles_on_time_build_up_load():
    s = Sampler(100000)
    s.wait()
    loads = []
    for _ in range(10):
        time.advance_us(150000)  # every cycle takes one and a half periods
        s.wait()
        loads.append(s.load)
    assert s.overruns >= 4
    assert loads[-1] >= 6  # the monitor trips at 2 * max_overruns (3): sustained overload


@req("SR-TIM-03")
def test_millisecond_clock_wraps_within_small_ints():
    s = Sampler(100000)
    s.ms = 0x3FFFFFFF - 50
    for _ in range(3):
        s.wait()
    assert 0 <= s.ms < 300
