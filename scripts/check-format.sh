#!/usr/bin/env bash
# Checks that every tracked .c/.h under engine/, steps/, tests/ and bench/ is
# formatted as .clang-format says (clang-format 14, Debian 12's). Lists the
# files that differ, with how many of their lines would change, and exits 1.
#
#   bash scripts/check-format.sh          # check
#   bash scripts/check-format.sh --diff   # check and show what would change
#   bash scripts/check-format.sh --fix    # reformat those files in place
#
# CLANG_FORMAT=/path/to/clang-format picks another binary; other versions
# format some constructs differently, so CI uses 14.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=check
case "${1:-}" in
"") ;;
--diff) mode=diff ;;
--fix) mode=fix ;;
-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: $0 [--diff | --fix]" >&2; exit 2 ;;
esac

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format-14 clang-format; do
		if command -v "$c" > /dev/null; then cf=$c; break; fi
	done
fi
if [ -z "$cf" ]; then
	echo "check-format: clang-format not found (Debian 12: apt-get install clang-format)" >&2
	exit 2
fi
version=$("$cf" --version)
case "$version" in
*"version 14."*) ;;
*) echo "check-format: warning: $version is not clang-format 14; results may differ from CI" >&2 ;;
esac

if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
	mapfile -t files < <(git ls-files -- 'engine/*.[ch]' 'steps/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')
else
	mapfile -t files < <(find engine steps tests bench -name '*.[ch]' -type f | sort)
fi

if [ "$mode" = fix ]; then
	"$cf" -i --style=file "${files[@]}"
	echo "check-format: formatted ${#files[@]} files with $cf"
	exit 0
fi

bad=0 lines=0
for f in "${files[@]}"; do
	if ! out=$("$cf" --style=file "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" -); then
		n=$(awk 'NR > 2 && /^-/' <<< "$out" | wc -l)
		printf '%6d  %s\n' "$n" "$f"
		[ "$mode" = diff ] && printf '%s\n' "$out"
		bad=$((bad + 1)) lines=$((lines + n))
	fi
done
if [ "$bad" -gt 0 ]; then
	echo "check-format: $bad of ${#files[@]} files differ from .clang-format ($lines lines would change);" \
		"run: bash scripts/check-format.sh --fix" >&2
	exit 1
fi
echo "check-format: ${#files[@]} files match .clang-format"
