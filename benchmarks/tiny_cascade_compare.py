"""Are two runs of the same recipe the same run? Compare two `cascade run` directories.

A structural change (a refactor of the trainers, a moved module) must not change what the
cascade computes: with the same recipe, seed, host and thread count, every eval sample and every
stage's final weights come out identical. This reads two finished run directories and reports,
per stage, whether the final-weight hashes (`weights_sha256` in each manifest) and the eval
samples agree, then the first differing sample if any. Samples are compared field by field,
except measured wall-clock times (`test_seconds`, any `*_seconds`), which differ between two
runs of the same commit. Both runs need the same torch thread count (`OMP_NUM_THREADS`): matmul
sums are split per thread, so another count changes the floats.

    python benchmarks/tiny_cascade_time.py --out /tmp/before   # at the old commit
    python benchmarks/tiny_cascade_time.py --out /tmp/after    # at the new commit
    python benchmarks/tiny_cascade_compare.py /tmp/before /tmp/after

Exit status 0 when both runs agree everywhere, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _manifests(run: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(run.glob("stages/*/manifest.json")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        found[path.parent.name] = manifest
    return found


def _max_weight_difference(before: Path, after: Path) -> str:
    """The largest absolute difference of any parameter between two final checkpoints."""
    from cascade.engine.local import read_safetensors_dir

    a, b = read_safetensors_dir(before), read_safetensors_dir(after)
    if sorted(a) != sorted(b):
        return "other tensors"
    return f"{max((a[k].double() - b[k].double()).abs().max().item() for k in a):.1e}"


def _sample_files(stage_dir: Path) -> dict[str, Path]:
    return {str(p.relative_to(stage_dir)): p for p in sorted(stage_dir.glob("eval/**/*.jsonl"))}


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _samples(path: Path) -> list:
    return [_without_timings(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _differing_field(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _differing_field(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path or 'value'}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}"


def _first_difference(samples_a: list, samples_b: list) -> str | None:
    for number, (a, b) in enumerate(zip(samples_a, samples_b), start=1):
        if a != b:
            return f"line {number}, {_differing_field(a, b)}"
    if len(samples_a) != len(samples_b):
        return f"{len(samples_a)} lines against {len(samples_b)}"
    return None


def compare(before: Path, after: Path) -> tuple[bool, list[str]]:
    """Return (identical, report lines) for two run directories."""
    lines: list[str] = []
    same = True
    m_before, m_after = _manifests(before), _manifests(after)
    if sorted(m_before) != sorted(m_after):
        lines.append(f"stages differ: {sorted(m_before)} against {sorted(m_after)}")
        same = False
    total_samples = n_different = 0
    lines.append(f"{'stage':<14} {'weights':<16} {'eval files':>10} {'samples':>8}  verdict")
    for stage in sorted(set(m_before) & set(m_after)):
        w_before = m_before[stage].get("weights_sha256")
        w_after = m_after[stage].get("weights_sha256")
        weights = "same"
        if w_before is None and w_after is None:
            weights = "none"
        elif w_before != w_after:
            final = Path("stages") / stage / "final"
            weights = f"max|d| {_max_weight_difference(before / final, after / final)}"
        files_before = _sample_files(before / "stages" / stage)
        files_after = _sample_files(after / "stages" / stage)
        verdict = "identical"
        problems = []
        if sorted(files_before) != sorted(files_after):
            problems.append(f"eval files differ: {sorted(set(files_before) ^ set(files_after))}")
        n_samples = 0
        for name in sorted(set(files_before) & set(files_after)):
            samples_before = _samples(files_before[name])
            n_samples += len(samples_before)
            samples_after = _samples(files_after[name])
            n_different += sum(a != b for a, b in zip(samples_before, samples_after))
            difference = _first_difference(samples_before, samples_after)
            if difference:
                problems.append(f"{name}: {difference}")
        total_samples += n_samples
        if weights not in ("same", "none") or problems:
            verdict = "DIFFERENT"
            same = False
        lines.append(f"{stage:<14} {weights:<16} {len(files_before):>10} {n_samples:>8}  {verdict}")
        lines.extend(f"    {p}" for p in problems[:5])
    lines.append(f"\n{total_samples} eval samples compared, {n_different} differ; runs are "
                 f"{'identical' if same else 'DIFFERENT'}")
    return same, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the first run directory (e.g. the old commit's)")
    parser.add_argument("after", type=Path, help="the second run directory")
    args = parser.parse_args()
    for run in (args.before, args.after):
        if not (run / "run.json").is_file():
            parser.error(f"{run}: not a finished run directory (no run.json)")
    same, lines = compare(args.before, args.after)
    print("\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
