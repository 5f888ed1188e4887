"""A stand-in for the cluster launcher, used only by tests/test_cluster_run.py.

Called as the launcher template ``python cluster_standin.py RECORD SCRIPT``: instead of running
the job script on a cluster, it records the engine command lines the script holds, and writes a
small checkpoint where the engine would leave the stage's Hugging Face output (the merge target,
or TRL's output_dir): the start checkpoint's files, with a marker naming the stage.

``STANDIN_KILL_PARENT_AT=<stage>`` kills the process that launched it (``cascade run``) with
SIGKILL when that stage's job runs, as a crash of the head node between stages would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path


def main() -> int:
    record, script = Path(sys.argv[1]), Path(sys.argv[2])
    text = script.read_text()
    stage = re.search(r"^# cascade -> .*?: stage '([^']+)'", text, re.M).group(1)
    start = re.search(r"^# Starts from: (.+)$", text, re.M).group(1)
    final = re.search(r"^# Hugging Face output: (.+)$", text, re.M).group(1)
    # The engine commands: one logical line each (backslash continuations joined).
    joined = text.replace("\\\n", " ")
    commands = [shlex.split(line, posix=True) for line in joined.splitlines()
                if re.match(r"(python -m verl|accelerate launch)", line)]
    entry = {"stage": stage, "argv": sys.argv[1:], "start": start, "final": final, "commands": commands}
    with open(record, "a") as out:
        out.write(json.dumps(entry) + "\n")
    if os.environ.get("STANDIN_KILL_PARENT_AT") == stage:
        os.kill(os.getppid(), signal.SIGKILL)
        return 1
    tmp = Path(final + ".standin-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(start, tmp)
    (tmp / "standin.json").write_text(json.dumps({"stage": stage}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
