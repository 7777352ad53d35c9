// How fast one or two threads stream a buffer from the cache hierarchy: the bound on batch-1
// Feedback decoding, which reads every weight once per generated token (docs/performance.md).
//
//   gcc -O2 -mavx512f -pthread -o /tmp/read-bandwidth scripts/read-bandwidth.c
//   for mb in 0.5 2 3.5 5.6 11; do /tmp/read-bandwidth $mb 1; /tmp/read-bandwidth $mb 2; done
//
// Each thread sums its own MB-sized buffer (AVX-512 loads) over and over, about 4 GB in all.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t n_floats;
static int reps;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *sum(void *p) {
  const float *a = p;
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  for (int r = 0; r < reps; r++)
    for (size_t i = 0; i < n_floats; i += 32) {
      s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
      s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
    }
  float out[16];
  _mm512_storeu_ps(out, _mm512_add_ps(s0, s1));
  return (void *)(size_t)(out[0] > 1e30f); // keeps the sums live
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MB THREADS(1|2)\n", argv[0]);
    return 2;
  }
  double mb = atof(argv[1]);
  int threads = atoi(argv[2]);
  if (mb <= 0 || threads < 1 || threads > 2) {
    fprintf(stderr, "error: MB must be > 0 and THREADS 1 or 2\n");
    return 2;
  }
  n_floats = (size_t)(mb * 1024 * 1024 / 4);
  n_floats -= n_floats % 32;
  reps = (int)(4000 / mb);
  float *bufs[2];
  for (int t = 0; t < threads; t++) {
    bufs[t] = aligned_alloc(64, n_floats * 4);
    for (size_t i = 0; i < n_floats; i++) bufs[t][i] = 1.0f;
  }
  pthread_t ids[2];
  double t0 = now();
  for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, sum, bufs[t]);
  for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
  double dt = now() - t0;
  printf("%.1f MB x %d threads: %.1f GB/s in all\n", mb, threads,
         threads * n_floats * 4.0 * reps / dt / 1e9);
  return 0;
}
