"""The temporal model's training on simulated tracks (emotrack train-temporal)."""

import json
import subprocess
import sys

import numpy as np

from emotrack.training.simulate import simulate_tracks


def test_training_is_reproducible_with_the_same_seed() -> None:
    # Two fresh processes, as two runs of `emotrack train-temporal` would be.
    program = (
        "import json; from emotrack.training.evaluate_temporal import evaluate_simulated; "
        "from models.temporal_gru import TemporalConfig; "
        "from emotrack.training.simulate import PRESETS, simulate_tracks; "
        "from emotrack.training.train_temporal import train; "
        "preset, cfg = PRESETS['tiny'], TemporalConfig(version='temporal-gru-tiny'); "
        "model, facts = train(preset, cfg); "
        "m = evaluate_simulated(model, cfg, simulate_tracks(10, preset.track_frames, seed=99)); "
        "print(json.dumps([facts['final_loss'], m['model']['accuracy'], "
        "m['model']['ccc_valence']]))"
    )
    # side by side (one core each): results must not depend on what else the machine runs
    processes = [
        subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    runs = []
    for process in processes:
        out, _ = process.communicate()
        assert process.returncode == 0
        runs.append(json.loads(out.strip().splitlines()[-1]))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)
    assert simulate_tracks(3, 64, seed=1)[2].logits.tolist() == (
        simulate_tracks(3, 64, seed=1)[2].logits.tolist()
    )
