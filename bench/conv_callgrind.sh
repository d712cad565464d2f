#!/usr/bin/env bash
# Instructions one direct conv executes (valgrind's callgrind, inclusive count of the
# kernel's run()), one thread, for the YOLOv8n shapes below: a count that does not move
# with the machine's load, to compare two versions of the conv kernel. Builds a small
# driver against LIB. MODE=time instead times each conv (best of 7 runs, GFLOP/s) next to
# a loop of 12 independent 8-wide FMA chains, the core's FMA rate at that moment.
#
# usage: bench/conv_callgrind.sh
# env:   LIB (build/libyoloc.a)  SHAPES ("IC OC H K S PLAIN;..." input H x H, SiLU epilogue)
#        MODE (callgrind | time)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LIB="${LIB:-$ROOT/build/libyoloc.a}"
SHAPES="${SHAPES:-64 64 80 3 1 0;80 80 80 3 1 0;192 64 80 1 1 0;16 32 320 3 2 0;3 16 320 3 2 1}"
[ -f "$LIB" ] || { echo "error: $LIB not found: build yoloc first (ninja -C build yoloc_lib) or set LIB" >&2; exit 2; }
case "${MODE:-callgrind}" in callgrind|time) ;; *) echo "error: MODE must be callgrind or time, not ${MODE}" >&2; exit 2;; esac
command -v valgrind >/dev/null || { echo "error: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
cat > "$TMP/conv_one.cpp" <<'CPP'
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "engine/cpu/fast/conv.h"
using namespace yoloc;
using namespace yoloc::fast;
__attribute__((target("avx2,fma"), noinline)) float fma_loop(long n) {
    __m256 a[12];
    for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(float(i));
    const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
    for (long k = 0; k < n; ++k)
#pragma GCC unroll 12
        for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
    float s = 0;
    for (int i = 0; i < 12; ++i) s += a[i][0];
    return s;
}

template <class F>
double best_ms(F f) {
    double b = 1e30;
    for (int r = 0; r < 7; ++r) {
        auto t = std::chrono::steady_clock::now();
        f();
        b = std::min(b, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
    }
    return b;
}

int main(int argc, char** argv) {
    if (argc == 2) {  // the FMA loop
        const long n = 20000000;
        volatile float sink = 0;
        const double ms = best_ms([&] { sink = fma_loop(n); });
        std::printf("%.1f\n", double(n) * 12 * 16 / ms / 1e6);
        return 0;
    }
    if (argc != 7 && argc != 8) return 2;
    const int ic = atoi(argv[1]), oc = atoi(argv[2]), h = atoi(argv[3]), k = atoi(argv[4]), st = atoi(argv[5]);
    const bool plain = atoi(argv[6]) != 0;
    ThreadPool pool(1);
    ConvSpec s;
    const int p = k / 2, o = (h + 2 * p - k) / st + 1;
    s.in = {1, ic, h, h};
    s.out = {1, oc, o, o};
    s.kh = s.kw = k;
    s.sh = s.sw = st;
    s.pt = s.pl = s.pb = s.pr = p;
    s.src_plain = plain;
    s.silu = true;
    Tensor w(DType::Float32, {oc, ic, k, k}), b(DType::Float32, {oc});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1, 1);
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = d(rng) * 0.1f;
    for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = d(rng);
    auto conv = make_direct_conv(s, w, b, &pool);
    std::vector<float> x(size_t(plain ? int64_t(ic) * h * h : s.in.floats())), y(size_t(s.out.floats()));
    for (auto& v : x) v = d(rng);
    if (argc == 8) {  // timed
        const double ms = best_ms([&] { conv->run(x.data(), y.data(), nullptr); });
        std::printf("%s %.3f %.1f\n", conv->name(), ms, 2.0 * ic * oc * k * k * o * o / ms / 1e6);
        return 0;
    }
    conv->run(x.data(), y.data(), nullptr);
    std::printf("%s\n", conv->name());
    return 0;
}
CPP
LIBS="-lpthread"
nm -A "$LIB" 2>/dev/null | grep -q " U dnnl_" && LIBS="$LIBS -ldnnl"
${CXX:-g++} -std=c++17 -O2 -I"$ROOT/src" "$TMP/conv_one.cpp" "$LIB" $LIBS -o "$TMP/conv_one"
echo "library: $LIB"
IFS=';' read -ra LIST <<< "$SHAPES"
if [ "${MODE:-callgrind}" = time ]; then
  echo "FMA loop, one thread: $("$TMP/conv_one" peak) GFLOP/s"
  for sh in "${LIST[@]}"; do
    read -r ic oc h k st plain <<< "$sh"
    read -r name ms gf <<< "$("$TMP/conv_one" $ic $oc $h $k $st $plain time)"
    printf "%4d -> %4d  %3dx%-3d k%d s%d%s  %-12s %9s ms  %6s GFLOP/s\n" "$ic" "$oc" "$h" "$h" "$k" "$st" \
      "$([ "$plain" = 1 ] && echo " plain" || echo "")" "$name" "$ms" "$gf"
  done
  exit 0
fi
for sh in "${LIST[@]}"; do
  read -r ic oc h k st plain <<< "$sh"
  name=$(valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$TMP/conv_one" $ic $oc $h $k $st $plain 2>/dev/null)
  ir=$(callgrind_annotate --inclusive=yes "$TMP/cg.out" 2>/dev/null | grep -m1 -E "::run\(float const\*, float\*, float const\*\)" | awk '{print $1}')
  o=$(( (h + 2 * (k / 2) - k) / st + 1 ))
  fmas=$(( ic * oc * k * k * o * o / 8 ))
  printf "%4d -> %4d  %3dx%-3d k%d s%d%s  %-12s %14s instructions  (%.2f per 8-wide FMA of the conv)\n" \
    "$ic" "$oc" "$h" "$h" "$k" "$st" "$([ "$plain" = 1 ] && echo " plain" || echo "")" "$name" "$ir" \
    "$(awk -v a="${ir//,/}" -v b="$fmas" 'BEGIN {print a / b}')"
done
