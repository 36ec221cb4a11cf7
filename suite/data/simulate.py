"""Saccade event simulator: a static image seen by a moving DVS becomes an event stream.

This mirrors how N-MNIST and N-Caltech101 were recorded (Orchard et al. 2015): the camera makes
three saccades along a triangle while looking at a still image, and each pixel emits an ON
(OFF) event whenever its log intensity has risen (fallen) by `threshold` since that pixel's
last event. Written here because Tonic has no simulator; it is small and vectorised per step.
"""

from __future__ import annotations

import numpy as np

from suite.data.events import EVENT_DTYPE, make_events

# Defaults, after how N-MNIST was recorded (Orchard et al. 2015):
THRESHOLD = 0.2  # log-intensity change per event, about 20% contrast: the order of a DVS pixel's sensitivity
STEPS_PER_SACCADE = 10  # renderings per saccade leg, so event times resolve a tenth of a saccade
DURATION_US = 300_000  # three saccades of about 100 ms each, as in N-MNIST's recordings
AMPLITUDE_FRACTION = 1 / 8  # saccade amplitude as a fraction of the image side: a few pixels on 16-32 px images
LOG_EPS = 0.1  # log(I + LOG_EPS): black pixels (I = 0) get a finite log intensity
CROSSING_SLACK = 1e-9  # a change of exactly n thresholds is n crossings despite float rounding


def saccade_path(steps_per_saccade: int, amplitude: float) -> np.ndarray:
    """Image offsets (dx, dy) in pixels [3 * steps + 1, 2] along the N-MNIST triangle:
    (0,0) -> (a/2, a) -> (a, 0) -> (0,0), centred so offsets stay within +-a/2."""
    a = float(amplitude)
    vertices = np.array([(0, 0), (a / 2, a), (a, 0), (0, 0)]) - a / 2
    frac = np.arange(steps_per_saccade) / steps_per_saccade
    legs = [vertices[k] + frac[:, None] * (vertices[k + 1] - vertices[k]) for k in range(3)]
    return np.concatenate(legs + [vertices[-1:]])


def shift_image(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The image moved by (dx, dy) pixels (bilinear; the border pixels extend the scene)."""
    h, w = image.shape
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xs - x0)[None, :], (ys - y0)[:, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def simulate_saccades(image: np.ndarray, threshold: float = THRESHOLD, steps_per_saccade: int = STEPS_PER_SACCADE,
                      duration_us: int = DURATION_US, amplitude: float | None = None,
                      noise_rate: float = 0.0, log_eps: float = LOG_EPS, seed: int = 0) -> np.ndarray:
    """Events (EVENT_DTYPE: x, y, t µs, p 1=ON 0=OFF, sorted by t) of `image` [H, W] in [0, 1]
    seen during three saccades lasting `duration_us` in all.

    The image is rendered at 3 * steps_per_saccade + 1 offsets of `saccade_path` (amplitude in
    pixels, default max(H, W) * AMPLITUDE_FRACTION); at each step a pixel whose log(I + log_eps) differs from its
    reference by n >= 1 thresholds emits n events of that sign, timed by linear interpolation
    inside the step, and its reference moves by n thresholds (a DVS pixel). `noise_rate` adds
    uniformly random events (per pixel per second). Same inputs and seed, same events.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
        raise ValueError("simulate_saccades needs a 2-D image with values in [0, 1]")
    h, w = image.shape
    path = saccade_path(steps_per_saccade, max(h, w) * AMPLITUDE_FRACTION if amplitude is None else amplitude)
    times = np.round(np.linspace(0, duration_us, len(path))).astype(np.int64)
    level = np.log(shift_image(image, *path[0]) + log_eps)
    reference = level.copy()
    chunks = []
    for k in range(1, len(path)):
        previous, level = level, np.log(shift_image(image, *path[k]) + log_eps)
        diff = level - reference
        n = np.floor(np.abs(diff) / threshold + CROSSING_SLACK).astype(np.int64)
        pixels = np.flatnonzero(n)
        if pixels.size == 0:
            continue
        counts = n.flat[pixels]
        sign = np.sign(diff.flat[pixels])
        rep = np.repeat(np.arange(pixels.size), counts)
        j = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts) + 1  # 1..n
        crossing = reference.flat[pixels][rep] + sign[rep] * j * threshold
        step = level.flat[pixels][rep] - previous.flat[pixels][rep]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(step != 0, (crossing - previous.flat[pixels][rep]) / step, 1.0)
        t = times[k - 1] + np.clip(frac, 0, 1) * (times[k] - times[k - 1])
        flat = pixels[rep]
        chunks.append(make_events(flat % w, flat // w, np.round(t), (sign[rep] > 0).astype(np.int64)))
        reference.flat[pixels] += sign * counts * threshold
    if noise_rate > 0:
        rng = np.random.default_rng(seed)
        m = rng.poisson(noise_rate * h * w * duration_us * 1e-6)  # noise_rate is per pixel per second
        chunks.append(make_events(rng.integers(0, w, m), rng.integers(0, h, m),
                                  rng.integers(0, duration_us, m), rng.integers(0, 2, m)))
    if not chunks:
        return np.empty(0, dtype=EVENT_DTYPE)
    events = np.concatenate(chunks)
    return events[np.argsort(events["t"], kind="stable")]
