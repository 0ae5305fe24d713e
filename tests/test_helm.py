"""The Helm chart in helm/mpisearch, rendered by Helm's own Go SDK (helm-python-sdk).

- the chart lints clean and renders for the defaults and several overrides;
- every rendered MPIJob validates against the MPI Operator's CRD schema
  (kubeflow/mpi-operator v0.8.2, ../shared/schemas/ beside the repository), has
  no field the API server would prune, and passes the operator's own checks;
- values.schema.json (and the templates) reject bad values with a message
  naming the value;
- the launcher's command, taken from the rendered MPIJob, runs a real search
  here under the venv's mpiexec, then resumes from its journal.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed (pip install helm-python-sdk)")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "mpisearch"
WRAPPER = ROOT / "examples" / "mpiexec-ssh"  # what the Dockerfile installs as /usr/local/bin/mpiexec-ssh
# CI clones the repository into a folder with shared/ beside it.
MPIJOB_SCHEMA = ROOT.parent / "shared" / "schemas" / "mpijob-v2beta1.schema.json"
MPIEXEC = Path(sys.executable).parent / "mpiexec"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LONG_NAME = "a-very-long-release-name-for-a-hyperparameter-search"  # 52 chars; Helm allows 53

# Overrides the chart must render, each as one MPIJob.
CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "8 workers": {"workers": 8},
    "slots and threads": {"workers": 3, "slotsPerWorker": 4, "cpusPerSlot": 2, "memoryPerSlotMi": 512},
    "OpenMPI": {"mpiImplementation": "OpenMPI"},
    "Intel": {"mpiImplementation": "Intel"},
    "PVC": {"storage": {"existingClaim": "search-data", "subPath": "team-a", "mountOnWorkers": True},
            "data": {"path": "/work/data/mine.h5", "make": ""}, "output": {"dir": "/work/results/run-1"}},
    "own config, its data path": {"config": "[data]\npath = '/work/d.h5'\nX = 'X'\ny = 'y'\n"},
    "explicit resources": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                         "limits": {"cpu": 1, "memory": "1Gi", "nvidia.com/gpu": 1}}},
    "policies": {"backoffLimit": 0, "activeDeadlineSeconds": 86400, "ttlSecondsAfterFinished": 3600,
                 "sharedMemory": {"enabled": False}, "extraArgs": ["--set", "search.n_iter=5", "--force"],
                 "nodeSelector": {"pool": "cpu"}, "tolerations": [{"key": "batch", "operator": "Exists"}],
                 "env": [{"name": "MPISEARCH_EXTRA", "value": "1"}], "podLabels": {"team": "ml"},
                 "imagePullSecrets": [{"name": "registry"}]},
    "long release name": {"workers": 100},
    "plain ssh": {"ssh": {"wrapper": ""}},
    "slow keepalives": {"ssh": {"wrapper": "/opt/tools/my ssh", "keepaliveSeconds": 30}},
}
RELEASE = {"long release name": LONG_NAME}


@pytest.fixture(scope="module")
def chart() -> Any:
    loaded = helm.Chart.load(CHART)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def mpijob_schema() -> dict[str, Any]:
    if not MPIJOB_SCHEMA.is_file():
        pytest.skip(f"the MPIJob CRD schema is not at {MPIJOB_SCHEMA} (CI puts shared/ beside the repository)")
    return json.loads(MPIJOB_SCHEMA.read_text())


def render(chart: Any, values: dict[str, Any] | None = None, name: str = "search",
           namespace: str = "default") -> dict[str, Any]:
    """Render; returns {'MPIJob': ..., 'ConfigMap': ..., 'NOTES': text}."""
    out = chart.render(values or {}, name=name, namespace=namespace)
    docs: dict[str, Any] = {}
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            docs["NOTES"] = text
        elif text.strip():
            doc = helm.values_from_yaml(text)
            assert doc["kind"] not in docs, f"two {doc['kind']} objects"
            docs[doc["kind"]] = doc
    assert set(docs) == {"MPIJob", "ConfigMap", "NOTES"}, sorted(docs)
    return docs


def replica(mpijob: dict[str, Any], role: str) -> dict[str, Any]:
    return mpijob["spec"]["mpiReplicaSpecs"][role]


def container(mpijob: dict[str, Any], role: str) -> dict[str, Any]:
    return replica(mpijob, role)["template"]["spec"]["containers"][0]


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def pruned_fields(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields a structural CRD schema does not know: the API server drops them silently."""
    found: list[str] = []
    if isinstance(instance, dict) and "properties" in schema and "additionalProperties" not in schema:
        for key, value in instance.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += pruned_fields(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(instance, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in instance.items():
            found += pruned_fields(value, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            found += pruned_fields(value, schema["items"], f"{path}[{i}]")
    return found


def operator_errors(mpijob: dict[str, Any]) -> list[str]:
    """The checks of the operator's pkg/apis/kubeflow/validation (v0.8.2) on a created MPIJob."""
    spec, errors = mpijob["spec"], []
    workers = replica(mpijob, "Worker").get("replicas") or 1
    for pod in (f"{mpijob['metadata']['name']}-worker-{workers - 1}", f"{mpijob['metadata']['name']}-launcher"):
        if len(pod) > 63 or not DNS_1035.match(pod):
            errors.append(f"pod name {pod!r} is not a DNS-1035 label")
    if not isinstance(spec.get("slotsPerWorker"), int) or spec["slotsPerWorker"] < 1:
        errors.append("slotsPerWorker must be set")
    if spec.get("runPolicy", {}).get("cleanPodPolicy") not in ("None", "Running", "All"):
        errors.append("runPolicy.cleanPodPolicy must be set")
    if not spec.get("sshAuthMountPath"):
        errors.append("sshAuthMountPath must be set")
    if spec.get("mpiImplementation") not in ("OpenMPI", "Intel", "MPICH"):
        errors.append("bad mpiImplementation")
    for role in ("Launcher", "Worker"):
        rs = replica(mpijob, role)
        if rs.get("restartPolicy") not in ("Never", "OnFailure"):
            errors.append(f"{role}.restartPolicy must be Never or OnFailure")
        if not rs["template"]["spec"].get("containers"):
            errors.append(f"{role} has no container")
    if replica(mpijob, "Launcher").get("replicas") != 1:
        errors.append("Launcher.replicas must be 1")
    if not isinstance(replica(mpijob, "Worker").get("replicas"), int) or replica(mpijob, "Worker")["replicas"] < 1:
        errors.append("Worker.replicas must be at least 1")
    return errors


# --- lint and render ---------------------------------------------------------------------------


def test_lint_is_clean() -> None:
    for values in ({}, CASES["PVC"], CASES["OpenMPI"]):
        report = helm.lint(CHART, values)
        assert report["errors"] == [], report
        # severity: 1 info (e.g. "icon is recommended"), 2 warning, 3 error
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("case", list(CASES))
def test_renders_a_valid_mpijob(chart: Any, mpijob_schema: dict[str, Any], case: str) -> None:
    values = CASES[case]
    docs = render(chart, values, name=RELEASE.get(case, "search"))
    job = docs["MPIJob"]
    jsonschema.validate(job, mpijob_schema)
    assert pruned_fields(job, mpijob_schema) == []
    assert operator_errors(job) == []

    assert job["apiVersion"] == "kubeflow.org/v2beta1"
    spec = job["spec"]
    workers = values.get("workers", 2)
    slots = values.get("slotsPerWorker", 2)
    threads = str(values.get("cpusPerSlot", 1))
    implementation = values.get("mpiImplementation", "MPICH")
    assert spec["mpiImplementation"] == implementation
    assert spec["slotsPerWorker"] == slots
    assert replica(job, "Worker")["replicas"] == workers
    assert spec["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert spec["runLauncherAsWorker"] is True
    assert spec["runPolicy"]["cleanPodPolicy"] == "Running"
    assert spec["runPolicy"]["backoffLimit"] == values.get("backoffLimit", 3)
    assert spec["sshAuthMountPath"] == "/home/mpiuser/.ssh"

    worker = container(job, "Worker")
    assert worker["command"][0] == "/usr/sbin/sshd"
    assert worker["readinessProbe"]["tcpSocket"]["port"] == 2222
    launcher = container(job, "Launcher")
    for c in (launcher, worker):
        env = env_of(c)
        assert [env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")] == [threads] * 3
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["securityContext"]["runAsUser"] == 1000
    if "resources" not in values:
        cpus = slots * int(threads)
        assert worker["resources"]["limits"]["cpu"] == str(cpus) == launcher["resources"]["requests"]["cpu"]

    # The launcher command: every rank of the hostfile, passed explicitly, threads forwarded.
    script = launcher["command"][2]
    assert launcher["command"][:2] == ["/bin/sh", "-c"]
    assert env_of(launcher)["MPI_HOSTFILE"] == "/etc/mpi/hostfile"
    ranks = (workers + 1) * slots
    if implementation == "OpenMPI":
        assert f'exec mpirun --hostfile "$hostfile" -n {ranks} ' in script
        assert f"-x OMP_NUM_THREADS={threads}" in script
    else:
        assert f'exec mpiexec "$@" -f "$hostfile" -n {ranks} ' in script
        assert f"-genv OMP_NUM_THREADS {threads}" in script
        # mpiexec reaches the workers through the ssh wrapper that ends the job when a host is lost
        ssh = {"wrapper": "/usr/local/bin/mpiexec-ssh", "keepaliveSeconds": 5, **values.get("ssh", {})}
        if ssh["wrapper"]:
            assert f"set -- -launcher ssh -launcher-exec '{ssh['wrapper']}'" in script
            assert f"export MPIEXEC_SSH_ALIVE={ssh['keepaliveSeconds']}" in script
        else:
            assert "-launcher-exec" not in script and "MPIEXEC_SSH_ALIVE" not in script
    assert 'if [ -f "$out/journal.jsonl" ]; then' in script and "$resume" in script

    # The volume with data and results: on the launcher (rank 0), on workers only when asked.
    storage = values.get("storage", {})
    volumes = {v["name"]: v for v in replica(job, "Launcher")["template"]["spec"]["volumes"]}
    if storage.get("existingClaim"):
        assert volumes["work"]["persistentVolumeClaim"]["claimName"] == storage["existingClaim"]
    else:
        assert "emptyDir" in volumes["work"]
    assert volumes["search-config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    mounts = {m["name"]: m for m in launcher["volumeMounts"]}
    assert mounts["work"]["mountPath"] == "/work" and mounts["search-config"]["mountPath"] == "/etc/mpisearch"
    worker_mounts = {m["name"] for m in worker.get("volumeMounts", [])}
    assert ("work" in worker_mounts) == bool(storage.get("mountOnWorkers"))

    # Standard labels on every object.
    for obj in (job, docs["ConfigMap"]):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "mpisearch"
        assert labels["app.kubernetes.io/instance"] == RELEASE.get(case, "search")
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "mpisearch-0.1.0"

    notes = docs["NOTES"]
    name = job["metadata"]["name"]
    assert f"kubectl logs -n default -f job/{name}-launcher" in notes
    assert f"training.kubeflow.org/job-name={name},training.kubeflow.org/job-role=launcher" in notes
    assert "kubectl cp" in notes


def test_config_comes_from_set_file(chart: Any, tmp_path: Path) -> None:
    search = tmp_path / "search.toml"
    search.write_text((ROOT / "examples" / "digits_svc.toml").read_text())
    values = helm.parse_set_file(f"config={search}")  # what `--set-file config=search.toml` gives Helm
    docs = render(chart, values, name="digits")
    assert docs["ConfigMap"]["data"]["search.toml"] == search.read_text()
    assert docs["ConfigMap"]["metadata"]["name"] == "digits-mpisearch-search"
    assert docs["MPIJob"]["metadata"]["name"] == "digits-mpisearch"


def test_demo_only_without_a_config(chart: Any) -> None:
    """The demo's data (init container, data.path) never applies to a config the user gives."""
    demo = render(chart, {})
    assert "[space]" in demo["ConfigMap"]["data"]["search.toml"]
    launcher_pod = replica(demo["MPIJob"], "Launcher")["template"]["spec"]
    assert "mpisearch data make digits" in launcher_pod["initContainers"][0]["command"][2]
    assert env_of(launcher_pod["containers"][0])["MPISEARCH_DATA"] == "/work/data/digits.h5"
    assert "Demo: no config was given" in demo["NOTES"]

    own = render(chart, {"config": (ROOT / "examples" / "digits_svc.toml").read_text()})
    launcher_pod = replica(own["MPIJob"], "Launcher")["template"]["spec"]
    assert "initContainers" not in launcher_pod
    assert "MPISEARCH_DATA" not in env_of(launcher_pod["containers"][0])
    assert "data.path" not in launcher_pod["containers"][0]["command"][2]
    assert "Demo" not in own["NOTES"]

    on_pvc = render(chart, {"config": "[data]\n", "data": {"path": "/work/mine.h5"}})
    launcher_pod = replica(on_pvc["MPIJob"], "Launcher")["template"]["spec"]
    assert "initContainers" not in launcher_pod
    assert env_of(launcher_pod["containers"][0])["MPISEARCH_DATA"] == "/work/mine.h5"
    assert '--set "data.path=$MPISEARCH_DATA"' in launcher_pod["containers"][0]["command"][2]


@pytest.mark.parametrize("workers", [1, 10, 11, 100, 1000, 9999])
def test_pod_names_stay_dns_labels(chart: Any, workers: int) -> None:
    for name, override in ((LONG_NAME + "x", {}), ("s", {"fullnameOverride": "f" * 53})):
        job = render(chart, {"workers": workers, **override}, name=name)["MPIJob"]
        fullname = job["metadata"]["name"]
        for pod in (f"{fullname}-worker-{workers - 1}", f"{fullname}-launcher"):
            assert len(pod) <= 63 and DNS_1035.match(pod), pod
    assert render(chart, {}, name="short")["MPIJob"]["metadata"]["name"] == "short-mpisearch"
    assert render(chart, {}, name="mpisearch-digits")["MPIJob"]["metadata"]["name"] == "mpisearch-digits"


# --- bad values ------------------------------------------------------------------------------------

BAD_VALUES = [
    ({"workers": 0}, "search", r"/workers': minimum: got 0, want 1"),
    ({"workers": 1.5}, "search", r"/workers': got number, want integer"),
    ({"slotsPerWorker": 0}, "search", r"/slotsPerWorker': minimum"),
    ({"cpusPerSlot": 0}, "search", r"/cpusPerSlot': minimum"),
    ({"fullnameOverride": "My_Search"}, "search", r"/fullnameOverride': 'My_Search' does not match pattern"),
    ({"nameOverride": "-x"}, "search", r"/nameOverride'"),
    ({}, "1st-search", r'MPIJob name "1st-search-mpisearch" .* is not a DNS-1035 label'),
    ({}, "My_Search", r'MPIJob name "My_Search-mpisearch" .* is not a DNS-1035 label'),
    ({"image": {"repository": ""}}, "search", r"/image/repository': minLength: got 0, want 1"),
    ({"image": {"repository": None}}, "search", r"/image': missing property 'repository'"),
    ({"image": {"repository": "mpisearch:0.1.0"}}, "search", r"/image/repository': 'mpisearch:0.1.0' does not match"),
    ({"mpiImplementation": "MVAPICH"}, "search",
     r"/mpiImplementation': value must be one of 'MPICH', 'OpenMPI', 'Intel'"),
    ({"config": ""}, "search", r"/config': minLength"),
    ({"config": " \n"}, "search", r"/config'"),
    ({"worker": 4}, "search", r"additional properties 'worker' not allowed"),
    ({"storage": {"existingClaim": "Bad_Claim"}}, "search", r"/storage/existingClaim'"),
    ({"storage": {"mountPath": "work"}}, "search", r"/storage/mountPath'"),
    ({"data": {"path": "relative/data.h5"}}, "search", r"/data/path'"),
    ({"data": {"make": "mnist"}}, "search", r"/data/make'"),
    ({"config": "[data]\n", "data": {"make": "digits"}}, "search", r"data.make needs data.path"),
    ({"config": "[data\npath = 1\n"}, "search", r"config is not valid TOML: toml: line 2"),
    ({"backoffLimit": -1}, "search", r"/backoffLimit': minimum"),
    ({"ssh": {"wrapper": "mpiexec-ssh"}}, "search", r"/ssh/wrapper': 'mpiexec-ssh' does not match pattern"),
    ({"ssh": {"keepaliveSeconds": 0}}, "search", r"/ssh/keepaliveSeconds': minimum"),
    ({"securityContext": {"privileged": True}}, "search", r"/securityContext/privileged'"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "search", r"/securityContext/allowPrivilegeEscalation'"),
    ({"securityContext": {"runAsNonRoot": False, "runAsUser": 0}}, "search", r"/securityContext/runAs"),
    ({"securityContext": {"capabilities": {"drop": []}}}, "search", r"/securityContext/capabilities/drop'"),
    ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "search", r"/securityContext/capabilities/add"),
    ({"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}, "search",
     r"/podSecurityContext/seccompProfile/type'"),
]


@pytest.mark.parametrize(("values", "name", "message"), BAD_VALUES,
                         ids=[f"{n}:{json.dumps(v)}" for v, n, _ in BAD_VALUES])
def test_bad_values_are_rejected(chart: Any, values: dict[str, Any], name: str, message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        chart.render(values, name=name, namespace="default")


# --- Pod Security "restricted" --------------------------------------------------------------------

# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks Pod Security "restricted" (Kubernetes' Pod Security Standards),
    plus what this chart promises beyond it: a read-only root filesystem, no service-account token."""
    found = [f"host namespace {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    found += [f"volume {v['name']}: type {sorted(set(v) - {'name'})}" for v in pod.get("volumes", [])
              if not set(v) - {"name"} <= RESTRICTED_VOLUMES]
    if pod.get("automountServiceAccountToken") is not False:
        found.append("the service-account token is mounted")
    pod_ctx = pod.get("securityContext", {})
    for c in pod.get("initContainers", []) + pod["containers"]:
        ctx, name = c.get("securityContext", {}), c["name"]
        found += [f"{name}: {problem}" for problem, bad in [
            ("privileged", ctx.get("privileged") is True),
            ("allowPrivilegeEscalation is not false", ctx.get("allowPrivilegeEscalation") is not False),
            ("capabilities.drop lacks ALL", "ALL" not in ctx.get("capabilities", {}).get("drop", [])),
            ("adds capabilities", set(ctx.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}),
            ("may run as root", not ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
             or ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0),
            ("no RuntimeDefault/Localhost seccomp", ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
             .get("type") not in ("RuntimeDefault", "Localhost")),
            ("writable root filesystem", ctx.get("readOnlyRootFilesystem") is not True),
        ] if bad]
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_pods_meet_pod_security_restricted(chart: Any, case: str) -> None:
    job = render(chart, CASES[case], name=RELEASE.get(case, "search"))["MPIJob"]
    for role in ("Launcher", "Worker"):
        pod = replica(job, role)["template"]["spec"]
        assert restricted_violations(pod) == [], role
        for c in pod.get("initContainers", []) + pod["containers"]:  # what Python, MPICH and sshd write
            assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, c["name"]


def test_the_restricted_check_sees_a_privileged_pod(chart: Any) -> None:
    pod = replica(render(chart)["MPIJob"], "Worker")["template"]["spec"]
    pod["containers"][0]["securityContext"] = {"privileged": True}
    pod["hostNetwork"] = True
    pod.pop("automountServiceAccountToken")
    assert restricted_violations(pod) == [  # runAsNonRoot and seccomp still come from the pod's context
        "host namespace hostNetwork", "the service-account token is mounted", "worker: privileged",
        "worker: allowPrivilegeEscalation is not false", "worker: capabilities.drop lacks ALL",
        "worker: writable root filesystem"]


# --- the launcher command, run here ----------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """This process's environment minus anything an MPI launcher set."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PMI", "PMIX", "HYDRA_", "HYDI_", "OMPI_", "MPI_", "I_MPI_"))}


def _run_script(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=100)


@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec beside {sys.executable} (pip install mpich)")
def test_launcher_command_runs_the_search(chart: Any, tmp_path: Path) -> None:
    """The rendered launcher command, with local paths, completes a search and then resumes it."""
    values = {"workers": 1, "slotsPerWorker": 1, "extraArgs": ["--set", "cv.folds=3", "-q"],
              "ssh": {"wrapper": str(WRAPPER)}}  # the image's copy; mpiexec forks (no ssh) for localhost
    docs = render(chart, values, name="local")
    job = docs["MPIJob"]
    pod = replica(job, "Launcher")["template"]["spec"]
    # The paths the pod would have, mapped into tmp_path (the mounts: /etc/mpi, /etc/mpisearch, /work).
    config = tmp_path / "etc-mpisearch" / "search.toml"
    config.parent.mkdir()
    config.write_text(docs["ConfigMap"]["data"]["search.toml"])
    hostfile = tmp_path / "etc-mpi" / "hostfile"
    hostfile.parent.mkdir()
    ranks = (1 + 1) * 1
    hostfile.write_text(f"localhost:{ranks}\n")  # the operator's MPICH form, all ranks on this machine

    def local(path: str) -> str:
        assert path.startswith("/work/"), path
        return str(tmp_path / "work" / path.removeprefix("/work/"))

    env = _clean_env()
    env["PATH"] = f"{MPIEXEC.parent}{os.pathsep}{env.get('PATH', '')}"  # the venv's mpiexec and mpisearch

    # 1. The demo's init container makes the data.
    init = pod["initContainers"][0]
    init_env = {**env, **env_of(init)}
    init_env["MPISEARCH_DATA"] = local(init_env["MPISEARCH_DATA"])
    made = _run_script(init["command"][2], init_env, tmp_path)
    assert made.returncode == 0, made.stderr
    assert Path(init_env["MPISEARCH_DATA"]).is_file()

    # 2. The launcher's command, exactly as rendered, with the pod's environment and local paths.
    launcher = container(job, "Launcher")
    assert launcher["command"][:2] == ["/bin/sh", "-c"]
    script = launcher["command"][2]
    assert f'-n {ranks} ' in script
    run_env = {**env, **env_of(launcher)}
    run_env.update(MPI_HOSTFILE=str(hostfile), MPISEARCH_CONFIG=str(config),
                   MPISEARCH_OUT=local(run_env["MPISEARCH_OUT"]), MPISEARCH_DATA=local(run_env["MPISEARCH_DATA"]),
                   SSHD_CONFIG="")  # no sshd here: the hostfile names localhost
    out = Path(run_env["MPISEARCH_OUT"])
    first = _run_script(script, run_env, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "warning" not in first.stderr  # the wrapper was found and mpiexec took -launcher-exec
    assert "resuming" not in first.stdout  # no journal yet: no --resume
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["ranks"] == ranks
    with open(out / "cv_results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and "split2_test_accuracy" in rows[0] and "split3_test_accuracy" not in rows[0]
    assert (out / "best.json").is_file() and (out / "journal.jsonl").is_file()

    # 3. A restarted launcher (backoffLimit) finds the journal and resumes instead of starting over.
    again = _run_script(script, run_env, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming from {out}/journal.jsonl" in again.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["resumed_tasks"] == 16 * 3


# --- the image (no container engine here: what can be checked without building it) --------------------------


def test_every_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    """.dockerignore is an allow-list: a COPY of anything it leaves out fails only at build time."""
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    copies = [line.split()[1:-1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    sources = [s for args in copies for s in args if not s.startswith("--")]
    assert "examples/mpiexec-ssh" in sources and "mpisearch" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(source == a or source.startswith(a + "/") for a in allowed), f"{source} not in .dockerignore"
