"""Simulated face tracks: latent expression episodes seen through a noisy per-frame CNN.

No licensed emotion-labelled video is available to us, so the temporal model is trained on
sequences drawn here. Every assumption is a named constant; the model card repeats them.

A track is a sequence of frames at RATE_HZ. Its latent state alternates between neutral rest
and expression episodes with an onset / apex / offset intensity profile. What the model sees
is what our CNN would output: centred logits led by the true class, with transient
misreadings towards the classes FER2013 CNNs confuse, temporally correlated noise, one-frame
blips and missed detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotrack.vocabulary import CIRCUMPLEX, EMOTIONS

RATE_HZ = 5.0  # the pipeline's default analysis rate
NEUTRAL = EMOTIONS.index("neutral")
EXPRESSIVE = [i for i, e in enumerate(EMOTIONS) if e != "neutral"]

# Episode timing. Spontaneous facial expressions last about 0.5 to 4 s (Ekman, "Emotions
# Revealed", 2003); onsets are quicker than offsets (Schmidt et al. 2006, J. Nonverbal Behav.
# 30:37-52, measured smile onsets of about 0.5 s and longer offsets). Assumed: log-normal
# durations with these medians, clipped to the ranges given.
EPISODE_MEDIAN_S, EPISODE_RANGE_S = 2.5, (1.0, 10.0)
REST_MEDIAN_S, REST_RANGE_S = 3.0, (1.0, 15.0)
ONSET_SHARE, OFFSET_SHARE = 0.2, 0.35  # of an episode's duration; the apex holds in between
PEAK_INTENSITY = (0.35, 1.0)
LABEL_THRESHOLD = 0.3  # frames below this intensity are labelled (and look) neutral

# Where the CNN's errors go (rows: true class; columns: reported; EMOTIONS order). Assumed,
# shaped after what is reported for FER2013 CNNs, the mini-Xception included (Arriaga et al.
# 2017: 66% test accuracy): happy and surprise are recognised best; fear, disgust and sad worst;
# sad and neutral absorb many errors. Only the off-diagonal pattern is used: which class a
# misreading goes to. How often the CNN misreads comes from MISREAD_RATE below.
FER2013_CONFUSION = np.array(
    [
        # ang   dis   fear  hap   sad   sur   neu
        [0.58, 0.02, 0.08, 0.03, 0.14, 0.03, 0.12],  # angry
        [0.22, 0.48, 0.08, 0.04, 0.08, 0.03, 0.07],  # disgust
        [0.10, 0.01, 0.45, 0.03, 0.17, 0.12, 0.12],  # fear
        [0.02, 0.00, 0.02, 0.87, 0.02, 0.02, 0.05],  # happy
        [0.08, 0.01, 0.09, 0.03, 0.56, 0.01, 0.22],  # sad
        [0.03, 0.00, 0.09, 0.04, 0.02, 0.77, 0.05],  # surprise
        [0.05, 0.00, 0.04, 0.05, 0.14, 0.02, 0.70],  # neutral
    ]
)
MISREAD_TO = FER2013_CONFUSION * (1 - np.eye(len(EMOTIONS)))
MISREAD_TO = MISREAD_TO / MISREAD_TO.sum(axis=1, keepdims=True)
# Misreadings are transient here: a persistent one (the CNN reading one person's neutral face
# as sad all along) cannot be undone by any model that sees only the CNN's outputs, so it is
# not simulated; the temporal model follows the CNN's sustained reading.
MISREAD_RATE, MISREAD_FRAMES = 0.04, (1, 3)  # per frame; measured: 5 changes in 96 frames

# Observation model, measured on our CNN over the real sample videos (WolfgangLanger_Pexels.mp4,
# 96 face frames; single_face.mp4, 12): centred logits of the classes the CNN does not report
# sit near CLASS_BIAS (disgust far below the rest: FER2013 has few disgust faces) with a
# standard deviation of 0.3 to 2.8; the reported class leads the runner-up by 4.1 on average
# (sd 3.1, down to 0.03); lag-one autocorrelation of the logits is 0.66 to 0.97.
CLASS_BIAS = np.array([1.1, -5.5, -0.5, -1.0, -0.2, -1.0, 1.0])
NOISE_SD, NOISE_RHO = 1.0, 0.8  # AR(1) noise on each centred logit, per frame
# Per-reading shift of each class (face- and pose-specific CNN bias); with NOISE_SD this gives
# the per-class spread measured on the real videos (sd 0.9, 2.8, 1.3, 2.0, 2.0, 1.5, 1.2).
OFFSET_SD = np.array([0.5, 2.6, 0.8, 1.7, 1.7, 1.1, 0.7])
MARGIN = (1.0, 7.0)  # lead of the reported class at full intensity, drawn per reading...
MARGIN_SD = 1.5  # ...plus AR(1) noise; a negative lead lets the runner-up win that frame
BLIP_RATE, BLIP_SIZE = 0.02, 8.0  # one-frame spikes of a random class (pose, blur, speech)
MISS_RATE, MISS_BURST_RATE, MISS_BURST_S = 0.04, 0.01, (0.2, 1.2)  # missed detections


@dataclass(frozen=True)
class Track:
    """One simulated face track of T frames.

    logits: float32 (T, 7) centred CNN logits (zero where missed); present: bool (T,);
    label: int (T,) true class; intensity: float32 (T,) in [0, 1]; va: float32 (T, 2) in [-1, 1].
    """

    logits: np.ndarray
    present: np.ndarray
    label: np.ndarray
    intensity: np.ndarray
    va: np.ndarray


@dataclass(frozen=True)
class Preset:
    seed: int
    train_tracks: int
    test_tracks: int
    track_frames: int
    epochs: int
    batch_size: int = 64
    neutral_keep: float = 0.1  # share of neutral frames kept in the expression loss
    learning_rate: float = 3e-3


PRESETS = {
    "default": Preset(seed=7, train_tracks=3000, test_tracks=500, track_frames=128, epochs=20),
    "tiny": Preset(seed=7, train_tracks=60, test_tracks=20, track_frames=64, epochs=2),
}


def simulate_tracks(count: int, frames: int, seed: int) -> list[Track]:
    """`count` tracks of `frames` frames, the same ones for the same seed."""
    rng = np.random.default_rng(seed)
    return [simulate_track(frames, rng, CIRCUMPLEX) for _ in range(count)]


def simulate_track(frames: int, rng: np.random.Generator, circumplex: np.ndarray) -> Track:
    """A track of `frames` frames; circumplex is (7, 2) valence/arousal per class in [-1, 1]."""
    expression, intensity = _latent(frames, rng)
    label = np.where(intensity >= LABEL_THRESHOLD, expression, NEUTRAL)
    va = (
        circumplex[NEUTRAL] * (1 - intensity)[:, None] + circumplex[expression] * intensity[:, None]
    )
    logits = _observe(label, intensity, rng)
    present = _detected(frames, rng)
    logits[~present] = 0.0
    return Track(
        logits.astype(np.float32),
        present,
        label.astype(np.int64),
        intensity.astype(np.float32),
        va.astype(np.float32),
    )


def _latent(frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame expression class and intensity: neutral rests between episodes."""
    expression = np.full(frames, NEUTRAL)
    intensity = np.zeros(frames)
    t = -int(rng.integers(0, int(REST_MEDIAN_S * RATE_HZ * 2)))  # start mid-rhythm
    resting = bool(rng.random() < 0.5)
    while t < frames:
        if resting:
            t += _duration(REST_MEDIAN_S, REST_RANGE_S, rng)
        else:
            n = _duration(EPISODE_MEDIAN_S, EPISODE_RANGE_S, rng)
            profile = _profile(n, rng.uniform(*PEAK_INTENSITY))
            lo, hi = max(t, 0), min(t + n, frames)
            if hi > lo:
                expression[lo:hi] = rng.choice(EXPRESSIVE)
                intensity[lo:hi] = profile[lo - t : hi - t]
            t += n
        resting = not resting
    return expression, intensity


def _duration(median_s: float, bounds_s: tuple[float, float], rng: np.random.Generator) -> int:
    seconds = np.clip(median_s * np.exp(0.6 * rng.standard_normal()), *bounds_s)
    return max(1, int(round(seconds * RATE_HZ)))


def _profile(n: int, peak: float) -> np.ndarray:
    """Onset (rising), apex (flat), offset (falling) intensity over n frames."""
    x = (np.arange(n) + 0.5) / n
    rise = np.clip(x / ONSET_SHARE, 0, 1)
    fall = np.clip((1 - x) / OFFSET_SHARE, 0, 1)
    return peak * np.minimum(rise, fall)


def _observe(label: np.ndarray, intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Centred logits a CNN would output for frames of true class `label`.

    The reported class is the true one except during transient misreadings; its lead over
    the other classes grows with the expression's intensity.
    """
    frames, classes = len(label), len(EMOTIONS)
    reported = label.copy()
    for first in np.flatnonzero(rng.random(frames) < MISREAD_RATE).tolist():
        last = first + int(rng.integers(MISREAD_FRAMES[0], MISREAD_FRAMES[1] + 1))
        reported[first:last] = rng.choice(classes, p=MISREAD_TO[label[first]])
    lead = np.empty(frames)
    offsets = np.empty((frames, classes))
    for start, stop in _runs(label):  # one reading per stretch of the same true class
        lead[start:stop] = rng.uniform(*MARGIN)
        offsets[start:stop] = OFFSET_SD * rng.standard_normal(classes)
    expressive = label != NEUTRAL
    lead[expressive] *= 0.3 + 0.7 * intensity[expressive]
    logits = CLASS_BIAS + offsets + _ar1(rng, (frames, classes), NOISE_SD)
    lead += _ar1(rng, (frames,), MARGIN_SD)
    rows = np.arange(frames)
    others = logits.copy()
    others[rows, reported] = -np.inf
    logits[rows, reported] = others.max(axis=1) + lead
    blips = rng.random(frames) < BLIP_RATE
    logits[blips, rng.integers(0, classes, blips.sum())] += BLIP_SIZE
    return logits - logits.mean(axis=1, keepdims=True)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each stretch of equal consecutive values."""
    edges = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    """AR(1) noise along the first axis with coefficient NOISE_RHO and marginal sd `sd`."""
    noise = np.empty(shape)
    noise[0] = sd * rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        innovation = np.sqrt(1 - NOISE_RHO**2) * sd * rng.standard_normal(shape[1:])
        noise[t] = NOISE_RHO * noise[t - 1] + innovation
    return noise


def _detected(frames: int, rng: np.random.Generator) -> np.ndarray:
    present = rng.random(frames) >= MISS_RATE
    for start in np.flatnonzero(rng.random(frames) < MISS_BURST_RATE):
        present[start : start + int(rng.uniform(*MISS_BURST_S) * RATE_HZ)] = False
    return present
