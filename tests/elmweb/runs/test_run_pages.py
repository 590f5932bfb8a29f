"""What the run and compare pages say about their maps, and what their scripts follow live."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from elmweb.runs import selectors
from tests.elmweb.conftest import make_run

pytestmark = pytest.mark.django_db


def html(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_the_mass_bins_are_the_equal_slices_of_the_mass_range(user) -> None:
    run = make_run(user, dims=[4, 4, 3], ranges=[[0, 30], [0, 30], [0, 120]])

    bins = selectors.run_mass_bins(run)

    assert [(b["index"], b["low"], b["high"]) for b in bins] == [(0, 0, 40), (1, 40, 80), (2, 80, 120)]


def test_the_mass_selector_names_each_bin_by_its_masses_and_says_what_mass_is(ada: Client, user) -> None:
    run = make_run(user, dims=[4, 4, 3], ranges=[[0, 30], [0, 30], [0, 120]])

    page = html(ada.get(f"/runs/{run.pk}/"))

    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page)
    assert options == [
        ("max", "every mass (fittest per cell)"),
        ("0", "bin 0: mass 0–40"),
        ("1", "bin 1: mass 40–80"),
        ("2", "bin 2: mass 80–120"),
    ]
    assert 'aria-describedby="map-help"' in page
    assert "Mass is the archive's third dimension" in page
    assert "height bins up" in page  # row 0 is drawn at the bottom


def test_the_configuration_shows_a_dash_for_settings_left_empty(ada: Client, user) -> None:
    run = make_run(user)

    page = html(ada.get(f"/runs/{run.pk}/"))

    assert "<dt>api_url</dt><dd>–</dd>" in page
    assert "<dt>rng_seed</dt><dd>0</dd>" in page  # a zero is a value, not an empty setting


def test_the_compare_page_gives_each_run_a_live_legend_and_map_to_update(ada: Client, user) -> None:
    first, second = make_run(user), make_run(user)

    page = html(ada.get(f"/compare/?runs={first.pk},{second.pk}"))

    for run in (first, second):
        assert re.search(rf'<li data-series="\d" data-run-id="{run.pk}">.*?class="status-badge"', page)
        assert f'<canvas class="compare-map" data-run-id="{run.pk}" data-filled="0"' in page
    assert "frontend/pages/compare.js" in page
