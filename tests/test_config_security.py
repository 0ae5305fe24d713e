"""A config names estimator classes; it runs no other code unless it says estimator.factory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mpisearch import config
from mpisearch.data.make import make_file
from mpisearch.errors import InputError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write(tmp_path: Path, estimator: str, space: str = "C = [1.0]") -> Path:
    data = tmp_path / "iris.h5"
    if not data.exists():
        make_file("iris", data)
    path = tmp_path / "search.toml"
    path.write_text(f'[data]\npath = "{data}"\n[estimator]\n{estimator}\n[space]\n{space}\n')
    return path


@pytest.mark.parametrize("name", ["os.system", "subprocess.Popen", "subprocess.run"])
def test_a_callable_that_is_not_an_estimator_class_is_refused_unrun(tmp_path, name):
    marker = tmp_path / "ran"
    key = "args" if name != "os.system" else "command"
    cfg = write(tmp_path, f'class = "{name}"\nparams = {{ {key} = "touch {marker}" }}')
    with pytest.raises(InputError, match=f"estimator.class: '{name}' is not a scikit-learn estimator class"):
        config.load(cfg)
    with pytest.raises(InputError, match="not a scikit-learn estimator class"):  # the same through --set
        config.load(write(tmp_path, 'class = "sklearn.svm.SVC"'), [f"estimator.class={name}",
                                                                     f'estimator.params.{key}="touch {marker}"'])
    assert not marker.exists()


def test_cli_refuses_os_system_with_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    cfg = write(tmp_path, f'class = "os.system"\nparams = {{ command = "touch {marker}" }}')
    done = subprocess.run([sys.executable, "-m", "mpisearch", "run", str(cfg), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("mpisearch: error: ") and len(done.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_a_pipeline_is_written_in_the_config_with_each_step_checked(tmp_path):
    cfg = write(tmp_path, 'class = "sklearn.pipeline.Pipeline"\nparams.steps = [\n'
                          '  ["scale", { class = "sklearn.preprocessing.StandardScaler" }],\n'
                          '  ["svc", { class = "sklearn.svm.SVC", params = { kernel = "linear" } }],\n]',
                space="svc__C = [0.1, 1.0]")
    est = config.load(cfg).spec.estimator
    assert isinstance(est, Pipeline) and [name for name, _ in est.steps] == ["scale", "svc"]
    assert isinstance(est.steps[0][1], StandardScaler) and isinstance(est.steps[1][1], SVC)
    assert est.get_params()["svc__kernel"] == "linear"
    marker = tmp_path / "ran"
    bad = write(tmp_path, 'class = "sklearn.pipeline.Pipeline"\nparams.steps = [\n'
                          f'  ["x", {{ class = "os.system", params = {{ command = "touch {marker}" }} }}],\n]')
    with pytest.raises(InputError, match=r"estimator.params.steps\[0\]\[1\].class: 'os.system' is not"):
        config.load(bad)
    assert not marker.exists()


def test_a_factory_runs_only_when_named_and_may_live_beside_the_config(tmp_path):
    (tmp_path / "my_models.py").write_text(
        "from sklearn.svm import SVC\n\ndef make(C=1.0):\n    return SVC(C=C, kernel='linear')\n")
    cfg = write(tmp_path, 'factory = "my_models:make"\nparams = { C = 2.0 }')
    est = config.load(cfg).spec.estimator
    assert isinstance(est, SVC) and est.C == 2.0 and est.kernel == "linear"
    with pytest.raises(InputError, match="estimator: give class or factory, not both"):
        config.load(write(tmp_path, 'class = "sklearn.svm.SVC"\nfactory = "my_models:make"'))
    with pytest.raises(InputError, match="estimator.factory: expected \"module:function\""):
        config.load(write(tmp_path, 'factory = "my_models.make"'))


def test_the_examples_still_load():
    for path in EXAMPLES.glob("*.toml"):
        assert hasattr(config.load(path).spec.estimator, "fit")


def test_the_test_estimators_are_estimator_classes():
    import estimators
    from sklearn.base import BaseEstimator

    classes = [v for v in vars(estimators).values() if isinstance(v, type) and v.__module__ == "estimators"]
    assert classes and all(issubclass(c, BaseEstimator) for c in classes)
