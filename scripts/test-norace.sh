#!/usr/bin/env bash
# test-norace.sh — run the tests that only build without the race detector (`//go:build !race`:
# allocation counts and loop-path tests whose fakes the race detector's own allocations would
# break). `make test` runs everything else with -race; this runs these, without it, package by
# package, so the allocation budgets are part of the gate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go=${GO:-go}
declare -A tests=()
while IFS= read -r f; do
	pkg=./$(dirname "$f")
	names=$(grep -oE '^func (Test[A-Za-z0-9_]+)\(t \*testing\.T\)' "$f" | sed -E 's/^func (Test[A-Za-z0-9_]+).*/\1/' | paste -sd'|' -)
	[[ -n $names ]] && tests[$pkg]+="${tests[$pkg]:+|}$names"
done < <(git ls-files -z '*_test.go' | xargs -0 grep -lx '//go:build !race')
((${#tests[@]} > 0)) || { echo "test-norace: no !race tests found" >&2; exit 1; }
for pkg in $(printf '%s\n' "${!tests[@]}" | sort); do
	echo "test-norace: $pkg"
	"$go" test -count=1 -timeout 10m -run "^(${tests[$pkg]})\$" "$pkg"
done
