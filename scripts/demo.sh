#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the demo
# migration (plans/demo.yaml) between two local fake Mattermost servers on
# 127.0.0.1: a seeded source and an empty target. Credentials are random,
# passed through the environment, and never printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j"$(nproc)" --target mmigrate

work=$(mktemp -d /tmp/mmigrate-demo-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Starts one fake server; $1 = name, rest = its options.
start_fake() {
	local name=$1
	shift
	python3 tests/fake/mmfake.py --port 0 --port-file "$work/$name.port" \
		--credentials-file "$work/$name.creds" --state-dir "$work/$name-files" \
		--job-pending-seconds 1 --job-run-seconds 2 --log "$work/$name.log" "$@" \
		> "$work/$name.out" 2>&1 &
	pids+=($!)
}

start_fake source --seed medium
start_fake target --seed none
for name in source target; do
	for _ in $(seq 100); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
	[ -s "$work/$name.port" ] || { echo "demo: the $name server did not start:"; cat "$work/$name.out"; exit 1; }
done

cred() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"][sys.argv[2]])' "$1" "$2"; }
export MM_DEMO_SOURCE_URL="http://127.0.0.1:$(cat "$work/source.port")"
export MM_DEMO_TARGET_URL="http://127.0.0.1:$(cat "$work/target.port")"
MM_DEMO_SOURCE_TOKEN=$(cred "$work/source.creds" token)
MM_DEMO_TARGET_PASSWORD=$(cred "$work/target.creds" password)
export MM_DEMO_SOURCE_TOKEN MM_DEMO_TARGET_PASSWORD

echo "source: $MM_DEMO_SOURCE_URL (seeded)   target: $MM_DEMO_TARGET_URL (empty)"
echo
echo "\$ mmigrate plan plans/demo.yaml"
build/mmigrate plan --state-dir "$work/state" plans/demo.yaml
echo
echo "\$ mmigrate apply plans/demo.yaml"
build/mmigrate apply --allow-dirty --state-dir "$work/state" plans/demo.yaml
echo
echo "\$ mmigrate apply plans/demo.yaml    # again: everything is done, nothing runs twice"
build/mmigrate apply --allow-dirty --state-dir "$work/state" plans/demo.yaml
echo
echo "\$ mmigrate status plans/demo.yaml"
build/mmigrate status --state-dir "$work/state" plans/demo.yaml
echo
echo "target now holds:"
python3 -c 'import json,sys,urllib.request; m=json.load(urllib.request.urlopen(sys.argv[1]+"/__fake/model")); print(json.dumps(m, indent=1)[:1500])' "$MM_DEMO_TARGET_URL"
