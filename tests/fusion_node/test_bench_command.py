"""`fusion bench` without --json: a line per result, timings and other measurements alike."""

from __future__ import annotations

from fusion_node.commands.bench import result_lines


def test_timings_and_measurements_each_get_a_line() -> None:
    results = {
        "score_eval_pjlab": {"median_ms": 0.48, "runs": 10, "baseline": "cv2", "baseline_median_ms": 0.54},
        "observability_pjlab": {"parallax_px": 2.9, "azimuth_step_px": 7.3},
        "refine_pjlab": {"median_ms": 4300.0, "runs": 10, "success": 0},
    }
    lines = result_lines(results)
    assert len(lines) == 3
    assert lines[0].startswith("score_eval_pjlab")
    assert "median    0.480 ms over 10 runs" in lines[0]
    assert "baseline (cv2) 0.540 ms, speedup 1.1x" in lines[0]
    assert lines[1] == 'observability_pjlab      {"parallax_px": 2.9, "azimuth_step_px": 7.3}'
    assert "median 4300.000 ms over 10 runs" in lines[2]
    assert "baseline" not in lines[2]
