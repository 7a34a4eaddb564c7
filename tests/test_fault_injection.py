"""Fault injection (issue 16): a CartPole run killed with SIGKILL at five points in a row (while
compiling, during a block, on two Ctrl-Cs, while a checkpoint is written, after the last checkpoint),
each time resumed, ends with the files of an uninterrupted run, byte for byte.

``benchmarks/fault_injection.py`` runs the same with 50 kill points."""

from benchmarks import fault_injection


def test_a_run_killed_at_five_points_resumes_to_the_uninterrupted_files(tmp_path):
    exact, hit, problems = fault_injection.campaign(5, 5, seed=0, work=str(tmp_path), verbose=False)
    assert problems == []
    assert exact == 5
    assert hit >= 4  # the kill points were reached (timing may let one run end first)
