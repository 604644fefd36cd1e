# Shell helpers shared by testbed's TLS interop plugins (sourced by each plugin's role script).
# The contract, after the QUIC interop runner: TESTCASE names the case, ROLE the role; a stack that cannot do a
# case exits 127. Clients end by printing evidence lines (tls.protocol=…, body.sha256=…) the matrix checks.

# The 10 MiB body of the `transfer` case: numbered lines, the same bytes every stack makes (Go and Java too).
tb_payload_size=10485760
tb_payload_sha256=979dad377534aa4603b80903420d3c7c4b7b9fff1b5324201a2937b5dfcf1059

tb_unsupported() {
  echo "unsupported: $*" >&2
  exit 127
}

tb_fail() {
  echo "failed: $*" >&2
  exit 1
}

tb_payload() {
  seq -w 1 400000 | sed 's/^/testbed payload line /' | head -c "$tb_payload_size" > "$1"
}

# The request a client sends for the case.
tb_request() {
  if [ "$TESTCASE" = transfer ]; then printf 'GET /payload.bin HTTP/1.0\r\n\r\n'; else printf 'GET / HTTP/1.0\r\n\r\n'; fi
}

# Prints body.bytes and body.sha256 of what follows the first blank line (CRLF) of an HTTP answer in $1. Line-wise
# tools only (sed, tail): the body may be binary, and POSIX tools are all a minimal image has.
tb_body_evidence() {
  blank=$(LC_ALL=C sed -n "/^$(printf '\r')\$/{=;q;}" "$1")
  if [ -z "$blank" ]; then
    echo "body.bytes=0"
    return
  fi
  LC_ALL=C tail -n +"$((blank + 1))" "$1" > "$1.body"
  echo "body.bytes=$(wc -c < "$1.body" | tr -d ' ')"
  echo "body.sha256=$(sha256sum < "$1.body" | cut -d' ' -f1)"
  rm -f "$1.body"
}

# Builds a program once per source hash into the cache (TESTBED_CACHE_DIR, else ~/.cache/testbed) and prints its
# directory. $1: name, $2: source directory, $3…: the build command, run in a fresh directory with SRC and OUT set.
# Concurrent builds of the same sources each build into their own temporary directory; the first rename wins.
tb_cached_build() {
  name=$1
  src=$2
  shift 2
  hash=$(cd "$src" && cat $(ls | sort) | sha256sum | cut -c1-16)
  root=${TESTBED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/testbed}
  out="$root/$name-$hash"
  if [ ! -d "$out" ]; then
    mkdir -p "$root"
    tmp=$(mktemp -d "$root/.$name-XXXXXX")
    started=$(date +%s%N)
    (export SRC="$src" OUT="$tmp"; cd "$tmp" && "$@") >&2 || { rm -rf "$tmp"; tb_fail "building $name failed"; }
    echo "build.$name.ms=$(( ($(date +%s%N) - started) / 1000000 ))" >&2
    mv -T "$tmp" "$out" 2>/dev/null || rm -rf "$tmp"
  fi
  echo "$out"
}

# Runs a client with what the function named $1 writes on its stdin, and keeps stdin open until the client ends
# (at most TB_HOLD tenths of a second, default 600): clients that hang up at the end of their input would otherwise
# close before the answer arrives; the bound ends a client whose server never closes (an echo server).
tb_converse() {
  producer=$1
  shift
  rm -f stdin.fifo
  mkfifo stdin.fifo
  "$@" < stdin.fifo &
  pid=$!
  {
    "$producer"
    held=0
    while kill -0 "$pid" 2>/dev/null && [ "$held" -lt "${TB_HOLD:-600}" ]; do
      sleep 0.1
      held=$((held + 1))
    done
  } > stdin.fifo
  rm -f stdin.fifo
  wait "$pid"
}
