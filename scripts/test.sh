#!/usr/bin/env bash
# Quick start, command 2: install what is missing, build, and run the whole
# test suite (unit, integration against the fake Mattermost server, fuzz
# corpus replay) in every configuration of the matrix, each in its own
# build directory:
#
#   gcc-release    gcc,   RelWithDebInfo            (also packs the .deb)
#   gcc-asan       gcc,   Debug + ASan + UBSan
#   clang-release  clang, RelWithDebInfo
#   clang-asan     clang, Debug + ASan + UBSan
#   fuzz           clang + libFuzzer + ASan + UBSan: each tests/fuzz/fuzz_*
#                  target fuzzes its committed corpus for MM_FUZZ_SECONDS (30)
#
#   bash scripts/test.sh                 # the whole matrix (what CI runs)
#   bash scripts/test.sh --quick         # gcc-asan only: the developer loop
#   MM_MATRIX="clang-asan fuzz" bash scripts/test.sh    # any subset
#   bash scripts/test.sh --quick -L unit # other arguments go to ctest
#
# Warnings are errors (MM_WERROR) when CI=true or MM_WERROR=ON. Every
# configuration runs even when one fails; the summary at the end gives each
# one's result and ctest's closing line, and the exit status is 1 if any
# configuration failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

all="gcc-release gcc-asan clang-release clang-asan fuzz"
matrix=${MM_MATRIX:-$all}
ctest_args=()
for a in "$@"; do
	case "$a" in
	--quick) matrix=gcc-asan ;;
	--matrix) matrix=$all ;;
	-h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) ctest_args+=("$a") ;;
	esac
done
for cfg in $matrix; do
	case " $all " in
	*" $cfg "*) ;;
	*) echo "test.sh: unknown configuration '$cfg' (known: $all)" >&2; exit 2 ;;
	esac
done

if [ "${CI:-}" = true ]; then werror=${MM_WERROR:-ON}; else werror=${MM_WERROR:-OFF}; fi
fuzz_seconds=${MM_FUZZ_SECONDS:-30}
jobs=$(nproc)

case " $matrix " in
*clang* | *fuzz*) bash scripts/deps.sh --matrix || exit 1 ;;
*) bash scripts/deps.sh || exit 1 ;;
esac

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1

summary=()
failed=0

# build DIR CC [cmake options...]: configure and build quietly into DIR; on a
# failure show the end of the log, and show any warnings in any case.
build() {
	local dir=$1 cc=$2
	shift 2
	mkdir -p "$dir"
	if ! cmake -S "$root" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DMM_WERROR="$werror" "$@" \
		> "$dir/configure.log" 2>&1; then
		tail -n 40 "$dir/configure.log"
		return 1
	fi
	local rc=0
	cmake --build "$dir" -j"$jobs" ${targets:+--target $targets} > "$dir/build.log" 2>&1 || rc=$?
	grep -E -A4 'warning:' "$dir/build.log" | head -n 60
	if [ $rc -ne 0 ]; then
		grep -E -B2 -A6 'error:|Error [0-9]' "$dir/build.log" | head -n 80
		echo "(full log: $dir/build.log)"
		return 1
	fi
	echo "built $(grep -c 'Building C object' "$dir/build.log") objects into $dir ($cc, werror=$werror)"
}

# run_ctest DIR: the whole suite; its closing line goes to the summary.
run_ctest() {
	local dir=$1 rc=0
	(cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}") 2>&1 | tee "$dir/ctest.log" || rc=$?
	last=$(grep -E 'tests passed|No tests were found' "$dir/ctest.log" | tail -n 1)
	return $rc
}

# fuzz_smoke DIR: each fuzz target for fuzz_seconds on a scratch copy of its
# corpus (new inputs must not land in the committed one); crashes, leaks and
# UB findings fail it and leave the input in DIR/artifacts.
fuzz_smoke() {
	local dir=$1 rc=0 src name corpus n=0 bad=0
	rm -rf "$dir/corpus-new" "$dir/artifacts"
	mkdir -p "$dir/corpus-new" "$dir/artifacts"
	for src in tests/fuzz/fuzz_*.c; do
		name=$(basename "$src" .c)
		corpus=tests/fuzz/corpus/${name#fuzz_}
		mkdir -p "$dir/corpus-new/$name"
		echo "--- $name: ${fuzz_seconds}s on $corpus"
		if "$dir/tests/$name" -max_total_time="$fuzz_seconds" -timeout=25 -print_final_stats=1 \
			-artifact_prefix="$dir/artifacts/$name-" "$dir/corpus-new/$name" "$corpus" \
			> "$dir/$name.log" 2>&1; then
			grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$dir/$name.log"
		else
			tail -n 60 "$dir/$name.log"
			echo "$name FAILED (log: $dir/$name.log; input: $(ls "$dir/artifacts" | head -n 1))"
			bad=$((bad + 1))
		fi
		n=$((n + 1))
	done
	last="$((n - bad)) of $n fuzz targets ran ${fuzz_seconds}s without a finding"
	[ $bad -eq 0 ]
}

for cfg in $matrix; do
	echo
	echo "==================== $cfg ===================="
	start=$SECONDS
	dir=build-$cfg
	last="(did not get to ctest)"
	targets=
	ok=1
	case $cfg in
	gcc-release | clang-release)
		build "$dir" "${cfg%-release}" -DCMAKE_BUILD_TYPE=RelWithDebInfo && run_ctest "$dir" || ok=0
		if [ $ok = 1 ] && [ $cfg = gcc-release ]; then
			# The Debian package must still build from the install rules.
			rm -f "$dir"/mmigrate_*.deb
			if (cd "$dir" && cpack -G DEB > cpack.log 2>&1) && ls "$dir"/mmigrate_*.deb > /dev/null 2>&1; then
				echo "packed $(basename "$dir"/mmigrate_*.deb)"
			else
				tail -n 20 "$dir/cpack.log"
				last="$last; cpack -G DEB FAILED"
				ok=0
			fi
		fi
		;;
	gcc-asan | clang-asan)
		build "$dir" "${cfg%-asan}" -DCMAKE_BUILD_TYPE=Debug -DMM_SANITIZE=ON && run_ctest "$dir" || ok=0
		;;
	fuzz)
		last="(did not get to fuzzing)"
		targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done | tr '\n' ' ')
		build "$dir" clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMM_SANITIZE=ON -DMM_FUZZ=ON \
			&& fuzz_smoke "$dir" || ok=0
		;;
	esac
	t=$((SECONDS - start))
	if [ $ok = 1 ]; then result=ok; else result=FAILED; failed=$((failed + 1)); fi
	summary+=("$(printf '%-14s %-6s %3dm%02ds  %s' "$cfg" "$result" $((t / 60)) $((t % 60)) "$last")")
done

echo
echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
echo "total $((SECONDS / 60))m$((SECONDS % 60))s"
if [ $failed -gt 0 ]; then
	echo "test.sh: $failed configuration(s) failed"
	exit 1
fi
