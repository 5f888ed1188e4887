"""Mutation testing of the code whose bugs the suite must catch (`make mutation`).

mutmut (the dev extra pins it) changes one thing at a time in the code under test (an
operator, a constant, a keyword argument dropped) and runs the tests that reach the changed
function; a mutant that no test fails on "survives" and points at an untested behaviour.

Each group below mutates a few modules against only the test files that exercise them, in
its own scratch copy of the repository (mutmut reads its settings from the working
directory, so each group gets a generated ``setup.cfg``), which keeps a run to minutes per
group on a small machine. The report prints each group's kill rate and lists every
survivor with its diff; docs/testing.md says which survivors are equivalent mutations.

    python benchmarks/mutation.py                  # every group
    python benchmarks/mutation.py rewards algo     # some groups
    python benchmarks/mutation.py --list           # the groups and what they cover
    python benchmarks/mutation.py --again rewards  # only last run's survivors, against today's tests
    python benchmarks/mutation.py --report          # the figures of the last runs, running nothing

Kill rate = killed / (killed + survived + timeout-free others); mutants no selected test
reaches count as survivors ("no tests"), timeouts as kills (the mutant hung the code).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Group:
    """Modules to mutate, the tests that judge them, optionally only some functions."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]
    # mutmut mutant-name globs (module.x_function__mutmut_*); empty: every function.
    functions: tuple[str, ...] = ()
    # torch (and its threads) is not fork-safe: fork workers from a clean server instead.
    forkserver: bool = False
    wiring: bool = field(default=False)  # counted in the wiring/reward acceptance figure


GROUPS: dict[str, Group] = {
    "algo": Group(
        modules=("src/cascade/algo/*.py",),
        tests=("tests/test_algo_advantages.py", "tests/test_algo_curriculum.py", "tests/test_algo_filters.py",
               "tests/test_algo_losses.py", "tests/test_algo_modes.py", "tests/test_algo_contracts.py"),
        forkserver=True,
    ),
    "rewards": Group(
        modules=("src/cascade/verifiers/rewards.py", "src/cascade/verifiers/stage_rewards.py"),
        tests=("tests/test_rewards.py", "tests/test_reward_inputs.py", "tests/test_stage_reward_table.py"),
        wiring=True,
    ),
    # The judging rules, the ground-truth formats, the job the verifier hands the sandbox and
    # the report it reads back, and the plan the assert-style judge process gets (a mutant
    # there that no test kills may be a way to score without solving). The harness itself
    # runs as a script inside the sandbox, where mutmut's trampolines cannot reach.
    "code-verifier": Group(
        modules=("src/cascade/verifiers/code.py", "src/cascade/sandbox/judge_plan.py"),
        functions=tuple(f"cascade.verifiers.code.x_{name}__mutmut_*" for name in (
            "extract_code", "parse_ground_truth", "_get", "_compiled", "_tests", "_call_args", "_expected_value",
            "_assert_problem", "outputs_match", "_tokens_match", "values_match", "problem_wall_seconds",
            "judge", "_read_report", "_grade")) + ("cascade.sandbox.judge_plan.x_*",),
        tests=("tests/test_code_verifier.py", "tests/test_code_tolerance.py", "tests/test_code_ground_truth.py",
               "tests/test_judge_plan.py", "tests/test_reward_hacking.py"),
        # judge_plan is cached: a worker forked from the process that collected the stats
        # would reuse its plans and never call a mutant of program_names or _bound_names.
        forkserver=True,
    ),
    "swe-verifier": Group(
        modules=("src/cascade/verifiers/swe.py",),
        tests=("tests/test_verify_swe.py", "tests/test_swe_edits.py", "tests/test_swe_judge.py",
               "tests/test_hostile_inputs.py"),
    ),
    "chat-template": Group(
        modules=("src/cascade/chat/template.py", "src/cascade/chat/parse.py"),
        tests=("tests/test_chat_golden.py", "tests/test_chat_parse.py", "tests/test_chat_properties.py",
               "tests/test_hostile_inputs.py"),
        # The compiled template is cached: a worker forked from a process that already
        # rendered would never run a mutant of the template's compile-time code.
        forkserver=True,
    ),
    # The trainers' wiring: the functions that pass the stage's settings to the pure
    # functions and move data between them (not progress printing or metric plumbing).
    "grpo-wiring": Group(
        modules=("src/cascade/trainers/grpo.py", "src/cascade/trainers/rollout.py"),
        tests=("tests/test_grpo_trainer.py", "tests/test_grpo_wiring.py", "tests/test_stage_reward_wiring.py"),
        functions=(
            "cascade.trainers.grpo.x_knobs_for__mutmut_*",
            "cascade.trainers.grpo.x_resolve_reward_fn__mutmut_*",
            "cascade.trainers.grpo.x_sample_round__mutmut_*",
            "cascade.trainers.grpo.x_collect_batch__mutmut_*",
            "cascade.trainers.grpo.x_train_on_batch__mutmut_*",
            "cascade.trainers.grpo.xǁGRPOStepsǁfinished__mutmut_*",
            "cascade.trainers.grpo.xǁGRPOStepsǁrestore__mutmut_*",
            "cascade.trainers.grpo.xǁGRPOStepsǁtrain_step__mutmut_*",
            "cascade.trainers.grpo.xǁGRPOStepsǁstate__mutmut_*",
            "cascade.trainers.grpo.x_train_grpo__mutmut_*",
            "cascade.trainers.rollout.x_stage_reward_fn__mutmut_*",
            "cascade.trainers.rollout.xǁPromptStreamǁ__init____mutmut_*",
            "cascade.trainers.rollout.xǁPromptStreamǁ_order_for_epoch__mutmut_*",
        ),
        forkserver=True,
        wiring=True,
    ),
    "sft-wiring": Group(
        modules=("src/cascade/trainers/sft.py",),
        tests=("tests/test_sft.py", "tests/test_sft_wiring.py"),
        functions=("cascade.trainers.sft.x_train_sft__mutmut_*", "cascade.trainers.sft.x_sft_update__mutmut_*",
                   "cascade.trainers.sft.xǁSFTStepsǁ__init____mutmut_*",
                   "cascade.trainers.sft.xǁSFTStepsǁcheck_resume__mutmut_*",
                   "cascade.trainers.sft.xǁSFTStepsǁtrain_step__mutmut_*",
                   "cascade.trainers.sft.xǁSFTStepsǁstate__mutmut_*",
                   "cascade.trainers.sft.xǁTokenNLLǁ__call____mutmut_*",
                   "cascade.trainers.sft.x_encode_records__mutmut_*"),
        forkserver=True,
        wiring=True,
    ),
    # The loop the three trainers share: resume, log, checkpoint, prune, final save.
    "trainer-loop": Group(
        modules=("src/cascade/trainers/loop.py",),
        tests=("tests/test_trainer_loop.py", "tests/test_sft_wiring.py", "tests/test_rm_wiring.py",
               "tests/test_grpo_trainer.py"),
        functions=("cascade.trainers.loop.x_run_loop__mutmut_*",),
        forkserver=True,
        wiring=True,
    ),
    "rm-wiring": Group(
        modules=("src/cascade/trainers/rm.py",),
        tests=("tests/test_rm.py", "tests/test_rm_wiring.py"),
        functions=("cascade.trainers.rm.x_train_rm__mutmut_*", "cascade.trainers.rm.x_rm_update__mutmut_*",
                   "cascade.trainers.rm.xǁRMStepsǁ__init____mutmut_*",
                   "cascade.trainers.rm.xǁRMStepsǁcheck_resume__mutmut_*",
                   "cascade.trainers.rm.xǁRMStepsǁtrain_step__mutmut_*",
                   "cascade.trainers.rm.xǁRMStepsǁstate__mutmut_*",
                   "cascade.trainers.rm.xǁBradleyTerryLossǁ__call____mutmut_*",
                   "cascade.trainers.rm.x_pair_batch__mutmut_*", "cascade.trainers.rm.x_pair_accuracy__mutmut_*"),
        forkserver=True,
        wiring=True,
    ),
}

KILLED = {1, 3, 24, -24, 152, 255, 36, 37, -9, -11}  # failed, or hung/crashed the code
SURVIVED = {0, 5, 33}  # the tests passed, or none reached the mutant


def _setup_cfg(group: Group) -> str:
    lines = ["[mutmut]", "source_paths=src"]
    lines.append("only_mutate=\n" + "\n".join(f"    {m}" for m in group.modules))
    lines.append("pytest_add_cli_args_test_selection=\n" + "\n".join(f"    {t}" for t in group.tests))
    lines.append("pytest_add_cli_args=\n    -p\n    no:randomly\n    -p\n    no:cacheprovider")
    lines.append(f"process_isolation={'forkserver' if group.forkserver else 'fork'}")
    lines.append("use_git_change_detection=false")
    return "\n".join(lines) + "\n"


def _prepare(name: str, group: Group, work: Path) -> Path:
    scratch = work / name

    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    shutil.copytree(REPO / "src", scratch / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", scratch / "pyproject.toml")
    (scratch / "setup.cfg").write_text(_setup_cfg(group))
    # mutmut runs the tests from scratch/mutants, and tests find the shared benchmark data
    # next to the repository (without it they skip).
    if (REPO.parent / "shared").is_dir():
        (scratch / "shared").symlink_to(REPO.parent / "shared")
    # On PYTHONPATH before mutmut fills it: a directory missing at interpreter start is
    # cached as unimportable, and the tests would then import the unmutated install.
    (scratch / "mutants" / "src").mkdir(parents=True)
    return scratch


def _mutmut(scratch: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # Subprocesses the tests start (verifier workers, the CLI) must import the mutants too.
    env["PYTHONPATH"] = str(scratch / "mutants" / "src")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(cmd, cwd=scratch, env=env, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.STDOUT if capture else subprocess.DEVNULL)


EARLIER = "earlier-outcomes.json"  # verdicts of the runs before an --again (mutmut drops them)


def _outcomes(scratch: Path, group: Group) -> dict[str, int | None]:
    import fnmatch

    earlier = json.loads((scratch / EARLIER).read_text()) if (scratch / EARLIER).exists() else {}
    out: dict[str, int | None] = {}
    for meta in sorted((scratch / "mutants").rglob("*.py.meta")):
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not group.functions or any(fnmatch.fnmatch(key, g) for g in group.functions):
                out[key] = code if code is not None else earlier.get(key)
    return out


def _changed_modules(scratch: Path, group: Group) -> set[str]:
    """Dotted names of the group's modules whose source differs from the scratch copy's."""
    changed = set()
    for pattern in group.modules:
        for path in REPO.glob(pattern):
            rel = path.relative_to(REPO)
            old = scratch / rel
            if not old.exists() or old.read_bytes() != path.read_bytes():
                changed.add(".".join(rel.with_suffix("").parts[1:]))
    return changed


def _refresh(scratch: Path, group: Group) -> set[str]:
    """The repository's current source, tests and the group's test list in an existing
    scratch copy, with mutmut's record of which test reaches which function dropped so that
    it is taken again. A new test list makes mutmut forget every verdict, so the verdicts so
    far are kept aside first: a mutant killed before stays killed (tests were only added),
    except in a module whose source changed, which is tried again whole. Returns those
    modules."""
    changed = _changed_modules(scratch, group)
    earlier = {k: c for k, c in _outcomes(scratch, group).items()
               if not any(k.startswith(m + ".") for m in changed)}
    (scratch / EARLIER).write_text(json.dumps(earlier))
    (scratch / "setup.cfg").write_text(_setup_cfg(group))
    shutil.rmtree(scratch / "src")
    shutil.copytree(REPO / "src", scratch / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.rmtree(scratch / "tests")
    shutil.copytree(REPO / "tests", scratch / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (scratch / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    return changed


def run_group(name: str, group: Group, work: Path, children: int, show_diffs: bool, again: bool,
              report_only: bool = False, rest: bool = False) -> dict:
    scratch = work / name
    run = True
    targets: list[str] = list(group.functions)
    if rest and (scratch / "mutants").is_dir():
        # Only the mutants no earlier run got to (an interrupted run), same tests and source.
        targets = [k for k, c in _outcomes(scratch, group).items() if c is None]
        run = bool(targets)
    elif report_only:
        if not (scratch / "mutants").is_dir():
            raise SystemExit(f"no earlier run of group {name} in {scratch}")
        run = False
    elif again and (scratch / "mutants").is_dir():
        # Only the mutants that survived last time (and every mutant of a module whose
        # source changed since), against today's tests.
        changed = _refresh(scratch, group)
        targets = [k for k, c in _outcomes(scratch, group).items()
                   if c in SURVIVED and not any(k.startswith(m + ".") for m in changed)]
        for module in sorted(changed):
            globs = [g for g in group.functions if g.startswith(module + ".")] if group.functions else [module + ".*"]
            targets += globs
        run = bool(targets)
    else:
        scratch = _prepare(name, group, work)
    started = time.perf_counter()
    proc = _mutmut(scratch, "run", "--max-children", str(children), *targets, capture=True) if run \
        else subprocess.CompletedProcess([], 0, "", "")
    seconds = time.perf_counter() - started
    outcomes = _outcomes(scratch, group)
    if run and (proc.returncode != 0 or not any(c is not None for c in outcomes.values())):
        print(proc.stdout[-3000:])
        raise SystemExit(f"mutmut failed on group {name} (exit {proc.returncode})")
    killed = sorted(k for k, c in outcomes.items() if c in KILLED)
    survived = sorted(k for k, c in outcomes.items() if c in SURVIVED)
    unknown = sorted(k for k, c in outcomes.items() if c not in KILLED | SURVIVED)
    tried = len(killed) + len(survived)
    rate = len(killed) / tried if tried else float("nan")
    print(f"\n== {name}: {len(killed)}/{tried} killed ({100 * rate:.1f}%), {len(survived)} survived"
          f"{f', {len(unknown)} not run' if unknown else ''}, {seconds:.0f} s")
    for key in survived:
        reason = "no test reaches it" if outcomes[key] in (5, 33) else "survived"
        print(f"  survivor {key} ({reason})")
        if show_diffs:
            diff = _mutmut(scratch, "show", key, capture=True).stdout
            body = [ln for ln in diff.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
            for line in body:
                print(f"      {line}")
    return {"group": name, "killed": len(killed), "survived": survived, "tried": tried, "rate": rate,
            "seconds": seconds, "wiring": group.wiring}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default all): {', '.join(GROUPS)}")
    parser.add_argument("--list", action="store_true", help="print the groups and exit")
    parser.add_argument("--work", default=os.environ.get("MUTATION_WORK", "/tmp/cascade-mutation"),
                        help="scratch directory for the mutated copies (default %(default)s)")
    parser.add_argument("--children", type=int, default=2, help="mutants run at once (default %(default)s)")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors by name only")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--again", action="store_true",
                        help="rerun only the last run's survivors against the current tests (same scratch copy)")
    parser.add_argument("--rest", action="store_true",
                        help="run only the mutants an interrupted run did not get to")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: print the figures of the last (possibly unfinished) run")
    args = parser.parse_args(argv)
    if args.list:
        for name, group in GROUPS.items():
            print(f"{name}: {', '.join(group.modules)} <- {', '.join(group.tests)}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    work = Path(args.work)
    results = [run_group(name, GROUPS[name], work, args.children, not args.no_diffs, args.again, args.report, args.rest)
               for name in (args.groups or list(GROUPS))]
    print("\ngroup            killed/tried  rate    time")
    for r in results:
        print(f"{r['group']:<16} {r['killed']:>4}/{r['tried']:<6}  {100 * r['rate']:5.1f}%  {r['seconds']:6.0f} s")
    wiring = [r for r in results if r["wiring"]]
    if wiring:
        killed, tried = sum(r["killed"] for r in wiring), sum(r["tried"] for r in wiring)
        print(f"trainer wiring + rewards: {killed}/{tried} ({100 * killed / max(tried, 1):.1f}%)")
    print(f"total {sum(r['seconds'] for r in results):.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
