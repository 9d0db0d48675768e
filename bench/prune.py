"""Bench: ``amibake prune`` over 1,000 AMIs on a moto server (issue #15 part 3).

Seeds one region with 1,000 AMIs of 10 builds (100 each), 20 running instances on some of them, a
launch template with 5 versions and 10 SSM parameters, then times ``amibake prune --keep 5`` as a user
runs it (a subprocess, bytecode cached): the dry run, then ``--yes``, then a second ``--yes`` that finds
nothing to do. Reports per run the wall time, amibake's own count of API calls (the ``prune,summary``
row) and the calls moto served (its request recorder). Usage: ``.venv/bin/python bench/prune.py``.
Results: bench/PRUNE.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stackkit import MotoServer  # noqa: E402

REGION = "us-east-1"
BUILDS = 10
PER_BUILD = 100
KEEP = 5


def moto_calls(moto: MotoServer) -> int:
    try:
        lines = moto.recording.read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.strip() and "/moto-api/" not in json.loads(line).get("url", ""))


def main() -> int:
    import boto3

    work = Path(tempfile.mkdtemp(prefix="amibake-prune-bench-"))
    moto = MotoServer(work / "moto")
    moto.start()
    try:
        env = {**os.environ, "AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
               "AWS_CONFIG_FILE": os.devnull, "AMIBAKE_STATE_DIR": str(work / "state"),
               "AMIBAKE_NO_SERVER": "1", "NO_PROXY": "127.0.0.1,localhost"}
        kw = dict(endpoint_url=moto.url, region_name=REGION, aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        ec2 = boto3.client("ec2", **kw)
        ssm = boto3.client("ssm", **kw)
        t0 = time.monotonic()
        amis: list[str] = []
        for b in range(BUILDS):
            made = [ec2.register_image(Name=f"bench-b{b}-{i:03d}")["ImageId"] for i in range(PER_BUILD)]
            ec2.create_tags(Resources=made, Tags=[{"Key": "amibake:build", "Value": f"b{b}"}])
            amis += made
        for i in range(20):
            ec2.run_instances(ImageId=amis[i * 37], MinCount=1, MaxCount=1, InstanceType="t2.micro")
        lt = ec2.create_launch_template(LaunchTemplateName="bench", LaunchTemplateData={"ImageId": amis[1]})
        for i in range(4):
            ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplate"]["LaunchTemplateId"],
                                               LaunchTemplateData={"ImageId": amis[100 + i]})
        for i in range(10):
            ssm.put_parameter(Name=f"/bench/p{i}", Value=amis[200 + i], Type="String")
        print(f"seeded {len(amis)} AMIs in {time.monotonic() - t0:.1f} s", flush=True)
        rows = []
        for label, extra in (("dry run", []), ("--yes", ["--yes"]), ("second --yes", ["--yes"])):
            before = moto_calls(moto)
            t = time.monotonic()
            argv = [sys.executable, "-m", "amibake", "prune", "--name", "bench-*", "--keep", str(KEEP),
                    "--ssm-path", "/bench", "--region", REGION, "-machine-readable", *extra]
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
            wall = time.monotonic() - t
            summary = [line.split(",")[3:] for line in r.stdout.splitlines() if ",prune,summary," in line]
            if r.returncode != 0 or not summary:
                print(r.stdout[-2000:], r.stderr[-2000:])
                return 1
            _, images, snaps, calls = summary[-1][:4]
            rows.append((label, images, snaps, calls, moto_calls(moto) - before, wall))
        print("| run | AMIs removed (or to remove) | snapshots | amibake API calls | calls moto served "
              "| wall |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, images, snaps, calls, served, wall in rows:
            print(f"| {label} | {images} | {snaps} | {calls} | {served} | {wall:.1f} s |")
    finally:
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
