#!/usr/bin/env bash
# Tracked files speak of the product, not of how it was made: no "session", "issue N",
# "call N", "device tool", worktree or scratch-copy folder names, no GPU instance-type names,
# and no absolute paths of one machine (/work/..., /root/...). Checks file contents
# (git grep, text files only) and file names; prints every hit and exits 1 if there is one.
#
# usage: scripts/check-repo-words.sh
set -euo pipefail
cd "$(dirname "$0")/.."
git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
  || { echo "error: $(pwd) is not a git checkout: the check reads the tracked files (git ls-files)" >&2; exit 2; }

# One extended regular expression per kind of hit, matched case-insensitively.
patterns=(
  '\bsessions?([0-9]|\b)'
  '\bissues?[ #-]*[0-9]+'
  '\bcalls?[ #-]*[0-9]+'
  '\bdevice[ -]tool'
  '\bworktrees?\b'
  '(^|[^[:alnum:]_])\.carry\b'
  '\bnvidia-h[0-9]{3}(-x[0-9]+)?\b'
  '(^|[^[:alnum:]_.~-])/(work|root)/'
)
# Only this file names the words it looks for.
exclude=(':(exclude)scripts/check-repo-words.sh')

hits=0
for p in "${patterns[@]}"; do
  if out=$(git grep -n -I -i -E -e "$p" -- . "${exclude[@]}"); then
    printf '%s\n' "$out"
    hits=$((hits + $(printf '%s\n' "$out" | wc -l)))
  fi
  if names=$(git ls-files | grep -i -E -e "$p"); then
    printf '%s: (file name)\n' $names
    hits=$((hits + $(printf '%s\n' "$names" | wc -l)))
  fi
done
if [ "$hits" -gt 0 ]; then
  echo "check-repo-words: $hits line(s) speak of how the work was done rather than of the product (or hold a" >&2
  echo "machine's absolute path); rewrite them as the product's facts (what, measured where, when, with which script)" >&2
  exit 1
fi
echo "check-repo-words: clean ($(git ls-files | wc -l) tracked files)"
