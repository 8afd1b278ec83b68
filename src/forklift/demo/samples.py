"""The demo's sample model: a scikit-learn-style nearest-centroid classifier in plain Python.

One program serves both halves of SageMaker's container contract: `entry.py train` reads the
`training` channel and writes /opt/ml/model/model.json; `entry.py serve` answers GET /ping and
POST /invocations (CSV or JSON rows) on port 8080.

It is also a framework image in the SDK's script mode, doing what the SageMaker training and inference
toolkits do: a job whose hyperparameters name `sagemaker_program` runs that script from
`sagemaker_submit_directory` (forklift has staged it into /opt/ml/code) with the other hyperparameters
as `--name value` arguments and the toolkit's `SM_*` environment; an endpoint whose environment names
`SAGEMAKER_PROGRAM` answers through that script's `model_fn`, `input_fn`, `predict_fn` and `output_fn`.
"""

from __future__ import annotations

import random
from pathlib import Path

ENTRY_POINT = '''\
import csv, glob, importlib.util, json, math, os, runpy, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ML = "/opt/ml"


class NearestCentroid:
    """fit/predict like scikit-learn's NearestCentroid."""

    def fit(self, rows, labels):
        sums = {}
        for row, label in zip(rows, labels):
            total, count = sums.setdefault(label, ([0.0] * len(row), [0]))
            for i, value in enumerate(row):
                total[i] += value
            count[0] += 1
        self.centroids_ = {label: [v / count[0] for v in total] for label, (total, count) in sums.items()}
        return self

    def predict(self, rows):
        return [min(self.centroids_, key=lambda label: math.dist(row, self.centroids_[label])) for row in rows]


def _decoded(value):
    # The SDK's framework estimators JSON-encode every hyperparameter value ("\"train.py\"").
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def run_user_script(hyperparameters):
    """The training toolkit's part: the user's entry point, from the code forklift staged."""
    decoded = {name: _decoded(value) for name, value in hyperparameters.items()}
    code = decoded.get("sagemaker_submit_directory") or f"{ML}/code"
    if not os.path.isdir(code):
        sys.exit(f"sagemaker_submit_directory {code!r} is not a directory: this image reads the code forklift stages")
    user = {name: value for name, value in decoded.items() if not name.startswith("sagemaker_")}
    channels = sorted(os.listdir(f"{ML}/input/data")) if os.path.isdir(f"{ML}/input/data") else []
    os.environ.update({"SM_MODEL_DIR": f"{ML}/model", "SM_OUTPUT_DATA_DIR": f"{ML}/output/data",
                       "SM_CHANNELS": json.dumps(channels), "SM_HPS": json.dumps(user),
                       "SM_MODULE_DIR": code, "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": json.dumps(["algo-1"])})
    for channel in channels:
        os.environ[f"SM_CHANNEL_{channel.upper()}"] = f"{ML}/input/data/{channel}"
    for name, value in user.items():
        os.environ[f"SM_HP_{name.upper()}"] = str(value)
    os.makedirs(f"{ML}/output/data", exist_ok=True)
    sys.path.insert(0, code)
    os.chdir(code)
    sys.argv = [decoded["sagemaker_program"]] + [item for name, value in user.items()
                                                  for item in (f"--{name}", str(value))]
    runpy.run_path(os.path.join(code, decoded["sagemaker_program"]), run_name="__main__")


def train():
    with open(f"{ML}/input/config/hyperparameters.json") as f:
        hyperparameters = json.load(f)
    if "sagemaker_program" in hyperparameters:
        return run_user_script(hyperparameters)
    rows, labels = [], []
    for path in sorted(glob.glob(f"{ML}/input/data/training/*.csv")):
        with open(path) as f:
            for record in csv.reader(f):
                labels.append(record[0])
                rows.append([float(v) for v in record[1:]])
    print(f"training on {len(rows)} rows, hyperparameters {hyperparameters}", flush=True)
    model = NearestCentroid().fit(rows, labels)
    accuracy = sum(p == t for p, t in zip(model.predict(rows), labels)) / len(rows)
    print(f"train accuracy: {accuracy:.3f}", flush=True)
    with open(f"{ML}/model/model.json", "w") as f:
        json.dump({"centroids": model.centroids_, "accuracy": accuracy}, f)


class BuiltIn:
    """The classifier's own handlers, for an endpoint without a user script."""

    @staticmethod
    def model_fn(model_dir):
        with open(f"{model_dir}/model.json") as f:
            model = NearestCentroid()
            model.centroids_ = json.load(f)["centroids"]
        return model

    @staticmethod
    def input_fn(body, content_type):
        if content_type.startswith("application/json"):
            return json.loads(body)
        return [[float(v) for v in line.split(",")] for line in body.splitlines() if line.strip()]

    @staticmethod
    def predict_fn(rows, model):
        return model.predict(rows)

    @staticmethod
    def output_fn(prediction, accept):
        return json.dumps({"predictions": prediction})


def handlers():
    """The inference toolkit's part: the user's script's handlers where it defines them, else the built-in ones."""
    program = os.environ.get("SAGEMAKER_PROGRAM")
    if not program:
        return BuiltIn
    code = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY") or f"{ML}/code"
    if not os.path.isdir(code):
        sys.exit(f"SAGEMAKER_SUBMIT_DIRECTORY {code!r} is not a directory: this image reads the code forklift stages")
    sys.path.insert(0, code)
    spec = importlib.util.spec_from_file_location("user_module", os.path.join(code, program))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class User:
        pass

    for name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
        setattr(User, name, staticmethod(getattr(module, name, getattr(BuiltIn, name))))
    return User


def serve():
    chosen = handlers()
    model = chosen.model_fn(f"{ML}/model")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status, body, content_type="application/json"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._reply(200 if self.path == "/ping" else 404, "{}")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.path != "/invocations":
                return self._reply(404, "{}")
            try:
                data = chosen.input_fn(body, self.headers.get("Content-Type") or "text/csv")
                answer = chosen.output_fn(chosen.predict_fn(data, model), self.headers.get("Accept") or "")
                self._reply(200, answer if isinstance(answer, str) else json.dumps(answer))
            except (ValueError, TypeError, KeyError) as exc:
                self._reply(400, json.dumps({"error": str(exc)}))

        def log_message(self, *args):
            pass

    print("serving on port 8080", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()


if __name__ == "__main__":
    # As PID 1 in its container this process would ignore SIGTERM without a handler, and every
    # stop would wait out the grace period before SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    {"train": train, "serve": serve}[sys.argv[1] if len(sys.argv) > 1 else "train"]()
'''


def write_program(directory: Path) -> Path:
    """The image's code layer: /opt/program/entry.py."""
    program = directory / "opt" / "program"
    program.mkdir(parents=True, exist_ok=True)
    (program / "entry.py").write_text(ENTRY_POINT)
    return directory


def build_sample_image(store, work: Path, tag: str):
    """The sample image (this machine's Python and the program above) in `store` as `tag`."""
    # Imported here: `forklift samples data` needs only the training data above, not the image builder.
    from forklift.demo.rootfs import build_python_rootfs
    from forklift.images.build import BuildOptions, build

    base = build_python_rootfs(work / "python-rootfs")
    code = write_program(work / "program")
    return build(store, [base, code], tag=tag, options=BuildOptions(
        entrypoint=["python3", "/opt/program/entry.py"], env=["PYTHONUNBUFFERED=1"], workdir="/opt/ml"))


def training_csv(rows: int = 200, seed: int = 7) -> str:
    """Two well-separated clusters: label, x, y."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        label, center = ("setosa", (1.0, 1.0)) if i % 2 else ("virginica", (4.0, 3.0))
        lines.append(f"{label},{rng.gauss(center[0], 0.5):.3f},{rng.gauss(center[1], 0.5):.3f}")
    return "\n".join(lines) + "\n"
