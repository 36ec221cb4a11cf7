"""Saccade simulator and the simulated event twins of static datasets."""

from __future__ import annotations

import numpy as np
import pytest

from suite.data import DataSpec, load_dataset
from suite.data.events import EVENT_DTYPE
from suite.data.frames import FrameConfig, events_to_frames
from suite.data.simulate import saccade_path, simulate_saccades
from suite.data.static import digits_arrays
from suite.errors import SuiteError


def edge_image(side: int = 16, column: int = 8) -> np.ndarray:
    """Dark left half, bright right half: a vertical edge between column-1 and column."""
    image = np.zeros((side, side))
    image[:, column:] = 1.0
    return image


def test_events_use_tonics_nmnist_dtype():
    events = simulate_saccades(edge_image())
    assert events.dtype == EVENT_DTYPE and events.dtype.names == ("x", "y", "t", "p")
    assert np.all(np.diff(events["t"]) >= 0) and set(np.unique(events["p"])) == {0, 1}


def test_still_image_gives_no_events():
    assert len(simulate_saccades(np.random.default_rng(0).random((16, 16)), amplitude=0)) == 0


def test_uniform_image_gives_no_events_while_moving():
    assert len(simulate_saccades(np.full((16, 16), 0.6))) == 0


def test_moving_edge_gives_off_then_on_events_at_the_edge():
    duration = 300_000
    events = simulate_saccades(edge_image(), duration_us=duration)  # amplitude 2 px
    first_two = events[events["t"] < 2 * duration // 3]  # image moves right: dark invades the edge
    last = events[events["t"] > 2 * duration // 3]       # image moves back left: bright returns
    assert len(first_two) and len(last)
    assert np.all(first_two["p"] == 0) and np.all(last["p"] == 1)
    assert set(np.unique(events["x"])) <= {7, 8}
    assert set(np.unique(events["y"])) == set(range(16))  # the whole edge fires


def test_saccade_path_is_a_closed_triangle():
    path = saccade_path(4, amplitude=2.0)
    assert path.shape == (13, 2)
    assert np.allclose(path[0], path[-1]) and np.allclose(path[0], (-1, -1))
    assert np.allclose(path[4], (0, 1)) and np.allclose(path[8], (1, -1))


def test_simulation_is_deterministic_given_seed():
    image = np.random.default_rng(0).random((12, 12))
    a = simulate_saccades(image, noise_rate=5.0, seed=3)
    b = simulate_saccades(image, noise_rate=5.0, seed=3)
    c = simulate_saccades(image, noise_rate=5.0, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_noise_rate_adds_expected_number_of_events():
    events = simulate_saccades(np.full((20, 20), 0.5), noise_rate=10.0, duration_us=1_000_000, seed=0)
    assert abs(len(events) - 4000) < 4 * np.sqrt(4000)


def test_bad_image_is_rejected():
    with pytest.raises(ValueError):
        simulate_saccades(np.full((4, 4), 2.0))


def test_digits_dvs_sample_is_the_simulation_of_the_digits_sample(tmp_path):
    events_ds = load_dataset(DataSpec("digits-dvs", seed=1), tmp_path, "test")
    static_x, static_y = digits_arrays(16, 1)["test"]
    assert len(events_ds) == len(static_x)
    i = 7
    assert events_ds.source_index(i) == i
    x, y = events_ds[i]
    expected = simulate_saccades(static_x[i, 0].numpy())
    assert np.array_equal(x.numpy(), events_to_frames(expected, (16, 16), FrameConfig(8, 16)))
    assert y == int(static_y[i]) and x.shape == (8, 2, 16, 16)


def test_simulated_cifar_needs_the_static_files(tmp_path):
    with pytest.raises(SuiteError, match=r"cifar10-dvs is missing data_batch_1.*cifar-10-batches-py"):
        load_dataset(DataSpec("cifar10-dvs"), tmp_path)
