"""The audit report on real numbers: Wikipedia embeddings, real coverage, a real simulation.

The PNG summary is decoded and checked for size and content; the HTML is checked for being
self-contained, and rendered by headless Chromium when it is installed (Debian's `chromium`).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors.coverage import coverage_report
from detectors.results import Estimate
from service.report.figures import DECISION_COLOURS, project_2d
from service.report.model import ForecastSeries, Projection, ReportData
from service.report.render import SUMMARY_DPI, SUMMARY_SIZE, render_html, write_png
from simulations.loop import run_generations
from simulations.models.gaussian import GaussianModel
from simulations.results import summarise
from tests.splits import reference_and_dense_core

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _share_near(pixels: np.ndarray, colour: str, tol: int = 12) -> float:
    """Fraction of pixels within `tol` (per channel) of a colour."""
    return float((np.abs(pixels[..., :3].astype(int) - _hex_rgb(colour)) <= tol).all(-1).mean())


@pytest.fixture(scope="module")
def report_data(wiki_vectors) -> ReportData:
    """A narrowed candidate (the dense core of unseen paragraphs) against a Wikipedia reference."""
    reference, _, candidate = reference_and_dense_core(
        wiki_vectors,
        np.random.default_rng(0),
        reference_size=2000,
        pool_size=1000,
        core_size=400,
        holdout_fraction=0.25,
    )
    cov = coverage_report(reference, candidate, n_bootstrap=50, random_state=0)
    metrics = [
        (n.replace("_", " "), getattr(cov, n))
        for n in ("tail_coverage", "coverage", "precision", "recall", "density")
    ]
    ref_xy, cand_xy = project_2d(reference.vectors_, candidate)
    # Covered = some candidate inside the reference point's k-NN ball (the metric's definition).
    gaps = np.sqrt(np.clip(2 - 2 * reference.vectors_ @ candidate.T, 0, None))  # unit vectors
    tail_covered = (gaps < reference.radii_[:, None]).any(axis=1)

    def forecast(policy: str, beta: float) -> ForecastSeries:
        run = run_generations(
            GaussianModel(n_chains=200), generations=8, samples=50, policy=policy, beta=beta
        )
        traj = summarise(run.metrics["variance"], metric="variance", description="variance")
        return ForecastSeries(label=f"{policy} beta={beta}", trajectory=traj)

    return ReportData(
        title="Audit of wiki-core",
        created="2026-11-25T02:00:00+00:00",
        decision="top-up",
        reasons=[
            f"tail coverage ratio {cov.tail_coverage.ratio:.2f} "
            f"[{cov.tail_coverage.low:.2f}, {cov.tail_coverage.high:.2f}] is below the 0.8 limit",
            "a top-up of 300 fresh human documents brings the forecast back within the policy",
        ],
        top_up_documents=300,
        reference_name="wiki",
        reference_size=len(reference),
        candidate_name="wiki-core.jsonl",
        candidate_size=len(candidate),
        sample_size=cov.sample_size,
        model="all-MiniLM-L6-v2",
        synthetic_fraction=Estimate(point=0.2, low=0.1, high=0.32, level=0.9, method="test input"),
        synthetic_fraction_limit=0.5,
        metrics=metrics,
        modes=cov.modes,
        projection=Projection(
            reference_xy=ref_xy,
            candidate_xy=cand_xy,
            tail_mask=reference.tail_mask_,
            tail_covered=tail_covered,
        ),
        forecast=[forecast("replace", 0.0), forecast("keep-real", 0.3)],
        forecast_limit=0.5,
    )


def test_png_summary_is_a_real_image_of_the_stated_size(tmp_path, report_data):
    path = write_png(report_data, tmp_path / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (SUMMARY_SIZE[1] * SUMMARY_DPI, SUMMARY_SIZE[0] * SUMMARY_DPI, 3)
    non_white = (image < 245).any(-1).mean()
    assert 0.05 < non_white < 0.9, f"{non_white:.1%} of pixels drawn: blank or solid image"
    # The verdict headline is drawn in its decision's colour; no other decision colour is used.
    assert _share_near(image, DECISION_COLOURS["top-up"]) > 1e-4
    assert _share_near(image, DECISION_COLOURS["keep"]) == 0


def test_html_is_self_contained_and_shows_verdict_modes_and_figures(report_data):
    html = render_html(report_data)
    assert 'id="verdict"' in html and "Verdict: top-up" in html
    assert "Add 300 fresh human documents." in html
    assert html.index("Verdict: top-up") < html.index("Synthetic fraction")  # verdict on top
    for reason in report_data.reasons:
        assert reason in html
    # No network: no external src/href, every image an embedded PNG that decodes.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4  # fraction, coverage, projection, forecast
    for b64 in images:
        assert base64.b64decode(b64)[:4] == b"\x89PNG"
    # Every mode has a row; missing ones carry the highlighted class, and come first.
    modes_table = html.split('<table id="modes">')[1].split("</table>")[0]
    rows = re.findall(r'<tr class="(missing|under|over|ok)">', modes_table)
    assert len(rows) == len(report_data.modes)
    n_missing = sum(m.status == "missing" for m in report_data.modes)
    assert rows.count("missing") == n_missing and rows[:n_missing] == ["missing"] * n_missing
    # The narrowed candidate lost tail coverage: its row is highlighted as under the baseline.
    tail = report_data.metrics[0][1]
    assert tail.high < 1
    assert report_data.projection is not None and report_data.projection.tail_covered is not None
    tail_mask = report_data.projection.tail_mask
    assert report_data.projection.tail_covered[tail_mask].mean() == pytest.approx(tail.value)
    assert '<tr class="under"><td class="text">tail coverage</td>' in html


def test_inconclusive_verdict_has_its_own_colour_and_reasons(tmp_path):
    """An inconclusive audit (numbers given, no embeddings): the banner carries its own colour,
    distinct from the other decisions', and the reasons; the PNG headline is drawn in it."""
    from detectors.results import MetricComparison, ModeRow

    colour = DECISION_COLOURS["inconclusive"]
    others = [DECISION_COLOURS[d] for d in ("keep", "top-up", "reject")]
    assert all(np.abs(_hex_rgb(colour) - _hex_rgb(c)).max() > 40 for c in others)
    metric = MetricComparison(
        value=0.4,
        value_low=0.3,
        value_high=0.5,
        baseline=0.5,
        ratio=0.8,
        low=0.6,
        high=1.0,
        level=0.9,
    )
    reason = (
        "62% of the candidate lies outside the reference's domain (90% interval 55%-70%; "
        "limit 50%): the reference does not represent this corpus"
    )
    data = ReportData(
        title="Audit of recipes",
        created="2026-11-25T02:00:00+00:00",
        decision="inconclusive",
        reasons=[reason],
        reference_name="news",
        reference_size=800,
        candidate_name="recipes.jsonl",
        candidate_size=200,
        sample_size=200,
        model="all-MiniLM-L6-v2",
        synthetic_fraction=Estimate(point=0.1, low=0.05, high=0.2, level=0.9, method="test"),
        synthetic_fraction_limit=0.3,
        metrics=[(name, metric) for name in ("tail coverage", "coverage", "precision")],
        modes=[
            ModeRow(
                mode=0,
                reference_mass=0.5,
                candidate_mass=0.1,
                candidate_low=0.05,
                candidate_high=0.15,
                baseline_mass=0.5,
                status="under",
            )
        ],
    )
    html = render_html(data)
    assert '<div class="verdict inconclusive" id="verdict">' in html
    assert "Verdict: inconclusive" in html and reason.replace("'", "&#39;") in html
    assert f".inconclusive {{ background: {colour}; }}" in html
    image = np.asarray(Image.open(write_png(data, tmp_path / "inconclusive.png")).convert("RGB"))
    assert _share_near(image, colour) > 1e-4
    assert _share_near(image, DECISION_COLOURS["keep"]) == 0
    assert _share_near(image, DECISION_COLOURS["top-up"]) == 0


def test_html_escapes_text_from_the_corpus(report_data):
    hostile = report_data.model_copy(update={"reasons": ["<script>alert(1)</script> & more"]})
    html = render_html(hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_report_without_optional_parts_still_renders(tmp_path, report_data):
    bare = report_data.model_copy(
        update={"projection": None, "forecast": [], "synthetic_fraction": None}
    )
    html = render_html(bare)
    assert "No embeddings were kept" in html and "No forecast trajectories" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 1  # coverage only
    image = np.asarray(Image.open(write_png(bare, tmp_path / "bare.png")).convert("RGB"))
    assert (image < 245).any(-1).mean() > 0.02


def test_headless_chromium_renders_the_html(tmp_path, report_data):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium): no screenshot")
    page = tmp_path / "report.html"
    page.write_text(render_html(report_data), encoding="utf-8")
    shot = screenshot(page, tmp_path / "report.png")
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (2000, 1200, 3)
    assert (image < 245).any(-1).mean() > 0.05  # text and figures were drawn
    # The verdict banner's background colour fills a visible block near the top of the page.
    assert _share_near(image[:400], DECISION_COLOURS["top-up"], tol=4) > 0.02


def screenshot(page: Path, out: Path, *, width: int = 1200, height: int = 2000) -> Path:
    """Headless Chromium screenshot of a local HTML file (no network, throw-away profile)."""
    assert CHROMIUM is not None
    profile = out.parent / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={width},{height}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-2000:]
    return out
