"""dino.train on arrays lets the library free its copies of the full-space rows once the reduced
path has projected them (dino_data_allow_release): the results are those of the full-space
graph."""
from pathlib import Path

import numpy as np

import dino


def test_train_reduced_path_from_arrays(monkeypatch):
    """tests/specs/rb_exact.dino from arrays, in reduced coordinates and in the full-space graph:
    the same losses and test metrics."""
    rb = Path(__file__).resolve().parents[1] / "specs" / "rb_exact.dino"
    g = np.random.default_rng(5)
    x, J = g.uniform(-0.5, 0.5, (96, 12)), g.uniform(-0.5, 0.5, (96, 5, 12))
    y = np.einsum("noi,ni->no", J, x) + np.arange(1, 6)
    runs = []
    for reduced in ("1", "0"):
        monkeypatch.setenv("DINO_REDUCED", reduced)
        notes = []
        h = dino.train(rb, data=(x[:64], y[:64], J[:64]), test=(x[64:], y[64:], J[64:]), backend="cpu",
                       settings={"eval_every": 1}, on_message=lambda level, text: notes.append(text))
        assert any("exact training in reduced coordinates" in n for n in notes) == (reduced == "1"), notes
        runs.append([(m["train_loss"], m["rel_l2"], m["rel_h1"]) for m in h])
        h.model.close()
    assert len(runs[0]) == 3 and np.allclose(runs[0], runs[1], rtol=1e-12, atol=0)
