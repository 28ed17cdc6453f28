# shellcheck shell=bash
# Shell helpers shared by the scripts on the CI path (sourced, not run).

first_line() {  # first_line CMD...: the first line CMD prints (stdout and stderr), without a pipe
  # `CMD | head -1` under pipefail fails whenever head exits before CMD has finished writing
  # (Maven dies on the broken pipe); capturing the whole output first cannot break that way.
  local out
  out=$("$@" 2>&1) || return
  printf '%s\n' "${out%%$'\n'*}"
}
