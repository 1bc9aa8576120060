"""deploy/kubernetes/ run locally: the Indexed Job's pods and the merge Job as processes.

Part "kubernetes" of test_clients.py (scripts/test-python.sh --only kubernetes). There is no
cluster here, so this runs what the manifests would run:

  1. Both manifests are read and must agree: an Indexed Job whose `completions` equals its
     KBINDEX_SHARDS, and a merge Job naming shards 0 .. N-1 under the same bucket and prefix,
     with the same image and the same credentials Secret.
  2. Each pod's container arguments are expanded as Kubernetes expands them ($(VAR) from the
     container's env, JOB_COMPLETION_INDEX from the pod's completion index), with the corpus
     volume's mount path mapped to a local folder and the cache to a temporary one, and the N
     pods run as N concurrent `kbindex` processes with the pod's environment (not --shard),
     against moto's S3 server on loopback (Tests/Python/s3_server.py) with a bucket named as
     in the manifest.
  3. The merge Job's arguments run the same way, twice (a retried Job: --replace).
  4. The merged index in the bucket answers exactly as a single local build of the corpus.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"

# Several files per shard whatever N is, on distinct topics, with shared words so BM25's
# statistics matter.
TOPICS = {
    "garden/tomatoes.md": "# Tomatoes\n\nTomatoes need full sun, deep watering twice a week and a stake once they flower.\n",
    "garden/compost.md": "# Compost\n\nA compost heap wants green and brown matter in equal parts and turning every week.\n",
    "kitchen/bread.md": "# Sourdough bread\n\nFeed the starter the night before, then knead the dough and let it rise for four hours.\n",
    "kitchen/curry.md": "# Lentil curry\n\nFry onions, garlic and ginger, add red lentils and coconut milk, simmer for twenty minutes.\n",
    "ops/backup.md": "# Backups\n\nThe nightly backup copies the database to the NAS with rsync and keeps thirty days.\n",
    "ops/logs.md": "# Log rotation\n\nLogrotate compresses the service logs every week and reloads the daemon afterwards.\n",
    "ops/tls.md": "# Certificates\n\nCertbot renews the TLS certificates sixty days after issue and restarts the proxy.\n",
    "travel/trains.md": "# Night trains\n\nThe night train to Vienna leaves at eight and has couchettes with six berths.\n",
    "travel/packing.md": "# Packing\n\nPack a rain jacket, two pairs of shoes and a power adapter for every trip.\n",
    "music/guitar.md": "# Guitar\n\nTune the guitar to standard tuning and practise the chord changes slowly every week.\n",
    "music/piano.md": "# Piano\n\nPlay scales with both hands for ten minutes before the pieces, every day of the week.\n",
    "notes/reading.md": "# Reading list\n\nFinish the novel about the lighthouse keeper before starting the history of rivers.\n",
}
QUESTIONS = ["how often should the compost be turned", "when are certificates renewed", "what happens every week"]


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: a defined variable is replaced; $$ is a literal $."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def pod_env(container: dict, completion_index: int | None) -> dict[str, str]:
    """The container's env as Kubernetes resolves it: literal values, and the completion
    index for the downward-API annotation (envFrom Secrets are supplied by the test)."""
    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(str(e["value"]), env)
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == \
                "metadata.annotations['batch.kubernetes.io/job-completion-index']":
            if completion_index is None:
                raise AssertionError(f"{e['name']} reads the completion index outside an Indexed Job")
            env[e["name"]] = str(completion_index)
        else:
            raise AssertionError(f"env {e['name']}: a source this test does not model: {e}")
    if completion_index is not None:
        env.setdefault("JOB_COMPLETION_INDEX", str(completion_index))  # the Job controller sets it too
    return env


class S3Server:
    def __init__(self, python: str) -> None:
        # Its own stdin pipe: the server exits when its stdin closes, and ours may be
        # /dev/null (CI, a tool runner), which would end it at once.
        self.proc = subprocess.Popen([python, str(ROOT / "Tests/Python/s3_server.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = self.proc.stdout.readline().strip()
        creds = json.loads(self.proc.stdout.readline())
        self.endpoint = f"http://127.0.0.1:{int(port)}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": creds["access_key"],
                    "AWS_SECRET_ACCESS_KEY": creds["secret_key"], "AWS_REGION": "us-east-1"}

    def create_bucket(self, name: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/_kbtest/buckets/{name}", method="POST"), timeout=30).read()

    def requests(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.endpoint}/_kbtest/requests", timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def hits(kbindex: str, index: str, question: str, mode: str, env: dict[str, str]) -> list[tuple]:
    """Every hit (k = 200: no group of equal scores is cut off) as groups of equal score, each
    a set of (path, line, text), best first. BM25 gives different chunks of the same length
    and term counts exactly equal scores; ties break by position in the index (walk order in a
    single build, shard order in a merged one), so tied hits are compared as sets."""
    p = subprocess.run([kbindex, "query", question, "--index", index, "--mode", mode, "-k", "200", "--json"],
                       capture_output=True, text=True, timeout=300, env=env)
    if p.returncode == 1 and mode == "lexical":
        return []  # no word of the question is in the index ("weekly" is not "week"): nothing found
    if p.returncode != 0:
        raise AssertionError(f"kbindex query --index {index} failed ({p.returncode}): {p.stderr.strip()[-400:]}")
    groups: list[tuple] = []
    for h in (json.loads(line) for line in p.stdout.splitlines() if line.strip()):
        item = (h["path"], h.get("line_start"), h["text"])
        if groups and groups[-1][0] == h["score"]:
            groups[-1][1].add(item)
        else:
            groups.append((h["score"], {item}))
    return [(score, frozenset(items)) for score, items in groups]


def run(checks, kbindex: str, python: str, root: Path) -> None:
    shard_doc = yaml.safe_load((MANIFESTS / "shard-build-job.yaml").read_text())
    merge_doc = yaml.safe_load((MANIFESTS / "merge-job.yaml").read_text())
    spec = shard_doc["spec"]
    (build,) = containers(shard_doc)
    (merge,) = containers(merge_doc)
    n = int(spec["completions"])
    checks.check("kubernetes: the shard build is an Indexed Job", spec.get("completionMode") == "Indexed", spec.get("completionMode"))
    env0 = pod_env(build, 0)
    checks.check("kubernetes: completions equals KBINDEX_SHARDS", env0.get("KBINDEX_SHARDS") == str(n),
                 f"completions {n}, KBINDEX_SHARDS {env0.get('KBINDEX_SHARDS')}")
    checks.check("kubernetes: both Jobs use the same image and credentials Secret",
                 build["image"] == merge["image"] and build.get("envFrom") == merge.get("envFrom"),
                 (build["image"], merge["image"]))
    checks.check("kubernetes: no credential in the manifests",
                 not any(e["name"].startswith("AWS_") for c in (build, merge) for e in c.get("env", [])))
    menv = pod_env(merge, None)
    margs = [expand(a, menv) for a in merge["args"]]
    shard_indexes = [expand(a, pod_env(build, i)) for i in range(n) for a in build["args"] if a.startswith("s3://")]
    listed = [a for a in margs[2:] if a.startswith("s3://")]
    checks.check("kubernetes: the merge Job lists every shard the Indexed Job writes, in order",
                 margs[0] == "merge" and listed == shard_indexes, (listed, shard_indexes))
    if not (margs[0] == "merge" and listed == shard_indexes):
        return

    corpus = root / "k8s-corpus"
    for name, text in TOPICS.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    mounts = {m["mountPath"]: m["name"] for m in build["volumeMounts"]}
    local_mount = {path: str(corpus if name == "corpus" else root / f"k8s-{name}") for path, name in mounts.items()}

    def localize(arg: str) -> str:
        for path, local in local_mount.items():
            if arg == path or arg.startswith(path + "/"):
                return local + arg[len(path):]
        return arg

    server = S3Server(python)
    try:
        bucket = env0["KBINDEX_BUCKET"]
        server.create_bucket(bucket)
        base = {**os.environ, **server.env}
        base.pop("KBINDEX_SHARDS", None)
        base.pop("JOB_COMPLETION_INDEX", None)

        def pod(i: int) -> subprocess.CompletedProcess:
            env = pod_env(build, i)
            args = [localize(expand(a, env)) for a in build["args"]]
            env = {k: localize(v) for k, v in env.items()}
            env["KBINDEX_CACHE_DIR"] = str(root / f"k8s-cache-{i}")  # one emptyDir per pod
            return subprocess.run([kbindex, *args], capture_output=True, text=True, timeout=900, env={**base, **env}, cwd=str(root))

        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(pod, range(n)))
        for i, p in enumerate(results):
            checks.check(f"kubernetes: pod {i} of the Indexed Job builds its shard", p.returncode == 0,
                         f"status {p.returncode}: {p.stderr.strip()[-600:]}")
        if any(p.returncode != 0 for p in results):
            return

        merge_env = {**base, **{k: localize(v) for k, v in menv.items()}, "KBINDEX_CACHE_DIR": str(root / "k8s-cache-merge")}
        for attempt in ("", " (retried)"):
            p = subprocess.run([kbindex, *[localize(a) for a in margs]], capture_output=True, text=True, timeout=900, env=merge_env, cwd=str(root))
            checks.check(f"kubernetes: the merge Job's command merges the shards{attempt}", p.returncode == 0,
                         f"status {p.returncode}: {p.stderr.strip()[-600:]}")
            if p.returncode != 0:
                return

        # The indexes are in the bucket, not in a local folder named "s3:" (a CLI that took the
        # location for a path would pass every other check).
        puts = {r["path"] for r in server.requests() if r["method"] == "PUT" and not r.get("fault")}
        for location in shard_indexes + [margs[1]]:
            key = "/" + location[len("s3://"):] + "/manifest.json"
            checks.check(f"kubernetes: {location}/manifest.json was written to the store", key in puts,
                         sorted(p for p in puts if p.endswith("manifest.json")))
        checks.check("kubernetes: nothing was written to a local folder named after the location",
                     not any(Path(d, "s3:").exists() for d in (root, Path.cwd())))

        single = root / "k8s-single"
        p = subprocess.run([kbindex, "build", str(corpus), "--index", str(single), "--quiet"], capture_output=True, text=True, timeout=900)
        if not checks.check("kubernetes: a single build of the corpus", p.returncode == 0, p.stderr[-400:]):
            return
        query_env = {**base, "KBINDEX_CACHE_DIR": str(root / "k8s-cache-query")}
        for q in QUESTIONS:
            for mode in ("vector", "lexical", "hybrid"):
                a = hits(kbindex, str(single), q, mode, query_env)
                b = hits(kbindex, margs[1], q, mode, query_env)
                checks.check(f"kubernetes: merged index in S3 answers as one build ({mode}: {q})", a == b and (len(a) > 0 or mode == "lexical"),
                             f"single {a[:3]} merged {b[:3]}")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit("run through test_clients.py --only kubernetes")
