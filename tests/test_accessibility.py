"""E2SFCA: hand-computed scores, supply accounting, classification, and agreement with the `access` package."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from geo import settings
from geo.errors import InputError
from geo.traveltime import TravelMatrix
from planning.accessibility import AccessibilityModel, agency_supply, gaussian_decay, stepped_decay


def test_stepped_decay_is_luo_and_qi_zones():
    t = np.array([0, 5, 10, 10.01, 20, 25, 30, 30.01, np.inf])
    assert stepped_decay(t).tolist() == [1, 1, 1, 0.68, 0.68, 0.22, 0.22, 0, 0]
    assert stepped_decay(np.array([15.0, 29.0, 31.0, 46.0]), catchment_min=45).tolist() == [1, 0.68, 0.22, 0]
    g = gaussian_decay(np.array([0, 10, 30, 31]))
    assert g.tolist() == pytest.approx([1, np.exp(-0.5), np.exp(-4.5), 0])


def test_supply_from_capacity_or_caregivers():
    agencies = pd.DataFrame({"agency_id": ["a", "b", "c"], "capacity": [40, None, 0],
                             "certified_caregivers": [3, 5, 2]})
    assert agency_supply(agencies).tolist() == [40, 5 * settings.clients_per_caregiver, 2 * settings.clients_per_caregiver]
    with pytest.raises(InputError, match="1 of 2 agencies have no usable supply"):
        agency_supply(pd.DataFrame({"agency_id": ["a", "b"], "capacity": [10, None]}))


def _small():
    units = pd.DataFrame({"unit_id": ["u1", "u2", "u3"], "demand": [10.0, 20.0, 5.0]})
    agencies = pd.DataFrame({"agency_id": ["A", "B", "C"], "status": ["designated", "planned", "suspended"],
                             "care_type": ["home", "institution", "home"], "capacity": [30, 10, 100]})
    minutes = np.array([[5.0, 15.0, 25.0],
                        [35.0, 8.0, 12.0],
                        [1.0, 1.0, 1.0]])
    return TravelMatrix(minutes, agencies["agency_id"], units["unit_id"]), units, agencies


def test_scores_match_a_hand_calculation():
    matrix, units, agencies = _small()
    model = AccessibilityModel(matrix, units, agencies).solve()
    # A: weights 1, 0.68, 0.22 → weighted demand 10 + 13.6 + 1.1 = 24.7; B: 0, 1, 0.68 → 20 + 3.4 = 23.4
    ra, rb = 30 / 24.7, 10 / 23.4
    assert model.weighted_demand[:2].tolist() == pytest.approx([24.7, 23.4])
    assert model.agency_ratio.tolist() == pytest.approx([ra, rb, 0.0])  # C is suspended
    assert model.scores.tolist() == pytest.approx([ra, 0.68 * ra + rb, 0.22 * ra + 0.68 * rb])
    assert model.regional_ratio == pytest.approx(40 / 35)
    # every active place is handed out once: Σ D·A = Σ S
    assert float(units["demand"] @ model.scores) == pytest.approx(40.0)
    # u2 gets 0.68·1.215 + 0.427 = 1.253 ≥ 40/35 = 1.143; u3 only 0.558
    assert model.classes.tolist() == ["well_served", "well_served", "under_served"]
    scores = model.unit_scores()
    assert scores["relative_access"].tolist() == pytest.approx((model.scores / (40 / 35)).tolist())


def test_toggling_supply_and_care_type_filter():
    matrix, units, agencies = _small()
    with_c = AccessibilityModel(matrix, units, agencies, active_agency_ids=["A", "B", "C"]).solve()
    assert with_c.regional_ratio == pytest.approx(140 / 35)
    home = AccessibilityModel(matrix, units, agencies, care_types=["institution"]).solve()
    assert home.active.tolist() == [False, True, False]
    assert home.classes[0] == "no_access"
    assert "1 units have no active agency within 30 minutes" in home.message


def test_no_active_supply_is_said_plainly():
    matrix, units, agencies = _small()
    model = AccessibilityModel(matrix, units, agencies, active_agency_ids=[]).solve()
    assert (model.scores == 0).all()
    assert set(model.classes) == {"no_access"}
    assert model.message.startswith("No active agency")


def test_idle_agency_is_reported_not_divided_by_zero():
    matrix, units, agencies = _small()
    far = TravelMatrix(np.vstack([matrix.minutes[:2], np.full((1, 3), 90.0)]), matrix.agency_ids, matrix.unit_ids)
    model = AccessibilityModel(far, units, agencies, active_agency_ids=["A", "B", "C"]).solve()
    assert model.agency_ratio[2] == 0.0 and np.isfinite(model.scores).all()
    assert "1 active agencies have no demand within 30 minutes (100 places unused): C." in model.message


def test_bad_input_lists_every_problem():
    matrix, units, agencies = _small()
    with pytest.raises(InputError) as err:
        AccessibilityModel(matrix, units.assign(demand=[1, -2, "x"]), agencies, decay="cubic", catchment_min=0)
    text = str(err.value)
    assert "decay must be" in text and "catchment must be a positive" in text
    with pytest.raises(InputError) as err:
        AccessibilityModel(matrix, units.assign(demand=[1, -2, "x"]), agencies)
    assert [p.row for p in err.value.problems] == [2, 3]


def _random_case(seed: int, n_units: int = 300, n_agencies: int = 15):
    rng = np.random.default_rng(seed)
    minutes = rng.uniform(0, 55, size=(n_agencies, n_units)).round(1)
    minutes[rng.random(minutes.shape) < 0.05] = np.inf
    minutes[:, 0] = np.inf  # one unit nobody reaches
    minutes[:, 1] = 10.0  # exactly on a zone boundary
    units = pd.DataFrame({"unit_id": [f"{330281000000 + i}" for i in range(n_units)],
                          "demand": rng.uniform(0.5, 30, n_units).round(2)})
    agencies = pd.DataFrame({"agency_id": [f"AG{j:03d}" for j in range(n_agencies)], "status": "designated",
                             "care_type": "home", "capacity": rng.integers(5, 80, n_agencies)})
    return TravelMatrix(minutes, agencies["agency_id"], units["unit_id"]), units, agencies


def _access_scores(matrix, units, agencies, *, weight_fn=None, max_cost=30.0, method="e2sfca"):
    from access import Access

    ai, ui = np.nonzero(np.isfinite(matrix.minutes))
    cost = pd.DataFrame({"origin": matrix.unit_ids[ui], "dest": matrix.agency_ids[ai],
                         "cost": matrix.minutes[ai, ui].astype(float)})
    supply = pd.DataFrame({"agency_id": agencies["agency_id"], "supply": agencies["capacity"].astype(float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acc = Access(demand_df=units, demand_index="unit_id", demand_value="demand",
                     supply_df=supply, supply_index="agency_id", supply_value="supply",
                     cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="cost")
        if method == "e2sfca":
            out = acc.enhanced_two_stage_fca(name="e2sfca", max_cost=max_cost)
            col = "e2sfca_supply"
        else:
            out = acc.two_stage_fca(name="g", max_cost=max_cost, weight_fn=weight_fn)
            col = "g_supply"
    return out[col].reindex(units["unit_id"]).fillna(0.0).to_numpy()


@pytest.mark.parametrize("seed", [1, 2])
def test_stepped_scores_equal_the_access_package(seed):
    matrix, units, agencies = _random_case(seed)
    ours = AccessibilityModel(matrix, units, agencies, decay="stepped", catchment_min=30).solve().scores
    theirs = _access_scores(matrix, units, agencies)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert ours[0] == 0 and (ours > 0).sum() > 250


def test_gaussian_scores_equal_the_access_package():
    from access import weights

    matrix, units, agencies = _random_case(3)
    ours = AccessibilityModel(matrix, units, agencies, decay="gaussian", catchment_min=45).solve().scores
    theirs = _access_scores(matrix, units, agencies, weight_fn=weights.gaussian(15.0), max_cost=45.0, method="2sfca")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_custom_decay_function():
    matrix, units, agencies = _random_case(4, n_units=50, n_agencies=5)
    linear = AccessibilityModel(matrix, units, agencies, decay=lambda t: 1 - t / 30.0).solve()
    flat = AccessibilityModel(matrix, units, agencies, decay=lambda t: np.ones_like(t)).solve()
    assert not np.allclose(linear.scores, flat.scores)
    # with a flat weight E2SFCA is the original 2SFCA; Σ D·A still hands out every active place once
    used = flat.weighted_demand > 0
    assert float(units["demand"] @ flat.scores) == pytest.approx(agencies["capacity"][used].sum())
