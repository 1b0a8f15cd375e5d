#!/usr/bin/env bash
# Rewrites the generated table of docs/models.md from the rule files (after building).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
doc="$root/docs/models.md"
table="$("$root/build/cli/convert_weight" models --markdown)"
/usr/bin/python3 - "$doc" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2] + "\n"
text = open(path).read()
head, rest = text.split("<!-- models:begin -->\n", 1)
tail = rest.split("<!-- models:end -->\n", 1)[1]
open(path, "w").write(head + "<!-- models:begin -->\n" + table + "<!-- models:end -->\n" + tail)
PY
