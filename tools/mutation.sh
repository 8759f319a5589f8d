#!/usr/bin/env bash
# Mutation testing of odflow's model maths, COCO evaluation and label map with mutmut.
#
# Usage: tools/mutation.sh [MODULE ...]     (default: all modules below)
#   e.g. tools/mutation.sh box_coder coco
# Needs the [mutation] extra: pip install -e '.[mutation]'.
#
# Why it works this way:
# - Each module runs in its own throw-away copy of the work tree (mutmut rewrites the sources
#   it mutates and writes mutants/ next to them; the checkout is never touched, and the
#   mutmut config lives only in the copy, so `python -m pytest` in the repo is unaffected).
# - Each module runs only its own fast test files: a mutant in box_coder.py is judged by the
#   box coder's tests, not by whatever else happens to execute it, which is what the score claims.
# - Under `nice -n 19` with one worker: it is meant to run beside other work, not to be quick.
# - Two passes per module, because of how TensorFlow behaves in a forked process.  fork() copies
#   only the calling thread; TensorFlow's thread pools, created when the parent first ran an op,
#   are gone in the child.  So in a worker forked from a process that has run TensorFlow
#   (measured with TF 2.21 on CPU; gdb shows where it waits):
#     * running any tf.function hangs for good (ProcessFunctionLibraryRuntime::RunSync waits
#       for a closure scheduled on the inter-op pool), with or without the thread settings
#       below and even after resetting the eager context; tracing alone is fine;
#     * an eager op big enough to be split over the intra-op pool (a 300x300 matmul) hangs
#       too, unless that pool has one thread: then the op runs in the calling thread.
#   A hung worker uses no CPU, so only mutmut's wall-clock timeout ends it: with the default
#   15x multiplier that was 30-120 s per hang, which is what made the earlier runs stop early
#   with hundreds of mutants "not checked".  Hence:
#   1. process_isolation "fork" with one-thread pools (TF_NUM_INTRAOP_THREADS=1 and
#      TF_NUM_INTEROP_THREADS=1, OMP_NUM_THREADS=1 for any OpenMP code): each worker forks from
#      the process that already ran the tests once, TensorFlow imported and warm (losses.py:
#      406 mutants in 48 s), and a short timeout (FORK_TIMEOUT_MULTIPLIER) so a worker that
#      reaches a tf.function test is given up on within seconds.  Killed mutants nearly always
#      fail an eager test before that.
#   2. The timed-out mutants again under process_isolation "forkserver": each worker forks from
#      a server that has imported pytest and the tests but never ran a TensorFlow op, so it
#      starts its own thread pools and tf.function works; with mutmut's default 15x timeout, a
#      timeout there means the mutant really hangs (e.g. an endless while_loop).  Each such
#      worker starts TensorFlow afresh (~10 s per mutant of the miner), hence only these.
#   One thread per pool also keeps a run from competing with other work for more than one core.
# Results: $MUTATION_OUT (default build/mutation)/<module>.{log,results,survivors.diff,json};
# `python tools/mutation_report.py` turns them into benchmarks/mutation.md.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${MUTATION_OUT:-$repo/build/mutation}")"
mkdir -p "$out"

# module name -> "source file|test file(s)"
declare -A MODULES=(
  [anchors]="odflow/model/anchors.py|tests/test_model_anchors.py"
  [box_coder]="odflow/model/box_coder.py|tests/test_model_box_coder.py"
  [matcher]="odflow/model/matcher.py|tests/test_model_matcher.py"
  [target_assigner]="odflow/model/target_assigner.py|tests/test_model_target_assigner.py"
  [hard_example_miner]="odflow/model/hard_example_miner.py|tests/test_model_hard_example_miner.py"
  [losses]="odflow/model/losses.py|tests/test_model_losses.py"
  [postprocess]="odflow/model/postprocess.py|tests/test_model_postprocess.py"
  [coco]="odflow/evaluation/coco.py|tests/test_evaluation_coco.py tests/test_evaluation_coco_reference.py"
  [label_map]="odflow/label_map.py|tests/test_label_map.py"
)
ORDER=(box_coder anchors matcher target_assigner hard_example_miner losses postprocess coco label_map)

# See "Two passes" above: one-thread TensorFlow pools so big eager ops do not hang in forks.
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2
# Pass 1's timeout: (sum of the mutant's tests' clean durations + 1 s) x this, wall clock.
FORK_TIMEOUT_MULTIPLIER="${FORK_TIMEOUT_MULTIPLIER:-2.0}"

command -v mutmut >/dev/null || { echo "mutmut is not installed: pip install -e '.[mutation]'" >&2; exit 2; }
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=("${ORDER[@]}")
for module in "${modules[@]}"; do
  [ -n "${MODULES[$module]:-}" ] || { echo "unknown module '$module'; choose from: ${ORDER[*]}" >&2; exit 2; }
done

for module in "${modules[@]}"; do
  source_file="${MODULES[$module]%%|*}"
  tests="${MODULES[$module]#*|}"
  work="$(mktemp -d "${TMPDIR:-/tmp}/odflow-mutation-$module.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$work"
  test_list=""
  for t in $tests; do test_list+="\"$t\", "; done
  cat >> "$work/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["odflow"]
only_mutate = ["$source_file"]
pytest_add_cli_args_test_selection = [${test_list%, }]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
process_isolation = "fork"
use_git_change_detection = false
# Pass 1 (fork): short, a worker that reaches a tf.function test hangs (see tools/mutation.sh).
timeout_multiplier = $FORK_TIMEOUT_MULTIPLIER
TOML
  echo "== $module: mutating $source_file, judged by $tests (log: $out/$module.log)"
  start=$(date +%s)
  (cd "$work" && nice -n 19 mutmut run --max-children 1 >"$out/$module.log" 2>&1) || {
    echo "mutmut failed on $module; see $out/$module.log" >&2; exit 1; }
  (cd "$work" && mutmut results --all true >"$out/$module.results" 2>&1)
  # Pass 2: the timed-out mutants again, each in a worker forked from a process that has not
  # run TensorFlow yet (slower, but tf.function works there), with mutmut's default 15x
  # timeout: a timeout then means the mutant really hangs.
  timeouts=$(awk -F': ' '$2 == "timeout" {print $1}' "$out/$module.results" | tr -d ' ')
  pass1_seconds=$(( $(date +%s) - start ))
  if [ -n "$timeouts" ]; then
    echo "   pass 2 (forkserver): $(echo "$timeouts" | wc -l) timed-out mutants"
    sed -i -e 's/^process_isolation = "fork"$/process_isolation = "forkserver"/' \
      -e "s/^timeout_multiplier = $FORK_TIMEOUT_MULTIPLIER\$/timeout_multiplier = 15.0/" "$work/pyproject.toml"
    # shellcheck disable=SC2086  # one argument per mutant name
    (cd "$work" && nice -n 19 mutmut run --max-children 1 $timeouts >>"$out/$module.log" 2>&1) || {
      echo "mutmut failed re-running timeouts of $module; see $out/$module.log" >&2; exit 1; }
    (cd "$work" && mutmut results --all true >"$out/$module.results" 2>&1)
  fi
  # One process for all diffs (`mutmut show` per mutant costs seconds each).
  (cd "$work" && python - "$out/$module.results" >"$out/$module.survivors.diff" <<'PY'
import sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
for line in open(sys.argv[1]):
    name, _, status = line.strip().rpartition(": ")
    if status in ("survived", "no tests", "timeout"):
        print(f"# {name}: {status}")
        print(get_diff_for_mutant(name, path=find_mutant(name).path))
PY
  )
  echo "{\"module\": \"$module\", \"source\": \"$source_file\", \"tests\": \"$tests\", \"seconds\": $(( $(date +%s) - start )), \"pass1_seconds\": $pass1_seconds, \"pass2_mutants\": $(echo -n "$timeouts" | grep -c . || true)}" >"$out/$module.json"
  { grep -c ": killed" "$out/$module.results" || true; } | xargs echo "   killed:"
  wc -l <"$out/$module.results" | xargs echo "   mutants:"
  rm -rf "$work"
  trap - EXIT
done
